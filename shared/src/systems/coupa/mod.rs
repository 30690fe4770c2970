//! Coupa Core REST API (`../shared/apis/coupa.md`): OAuth 2.0 client credentials, hyphenated
//! JSON, money as decimal strings, `limit` ≤ 50 with offset paging (we page by `id[gt]`
//! instead, see `client.rs`), 25 requests/second.

mod client;
mod convert;
mod external;
mod source;
pub mod wire;
mod writers;

pub use client::{
    CoupaClient, CoupaError, CoupaSettings, DocRef, InvoiceRef, PAGE_SIZE, PaymentRecord,
    PollWindow,
};
pub use convert::{
    ConversionError, ConvertError, invoice_from_wire, purchase_order_from_wire, supplier_from_wire,
};

pub use external::{
    ExternalLine, ExternalOrder, ExternalOrderWriter, InvoiceLineToCreate, InvoiceToCreate,
    InvoiceWriter, SupplierToWrite, SupplierWriter,
};
pub use source::{INVOICES, PURCHASE_ORDERS, SUPPLIERS};
pub use writers::{PAYMENT_SETTLE, PaymentWriter};

/// The webhook signature header (product decision; see `../shared/apis/README.md`).
pub const SIGNATURE_HEADER: &str = "X-Coupa-Signature";
