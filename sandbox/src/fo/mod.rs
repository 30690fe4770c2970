//! Dynamics 365 Finance & Operations OData simulator (d365-fo.md Part B and its "Simulator
//! checklist").
//!
//! Token endpoint `/{tenant}/oauth2/v2.0/token` (Entra shape) requiring the scope
//! `https://{environment host}/.default`; the OData root at `/data/`.
//!
//! Simulated:
//! - entity sets, case-sensitive (gotcha 12): `VendorInvoiceHeaders`, `VendorInvoiceLines`,
//!   `VendorsV2`, `PurchaseOrderHeadersV2`, `PurchaseOrderLinesV2` (read/write);
//!   `VendTransBiEntities` (paid status, B9.6), `VendInvoiceJourBiEntities` (posted invoices,
//!   B9.7), `MainAccounts`, `FinancialDimensionValues`, `LegalEntities` (read-only);
//! - every key field required in key URLs (B1); unknown properties refused (400);
//! - `dataAreaId` scoping and the default-company trap: without `cross-company=true` a read
//!   sees only the default company and a by-key access to another company is 404 (B9.4); a
//!   write without `dataAreaId` lands in the default company (B7); values compared
//!   case-insensitively and stored lower-case;
//! - headers before lines (a line whose header is missing is refused), HeaderReference always
//!   supplied (B9.1), line currency = header currency (B9.2), invoice number ≤ 20 (B9.3), one
//!   use of a vendor invoice number per invoice account (B4.1);
//! - 201 + entity on create, 204 on PATCH/PUT/DELETE (B3); ETags `W/"…"` and If-Match (not
//!   required, `*` accepted, a stale tag 412: B9.5);
//! - F&O's error wrapper, 500 + `AxODataWriteException` on refused writes (B3);
//! - server-driven paging (`@odata.nextLink`, page size configurable, 10,000 by default),
//!   `$filter` (`eq ne gt ge lt le and or not`, wildcards, enums), `$select`, `$top`, `$skip`;
//! - throttling: 429 with `Retry-After` (B8), a user-based sliding window behind the config;
//! - financial dimension display strings (B5): ledger and default formats, values checked
//!   against main accounts and dimension values, refused combinations with F&O-style words;
//! - posting a pending invoice (control): it leaves the pending entities (B4.1) and appears in
//!   `VendInvoiceJourBiEntities` and `VendTransBiEntities`; paying it closes the transaction.
//!
//! - the Data Management package API (B6, `dmf.rs`): write URL, blob upload, imports that run
//!   as a batch job one at a time, their status and error files; exempt from throttling (B8).
//!
//! Not simulated: `$batch`, `$metadata`, `$expand`, `$orderby`, `ExportToPackage`, payment journals, credit-note posting specifics, business events.

mod auth;
mod control;
mod dims;
mod dmf;
mod errors;
mod handlers;
mod odata;
mod rules;
mod schema;
pub mod seed;
mod store;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};

use crate::faults::{FaultQueue, FaultRule};
use crate::ratelimit::SlidingWindow;
use crate::reqlog::{RequestLog, RequestLogStore};
use dims::Combination;
use store::{Company, Store, decimal_value};

pub use dims::{DimensionFormats, MAIN_ACCOUNT};
pub use dmf::{COMPOSITE, DmfStats, HEADER_ENTITY, LINE_ENTITY};

/// A sliding-window request budget.
#[derive(Clone, Debug)]
pub struct RateLimit {
    pub requests: u32,
    pub window: Duration,
}

/// How the simulated F&O environment is set up.
#[derive(Clone, Debug)]
pub struct FoConfig {
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
    /// The environment's host; the token scope is `https://{host}/.default` (B1).
    pub environment_host: String,
    pub token_ttl_secs: u64,
    /// The integration user's default company (B1: reads without cross-company see only it).
    pub default_company: String,
    /// B8 user-based limit (6,000 per 5 minutes; removed in 10.0.36 but still possible):
    /// `None` disables it.
    pub rate_limit: Option<RateLimit>,
    /// `Retry-After` seconds on a 429 (B8: always sent).
    pub retry_after_secs: u64,
    /// B2: server-driven paging, at most 10,000 per page.
    pub max_page_size: usize,
    pub dimensions: DimensionFormats,
    /// B9.3: the strict assumption, 20.
    pub max_invoice_number_len: usize,
    /// B4.1: the VENDINVOICEINUSERECOVERENABLE parameter; off by default.
    pub allow_duplicate_invoice_numbers: bool,
    /// How long a Data Management import executes (B6: it runs as a batch job).
    pub dmf_execution: Duration,
}

impl Default for FoConfig {
    fn default() -> Self {
        FoConfig {
            tenant: "sandbox-tenant".into(),
            client_id: "fo-client".into(),
            client_secret: "fo-secret".into(),
            environment_host: "mlc-sandbox.operations.dynamics.com".into(),
            token_ttl_secs: 3599,
            default_company: "usmf".into(),
            rate_limit: Some(RateLimit {
                requests: 6000,
                window: Duration::from_secs(300),
            }),
            retry_after_secs: 1,
            max_page_size: 10_000,
            dimensions: DimensionFormats::default(),
            max_invoice_number_len: 20,
            allow_duplicate_invoice_numbers: false,
            dmf_execution: dmf::DEFAULT_EXECUTION,
        }
    }
}

/// One pending vendor invoice with its lines, for test assertions.
#[derive(Clone, Debug, Serialize)]
pub struct FoInvoiceView {
    pub company: String,
    pub header_reference: String,
    pub invoice_number: String,
    pub vendor_account: String,
    pub currency: String,
    pub dimension_display: String,
    pub lines: Vec<FoLineView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FoLineView {
    pub number: i64,
    pub description: String,
    pub main_account_display: String,
    pub dimension_display: String,
    pub net_amount: Decimal,
}

/// One posted invoice (VendInvoiceJour and its VendTrans), for test assertions.
#[derive(Clone, Debug, Serialize)]
pub struct FoPostedView {
    pub company: String,
    pub invoice_id: String,
    pub invoice_account: String,
    pub amount: Decimal,
    pub currency: String,
    pub voucher: String,
    pub settled: Decimal,
    pub paid: bool,
}

pub(crate) struct Inner {
    cfg: FoConfig,
    addr: OnceLock<SocketAddr>,
    store: Mutex<Store>,
    refused: Mutex<Vec<Combination>>,
    tokens: Mutex<HashMap<String, Instant>>,
    tokens_issued: AtomicU64,
    faults: FaultQueue,
    log: RequestLogStore,
    window: Option<SlidingWindow>,
    throttled: AtomicU64,
    dmf: dmf::Dmf,
}

/// A running F&O simulator. Cheap to clone (shared state).
#[derive(Clone)]
pub struct FoSim {
    inner: Arc<Inner>,
}

/// The null date F&O uses for "not set" (B9.6: open transactions have `Closed` = it).
pub const NULL_DATE: &str = "1900-01-01T00:00:00Z";

impl FoSim {
    /// Binds 127.0.0.1 on a free port and serves in a tokio task.
    pub async fn start(cfg: FoConfig) -> std::io::Result<FoSim> {
        Self::start_on(cfg, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_on(cfg: FoConfig, addr: SocketAddr) -> std::io::Result<FoSim> {
        let window = cfg
            .rate_limit
            .as_ref()
            .map(|r| SlidingWindow::new(r.requests, r.window));
        let mut store = Store::new();
        store.companies.push(Company {
            id: cfg.default_company.to_lowercase(),
            chart: "Shared".into(),
        });
        let sim = FoSim {
            inner: Arc::new(Inner {
                cfg,
                addr: OnceLock::new(),
                store: Mutex::new(store),
                refused: Mutex::new(Vec::new()),
                tokens: Mutex::new(HashMap::new()),
                tokens_issued: AtomicU64::new(0),
                faults: FaultQueue::default(),
                log: RequestLogStore::default(),
                window,
                throttled: AtomicU64::new(0),
                dmf: dmf::Dmf::default(),
            }),
        };
        sim.sync_legal_entities();
        let local = crate::server::spawn(sim.router(), addr).await?;
        let _ = sim.inner.addr.set(local);
        Ok(sim)
    }

    fn router(&self) -> Router {
        Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(auth::token))
            .route(
                "/data/DataManagementDefinitionGroups/{action}",
                post(dmf::action),
            )
            // The Azure blob container the write URL points into (B6 step 2): no bearer, the
            // SAS signature in the URL is the credential.
            .route("/blob/dmf/{name}", put(dmf::put_blob))
            .route("/blob/dmf-errors/{name}", get(dmf::get_error_file))
            .merge(control::routes())
            .fallback(fallback)
            .layer(middleware::from_fn_with_state(self.clone(), authenticate))
            .layer(middleware::from_fn_with_state(self.clone(), admit))
            .layer(middleware::from_fn_with_state(self.clone(), log_requests))
            .with_state(self.clone())
    }

    pub fn config(&self) -> &FoConfig {
        &self.inner.cfg
    }

    /// "http://127.0.0.1:PORT": the OData root is `{base}/data`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr.get().expect("bound"))
    }

    /// `{base}/{tenant}/oauth2/v2.0/token`
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.base_url(),
            self.inner.cfg.tenant
        )
    }

    /// The one scope the token endpoint accepts: `https://{environment host}/.default`.
    pub fn scope(&self) -> String {
        format!("https://{}/.default", self.inner.cfg.environment_host)
    }

    // -- seeding -----------------------------------------------------------------------------

    /// A legal entity (company) using chart of accounts `chart`.
    pub fn add_legal_entity(&self, id: &str, chart: &str) {
        {
            let mut store = self.inner.store.lock().unwrap();
            let id = id.to_lowercase();
            store.companies.retain(|c| c.id != id);
            store.companies.push(Company {
                id,
                chart: chart.into(),
            });
        }
        self.sync_legal_entities();
    }

    fn sync_legal_entities(&self) {
        let mut store = self.inner.store.lock().unwrap();
        let set = schema::set(schema::LEGAL_ENTITIES).expect("schema");
        store.table_mut(set.name).clear();
        for c in store.companies.clone() {
            let fields = obj(json!({
                "LegalEntityId": c.id.to_uppercase(),
                "Name": c.id.to_uppercase(),
                "ChartOfAccounts": c.chart,
            }));
            store.insert(set, fields);
        }
    }

    /// A vendor in one company.
    pub fn add_vendor(&self, company: &str, account: &str, name: &str, currency: &str) {
        self.seed(
            schema::VENDORS,
            json!({
                "dataAreaId": company.to_lowercase(),
                "VendorAccountNumber": account,
                "VendorOrganizationName": name,
                "VendorGroupId": "10",
                "VendorPartyType": "Organization",
                "CurrencyCode": currency,
                "OnHoldStatus": "No",
            }),
        );
    }

    /// A main account of chart `chart` (B4.5: main accounts are not company-specific).
    pub fn add_main_account(&self, chart: &str, id: &str, name: &str) {
        self.seed(
            schema::MAIN_ACCOUNTS,
            json!({
                "ChartOfAccounts": chart,
                "MainAccountId": id,
                "Name": name,
                "MainAccountType": "Expense",
                "IsSuspended": "No",
                "ActiveFrom": NULL_DATE,
                "ActiveTo": NULL_DATE,
            }),
        );
    }

    /// A value of a financial dimension; `legal_entity` "" shares it across companies (B9.8).
    pub fn add_dimension_value(&self, dimension: &str, legal_entity: &str, value: &str) {
        self.seed(
            schema::DIMENSION_VALUES,
            json!({
                "FinancialDimension": dimension,
                "LegalEntityId": legal_entity.to_uppercase(),
                "DimensionValue": value,
                "Description": value,
                "IsSuspended": "No",
                "ActiveFrom": NULL_DATE,
                "ActiveTo": NULL_DATE,
            }),
        );
    }

    /// Refuses these (dimension, value) pairs together from now on (an account structure or
    /// advanced rule), e.g. `[("MainAccount","600100"),("CostCenter","OU_9")]`.
    pub fn refuse_combination(&self, pairs: &[(&str, &str)]) {
        let combo: Combination = pairs
            .iter()
            .map(|(d, v)| ((*d).to_owned(), (*v).to_owned()))
            .collect();
        self.inner.refused.lock().unwrap().push(combo);
    }

    /// Allows a combination refused before (a person fixed the account structure).
    pub fn allow_combination(&self, pairs: &[(&str, &str)]) {
        let combo: Combination = pairs
            .iter()
            .map(|(d, v)| ((*d).to_owned(), (*v).to_owned()))
            .collect();
        self.inner.refused.lock().unwrap().retain(|c| *c != combo);
    }

    fn seed(&self, set: &str, fields: Value) {
        let set = schema::set(set).expect("schema");
        let mut store = self.inner.store.lock().unwrap();
        let fields = obj(fields);
        let key = store::key_of(set, &fields);
        store.table_mut(set.name).remove(&key);
        store.insert(set, fields);
    }

    // -- the business ------------------------------------------------------------------------

    /// Posts a pending invoice: it leaves `VendorInvoiceHeaders`/`VendorInvoiceLines` (B4.1:
    /// the entities hold pending invoices only) and appears in `VendInvoiceJourBiEntities` and
    /// `VendTransBiEntities` (open). Returns the voucher. Refused without lines.
    pub fn post_invoice(&self, company: &str, header_reference: &str) -> Result<String, String> {
        let mut store = self.inner.store.lock().unwrap();
        let company = company.to_lowercase();
        let hkey = store::key_string(
            schema::set(schema::HEADERS).expect("schema"),
            &[json!(company), json!(header_reference)],
        );
        let header = store
            .table(schema::HEADERS)
            .get(&hkey)
            .cloned()
            .ok_or_else(|| format!("no pending invoice '{header_reference}' in {company}"))?;
        let lines: Vec<store::Row> = store
            .rows_where(schema::LINES, |r| {
                r.str("dataAreaId") == company && r.str("HeaderReference") == header_reference
            })
            .into_iter()
            .cloned()
            .collect();
        if lines.is_empty() {
            return Err("an invoice without lines cannot be posted".into());
        }
        let total: Decimal = lines.iter().map(|l| l.dec("NetAmount")).sum();
        store.vouchers += 1;
        let voucher = format!("APINV{:06}", store.vouchers);
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let recid = store.next_recid();
        let jour = obj(json!({
            "dataAreaId": company,
            "SourceKey": recid,
            "InvoiceId": header.str("InvoiceNumber"),
            "InvoiceAccount": header.str("InvoiceAccount"),
            "OrderAccount": header.str("VendorAccount"),
            "InvoiceDate": header.str("InvoiceDate"),
            "InvoiceAmount": decimal_value(total),
            "InvoiceAmountMST": decimal_value(total),
            "CurrencyCode": header.str("Currency"),
            "LedgerVoucher": voucher,
            "PurchId": header.str("PurchaseOrderNumber"),
            "InvoiceType": "Standard",
            "DueDate": header.str("DueDate"),
            "SysModifiedDateTime": now,
            "CreatedOn": now,
        }));
        store.insert(schema::set(schema::INVOICE_JOUR).expect("schema"), jour);
        let recid = store.next_recid();
        // B9.6: a vendor invoice's AmountCur is negative (a credit to the vendor) [UNCONFIRMED
        // sign; clients compare absolute values].
        let trans = obj(json!({
            "dataAreaId": company,
            "SourceKey": recid,
            "Invoice": header.str("InvoiceNumber"),
            "AccountNum": header.str("InvoiceAccount"),
            "Voucher": voucher,
            "TransType": "Purch",
            "TransDate": now,
            "DueDate": header.str("DueDate"),
            "DocumentNum": header.str("InvoiceNumber"),
            "CurrencyCode": header.str("Currency"),
            "AmountCur": decimal_value(-total),
            "AmountMST": decimal_value(-total),
            "SettleAmountCur": decimal_value(Decimal::ZERO),
            "SettleAmountMST": decimal_value(Decimal::ZERO),
            "Closed": NULL_DATE,
            "LastSettleDate": NULL_DATE,
            "LastSettleVoucher": "",
            "PaymReference": "",
            "SysModifiedDateTime": now,
            "CreatedOn": now,
        }));
        store.insert(schema::set(schema::VEND_TRANS).expect("schema"), trans);
        store.table_mut(schema::HEADERS).remove(&hkey);
        store.table_mut(schema::LINES).retain(|_, r| {
            !(r.str("dataAreaId") == company && r.str("HeaderReference") == header_reference)
        });
        Ok(voucher)
    }

    /// Settles a posted invoice's vendor transaction, in full (`amount` None) or in part.
    pub fn pay_invoice(
        &self,
        company: &str,
        invoice_account: &str,
        invoice_id: &str,
        amount: Option<Decimal>,
    ) -> Result<(), String> {
        let mut store = self.inner.store.lock().unwrap();
        let company = company.to_lowercase();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let row = store
            .table_mut(schema::VEND_TRANS)
            .values_mut()
            .find(|r| {
                r.str("dataAreaId") == company
                    && r.str("AccountNum").eq_ignore_ascii_case(invoice_account)
                    && r.str("Invoice").eq_ignore_ascii_case(invoice_id)
            })
            .ok_or_else(|| {
                format!("no posted invoice '{invoice_id}' of {invoice_account} in {company}")
            })?;
        let full = row.dec("AmountCur").abs();
        let settled = (row.dec("SettleAmountCur").abs() + amount.unwrap_or(full)).min(full);
        // Same sign as AmountCur.
        row.fields
            .insert("SettleAmountCur".into(), decimal_value(-settled));
        row.fields
            .insert("SettleAmountMST".into(), decimal_value(-settled));
        row.fields
            .insert("LastSettleDate".into(), now.clone().into());
        if settled >= full {
            row.fields.insert("Closed".into(), now.clone().into());
        }
        row.fields.insert("SysModifiedDateTime".into(), now.into());
        row.version += 1;
        Ok(())
    }

    // -- views -------------------------------------------------------------------------------

    /// Every row of an entity set (any company), as F&O would answer it.
    pub fn rows(&self, set: &str) -> Vec<Value> {
        let store = self.inner.store.lock().unwrap();
        store
            .tables
            .get(set)
            .map(|t| t.values().map(store::Row::to_json).collect())
            .unwrap_or_default()
    }

    /// Pending invoices with their lines (every company).
    pub fn pending_invoices(&self) -> Vec<FoInvoiceView> {
        let store = self.inner.store.lock().unwrap();
        store
            .table(schema::HEADERS)
            .values()
            .map(|h| {
                let company = h.str("dataAreaId").to_owned();
                let reference = h.str("HeaderReference").to_owned();
                let lines = store
                    .rows_where(schema::LINES, |l| {
                        l.str("dataAreaId") == company && l.str("HeaderReference") == reference
                    })
                    .into_iter()
                    .map(|l| FoLineView {
                        number: l.dec("InvoiceLineNumber").try_into().unwrap_or_default(),
                        description: l.str("LineDescription").to_owned(),
                        main_account_display: l.str("MainAccountDisplayValue").to_owned(),
                        dimension_display: l.str("DimensionDisplayValue").to_owned(),
                        net_amount: l.dec("NetAmount"),
                    })
                    .collect();
                FoInvoiceView {
                    company,
                    header_reference: reference,
                    invoice_number: h.str("InvoiceNumber").to_owned(),
                    vendor_account: h.str("VendorAccount").to_owned(),
                    currency: h.str("Currency").to_owned(),
                    dimension_display: h.str("DimensionDisplayValue").to_owned(),
                    lines,
                }
            })
            .collect()
    }

    /// Posted invoices with their settlement (every company).
    pub fn posted_invoices(&self) -> Vec<FoPostedView> {
        let store = self.inner.store.lock().unwrap();
        store
            .table(schema::INVOICE_JOUR)
            .values()
            .map(|j| {
                let trans = store
                    .rows_where(schema::VEND_TRANS, |t| {
                        t.str("dataAreaId") == j.str("dataAreaId")
                            && t.str("Voucher") == j.str("LedgerVoucher")
                    })
                    .first()
                    .map(|t| (t.dec("SettleAmountCur").abs(), t.str("Closed") != NULL_DATE));
                let (settled, paid) = trans.unwrap_or_default();
                FoPostedView {
                    company: j.str("dataAreaId").to_owned(),
                    invoice_id: j.str("InvoiceId").to_owned(),
                    invoice_account: j.str("InvoiceAccount").to_owned(),
                    amount: j.dec("InvoiceAmount"),
                    currency: j.str("CurrencyCode").to_owned(),
                    voucher: j.str("LedgerVoucher").to_owned(),
                    settled,
                    paid,
                }
            })
            .collect()
    }

    // -- faults and observation --------------------------------------------------------------

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

    /// How many 429s were served (throttling and injected).
    pub fn throttled_count(&self) -> u64 {
        self.inner.throttled.load(Ordering::SeqCst)
    }
}

fn obj(v: Value) -> store::Fields {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("seed rows are objects"),
    }
}

fn is_api(req: &Request) -> bool {
    req.uri().path().starts_with("/data/")
}

async fn fallback(state: State<FoSim>, req: Request) -> Response {
    if is_api(&req) {
        handlers::api(state, req).await
    } else {
        handlers::unknown()
    }
}

async fn log_requests(State(sim): State<FoSim>, req: Request, next: Next) -> Response {
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

/// B8: the resource-based message (always on in current versions).
pub const THROTTLE_MESSAGE: &str = "This request could not be processed at this time due to system experiencing high resource utilization.";

/// Admission for API requests: the rate limit (429 + `Retry-After`), then injected faults.
async fn admit(State(sim): State<FoSim>, req: Request, next: Next) -> Response {
    if !is_api(&req) {
        return next.run(req).await;
    }
    // B8: DMF/DIXF is exempt from the service protection limits.
    let dmf = req
        .uri()
        .path()
        .starts_with("/data/DataManagementDefinitionGroups/");
    if let Some(w) = &sim.inner.window
        && !dmf
        && !w.try_acquire()
    {
        let mut resp = errors::fault_body(StatusCode::TOO_MANY_REQUESTS, THROTTLE_MESSAGE);
        resp.headers_mut().insert(
            "retry-after",
            HeaderValue::from(sim.inner.cfg.retry_after_secs),
        );
        return resp;
    }
    sim.inner.faults.apply(errors::fault_body, req, next).await
}

/// Bearer check for API requests: a missing, unknown or expired token is 401.
/// Doubt: F&O's 401 body is not in the fact sheet; we send none, with `WWW-Authenticate`.
async fn authenticate(State(sim): State<FoSim>, req: Request, next: Next) -> Response {
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
        let mut resp = StatusCode::UNAUTHORIZED.into_response();
        resp.headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        return resp;
    }
    next.run(req).await
}
