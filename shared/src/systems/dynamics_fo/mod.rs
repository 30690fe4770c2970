//! Dynamics 365 Finance & Operations OData data entities (`../shared/apis/d365-fo.md`): Entra ID
//! client credentials scoped to the environment, every call in one legal entity (`dataAreaId`),
//! pending vendor invoices as a header then its lines (no deep insert), posted and paid status
//! read from the invoice journal and vendor transactions; a first load of many invoices as
//! Data Management packages (`dmf.rs`, `bulk.rs`, B6).

mod bulk;
mod client;
pub mod convert;
pub mod dmf;
mod invoices;
mod orders;
mod vendors;
pub mod wire;
mod writers;

pub use client::{FoClient, FoError, FoSettings, Key};
pub use convert::{DimensionFormat, FoInvoice, FoInvoiceLine};
pub use orders::{FoOrder, FoOrderLine, OrderWriter};
pub use vendors::{FoVendor, VendorWriter};
pub use writers::{CREATE_SETTLE, FoInvoiceRecord, InvoiceWriter};
