//! Coupa's JSON as it arrives: hyphenated keys, every field optional (coupa.md §1.4: "payload
//! structure can change … to not display certain fields which have no or null values"), money
//! as decimal strings. Only `id` is required: without it a document cannot be referred to.

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::systems::wire::decimal_opt;

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Invoice {
    pub id: i64,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub invoice_number: Option<String>,
    pub invoice_date: Option<String>,
    pub status: Option<String>,
    pub document_type: Option<String>,
    pub is_credit_note: Option<bool>,
    pub currency: Option<CurrencyRef>,
    pub supplier: Option<SupplierRef>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub total_with_taxes: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub gross_total: Option<Decimal>,
    #[serde(default)]
    pub invoice_lines: Vec<InvoiceLine>,
}

/// Just what a poll needs of a listed invoice.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct InvoiceStub {
    pub id: i64,
    pub updated_at: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CurrencyRef {
    pub code: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SupplierRef {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub number: Option<String>,
    pub tax_id: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct InvoiceLine {
    pub id: Option<i64>,
    pub line_num: Option<u32>,
    #[serde(rename = "type")]
    pub line_type: Option<String>,
    pub description: Option<String>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub price: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub quantity: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub total: Option<Decimal>,
    pub po_number: Option<String>,
    pub account: Option<Account>,
}

/// A Coupa account: a code and `segment-1` … `segment-20` (the count is per chart of accounts),
/// kept as the map it arrives as because the segment keys vary.
#[derive(Clone, Debug, Deserialize)]
#[serde(transparent)]
pub struct Account(pub serde_json::Map<String, serde_json::Value>);

impl Account {
    pub fn code(&self) -> Option<String> {
        self.text("code")
    }

    /// `segment-1..segment-N` in order, keeping gaps so positions stay right.
    pub fn segments(&self) -> Vec<Option<String>> {
        let max = self
            .0
            .keys()
            .filter_map(|k| k.strip_prefix("segment-")?.parse::<usize>().ok())
            .max()
            .unwrap_or(0);
        (1..=max)
            .map(|n| self.text(&format!("segment-{n}")))
            .collect()
    }

    fn text(&self, key: &str) -> Option<String> {
        match self.0.get(key) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    }
}
