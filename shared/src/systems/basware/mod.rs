//! Basware Purchase-to-Pay API (`../shared/apis/basware.md` §3): OAuth client credentials with
//! Basic auth and a required scope on its own token URL, accounting documents as a state queue
//! (`WaitingForTransfer`, acknowledge, transfer and payment responses), the list's 302 followed
//! without credentials, paging by the `x-amz-meta-continuationtoken` header.

mod client;
mod convert;
mod source;
pub mod wire;
mod writers;

pub use client::{
    Acknowledged, BaswareClient, BaswareError, BaswareSettings, CONTINUATION_HEADER, ListPage,
    PaymentSent, WAITING_FOR_TRANSFER,
};
pub use convert::{ConvertError, SEGMENTS, invoice_from_wire, is_credit_note};
pub use source::{ACCOUNTING_DOCUMENTS, BaswareSource};
pub use writers::{
    PaymentResponseWriter, RESPONSE_SETTLE, TransferDoc, TransferWriter, payment_code,
};

/// The webhook signature header (product decision; see `../shared/apis/README.md`).
pub const SIGNATURE_HEADER: &str = "X-BWAPI-Signature-256";
