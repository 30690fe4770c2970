//! `POST /webhooks/basware/<integration>`: Basware's push notifications (§3.8), verified by
//! `X-BWAPI-Signature-256` (HMAC-SHA256 of the raw body with the subscription's
//! `webhookAuthenticationToken`; hex or base64, optional `sha256=`) before anything is read.
//! The `ConnectionTest` is answered 200; an `AccountingDocuments` notification only queues a
//! read of the document it names (the poll stays the backstop).

use serde::Deserialize;

use super::BaswareBc;
use crate::flows::{SecretLookup, WebhookReply, WebhookRequest};
use crate::model::DocumentKind;
use crate::ports::{Clock, Queue, SecretString, Store};
use crate::steps::Env;
use crate::steps::webhook::{MAX_BODY_BYTES, WebhookError, accept};
use crate::systems::basware::SIGNATURE_HEADER;
use crate::systems::signature::verify_hmac_sha256;

/// The channel name in the webhook path.
pub const CHANNEL: &str = "basware";

/// A notification body (required: taskId, taskStatus, taskType, documentId).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub task_type: String,
    #[serde(default)]
    pub task_sub_type: Option<String>,
    #[serde(default)]
    pub document_id: String,
}

/// The notification, once its signature is verified in constant time; nothing is parsed
/// before.
pub fn verified(
    secret: &SecretString,
    signature: Option<&str>,
    body: &[u8],
) -> Result<Notification, WebhookError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(WebhookError::TooLarge(body.len()));
    }
    verify_hmac_sha256(
        SIGNATURE_HEADER,
        secret.expose().as_bytes(),
        body,
        signature,
    )
    .map_err(|e| WebhookError::Unauthorized(e.to_string()))?;
    serde_json::from_slice(body)
        .map_err(|e| WebhookError::Malformed(format!("not a Basware notification: {e}")))
}

pub(super) async fn receive<Q: Queue, S: Store, C: Clock>(
    flow: &BaswareBc,
    env: &Env<Q, S, C>,
    secrets: &dyn SecretLookup,
    req: &WebhookRequest<'_>,
) -> WebhookReply {
    let refuse = |e: WebhookError| {
        tracing::warn!(error = %e, "Basware webhook refused");
        match e {
            WebhookError::Unauthorized(_) => WebhookReply::refused(),
            // The callback spec lists 200 and 422 only.
            WebhookError::Malformed(m) => WebhookReply::text(422, format!("{m}\n")),
            e => WebhookReply::text(e.http_status(), format!("{e}\n")),
        }
    };
    let Some(name) = &flow.webhook_secret else {
        tracing::warn!("Basware webhook refused: no webhook_secret configured");
        return WebhookReply::refused();
    };
    let secret = match secrets.secret(name).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "Basware webhook secret unavailable");
            return WebhookReply::text(500, "the webhook secret is unavailable\n");
        }
    };
    let n = match verified(&secret, req.header(SIGNATURE_HEADER), req.body) {
        Ok(n) => n,
        Err(e) => return refuse(e),
    };
    if req.method != "POST" {
        return WebhookReply::text(405, "Basware notifications are POSTed\n");
    }
    match n.task_type.as_str() {
        "ConnectionTest" => WebhookReply::text(200, "connection test ok\n"),
        "AccountingDocuments" if !n.document_id.trim().is_empty() => {
            let refs = [(n.document_id.clone(), None)];
            match accept(env, flow.name(), DocumentKind::Invoice, &refs).await {
                Ok(()) => WebhookReply::text(
                    200,
                    format!("queued Basware accounting document {}\n", n.document_id),
                ),
                Err(e) => refuse(e),
            }
        }
        "AccountingDocuments" => refuse(WebhookError::Malformed(
            "an AccountingDocuments notification without documentId".into(),
        )),
        other => {
            // Other task types are not ours; acknowledged so Basware does not resend.
            tracing::info!(task_type = other, sub_type = ?n.task_sub_type, "Basware notification ignored");
            WebhookReply::text(200, "ignored\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systems::signature::sign_hmac_sha256;

    #[test]
    fn a_forged_signature_is_refused_before_the_body_is_read() {
        let secret = SecretString::new("token");
        let body = br#"{"taskId":"1","taskStatus":"New","taskType":"AccountingDocuments","documentId":"a"}"#;
        let forged = sign_hmac_sha256(b"other", body);
        assert!(matches!(
            verified(&secret, Some(&forged), body),
            Err(WebhookError::Unauthorized(_))
        ));
        let good = sign_hmac_sha256(b"token", body);
        assert_eq!(
            verified(&secret, Some(&good), body).unwrap().document_id,
            "a"
        );
        // Plain hex, as the simulator sends by default.
        let plain = good.trim_start_matches("sha256=");
        assert!(verified(&secret, Some(plain), body).is_ok());
        assert!(matches!(
            verified(&secret, Some(&good), b"[1]"),
            Err(WebhookError::Unauthorized(_))
        ));
    }
}
