//! SAP Business One Service Layer simulator (sap-b1.md §4), strict where the sources are silent.
//!
//! Serves `/b1s/v1/…` (OData v3) and `/b1s/v2/…` (OData v4): `Login` / `Logout` with the
//! `B1SESSION` / `ROUTEID` cookies as observed, a sliding session timeout answered with 401 and
//! code 301 (or -5002 when so configured), a licence-bound number of sessions, the entity sets
//! `PurchaseOrders`, `PurchaseInvoices`, `BusinessPartners`, `VendorPayments` with `$filter`,
//! relative next links and both page-size headers, both error shapes, business errors on bad
//! codes, and the cancellation rules of §4.8.3. Tests drive it through [`B1Sim`]'s methods.

mod control;
mod errors;
mod filter;
mod handlers;
mod session;
mod store;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::any;
use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::faults::{FaultQueue, FaultRule};
use crate::reqlog::{RequestLog, RequestLogStore};

pub use errors::Protocol;
pub use store::{
    BusinessPartner, CancelStatus, DocKind, DocLine, Document, PaymentInvoice, VendorPayment,
};
use store::{Data, stamp};

/// How the simulated Service Layer is set up.
#[derive(Clone, Debug)]
pub struct B1Config {
    pub company_db: String,
    pub user_name: String,
    pub password: String,
    /// §4.2: sliding, default 30 minutes (`SessionTimeout` in `b1s.conf`). Tests shorten it.
    pub session_timeout: Duration,
    /// The `error.code` of the invalid-session answer: 301 as observed (§4.2), -5002 where a
    /// deployment is known to send it (apis/README.md decision).
    pub expiry_code: i64,
    /// §4.7.5: sessions are licence-bound; logins beyond this many live sessions are refused.
    pub max_sessions: usize,
    /// The `ROUTEID` value (`.node0` … `.node4` observed).
    pub route_id: String,
    /// The company's local currency: `DocTotal` is in it, `DocTotalFc` in the document's.
    pub local_currency: String,
    /// §4.4: 20 is what clients assume.
    pub default_page_size: usize,
    /// §4.8.7: `UpdateTime`'s semantics are unconfirmed. `false` (the default, the stricter
    /// behaviour) stamps it only when `UpdateDate` moves: a second change on the same day
    /// leaves both fields as they were, so a client must compare content to see it.
    pub update_time_reliable: bool,
    /// §4.8.4: the `error.code` beside the duplicate-CardCode message (-10 assumed).
    pub duplicate_code: i64,
}

impl Default for B1Config {
    fn default() -> Self {
        B1Config {
            company_db: "SBODEMOUS".into(),
            user_name: "manager".into(),
            password: "b1-password".into(),
            session_timeout: Duration::from_secs(30 * 60),
            expiry_code: 301,
            max_sessions: 5,
            route_id: ".node1".into(),
            local_currency: "USD".into(),
            default_page_size: 20,
            update_time_reliable: false,
            duplicate_code: -10,
        }
    }
}

pub(crate) struct Inner {
    cfg: B1Config,
    addr: OnceLock<SocketAddr>,
    data: Mutex<Data>,
    sessions: Mutex<HashMap<String, session::Session>>,
    logins: AtomicU64,
    /// A frozen clock for the document stamps (`None`: the real UTC time).
    clock: Mutex<Option<NaiveDateTime>>,
    faults: FaultQueue,
    log: RequestLogStore,
}

/// A running B1 Service Layer simulator. Cheap to clone (shared state).
#[derive(Clone)]
pub struct B1Sim {
    inner: Arc<Inner>,
}

/// A document to add: header fields and lines; the simulator numbers and stamps it.
#[derive(Clone, Debug)]
pub struct NewDocument {
    pub card_code: String,
    pub num_at_card: Option<String>,
    pub currency: Option<String>,
    pub doc_rate: Decimal,
    pub doc_date: Option<NaiveDate>,
    pub comments: Option<String>,
    pub lines: Vec<DocLine>,
}

impl NewDocument {
    pub fn for_supplier(card_code: &str) -> Self {
        NewDocument {
            card_code: card_code.into(),
            num_at_card: None,
            currency: None,
            doc_rate: Decimal::ONE,
            doc_date: None,
            comments: None,
            lines: Vec::new(),
        }
    }

    /// The supplier's own invoice number (`NumAtCard`).
    pub fn num_at_card(mut self, n: &str) -> Self {
        self.num_at_card = Some(n.into());
        self
    }

    /// A foreign currency and its rate to the local one.
    pub fn currency(mut self, code: &str, rate: &str) -> Self {
        self.currency = Some(code.into());
        self.doc_rate = rate.parse().expect("decimal rate");
        self
    }

    pub fn line(mut self, line: DocLine) -> Self {
        self.lines.push(line);
        self
    }
}

impl DocLine {
    /// An item line; `quantity`, `price` and `tax` are decimal strings.
    pub fn item(
        item_code: &str,
        description: &str,
        quantity: &str,
        price: &str,
        tax: &str,
    ) -> Self {
        DocLine {
            line_num: 0,
            item_code: Some(item_code.into()),
            description: description.into(),
            quantity: quantity.parse().expect("decimal quantity"),
            price: price.parse().expect("decimal price"),
            tax_code: None,
            tax: tax.parse().expect("decimal tax"),
            account_code: None,
            costing_codes: Default::default(),
            base_type: None,
            base_entry: None,
            base_line: None,
            warehouse_code: None,
        }
    }

    pub fn tax_code(mut self, code: &str) -> Self {
        self.tax_code = Some(code.into());
        self
    }

    /// Distribution rules `CostingCode`, `CostingCode2`, … in order.
    pub fn costing(mut self, codes: &[&str]) -> Self {
        for (i, c) in codes.iter().take(5).enumerate() {
            self.costing_codes[i] = Some((*c).into());
        }
        self
    }

    /// Copied from line `base_line` of purchase order `po_entry` (`BaseType` 22).
    pub fn from_po(mut self, po_entry: i64, base_line: i64) -> Self {
        self.base_type = Some(DocKind::PurchaseOrders.object_type());
        self.base_entry = Some(po_entry);
        self.base_line = Some(base_line);
        self
    }
}

/// A business partner to add.
pub struct NewPartner {
    pub card_code: String,
    pub card_name: String,
    pub card_type: String,
    pub federal_tax_id: Option<String>,
    pub email: Option<String>,
}

impl NewPartner {
    pub fn supplier(card_code: &str, card_name: &str) -> Self {
        NewPartner {
            card_code: card_code.into(),
            card_name: card_name.into(),
            card_type: "cSupplier".into(),
            federal_tax_id: None,
            email: None,
        }
    }
}

type ActionError = (StatusCode, i64, String);

fn business(msg: String) -> ActionError {
    (StatusCode::BAD_REQUEST, -10, msg)
}

impl B1Sim {
    /// Binds 127.0.0.1 on a free port and serves in a tokio task.
    pub async fn start(cfg: B1Config) -> std::io::Result<B1Sim> {
        Self::start_on(cfg, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_on(cfg: B1Config, addr: SocketAddr) -> std::io::Result<B1Sim> {
        let sim = B1Sim {
            inner: Arc::new(Inner {
                cfg,
                addr: OnceLock::new(),
                data: Mutex::new(Data {
                    next_payment_entry: 1,
                    ..Data::default()
                }),
                sessions: Mutex::new(HashMap::new()),
                logins: AtomicU64::new(0),
                clock: Mutex::new(None),
                faults: FaultQueue::default(),
                log: RequestLogStore::default(),
            }),
        };
        let local = crate::server::spawn(sim.router(), addr).await?;
        let _ = sim.inner.addr.set(local);
        Ok(sim)
    }

    fn router(&self) -> Router {
        Router::new()
            .route("/b1s/{version}/{*rest}", any(handlers::dispatch))
            .layer(middleware::from_fn_with_state(self.clone(), faults))
            .merge(control::routes())
            .layer(middleware::from_fn_with_state(self.clone(), log_requests))
            .with_state(self.clone())
    }

    pub fn config(&self) -> &B1Config {
        &self.inner.cfg
    }

    /// "http://127.0.0.1:PORT".
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr.get().expect("bound"))
    }

    /// The service root of a protocol, e.g. "http://127.0.0.1:PORT/b1s/v2".
    pub fn service_root(&self, p: Protocol) -> String {
        let v = match p {
            Protocol::V1 => "v1",
            Protocol::V2 => "v2",
        };
        format!("{}/b1s/{v}", self.base_url())
    }

    /// Freezes the clock the document stamps use (`None`: real UTC time again).
    pub fn set_now(&self, at: Option<NaiveDateTime>) {
        *self.inner.clock.lock().unwrap() = at;
    }

    pub(crate) fn now(&self) -> NaiveDateTime {
        self.inner
            .clock
            .lock()
            .unwrap()
            .unwrap_or_else(|| chrono::Utc::now().naive_utc())
    }

    /// Logins answered successfully so far.
    pub fn logins(&self) -> u64 {
        self.inner.logins.load(Ordering::SeqCst)
    }

    /// Sessions alive now (not timed out, not logged out).
    pub fn live_sessions(&self) -> usize {
        let timeout = self.inner.cfg.session_timeout;
        let mut s = self.inner.sessions.lock().unwrap();
        s.retain(|_, s| s.last_used_elapsed() <= timeout);
        s.len()
    }

    /// Every session times out now (the next call with one gets the invalid-session answer).
    pub fn expire_sessions(&self) {
        self.inner.sessions.lock().unwrap().clear();
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

    pub fn add_partner(&self, p: NewPartner) {
        let (date, time) = stamp(self.now());
        self.inner.data.lock().unwrap().partners.insert(
            p.card_code.clone(),
            BusinessPartner {
                card_code: p.card_code,
                card_name: p.card_name,
                card_type: p.card_type,
                federal_tax_id: p.federal_tax_id,
                currency: None,
                email: p.email,
                phone: None,
                valid: true,
                creation_date: date,
                update_date: date,
                update_time: time,
            },
        );
    }

    /// Changes a partner and re-stamps it; false if there is no such partner.
    pub fn change_partner(
        &self,
        card_code: &str,
        at: NaiveDateTime,
        f: impl FnOnce(&mut BusinessPartner),
    ) -> bool {
        let reliable = self.inner.cfg.update_time_reliable;
        let mut d = self.inner.data.lock().unwrap();
        let Some(bp) = d.partners.get_mut(card_code) else {
            return false;
        };
        f(bp);
        let (date, time) = stamp(at);
        if reliable || bp.update_date != date {
            bp.update_time = time;
        }
        bp.update_date = date;
        true
    }

    /// Removes a partner (a person deleting it in B1, as `DELETE BusinessPartners('code')`
    /// would); false when there is none.
    pub fn remove_partner(&self, card_code: &str) -> bool {
        self.inner
            .data
            .lock()
            .unwrap()
            .partners
            .remove(card_code)
            .is_some()
    }

    /// Exactly what `GET BusinessPartners('code')` answers (v2).
    pub fn partner(&self, card_code: &str) -> Option<BusinessPartner> {
        self.inner
            .data
            .lock()
            .unwrap()
            .partners
            .get(card_code)
            .cloned()
    }

    /// Adds a document as the B1 client would create it: the same business checks as a
    /// `POST` (§4.3): a known supplier, an item on every line, base documents that exist, are
    /// open and belong to the same supplier. Returns its DocEntry.
    pub fn add_document(&self, kind: DocKind, doc: NewDocument) -> Result<i64, String> {
        self.insert_document(kind, doc, self.now())
            .map_err(|(_, _, m)| m)
    }

    fn insert_document(
        &self,
        kind: DocKind,
        doc: NewDocument,
        at: NaiveDateTime,
    ) -> Result<i64, ActionError> {
        let mut d = self.inner.data.lock().unwrap();
        let Some(bp) = d
            .partners
            .get(&doc.card_code)
            .filter(|bp| bp.card_type == "cSupplier")
        else {
            return Err(business(format!(
                "Invalid BP code [{}.CardCode] , '{}'",
                kind.table(),
                doc.card_code
            )));
        };
        let card_name = bp.card_name.clone();
        for (i, l) in doc.lines.iter().enumerate() {
            if l.item_code.is_none() && l.account_code.is_none() {
                return Err(business(format!(
                    "Item number is missing; specify an item number [DocumentLines.ItemCode][line: {}]",
                    i + 1
                )));
            }
            if let (Some(22), Some(base)) = (l.base_type, l.base_entry) {
                match d.documents.get(&(DocKind::PurchaseOrders, base)) {
                    None => return Err(business("No matching records found (ODBC -2028)".into())),
                    Some(po) if po.card_code != doc.card_code => {
                        return Err(business(
                            "Base document card and target document card do not match.".into(),
                        ));
                    }
                    Some(po) if !po.open || po.cancelled => {
                        return Err(business(
                            "One of the base documents has already been closed".into(),
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        let entry = d.next_entry(kind);
        let (date, time) = stamp(at);
        let currency = doc
            .currency
            .unwrap_or_else(|| self.inner.cfg.local_currency.clone());
        let lines = doc
            .lines
            .into_iter()
            .enumerate()
            .map(|(i, mut l)| {
                l.line_num = i as i64;
                l
            })
            .collect();
        d.documents.insert(
            (kind, entry),
            Document {
                doc_entry: entry,
                // DocNum is a series number, distinct from DocEntry in real companies.
                doc_num: 1000 + entry,
                card_code: doc.card_code,
                card_name,
                doc_date: doc.doc_date.unwrap_or(date),
                doc_due_date: doc.doc_date.unwrap_or(date) + chrono::Days::new(30),
                num_at_card: doc.num_at_card,
                currency,
                doc_rate: doc.doc_rate,
                comments: doc.comments,
                lines,
                open: true,
                cancelled: false,
                cancel_status: CancelStatus::No,
                creation_date: date,
                update_date: date,
                update_time: time,
            },
        );
        Ok(entry)
    }

    /// A document created with `POST PurchaseOrders` / `POST PurchaseInvoices`.
    fn create_document_from_json(&self, kind: DocKind, body: &[u8]) -> Result<i64, ActionError> {
        let bad = |m: &str| (StatusCode::BAD_REQUEST, -1, m.to_string());
        let v: Value = serde_json::from_slice(body).map_err(|_| bad("Invalid JSON body"))?;
        let card = v
            .get("CardCode")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("CardCode is required"))?;
        let mut doc = NewDocument::for_supplier(card);
        doc.num_at_card = v
            .get("NumAtCard")
            .and_then(Value::as_str)
            .map(str::to_string);
        // §4.7.7: quantities and prices arrive as numbers or strings; both are accepted.
        let dec = |x: Option<&Value>| -> Decimal {
            match x {
                Some(Value::Number(n)) => n.to_string().parse().unwrap_or_default(),
                Some(Value::String(s)) => s.parse().unwrap_or_default(),
                _ => Decimal::ZERO,
            }
        };
        for l in v
            .get("DocumentLines")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut line = DocLine::item("x", "", "0", "0", "0");
            line.item_code = l
                .get("ItemCode")
                .and_then(Value::as_str)
                .map(str::to_string);
            line.account_code = l
                .get("AccountCode")
                .and_then(Value::as_str)
                .map(str::to_string);
            line.description = l
                .get("ItemDescription")
                .and_then(Value::as_str)
                .unwrap_or("")
                .into();
            line.quantity = dec(l.get("Quantity"));
            line.price = dec(l.get("UnitPrice").or(l.get("Price")));
            line.base_type = l.get("BaseType").and_then(Value::as_i64).map(|b| b as i32);
            line.base_entry = l.get("BaseEntry").and_then(Value::as_i64);
            line.base_line = l.get("BaseLine").and_then(Value::as_i64);
            doc.lines.push(line);
        }
        self.insert_document(kind, doc, self.now())
    }

    /// Changes a live document and re-stamps it at the simulator's clock; false if absent.
    pub fn change_document(
        &self,
        kind: DocKind,
        entry: i64,
        f: impl FnOnce(&mut Document),
    ) -> bool {
        let at = self.now();
        let reliable = self.inner.cfg.update_time_reliable;
        let mut d = self.inner.data.lock().unwrap();
        let Some(doc) = d.documents.get_mut(&(kind, entry)) else {
            return false;
        };
        f(doc);
        restamp(doc, at, reliable);
        true
    }

    /// `POST {Set}(n)/{Cancel|Close|Reopen|CreateCancellationDocument}` (§4.8.3).
    pub fn document_action(
        &self,
        kind: DocKind,
        entry: i64,
        action: &str,
        at: NaiveDateTime,
    ) -> Result<(), (StatusCode, i64, String)> {
        let reliable = self.inner.cfg.update_time_reliable;
        let mut d = self.inner.data.lock().unwrap();
        let Some(doc) = d.documents.get_mut(&(kind, entry)) else {
            return Err((
                StatusCode::NOT_FOUND,
                errors::NO_MATCHING_RECORDS.0,
                errors::NO_MATCHING_RECORDS.1.into(),
            ));
        };
        if doc.cancelled || doc.cancel_status != CancelStatus::No {
            return Err(business("Document is already cancelled".into()));
        }
        match (kind, action) {
            (DocKind::PurchaseOrders, "Cancel") => {
                // §4.8.3 strict assumption: the original itself becomes cancelled and closed.
                doc.cancelled = true;
                doc.cancel_status = CancelStatus::Yes;
                doc.open = false;
            }
            (_, "Close") => doc.open = false,
            (_, "Reopen") => doc.open = true,
            (DocKind::PurchaseInvoices, "CreateCancellationDocument") => {
                // §4.8.3: an A/P invoice is reversed by a NEW document (csCancellation); the
                // original shows as cancelled.
                doc.cancelled = true;
                doc.cancel_status = CancelStatus::Yes;
                doc.open = false;
                let mut reversal = doc.clone();
                restamp(doc, at, reliable);
                let new_entry = d.next_entry(kind);
                reversal.doc_entry = new_entry;
                reversal.doc_num = 1000 + new_entry;
                reversal.cancel_status = CancelStatus::Cancellation;
                reversal.cancelled = false;
                let (date, time) = stamp(at);
                reversal.creation_date = date;
                reversal.update_date = date;
                reversal.update_time = time;
                d.documents.insert((kind, new_entry), reversal);
                return Ok(());
            }
            (DocKind::PurchaseInvoices, "Cancel") => {
                return Err(business(
                    "Cancel is not supported for A/P invoices; create a cancellation document"
                        .into(),
                ));
            }
            _ => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    -1,
                    format!("Unknown action '{action}'"),
                ));
            }
        }
        restamp(doc, at, reliable);
        Ok(())
    }

    /// A document as the simulator holds it.
    pub fn document(&self, kind: DocKind, entry: i64) -> Option<Document> {
        self.inner
            .data
            .lock()
            .unwrap()
            .documents
            .get(&(kind, entry))
            .cloned()
    }

    /// Adds an outgoing payment against A/P invoices; returns its DocEntry.
    pub fn add_payment(
        &self,
        card_code: &str,
        reference: &str,
        invoices: &[(i64, &str)],
    ) -> Result<i64, String> {
        let now = self.now();
        let mut d = self.inner.data.lock().unwrap();
        let bp = d
            .partners
            .get(card_code)
            .ok_or_else(|| format!("Invalid BP code [OVPM.CardCode] , '{card_code}'"))?;
        let card_name = bp.card_name.clone();
        let mut lines = Vec::new();
        for (inv, sum) in invoices {
            if !d.documents.contains_key(&(DocKind::PurchaseInvoices, *inv)) {
                return Err("No matching records found (ODBC -2028)".into());
            }
            lines.push(PaymentInvoice {
                doc_entry: *inv,
                sum_applied: sum.parse().map_err(|_| "bad amount".to_string())?,
            });
        }
        let entry = d.next_payment_entry;
        d.next_payment_entry += 1;
        let total = lines.iter().map(|l| l.sum_applied).sum();
        d.payments.insert(
            entry,
            VendorPayment {
                doc_entry: entry,
                doc_num: 5000 + entry,
                card_code: card_code.into(),
                card_name,
                doc_date: now.date(),
                currency: self.inner.cfg.local_currency.clone(),
                transfer_sum: total,
                transfer_reference: Some(reference.into()),
                invoices: lines,
                cancelled: false,
            },
        );
        Ok(entry)
    }
}

/// Re-stamps a changed document. §4.8.7: unless `UpdateTime` is configured reliable, it moves
/// only when the day does (see [`B1Config::update_time_reliable`]).
fn restamp(doc: &mut Document, at: NaiveDateTime, reliable: bool) {
    let (date, time) = stamp(at);
    if reliable || doc.update_date != date {
        doc.update_time = time;
    }
    doc.update_date = date;
}

async fn log_requests(State(sim): State<B1Sim>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/_sandbox") {
        return next.run(req).await;
    }
    sim.inner.log.record(req, next).await
}

async fn faults(State(sim): State<B1Sim>, req: Request, next: Next) -> Response {
    sim.inner.faults.apply(errors::fault_error, req, next).await
}
