//! The Service Layer's JSON as this client reads it (sap-b1.md §4.3–§4.8). Every field is
//! optional and unknown fields are ignored (the misspelled `DocTypte`, UDFs `U_*`); money and
//! quantities are JSON numbers or strings (§4.7.7); dates are `2021-09-30` (v1) or
//! `2025-08-31T00:00:00Z` (v2); `UpdateTime` is `HH:MM:SS`, `HH:MM` or an integer `HHMMSS`.

use chrono::{NaiveDate, NaiveTime};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A collection page: `value` and the relative next link under either protocol's key (§4.4).
#[derive(Debug, Deserialize)]
pub struct Collection {
    #[serde(default)]
    pub value: Vec<Value>,
    #[serde(rename = "odata.nextLink", default)]
    next_v1: Option<String>,
    #[serde(rename = "@odata.nextLink", default)]
    next_v2: Option<String>,
}

impl Collection {
    pub fn next_link(&self) -> Option<&str> {
        self.next_v2
            .as_deref()
            .or(self.next_v1.as_deref())
            .filter(|l| !l.trim().is_empty())
    }
}

/// A B1 error in either shape (§4.3): v1 `{"error":{"code":<int>,"message":{"value":"…"}}}`,
/// v2 `{"error":{"code":"<code>","message":"…"}}`.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub code: Option<Value>,
    #[serde(default)]
    pub message: Option<Value>,
}

impl ErrorDetail {
    pub fn code(&self) -> Option<i64> {
        match self.code.as_ref()? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn message(&self) -> String {
        match &self.message {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Object(m)) => m
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        }
    }
}

/// A marketing document (`PurchaseOrders`, `PurchaseInvoices`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Document {
    pub doc_entry: Option<i64>,
    pub doc_num: Option<i64>,
    pub card_code: Option<String>,
    pub card_name: Option<String>,
    #[serde(default, deserialize_with = "date")]
    pub doc_date: Option<NaiveDate>,
    #[serde(default, deserialize_with = "date")]
    pub doc_due_date: Option<NaiveDate>,
    pub num_at_card: Option<String>,
    pub doc_currency: Option<String>,
    #[serde(default, deserialize_with = "decimal")]
    pub doc_total: Option<Decimal>,
    /// Note the casing (§4.8.2): header `DocTotalFc`, `VatSumFc`.
    #[serde(default, deserialize_with = "decimal")]
    pub doc_total_fc: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal")]
    pub vat_sum: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal")]
    pub vat_sum_fc: Option<Decimal>,
    pub document_status: Option<String>,
    pub cancelled: Option<String>,
    pub cancel_status: Option<String>,
    pub comments: Option<String>,
    #[serde(default, deserialize_with = "date")]
    pub update_date: Option<NaiveDate>,
    #[serde(default, deserialize_with = "time")]
    pub update_time: Option<NaiveTime>,
    #[serde(default)]
    pub document_lines: Vec<DocumentLine>,
}

impl Document {
    /// §4.8.3: `Cancelled == tYES` or any `CancelStatus` but `csNo` is not a live document (a
    /// cancelled original, or the cancellation document itself).
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.as_deref() == Some("tYES")
            || self.cancel_status.as_deref().is_some_and(|s| s != "csNo")
    }

    /// §4.8.2 strict assumption: `DocTotalFc` is 0 on local-currency documents.
    pub fn is_foreign(&self) -> bool {
        self.doc_total_fc.is_some_and(|t| !t.is_zero())
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DocumentLine {
    pub line_num: Option<i64>,
    pub item_code: Option<String>,
    pub item_description: Option<String>,
    #[serde(default, deserialize_with = "decimal")]
    pub quantity: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal")]
    pub unit_price: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal")]
    pub price: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal")]
    pub line_total: Option<Decimal>,
    #[serde(rename = "RowTotalFC", default, deserialize_with = "decimal")]
    pub row_total_fc: Option<Decimal>,
    pub tax_code: Option<String>,
    #[serde(default, deserialize_with = "decimal")]
    pub tax_total: Option<Decimal>,
    #[serde(rename = "NetTaxAmountFC", default, deserialize_with = "decimal")]
    pub net_tax_amount_fc: Option<Decimal>,
    pub account_code: Option<String>,
    pub costing_code: Option<String>,
    pub costing_code2: Option<String>,
    pub costing_code3: Option<String>,
    pub costing_code4: Option<String>,
    pub costing_code5: Option<String>,
    pub base_type: Option<i64>,
    pub base_entry: Option<i64>,
    pub base_line: Option<i64>,
}

/// A business partner.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BusinessPartner {
    pub card_code: Option<String>,
    pub card_name: Option<String>,
    pub card_type: Option<String>,
    #[serde(rename = "FederalTaxID")]
    pub federal_tax_id: Option<String>,
    #[serde(default, deserialize_with = "date")]
    pub update_date: Option<NaiveDate>,
    #[serde(default, deserialize_with = "time")]
    pub update_time: Option<NaiveTime>,
}

/// An outgoing payment (`VendorPayments`, §4.8.6). It has no `UpdateDate`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Payment {
    pub doc_entry: Option<i64>,
    pub doc_num: Option<i64>,
    pub card_code: Option<String>,
    #[serde(default, deserialize_with = "date")]
    pub doc_date: Option<NaiveDate>,
    pub doc_currency: Option<String>,
    pub cancelled: Option<String>,
    pub cancel_status: Option<String>,
    #[serde(default)]
    pub payment_invoices: Vec<PaymentInvoice>,
}

impl Payment {
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.as_deref() == Some("tYES")
            || self.cancel_status.as_deref().is_some_and(|s| s != "csNo")
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentInvoice {
    /// The A/P invoice's DocEntry.
    pub doc_entry: Option<i64>,
    /// Local currency.
    #[serde(default, deserialize_with = "decimal")]
    pub sum_applied: Option<Decimal>,
    /// The invoice's currency, when it is foreign (0 otherwise).
    #[serde(rename = "AppliedFC", default, deserialize_with = "decimal")]
    pub applied_fc: Option<Decimal>,
    pub invoice_type: Option<String>,
}

fn decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    // Through `Value`: with serde_json's `arbitrary_precision` a number keeps its exact text.
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.to_string().parse().ok(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

fn date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.and_then(|s| parse_date(&s)))
}

fn time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveTime>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => parse_time(&s),
        Some(Value::Number(n)) => parse_time(&n.to_string()),
        _ => None,
    })
}

/// `2021-09-30` or the date part of `2025-08-31T00:00:00Z`.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim().get(..10)?, "%Y-%m-%d").ok()
}

/// §4.8.7: `HH:MM:SS`, `HH:MM`, or digits `HHMMSS` / `HHMM` (the DB's integer).
pub fn parse_time(s: &str) -> Option<NaiveTime> {
    let s = s.trim();
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let n: u32 = s.parse().ok()?;
        return match s.len() {
            5 | 6 => NaiveTime::from_hms_opt(n / 10000, n / 100 % 100, n % 100),
            1..=4 => NaiveTime::from_hms_opt(n / 100, n % 100, 0),
            _ => None,
        };
    }
    NaiveTime::parse_from_str(s, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_time_in_every_observed_form() {
        let t = NaiveTime::from_hms_opt(10, 15, 30).unwrap();
        assert_eq!(parse_time("10:15:30"), Some(t));
        assert_eq!(parse_time("101530"), Some(t));
        assert_eq!(parse_time("1015"), NaiveTime::from_hms_opt(10, 15, 0));
        assert_eq!(parse_time("10:15"), NaiveTime::from_hms_opt(10, 15, 0));
        assert_eq!(parse_time("x"), None);
    }

    #[test]
    fn both_error_shapes_and_both_next_link_keys() {
        let v1: ErrorBody = serde_json::from_str(
            r#"{"error":{"code":-10,"message":{"lang":"en-us","value":"Invalid BP code"}}}"#,
        )
        .unwrap();
        let v2: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"-10","message":"Invalid BP code"}}"#)
                .unwrap();
        assert_eq!(
            (v1.error.code(), v1.error.message()),
            (Some(-10), "Invalid BP code".into())
        );
        assert_eq!(
            (v2.error.code(), v2.error.message()),
            (Some(-10), "Invalid BP code".into())
        );
        let c1: Collection =
            serde_json::from_str(r#"{"value":[],"odata.nextLink":"A?$skip=2"}"#).unwrap();
        let c2: Collection =
            serde_json::from_str(r#"{"value":[],"@odata.nextLink":"A?$skip=4"}"#).unwrap();
        assert_eq!(
            (c1.next_link(), c2.next_link()),
            (Some("A?$skip=2"), Some("A?$skip=4"))
        );
    }

    #[test]
    fn amounts_as_numbers_or_strings_and_dates_of_both_protocols() {
        let d: Document = serde_json::from_str(
            r#"{"DocEntry":1,"DocTotal":130.9,"DocTotalFc":"119.00","DocDate":"2025-08-31T00:00:00Z","UpdateDate":"2026-07-01","DocTypte":"x"}"#,
        )
        .unwrap();
        assert_eq!(d.doc_total, Some("130.9".parse().unwrap()));
        assert_eq!(d.doc_total_fc, Some("119.00".parse().unwrap()));
        assert_eq!(d.doc_date, NaiveDate::from_ymd_opt(2025, 8, 31));
        assert!(d.is_foreign());
    }
}
