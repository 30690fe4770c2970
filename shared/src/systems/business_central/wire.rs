//! Business Central's JSON (business-central.md A6, A7): camelCase, decimals as JSON numbers,
//! `@odata.etag` on every entity. Reads tolerate missing fields; writes send only writable
//! ones (gotcha 2: a read-only field in a create is refused).

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::systems::wire::{decimal_number, decimal_opt};

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseInvoice {
    pub id: String,
    #[serde(rename = "@odata.etag")]
    pub etag: Option<String>,
    pub number: Option<String>,
    pub vendor_number: Option<String>,
    /// `vendorInvoiceNumber` on invoices, `vendorCreditMemoNumber` on credit memos: the
    /// vendor's own document number, half of the natural key.
    #[serde(alias = "vendorCreditMemoNumber")]
    pub vendor_invoice_number: Option<String>,
    /// "Draft", "Open", "Paid", "Canceled", "Corrective" (A6.2).
    pub status: Option<String>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub total_amount_including_tax: Option<Decimal>,
    /// The LCY code when the document is in local currency (A6.1 notes).
    pub currency_code: Option<String>,
    pub last_modified_date_time: Option<String>,
    /// Not BC's: set by the writer when the draft it goes on with may lack line dimensions (BC
    /// refused them nested in the deep insert, or the draft was already in BC), so finishing
    /// reads the lines and adds what is missing.
    #[serde(skip)]
    pub dimensions_pending: bool,
    /// `YYYY-MM-DD`; the date a posted document was posted on (SAP Concur's posting
    /// confirmation reports it).
    #[serde(default)]
    pub posting_date: Option<String>,
}

impl PurchaseInvoice {
    pub fn is_draft(&self) -> bool {
        self.status.as_deref() == Some("Draft")
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseInvoiceLine {
    pub id: String,
    pub sequence: Option<i32>,
    pub line_object_number: Option<String>,
    /// With `$expand=dimensionSetLines` only.
    #[serde(default)]
    pub dimension_set_lines: Option<Vec<DimensionSetLine>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DimensionSetLine {
    /// The dimension's id (one line per dimension and parent, A6.6).
    pub id: Option<String>,
    #[serde(rename = "@odata.etag")]
    pub etag: Option<String>,
    pub code: Option<String>,
    pub value_code: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewDimensionSetLine {
    pub code: String,
    pub value_code: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vendor {
    pub id: String,
    pub number: Option<String>,
    pub display_name: Option<String>,
    pub tax_registration_number: Option<String>,
    /// " " (not blocked), "Payment", "All" (A6.1).
    pub blocked: Option<String>,
    #[serde(default)]
    pub address_line1: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
    /// Country/region code ("US"), empty when not set.
    #[serde(default)]
    pub country: Option<String>,
    /// Empty for the local currency (A6.1).
    #[serde(default)]
    pub currency_code: Option<String>,
}

/// A vendor to create (A6.1 writable fields). Without `number` BC assigns one from its series.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewVendor {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_registration_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency_code: Option<String>,
}

/// A G/L account (A6.5, read-only in BC).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: String,
    pub number: Option<String>,
    pub display_name: Option<String>,
    pub blocked: Option<bool>,
    /// "Posting", "Heading", "Total", "Begin Total", "End Total": only Posting takes lines.
    pub account_type: Option<String>,
}

/// A dimension (A6.6, read-only in BC).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dimension {
    pub id: String,
    pub code: Option<String>,
}

/// A dimension value (A6.6, read-only in BC).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DimensionValue {
    pub id: String,
    pub code: Option<String>,
    pub dimension_id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// A purchase order with its lines (`$expand=purchaseOrderLines`), A6.4.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseOrder {
    pub id: String,
    #[serde(rename = "@odata.etag")]
    pub etag: Option<String>,
    pub number: Option<String>,
    pub vendor_number: Option<String>,
    /// "Draft", "In Review", "Open".
    pub status: Option<String>,
    #[serde(default)]
    pub purchase_order_lines: Option<Vec<PurchaseOrderLine>>,
    /// Not BC's: set by the writer when it created the order without its line dimensions (BC
    /// refused them nested in the deep insert), so finishing adds them.
    #[serde(skip)]
    pub dimensions_pending: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseOrderLine {
    pub id: String,
    #[serde(rename = "@odata.etag")]
    pub etag: Option<String>,
    pub sequence: Option<i32>,
    pub line_type: Option<String>,
    pub line_object_number: Option<String>,
    pub description: Option<String>,
    pub description2: Option<String>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub quantity: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub direct_unit_cost: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub received_quantity: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub invoiced_quantity: Option<Decimal>,
    /// With `$expand=purchaseOrderLines($expand=dimensionSetLines)` only.
    #[serde(default)]
    pub dimension_set_lines: Option<Vec<DimensionSetLine>>,
}

/// A purchase order line to create or the writable fields to change (order lines price by
/// `directUnitCost`, not `unitCost`: A6.4).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewPurchaseOrderLine {
    pub sequence: i32,
    pub line_type: String,
    pub line_object_number: String,
    pub description: String,
    /// Our reference to the source order ("Coupa PO 4711"): the natural key of an order, whose
    /// own `number` is read-only and assigned by BC (APIV2 page 30066: Editable = false).
    pub description2: String,
    #[serde(serialize_with = "decimal_number")]
    pub quantity: Decimal,
    #[serde(serialize_with = "decimal_number")]
    pub direct_unit_cost: Decimal,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewPurchaseOrder {
    pub vendor_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_date: Option<NaiveDate>,
    pub currency_code: String,
    pub purchase_order_lines: Vec<NewPurchaseOrderLine>,
}

/// A webhook subscription (A8). Not company-scoped; its key is a quoted string.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub subscription_id: String,
    #[serde(rename = "@odata.etag")]
    pub etag: Option<String>,
    pub notification_url: Option<String>,
    pub resource: Option<String>,
    pub client_state: Option<String>,
    pub expiration_date_time: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSubscription {
    pub notification_url: String,
    pub resource: String,
    pub client_state: String,
}

/// One item of a notification POST (A8): no entity data, only what changed.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub subscription_id: Option<String>,
    pub client_state: Option<String>,
    pub resource: Option<String>,
    /// "created", "updated", "deleted", "collection".
    pub change_type: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct NotificationBatch {
    pub value: Vec<Notification>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Company {
    pub id: String,
    pub name: Option<String>,
}

/// BC's error body: `{"error":{"code":"…","message":"…  CorrelationId:  …."}}` (A3).
#[derive(Clone, Debug, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ErrorDetail {
    pub code: Option<String>,
    pub message: Option<String>,
}
