//! Coupa's JSON as it arrives: hyphenated keys, every field optional (coupa.md §1.4: "payload
//! structure can change … to not display certain fields which have no or null values"), money
//! as decimal strings. Only `id` is required: without it a document cannot be referred to.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

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
    pub paid: Option<bool>,
    pub payment_date: Option<String>,
    /// coupa.md §1.7: payments recorded on the invoice (`PUT /api/invoices/:id`).
    pub payments: Option<Vec<Payment>>,
}

impl Invoice {
    /// Whether a payment carrying `reference` in its `notes` is already recorded: the
    /// connector checks this before sending, because a repeated PUT appends another payment
    /// (coupa.md §1.7; apis/README.md "Coupa paid status"). Compared trimmed and exactly.
    pub fn has_payment_reference(&self, reference: &str) -> bool {
        let reference = reference.trim();
        !reference.is_empty()
            && self
                .payments
                .iter()
                .flatten()
                .any(|p| p.notes.as_deref().map(str::trim) == Some(reference))
    }
}

/// A payment on an invoice (coupa.md §1.7 output fields).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Payment {
    pub id: Option<i64>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub amount_paid: Option<Decimal>,
    pub notes: Option<String>,
    pub payment_date: Option<String>,
    pub check_number: Option<String>,
}

/// Just what a poll needs of a listed document (invoice, purchase order or supplier).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DocStub {
    pub id: i64,
    pub updated_at: Option<String>,
}

pub type InvoiceStub = DocStub;

/// A purchase order (coupa.md §1.8; no verbatim JSON example exists, so every field beyond
/// `id` is optional and read by its documented hyphenated name).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PurchaseOrder {
    pub id: i64,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub po_number: Option<String>,
    pub status: Option<String>,
    /// A number per §1.4; a numeric string is accepted too.
    #[serde(default, deserialize_with = "int_opt")]
    pub version: Option<i64>,
    /// Not in §1.8's field list; read when a tenant sends it.
    pub order_date: Option<String>,
    pub currency: Option<CurrencyRef>,
    pub supplier: Option<SupplierRef>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub total: Option<Decimal>,
    pub exported: Option<bool>,
    #[serde(default)]
    pub order_lines: Vec<OrderLine>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct OrderLine {
    pub id: Option<i64>,
    #[serde(default, deserialize_with = "int_opt")]
    pub line_num: Option<i64>,
    /// `OrderQuantityLine` | `OrderAmountLine` (by analogy with invoice lines, §1.6).
    #[serde(rename = "type")]
    pub line_type: Option<String>,
    pub description: Option<String>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub quantity: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub price: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub total: Option<Decimal>,
    pub account: Option<Account>,
    pub uom: Option<UomRef>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct UomRef {
    pub code: Option<String>,
}

/// A supplier (coupa.md §1.9).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Supplier {
    pub id: i64,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub number: Option<String>,
    pub status: Option<String>,
    pub tax_id: Option<String>,
    /// Custom (flexible) fields by name (coupa.md §1.6 shape).
    #[serde(default)]
    pub custom_fields: Option<serde_json::Map<String, serde_json::Value>>,
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
    /// §1.6 line fields; the PO number again. Text or number accepted.
    #[serde(default, deserialize_with = "text_opt")]
    pub order_header_num: Option<String>,
    /// §1.6 line fields; the billed PO line. Its JSON type is in no sample, so text or number
    /// is accepted here and the conversion names the field if it is not a line number.
    #[serde(default, deserialize_with = "text_opt")]
    pub order_line_num: Option<String>,
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

/// A string, or a number kept as its text; null/absent is `None`.
fn text_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected text or a number, found {other}"
        ))),
    }
}

/// An integer, or a string holding one; null/absent/blank is `None`.
fn int_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match text_opt(d)? {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("'{s}' is not an integer"))),
    }
}
