//! Financial dimension display strings (d365-fo.md B5): the active "integrating applications"
//! formats (one ledger format, main account first; one default format, no main account), a
//! delimiter, positional parsing, and validation of every segment against the main accounts of
//! the company's chart and the `FinancialDimensionValues` the company may use (B9.8: its own
//! and the shared ones, `LegalEntityId` ''), honouring suspension and active dates, plus
//! refused combinations (what account structures and advanced rules refuse).

use chrono::Utc;

use super::schema::{DIMENSION_VALUES, MAIN_ACCOUNTS};
use super::store::{Row, Store};

/// The dimension name of the main-account segment in the ledger format.
pub const MAIN_ACCOUNT: &str = "MainAccount";

/// The formats for integrating applications (global, not per company: B5).
#[derive(Clone, Debug)]
pub struct DimensionFormats {
    /// `DimensionParametersEntity.DimensionSegmentDelimiter`; '-' by default [UNCONFIRMED].
    pub delimiter: char,
    /// Ledger dimension format: `MainAccount` then dimensions (`MainAccountDisplayValue`).
    pub ledger: Vec<String>,
    /// Default dimension format: dimensions only (`DimensionDisplayValue`).
    pub default: Vec<String>,
}

impl Default for DimensionFormats {
    fn default() -> Self {
        DimensionFormats {
            delimiter: '-',
            ledger: vec![
                MAIN_ACCOUNT.into(),
                "BusinessUnit".into(),
                "CostCenter".into(),
                "Department".into(),
            ],
            default: vec![
                "BusinessUnit".into(),
                "CostCenter".into(),
                "Department".into(),
            ],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FormatKind {
    Ledger,
    Default,
}

/// One refused combination: every (dimension, value) pair together is refused.
pub(crate) type Combination = Vec<(String, String)>;

fn active(row: &Row) -> bool {
    let today = Utc::now().date_naive().to_string();
    let from = row.str("ActiveFrom");
    let to = row.str("ActiveTo");
    // Dates are DateTimeOffset strings; the null date 1900-01-01 means open-ended.
    let open = |d: &str| d.is_empty() || d.starts_with("1900-01-01");
    (open(from) || from[..10.min(from.len())] <= *today.as_str())
        && (open(to) || to[..10.min(to.len())] >= *today.as_str())
}

impl Store {
    /// Parses `display` in the format `kind` for `company` and validates every segment.
    /// Returns the stored form (extra segments dropped and missing trailing ones blank, as B5
    /// says F&O does) or the Infolog text naming the refused value.
    pub(crate) fn validate_display(
        &self,
        formats: &DimensionFormats,
        refused: &[Combination],
        company: &str,
        kind: FormatKind,
        field: &str,
        display: &str,
    ) -> Result<String, String> {
        let format = match kind {
            FormatKind::Ledger => &formats.ledger,
            FormatKind::Default => &formats.default,
        };
        let mut segments: Vec<&str> = display.split(formats.delimiter).collect();
        // B5 [CONFIRMED]: extra segments are dropped, missing trailing ones are blank.
        segments.resize(format.len(), "");
        let chart = self
            .company(company)
            .map(|c| c.chart.clone())
            .unwrap_or_default();
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in format.iter().zip(&segments) {
            if value.is_empty() {
                if name == MAIN_ACCOUNT {
                    return Err(format!(
                        "Error: The main account must be filled in for field '{field}' ('{display}')."
                    ));
                }
                continue;
            }
            if name == MAIN_ACCOUNT {
                let found = self.rows_where(MAIN_ACCOUNTS, |r| {
                    r.str("ChartOfAccounts").eq_ignore_ascii_case(&chart)
                        && r.str("MainAccountId").eq_ignore_ascii_case(value)
                });
                match found.first() {
                    None => {
                        return Err(format!(
                            "Error: Main account '{value}' does not exist in chart of accounts '{chart}' (field '{field}')."
                        ));
                    }
                    Some(r) if r.str("IsSuspended") == "Yes" || !active(r) => {
                        return Err(format!(
                            "Error: Main account '{value}' is suspended or not active (field '{field}')."
                        ));
                    }
                    Some(_) => {}
                }
            } else {
                let found = self.rows_where(DIMENSION_VALUES, |r| {
                    r.str("FinancialDimension") == name
                        && r.str("DimensionValue").eq_ignore_ascii_case(value)
                        && (r.str("LegalEntityId").is_empty()
                            || r.str("LegalEntityId").eq_ignore_ascii_case(company))
                });
                match found.first() {
                    None => {
                        return Err(format!(
                            "Error: Value '{value}' for dimension '{name}' does not exist in legal entity '{}' (field '{field}').",
                            company.to_uppercase()
                        ));
                    }
                    Some(r) if r.str("IsSuspended") == "Yes" || !active(r) => {
                        return Err(format!(
                            "Error: Value '{value}' for dimension '{name}' is suspended or not active (field '{field}')."
                        ));
                    }
                    Some(_) => {}
                }
            }
            pairs.push((name.clone(), value.to_string()));
        }
        for combo in refused {
            let all = combo.iter().all(|(d, v)| {
                pairs
                    .iter()
                    .any(|(pd, pv)| pd == d && pv.eq_ignore_ascii_case(v))
            });
            if all && !combo.is_empty() {
                let named = combo
                    .iter()
                    .map(|(d, v)| format!("{d} '{v}'"))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(format!(
                    "Error: The combination of dimension values '{display}' is not valid: {named} are not allowed together (field '{field}')."
                ));
            }
        }
        let delimiter = formats.delimiter.to_string();
        Ok(segments.join(&delimiter))
    }
}
