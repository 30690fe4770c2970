//! `/_sandbox/*` control routes (no auth), so a separately running sandbox can be driven.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::json;

use super::BcSim;
use crate::faults::FaultRule;

pub(crate) fn routes() -> Router<BcSim> {
    Router::new()
        .route("/_sandbox/invoices", get(invoices))
        .route("/_sandbox/invoices/{id}/paid", post(paid))
        .route("/_sandbox/orders", get(orders))
        .route("/_sandbox/credit-memos", get(credit_memos))
        .route("/_sandbox/vendors", get(vendors))
        .route("/_sandbox/subscriptions", get(subscriptions))
        .route("/_sandbox/subscriptions/{id}", delete(remove_subscription))
        .route(
            "/_sandbox/subscriptions/{id}/expire",
            post(expire_subscription),
        )
        .route("/_sandbox/subscriptions/{id}/expiry", post(set_expiry))
        .route("/_sandbox/notifications", get(notifications))
        .route("/_sandbox/handshakes", get(handshakes))
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

async fn orders(State(sim): State<BcSim>) -> Response {
    Json(sim.purchase_orders()).into_response()
}

async fn credit_memos(State(sim): State<BcSim>) -> Response {
    Json(sim.purchase_credit_memos()).into_response()
}

async fn vendors(State(sim): State<BcSim>) -> Response {
    Json(sim.vendors()).into_response()
}

async fn subscriptions(State(sim): State<BcSim>) -> Response {
    Json(sim.subscriptions()).into_response()
}

/// Simulates a subscription BC lost or deleted.
async fn remove_subscription(State(sim): State<BcSim>, Path(id): Path<String>) -> StatusCode {
    if sim.remove_subscription(&id) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

/// Expires a subscription now (it vanishes on next access).
async fn expire_subscription(State(sim): State<BcSim>, Path(id): Path<String>) -> StatusCode {
    let past = chrono::Utc::now() - chrono::TimeDelta::seconds(1);
    if sim.set_subscription_expiry(&id, past) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

#[derive(serde::Deserialize)]
struct Expiry {
    at: chrono::DateTime<chrono::Utc>,
}

/// `{"at": "<RFC 3339>"}`: moves a subscription's expiry (e.g. to make it nearly expired).
async fn set_expiry(
    State(sim): State<BcSim>,
    Path(id): Path<String>,
    Json(body): Json<Expiry>,
) -> StatusCode {
    if sim.set_subscription_expiry(&id, body.at) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn notifications(State(sim): State<BcSim>) -> Response {
    Json(sim.notifications()).into_response()
}

async fn handshakes(State(sim): State<BcSim>) -> Response {
    Json(sim.handshakes()).into_response()
}
