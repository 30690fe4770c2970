//! The webhook listener of `mlc run`: `POST /webhooks/coupa/{integration}`. Signature first,
//! over the raw body; 202 when queued, 401 on a bad signature, 400/413 on a bad body.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use mlc_shared::ports::SecretString;
use mlc_shared::steps::webhook::{self, MAX_BODY_BYTES};
use mlc_shared::systems::coupa::SIGNATURE_HEADER;

use crate::embedded::EmbeddedPipeline;

#[derive(Clone)]
struct AppState {
    pipeline: Arc<EmbeddedPipeline>,
    coupa_secret: Option<SecretString>,
}

pub fn router(pipeline: Arc<EmbeddedPipeline>, coupa_secret: Option<SecretString>) -> Router {
    Router::new()
        .route("/webhooks/coupa/{integration}", post(coupa))
        // Let the step see (and refuse with 413) bodies just over its own limit.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES + 1024))
        .with_state(AppState {
            pipeline,
            coupa_secret,
        })
}

async fn coupa(
    State(s): State<AppState>,
    Path(integration): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    if !s
        .pipeline
        .integrations
        .iter()
        .any(|i| i.name == integration)
    {
        return (
            StatusCode::NOT_FOUND,
            format!("no integration '{integration}'\n"),
        );
    }
    let Some(secret) = &s.coupa_secret else {
        return (
            StatusCode::UNAUTHORIZED,
            "webhooks are not enabled: no webhook_secret configured\n".into(),
        );
    };
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    match webhook::coupa_invoice(&s.pipeline.env, &integration, secret, signature, &body).await {
        Ok(id) => (StatusCode::ACCEPTED, format!("queued Coupa invoice {id}\n")),
        Err(e) => {
            tracing::warn!(error = %e, "webhook refused");
            (
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
                format!("{e}\n"),
            )
        }
    }
}
