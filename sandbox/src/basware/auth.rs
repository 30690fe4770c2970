//! The token endpoint (§3.2) and the bearer/scope guard of `/v1/*`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::json;

use super::{BaswareSim, Token, error};

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": code, "error_description": description })),
    )
        .into_response()
}

/// `Authorization: Basic base64(client_id:client_secret)`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get("authorization")?.to_str().ok()?;
    v.get(..6).filter(|p| p.eq_ignore_ascii_case("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v[6..].trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// `<api>.read|write|delete` (§3.2, §3.11.7).
fn scope_is_well_formed(s: &str) -> bool {
    match s.split_once('.') {
        Some((api, right)) => {
            !api.is_empty()
                && api.chars().all(|c| c.is_ascii_alphanumeric())
                && matches!(right, "read" | "write" | "delete")
        }
        None => false,
    }
}

/// `POST /v1/tokens` (served at [`super::TOKEN_PATH`]).
pub(crate) async fn token(
    State(sim): State<BaswareSim>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    // §3.2: the token call is form-encoded (the API itself is JSON).
    let Ok(Form(f)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "form-encoded body expected",
        );
    };
    if f.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }
    // Doubt: whether the credentials may also travel in the form body is not said; the spec
    // shows Basic only, so only Basic is accepted.
    let cfg = &sim.inner.cfg;
    match basic_credentials(&headers) {
        Some((id, secret)) if id == cfg.client_id && secret == cfg.client_secret => {}
        _ => {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({ "error": "invalid_client" })),
            )
                .into_response();
        }
    }
    // §3.2: `scope` is required.
    let scopes: Vec<String> = f
        .get("scope")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    if scopes.is_empty() || !scopes.iter().all(|s| scope_is_well_formed(s)) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "scope is required: space-separated <api>.read|write|delete",
        );
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
    // No refresh token (§3.2).
    Json(json!({
        "access_token": access_token,
        "scope": scopes.join(" "),
        "expires_in": cfg.token_ttl_secs,
        "token_type": "Bearer",
    }))
    .into_response()
}

/// The scope a request needs: `<api>.read` for GET, `.write` for POST/PATCH (acknowledges
/// included), `.delete` for DELETE. Doubt (§3.11.7): which scope guards which verb is not
/// stated per operation; the naming is followed and only the exact scope passes (a `.write`
/// token does not read), the stricter choice.
fn needed_scope(path: &str, method: &str) -> Option<String> {
    let api = path.strip_prefix("/v1/")?.split('/').next()?;
    if api.is_empty() {
        return None;
    }
    let right = match method {
        "GET" => "read",
        "DELETE" => "delete",
        _ => "write",
    };
    Some(format!("{api}.{right}"))
}

/// `/v1/*`: a valid bearer token (401) carrying the needed scope (403).
pub(crate) async fn guard(State(sim): State<BaswareSim>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/v1/") {
        return next.run(req).await;
    }
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.get(..7)
                .filter(|p| p.eq_ignore_ascii_case("bearer "))
                .map(|_| v[7..].trim().to_owned())
        });
    let scopes = token.and_then(|t| {
        let tokens = sim.inner.tokens.lock().unwrap();
        tokens
            .get(&t)
            .filter(|t| Instant::now() < t.expires)
            .map(|t| t.scopes.clone())
    });
    let Some(scopes) = scopes else {
        return error(
            StatusCode::UNAUTHORIZED,
            "SECURITY",
            "ACCESS_TOKEN_VALIDATION_ERROR",
            "Invalid or expired access token.",
        );
    };
    if let Some(needed) = needed_scope(req.uri().path(), req.method().as_str())
        && !scopes.contains(&needed)
    {
        return error(
            StatusCode::FORBIDDEN,
            "SECURITY",
            "ACCESS_TOKEN_VALIDATION_ERROR",
            &format!("The access token lacks the scope {needed}."),
        );
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_follows_the_api_and_the_verb() {
        assert_eq!(
            needed_scope("/v1/accountingDocuments/x/acknowledge", "POST").as_deref(),
            Some("accountingDocuments.write")
        );
        assert_eq!(
            needed_scope("/v1/requestStatus", "GET").as_deref(),
            Some("requestStatus.read")
        );
        assert!(scope_is_well_formed("lists.write"));
        assert!(!scope_is_well_formed("lists"));
        assert!(!scope_is_well_formed("lists.admin"));
    }
}
