//! What every step shares around its own work: the ledger claim a write to a target starts
//! with (done already, busy elsewhere, or ours to do), completing or releasing it, parking and
//! unparking the source document, and writing the audit trail.

use std::time::Duration;

use super::post::PostOutcome;
use super::write::CLAIM_LEASE;
use super::{Env, IngestMessage, StepError};
use crate::model::DocumentKind;
use crate::ports::{AuditItem, Claim, Clock, LedgerEntry, LedgerKey, Queue, Store};

pub(crate) enum Claimed {
    /// Ours: go on.
    Acquired(LedgerEntry),
    /// Nothing to do (done before, or held by another worker).
    Finished(PostOutcome),
}

pub(crate) async fn claim<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    key: &LedgerKey,
    owner: &str,
) -> Result<Claimed, StepError> {
    match env
        .store
        .claim(key, owner, env.clock.now(), CLAIM_LEASE)
        .await
        .map_err(|e| StepError::new("claiming the ledger", e))?
    {
        Claim::Acquired(e) => Ok(Claimed::Acquired(e)),
        Claim::Done(e) => Ok(Claimed::Finished(PostOutcome::AlreadyPosted {
            id: e.target_id.unwrap_or_default(),
            number: e.target_number.unwrap_or_default(),
        })),
        Claim::Busy(e) => {
            let left = (e.lease_until - env.clock.now())
                .to_std()
                .unwrap_or_default();
            Ok(Claimed::Finished(PostOutcome::Busy {
                owner: e.owner,
                retry_in: left + Duration::from_secs(1),
            }))
        }
    }
}

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

pub(crate) async fn unpark<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    msg: &IngestMessage,
) -> Result<(), StepError> {
    env.store
        .unpark(&msg.integration, msg.kind.as_str(), &msg.source_id)
        .await
        .map(|_| ())
        .map_err(|e| StepError::new("unparking", e))
}

/// Parks a document the target refused at the post step, with an ingest message that reads the
/// source again when retried, so a corrected document or mapping is picked up.
pub(crate) async fn park_for_retry<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    integration: &str,
    kind: DocumentKind,
    source_id: &str,
    version: Option<String>,
    number: Option<String>,
    why: &str,
) -> Result<(), StepError> {
    let ingest = IngestMessage {
        integration: integration.to_string(),
        kind,
        source_id: source_id.to_string(),
        version,
        via: "retry".into(),
    };
    super::map::park(env, &ingest, number, why.to_string()).await?;
    Ok(())
}
