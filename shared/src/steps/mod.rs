//! The pipeline steps, as plain async functions over the ports (queue, store, clock, and the
//! system ports `Source` and `Writer`); they name no system. The same functions run inside
//! `mlc` (embedded) and inside the Lambda functions (AWS); each integration's flow
//! (`crate::flows`) composes them with its systems and mapping rules.
//!
//! webhook → ingest queue ← poll; ingest → map → post queue → post (the one writer) → target.

mod audit;
pub mod bulk;
pub(crate) mod claim;
pub mod lease;
pub mod map;
mod messages;
pub mod poll;
pub mod post;
pub mod webhook;
pub mod write;

pub use audit::{DocumentState, audit_item, current_states, once_key};
pub use messages::{
    CARRIED_DOCUMENT_MAX_AGE, CarriedDocument, IngestMessage, MAX_CARRIED_MESSAGE_BYTES,
    PostEnvelope,
};

use std::time::Duration;

use crate::ports::{Clock, Queue, Store, SystemError};

/// The ports a step works with.
pub struct Env<Q, S, C> {
    pub queue: Q,
    pub store: S,
    pub clock: C,
    /// How long a ledger claim holds off other workers; the writer renews it every third of
    /// this while it works. [`claim::CLAIM_LEASE`] unless a test shortens it.
    pub claim_lease: Duration,
}

impl<Q: Queue, S: Store, C: Clock> Env<Q, S, C> {
    pub fn new(queue: Q, store: S, clock: C) -> Self {
        Self {
            queue,
            store,
            clock,
            claim_lease: claim::CLAIM_LEASE,
        }
    }

    /// The same ports with another claim lease (tests that need a lease to run out quickly).
    pub fn with_claim_lease(mut self, lease: Duration) -> Self {
        self.claim_lease = lease;
        self
    }
}

/// A step that did not finish, and what the runtime must do about it. Outcomes that need a
/// person are not errors: they are parked, with the reason in the audit trail.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Try again later (the queue redelivers with backoff, and dead-letters after its maximum
    /// number of deliveries), never earlier than `after` when the server asked for a wait.
    #[error("{reason}")]
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// No retry can make this message succeed (it cannot be decoded, it names what does not
    /// exist): dead-letter it at once, audited, without spending its deliveries.
    #[error("{0}")]
    Poison(String),
    /// The integration, not the message, is at fault (credentials refused, a secret missing):
    /// back the whole integration off; the message keeps its deliveries.
    #[error("{reason}")]
    Systemic {
        reason: String,
        after: Option<Duration>,
    },
}

impl StepError {
    /// A retryable failure with its context ("reading the ledger: …").
    pub fn new(context: &str, e: impl std::fmt::Display) -> Self {
        Self::retry(format!("{context}: {e}"))
    }

    pub fn retry(reason: impl Into<String>) -> Self {
        StepError::Retry {
            reason: reason.into(),
            after: None,
        }
    }

    /// A failure of an external system, classified: refused credentials are systemic, the
    /// server's `Retry-After` travels with a retry, everything else is retried.
    pub fn system(context: &str, e: impl Into<SystemError>) -> Self {
        let e = e.into();
        let reason = format!("{context}: {e}");
        match e {
            SystemError::Unauthorized(_) => StepError::Systemic {
                reason,
                after: None,
            },
            e => StepError::Retry {
                reason,
                after: e.retry_after(),
            },
        }
    }

    /// The least wait before the next attempt that the server asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            StepError::Retry { after, .. } | StepError::Systemic { after, .. } => *after,
            StepError::Poison(_) => None,
        }
    }
}
