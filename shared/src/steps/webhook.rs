//! Webhook step: verify the signature over the raw body, then enqueue a reference. A webhook is
//! only a trigger; the poll is the backstop, and the map step re-reads the document itself.

use super::{Env, IngestMessage, audit_item};
use crate::model::DocumentKind;
use crate::ports::{AuditStatus, Clock, Queue, QueueName, SecretString, Step, Store};
use crate::systems::coupa;
use crate::systems::signature::{SignatureError, verify_hmac_sha256};

/// Webhook bodies above this are refused before anything else is done with them.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// 401: nothing was read, nothing enqueued.
    #[error(transparent)]
    Unauthorized(#[from] SignatureError),
    /// 413
    #[error("the body has {0} bytes; the limit is {MAX_BODY_BYTES}")]
    TooLarge(usize),
    /// 400: signed, but not a document we can refer to.
    #[error("the body is not a Coupa invoice: {0}")]
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

/// A Coupa invoice pushed to us (`X-Coupa-Signature` = HMAC-SHA256 of the raw body).
/// Returns the Coupa invoice id that was enqueued.
pub async fn coupa_invoice<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    integration: &str,
    secret: &SecretString,
    signature: Option<&str>,
    body: &[u8],
) -> Result<String, WebhookError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(WebhookError::TooLarge(body.len()));
    }
    verify_hmac_sha256(
        coupa::SIGNATURE_HEADER,
        secret.expose().as_bytes(),
        body,
        signature,
    )?;
    let stub: coupa::wire::InvoiceStub =
        serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    let msg = IngestMessage {
        integration: integration.to_string(),
        kind: DocumentKind::Invoice,
        source_id: stub.id.to_string(),
        version: stub.updated_at.clone(),
        via: "webhook".into(),
    };
    env.queue
        .send(QueueName::Ingest, vec![msg.to_outgoing()])
        .await
        .map_err(|e| WebhookError::Internal(e.to_string()))?;
    let item = audit_item(
        env.clock.now(),
        integration,
        "invoice",
        &msg.source_id,
        Step::Webhook,
        AuditStatus::Received,
    );
    // The document is safely queued; a failed audit write must not make the sender retry.
    if let Err(e) = env.store.append_audit(&item).await {
        tracing::warn!(error = %e, "audit write failed after enqueue");
    }
    Ok(msg.source_id)
}
