//! Coupa Core REST API simulator (coupa.md §1).
//!
//! Serves `/oauth2/token`, `/api/invoices`, `/api/purchase_orders`, `/api/suppliers` with Coupa's auth, headers,
//! paging, filter syntax, JSON conventions and rate limit, plus `/_sandbox/*` control
//! routes so a separately running sandbox can be driven over HTTP.

mod api;
mod auth;
mod control;
mod filters;
mod model;
mod webhook;
mod writes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, FixedOffset, NaiveDate};
use rust_decimal::Decimal;

use crate::faults::{FaultQueue, FaultRule};
use crate::ratelimit::TokenBucket;
use crate::reqlog::{RequestLog, RequestLogStore};
use model::{Data, Invoice, Line, OrderLine, PurchaseOrder, Supplier, now_secs, trunc_secs};

pub use webhook::signature as webhook_signature;

/// How the simulated Coupa instance is set up.
#[derive(Clone, Debug)]
pub struct CoupaConfig {
    pub client_id: String,
    pub client_secret: String,
    /// HMAC key for `X-Coupa-Signature` on webhooks we send (README.md decision).
    pub webhook_secret: String,
    /// coupa.md §1.1: tokens last 24 h; Coupa's call-out doc shows `expires_in: 86399`.
    pub token_ttl_secs: u64,
    /// coupa.md §1.5: 25 requests/second. `None` disables the limit.
    pub rate_per_sec: Option<u32>,
    /// coupa.md §1.5: "Coupa queues up to 20 calls" beyond the rate.
    pub burst: u32,
    /// Instance offset used when rendering timestamps (§1.4: instance-local offset).
    pub utc_offset_secs: i32,
    /// The custom (flexible) fields defined on suppliers (hyphenated names). A supplier write
    /// naming another is refused: coupa.md §1.13.1 has custom fields on suppliers ("a required
    /// custom field left blank on create fails the create") but not their JSON shape, so the
    /// shape here is the invoices' (`custom-fields{…}`, §1.6) and a field must be defined [U].
    pub supplier_custom_fields: Vec<String>,
}

impl Default for CoupaConfig {
    fn default() -> Self {
        CoupaConfig {
            client_id: "coupa-client".into(),
            client_secret: "coupa-secret".into(),
            webhook_secret: "coupa-webhook-secret".into(),
            token_ttl_secs: 86399,
            rate_per_sec: Some(25),
            burst: 20,
            utc_offset_secs: -7 * 3600,
            supplier_custom_fields: Vec::new(),
        }
    }
}

pub struct NewSupplier {
    pub name: String,
    pub number: Option<String>,
    pub tax_id: Option<String>,
}

impl NewSupplier {
    pub fn new(name: &str, number: &str) -> Self {
        NewSupplier {
            name: name.into(),
            number: Some(number.into()),
            tax_id: None,
        }
    }
}

pub struct NewInvoice {
    pub supplier_id: i64,
    pub invoice_number: String,
    pub invoice_date: NaiveDate,
    pub currency: String,
    pub status: String,
    /// "Invoice" or "Credit Note".
    pub document_type: String,
    pub lines: Vec<NewInvoiceLine>,
}

impl NewInvoice {
    /// An approved USD invoice dated today, without lines.
    pub fn approved(supplier_id: i64, invoice_number: &str) -> Self {
        NewInvoice {
            supplier_id,
            invoice_number: invoice_number.into(),
            invoice_date: chrono::Utc::now().date_naive(),
            currency: "USD".into(),
            status: "approved".into(),
            document_type: "Invoice".into(),
            lines: Vec::new(),
        }
    }

    /// An approved USD credit note dated today, without lines. Its amounts render negative
    /// whatever sign the lines are given with (coupa.md §1.6).
    pub fn credit_note(supplier_id: i64, invoice_number: &str) -> Self {
        NewInvoice {
            document_type: "Credit Note".into(),
            ..Self::approved(supplier_id, invoice_number)
        }
    }

    pub fn line(mut self, line: NewInvoiceLine) -> Self {
        self.lines.push(line);
        self
    }
}

pub struct NewInvoiceLine {
    pub description: String,
    /// `None` makes an amount line (`InvoiceAmountLine`, no quantity).
    pub quantity: Option<Decimal>,
    pub price: Decimal,
    /// segment-1..N; the account code is the segments joined with "-".
    pub account_segments: Vec<String>,
    /// Rendered as `po-number` and `order-header-num` (coupa.md §1.6 line fields).
    pub po_number: Option<String>,
    /// Rendered as `order-line-num`.
    pub order_line_num: Option<u32>,
}

impl NewInvoiceLine {
    /// A quantity line; `price`/`quantity` are decimal strings such as "12.3456".
    pub fn qty(description: &str, quantity: &str, price: &str, segments: &[&str]) -> Self {
        NewInvoiceLine {
            description: description.into(),
            quantity: Some(quantity.parse().expect("decimal quantity")),
            price: price.parse().expect("decimal price"),
            account_segments: segments.iter().map(|s| s.to_string()).collect(),
            po_number: None,
            order_line_num: None,
        }
    }

    /// An amount line (no quantity).
    pub fn amount(description: &str, price: &str, segments: &[&str]) -> Self {
        NewInvoiceLine {
            quantity: None,
            ..Self::qty(description, "1", price, segments)
        }
    }

    /// Bills line `order_line_num` of the PO numbered `po_number`: the rendered line carries
    /// `po-number`, `order-header-num` and `order-line-num` (coupa.md §1.6 line fields).
    pub fn against_po(mut self, po_number: &str, order_line_num: u32) -> Self {
        self.po_number = Some(po_number.into());
        self.order_line_num = Some(order_line_num);
        self
    }
}

/// A purchase order to add (coupa.md §1.8).
pub struct NewPurchaseOrder {
    pub supplier_id: i64,
    pub po_number: String,
    /// issued, closed, cancelled, draft, buyer_hold, … (§1.8, unofficial enum).
    pub status: String,
    pub currency: String,
    pub lines: Vec<NewOrderLine>,
}

impl NewPurchaseOrder {
    /// An issued USD purchase order without lines.
    pub fn issued(supplier_id: i64, po_number: &str) -> Self {
        NewPurchaseOrder {
            supplier_id,
            po_number: po_number.into(),
            status: "issued".into(),
            currency: "USD".into(),
            lines: Vec::new(),
        }
    }

    pub fn status(mut self, status: &str) -> Self {
        self.status = status.into();
        self
    }

    pub fn currency(mut self, code: &str) -> Self {
        self.currency = code.into();
        self
    }

    pub fn line(mut self, line: NewOrderLine) -> Self {
        self.lines.push(line);
        self
    }
}

/// A purchase order line; numbered 1, 2, … in the order added.
pub struct NewOrderLine {
    pub description: String,
    pub quantity: Decimal,
    pub price: Decimal,
    /// segment-1..N; the account code is the segments joined with "-".
    pub account_segments: Vec<String>,
    /// `uom{code}`; "EA" unless set.
    pub uom: String,
}

impl NewOrderLine {
    /// A quantity line; `price`/`quantity` are decimal strings such as "12.3456".
    pub fn qty(description: &str, quantity: &str, price: &str, segments: &[&str]) -> Self {
        NewOrderLine {
            description: description.into(),
            quantity: quantity.parse().expect("decimal quantity"),
            price: price.parse().expect("decimal price"),
            account_segments: segments.iter().map(|s| s.to_string()).collect(),
            uom: "EA".into(),
        }
    }

    pub fn uom(mut self, code: &str) -> Self {
        self.uom = code.into();
        self
    }
}

type PageHook = Box<dyn FnOnce(&CoupaSim) + Send>;

/// Which list responses a page hook counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Listing {
    Invoices,
    PurchaseOrders,
}

#[derive(Default)]
struct PageHooks {
    served: usize,
    pending: Vec<(usize, PageHook)>,
}

struct Token {
    expires: std::time::Instant,
    scopes: Vec<String>,
}

pub(crate) struct Inner {
    cfg: CoupaConfig,
    offset: FixedOffset,
    addr: OnceLock<SocketAddr>,
    data: Mutex<Data>,
    tokens: Mutex<HashMap<String, Token>>,
    tokens_issued: AtomicU64,
    faults: FaultQueue,
    log: RequestLogStore,
    bucket: Option<TokenBucket>,
    pages: Mutex<HashMap<Listing, PageHooks>>,
    http: reqwest::Client,
}

/// A running Coupa simulator. Cheap to clone (shared state).
#[derive(Clone)]
pub struct CoupaSim {
    inner: Arc<Inner>,
}

impl CoupaSim {
    /// Binds 127.0.0.1 on a free port and serves in a tokio task.
    pub async fn start(cfg: CoupaConfig) -> std::io::Result<CoupaSim> {
        Self::start_on(cfg, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_on(cfg: CoupaConfig, addr: SocketAddr) -> std::io::Result<CoupaSim> {
        let offset = FixedOffset::east_opt(cfg.utc_offset_secs)
            .ok_or_else(|| std::io::Error::other("utc_offset_secs out of range"))?;
        // coupa.md §1.5: 25/s plus a queue of 20. We model it as a token bucket refilled at
        // the rate and holding rate+burst, and REFUSE (429, Retry-After: 1) what real Coupa
        // would queue past that — our choice, the real status is not documented.
        let bucket = cfg.rate_per_sec.map(|r| TokenBucket::new(r, r + cfg.burst));
        let sim = CoupaSim {
            inner: Arc::new(Inner {
                cfg,
                offset,
                addr: OnceLock::new(),
                data: Mutex::new(Data {
                    next_supplier_id: 1,
                    next_invoice_id: 1,
                    next_line_id: 1,
                    next_payment_id: 1,
                    next_po_id: 1,
                    next_order_line_id: 1,
                    ..Data::default()
                }),
                tokens: Mutex::new(HashMap::new()),
                tokens_issued: AtomicU64::new(0),
                faults: FaultQueue::default(),
                log: RequestLogStore::default(),
                bucket,
                pages: Mutex::new(HashMap::new()),
                http: reqwest::Client::new(),
            }),
        };
        let local = crate::server::spawn(sim.router(), addr).await?;
        let _ = sim.inner.addr.set(local);
        Ok(sim)
    }

    fn router(&self) -> Router {
        Router::new()
            .route("/oauth2/token", post(auth::token))
            .route(
                "/api/invoices",
                get(api::list_invoices).post(writes::create_invoice),
            )
            .route(
                "/api/invoices/{id}",
                get(api::show_invoice).put(api::update_invoice),
            )
            .route(
                "/api/purchase_orders",
                get(api::list_purchase_orders).post(writes::create_purchase_order),
            )
            .route(
                "/api/purchase_orders/{id}",
                get(api::show_purchase_order).put(writes::update_purchase_order),
            )
            .route(
                "/api/purchase_orders/{id}/cancel",
                axum::routing::put(writes::cancel_purchase_order),
            )
            .route(
                "/api/suppliers",
                get(api::list_suppliers).post(writes::create_supplier),
            )
            .route(
                "/api/suppliers/{id}",
                get(api::show_supplier).put(writes::update_supplier),
            )
            .merge(control::routes())
            .fallback(api::not_found)
            .layer(middleware::from_fn_with_state(self.clone(), api::guard))
            .layer(middleware::from_fn_with_state(
                self.clone(),
                throttle_and_faults,
            ))
            .layer(middleware::from_fn_with_state(self.clone(), log_requests))
            .with_state(self.clone())
    }

    /// The configuration it runs with (credentials included: these are simulator values).
    pub fn config(&self) -> &CoupaConfig {
        &self.inner.cfg
    }

    /// "http://127.0.0.1:PORT"; the token URL is `{base}/oauth2/token`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr.get().expect("bound"))
    }

    pub fn add_supplier(&self, s: NewSupplier) -> i64 {
        let mut d = self.inner.data.lock().unwrap();
        let id = d.next_supplier_id;
        d.next_supplier_id += 1;
        let now = now_secs();
        d.suppliers.insert(
            id,
            Supplier {
                id,
                name: s.name,
                number: s.number,
                tax_id: s.tax_id,
                custom_fields: Default::default(),
                created_at: now,
                updated_at: now,
            },
        );
        id
    }

    /// Sets a custom field of the supplier (a person's edit; updated-at moves).
    pub fn set_supplier_custom_field(&self, id: i64, field: &str, value: &str) {
        self.with_supplier(id, |s| {
            s.custom_fields.insert(field.to_owned(), value.to_owned());
            s.updated_at = now_secs();
        });
    }

    /// Id of the supplier with this `number`, if any.
    pub fn supplier_id_by_number(&self, number: &str) -> Option<i64> {
        let d = self.inner.data.lock().unwrap();
        d.suppliers
            .values()
            .find(|s| s.number.as_deref() == Some(number))
            .map(|s| s.id)
    }

    fn with_supplier(&self, id: i64, f: impl FnOnce(&mut Supplier)) -> bool {
        let mut d = self.inner.data.lock().unwrap();
        match d.suppliers.get_mut(&id) {
            Some(s) => {
                f(s);
                true
            }
            None => false,
        }
    }

    /// Bumps the supplier's updated-at to now (an edit in Coupa's supplier record).
    pub fn touch_supplier(&self, id: i64) {
        self.with_supplier(id, |s| s.updated_at = now_secs());
    }

    /// Renames the supplier and bumps updated-at (a person's edit in Coupa).
    pub fn set_supplier_name(&self, id: i64, name: &str) {
        self.with_supplier(id, |s| {
            s.name = name.to_owned();
            s.updated_at = now_secs();
        });
    }

    /// Sets (or, with `None`, clears) the supplier's `tax-id` and bumps updated-at.
    pub fn set_supplier_tax_id(&self, id: i64, tax_id: Option<&str>) {
        self.with_supplier(id, |s| {
            s.tax_id = tax_id.map(str::to_owned);
            s.updated_at = now_secs();
        });
    }

    /// Sets the supplier's updated-at exactly (truncated to seconds).
    pub fn set_supplier_updated_at(&self, id: i64, at: DateTime<FixedOffset>) {
        self.with_supplier(id, |s| s.updated_at = trunc_secs(at.to_utc()));
    }

    /// Exactly what `GET /api/suppliers/:id` would return.
    pub fn supplier_json(&self, id: i64) -> Option<serde_json::Value> {
        let d = self.inner.data.lock().unwrap();
        d.suppliers
            .get(&id)
            .map(|s| d.render_supplier(s, self.inner.offset))
    }

    /// Adds a purchase order; created-at = updated-at = now, version 1.
    pub fn add_purchase_order(&self, po: NewPurchaseOrder) -> i64 {
        let mut d = self.inner.data.lock().unwrap();
        let id = d.next_po_id;
        d.next_po_id += 1;
        let now = now_secs();
        let mut lines = Vec::new();
        for (i, l) in po.lines.into_iter().enumerate() {
            lines.push(new_order_line(&mut d, i as u32 + 1, l));
        }
        d.purchase_orders.insert(
            id,
            PurchaseOrder {
                id,
                po_number: po.po_number,
                status: po.status,
                version: 1,
                supplier_id: po.supplier_id,
                currency: po.currency,
                lines,
                created_at: now,
                updated_at: now,
                exported: false,
                external: false,
                overrides: Vec::new(),
            },
        );
        id
    }

    /// Test knob: from now on, the rendered PO has `key` set to `value` (`Null` removes the
    /// key), to model a field missing or shaped unexpectedly (coupa.md §1.4: "payload structure
    /// can change"). Does not bump updated-at or version.
    pub fn override_purchase_order_field(&self, id: i64, key: &str, value: serde_json::Value) {
        let mut d = self.inner.data.lock().unwrap();
        if let Some(po) = d.purchase_orders.get_mut(&id) {
            po.overrides.retain(|(k, _)| k != key);
            po.overrides.push((key.to_owned(), value));
        }
    }

    /// Applies a change to a PO and bumps updated-at and `version`; false if no such PO.
    fn change_purchase_order(&self, id: i64, f: impl FnOnce(&mut Data, i64)) -> bool {
        let mut d = self.inner.data.lock().unwrap();
        if !d.purchase_orders.contains_key(&id) {
            return false;
        }
        f(&mut d, id);
        let po = d.purchase_orders.get_mut(&id).expect("checked above");
        po.updated_at = now_secs();
        po.version += 1;
        true
    }

    /// Changes the status (issued, closed, cancelled, …); bumps updated-at and version.
    pub fn set_purchase_order_status(&self, id: i64, status: &str) {
        self.change_purchase_order(id, |d, id| {
            d.purchase_orders.get_mut(&id).expect("exists").status = status.to_owned();
        });
    }

    /// Changes one line's quantity (a decimal string); bumps updated-at and version.
    /// Panics if the PO has no such line (a test-setup mistake).
    pub fn set_purchase_order_line_quantity(&self, id: i64, line_num: u32, qty: &str) {
        let qty: Decimal = qty.parse().expect("decimal quantity");
        self.change_purchase_order(id, |d, id| {
            let po = d.purchase_orders.get_mut(&id).expect("exists");
            let line = po
                .lines
                .iter_mut()
                .find(|l| l.line_num == line_num)
                .unwrap_or_else(|| panic!("purchase order {id} has no line {line_num}"));
            line.quantity = qty;
        });
    }

    /// Appends a line (numbered after the last one); bumps updated-at and version.
    /// Returns the new line's number, or `None` if there is no such PO.
    pub fn add_purchase_order_line(&self, id: i64, line: NewOrderLine) -> Option<u32> {
        let mut num = None;
        self.change_purchase_order(id, |d, id| {
            let next = d.purchase_orders[&id]
                .lines
                .iter()
                .map(|l| l.line_num)
                .max()
                .unwrap_or(0)
                + 1;
            let l = new_order_line(d, next, line);
            d.purchase_orders
                .get_mut(&id)
                .expect("exists")
                .lines
                .push(l);
            num = Some(next);
        });
        num
    }

    /// Sets updated-at exactly (truncated to seconds), without bumping version.
    pub fn set_purchase_order_updated_at(&self, id: i64, at: DateTime<FixedOffset>) {
        let mut d = self.inner.data.lock().unwrap();
        if let Some(po) = d.purchase_orders.get_mut(&id) {
            po.updated_at = trunc_secs(at.to_utc());
        }
    }

    /// Id of the purchase order with this `po-number`, if any.
    pub fn purchase_order_id_by_number(&self, po_number: &str) -> Option<i64> {
        let d = self.inner.data.lock().unwrap();
        d.purchase_orders
            .values()
            .find(|po| po.po_number == po_number)
            .map(|po| po.id)
    }

    /// Exactly what `GET /api/purchase_orders/:id` would return.
    pub fn purchase_order_json(&self, id: i64) -> Option<serde_json::Value> {
        let d = self.inner.data.lock().unwrap();
        d.purchase_orders
            .get(&id)
            .map(|po| d.render_purchase_order(po, self.inner.offset))
    }

    /// Adds an invoice; created-at = updated-at = now.
    pub fn add_invoice(&self, inv: NewInvoice) -> i64 {
        let mut d = self.inner.data.lock().unwrap();
        let id = d.next_invoice_id;
        d.next_invoice_id += 1;
        let now = now_secs();
        let mut lines = Vec::new();
        for (i, l) in inv.lines.into_iter().enumerate() {
            let line_id = d.next_line_id;
            d.next_line_id += 1;
            if !l.account_segments.is_empty() {
                d.account_id(&l.account_segments.join("-"));
            }
            lines.push(Line {
                id: line_id,
                line_num: i as i64 + 1,
                description: l.description,
                quantity: l.quantity,
                price: l.price,
                account_segments: l.account_segments,
                po_number: l.po_number,
                order_line_num: l.order_line_num,
                tax_amount: None,
            });
        }
        d.invoices.insert(
            id,
            Invoice {
                id,
                supplier_id: inv.supplier_id,
                invoice_number: inv.invoice_number,
                invoice_date: inv.invoice_date,
                currency: inv.currency,
                status: inv.status,
                document_type: inv.document_type,
                lines,
                created_at: now,
                updated_at: now,
                exported: false,
                last_exported_at: None,
                paid: false,
                payment_date: None,
                payment_notes: None,
                payments: Vec::new(),
            },
        );
        id
    }

    fn with_invoice(&self, id: i64, f: impl FnOnce(&mut Invoice)) -> bool {
        let mut d = self.inner.data.lock().unwrap();
        match d.invoices.get_mut(&id) {
            Some(inv) => {
                f(inv);
                true
            }
            None => false,
        }
    }

    /// Changes the status and bumps updated-at to now.
    pub fn set_invoice_status(&self, id: i64, status: &str) {
        self.with_invoice(id, |inv| {
            inv.status = status.to_owned();
            inv.updated_at = now_secs();
        });
    }

    /// Bumps updated-at only (an edit the connector does not care about).
    pub fn touch_invoice(&self, id: i64) {
        self.with_invoice(id, |inv| inv.updated_at = now_secs());
    }

    /// Sets updated-at exactly (truncated to seconds, as Coupa stores it).
    pub fn set_invoice_updated_at(&self, id: i64, at: DateTime<FixedOffset>) {
        self.with_invoice(id, |inv| inv.updated_at = trunc_secs(at.to_utc()));
    }

    /// Sets the `exported` flag (and `last-exported-at` when true) without bumping updated-at.
    pub fn set_invoice_exported(&self, id: i64, exported: bool) {
        self.with_invoice(id, |inv| {
            inv.exported = exported;
            inv.last_exported_at = exported.then(now_secs);
        });
    }

    /// Every invoice as `GET /api/invoices/:id` would return it, in id order.
    pub fn invoices_json(&self) -> Vec<serde_json::Value> {
        let d = self.inner.data.lock().unwrap();
        d.invoices
            .values()
            .map(|inv| d.render_invoice(inv, self.inner.offset))
            .collect()
    }

    /// Every purchase order as `GET /api/purchase_orders/:id` would return it, in id order.
    pub fn purchase_orders_json(&self) -> Vec<serde_json::Value> {
        let d = self.inner.data.lock().unwrap();
        d.purchase_orders
            .values()
            .map(|po| d.render_purchase_order(po, self.inner.offset))
            .collect()
    }

    /// Every supplier as `GET /api/suppliers/:id` would return it, in id order.
    pub fn suppliers_json(&self) -> Vec<serde_json::Value> {
        let d = self.inner.data.lock().unwrap();
        d.suppliers
            .values()
            .map(|s| d.render_supplier(s, self.inner.offset))
            .collect()
    }

    /// Exactly what `GET /api/invoices/:id` would return.
    pub fn invoice_json(&self, id: i64) -> Option<serde_json::Value> {
        let d = self.inner.data.lock().unwrap();
        d.invoices
            .get(&id)
            .map(|inv| d.render_invoice(inv, self.inner.offset))
    }

    /// Runs `f` right after the `page_number`-th (1-based, counted from now)
    /// `GET /api/invoices` list response is built, to mutate data while a client pages.
    pub fn after_list_page(&self, page_number: usize, f: Box<dyn FnOnce(&CoupaSim) + Send>) {
        self.add_page_hook(Listing::Invoices, page_number, f);
    }

    /// Like [`CoupaSim::after_list_page`], counting `GET /api/purchase_orders` list responses.
    pub fn after_purchase_order_list_page(
        &self,
        page_number: usize,
        f: Box<dyn FnOnce(&CoupaSim) + Send>,
    ) {
        self.add_page_hook(Listing::PurchaseOrders, page_number, f);
    }

    fn add_page_hook(&self, listing: Listing, page_number: usize, f: PageHook) {
        let mut all = self.inner.pages.lock().unwrap();
        let p = all.entry(listing).or_default();
        let target = p.served + page_number.max(1);
        p.pending.push((target, f));
    }

    pub fn fail_next(&self, rule: FaultRule) {
        self.inner.faults.push(rule);
    }

    /// Every issued token becomes invalid (401 on next use).
    pub fn expire_tokens(&self) {
        self.inner.tokens.lock().unwrap().clear();
    }

    pub fn requests(&self) -> Vec<RequestLog> {
        self.inner.log.snapshot()
    }

    pub fn clear_requests(&self) {
        self.inner.log.clear();
    }

    pub fn tokens_issued(&self) -> u64 {
        self.inner.tokens_issued.load(Ordering::SeqCst)
    }

    /// POSTs the invoice JSON (the exact bytes it signs) with
    /// `X-Coupa-Signature: sha256=<hex HMAC-SHA256(webhook_secret, body)>`;
    /// returns the receiver's status.
    pub async fn send_invoice_webhook(&self, url: &str, invoice_id: i64) -> reqwest::Result<u16> {
        webhook::send(self, url, invoice_id).await
    }

    /// Called by a list handler once a page is built; runs due hooks outside the lock.
    fn list_page_served(&self, listing: Listing) {
        let due: Vec<PageHook> = {
            let mut all = self.inner.pages.lock().unwrap();
            let p = all.entry(listing).or_default();
            p.served += 1;
            let served = p.served;
            let (due, keep): (Vec<_>, Vec<_>) =
                p.pending.drain(..).partition(|(t, _)| *t <= served);
            p.pending = keep;
            due.into_iter().map(|(_, f)| f).collect()
        };
        for f in due {
            f(self);
        }
    }
}

fn new_order_line(d: &mut Data, line_num: u32, l: NewOrderLine) -> OrderLine {
    let id = d.next_order_line_id;
    d.next_order_line_id += 1;
    if !l.account_segments.is_empty() {
        d.account_id(&l.account_segments.join("-"));
    }
    OrderLine {
        id,
        line_num,
        description: l.description,
        quantity: l.quantity,
        price: l.price,
        account_segments: l.account_segments,
        uom: l.uom,
    }
}

fn is_api(req: &Request) -> bool {
    req.uri().path().starts_with("/api/")
}

async fn log_requests(State(sim): State<CoupaSim>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/_sandbox") {
        return next.run(req).await;
    }
    sim.inner.log.record(req, next).await
}

/// coupa.md §1.5 rate limit, then injected faults — both on `/api/*` only.
async fn throttle_and_faults(State(sim): State<CoupaSim>, req: Request, next: Next) -> Response {
    if !is_api(&req) {
        return next.run(req).await;
    }
    if let Some(bucket) = &sim.inner.bucket
        && !bucket.try_acquire()
    {
        let mut resp = api::error(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "Rate limit exceeded",
        );
        // Retry-After: 1 is our choice; Coupa documents no Retry-After semantics (§1.5).
        resp.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from(1u32));
        return resp;
    }
    sim.inner.faults.apply(api::error, req, next).await
}
