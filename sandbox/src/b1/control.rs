//! `/_sandbox/*` control routes (no session), so a separately running B1 simulator can be
//! driven over HTTP: inspect requests, queue faults, time sessions out, seed partners and
//! documents, cancel one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{B1Sim, DocKind, DocLine, NewDocument, NewPartner};
use crate::faults::FaultRule;

pub(crate) fn routes() -> Router<B1Sim> {
    Router::new()
        .route("/_sandbox/requests", get(requests).delete(clear_requests))
        .route("/_sandbox/faults", post(add_fault))
        .route("/_sandbox/expire-sessions", post(expire_sessions))
        .route("/_sandbox/partners", post(add_partner))
        .route("/_sandbox/{set}", post(add_document))
        .route("/_sandbox/{set}/{entry}/{action}", post(action))
}

async fn requests(State(sim): State<B1Sim>) -> Response {
    Json(sim.requests()).into_response()
}

async fn clear_requests(State(sim): State<B1Sim>) -> StatusCode {
    sim.clear_requests();
    StatusCode::NO_CONTENT
}

async fn add_fault(State(sim): State<B1Sim>, Json(rule): Json<FaultRule>) -> StatusCode {
    sim.fail_next(rule);
    StatusCode::NO_CONTENT
}

async fn expire_sessions(State(sim): State<B1Sim>) -> StatusCode {
    sim.expire_sessions();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct PartnerBody {
    card_code: String,
    card_name: String,
    federal_tax_id: Option<String>,
}

async fn add_partner(State(sim): State<B1Sim>, Json(b): Json<PartnerBody>) -> StatusCode {
    sim.add_partner(NewPartner {
        federal_tax_id: b.federal_tax_id,
        ..NewPartner::supplier(&b.card_code, &b.card_name)
    });
    StatusCode::CREATED
}

#[derive(Deserialize)]
struct LineBody {
    item_code: String,
    description: String,
    /// Decimal strings.
    quantity: String,
    price: String,
    #[serde(default = "zero")]
    tax: String,
    base_po: Option<i64>,
}

fn zero() -> String {
    "0".into()
}

#[derive(Deserialize)]
struct DocumentBody {
    card_code: String,
    num_at_card: Option<String>,
    lines: Vec<LineBody>,
}

fn bad(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

/// `POST /_sandbox/PurchaseOrders` or `/_sandbox/PurchaseInvoices`: `{"DocEntry": n}`, or the
/// business error B1 would give.
async fn add_document(
    State(sim): State<B1Sim>,
    Path(set): Path<String>,
    Json(b): Json<DocumentBody>,
) -> Response {
    let Some(kind) = DocKind::from_set(&set) else {
        return bad(format!("no entity set {set}"));
    };
    let mut doc = NewDocument::for_supplier(&b.card_code);
    doc.num_at_card = b.num_at_card;
    for l in b.lines {
        let valid = [&l.quantity, &l.price, &l.tax]
            .iter()
            .all(|v| v.parse::<rust_decimal::Decimal>().is_ok());
        if !valid {
            return bad("quantity, price and tax must be decimal strings".into());
        }
        let mut line = DocLine::item(&l.item_code, &l.description, &l.quantity, &l.price, &l.tax);
        if let Some(po) = l.base_po {
            line = line.from_po(po, 0);
        }
        doc = doc.line(line);
    }
    match sim.add_document(kind, doc) {
        Ok(entry) => (StatusCode::CREATED, Json(json!({ "DocEntry": entry }))).into_response(),
        Err(e) => bad(e),
    }
}

/// `POST /_sandbox/{set}/{entry}/{Cancel|Close|Reopen|CreateCancellationDocument}`.
async fn action(
    State(sim): State<B1Sim>,
    Path((set, entry, action)): Path<(String, i64, String)>,
) -> Response {
    let Some(kind) = DocKind::from_set(&set) else {
        return bad(format!("no entity set {set}"));
    };
    match sim.document_action(kind, entry, &action, sim.now()) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err((_, _, message)) => bad(message),
    }
}
