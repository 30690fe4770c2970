//! Webhook step: verify the signature over the raw body, then enqueue a reference. A webhook is
//! only a trigger; the poll is the backstop, and the map step re-reads the document itself.

use super::{Env, IngestMessage, audit_item, once_key};
use crate::model::DocumentKind;
use crate::ports::{AuditStatus, Clock, Queue, QueueName, Step, Store};

/// Webhook bodies above this are refused before anything else is done with them.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// 401: nothing was read, nothing enqueued.
    #[error("{0}")]
    Unauthorized(String),
    /// 413
    #[error("the body has {0} bytes; the limit is {MAX_BODY_BYTES}")]
    TooLarge(usize),
    /// 400: signed, but not a document we can refer to.
    #[error("the body is not a document this webhook takes: {0}")]
    Malformed(String),
    /// 500: we could not enqueue; the sender should retry (and the poll will catch it anyway).
    #[error("could not enqueue: {0}")]
    Internal(String),
}

impl WebhookError {
    pub fn http_status(&self) -> u16 {
        match self {
            WebhookError::Unauthorized(_) => 401,
            WebhookError::TooLarge(_) => 413,
            WebhookError::Malformed(_) => 400,
            WebhookError::Internal(_) => 500,
        }
    }
}

/// Enqueues the documents a verified webhook named (the webhook is only a trigger: the map
/// step reads each document itself) and audits them as received. Call only after the
/// signature was checked over the raw body.
pub async fn accept<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    integration: &str,
    kind: DocumentKind,
    refs: &[(String, Option<String>)],
) -> Result<(), WebhookError> {
    let messages: Vec<IngestMessage> = refs
        .iter()
        .map(|(id, version)| IngestMessage {
            integration: integration.to_string(),
            kind,
            source_id: id.clone(),
            version: version.clone(),
            via: "webhook".into(),
            document: None,
        })
        .collect();
    env.queue
        .send(
            QueueName::Ingest,
            messages.iter().map(IngestMessage::to_outgoing).collect(),
        )
        .await
        .map_err(|e| WebhookError::Internal(e.to_string()))?;
    for m in &messages {
        let item = audit_item(
            env.clock.now(),
            integration,
            kind.as_str(),
            &m.source_id,
            Step::Webhook,
            AuditStatus::Received,
        );
        // A replayed webhook (same document and version) is counted on the first one's row.
        let once = once_key(&[
            "received",
            integration,
            kind.as_str(),
            &m.source_id,
            m.version.as_deref().unwrap_or_default(),
        ]);
        // The document is safely queued; a failed audit write must not make the sender retry.
        if let Err(e) = env.store.append_audit_once(&item, &once).await {
            tracing::warn!(error = %e, "audit write failed after enqueue");
        }
    }
    Ok(())
}
