//! `/_sandbox/*` control routes (no auth), so a separately running sandbox can be seeded and
//! driven: legal entities, vendors, main accounts, dimension values, refused combinations,
//! posting and paying invoices, faults.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;

use super::FoSim;
use crate::faults::FaultRule;

pub(crate) fn routes() -> Router<FoSim> {
    Router::new()
        .route("/_sandbox/invoices", get(pending))
        .route("/_sandbox/posted", get(posted))
        .route("/_sandbox/legal-entities", post(legal_entity))
        .route("/_sandbox/vendors", post(vendor))
        .route("/_sandbox/main-accounts", post(main_account))
        .route("/_sandbox/dimension-values", post(dimension_value))
        .route("/_sandbox/combinations/refuse", post(refuse))
        .route("/_sandbox/combinations/allow", post(allow))
        .route("/_sandbox/invoices/post", post(post_invoice))
        .route("/_sandbox/invoices/pay", post(pay_invoice))
        .route("/_sandbox/faults", post(add_fault))
        .route("/_sandbox/expire-tokens", post(expire_tokens))
        .route("/_sandbox/requests", get(requests))
        .route("/_sandbox/stats", get(stats))
}

async fn pending(State(sim): State<FoSim>) -> Response {
    Json(sim.pending_invoices()).into_response()
}

async fn posted(State(sim): State<FoSim>) -> Response {
    Json(sim.posted_invoices()).into_response()
}

#[derive(Deserialize)]
struct LegalEntity {
    id: String,
    chart: String,
}

async fn legal_entity(State(sim): State<FoSim>, Json(b): Json<LegalEntity>) -> StatusCode {
    sim.add_legal_entity(&b.id, &b.chart);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Vendor {
    company: String,
    account: String,
    name: String,
    currency: String,
}

async fn vendor(State(sim): State<FoSim>, Json(b): Json<Vendor>) -> StatusCode {
    sim.add_vendor(&b.company, &b.account, &b.name, &b.currency);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct MainAccount {
    chart: String,
    id: String,
    name: String,
}

async fn main_account(State(sim): State<FoSim>, Json(b): Json<MainAccount>) -> StatusCode {
    sim.add_main_account(&b.chart, &b.id, &b.name);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct DimensionValue {
    dimension: String,
    #[serde(default)]
    legal_entity: String,
    value: String,
}

async fn dimension_value(State(sim): State<FoSim>, Json(b): Json<DimensionValue>) -> StatusCode {
    sim.add_dimension_value(&b.dimension, &b.legal_entity, &b.value);
    StatusCode::NO_CONTENT
}

/// `[["MainAccount","600100"],["CostCenter","OU_9"]]`
async fn refuse(State(sim): State<FoSim>, Json(pairs): Json<Vec<(String, String)>>) -> StatusCode {
    let p: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    sim.refuse_combination(&p);
    StatusCode::NO_CONTENT
}

async fn allow(State(sim): State<FoSim>, Json(pairs): Json<Vec<(String, String)>>) -> StatusCode {
    let p: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    sim.allow_combination(&p);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct PostInvoice {
    company: String,
    header_reference: String,
}

async fn post_invoice(State(sim): State<FoSim>, Json(b): Json<PostInvoice>) -> Response {
    match sim.post_invoice(&b.company, &b.header_reference) {
        Ok(voucher) => Json(json!({ "voucher": voucher })).into_response(),
        Err(e) => (StatusCode::CONFLICT, e).into_response(),
    }
}

#[derive(Deserialize)]
struct PayInvoice {
    company: String,
    invoice_account: String,
    invoice_id: String,
    amount: Option<Decimal>,
}

async fn pay_invoice(State(sim): State<FoSim>, Json(b): Json<PayInvoice>) -> Response {
    match sim.pay_invoice(&b.company, &b.invoice_account, &b.invoice_id, b.amount) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::NOT_FOUND, e).into_response(),
    }
}

async fn add_fault(State(sim): State<FoSim>, Json(rule): Json<FaultRule>) -> StatusCode {
    sim.fail_next(rule);
    StatusCode::NO_CONTENT
}

async fn expire_tokens(State(sim): State<FoSim>) -> StatusCode {
    sim.expire_tokens();
    StatusCode::NO_CONTENT
}

async fn requests(State(sim): State<FoSim>) -> Response {
    Json(sim.requests()).into_response()
}

async fn stats(State(sim): State<FoSim>) -> Response {
    Json(json!({ "requests": sim.requests().len(), "throttled": sim.throttled_count() }))
        .into_response()
}
