//! Basware Purchase-to-Pay API simulator (`../shared/apis/basware.md` §3).
//!
//! Serves, strictly:
//! - the token endpoint (client credentials, HTTP Basic, form body with a required `scope`,
//!   `expires_in` in seconds, no refresh token) on its own URL, apart from the API's base URL
//!   (§3.1: make them independent settings) — see `auth.rs`;
//! - accounting documents: the list answers 302 to an object URL that refuses `Authorization`,
//!   pages by the `x-amz-meta-continuationtoken` header with identical query parameters, 404 when
//!   empty; acknowledge, transfer and payment responses with the processing-status state machine
//!   — see `documents.rs`;
//! - master-data imports (vendors, accounts, cost centres, generic lists) with asynchronous
//!   `requestStatus`, `errorFeedbacks` and identical re-imports skipped — see `master.rs`;
//! - push-notification subscriptions with `ConnectionTest` and signed notifications — see
//!   `webhook.rs`;
//! - `/_sandbox/*` control routes to seed documents and read what was received — `control.rs`.
//!
//! Where the fact sheet is silent the simulator takes the stricter reading and says so in a
//! comment starting with "Doubt:".

mod auth;
mod control;
mod documents;
mod master;
mod model;
mod webhook;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

use crate::faults::{FaultQueue, FaultRule};
use crate::reqlog::{RequestLog, RequestLogStore};

pub use master::{ImportView, ItemView};
pub use model::{DocumentView, NewCodingRow, NewDocument, NewInvoiceLine};
pub use webhook::{SignatureFormat, signature as webhook_signature};

/// Path of the token endpoint, under the token host (§3.2: `POST /v1/tokens` on the auth host).
/// Served by the same listener under a different prefix, so a client that derives the token URL
/// from the API base URL instead of using its own setting fails.
pub const TOKEN_PATH: &str = "/auth/v1/tokens";

/// Every scope a client of the connector needs (§3.2, §3.11.7).
pub const BASWARE_SCOPE: &str = "accountingDocuments.read accountingDocuments.write \
     vendors.read vendors.write accounts.read accounts.write lists.read lists.write \
     costCenters.read costCenters.write requestStatus.read requestStatus.write \
     errorFeedbacks.read subscriptions.read subscriptions.write";

/// How the simulated Basware tenant is set up.
#[derive(Clone, Debug)]
pub struct BaswareConfig {
    pub client_id: String,
    pub client_secret: String,
    /// §3.2: `expires_in` is seconds (the text says minutes, the example and the JWT say 3600 s).
    pub token_ttl_secs: u64,
    /// Companies known to P2P: an imported record naming another one fails in `requestStatus`.
    pub companies: Vec<String>,
    /// `invoiceTypeCode` given to credit notes (§3.11.8: tenant-configured).
    pub credit_note_type_code: String,
    /// Credit notes render with negative amounts (§3.11.8: the sign is not documented; negative
    /// is the strict default). `false`: positive, told apart by the type code only.
    pub credit_notes_negative: bool,
    /// §3.5: "By default invoice lines are not sent from P2P" — off unless the tenant enabled
    /// `OpenAPI.TransferInvoiceLinesEnabled`. Off by default: a connector must post from the
    /// coding rows alone.
    pub invoice_lines_enabled: bool,
    /// Reads of `requestStatus` an import stays `InProgress` for before it is processed
    /// (§3.7: two-step processing; the real delay is not documented).
    pub import_reads_in_progress: u32,
    /// `GET /v1/accountingDocuments/{id}` answers 302 too (§3.3: "some GETs" redirect; which
    /// ones is not said). Off by default; a client must follow either.
    pub redirect_single: bool,
    /// How `X-BWAPI-Signature-256` is written (§3.8: the format is unknown).
    pub signature_format: SignatureFormat,
}

impl Default for BaswareConfig {
    fn default() -> Self {
        BaswareConfig {
            client_id: "basware-client".into(),
            client_secret: "basware-secret".into(),
            token_ttl_secs: 3600,
            companies: vec!["BW00".into()],
            credit_note_type_code: "CREDIT".into(),
            credit_notes_negative: true,
            invoice_lines_enabled: false,
            import_reads_in_progress: 1,
            redirect_single: false,
            signature_format: SignatureFormat::Hex,
        }
    }
}

struct Token {
    expires: std::time::Instant,
    scopes: Vec<String>,
}

pub(crate) struct Inner {
    cfg: BaswareConfig,
    addr: OnceLock<SocketAddr>,
    data: Mutex<model::Data>,
    master: Mutex<master::MasterData>,
    subscriptions: Mutex<Vec<webhook::Subscription>>,
    tokens: Mutex<HashMap<String, Token>>,
    tokens_issued: AtomicU64,
    faults: FaultQueue,
    log: RequestLogStore,
    http: reqwest::Client,
}

/// A running Basware simulator. Cheap to clone (shared state).
#[derive(Clone)]
pub struct BaswareSim {
    inner: Arc<Inner>,
}

impl BaswareSim {
    /// Binds 127.0.0.1 on a free port and serves in a tokio task.
    pub async fn start(cfg: BaswareConfig) -> std::io::Result<BaswareSim> {
        Self::start_on(cfg, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_on(cfg: BaswareConfig, addr: SocketAddr) -> std::io::Result<BaswareSim> {
        let sim = BaswareSim {
            inner: Arc::new(Inner {
                cfg,
                addr: OnceLock::new(),
                data: Mutex::new(model::Data::default()),
                master: Mutex::new(master::MasterData::default()),
                subscriptions: Mutex::new(Vec::new()),
                tokens: Mutex::new(HashMap::new()),
                tokens_issued: AtomicU64::new(0),
                faults: FaultQueue::default(),
                log: RequestLogStore::default(),
                http: reqwest::Client::new(),
            }),
        };
        let local = crate::server::spawn(sim.router(), addr).await?;
        let _ = sim.inner.addr.set(local);
        Ok(sim)
    }

    fn router(&self) -> Router {
        Router::new()
            .route(TOKEN_PATH, post(auth::token))
            .route(
                "/v1/accountingDocuments",
                get(documents::list).fallback(documents::method_not_allowed),
            )
            .route("/v1/accountingDocuments/{id}", get(documents::show))
            .route(
                "/v1/accountingDocuments/{id}/acknowledge",
                post(documents::acknowledge),
            )
            .route(
                "/v1/accountingDocuments/{id}/transferResponses",
                post(documents::transfer_response),
            )
            .route(
                "/v1/accountingDocuments/{id}/paymentResponses",
                post(documents::payment_response),
            )
            .route(documents::OBJECT_ROUTE, get(documents::redirected_object))
            .route("/v1/vendors", post(master::import_vendors))
            .route("/v1/accounts", post(master::import_accounts))
            .route("/v1/costCenters", post(master::import_cost_centers))
            .route("/v1/lists/{list_key}", post(master::import_list))
            .route("/v1/requestStatus", get(master::request_status))
            .route("/v1/requestStatus/{id}", get(master::request_status_one))
            .route(
                "/v1/requestStatus/acknowledge",
                post(master::acknowledge_requests),
            )
            .route("/v1/errorFeedbacks", get(master::error_feedbacks))
            .route(
                "/v1/subscriptions",
                post(webhook::subscribe).get(webhook::list_subscriptions),
            )
            .merge(control::routes())
            .fallback(not_found)
            .layer(middleware::from_fn_with_state(self.clone(), auth::guard))
            .layer(middleware::from_fn_with_state(self.clone(), faults))
            .layer(middleware::from_fn_with_state(self.clone(), log_requests))
            .with_state(self.clone())
    }

    /// The configuration it runs with (credentials included: these are simulator values).
    pub fn config(&self) -> &BaswareConfig {
        &self.inner.cfg
    }

    /// The API base URL, "http://127.0.0.1:PORT" (paths start with `/v1/`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr.get().expect("bound"))
    }

    /// The token URL; deliberately not `{base_url}/v1/tokens` (see [`TOKEN_PATH`]).
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.base_url())
    }

    pub fn fail_next(&self, rule: FaultRule) {
        self.inner.faults.push(rule);
    }

    /// Every issued token becomes invalid (401 on next use).
    pub fn expire_tokens(&self) {
        self.inner.tokens.lock().unwrap().clear();
    }

    pub fn tokens_issued(&self) -> u64 {
        self.inner.tokens_issued.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<RequestLog> {
        self.inner.log.snapshot()
    }

    pub fn clear_requests(&self) {
        self.inner.log.clear();
    }
}

/// The error envelope (`ResponseEntityList`, §3.3).
pub(crate) fn error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    use axum::response::IntoResponse;
    (
        status,
        axum::Json(serde_json::json!({
            "requestId": uuid::Uuid::new_v4().to_string(),
            "hasErrors": true,
            "errors": [{
                "externalCode": "", "type": kind, "code": code, "message": message, "info": ""
            }],
        })),
    )
        .into_response()
}

/// The error shape injected faults answer with.
fn fault_error(status: StatusCode, message: &str) -> Response {
    error(status, "TECHNICAL", "UNEXPECTED_ERROR", message)
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "VALIDATION",
        "ENTITY_NOT_FOUND",
        "No such resource.",
    )
}

/// API routes and the redirect target: what faults apply to (never the token endpoint or the
/// control routes, so a test can always authenticate and drive the simulator).
fn is_api(req: &Request) -> bool {
    let p = req.uri().path();
    p.starts_with("/v1/") || p.starts_with(documents::OBJECT_PREFIX)
}

async fn log_requests(State(sim): State<BaswareSim>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/_sandbox") {
        return next.run(req).await;
    }
    sim.inner.log.record(req, next).await
}

/// §3.9: no published limits; 429 with `Retry-After` comes only from injected faults.
async fn faults(State(sim): State<BaswareSim>, req: Request, next: Next) -> Response {
    if !is_api(&req) {
        return next.run(req).await;
    }
    sim.inner.faults.apply(fault_error, req, next).await
}
