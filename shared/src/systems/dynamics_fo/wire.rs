//! F&O's JSON (d365-fo.md B3, B4, B9): data-entity field names exactly as OData spells them
//! (PascalCase, case-sensitive), amounts as JSON numbers read and written exactly.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::systems::wire::{decimal_number, decimal_opt};

/// B3: `{"error":{"code":"","message":"An error has occurred.","innererror":{"message":…,"type":…}}}`.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub innererror: Option<InnerError>,
}

#[derive(Debug, Deserialize)]
pub struct InnerError {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// A pending vendor invoice header (`VendorInvoiceHeaders`, B4.1).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct InvoiceHeader {
    #[serde(rename = "@odata.etag", default)]
    pub etag: Option<String>,
    #[serde(rename = "dataAreaId")]
    pub data_area_id: String,
    #[serde(rename = "HeaderReference")]
    pub header_reference: String,
    #[serde(rename = "InvoiceNumber", default)]
    pub invoice_number: String,
    #[serde(rename = "VendorAccount", default)]
    pub vendor_account: String,
    #[serde(rename = "InvoiceAccount", default)]
    pub invoice_account: String,
    #[serde(rename = "Currency", default)]
    pub currency: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct NewInvoiceHeader {
    #[serde(rename = "dataAreaId")]
    pub data_area_id: String,
    #[serde(rename = "HeaderReference")]
    pub header_reference: String,
    #[serde(rename = "InvoiceNumber")]
    pub invoice_number: String,
    #[serde(rename = "VendorAccount")]
    pub vendor_account: String,
    #[serde(rename = "InvoiceAccount")]
    pub invoice_account: String,
    /// DateTimeOffset, even for a date (B4.3 note).
    #[serde(rename = "InvoiceDate")]
    pub invoice_date: String,
    #[serde(rename = "Currency")]
    pub currency: String,
    #[serde(rename = "InvoiceDescription")]
    pub description: String,
}

/// A pending vendor invoice line (`VendorInvoiceLines`, B4.2).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct InvoiceLine {
    #[serde(rename = "dataAreaId")]
    pub data_area_id: String,
    #[serde(rename = "HeaderReference")]
    pub header_reference: String,
    #[serde(rename = "InvoiceLineNumber")]
    pub invoice_line_number: i64,
    #[serde(rename = "NetAmount", default, deserialize_with = "decimal_opt")]
    pub net_amount: Option<Decimal>,
    #[serde(rename = "MainAccountDisplayValue", default)]
    pub main_account_display_value: String,
    #[serde(rename = "DimensionDisplayValue", default)]
    pub dimension_display_value: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct NewInvoiceLine {
    #[serde(rename = "dataAreaId")]
    pub data_area_id: String,
    #[serde(rename = "HeaderReference")]
    pub header_reference: String,
    #[serde(rename = "InvoiceLineNumber")]
    pub invoice_line_number: i64,
    #[serde(rename = "Currency")]
    pub currency: String,
    #[serde(rename = "LineDescription")]
    pub description: String,
    /// Ledger dimension format: main account first (B5).
    #[serde(rename = "MainAccountDisplayValue")]
    pub main_account_display_value: String,
    #[serde(rename = "NetAmount", serialize_with = "decimal_number")]
    pub net_amount: Decimal,
}

/// A posted vendor invoice (`VendInvoiceJourBiEntities`, B9.7).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct PostedInvoice {
    #[serde(rename = "dataAreaId")]
    pub data_area_id: String,
    #[serde(rename = "InvoiceId", default)]
    pub invoice_id: String,
    #[serde(rename = "InvoiceAccount", default)]
    pub invoice_account: String,
    #[serde(rename = "LedgerVoucher", default)]
    pub ledger_voucher: String,
    #[serde(rename = "InvoiceAmount", default, deserialize_with = "decimal_opt")]
    pub invoice_amount: Option<Decimal>,
    #[serde(rename = "CurrencyCode", default)]
    pub currency_code: String,
}

/// A vendor transaction (`VendTransBiEntities`, B9.6): what says whether an invoice is paid.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct VendorTransaction {
    #[serde(rename = "dataAreaId")]
    pub data_area_id: String,
    #[serde(rename = "Invoice", default)]
    pub invoice: String,
    #[serde(rename = "AccountNum", default)]
    pub account_num: String,
    #[serde(rename = "Voucher", default)]
    pub voucher: String,
    #[serde(rename = "AmountCur", default, deserialize_with = "decimal_opt")]
    pub amount_cur: Option<Decimal>,
    #[serde(rename = "SettleAmountCur", default, deserialize_with = "decimal_opt")]
    pub settle_amount_cur: Option<Decimal>,
    #[serde(rename = "CurrencyCode", default)]
    pub currency_code: String,
    /// `1900-01-01T00:00:00Z` while open.
    #[serde(rename = "Closed", default)]
    pub closed: String,
    #[serde(rename = "LastSettleDate", default)]
    pub last_settle_date: String,
}

/// F&O's "no date".
pub const NULL_DATE: &str = "1900-01-01T00:00:00Z";

impl VendorTransaction {
    /// B9.6's rule: paid ⇔ `Closed` is a real date, or the settled amount reaches the amount
    /// (absolute values: the sign of a vendor invoice's amount is [UNCONFIRMED]).
    pub fn is_paid(&self) -> bool {
        let closed = !self.closed.is_empty() && !self.closed.starts_with("1900-01-01");
        let amount = self.amount_cur.unwrap_or_default().abs();
        let settled = self.settle_amount_cur.unwrap_or_default().abs();
        closed || (!amount.is_zero() && settled >= amount)
    }
}

/// A vendor (`VendorsV2`, B4.4).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Vendor {
    #[serde(rename = "@odata.etag", default)]
    pub etag: Option<String>,
    #[serde(rename = "dataAreaId")]
    pub data_area_id: String,
    #[serde(rename = "VendorAccountNumber")]
    pub vendor_account_number: String,
    #[serde(rename = "VendorOrganizationName", default)]
    pub name: String,
    #[serde(rename = "CurrencyCode", default)]
    pub currency_code: String,
    #[serde(rename = "OnHoldStatus", default)]
    pub on_hold_status: String,
}

/// A legal entity (`LegalEntities`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct LegalEntity {
    #[serde(rename = "LegalEntityId")]
    pub id: String,
    #[serde(rename = "Name", default)]
    pub name: String,
}

/// A new vendor in one legal entity (`VendorsV2`, B4.4; the community's minimal create).
#[derive(Clone, Debug, Serialize)]
pub struct NewVendor {
    #[serde(rename = "dataAreaId")]
    pub data_area_id: String,
    #[serde(rename = "VendorAccountNumber")]
    pub vendor_account_number: String,
    #[serde(rename = "VendorOrganizationName")]
    pub name: String,
    #[serde(rename = "VendorPartyType")]
    pub party_type: String,
}

/// A purchase order header (`PurchaseOrderHeadersV2`, B4.3).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct PurchaseOrderHeader {
    #[serde(rename = "@odata.etag", default)]
    pub etag: Option<String>,
    #[serde(rename = "dataAreaId")]
    pub data_area_id: String,
    #[serde(rename = "PurchaseOrderNumber")]
    pub number: String,
    #[serde(rename = "OrderVendorAccountNumber", default)]
    pub vendor_account: String,
    #[serde(rename = "VendorOrderReference", default)]
    pub vendor_order_reference: String,
}

/// A new purchase order header; F&O numbers it (B3: a number sequence assigns
/// `PurchaseOrderNumber`; a manual number needs the sequence to allow it).
#[derive(Clone, Debug, Serialize)]
pub struct NewPurchaseOrderHeader {
    #[serde(rename = "dataAreaId")]
    pub data_area_id: String,
    #[serde(rename = "OrderVendorAccountNumber")]
    pub vendor_account: String,
    #[serde(rename = "CurrencyCode")]
    pub currency: String,
    /// The source's PO number: the natural key a lost create is found again by.
    #[serde(rename = "VendorOrderReference")]
    pub vendor_order_reference: String,
    #[serde(rename = "PurchaseOrderName")]
    pub name: String,
}

/// A purchase order line (`PurchaseOrderLinesV2`, B4.3).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct PurchaseOrderLine {
    #[serde(rename = "@odata.etag", default)]
    pub etag: Option<String>,
    #[serde(rename = "LineNumber")]
    pub line_number: i64,
    #[serde(rename = "LineDescription", default)]
    pub description: String,
    #[serde(rename = "MainAccountIdDisplayValue", default)]
    pub main_account_display: String,
    #[serde(
        rename = "OrderedPurchaseQuantity",
        default,
        deserialize_with = "decimal_opt"
    )]
    pub quantity: Option<Decimal>,
    #[serde(rename = "PurchasePrice", default, deserialize_with = "decimal_opt")]
    pub price: Option<Decimal>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NewPurchaseOrderLine {
    #[serde(rename = "dataAreaId")]
    pub data_area_id: String,
    #[serde(rename = "PurchaseOrderNumber")]
    pub order_number: String,
    #[serde(rename = "LineNumber")]
    pub line_number: i64,
    #[serde(rename = "LineDescription")]
    pub description: String,
    #[serde(rename = "MainAccountIdDisplayValue")]
    pub main_account_display: String,
    #[serde(rename = "OrderedPurchaseQuantity", serialize_with = "decimal_number")]
    pub quantity: Decimal,
    #[serde(rename = "PurchasePrice", serialize_with = "decimal_number")]
    pub price: Decimal,
}
