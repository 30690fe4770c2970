//! Microsoft Entra client-credentials token endpoint (business-central.md A2):
//! `POST /{tenant}/oauth2/v2.0/token`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::json;

use super::BcSim;

/// A2: the only scope that yields a BC API token for client credentials.
pub const BC_SCOPE: &str = "https://api.businesscentral.dynamics.com/.default";

/// A2 Entra error body: `error`, `error_description` (AADSTS code first), `error_codes`, …
fn entra_error(status: StatusCode, error: &str, code: u32, text: &str) -> Response {
    let trace = uuid::Uuid::new_v4();
    let corr = uuid::Uuid::new_v4();
    let now = chrono::Utc::now();
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {corr} Timestamp: {}",
            now.format("%Y-%m-%d %H:%M:%SZ")
        ),
        "error_codes": [code],
        "timestamp": now.format("%Y-%m-%d %H:%M:%SZ").to_string(),
        "trace_id": trace,
        "correlation_id": corr,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (status, Json(body)).into_response()
}

/// Client credentials from HTTP Basic (RFC 6749 §2.3.1, which Entra supports — A2).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get("authorization")?.to_str().ok()?;
    let b64 = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let dec = |s: &str| crate::query::decode_component(s);
    Some((dec(id), dec(secret)))
}

pub(crate) async fn token(
    State(sim): State<BcSim>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let cfg = &sim.inner.cfg;
    if tenant != cfg.tenant {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    let Ok(Form(f)) = form else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        );
    };
    match f.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        None => {
            return entra_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            );
        }
        Some(other) => {
            return entra_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                &format!("The app requested an unsupported grant type '{other}'."),
            );
        }
    }
    let (client_id, secret) = match (f.get("client_id"), f.get("client_secret")) {
        (Some(id), Some(s)) => (id.clone(), s.clone()),
        _ => match basic_credentials(&headers) {
            Some(c) => c,
            None => {
                return entra_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_client",
                    7000216,
                    "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
                );
            }
        },
    };
    if client_id != cfg.client_id {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'."
            ),
        );
    }
    if secret != cfg.client_secret {
        return entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
        );
    }
    if f.get("scope").map(String::as_str) != Some(BC_SCOPE) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            &format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. Expected '{BC_SCOPE}'."
            ),
        );
    }
    // Opaque to clients (real tokens are JWTs, but clients must not parse them).
    let access_token = format!(
        "eyJ0eXAiOiJKV1Qi.{}",
        hex::encode(rand::random::<[u8; 24]>())
    );
    sim.inner.tokens.lock().unwrap().insert(
        access_token.clone(),
        Instant::now() + Duration::from_secs(cfg.token_ttl_secs),
    );
    sim.inner.tokens_issued.fetch_add(1, Ordering::SeqCst);
    Json(json!({
        "token_type": "Bearer",
        "expires_in": cfg.token_ttl_secs,
        "ext_expires_in": cfg.token_ttl_secs,
        "access_token": access_token,
    }))
    .into_response()
}

impl BcSim {
    pub(crate) fn token_valid(&self, token: &str) -> bool {
        self.inner
            .tokens
            .lock()
            .unwrap()
            .get(token)
            .is_some_and(|exp| Instant::now() < *exp)
    }
}
