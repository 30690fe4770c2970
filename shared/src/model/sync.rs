//! What the map step hands the post step for documents other than invoices: a purchase order
//! resolved for the ERP, a vendor to create, a payment to report back to the source.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Currency, Money};

/// How the ERP's copy of an order must end up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Issued (or changed): create it, or update it to match.
    Active,
    /// Closed in the source: leave the ERP's order as it is (receipts and bills go on there).
    Closed,
    /// Cancelled in the source: remove the ERP's order unless something was received on it.
    Cancelled,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedPurchaseOrder {
    pub source_id: String,
    pub version: DateTime<Utc>,
    /// The source's order number (Coupa `po-number`).
    pub number: String,
    pub state: OrderState,
    pub source_status: String,
    pub vendor_number: String,
    pub supplier_name: String,
    pub currency: Currency,
    pub order_date: Option<NaiveDate>,
    pub lines: Vec<ResolvedOrderLine>,
}

impl ResolvedPurchaseOrder {
    /// The reference each ERP line carries (BC `description2`, Text[50]), by which the order is
    /// found again when its id was never recorded.
    pub fn reference(&self) -> String {
        format!("Coupa PO {}", self.number)
            .chars()
            .take(50)
            .collect()
    }

    /// A digest of everything the ERP's copy is built from (not the source's timestamps, which
    /// have whole seconds and may not move between two quick changes): equal digests mean
    /// there is nothing new to write.
    pub fn content_digest(&self) -> String {
        let content = serde_json::json!([
            self.state,
            self.vendor_number,
            self.currency.to_string(),
            self.order_date,
            self.lines,
        ]);
        crate::digest::short_hex(content.to_string().as_bytes(), 24)
    }

    pub fn total(&self) -> Decimal {
        self.lines.iter().map(|l| l.quantity * l.unit_cost).sum()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedOrderLine {
    pub line_num: u32,
    pub description: String,
    pub gl_account: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub quantity: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub unit_cost: Decimal,
    pub dimensions: Vec<(String, String)>,
}

/// A source supplier with no ERP vendor, to be created as one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorToCreate {
    pub supplier_source_id: String,
    pub supplier_name: String,
    /// The value the supplier mapping is keyed by (supplier number, id or tax id).
    pub mapping_key: String,
    /// The vendor number to give it; `None` lets the ERP assign one from its series.
    pub number: Option<String>,
    pub tax_id: Option<String>,
}

/// An ERP invoice found paid, to be recorded on the source invoice exactly once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentBack {
    /// The source invoice's id (Coupa invoice id).
    pub source_id: String,
    pub source_document_number: Option<String>,
    pub target_id: String,
    pub target_number: Option<String>,
    pub amount: Money,
    pub date: NaiveDate,
    /// Unique per ERP payment, written into the source's payment notes, so a repeat is seen
    /// before it is sent again.
    pub reference: String,
}
