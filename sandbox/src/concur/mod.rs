//! SAP Concur simulator (`../shared/apis/concur.md` §2): company-level OAuth with rotating
//! refresh tokens and a geolocation, Financial Integration Service v4 (invoice payment
//! requests and expense reports READY for integration, acknowledgements, posting
//! confirmations) and `/_sandbox/concur/*` control routes.
//!
//! Strict, where the fact sheet is silent or says [U]:
//! - the app's URL (`{base}/app`) answers only the token endpoint; the API answers only under
//!   the geolocation the token response names (`{base}/us2`, movable with
//!   [`ConcurSim::move_geolocation`]: the old one then answers 401);
//! - a refresh token is spent by its first use: the old one is refused (400 `invalid_grant`,
//!   code 108) once a new one was issued (§2.2 says it "may" rotate; rotating always is strict);
//! - `expires_in` is a string (§2.6 gotcha 1);
//! - the `next` link's href names an internal host (`fiserviceurlhere`, the doc's sample), so a
//!   client that follows it blindly fails;
//! - per-item outcomes are codes in 200 bodies (§2.3): 101 ack repeat, 102/112 recalled, 104/116
//!   unknown document, 105/115 wrong type, 111 posting before ack, 113 posting repeat, 99
//!   systemId mismatch; payment confirmations 298 NOOP on a repeated `paymentRef`, 213 on a
//!   second `CP`, `NOT_POSTING_CONFIRMED` before a successful posting;
//! - `documentFormatAs: text` answers `document` as a JSON string; `json` (or none) as an
//!   object; [`ConcurConfig::force_text`] answers text whatever was asked.
//!
//! - the Invoice Vendor API v3.1 never upserts (`vendors.rs`).
//!
//! Doubt: whether a `success` posting is accepted after an `error` one is [U] (§2.3); accepted.

mod docs;
mod events;
mod vendors;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, extract::Path};
use serde_json::{Value, json};

use crate::faults::{FaultQueue, FaultRule};
use crate::reqlog::{RequestLog, RequestLogStore};

pub use docs::{NewAllocation, NewEntry, NewExpense, NewInvoice, NewJournal};
pub use events::{SIGNATURE_HEADER, forged_signature};

/// The app's own geolocation prefix (where the first refresh goes).
pub const APP_PREFIX: &str = "/app";
/// The host-internal href of `next` links (§2.3 sample).
pub const INTERNAL_HREF: &str = "https://fiserviceurlhere/fi/v4/companies/transactiontypes";

#[derive(Clone, Debug)]
pub struct ConcurConfig {
    pub client_id: String,
    pub client_secret: String,
    pub token_ttl_secs: u64,
    /// The FIS systemId documents are acknowledged under ("" by default): another is 99.
    pub system_id: String,
    /// Answer `document` as text even when `json` was asked.
    pub force_text: bool,
}

impl Default for ConcurConfig {
    fn default() -> Self {
        ConcurConfig {
            client_id: "concur-client".into(),
            client_secret: "concur-secret".into(),
            token_ttl_secs: 3600,
            system_id: String::new(),
            force_text: false,
        }
    }
}

/// One FIS document as the simulator holds it.
#[derive(Clone, Debug)]
struct Doc {
    id: String,
    doc_type: String,
    status: String,
    document: Value,
    acknowledges: u32,
    posting_confirmations: Vec<Value>,
    /// Accepted payment confirmations (one per `paymentRef`).
    payment_confirmations: Vec<Value>,
    /// Every payment confirmation received, repeats and refusals included.
    payment_attempts: u32,
}

/// What a test sees of a document.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DocView {
    pub id: String,
    pub doc_type: String,
    pub status: String,
    /// Successful acknowledgements (code 0) and repeats (101) received.
    pub acknowledges: u32,
    /// Posting confirmations received (accepted ones and repeats).
    pub posting_confirmations: Vec<Value>,
    /// Payment confirmations accepted (a repeated `paymentRef` is not kept twice).
    pub payment_confirmations: Vec<Value>,
    /// Payment confirmations received, repeats and refusals included.
    pub payment_attempts: u32,
}

struct Tokens {
    /// Refresh tokens not yet spent.
    refresh: HashSet<String>,
    access: HashMap<String, (Instant, String)>,
    /// The current geolocation prefix ("/us2").
    geo: String,
}

pub(crate) struct Inner {
    cfg: ConcurConfig,
    addr: OnceLock<SocketAddr>,
    docs: Mutex<Vec<Doc>>,
    tokens: Mutex<Tokens>,
    issued: AtomicU64,
    refreshes: AtomicU64,
    vendors: Mutex<Vec<Value>>,
    vendor_writes: AtomicU64,
    faults: FaultQueue,
    log: RequestLogStore,
}

#[derive(Clone)]
pub struct ConcurSim {
    inner: Arc<Inner>,
}

fn fis_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"code": status.as_u16(), "message": message})),
    )
        .into_response()
}

impl ConcurSim {
    pub async fn start(cfg: ConcurConfig) -> std::io::Result<ConcurSim> {
        Self::start_on(cfg, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_on(cfg: ConcurConfig, addr: SocketAddr) -> std::io::Result<ConcurSim> {
        let sim = ConcurSim {
            inner: Arc::new(Inner {
                cfg,
                addr: OnceLock::new(),
                docs: Mutex::new(Vec::new()),
                tokens: Mutex::new(Tokens {
                    refresh: HashSet::new(),
                    access: HashMap::new(),
                    geo: "/us2".into(),
                }),
                issued: AtomicU64::new(0),
                refreshes: AtomicU64::new(0),
                vendors: Mutex::new(Vec::new()),
                vendor_writes: AtomicU64::new(0),
                faults: FaultQueue::default(),
                log: RequestLogStore::default(),
            }),
        };
        let router = Router::new()
            .route(
                "/_sandbox/concur/requests",
                get(ctl_requests).delete(ctl_clear_requests),
            )
            .route("/_sandbox/concur/faults", post(ctl_fault))
            .route("/_sandbox/concur/expire-tokens", post(ctl_expire))
            .route("/_sandbox/concur/refresh-token", post(ctl_refresh_token))
            .route("/_sandbox/concur/invoices", post(ctl_add_invoice))
            .route("/_sandbox/concur/expenses", post(ctl_add_expense))
            .route("/_sandbox/concur/documents", get(ctl_documents))
            .route("/_sandbox/concur/documents/{id}/recall", post(ctl_recall))
            .fallback(any(dispatch))
            .layer(middleware::from_fn_with_state(sim.clone(), faults))
            .layer(middleware::from_fn_with_state(sim.clone(), log_requests))
            .with_state(sim.clone());
        let local = crate::server::spawn(router, addr).await?;
        let _ = sim.inner.addr.set(local);
        Ok(sim)
    }

    pub fn config(&self) -> &ConcurConfig {
        &self.inner.cfg
    }

    fn root(&self) -> String {
        format!("http://{}", self.inner.addr.get().expect("bound"))
    }

    /// "http://127.0.0.1:PORT": every URL of the simulator (app, geolocations) starts with it.
    pub fn base_url(&self) -> String {
        self.root()
    }

    /// The app's geolocation: what the connector is configured with (`base_url`).
    pub fn app_url(&self) -> String {
        format!("{}{APP_PREFIX}", self.root())
    }

    /// The geolocation token responses name now.
    pub fn geolocation(&self) -> String {
        format!("{}{}", self.root(), self.inner.tokens.lock().unwrap().geo)
    }

    /// The company moves: later token responses name another geolocation, and the API stops
    /// answering under the old one (401).
    pub fn move_geolocation(&self, prefix: &str) {
        let mut t = self.inner.tokens.lock().unwrap();
        t.geo = format!("/{}", prefix.trim_matches('/'));
        t.access.clear();
    }

    /// A new refresh token, as the one-time company request-token exchange yields (§2.2).
    pub fn issue_refresh_token(&self) -> String {
        let n = self.inner.issued.fetch_add(1, Ordering::SeqCst);
        let token = format!("rt-{n}-{}", uuid::Uuid::new_v4().simple());
        self.inner
            .tokens
            .lock()
            .unwrap()
            .refresh
            .insert(token.clone());
        token
    }

    /// Refresh-token grants answered with a new token.
    pub fn refreshes(&self) -> u64 {
        self.inner.refreshes.load(Ordering::SeqCst)
    }

    pub fn expire_tokens(&self) {
        self.inner.tokens.lock().unwrap().access.clear();
    }

    pub fn fail_next(&self, rule: FaultRule) {
        self.inner.faults.push(rule);
    }

    pub fn requests(&self) -> Vec<RequestLog> {
        self.inner.log.snapshot()
    }

    pub fn clear_requests(&self) {
        self.inner.log.clear();
    }

    fn add(&self, doc_type: &str, document: Value) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.inner.docs.lock().unwrap().push(Doc {
            id: id.clone(),
            doc_type: doc_type.into(),
            status: "READY".into(),
            document,
            acknowledges: 0,
            posting_confirmations: Vec::new(),
            payment_confirmations: Vec::new(),
            payment_attempts: 0,
        });
        id
    }

    /// Adds an invoice payment request READY for integration; returns its 32-char FIS id.
    pub fn add_invoice(&self, inv: NewInvoice) -> String {
        self.add("invoice", inv.to_document())
    }

    /// Adds an expense report READY for integration; returns its FIS id.
    pub fn add_expense(&self, report: NewExpense) -> String {
        self.add("expense", report.to_document())
    }

    /// The admin recalls (sends back) the document: acknowledge answers 102, posting 112.
    pub fn recall(&self, id: &str) -> bool {
        let mut docs = self.inner.docs.lock().unwrap();
        match docs.iter_mut().find(|d| d.id == id) {
            Some(d) => {
                d.status = "RECALLED".into();
                true
            }
            None => false,
        }
    }

    /// A person sends the document back, it is corrected and submitted again: READY once more,
    /// under the same FIS id, with a later submit date (`reportSubmitDate` / `submitDate`).
    /// Doubt: whether FIS keeps the document id across a resubmission is not documented; the
    /// same id is the harder case for a client (its earlier outcome is keyed by it).
    pub fn resubmit(&self, id: &str) -> bool {
        let mut docs = self.inner.docs.lock().unwrap();
        let Some(d) = docs.iter_mut().find(|d| d.id == id) else {
            return false;
        };
        let (section, field) = match d.doc_type.as_str() {
            "expense" => ("report", "reportSubmitDate"),
            _ => ("requestHeader", "submitDate"),
        };
        let earlier = d.document[section][field]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_else(chrono::Utc::now);
        let later = (earlier + chrono::Duration::days(1))
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        d.document[section][field] = Value::String(later);
        d.status = "READY".into();
        true
    }

    /// Acknowledges a READY document as a client would (a test standing in for a worker that
    /// acknowledged and died).
    pub fn acknowledge(&self, id: &str) -> bool {
        let mut docs = self.inner.docs.lock().unwrap();
        match docs.iter_mut().find(|d| d.id == id && d.status == "READY") {
            Some(d) => {
                d.status = "ACKNOWLEDGED".into();
                d.acknowledges += 1;
                true
            }
            None => false,
        }
    }

    pub fn document(&self, id: &str) -> Option<DocView> {
        self.documents().into_iter().find(|d| d.id == id)
    }

    pub fn documents(&self) -> Vec<DocView> {
        self.inner
            .docs
            .lock()
            .unwrap()
            .iter()
            .map(|d| DocView {
                id: d.id.clone(),
                doc_type: d.doc_type.clone(),
                status: d.status.clone(),
                acknowledges: d.acknowledges,
                posting_confirmations: d.posting_confirmations.clone(),
                payment_confirmations: d.payment_confirmations.clone(),
                payment_attempts: d.payment_attempts,
            })
            .collect()
    }

    // ---- token endpoint (§2.2) ----

    fn token(&self, prefix: &str, body: &[u8]) -> Response {
        let form: HashMap<String, String> = url_form(body);
        let geo = self.geolocation();
        let refuse = |status: StatusCode, code: u32, error: &str, description: &str| {
            (
                status,
                Json(json!({"code": code, "error": error, "error_description": description, "geolocation": geo})),
            )
                .into_response()
        };
        let current = self.inner.tokens.lock().unwrap().geo.clone();
        if prefix != APP_PREFIX && prefix != current {
            // §2.2 code 16: "user lives elsewhere".
            return refuse(
                StatusCode::BAD_REQUEST,
                16,
                "invalid_request",
                "user lives elsewhere",
            );
        }
        if form.get("client_id") != Some(&self.inner.cfg.client_id)
            || form.get("client_secret") != Some(&self.inner.cfg.client_secret)
        {
            return refuse(
                StatusCode::UNAUTHORIZED,
                5,
                "invalid_client",
                "incorrect credentials",
            );
        }
        if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
            return refuse(
                StatusCode::BAD_REQUEST,
                106,
                "invalid_request",
                "refresh_token missing",
            );
        }
        let Some(old) = form.get("refresh_token") else {
            return refuse(
                StatusCode::BAD_REQUEST,
                106,
                "invalid_request",
                "refresh_token missing",
            );
        };
        let mut t = self.inner.tokens.lock().unwrap();
        if !t.refresh.remove(old) {
            return refuse(
                StatusCode::BAD_REQUEST,
                108,
                "invalid_grant",
                "bad or expired refresh token",
            );
        }
        let n = self.inner.issued.fetch_add(1, Ordering::SeqCst);
        let refresh = format!("rt-{n}-{}", uuid::Uuid::new_v4().simple());
        let access = format!("at-{n}-{}", uuid::Uuid::new_v4().simple());
        t.refresh.insert(refresh.clone());
        let until = Instant::now() + Duration::from_secs(self.inner.cfg.token_ttl_secs);
        let geo_prefix = t.geo.clone();
        t.access.insert(access.clone(), (until, geo_prefix));
        drop(t);
        self.inner.refreshes.fetch_add(1, Ordering::SeqCst);
        Json(json!({
            "expires_in": self.inner.cfg.token_ttl_secs.to_string(),
            "scope": "FISVC",
            "token_type": "Bearer",
            "access_token": access,
            "refresh_token": refresh,
            "refresh_expires_in": (chrono::Utc::now() + chrono::Duration::days(180)).timestamp(),
            "id_token": "oidc",
            "geolocation": self.geolocation(),
        }))
        .into_response()
    }

    fn authorised(&self, prefix: &str, headers: &HeaderMap) -> bool {
        let Some(token) = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let t = self.inner.tokens.lock().unwrap();
        prefix == t.geo
            && t.access
                .get(token)
                .is_some_and(|(until, geo)| Instant::now() < *until && *geo == t.geo)
    }

    // ---- FIS v4 (§2.3) ----

    fn list(&self, doc_type: &str, query: &HashMap<String, String>, text: bool) -> Response {
        let docs = self.inner.docs.lock().unwrap();
        let render = |d: &Doc| {
            let document = if text || self.inner.cfg.force_text {
                Value::String(d.document.to_string())
            } else {
                d.document.clone()
            };
            json!({
                "id": d.id, "docType": d.doc_type, "companyId": "COMPANY_ID",
                "entityId": "ENTITY_ID", "companyUuid": "COMPANY_UUID", "erpSystemId": "",
                "document": document, "docStatus": d.status, "links": []
            })
        };
        // §2.7.3: `ignoreDocumentStatus` counts only with `docId`.
        if let Some(id) = query.get("docId") {
            let ignore = query.get("ignoreDocumentStatus").map(String::as_str) == Some("yes");
            let content: Vec<Value> = docs
                .iter()
                .filter(|d| d.id == *id && d.doc_type == doc_type)
                .filter(|d| ignore || d.status == "READY")
                .map(render)
                .collect();
            let n = content.len();
            return Json(json!({
                "links": [], "content": content,
                "page": {"size": 1, "totalElements": n, "totalPages": n, "number": 0}
            }))
            .into_response();
        }
        let limit: usize = query
            .get("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(25)
            .clamp(1, 1000);
        let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
        let ready: Vec<&Doc> = docs
            .iter()
            .filter(|d| d.doc_type == doc_type && d.status == "READY")
            .collect();
        let total = ready.len();
        let pages = total.div_ceil(limit);
        let content: Vec<Value> = ready
            .iter()
            .skip(page * limit)
            .take(limit)
            .map(|d| render(d))
            .collect();
        let href = |p: usize| {
            format!("{INTERNAL_HREF}/{doc_type}/transactions?limit={limit}&page={p}&size={limit}")
        };
        let mut links = vec![
            json!({"rel": "first", "href": href(0)}),
            json!({"rel": "self", "href": href(page)}),
        ];
        if page + 1 < pages {
            links.push(json!({"rel": "next", "href": href(page + 1)}));
        }
        links.push(json!({"rel": "last", "href": href(pages.saturating_sub(1))}));
        Json(json!({
            "links": links, "content": content,
            "page": {"size": limit, "totalElements": total, "totalPages": pages, "number": page}
        }))
        .into_response()
    }

    fn system_ok(&self, body: &Value) -> bool {
        let given = body.get("systemId").and_then(Value::as_str).unwrap_or("");
        given == self.inner.cfg.system_id
    }

    fn acknowledge_route(&self, doc_type: &str, body: &Value) -> Response {
        let Some(ids) = body.get("ids").and_then(Value::as_array) else {
            return fis_error(StatusCode::BAD_REQUEST, "ids required");
        };
        let system_ok = self.system_ok(body);
        let mut docs = self.inner.docs.lock().unwrap();
        let items: Vec<Value> = ids
            .iter()
            .map(|id| {
                let id = id.as_str().unwrap_or("");
                let item = |code: u32, result: &str, msg: &str| {
                    json!({"code": code, "docId": id, "systemId": null, "acknowledgeResult": result, "errorMessage": msg})
                };
                if !system_ok {
                    return item(99, "FAILURE", "System Id in request does not match system id in FI database");
                }
                let Some(d) = docs.iter_mut().find(|d| d.id == id) else {
                    return item(104, "FAILURE", "This document does not exist in FI database");
                };
                if d.doc_type != doc_type {
                    return item(105, "FAILURE", "This document is not of type");
                }
                match d.status.as_str() {
                    "RECALLED" => item(102, "FAILURE", "This document has been recalled"),
                    "READY" => {
                        d.status = "ACKNOWLEDGED".into();
                        d.acknowledges += 1;
                        item(0, "SUCCESS", "")
                    }
                    _ => {
                        d.acknowledges += 1;
                        item(101, "FAILURE", "This document was previously acknowledged by SystemId: null.")
                    }
                }
            })
            .collect();
        Json(Value::Array(items)).into_response()
    }

    fn posting(&self, doc_type: &str, body: &Value) -> Response {
        let Some(list) = body.get("postingConfirmations").and_then(Value::as_array) else {
            return fis_error(StatusCode::BAD_REQUEST, "postingConfirmations required");
        };
        let system_ok = self.system_ok(body);
        let mut docs = self.inner.docs.lock().unwrap();
        let items: Vec<Value> = list
            .iter()
            .map(|c| {
                let id = c.get("docId").and_then(Value::as_str).unwrap_or("");
                let item = |code: u32, result: &str, msg: &str| {
                    json!({"code": code, "docId": id, "systemId": null, "postingConfirmationResult": result, "errorMessage": msg, "detailMessage": ""})
                };
                let status = c.get("overallPostingStatusCode").and_then(Value::as_str);
                let valid = matches!(status, Some("success") | Some("error"))
                    && c.get("systemMessages").is_some_and(Value::is_array)
                    && id.len() <= 32;
                if !valid {
                    return item(198, "FAILURE", "Invalid request - this same request will not work if tried again.");
                }
                if !system_ok {
                    return item(99, "FAILURE", "System Id in request does not match system id in FI database");
                }
                let Some(d) = docs.iter_mut().find(|d| d.id == id) else {
                    return item(116, "DOCUMENT_NOT_FOUND", "This document does not exist.");
                };
                if d.doc_type != doc_type {
                    return item(115, "FAILURE", "This document is not of type");
                }
                d.posting_confirmations.push(c.clone());
                match d.status.as_str() {
                    "RECALLED" => item(112, "WAS_RECALLED", "This document has been recalled"),
                    "READY" => item(111, "NOT_YET_ACKNOWLEDGED", "This document has not been acknowledged"),
                    "ACKNOWLEDGED" | "POSTING_CONFIRMED_FAILURE" => {
                        d.status = if status == Some("success") {
                            "POSTING_CONFIRMED_SUCCESS".into()
                        } else {
                            "POSTING_CONFIRMED_FAILURE".into()
                        };
                        item(0, "SUCCESS", "")
                    }
                    _ => item(113, "FAILURE", "Confirmation has been posted for this document"),
                }
            })
            .collect();
        Json(Value::Array(items)).into_response()
    }
}

impl ConcurSim {
    /// §2.3, §2.7.4: a `paymentRef` seen before is `298 NOOP`; before a successful posting
    /// confirmation `NOT_POSTING_CONFIRMED` (code assumed 298, §2.7.4 [U]); a `CP` on a document
    /// already completely paid `213`; expense documents only (§2.7.2: "Expense only at this
    /// time"; the answer for another type is [U], 298 here).
    fn payment(&self, doc_type: &str, body: &Value) -> Response {
        let Some(list) = body.get("processingConfirmation").and_then(Value::as_array) else {
            return fis_error(StatusCode::BAD_REQUEST, "processingConfirmation required");
        };
        let system_ok = self.system_ok(body);
        let mut docs = self.inner.docs.lock().unwrap();
        let items: Vec<Value> = list
            .iter()
            .map(|c| {
                let id = c.get("docId").and_then(Value::as_str).unwrap_or("");
                let code_of = c.get("processingStatusCode").and_then(Value::as_str).unwrap_or("");
                let details = c.get("clearingDetails").and_then(Value::as_array);
                let pay_ref = details
                    .and_then(|d| d.first())
                    .and_then(|d| d["clearingReference"]["paymentRef"].as_str())
                    .unwrap_or("")
                    .to_string();
                let item = |code: u32, result: &str, msg: &str| {
                    json!({"code": code, "docId": id, "systemId": null, "paymentConfirmationResult": result,
                           "errorMessage": msg, "paymentRef": pay_ref, "detailMessage": ""})
                };
                if !system_ok {
                    return item(99, "FAILURE", "System Id in request does not match system id in FI database");
                }
                let amount_ok = details.and_then(|d| d.first()).is_some_and(|d| d["clearingAmount"].is_number());
                if doc_type != "expense"
                    || !matches!(code_of, "CP" | "PP" | "RE" | "OB")
                    || pay_ref.is_empty()
                    || !amount_ok
                {
                    return item(298, "FAILURE", "Invalid payment request - this same request will not work if tried again.");
                }
                let Some(d) = docs.iter_mut().find(|d| d.id == id) else {
                    return item(116, "DOCUMENT_NOT_FOUND", "This document does not exist.");
                };
                d.payment_attempts += 1;
                if d.payment_confirmations
                    .iter()
                    .any(|p| p["clearingDetails"][0]["clearingReference"]["paymentRef"] == pay_ref.as_str())
                {
                    return item(298, "NOOP", &format!("Payment confirmation already exist {pay_ref}."));
                }
                match d.status.as_str() {
                    "POSTING_CONFIRMED_SUCCESS" => {
                        d.payment_confirmations.push(c.clone());
                        if code_of == "CP" {
                            d.status = "PAYMENT_CONFIRMED_SUCCESS".into();
                        }
                        item(0, "SUCCESS", "")
                    }
                    "PAYMENT_CONFIRMED_SUCCESS" => {
                        item(213, "NOOP", "Payment confirmation has been posted for this document")
                    }
                    _ => item(298, "NOT_POSTING_CONFIRMED", "The document has no successful posting confirmation"),
                }
            })
            .collect();
        Json(Value::Array(items)).into_response()
    }
}

fn url_form(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn query_of(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .map(|q| url_form(q.as_bytes()))
        .unwrap_or_default()
}

/// Every route but the control ones: `/{geo}/oauth2/v0/token` and
/// `/{geo}/financialintegration/fi/v4/companies/transactiontypes/{docType}/transactions[/…]`.
async fn dispatch(
    State(sim): State<ConcurSim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let Some((prefix, rest)) = path[1..].split_once('/').map(|(p, r)| (format!("/{p}"), r)) else {
        return fis_error(StatusCode::NOT_FOUND, "no such resource");
    };
    if rest == "oauth2/v0/token" && method == Method::POST {
        return sim.token(&prefix, &body);
    }
    let vendors = rest == "api/v3.1/invoice/vendors";
    let fis = rest.strip_prefix("financialintegration/fi/v4/companies/transactiontypes/");
    if fis.is_none() && !vendors {
        return fis_error(StatusCode::NOT_FOUND, "no such resource");
    }
    if !sim.authorised(&prefix, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": 401, "message": "invalid or expired access token, or wrong geolocation"})),
        )
            .into_response();
    }
    let json_body = || serde_json::from_slice::<Value>(&body).ok();
    let Some(fis) = fis else {
        return match (method, json_body()) {
            (Method::GET, _) => sim.vendors_get(&query_of(&uri)),
            (Method::POST, Some(b)) => sim.vendors_write(&b, true),
            (Method::PUT, Some(b)) => sim.vendors_write(&b, false),
            (Method::POST | Method::PUT, None) => {
                fis_error(StatusCode::BAD_REQUEST, "invalid JSON")
            }
            _ => fis_error(StatusCode::METHOD_NOT_ALLOWED, "not allowed"),
        };
    };
    let parts: Vec<&str> = fis.split('/').collect();
    let doc_type = parts.first().copied().unwrap_or("");
    if !matches!(
        doc_type,
        "expense" | "invoice" | "cashadvance" | "payroll" | "obligation"
    ) {
        return fis_error(StatusCode::BAD_REQUEST, "unknown docType");
    }
    let text = headers
        .get("documentformatas")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("text"));
    match (method, &parts[1..]) {
        (Method::GET, ["transactions"]) => sim.list(doc_type, &query_of(&uri), text),
        (Method::POST, ["transactions", "acknowledgements"]) => match json_body() {
            Some(b) => sim.acknowledge_route(doc_type, &b),
            None => fis_error(StatusCode::BAD_REQUEST, "invalid JSON"),
        },
        (Method::POST, ["transactions", "postingconfirmations"]) => match json_body() {
            Some(b) => sim.posting(doc_type, &b),
            None => fis_error(StatusCode::BAD_REQUEST, "invalid JSON"),
        },
        (Method::POST, ["transactions", "paymentconfirmations"]) => match json_body() {
            Some(b) => sim.payment(doc_type, &b),
            None => fis_error(StatusCode::BAD_REQUEST, "invalid JSON"),
        },
        _ => fis_error(StatusCode::NOT_FOUND, "no such resource"),
    }
}

fn is_api(req: &Request) -> bool {
    let p = req.uri().path();
    p.contains("/financialintegration/") || p.contains("/api/v3.1/")
}

async fn log_requests(State(sim): State<ConcurSim>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/_sandbox") {
        return next.run(req).await;
    }
    sim.inner.log.record(req, next).await
}

/// §2.5: no published limits; 429 and 5xx come only from injected faults.
async fn faults(State(sim): State<ConcurSim>, req: Request, next: Next) -> Response {
    if !is_api(&req) {
        return next.run(req).await;
    }
    sim.inner.faults.apply(fis_error, req, next).await
}

async fn ctl_requests(State(sim): State<ConcurSim>) -> Response {
    Json(sim.requests()).into_response()
}
async fn ctl_clear_requests(State(sim): State<ConcurSim>) -> StatusCode {
    sim.clear_requests();
    StatusCode::NO_CONTENT
}
async fn ctl_fault(State(sim): State<ConcurSim>, Json(rule): Json<FaultRule>) -> StatusCode {
    sim.fail_next(rule);
    StatusCode::NO_CONTENT
}
async fn ctl_expire(State(sim): State<ConcurSim>) -> StatusCode {
    sim.expire_tokens();
    StatusCode::NO_CONTENT
}
async fn ctl_refresh_token(State(sim): State<ConcurSim>) -> Response {
    Json(json!({"refresh_token": sim.issue_refresh_token(), "geolocation": sim.app_url()}))
        .into_response()
}
async fn ctl_add_invoice(State(sim): State<ConcurSim>, Json(inv): Json<NewInvoice>) -> Response {
    Json(json!({"id": sim.add_invoice(inv)})).into_response()
}
async fn ctl_add_expense(State(sim): State<ConcurSim>, Json(r): Json<NewExpense>) -> Response {
    Json(json!({"id": sim.add_expense(r)})).into_response()
}
async fn ctl_documents(State(sim): State<ConcurSim>) -> Response {
    Json(sim.documents()).into_response()
}
async fn ctl_recall(State(sim): State<ConcurSim>, Path(id): Path<String>) -> StatusCode {
    if sim.recall(&id) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}
