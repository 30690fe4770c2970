//! Seeding and inspection: the Rust API tests use, and the same as `/_sandbox/*` routes (no
//! auth) so a separately running sandbox can be driven over HTTP.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::model::DocumentView;
use super::{BaswareSim, NewCodingRow, NewDocument};
use crate::faults::FaultRule;

impl BaswareSim {
    /// Adds a document `WaitingForTransfer`; returns its `invoiceId`.
    pub fn add_document(&self, doc: NewDocument) -> String {
        self.inner.data.lock().unwrap().add(doc)
    }

    /// What the simulator holds of a document: status, acknowledges, responses received.
    pub fn document(&self, invoice_id: &str) -> Option<DocumentView> {
        self.inner
            .data
            .lock()
            .unwrap()
            .doc(invoice_id)
            .map(|d| d.view())
    }

    /// Every document, oldest first.
    pub fn documents(&self) -> Vec<DocumentView> {
        let d = self.inner.data.lock().unwrap();
        d.docs.iter().map(|d| d.view()).collect()
    }

    /// Puts a document back in `WaitingForTransfer` (a re-transfer from P2P, or a document a
    /// person returned after a failed transfer).
    pub fn return_to_waiting(&self, invoice_id: &str) -> bool {
        let mut d = self.inner.data.lock().unwrap();
        match d.doc_mut(invoice_id) {
            Some(doc) => {
                doc.status = "WaitingForTransfer".into();
                doc.last_updated = chrono::Utc::now();
                true
            }
            None => false,
        }
    }
}

pub(crate) fn routes() -> Router<BaswareSim> {
    Router::new()
        .route(
            "/_sandbox/basware/requests",
            get(requests).delete(clear_requests),
        )
        .route("/_sandbox/basware/faults", post(add_fault))
        .route("/_sandbox/basware/expire-tokens", post(expire_tokens))
        .route(
            "/_sandbox/basware/documents",
            post(add_document).get(documents),
        )
        .route("/_sandbox/basware/documents/{id}", get(document))
        .route("/_sandbox/basware/documents/{id}/notify", post(notify))
        .route("/_sandbox/basware/imports", get(imports))
        .route("/_sandbox/basware/imports/process", post(process_imports))
}

async fn requests(State(sim): State<BaswareSim>) -> Response {
    Json(sim.requests()).into_response()
}

async fn clear_requests(State(sim): State<BaswareSim>) -> StatusCode {
    sim.clear_requests();
    StatusCode::NO_CONTENT
}

async fn add_fault(State(sim): State<BaswareSim>, Json(rule): Json<FaultRule>) -> StatusCode {
    sim.fail_next(rule);
    StatusCode::NO_CONTENT
}

async fn expire_tokens(State(sim): State<BaswareSim>) -> StatusCode {
    sim.expire_tokens();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct CodingRowBody {
    account_code: String,
    /// A decimal string.
    net_total: String,
    cost_center: Option<String>,
    project: Option<String>,
    tax_code: Option<String>,
    tax_percent: Option<String>,
    /// `dimCode<n>` values by n.
    #[serde(default)]
    dims: BTreeMap<u8, String>,
}

#[derive(Deserialize)]
struct DocumentBody {
    invoice_number: String,
    supplier_code: String,
    company_code: Option<String>,
    currency: Option<String>,
    #[serde(default)]
    credit_note: bool,
    coding_rows: Vec<CodingRowBody>,
}

fn is_decimal(s: &str) -> bool {
    s.parse::<rust_decimal::Decimal>().is_ok()
}

/// Adds a document; 201 `{"invoiceId": …}`, or 400 on a bad decimal.
async fn add_document(State(sim): State<BaswareSim>, Json(b): Json<DocumentBody>) -> Response {
    let mut doc = if b.credit_note {
        NewDocument::credit_note(&b.invoice_number, &b.supplier_code)
    } else {
        NewDocument::invoice(&b.invoice_number, &b.supplier_code)
    };
    if let Some(c) = b.company_code {
        doc = doc.company(&c);
    }
    if let Some(c) = b.currency {
        doc = doc.currency(&c);
    }
    for r in b.coding_rows {
        let percent = r.tax_percent.unwrap_or_else(|| "0".into());
        if !is_decimal(&r.net_total) || !is_decimal(&percent) {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "net_total and tax_percent must be decimal strings"})),
            )
                .into_response();
        }
        let mut row = NewCodingRow::new(&r.account_code, &r.net_total);
        if let Some(c) = &r.cost_center {
            row = row.cost_center(c);
        }
        if let Some(p) = &r.project {
            row = row.project(p);
        }
        if let Some(t) = &r.tax_code {
            row = row.tax(t, &percent);
        }
        for (n, v) in &r.dims {
            row = row.dim(*n, v);
        }
        doc = doc.coding_row(row);
    }
    let id = sim.add_document(doc);
    (StatusCode::CREATED, Json(json!({ "invoiceId": id }))).into_response()
}

async fn documents(State(sim): State<BaswareSim>) -> Json<Vec<DocumentView>> {
    Json(sim.documents())
}

async fn document(State(sim): State<BaswareSim>, Path(id): Path<String>) -> Response {
    match sim.document(&id) {
        Some(v) => Json(v).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such document"})),
        )
            .into_response(),
    }
}

async fn notify(State(sim): State<BaswareSim>, Path(id): Path<String>) -> Response {
    Json(json!({ "statuses": sim.notify_document(&id).await })).into_response()
}

async fn imports(State(sim): State<BaswareSim>) -> Response {
    Json(sim.imports()).into_response()
}

async fn process_imports(State(sim): State<BaswareSim>) -> StatusCode {
    sim.process_imports();
    StatusCode::NO_CONTENT
}
