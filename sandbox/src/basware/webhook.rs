//! Push notifications (§3.8): `POST /v1/subscriptions` checks the endpoint with a
//! `ConnectionTest` notification (it must answer 200), then notifications are signed in
//! `X-BWAPI-Signature-256` with the subscription's `webhookAuthenticationToken`
//! (apis/README.md decision: HMAC-SHA256 over the raw UTF-8 body).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{BaswareSim, error};

/// The signature header (apis/README.md decision).
pub const SIGNATURE_HEADER: &str = "X-BWAPI-Signature-256";

/// How the signature is written. Doubt (§3.8 [U]): encoding and prefix were found nowhere; the
/// connector must accept all three, so the simulator can send each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignatureFormat {
    /// Lowercase hex.
    Hex,
    /// `sha256=<lowercase hex>` (GitHub's convention).
    PrefixedHex,
    /// Standard base64.
    Base64,
}

/// HMAC-SHA256(`secret`, `body`) written as `format`.
pub fn signature(secret: &str, body: &[u8], format: SignatureFormat) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    let raw = mac.finalize().into_bytes();
    match format {
        SignatureFormat::Hex => hex::encode(raw),
        SignatureFormat::PrefixedHex => format!("sha256={}", hex::encode(raw)),
        SignatureFormat::Base64 => base64::engine::general_purpose::STANDARD.encode(raw),
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Subscription {
    pub task_type: String,
    #[serde(default)]
    pub task_sub_type: Option<String>,
    pub subscription_type: String,
    #[serde(rename = "notificationWebhookURL")]
    pub notification_webhook_url: String,
    pub webhook_authentication_token: String,
}

async fn send(sim: &BaswareSim, sub: &Subscription, payload: &Value) -> reqwest::Result<u16> {
    let body = serde_json::to_vec(payload).expect("JSON value serializes");
    let sig = signature(
        &sub.webhook_authentication_token,
        &body,
        sim.inner.cfg.signature_format,
    );
    let resp = sim
        .inner
        .http
        .post(&sub.notification_webhook_url)
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, sig)
        .body(body)
        .send()
        .await?;
    Ok(resp.status().as_u16())
}

/// `POST /v1/subscriptions`: a JSON array; each endpoint must answer the `ConnectionTest` with
/// 200 or the whole request is refused (Doubt: the refusal status is not documented; 400).
pub(crate) async fn subscribe(State(sim): State<BaswareSim>, body: Bytes) -> Response {
    let Ok(subs) = serde_json::from_slice::<Vec<Subscription>>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "VALIDATION",
            "SCHEMA_VALIDATION_ERROR",
            "A JSON array of subscriptions is expected.",
        );
    };
    for sub in &subs {
        if sub.subscription_type != "Webhook" || sub.webhook_authentication_token.is_empty() {
            return error(
                StatusCode::BAD_REQUEST,
                "VALIDATION",
                "SCHEMA_VALIDATION_ERROR",
                "subscriptionType must be Webhook, with a webhookAuthenticationToken.",
            );
        }
        let test = json!({
            "taskId": uuid::Uuid::new_v4().to_string(),
            "taskStatus": "New",
            "taskType": "ConnectionTest",
            "documentId": "",
        });
        match send(&sim, sub, &test).await {
            Ok(200) => {}
            other => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION",
                    "DATA_VALIDATION_FAILED",
                    &format!(
                        "The endpoint did not answer the ConnectionTest with 200 ({:?}).",
                        other.map_err(|e| e.to_string())
                    ),
                );
            }
        }
    }
    sim.inner.subscriptions.lock().unwrap().extend(subs.clone());
    Json(serde_json::to_value(subs).expect("serializes")).into_response()
}

/// `GET /v1/subscriptions` (the authentication token is not shown back).
pub(crate) async fn list_subscriptions(State(sim): State<BaswareSim>) -> Response {
    let subs = sim.inner.subscriptions.lock().unwrap().clone();
    let shown: Vec<Value> = subs
        .iter()
        .map(|s| {
            json!({
                "taskType": s.task_type, "taskSubType": s.task_sub_type,
                "subscriptionType": s.subscription_type,
                "notificationWebhookURL": s.notification_webhook_url,
            })
        })
        .collect();
    if shown.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "VALIDATION",
            "ENTITY_NOT_FOUND",
            "No subscriptions.",
        );
    }
    Json(Value::Array(shown)).into_response()
}

impl BaswareSim {
    /// (taskType, notificationWebhookURL) of every subscription, oldest first.
    pub fn subscriptions(&self) -> Vec<(String, String)> {
        let subs = self.inner.subscriptions.lock().unwrap();
        subs.iter()
            .map(|s| (s.task_type.clone(), s.notification_webhook_url.clone()))
            .collect()
    }

    /// Sends an `AccountingDocuments`/`WaitingForTransfer` notification for `invoice_id` to
    /// every subscription of that task type (sub-type `WaitingForTransfer`, `All` or none);
    /// returns each receiver's status (an error as 0).
    pub async fn notify_document(&self, invoice_id: &str) -> Vec<u16> {
        let subs: Vec<Subscription> = self
            .inner
            .subscriptions
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.task_type == "AccountingDocuments")
            .filter(|s| {
                s.task_sub_type
                    .as_deref()
                    .is_none_or(|t| t == "WaitingForTransfer" || t == "All")
            })
            .cloned()
            .collect();
        let payload = json!({
            "taskId": uuid::Uuid::new_v4().to_string(),
            "taskStatus": "New",
            "taskType": "AccountingDocuments",
            "taskSubType": "WaitingForTransfer",
            "documentId": invoice_id,
            "expirationTime": (chrono::Utc::now() + chrono::Duration::hours(24)).to_rfc3339(),
        });
        let mut out = Vec::new();
        for s in &subs {
            out.push(send(self, s, &payload).await.unwrap_or(0));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_formats_carry_the_same_mac() {
        let hex = signature("k", b"body", SignatureFormat::Hex);
        assert_eq!(
            signature("k", b"body", SignatureFormat::PrefixedHex),
            format!("sha256={hex}")
        );
        let b64 = signature("k", b"body", SignatureFormat::Base64);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(hex::encode(raw), hex);
    }
}
