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
    pub vendor_invoice_number: Option<String>,
    /// "Draft", "Open", "Paid", "Canceled", "Corrective" (A6.2).
    pub status: Option<String>,
    #[serde(default, deserialize_with = "decimal_opt")]
    pub total_amount_including_tax: Option<Decimal>,
    pub last_modified_date_time: Option<String>,
}

impl PurchaseInvoice {
    pub fn is_draft(&self) -> bool {
        self.status.as_deref() == Some("Draft")
    }
}

/// A draft purchase invoice with its lines, created in one deep insert.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewPurchaseInvoice {
    pub vendor_number: String,
    pub vendor_invoice_number: String,
    pub invoice_date: NaiveDate,
    pub currency_code: String,
    pub purchase_invoice_lines: Vec<NewPurchaseInvoiceLine>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewPurchaseInvoiceLine {
    pub sequence: i32,
    /// "Account": a G/L account line, `lineObjectNumber` = the G/L account number (A6.3).
    pub line_type: String,
    pub line_object_number: String,
    pub description: String,
    #[serde(serialize_with = "decimal_number")]
    pub quantity: Decimal,
    #[serde(serialize_with = "decimal_number")]
    pub unit_cost: Decimal,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseInvoiceLine {
    pub id: String,
    pub sequence: Option<i32>,
    pub line_object_number: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DimensionSetLine {
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
    pub blocked: Option<String>,
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
