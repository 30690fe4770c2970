//! `POST /webhooks/<integration>/concur`: SAP Concur's `readyForIntegration` events (§2.4),
//! verified by `Concur-Signature` (RSA-PSS SHA-256 over the raw body, base64, with the
//! configured public key) before anything is read from them. An event only queues a read of
//! the document it names, by id (`facts.documentId`; its `href` is not followed: it names an
//! internal host in one version of the docs, §2.4); the poll stays the backstop.
//!
//! Mutual TLS (the client certificate `CN=webhook.api.concursolutions.com`) is terminated by
//! the transport in front of this (API Gateway's custom domain with a truststore, or `mlc run`'s
//! listener with `[runtime.webhook_tls]`), which hands over the verified subject; with
//! `webhook_client_cn` set, its CN is pinned here.

use serde::Deserialize;

use super::ConcurBc;
use crate::flows::{SecretLookup, WebhookReply, WebhookRequest};
use crate::model::DocumentKind;
use crate::ports::{Clock, Queue, Store};
use crate::steps::Env;
use crate::steps::webhook::{MAX_BODY_BYTES, WebhookError, accept};
use crate::systems::signature::verify_rsa_pss_sha256;

/// The channel name in the webhook path.
pub const CHANNEL: &str = "concur";
/// The signature header (§2.4).
pub const SIGNATURE_HEADER: &str = "Concur-Signature";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(default)]
    pub event_type: String,
    #[serde(default)]
    pub facts: Facts,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    #[serde(default)]
    pub document_id: String,
}

/// The event, once its signature is verified; nothing is parsed before.
pub fn verified(
    public_key_pem: &str,
    signature: Option<&str>,
    body: &[u8],
) -> Result<Event, WebhookError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(WebhookError::TooLarge(body.len()));
    }
    verify_rsa_pss_sha256(SIGNATURE_HEADER, public_key_pem, body, signature)
        .map_err(|e| WebhookError::Unauthorized(e.to_string()))?;
    serde_json::from_slice(body)
        .map_err(|e| WebhookError::Malformed(format!("not a Concur event: {e}")))
}

pub(super) async fn receive<Q: Queue, S: Store, C: Clock>(
    flow: &ConcurBc,
    env: &Env<Q, S, C>,
    secrets: &dyn SecretLookup,
    req: &WebhookRequest<'_>,
) -> WebhookReply {
    let refuse = |e: WebhookError| {
        tracing::warn!(error = %e, "Concur event refused");
        match e {
            WebhookError::Unauthorized(_) => WebhookReply::refused(),
            e => WebhookReply::text(e.http_status(), format!("{e}\n")),
        }
    };
    // Mutual TLS first: the transport verified the certificate; its CN is pinned here.
    if let Some(cn) = &flow.webhook_client_cn
        && req.client_cert_cn() != Some(cn.as_str())
    {
        return refuse(WebhookError::Unauthorized(format!(
            "the event came without a verified client certificate for CN={cn} (got {:?})",
            req.client_cert_subject
        )));
    }
    let Some(name) = &flow.webhook_public_key else {
        tracing::warn!("Concur event refused: no webhook_public_key configured");
        return WebhookReply::refused();
    };
    let key = match secrets.secret(name).await {
        Ok(k) => k,
        Err(e) => {
            // 5xx: ESS delivers again (§2.4).
            tracing::error!(error = %e, "Concur's public key unavailable");
            return WebhookReply::text(500, "the public key is unavailable\n");
        }
    };
    let event = match verified(key.expose(), req.header(SIGNATURE_HEADER), req.body) {
        Ok(e) => e,
        Err(e) => return refuse(e),
    };
    if req.method != "POST" {
        return WebhookReply::text(405, "Concur events are POSTed\n");
    }
    let kind = match event.event_type.as_str() {
        "invoice.readyForIntegration" => DocumentKind::Invoice,
        "expense.readyForIntegration" => DocumentKind::ExpenseReport,
        other => {
            // Other types are not read here; acknowledged so ESS does not deliver again.
            tracing::info!(event_type = other, "Concur event ignored");
            return WebhookReply::text(200, "ignored\n");
        }
    };
    let id = event.facts.document_id.trim().to_string();
    if id.is_empty() {
        return refuse(WebhookError::Malformed(
            "a readyForIntegration event without facts.documentId".into(),
        ));
    }
    // Doubt (§2.4): the sample's documentId has 20 characters, FIS ids 32 (§2.6 gotcha 3). An id
    // FIS cannot be asked by would be parked as unknown on every cycle: it is left to the poll.
    if id.len() != 32 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        tracing::warn!(document_id = %id, "Concur event names no FIS document id; left to the poll");
        return WebhookReply::text(200, "ignored: not a FIS document id; the poll reads it\n");
    }
    match accept(env, flow.name(), kind, &[(id.clone(), None)]).await {
        Ok(()) => WebhookReply::text(200, format!("queued Concur document {id}\n")),
        Err(e) => refuse(e),
    }
}
