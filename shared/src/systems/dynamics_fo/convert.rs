//! The canonical invoice → what F&O takes: a header reference derived from the source id, the
//! legal entity, and each line's main account and dimensions as one ledger display string in
//! the environment's format (d365-fo.md B5).

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{InvoiceKind, ResolvedInvoice};

/// The ledger dimension format for integrating applications (B5): the segment order, main
/// account first, and the delimiter. It is the environment's, global to all legal entities.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DimensionFormat {
    pub delimiter: char,
    /// Segment names in order; the first is the main account ("MainAccount").
    pub ledger: Vec<String>,
}

impl Default for DimensionFormat {
    fn default() -> Self {
        Self {
            delimiter: '-',
            ledger: vec!["MainAccount".into()],
        }
    }
}

impl DimensionFormat {
    /// `main-dim1-dim2…` in the format's order, trailing blanks left out (F&O fills them).
    /// Refused, naming the value: a dimension the format does not hold (F&O would drop it
    /// without a word, B5), or a value containing the delimiter (it would shift every segment
    /// after it; escaping is [UNCONFIRMED]).
    pub fn ledger_display(
        &self,
        main_account: &str,
        dimensions: &[(String, String)],
    ) -> Result<String, String> {
        let d = self.delimiter;
        let check = |what: &str, v: &str| {
            if v.contains(d) {
                Err(format!(
                    "{what} '{v}' contains the dimension delimiter '{d}' of the F&O format"
                ))
            } else {
                Ok(())
            }
        };
        check("main account", main_account)?;
        for (name, value) in dimensions {
            if !self
                .ledger
                .iter()
                .skip(1)
                .any(|s| s.eq_ignore_ascii_case(name))
            {
                return Err(format!(
                    "dimension {name} (value '{value}') is not in the F&O ledger dimension format ({}); F&O would drop it",
                    self.ledger.join(&d.to_string())
                ));
            }
            check(&format!("dimension {name} value"), value)?;
        }
        let mut segments = vec![main_account.to_string()];
        for name in self.ledger.iter().skip(1) {
            let value = dimensions
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            segments.push(value);
        }
        while segments.len() > 1 && segments.last().is_some_and(String::is_empty) {
            segments.pop();
        }
        Ok(segments.join(&d.to_string()))
    }
}

/// A vendor invoice as F&O takes it, in one legal entity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoInvoice {
    pub source_id: String,
    pub legal_entity: String,
    /// The header's key (with the legal entity): derived from the source id, so a create whose
    /// answer was lost is found again by it.
    pub header_reference: String,
    pub vendor_account: String,
    pub invoice_number: String,
    pub invoice_date: NaiveDate,
    pub currency: String,
    pub description: String,
    pub lines: Vec<FoInvoiceLine>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoInvoiceLine {
    /// `InvoiceLineNumber`: 1, 2, … in the source's order; a resumed invoice adds the missing
    /// numbers only.
    pub number: i64,
    pub description: String,
    pub main_account_display: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub net_amount: Decimal,
}

/// B9.1: at most 20 characters, to be safe; the source id itself when it fits, else a digest.
pub fn header_reference(source: &str, source_id: &str) -> String {
    let plain = format!("{source}-{source_id}");
    if plain.len() <= 20 && plain.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return plain;
    }
    let digest = hex::encode(Sha256::digest(plain.as_bytes()));
    format!(
        "{source}-{}",
        &digest[..(19 - source.len()).min(digest.len())]
    )
}

impl FoInvoice {
    /// From a resolved invoice (vendor account, G/L accounts and dimension values already
    /// mapped) for `legal_entity`. A credit note becomes negative lines (F&O's pending invoice
    /// entities take one with negative amounts; no separate credit-note form is named, B4.1).
    pub fn from_resolved(
        inv: &ResolvedInvoice,
        source: &str,
        legal_entity: &str,
        format: &DimensionFormat,
    ) -> Result<Self, String> {
        let sign = match inv.kind {
            InvoiceKind::Invoice => Decimal::ONE,
            InvoiceKind::CreditNote => Decimal::NEGATIVE_ONE,
        };
        let lines = inv
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let display = format
                    .ledger_display(&l.gl_account, &l.dimensions)
                    .map_err(|e| format!("line {}: {e}", i + 1))?;
                Ok(FoInvoiceLine {
                    number: i as i64 + 1,
                    description: l.description.clone(),
                    main_account_display: display,
                    net_amount: (l.quantity * l.unit_cost).abs() * sign,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(FoInvoice {
            source_id: inv.source_id.clone(),
            legal_entity: legal_entity.to_lowercase(),
            header_reference: header_reference(source, &inv.source_id),
            vendor_account: inv.vendor_number.clone(),
            invoice_number: inv.vendor_invoice_number.clone(),
            invoice_date: inv.invoice_date,
            currency: inv.total.currency.to_string(),
            description: crate::text::one_line(&inv.supplier_name, 60),
            lines,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt() -> DimensionFormat {
        DimensionFormat {
            delimiter: '-',
            ledger: vec![
                "MainAccount".into(),
                "BusinessUnit".into(),
                "CostCenter".into(),
            ],
        }
    }

    #[test]
    fn segments_follow_the_format_order_and_trailing_blanks_are_left_out() {
        let dims = vec![("CostCenter".to_string(), "OU_1".to_string())];
        assert_eq!(
            fmt().ledger_display("600100", &dims).unwrap(),
            "600100--OU_1"
        );
        assert_eq!(fmt().ledger_display("600100", &[]).unwrap(), "600100");
    }

    #[test]
    fn a_dimension_outside_the_format_or_holding_the_delimiter_is_refused() {
        let extra = vec![("Project".to_string(), "P1".to_string())];
        assert!(
            fmt()
                .ledger_display("600100", &extra)
                .unwrap_err()
                .contains("Project")
        );
        let dashed = vec![("CostCenter".to_string(), "A-B".to_string())];
        assert!(
            fmt()
                .ledger_display("600100", &dashed)
                .unwrap_err()
                .contains("'A-B'")
        );
    }

    #[test]
    fn header_references_fit_twenty_characters() {
        assert_eq!(header_reference("CPA", "4711"), "CPA-4711");
        let long = header_reference("CPA", "a-very-long-source-identifier-123");
        assert_eq!(long.len(), 20);
        assert_ne!(
            long,
            header_reference("CPA", "a-very-long-source-identifier-124")
        );
    }
}
