//! `POST /oauth2/token` — client-credentials grant (coupa.md §1.1).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{CoupaSim, Token};

fn oauth_error(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({ "error": code }))).into_response()
}

/// A scope looks like `service.object.right` (§1.1), or is one of the OpenID names
/// UiPath adds. Commas are refused: the docs say the list is space-separated.
fn scope_is_well_formed(s: &str) -> bool {
    const OIDC: &[&str] = &["email", "login", "offline_access", "openid", "profile"];
    if OIDC.contains(&s) {
        return true;
    }
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
}

pub(crate) async fn token(
    State(sim): State<CoupaSim>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    // §1.1: the token request is form-encoded; anything else is a bad request.
    let Ok(Form(f)) = form else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let cfg = &sim.inner.cfg;
    match f.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        None => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request"),
        Some(_) => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
    if f.get("client_id") != Some(&cfg.client_id)
        || f.get("client_secret") != Some(&cfg.client_secret)
    {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let scope = f.get("scope").map(|s| s.trim()).unwrap_or("");
    let scopes: Vec<String> = scope.split_whitespace().map(str::to_owned).collect();
    if scopes.is_empty() || !scopes.iter().all(|s| scope_is_well_formed(s)) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope");
    }
    let access_token = hex::encode(rand::random::<[u8; 24]>());
    sim.inner.tokens.lock().unwrap().insert(
        access_token.clone(),
        Token {
            expires: Instant::now() + Duration::from_secs(cfg.token_ttl_secs),
            scopes: scopes.clone(),
        },
    );
    sim.inner.tokens_issued.fetch_add(1, Ordering::SeqCst);
    Json(json!({
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": cfg.token_ttl_secs,
        "scope": scopes.join(" "),
    }))
    .into_response()
}

impl CoupaSim {
    /// The token's scopes if it was issued and has not expired server-side.
    pub(crate) fn valid_token_scopes(&self, token: &str) -> Option<Vec<String>> {
        let tokens = self.inner.tokens.lock().unwrap();
        tokens
            .get(token)
            .filter(|t| Instant::now() < t.expires)
            .map(|t| t.scopes.clone())
    }
}
