//! The pipeline steps, as plain async functions over the ports and the system clients. The
//! same functions run inside `mlc` (embedded) and inside the Lambda functions (AWS).
//!
//! webhook → ingest queue ← poll; ingest → map → post queue → post → target.

mod audit;
mod claim;
pub mod map;
mod messages;
pub mod orders;
pub mod payments;
pub mod poll;
pub mod post;
pub mod resolve;
pub mod subscriptions;
pub mod suppliers;
pub mod webhook;

pub use audit::audit_item;
pub use messages::{IngestMessage, PostMessage, SyncMessage, SyncTask};

use crate::ports::{Clock, Queue, Store};

/// The ports a step works with.
pub struct Env<Q, S, C> {
    pub queue: Q,
    pub store: S,
    pub clock: C,
}

impl<Q: Queue, S: Store, C: Clock> Env<Q, S, C> {
    pub fn new(queue: Q, store: S, clock: C) -> Self {
        Self {
            queue,
            store,
            clock,
        }
    }
}

/// A step that did not finish: the message is retried later (and dead-lettered after the
/// queue's maximum number of receives). Outcomes that need a person are not errors: they are
/// parked, with the reason in the audit trail.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StepError(pub String);

impl StepError {
    pub fn new(context: &str, e: impl std::fmt::Display) -> Self {
        Self(format!("{context}: {e}"))
    }
}
