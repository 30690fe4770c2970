//! The ports: the only things a step may call besides the external systems. Each runtime
//! provides adapters (`adapters::embedded` over SQLite, `adapters::aws` over SQS/DynamoDB/
//! Secrets Manager). Traits return `impl Future + Send` so steps stay generic and allocation-free.

mod audit;
mod clock;
mod queue;
mod secrets;
mod source;
mod store;
mod system;
mod writer;

pub use audit::{AuditFilter, AuditItem, AuditStatus, Step};
pub use clock::{Clock, SystemClock};
pub use queue::{Message, OutgoingMessage, Queue, QueueError, QueueName, dedup_id};
pub use secrets::{PutOutcome, SecretError, SecretString, SecretVersion, Secrets};
pub use source::{DocRef, Feed, FeedMode, FeedPage, Namespaced, Source, SourceDocument, Window};
pub use store::{
    Audit, Claim, Ledger, LedgerEntry, LedgerKey, LedgerState, Mappings, ParkedDoc, Parking, Store,
    StoreError, Watermark, Watermarks,
};
pub use system::SystemError;
pub use writer::{Absent, BatchState, BulkWriter, Change, Found, Writer, Written};
