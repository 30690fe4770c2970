use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{BankAccount, CodingRow, Company, Currency, LineKind, Money, PaymentTerms, TaxLine};

/// Which integration a document travels through (`../shared/DESIGN.md`, "The five integrations").
/// A short, stable, colon-free name: it is part of ledger keys and dedup ids.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IntegrationId(pub String);

impl std::fmt::Display for IntegrationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    Invoice,
    CreditNote,
    PurchaseOrder,
    Payment,
    Supplier,
    /// An employee's expense report (SAP Concur FIS `expense` documents).
    ExpenseReport,
}

impl DocumentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Invoice => "invoice",
            DocumentKind::CreditNote => "credit_note",
            DocumentKind::PurchaseOrder => "purchase_order",
            DocumentKind::Payment => "payment",
            DocumentKind::Supplier => "supplier",
            DocumentKind::ExpenseReport => "expense_report",
        }
    }
}

/// A supplier as the source system knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Supplier {
    pub source_id: String,
    pub number: Option<String>,
    pub name: String,
    pub tax_id: Option<String>,
}

/// The accounting coding of a line as the source gives it: a code and its segments.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountCoding {
    pub code: Option<String>,
    /// segment-1, segment-2, … in order; empty segments kept as `None` so positions stay right.
    pub segments: Vec<Option<String>>,
}

impl AccountCoding {
    /// 1-based segment lookup, as finance users number them.
    pub fn segment(&self, n: usize) -> Option<&str> {
        n.checked_sub(1)
            .and_then(|i| self.segments.get(i))
            .and_then(|s| s.as_deref())
            .filter(|s| !s.is_empty())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub line_num: u32,
    pub description: String,
    /// `None` for amount-only lines; the target decides how to represent them.
    pub quantity: Option<Decimal>,
    /// Unit price with the scale the source sent (4+ decimals are kept).
    pub unit_price: Decimal,
    pub amount: Decimal,
    pub account: AccountCoding,
    pub po_number: Option<String>,
    /// The line of `po_number` this line bills, when the source says (Coupa `order-line-num`).
    pub po_line_num: Option<u32>,
    /// Account, item or category line; account when the source does not say.
    #[serde(default)]
    pub kind: LineKind,
    /// Tax the source states on this line.
    #[serde(default)]
    pub tax: Vec<TaxLine>,
    /// The line's split over accounts / dimensions (Basware coding rows, Concur allocations);
    /// empty means `account` codes the whole line.
    #[serde(default)]
    pub coding: Vec<CodingRow>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceKind {
    Invoice,
    CreditNote,
}

/// Whether the source releases a document for posting, decided by the source's conversion
/// from the source's own rules (Coupa: status `approved`; Concur: `docStatus` `READY`;
/// Basware: `processingStatus` `WaitingForTransfer`; F&O / B1: approved and not cancelled).
/// Flows check this, never a source's status string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Readiness {
    Ready,
    /// Not to be posted (yet); the reason is for people (the audit trail, a skip message).
    NotReady(String),
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        matches!(self, Readiness::Ready)
    }
}

/// A document decoded without a readiness (written before there was one) is not ready: nothing
/// is posted that its source did not release.
impl Default for Readiness {
    fn default() -> Self {
        Readiness::NotReady("readiness not recorded".to_string())
    }
}

/// A supplier invoice or credit note, as read from the source. A credit note's amounts keep
/// the sign the source gives them (Coupa shows them negative). Filled by Coupa, Concur
/// (invoice payment requests), Basware (accounting documents) and SAP Business One.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub source_id: String,
    /// Source version (an instant); part of the dedup id.
    pub version: DateTime<Utc>,
    pub kind: InvoiceKind,
    /// The source's status as given, for display; whether to post is `readiness`.
    pub status: String,
    /// The supplier's own invoice number (BC `vendorInvoiceNumber`).
    pub number: String,
    pub supplier: Supplier,
    pub invoice_date: NaiveDate,
    pub total: Money,
    pub lines: Vec<InvoiceLine>,
    /// Whether the source releases it for posting, set by the source's conversion.
    #[serde(default)]
    pub readiness: Readiness,
    /// The company / legal entity it is addressed to in the source (Basware `companyCode`,
    /// Concur `companyId`), when the source has several.
    #[serde(default)]
    pub company: Option<Company>,
    /// Whether line amounts and prices include tax (F&O `IsPricesIncludeSalesTax`, B1 prices
    /// after VAT); `total` is always the gross total.
    #[serde(default)]
    pub amounts_include_tax: bool,
    /// Tax stated for the whole document (Basware `taxCode` / `taxSum1`, B1 `VatSum`), besides
    /// or instead of tax on the lines.
    #[serde(default)]
    pub tax: Vec<TaxLine>,
    #[serde(default)]
    pub due_date: Option<NaiveDate>,
    #[serde(default)]
    pub payment_terms: Option<PaymentTerms>,
    /// The bank account the invoice asks to be paid into (Basware `supplierBankIBAN`). Boxed:
    /// rarely there, and large.
    #[serde(default)]
    pub bank_account: Option<Box<BankAccount>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseOrderLine {
    pub line_num: u32,
    pub description: String,
    /// 1 for an amount-only line (the price is then the line amount).
    pub quantity: Decimal,
    /// Unit price with the scale the source sent (4+ decimals are kept).
    pub unit_price: Decimal,
    /// The line total as the source gives it, else quantity × unit price rounded to cents.
    pub amount: Decimal,
    /// Unit of measure code ("EA", "HR"), when the source gives one.
    pub uom: Option<String>,
    pub account: AccountCoding,
    /// Account, item or category line; account when the source does not say.
    #[serde(default)]
    pub kind: LineKind,
    #[serde(default)]
    pub tax: Vec<TaxLine>,
    /// The line's split over accounts / dimensions; empty means `account` codes the whole line.
    #[serde(default)]
    pub coding: Vec<CodingRow>,
}

/// A purchase order, as read from the source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseOrder {
    pub source_id: String,
    /// Source version (an instant, the last update); part of the dedup id.
    pub version: DateTime<Utc>,
    /// The source's own revision counter (Coupa `version`), when it gives one.
    pub revision: Option<i64>,
    pub number: String,
    /// Source status as given (Coupa: issued, closed, cancelled, buyer_hold, …).
    pub status: String,
    pub supplier: Supplier,
    /// The order date; when the source has none, the creation date in the source's offset.
    pub order_date: Option<NaiveDate>,
    pub currency: Currency,
    pub lines: Vec<PurchaseOrderLine>,
    /// The company / legal entity the order belongs to in the source (B1 company / branch).
    #[serde(default)]
    pub company: Option<Company>,
    /// Whether line prices include tax (F&O `ArePricesIncludingSalesTax`).
    #[serde(default)]
    pub amounts_include_tax: bool,
    #[serde(default)]
    pub payment_terms: Option<PaymentTerms>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Unique per payment in the paying system, so a repeat is detectable before sending.
    pub reference: String,
    pub amount: Money,
    pub date: NaiveDate,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlAccount {
    pub number: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dimension {
    pub code: String,
    pub values: Vec<String>,
}

/// An invoice whose vendor, G/L accounts and dimensions are resolved for the target ERP:
/// what the map step hands to the post step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedInvoice {
    pub source_id: String,
    pub version: DateTime<Utc>,
    pub kind: InvoiceKind,
    pub vendor_number: String,
    pub vendor_invoice_number: String,
    pub supplier_name: String,
    pub invoice_date: NaiveDate,
    pub total: Money,
    pub lines: Vec<ResolvedLine>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedLine {
    pub description: String,
    pub gl_account: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub quantity: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub unit_cost: Decimal,
    /// (dimension code, value code), in a stable order.
    pub dimensions: Vec<(String, String)>,
}
