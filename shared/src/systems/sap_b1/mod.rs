//! SAP Business One Service Layer (`../shared/apis/sap-b1.md`): a session-cookie login
//! (`B1SESSION` + `ROUTEID`, licence-bound sessions), OData v4 (`/b1s/v2`, v1 as a fallback),
//! day-granular `UpdateDate` change detection de-duplicated by content, relative next links.

mod client;
mod convert;
mod source;
pub mod wire;
mod writers;

pub use client::{B1Client, B1Error, B1Settings, EntitySet, version_of};
pub use convert::{
    ConvertError, base_purchase_orders, invoice_from_wire, purchase_order_from_wire,
    supplier_from_wire,
};
pub use source::{INVOICES, PAYMENT_LOOKBACK_DAYS, PAYMENTS, PURCHASE_ORDERS, SUPPLIERS};
pub use writers::{PartnerToWrite, PartnerWriter};
