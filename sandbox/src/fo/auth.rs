//! Microsoft Entra client-credentials token endpoint for F&O (d365-fo.md B1):
//! `POST /{tenant}/oauth2/v2.0/token` with `scope=https://{env-host}/.default` — the
//! environment's root, not `/data/.default` (B1 [CONFLICT]: one WSO2 page shows the `/data`
//! form; the stricter choice here accepts only the host-root form every other source uses).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::FoSim;

fn entra_error(status: StatusCode, error: &str, code: u32, text: &str) -> Response {
    let now = chrono::Utc::now();
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {text} Trace ID: {} Correlation ID: {} Timestamp: {}",
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
            now.format("%Y-%m-%d %H:%M:%SZ")
        ),
        "error_codes": [code],
        "timestamp": now.format("%Y-%m-%d %H:%M:%SZ").to_string(),
    });
    (status, Json(body)).into_response()
}

pub(crate) async fn token(
    State(sim): State<FoSim>,
    Path(tenant): Path<String>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let cfg = &sim.inner.cfg;
    if tenant != cfg.tenant {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            &format!("Tenant '{tenant}' not found."),
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
    if f.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if f.get("client_id") != Some(&cfg.client_id) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            "Application was not found in the directory.",
        );
    }
    if f.get("client_secret") != Some(&cfg.client_secret) {
        return entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided.",
        );
    }
    let scope = sim.scope();
    if f.get("scope") != Some(&scope) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            &format!(
                "The provided value for the input parameter 'scope' is not valid. Expected '{scope}'."
            ),
        );
    }
    let access_token = format!(
        "eyJ0eXAiOiJKV1Qi.fo.{}",
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

impl FoSim {
    pub(crate) fn token_valid(&self, token: &str) -> bool {
        self.inner
            .tokens
            .lock()
            .unwrap()
            .get(token)
            .is_some_and(|exp| Instant::now() < *exp)
    }
}
