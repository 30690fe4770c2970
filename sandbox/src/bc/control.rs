//! `/_sandbox/*` control routes (no auth), so a separately running sandbox can be driven.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::BcSim;
use crate::faults::FaultRule;

pub(crate) fn routes() -> Router<BcSim> {
    Router::new()
        .route("/_sandbox/invoices", get(invoices))
        .route("/_sandbox/invoices/{id}/paid", post(paid))
        .route("/_sandbox/faults", post(add_fault))
        .route("/_sandbox/expire-tokens", post(expire_tokens))
        .route("/_sandbox/requests", get(requests))
        .route("/_sandbox/stats", get(stats))
}

async fn invoices(State(sim): State<BcSim>) -> Response {
    Json(sim.purchase_invoices()).into_response()
}

async fn paid(State(sim): State<BcSim>, Path(id): Path<uuid::Uuid>) -> Response {
    match sim.try_mark_paid(id) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn add_fault(State(sim): State<BcSim>, Json(rule): Json<FaultRule>) -> StatusCode {
    sim.fail_next(rule);
    StatusCode::NO_CONTENT
}

async fn expire_tokens(State(sim): State<BcSim>) -> StatusCode {
    sim.expire_tokens();
    StatusCode::NO_CONTENT
}

async fn requests(State(sim): State<BcSim>) -> Response {
    Json(sim.requests()).into_response()
}

async fn stats(State(sim): State<BcSim>) -> Response {
    Json(json!({ "requests": sim.requests().len(), "throttled": sim.throttled_count() }))
        .into_response()
}
