//! SAP Concur (`../shared/apis/concur.md` §2): company-level OAuth with a rotating refresh
//! token and the geolocation from the token response (the platform's `RefreshTokenAuth`),
//! Financial Integration Service v4 (invoice payment requests and expense reports READY for
//! integration as a state queue, acknowledgements, posting confirmations).
//!
//! Payment confirmations (`CP`) of expense reports.
//!
//! Not built yet (issue #13): the Invoice Vendor API v3.1 (BC vendors → Concur),
//! `Concur-Signature` webhooks.

mod client;
pub mod convert;
mod source;
pub mod wire;
mod writers;

pub use client::{
    Acknowledged, ConcurClient, ConcurError, ConcurSettings, Confirmed, FIS_PREFIX, FORMAT_HEADER,
    ListPage, TOKEN_PATH,
};
pub use source::{AckOutcome, ConcurSource, EXPENSES, INVOICES, doc_type};
pub use writers::{
    CONFIRM_SETTLE, ConfirmDoc, PaymentConfirmationWriter, PostedDoc, PostingConfirmationWriter,
};
