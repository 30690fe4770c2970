//! `/_sandbox/*` control routes (no auth), so a separately running sandbox can be driven.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{CoupaSim, NewOrderLine, NewPurchaseOrder};
use crate::faults::FaultRule;

pub(crate) fn routes() -> Router<CoupaSim> {
    Router::new()
        .route("/_sandbox/requests", get(requests).delete(clear_requests))
        .route("/_sandbox/faults", post(add_fault))
        .route("/_sandbox/expire-tokens", post(expire_tokens))
        .route("/_sandbox/invoices/{id}/status", post(set_status))
        .route("/_sandbox/purchase_orders", post(add_purchase_order))
        .route(
            "/_sandbox/purchase_orders/{id}/status",
            post(set_purchase_order_status),
        )
        .route("/_sandbox/webhook", post(webhook))
}

async fn requests(State(sim): State<CoupaSim>) -> Response {
    Json(sim.requests()).into_response()
}

async fn clear_requests(State(sim): State<CoupaSim>) -> StatusCode {
    sim.clear_requests();
    StatusCode::NO_CONTENT
}

async fn add_fault(State(sim): State<CoupaSim>, Json(rule): Json<FaultRule>) -> StatusCode {
    sim.fail_next(rule);
    StatusCode::NO_CONTENT
}

async fn expire_tokens(State(sim): State<CoupaSim>) -> StatusCode {
    sim.expire_tokens();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct StatusBody {
    status: String,
}

async fn set_status(
    State(sim): State<CoupaSim>,
    Path(id): Path<i64>,
    Json(b): Json<StatusBody>,
) -> Response {
    sim.set_invoice_status(id, &b.status);
    match sim.invoice_json(id) {
        Some(v) => Json(v).into_response(),
        None => not_found(),
    }
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"errors": {"error": ["Not found"]}})),
    )
        .into_response()
}

#[derive(Deserialize)]
struct OrderLineBody {
    description: String,
    /// Decimal strings, as Coupa renders them.
    quantity: String,
    price: String,
    #[serde(default)]
    segments: Vec<String>,
    uom: Option<String>,
}

#[derive(Deserialize)]
struct PurchaseOrderBody {
    supplier_id: i64,
    po_number: String,
    status: Option<String>,
    currency: Option<String>,
    #[serde(default)]
    lines: Vec<OrderLineBody>,
}

/// Adds a purchase order; answers `{"id": …}` with 201, or 400 on a bad decimal.
async fn add_purchase_order(
    State(sim): State<CoupaSim>,
    Json(b): Json<PurchaseOrderBody>,
) -> Response {
    let mut po = NewPurchaseOrder::issued(b.supplier_id, &b.po_number);
    if let Some(st) = b.status {
        po = po.status(&st);
    }
    if let Some(c) = b.currency {
        po = po.currency(&c);
    }
    for l in b.lines {
        let (Ok(quantity), Ok(price)) = (l.quantity.parse(), l.price.parse()) else {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"errors": {"lines": ["quantity and price must be decimal strings"]}})),
            )
                .into_response();
        };
        po = po.line(NewOrderLine {
            description: l.description,
            quantity,
            price,
            account_segments: l.segments,
            uom: l.uom.unwrap_or_else(|| "EA".into()),
        });
    }
    let id = sim.add_purchase_order(po);
    (StatusCode::CREATED, Json(json!({ "id": id }))).into_response()
}

async fn set_purchase_order_status(
    State(sim): State<CoupaSim>,
    Path(id): Path<i64>,
    Json(b): Json<StatusBody>,
) -> Response {
    sim.set_purchase_order_status(id, &b.status);
    match sim.purchase_order_json(id) {
        Some(v) => Json(v).into_response(),
        None => not_found(),
    }
}

#[derive(Deserialize)]
struct WebhookBody {
    url: String,
    invoice_id: i64,
}

async fn webhook(State(sim): State<CoupaSim>, Json(b): Json<WebhookBody>) -> Response {
    match sim.send_invoice_webhook(&b.url, b.invoice_id).await {
        Ok(status) => Json(json!({ "status": status })).into_response(),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}
