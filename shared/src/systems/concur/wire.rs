//! SAP Concur's JSON (`../shared/apis/concur.md`): the FIS v4 list envelope (§2.3), the two
//! financial documents this connector reads (invoice payment requests and expense reports,
//! §2.3 and §2.7.1), acknowledgement and confirmation bodies and their per-item answers.
//!
//! Tolerant readers for what the samples show: amounts as JSON numbers or strings, `0E-8`
//! (BigDecimal zero) included; US dates (`MM/DD/YYYY`) and ISO timestamps; codes right-padded
//! with spaces (trimmed by [`code`]); `document` as an object or as a JSON-encoded string
//! (`DocumentFormatAs`, §2.3: which one a tenant sends is [U]).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// An amount as a JSON number or string; `0E-8` and other exponent forms are read exactly.
pub fn decimal_of(v: &Value) -> Option<Decimal> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    if text.is_empty() {
        return None;
    }
    text.parse::<Decimal>()
        .ok()
        .or_else(|| Decimal::from_scientific(&text).ok())
        .map(|d| d.normalize())
}

fn lenient_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => decimal_of(&v)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("not an amount: {v}"))),
    }
}

/// A string that may come as a number (`reqKey`, `reportKey`).
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// A code as Concur pads it (`"2000   "`), trimmed; empty is none.
pub fn code(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `MM/DD/YYYY` (request header dates), `YYYY-MM-DD`, or the date of an ISO timestamp.
pub fn date_of(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    NaiveDate::parse_from_str(s, "%m/%d/%Y")
        .ok()
        .or_else(|| NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok())
}

/// A HAL-ish link (§2.3).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Link {
    #[serde(default)]
    pub rel: Option<String>,
    #[serde(default)]
    pub href: Option<String>,
}

/// `GET …/transactions`: one page of financial documents.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct DocumentPage {
    #[serde(default)]
    pub links: Vec<Link>,
    #[serde(default)]
    pub content: Vec<Value>,
}

/// One element of `content[]`. `docStatus` is an open set (§2.7.3), kept as a string.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FiDocument {
    /// The 32-character FIS document id: the one acknowledgements and confirmations take
    /// (§2.6 gotcha 3), not the report or request id.
    pub id: String,
    #[serde(default)]
    pub doc_type: Option<String>,
    #[serde(default)]
    pub company_id: Option<String>,
    #[serde(default)]
    pub doc_status: Option<String>,
    /// An object (`DocumentFormatAs: json`) or its JSON as a string (`text`).
    #[serde(default)]
    pub document: Value,
}

impl FiDocument {
    /// The financial document as an object, whichever representation came.
    pub fn document_object(&self) -> Result<Value, String> {
        match &self.document {
            Value::Object(_) => Ok(self.document.clone()),
            Value::String(text) => serde_json::from_str::<Value>(text)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| "its `document` text is not a JSON object".to_string()),
            Value::Null => Err("it has no `document`".into()),
            _ => Err("its `document` is neither an object nor text".into()),
        }
    }
}

// ---- invoice payment request (§2.3) ----

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceDocument {
    pub request_header: RequestHeader,
    #[serde(default)]
    pub vendor: Option<Vendor>,
    #[serde(default)]
    pub line_item: Vec<LineItem>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestHeader {
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub vendor_invoice_number: Option<String>,
    #[serde(default)]
    pub invoice_date: Option<String>,
    #[serde(default)]
    pub payment_due_date: Option<String>,
    #[serde(default)]
    pub currency_alpha_code: Option<String>,
    #[serde(default, deserialize_with = "lenient_decimal")]
    pub request_total: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient_decimal")]
    pub amount_net_invoice: Option<Decimal>,
    #[serde(default)]
    pub submit_date: Option<String>,
    #[serde(default)]
    pub request_title: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vendor {
    #[serde(default)]
    pub vendor_name: Option<String>,
    #[serde(default)]
    pub vendor_code: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    #[serde(default)]
    pub line_item_sequence_order: Option<u32>,
    #[serde(default)]
    pub line_item_description: Option<String>,
    #[serde(default, deserialize_with = "lenient_decimal")]
    pub line_item_quantity: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient_decimal")]
    pub line_item_unit_price: Option<Decimal>,
    #[serde(default)]
    pub expense_type_code: Option<String>,
    #[serde(default)]
    pub expense_type_name: Option<String>,
    #[serde(default)]
    pub allocation: Vec<InvoiceAllocation>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceAllocation {
    #[serde(default, deserialize_with = "lenient_string")]
    pub allocation_key: Option<String>,
    #[serde(default, deserialize_with = "lenient_decimal")]
    pub allocation_percentage: Option<Decimal>,
    #[serde(default)]
    pub allocation_account_code: Option<String>,
    /// The invoice sample has ONE journal object per allocation (§2.7.1).
    #[serde(default)]
    pub journal: Option<InvoiceJournal>,
    /// `allocationCustom1Code` … `allocationCustom20Code` among the rest.
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceJournal {
    #[serde(default)]
    pub account_code: Option<String>,
    #[serde(default, deserialize_with = "lenient_decimal")]
    pub amount_net: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient_decimal")]
    pub amount_gross: Option<Decimal>,
}

/// `allocationCustom{n}Code` of an allocation, trimmed (n = 1..=20).
pub fn custom_code(rest: &BTreeMap<String, Value>, n: usize) -> Option<String> {
    code(
        rest.get(&format!("allocationCustom{n}Code"))
            .and_then(Value::as_str),
    )
}

/// How many allocation custom fields there are (§2.3: allocation 1–20).
pub const ALLOCATION_CUSTOM_FIELDS: usize = 20;

// ---- expense report (§2.7.1, S-CN13/S-CN14) ----

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpenseDocument {
    #[serde(default)]
    pub employee: Employee,
    pub report: Report,
    #[serde(default)]
    pub expense_entry: Vec<ExpenseEntry>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Employee {
    #[serde(default)]
    pub employee_id: Option<String>,
    #[serde(default)]
    pub employee_first_name: Option<String>,
    #[serde(default)]
    pub employee_last_name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    #[serde(default)]
    pub report_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub report_key: Option<String>,
    #[serde(default)]
    pub report_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_decimal")]
    pub total_approved_amount: Option<Decimal>,
    #[serde(default)]
    pub employee_currency_alpha_code: Option<String>,
    #[serde(default)]
    pub report_submit_date: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpenseEntry {
    #[serde(default)]
    pub entry_id: Option<String>,
    #[serde(default)]
    pub expense_type_code: Option<String>,
    #[serde(default)]
    pub expense_type_name: Option<String>,
    #[serde(default)]
    pub entry_date: Option<String>,
    #[serde(default)]
    pub entry_curr_alpha_code: Option<String>,
    #[serde(default, deserialize_with = "lenient_decimal")]
    pub entry_approved_amount: Option<Decimal>,
    #[serde(default)]
    pub entry_is_personal: Option<String>,
    #[serde(default)]
    pub report_entry_pat_key: Option<String>,
    #[serde(default)]
    pub entry_description: Option<String>,
    #[serde(default)]
    pub entry_vendor_description: Option<String>,
    #[serde(default)]
    pub allocation: Vec<ExpenseAllocation>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpenseAllocation {
    #[serde(default)]
    pub allocation_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_decimal")]
    pub allocation_percentage: Option<Decimal>,
    /// An ARRAY of journal rows per allocation on expense documents (§2.7.1).
    #[serde(default)]
    pub journal: Vec<JournalRow>,
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalRow {
    #[serde(default)]
    pub journal_payer: Option<String>,
    #[serde(default)]
    pub journal_payee: Option<String>,
    #[serde(default)]
    pub journal_account_code: Option<String>,
    #[serde(default, deserialize_with = "lenient_decimal")]
    pub amount_gross: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient_decimal")]
    pub amount_gross_card: Option<Decimal>,
}

// ---- acknowledgements and confirmations (§2.3) ----

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AcknowledgeRequest<'a> {
    pub ids: Vec<&'a str>,
    pub system_id: &'a str,
}

/// One item of an acknowledge / posting / payment answer: the `code` and the result string.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemResult {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub doc_id: Option<String>,
    #[serde(default)]
    pub acknowledge_result: Option<String>,
    #[serde(default)]
    pub posting_confirmation_result: Option<String>,
    #[serde(default)]
    pub payment_confirmation_result: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostingConfirmations {
    pub system_id: String,
    pub posting_confirmations: Vec<PostingConfirmation>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostingConfirmation {
    pub doc_id: String,
    /// `success` | `error`.
    pub overall_posting_status_code: String,
    pub posting_docs: Vec<PostingDoc>,
    pub system_messages: Vec<SystemMessage>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostingDoc {
    pub company_id: String,
    /// ≤80.
    pub document_number: String,
    /// A string in the example, int32 in the table (§2.3); the example's form is sent.
    pub fiscal_year: String,
    pub payment_relevant_line_items: Vec<Value>,
    /// `YYYY-MM-DD`.
    pub posting_date: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemMessage {
    pub message_id: String,
    pub message_language: String,
    /// ≤1300, shown in Concur's audit trail.
    pub message_short_text: String,
    pub message_long_text: String,
}

/// `POST …/paymentconfirmations` (§2.3).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentConfirmations {
    pub system_id: String,
    pub processing_confirmation: Vec<PaymentConfirmation>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentConfirmation {
    pub doc_id: String,
    /// `CP` completely paid, `PP` partially paid, `RE` reversal, `OB` obsolete.
    pub processing_status_code: String,
    pub clearing_details: Vec<ClearingDetail>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClearingDetail {
    /// ISO instant.
    pub clearing_date: String,
    /// A JSON number in the sample; sent as one, exactly (never a float).
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub clearing_amount: Decimal,
    pub clearing_currency: String,
    pub receiver: Receiver,
    pub clearing_reference: ClearingReference,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Receiver {
    pub receiver_id: String,
    pub receiver_name: String,
    /// `EMPLOYEE`.
    pub receiver_type: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClearingReference {
    pub company_code: String,
    pub financial_document_id: String,
    pub fiscal_year: String,
    /// Unique per confirmation (§2.3): a repeat answers 298 NOOP.
    pub payment_ref: String,
    /// `E` (EFT) or `C` (check).
    pub payment_method: String,
}

// ---- Invoice Vendor API v3.1 (§2.7.5) ----

/// One invoice vendor, as sent (POST/PUT) and as read back (with `StatusList`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvoiceVendor {
    pub vendor_code: String,
    pub address_code: String,
    #[serde(default)]
    pub vendor_name: Option<String>,
    #[serde(default)]
    pub address1: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
    pub country_code: String,
    pub currency_code: String,
    /// `Y` | `N`.
    #[serde(default)]
    pub approved: Option<String>,
    #[serde(default, skip_serializing)]
    pub status_list: Vec<VendorStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VendorStatus {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub record_number: Option<i64>,
    #[serde(default, rename = "Type")]
    pub kind: Option<String>,
}

/// The collection of requests and answers: `Vendor` (required on requests) and `Items` (the
/// result collection); public clients send both (S-CN20).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VendorCollection {
    #[serde(default)]
    pub vendor: Vec<InvoiceVendor>,
    #[serde(default)]
    pub items: Vec<InvoiceVendor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_dates_and_codes_read_as_concur_writes_them() {
        assert_eq!(decimal_of(&serde_json::json!("0E-8")), Some(Decimal::ZERO));
        let v: Value = serde_json::from_str("0E-8").unwrap();
        assert_eq!(decimal_of(&v), Some(Decimal::ZERO));
        let v: Value = serde_json::from_str("50.00000000").unwrap();
        assert_eq!(decimal_of(&v), Some("50".parse().unwrap()));
        assert_eq!(date_of("08/09/2018"), NaiveDate::from_ymd_opt(2018, 8, 9));
        assert_eq!(
            date_of("2018-02-17T00:00:00.000Z"),
            NaiveDate::from_ymd_opt(2018, 2, 17)
        );
        assert_eq!(code(Some("2000   ")).as_deref(), Some("2000"));
        assert_eq!(code(Some("   ")), None);
    }

    #[test]
    fn a_document_reads_as_an_object_or_as_text() {
        let as_text: FiDocument = serde_json::from_value(serde_json::json!({
            "id": "a", "document": "{\"requestHeader\": {}}"
        }))
        .unwrap();
        let as_json: FiDocument = serde_json::from_value(serde_json::json!({
            "id": "a", "document": {"requestHeader": {}}
        }))
        .unwrap();
        assert_eq!(
            as_text.document_object().unwrap(),
            as_json.document_object().unwrap()
        );
    }
}
