//! What every step shares around its own work: the ledger lease, completing or releasing a
//! claim, unparking the source document, and writing the audit trail.

use std::time::Duration;

use super::{Env, IngestMessage, StepError};
use crate::ports::{AuditItem, Clock, LedgerKey, Queue, Store};

/// How long a claim protects a document from a second worker. The holder renews it every third
/// of this while it writes (a slow answer does not let the claim run out); short enough that a
/// crashed worker's document is picked up on the next redelivery.
pub const CLAIM_LEASE: Duration = Duration::from_secs(90);

pub(crate) async fn complete<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    key: &LedgerKey,
    owner: &str,
    id: &str,
    number: &str,
) -> Result<(), StepError> {
    env.store
        .complete(key, owner, id, number)
        .await
        .map_err(|e| StepError::new("completing the ledger", e))
}

pub(crate) async fn release<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    key: &LedgerKey,
    owner: &str,
) {
    if let Err(e) = env.store.release(key, owner).await {
        tracing::warn!(%key, error = %e, "could not release the ledger claim; it expires with its lease");
    }
}

pub(crate) async fn write<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    item: AuditItem,
) -> Result<(), StepError> {
    env.store
        .append_audit(&item)
        .await
        .map_err(|e| StepError::new("writing the audit trail", e))
}

/// `true`: it was parked.
pub(crate) async fn unpark<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    msg: &IngestMessage,
) -> Result<bool, StepError> {
    env.store
        .unpark(&msg.integration, msg.kind.as_str(), &msg.source_id)
        .await
        .map_err(|e| StepError::new("unparking", e))
}

/// Writes `item` once under `once`; a repeat is counted on the row already written.
pub(crate) async fn write_once<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    item: AuditItem,
    once: &str,
) -> Result<bool, StepError> {
    env.store
        .append_audit_once(&item, once)
        .await
        .map_err(|e| StepError::new("writing the audit trail", e))
}
