//! Dynamics 365 Business Central API v2.0 simulator (business-central.md Part A and the
//! "Simulator checklist").
//!
//! Token endpoint `/{tenant}/oauth2/v2.0/token` (Entra shape), API under
//! `/v2.0/{tenant}/{env}/api/v2.0/`, one company "CRONUS USA, Inc.".
//!
//! Simulated:
//! - vendors (CRUD); accounts, dimensions, dimensionValues (read-only, 405 on writes);
//! - purchaseInvoices, purchaseOrders and purchaseCreditMemos (A6.2–A6.4), one code path
//!   told apart by `store::Kind`: lines (`purchaseInvoiceLines`, `purchaseOrderLines` with
//!   `directUnitCost`, `purchaseCreditMemoLines`), nested and flat, deep insert, dimension
//!   set lines on headers and lines, read-only fields refused (gotcha 2), `number` from a
//!   number series; `Microsoft.NAV.post` on invoices and credit memos (renumbers, keeps
//!   `id`, Draft → Open, a second post fails); orders stay "Draft";
//! - server-driven paging, `$filter`, `$expand`, `$select`, ETags and If-Match (PATCH: 400
//!   when missing, 409 when stale), rate limit and concurrency queue (A4);
//! - webhook subscriptions at `{api root}/subscriptions` (A8): handshake on create and
//!   renewal, quoted string keys, If-Match, 3-day expiry (lazy), 200 max, supported-set
//!   check (no purchaseOrders); notifications for vendors, purchaseInvoices, accounts and
//!   dimensions after `BcConfig::notification_delay`, coalesced, `collection` over 1,000,
//!   retry on 408/429/5xx, subscription deleted on any other non-2xx.
//!
//! - JSON `$batch` (A5; `batch.rs`): ≤ 100 operations, `Isolation: snapshot` all-or-nothing,
//!   per-operation status, every operation counted against the rate budget.
//!
//! Not simulated: `$metadata`, `Microsoft.NAV.receiveAndInvoice`, order release
//! and approvals, items, tax, credit memo application to invoices, the 36-hour retry span.

mod auth;
mod batch;
mod control;
mod errors;
mod filter;
mod handlers;
mod odata;
mod schema;
mod store;
mod subs;
mod values;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use uuid::Uuid;

use crate::faults::{FaultQueue, FaultRule};
use crate::ratelimit::SlidingWindow;
use crate::reqlog::{RequestLog, RequestLogStore};
use errors::ApiError;
use store::Store;

pub use auth::BC_SCOPE;

/// A sliding-window request budget.
#[derive(Clone, Debug)]
pub struct RateLimit {
    pub requests: u32,
    pub window: Duration,
}

/// How the simulated BC environment is set up.
#[derive(Clone, Debug)]
pub struct BcConfig {
    pub tenant: String,
    pub environment: String,
    pub client_id: String,
    pub client_secret: String,
    /// A2: Entra's documented `expires_in` is 3599.
    pub token_ttl_secs: u64,
    /// A4: 6,000 requests per 5-minute sliding window per user (README.md decision).
    /// `None` disables the limit.
    pub rate_limit: Option<RateLimit>,
    /// A4: 5 concurrent requests per user; excess requests WAIT, as BC queues them.
    pub max_concurrent: usize,
    /// `Some(n)`: send `Retry-After: n` on 429; `None`: omit it (A4: BC docs don't
    /// document the header).
    pub retry_after_secs: Option<u64>,
    /// A3: server page size 20,000; a client may ask for less with `Prefer`.
    pub max_page_size: usize,
    /// A8: BC waits 30 s after the first change and coalesces what changed meanwhile into
    /// one notification. Tests shorten it.
    pub notification_delay: Duration,
}

impl Default for BcConfig {
    fn default() -> Self {
        BcConfig {
            tenant: "sandbox-tenant".into(),
            environment: "production".into(),
            client_id: "bc-client".into(),
            client_secret: "bc-secret".into(),
            token_ttl_secs: 3599,
            rate_limit: Some(RateLimit {
                requests: 6000,
                window: Duration::from_secs(300),
            }),
            max_concurrent: 5,
            retry_after_secs: Some(1),
            max_page_size: 20000,
            notification_delay: Duration::from_secs(30),
        }
    }
}

/// One operation of a `$batch` as the simulator ran it.
#[derive(Clone, Debug, Serialize)]
pub struct BcBatchOpView {
    pub method: String,
    /// As sent, relative to the API root.
    pub url: String,
    pub if_match: Option<String>,
    pub status: u16,
    /// How long an injected hang held its batch before it ran (0: none): past the client's
    /// timeout, the client gave up on the batch while the simulator committed it.
    pub delayed_ms: u64,
}

/// One purchase invoice as stored, for test assertions.
#[derive(Clone, Debug, Serialize)]
pub struct BcInvoiceView {
    pub id: Uuid,
    pub number: String,
    pub vendor_number: String,
    pub vendor_invoice_number: String,
    /// "Draft" | "Open" | "Paid"
    pub status: String,
    pub posting_date: NaiveDate,
    pub invoice_date: NaiveDate,
    pub currency_code: String,
    pub lines: Vec<BcLineView>,
    pub total: Decimal,
    /// Successful `Microsoft.NAV.post` calls (a double post shows up here).
    pub post_count: u32,
    /// Header-level dimension set lines (code, valueCode).
    pub dimensions: Vec<(String, String)>,
    pub last_modified: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BcLineView {
    pub id: Uuid,
    pub sequence: i32,
    pub line_type: String,
    pub line_object_number: String,
    pub description: String,
    pub quantity: Decimal,
    pub unit_cost: Decimal,
    pub amount: Decimal,
    /// (code, valueCode)
    pub dimensions: Vec<(String, String)>,
}

/// One purchase order as stored, for test assertions.
#[derive(Clone, Debug, Serialize)]
pub struct BcOrderView {
    pub id: Uuid,
    pub number: String,
    pub vendor_number: String,
    /// Always "Draft" (release and approval are not simulated).
    pub status: String,
    pub order_date: NaiveDate,
    pub currency_code: String,
    pub lines: Vec<BcOrderLineView>,
    pub total: Decimal,
    /// Header-level dimension set lines (code, valueCode).
    pub dimensions: Vec<(String, String)>,
    pub etag: String,
    /// 1 when created, +1 per modification (each changes the ETag).
    pub version: u64,
    pub last_modified: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BcOrderLineView {
    pub id: Uuid,
    pub sequence: i32,
    pub line_type: String,
    pub line_object_number: String,
    pub description: String,
    pub description2: String,
    pub quantity: Decimal,
    pub direct_unit_cost: Decimal,
    pub amount: Decimal,
    /// (code, valueCode)
    pub dimensions: Vec<(String, String)>,
    pub etag: String,
}

/// One purchase credit memo as stored, for test assertions.
#[derive(Clone, Debug, Serialize)]
pub struct BcCreditMemoView {
    pub id: Uuid,
    pub number: String,
    pub vendor_number: String,
    pub vendor_credit_memo_number: String,
    /// The posted purchase invoice it is applied to (`invoiceNumber`), if any.
    pub applies_to_invoice: Option<String>,
    /// "Draft" | "Open"
    pub status: String,
    pub posting_date: NaiveDate,
    pub credit_memo_date: NaiveDate,
    pub currency_code: String,
    pub lines: Vec<BcLineView>,
    pub total: Decimal,
    /// Successful `Microsoft.NAV.post` calls.
    pub post_count: u32,
    pub dimensions: Vec<(String, String)>,
    pub last_modified: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BcVendorView {
    pub id: Uuid,
    pub number: String,
    pub display_name: String,
    pub tax_registration_number: String,
    /// " " | "Payment" | "All"
    pub blocked: String,
    pub last_modified: DateTime<Utc>,
}

/// A live webhook subscription (A8).
#[derive(Clone, Debug, Serialize)]
pub struct BcSubscriptionView {
    pub id: String,
    pub notification_url: String,
    pub resource: String,
    pub client_state: String,
    pub expiration: DateTime<Utc>,
}

/// One notification POST the simulator made (each retry is its own entry).
#[derive(Clone, Debug, Serialize)]
pub struct BcNotificationView {
    pub url: String,
    /// The receiver's status; `None` when it could not be reached.
    pub status: Option<u16>,
    pub body: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// One validation handshake the simulator made (A8).
#[derive(Clone, Debug, Serialize)]
pub struct BcHandshakeView {
    pub url: String,
    pub status: Option<u16>,
    /// 200 with the exact token as the body.
    pub accepted: bool,
    pub at: DateTime<Utc>,
}

pub(crate) struct Inner {
    cfg: BcConfig,
    addr: OnceLock<SocketAddr>,
    store: Mutex<Store>,
    tokens: Mutex<HashMap<String, Instant>>,
    tokens_issued: AtomicU64,
    faults: FaultQueue,
    log: RequestLogStore,
    window: Option<SlidingWindow>,
    slots: tokio::sync::Semaphore,
    waiting: AtomicUsize,
    throttled: AtomicU64,
    /// Requests counted against the rate budget: one per API request, one per operation of a
    /// `$batch` (batch.rs).
    spent: AtomicU64,
    /// Operations of `$batch` requests, for tests.
    batch_ops: Mutex<Vec<BcBatchOpView>>,
    subs: Mutex<Vec<subs::Subscription>>,
    notifications: Mutex<Vec<BcNotificationView>>,
    handshakes: Mutex<Vec<BcHandshakeView>>,
    /// Wakes the webhook notifier after a change.
    wake: tokio::sync::Notify,
    /// Client for handshakes and notifications.
    http: reqwest::Client,
}

/// A running Business Central simulator. Cheap to clone (shared state).
#[derive(Clone)]
pub struct BcSim {
    inner: Arc<Inner>,
}

/// A4: at most 95 requests may wait for a slot; beyond that BC answers 429.
const MAX_QUEUE: usize = 95;

impl BcSim {
    /// Binds 127.0.0.1 on a free port and serves in a tokio task.
    pub async fn start(cfg: BcConfig) -> std::io::Result<BcSim> {
        Self::start_on(cfg, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_on(cfg: BcConfig, addr: SocketAddr) -> std::io::Result<BcSim> {
        let window = cfg
            .rate_limit
            .as_ref()
            .map(|r| SlidingWindow::new(r.requests, r.window));
        let slots = tokio::sync::Semaphore::new(cfg.max_concurrent.max(1));
        let sim = BcSim {
            inner: Arc::new(Inner {
                cfg,
                addr: OnceLock::new(),
                store: Mutex::new(Store::new()),
                tokens: Mutex::new(HashMap::new()),
                tokens_issued: AtomicU64::new(0),
                faults: FaultQueue::default(),
                log: RequestLogStore::default(),
                window,
                slots,
                waiting: AtomicUsize::new(0),
                throttled: AtomicU64::new(0),
                spent: AtomicU64::new(0),
                batch_ops: Mutex::new(Vec::new()),
                subs: Mutex::new(Vec::new()),
                notifications: Mutex::new(Vec::new()),
                handshakes: Mutex::new(Vec::new()),
                wake: tokio::sync::Notify::new(),
                http: reqwest::Client::new(),
            }),
        };
        let local = crate::server::spawn(sim.router(), addr).await?;
        let _ = sim.inner.addr.set(local);
        tokio::spawn(subs::notifier(sim.clone()));
        Ok(sim)
    }

    fn router(&self) -> Router {
        Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(auth::token))
            .merge(control::routes())
            .fallback(handlers::api)
            .layer(middleware::from_fn_with_state(self.clone(), authenticate))
            .layer(middleware::from_fn_with_state(self.clone(), admit))
            .layer(middleware::from_fn_with_state(self.clone(), log_requests))
            .with_state(self.clone())
    }

    /// The configuration it runs with (credentials included: these are simulator values).
    pub fn config(&self) -> &BcConfig {
        &self.inner.cfg
    }

    /// "http://127.0.0.1:PORT". API root = `{base}/v2.0/{tenant}/{env}/api/v2.0`;
    /// token URL = `{base}/{tenant}/oauth2/v2.0/token`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr.get().expect("bound"))
    }

    /// `{base}/v2.0/{tenant}/{env}/api/v2.0`
    pub fn api_root(&self) -> String {
        format!(
            "{}/v2.0/{}/{}/api/v2.0",
            self.base_url(),
            self.inner.cfg.tenant,
            self.inner.cfg.environment
        )
    }

    /// `{base}/{tenant}/oauth2/v2.0/token`
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.base_url(),
            self.inner.cfg.tenant
        )
    }

    /// The one company, "CRONUS USA, Inc.".
    pub fn company_id(&self) -> Uuid {
        self.inner.store.lock().unwrap().company_id
    }

    pub fn add_vendor(&self, number: &str, name: &str) -> Uuid {
        let id = self.inner.store.lock().unwrap().add_vendor(number, name);
        self.wake();
        id
    }

    /// Sets a vendor's `blocked` (`" "`, `"Payment"`, `"All"`), as a person does in BC; the
    /// vendor must exist.
    pub fn block_vendor(&self, number: &str, blocked: &str) {
        let mut store = self.inner.store.lock().unwrap();
        let id = store
            .vendors
            .iter()
            .find(|v| v.fields.get("number").and_then(serde_json::Value::as_str) == Some(number))
            .map(|v| v.meta.id)
            .unwrap_or_else(|| panic!("no vendor {number}"));
        store
            .patch_vendor(id, &serde_json::json!({ "blocked": blocked }))
            .expect("a valid blocked value");
    }

    /// A vendor with `taxRegistrationNumber` set (Text[20]; panics when invalid).
    pub fn add_vendor_with_tax_id(&self, number: &str, name: &str, tax_id: &str) -> Uuid {
        let body = serde_json::json!({
            "number": number,
            "displayName": name,
            "taxRegistrationNumber": tax_id,
        });
        let id = self
            .inner
            .store
            .lock()
            .unwrap()
            .create_vendor(&body)
            .expect("valid seed vendor");
        self.wake();
        id
    }

    /// A G/L account of type "Posting".
    pub fn add_account(&self, number: &str, name: &str) -> Uuid {
        let id = self.inner.store.lock().unwrap().add_account(number, name);
        self.wake();
        id
    }

    pub fn add_dimension(&self, code: &str, values: &[&str]) -> Uuid {
        let id = self.inner.store.lock().unwrap().add_dimension(code, values);
        self.wake();
        id
    }

    /// Tells the webhook notifier that something may have changed.
    pub(crate) fn wake(&self) {
        self.inner.wake.notify_one();
    }

    pub fn vendors(&self) -> Vec<BcVendorView> {
        let store = self.inner.store.lock().unwrap();
        let f = |v: &store::Vendor, k: &str| {
            v.fields
                .get(k)
                .and_then(|x| x.as_str())
                .unwrap_or("")
                .to_owned()
        };
        store
            .vendors
            .iter()
            .map(|v| BcVendorView {
                id: v.meta.id,
                number: f(v, "number"),
                display_name: f(v, "displayName"),
                tax_registration_number: f(v, "taxRegistrationNumber"),
                blocked: f(v, "blocked"),
                last_modified: v.meta.modified,
            })
            .collect()
    }

    /// Every purchase order with lines and their dimensions.
    pub fn purchase_orders(&self) -> Vec<BcOrderView> {
        let store = self.inner.store.lock().unwrap();
        store
            .orders
            .iter()
            .map(|o| {
                let common = view(&store, o);
                BcOrderView {
                    id: o.meta.id,
                    number: o.number.clone(),
                    vendor_number: common.vendor_number,
                    status: o.status().to_owned(),
                    order_date: parse_date(o.document_date()),
                    currency_code: common.currency_code,
                    lines: o
                        .lines
                        .iter()
                        .map(|l| BcOrderLineView {
                            id: l.meta.id,
                            sequence: l.sequence() as i32,
                            line_type: l.line_type().to_owned(),
                            line_object_number: l.object_number().to_owned(),
                            description: l.description().to_owned(),
                            description2: l.description2().to_owned(),
                            quantity: l.quantity(),
                            direct_unit_cost: l.unit_cost(),
                            amount: l.amounts().1,
                            dimensions: store.dim_codes(&l.dims),
                            etag: l.meta.etag(),
                        })
                        .collect(),
                    total: o.total(),
                    dimensions: common.dimensions,
                    etag: o.meta.etag(),
                    version: o.meta.version,
                    last_modified: o.meta.modified,
                }
            })
            .collect()
    }

    /// Every purchase credit memo, drafts and posted.
    pub fn purchase_credit_memos(&self) -> Vec<BcCreditMemoView> {
        let store = self.inner.store.lock().unwrap();
        store
            .credit_memos
            .iter()
            .map(|c| {
                let v = view(&store, c);
                BcCreditMemoView {
                    id: v.id,
                    number: v.number,
                    vendor_number: v.vendor_number,
                    vendor_credit_memo_number: v.vendor_invoice_number,
                    applies_to_invoice: c
                        .fields
                        .get("invoiceNumber")
                        .and_then(serde_json::Value::as_str)
                        .filter(|n| !n.is_empty())
                        .map(str::to_string),
                    status: v.status,
                    posting_date: v.posting_date,
                    credit_memo_date: parse_date(c.document_date()),
                    currency_code: v.currency_code,
                    lines: v.lines,
                    total: v.total,
                    post_count: v.post_count,
                    dimensions: v.dimensions,
                    last_modified: v.last_modified,
                }
            })
            .collect()
    }

    /// Live webhook subscriptions (expired ones are dropped first).
    pub fn subscriptions(&self) -> Vec<BcSubscriptionView> {
        self.live_subscriptions()
            .into_iter()
            .map(|s| BcSubscriptionView {
                id: s.id,
                notification_url: s.notification_url,
                resource: s.resource,
                client_state: s.client_state,
                expiration: s.expiration,
            })
            .collect()
    }

    /// Moves a subscription's expiry (e.g. into the past). False when there is none.
    pub fn set_subscription_expiry(&self, id: &str, at: DateTime<Utc>) -> bool {
        let mut subs = self.inner.subs.lock().unwrap();
        match subs.iter_mut().find(|s| s.id == id) {
            Some(s) => {
                s.expiration = at;
                true
            }
            None => false,
        }
    }

    /// Drops a subscription as BC would after losing it. False when there is none.
    pub fn remove_subscription(&self, id: &str) -> bool {
        let mut subs = self.inner.subs.lock().unwrap();
        let before = subs.len();
        subs.retain(|s| s.id != id);
        subs.len() != before
    }

    /// Notification POSTs made so far (retries included), oldest first.
    pub fn notifications(&self) -> Vec<BcNotificationView> {
        self.inner.notifications.lock().unwrap().clone()
    }

    /// Validation handshakes made so far, oldest first.
    pub fn handshakes(&self) -> Vec<BcHandshakeView> {
        self.inner.handshakes.lock().unwrap().clone()
    }

    /// Every invoice, drafts and posted, with lines and their dimensions.
    pub fn purchase_invoices(&self) -> Vec<BcInvoiceView> {
        let store = self.inner.store.lock().unwrap();
        store.invoices.iter().map(|inv| view(&store, inv)).collect()
    }

    /// The company restored from a backup taken before any purchase document was entered (or
    /// a sandbox reset): every purchase invoice, credit memo and order is gone; master data and
    /// the company's id stay. A test control, as an administrator's restore is.
    pub fn restore_without_documents(&self) {
        let mut store = self.inner.store.lock().unwrap();
        store.invoices.clear();
        store.credit_memos.clear();
        store.orders.clear();
    }

    pub fn purchase_invoice(&self, id: Uuid) -> Option<BcInvoiceView> {
        let store = self.inner.store.lock().unwrap();
        store.invoice(id).ok().map(|inv| view(&store, inv))
    }

    /// Posted → "Paid", bumps lastModifiedDateTime. Panics if the invoice is not posted.
    pub fn mark_paid(&self, invoice_id: Uuid) {
        self.try_mark_paid(invoice_id)
            .expect("mark_paid needs a posted invoice");
    }

    fn try_mark_paid(&self, invoice_id: Uuid) -> Result<(), ApiError> {
        self.inner.store.lock().unwrap().mark_paid(invoice_id)?;
        self.wake();
        Ok(())
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
        self.inner.batch_ops.lock().unwrap().clear();
    }

    /// The operations carried in `$batch` requests since the last [`BcSim::clear_requests`]
    /// (the request log shows each batch as one POST).
    pub fn batch_operations(&self) -> Vec<BcBatchOpView> {
        self.inner.batch_ops.lock().unwrap().clone()
    }

    /// Requests counted against the rate budget so far (A4): one per API request, one per
    /// operation of a `$batch`. [`BcSim::requests`] counts round trips instead.
    pub fn budget_spent(&self) -> u64 {
        self.inner.spent.load(Ordering::SeqCst)
    }

    /// Makes the simulator refuse (400 "Invalid Request Body") a deep-inserted line that
    /// carries `dimensionSetLines`, as a BC build would that does not take the multi-level deep
    /// insert; the connector must then fall back to adding the dimensions afterwards.
    pub fn refuse_nested_dimensions(&self, refuse: bool) {
        self.inner.store.lock().unwrap().refuse_nested_dims = refuse;
    }

    /// Takes `n` more units of the rate budget for the operations of a `$batch` beyond the one
    /// its envelope took, all or none. `false`: the window has no room for them.
    pub(crate) fn spend_extra(&self, n: usize) -> bool {
        if n == 0 {
            return true;
        }
        if let Some(w) = &self.inner.window
            && !w.try_acquire_n(n)
        {
            return false;
        }
        self.inner.spent.fetch_add(n as u64, Ordering::SeqCst);
        true
    }

    /// A4: the 429 a request over the budget gets.
    pub(crate) fn too_many(&self) -> Response {
        let mut resp = errors::fault_body(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests reached. Please retry after a cool-off period.",
        );
        if let Some(secs) = self.inner.cfg.retry_after_secs {
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        resp
    }

    /// How many 429s were served (throttling and injected).
    pub fn throttled_count(&self) -> u64 {
        self.inner.throttled.load(Ordering::SeqCst)
    }
}

fn parse_date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
}

fn view(store: &Store, inv: &store::Doc) -> BcInvoiceView {
    let vendor_number = store
        .vendor(inv.vendor_id)
        .and_then(|v| {
            v.fields
                .get("number")
                .and_then(|n| n.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let date = |k: &str| {
        inv.fields
            .get(k)
            .and_then(|v| v.as_str())
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .unwrap_or_default()
    };
    let currency = inv
        .fields
        .get("currencyCode")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    BcInvoiceView {
        id: inv.meta.id,
        number: inv.number.clone(),
        vendor_number,
        vendor_invoice_number: inv.vendor_invoice_number().to_owned(),
        status: inv.status().to_owned(),
        posting_date: date("postingDate"),
        invoice_date: date("invoiceDate"),
        currency_code: if currency.is_empty() {
            store::LCY.to_owned()
        } else {
            currency.to_owned()
        },
        lines: inv
            .lines
            .iter()
            .map(|l| BcLineView {
                id: l.meta.id,
                sequence: l.sequence() as i32,
                line_type: l.line_type().to_owned(),
                line_object_number: l.object_number().to_owned(),
                description: l.description().to_owned(),
                quantity: l.quantity(),
                unit_cost: l.unit_cost(),
                amount: l.amounts().1,
                dimensions: store.dim_codes(&l.dims),
            })
            .collect(),
        total: inv.total(),
        post_count: inv.post_count,
        dimensions: store.dim_codes(&inv.dims),
        last_modified: inv.meta.modified,
    }
}

fn is_api(req: &Request) -> bool {
    req.uri().path().starts_with("/v2.0/")
}

async fn log_requests(State(sim): State<BcSim>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/_sandbox") {
        return next.run(req).await;
    }
    let api = is_api(&req);
    let resp = sim.inner.log.record(req, next).await;
    if api && resp.status() == StatusCode::TOO_MANY_REQUESTS {
        sim.inner.throttled.fetch_add(1, Ordering::SeqCst);
    }
    resp
}

/// Admission for API requests (not the token endpoint): rate limit (A4, 429), then the
/// concurrency queue (A4: 5 processing, the rest wait; a full queue → 429), then faults.
async fn admit(State(sim): State<BcSim>, req: Request, next: Next) -> Response {
    if !is_api(&req) {
        return next.run(req).await;
    }
    let too_many = |sim: &BcSim| sim.too_many();
    if let Some(w) = &sim.inner.window
        && !w.try_acquire()
    {
        return too_many(&sim);
    }
    sim.inner.spent.fetch_add(1, Ordering::SeqCst);
    // Counted until dropped, so a client that gives up while queued frees its place.
    let queued = InFlight::enter(&sim.inner.waiting);
    if queued.before >= MAX_QUEUE + sim.inner.cfg.max_concurrent {
        return too_many(&sim);
    }
    let _slot = sim.inner.slots.acquire().await;
    sim.inner.faults.apply(errors::fault_body, req, next).await
}

/// Counts a request as in flight (processing or queued) for as long as it lives.
struct InFlight<'a> {
    counter: &'a AtomicUsize,
    before: usize,
}

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        let before = counter.fetch_add(1, Ordering::SeqCst);
        InFlight { counter, before }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Bearer check for API requests (A3 / error table: 401 `Authentication_InvalidCredentials`).
async fn authenticate(State(sim): State<BcSim>, req: Request, next: Next) -> Response {
    if !is_api(&req) {
        return next.run(req).await;
    }
    let ok = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .is_some_and(|t| sim.token_valid(t.trim()));
    if !ok {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Authentication_InvalidCredentials",
            "The server has rejected the client credentials.",
        )
        .into_response();
    }
    next.run(req).await
}
