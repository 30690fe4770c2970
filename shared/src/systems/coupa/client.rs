use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use reqwest::header::{ACCEPT, HeaderName, HeaderValue};
use rust_decimal::Decimal;

use super::wire;
use crate::ports::SecretString;
use crate::systems::http::{
    ApiClient, ApiRequest, ClientCredentials, HttpError, HttpSettings, RateBudget, TokenCache,
    TokenPersistence,
};

/// coupa.md §1.3: "the maximum number of results returned are 50 at a time".
pub const PAGE_SIZE: usize = 50;

#[derive(Clone, Debug)]
pub struct CoupaSettings {
    /// `https://{instance}.coupahost.com`
    pub base_url: String,
    /// Defaults to `{base_url}/oauth2/token` (coupa.md §1.1).
    pub token_url: Option<String>,
    pub client_id: String,
    pub client_secret: SecretString,
    pub scopes: Vec<String>,
    /// Sent as `X-COUPA-API-Version` on every call (product decision, apis/README.md).
    pub api_version: String,
    /// coupa.md §1.5: 25 requests/second.
    pub requests_per_second: u32,
    pub http: HttpSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum CoupaError {
    #[error(transparent)]
    Http(#[from] HttpError),
    /// "Coupa purchase order 12 cannot be read: …"
    #[error("Coupa {kind} {id} cannot be read: {message}")]
    Malformed {
        /// "invoice", "purchase order" or "supplier".
        kind: &'static str,
        id: String,
        message: String,
    },
}

impl From<CoupaError> for crate::ports::SystemError {
    fn from(e: CoupaError) -> Self {
        match e {
            CoupaError::Http(h) => h.into(),
            e @ CoupaError::Malformed { .. } => crate::ports::SystemError::Malformed(e.to_string()),
        }
    }
}

/// One listed document of a poll page: its id and, when readable, its `updated-at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocRef {
    pub id: i64,
    pub updated_at: Option<DateTime<Utc>>,
}

pub type InvoiceRef = DocRef;

/// A poll page as listed: each readable element with its JSON, and the unreadable ones.
pub(crate) type Listing = (Vec<(DocRef, serde_json::Value)>, Vec<CoupaError>);

/// A payment to record on a Coupa invoice (coupa.md §1.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRecord {
    /// Unique per payment in the paying system; sent as the payment's `notes` (string(255)), so
    /// a repeat is detectable with [`wire::Invoice::has_payment_reference`] before sending.
    pub reference: String,
    pub amount: Decimal,
    pub date: NaiveDate,
}

/// The instants a poll covers: `[lower, upper)`, fixed when the poll starts.
#[derive(Clone, Copy, Debug)]
pub struct PollWindow {
    pub lower: DateTime<Utc>,
    pub upper: DateTime<Utc>,
}

#[derive(Clone)]
pub struct CoupaClient {
    pub(super) api: ApiClient,
    pub(super) base: String,
}

impl CoupaClient {
    /// Which Coupa instance this client writes into, for the ledger: `coupa:{host}`.
    pub fn target_identity(&self) -> String {
        let host = self
            .base
            .split_once("://")
            .map_or(self.base.as_str(), |(_, rest)| rest);
        format!("coupa:{host}")
    }

    pub fn new(s: CoupaSettings) -> Result<Self, HttpError> {
        Self::with_token_cache(s, None)
    }

    /// As [`CoupaClient::new`], keeping the access token in `persistence` too (shared with
    /// later processes; the embedded runtime), or only in memory when `None`.
    pub fn with_token_cache(
        s: CoupaSettings,
        persistence: Option<TokenPersistence>,
    ) -> Result<Self, HttpError> {
        let base = s.base_url.trim_end_matches('/').to_string();
        let creds = ClientCredentials {
            token_url: s
                .token_url
                .clone()
                .unwrap_or_else(|| format!("{base}/oauth2/token")),
            client_id: s.client_id.clone(),
            client_secret: s.client_secret.clone(),
            scope: s.scopes.join(" "),
        };
        let tokens = TokenCache::persisted(creds, persistence);
        let version = HeaderValue::from_str(&s.api_version).map_err(|_| HttpError::Decode {
            url: base.clone(),
            message: format!(
                "api_version '{}' is not a valid header value",
                s.api_version
            ),
        })?;
        let headers = vec![
            (ACCEPT, HeaderValue::from_static("application/json")),
            (HeaderName::from_static("x-coupa-api-version"), version),
        ];
        let mut http = s.http.clone();
        http.budget = Some(RateBudget::per_second(s.requests_per_second.max(1)));
        // coupa.md §1.5: public clients treat 503 as throttling too.
        http.retry_503 = true;
        Ok(Self {
            api: ApiClient::new(tokens, headers, http)?,
            base,
        })
    }

    pub fn stats(&self) -> &crate::systems::http::HttpStats {
        &self.api.stats
    }

    /// One page of approved invoices updated in `window`, with ids above `after_id`, in id order.
    ///
    /// Why keyset paging on `id[gt]` and not `offset`: offset paging over a filtered set that
    /// changes mid-read skips rows (an invoice updated or un-approved between pages shifts every
    /// later row back by one). The upper bound is fixed for the whole poll, so a row updated
    /// mid-read leaves this window and is picked up by the next poll, whose lower bound overlaps
    /// this one's upper bound. `gt_or_eq` on the lower bound keeps rows that share it.
    pub async fn approved_invoices_page(
        &self,
        window: PollWindow,
        after_id: i64,
    ) -> Result<(Vec<InvoiceRef>, Vec<CoupaError>), CoupaError> {
        self.keyset_page(
            "invoice",
            "invoices",
            &[("status", "approved")],
            window,
            after_id,
        )
        .await
    }

    /// One page of purchase orders updated in `window` (every status but `draft`, so a PO
    /// cancelled or closed after it was sent is seen again), ids above `after_id`, in id order.
    /// Same keyset paging as [`CoupaClient::approved_invoices_page`].
    pub async fn purchase_orders_page(
        &self,
        window: PollWindow,
        after_id: i64,
    ) -> Result<(Vec<DocRef>, Vec<CoupaError>), CoupaError> {
        // coupa.md §1.3 shows `status[not_eq]=…` on purchase orders.
        self.keyset_page(
            "purchase order",
            "purchase_orders",
            &[("status[not_eq]", "draft")],
            window,
            after_id,
        )
        .await
    }

    /// One page of suppliers (any status) updated in `window`, ids above `after_id`, in id
    /// order. Same keyset paging as [`CoupaClient::approved_invoices_page`].
    pub async fn suppliers_page(
        &self,
        window: PollWindow,
        after_id: i64,
    ) -> Result<(Vec<DocRef>, Vec<CoupaError>), CoupaError> {
        self.keyset_page("supplier", "suppliers", &[], window, after_id)
            .await
    }

    /// `GET /api/{resource}?{filters}&updated-at[gt_or_eq]=lower&updated-at[lt]=upper&id[gt]=after&limit=50`.
    /// Elements that cannot be read as a [`wire::DocStub`] come back as errors naming them, so
    /// one bad element neither stops the poll nor vanishes silently.
    async fn keyset_page(
        &self,
        kind: &'static str,
        resource: &str,
        filters: &[(&str, &str)],
        window: PollWindow,
        after_id: i64,
    ) -> Result<(Vec<DocRef>, Vec<CoupaError>), CoupaError> {
        let (listed, unreadable) = self
            .keyset_listing(kind, resource, filters, window, after_id)
            .await?;
        Ok((listed.into_iter().map(|(r, _)| r).collect(), unreadable))
    }

    /// One page of a poll feed (`"invoices"`, `"purchase_orders"`, `"suppliers"`) with each
    /// listed element as Coupa sent it: the index answers full objects (coupa.md §1.3: no
    /// `fields` / `return_object` asked), the same representation `show` gives, so the poll can
    /// hand a document on without reading it again. `None`: no such feed.
    pub(crate) async fn feed_listing(
        &self,
        feed: &str,
        window: PollWindow,
        after_id: i64,
    ) -> Option<Result<Listing, CoupaError>> {
        let (kind, resource, filters): (_, _, &[(&str, &str)]) = match feed {
            "invoices" => ("invoice", "invoices", &[("status", "approved")]),
            // coupa.md §1.3 shows `status[not_eq]=…` on purchase orders.
            "purchase_orders" => (
                "purchase order",
                "purchase_orders",
                &[("status[not_eq]", "draft")],
            ),
            "suppliers" => ("supplier", "suppliers", &[]),
            _ => return None,
        };
        Some(
            self.keyset_listing(kind, resource, filters, window, after_id)
                .await,
        )
    }

    async fn keyset_listing(
        &self,
        kind: &'static str,
        resource: &str,
        filters: &[(&str, &str)],
        window: PollWindow,
        after_id: i64,
    ) -> Result<Listing, CoupaError> {
        let limit = PAGE_SIZE.to_string();
        let after = after_id.to_string();
        let lower = coupa_time(window.lower);
        let upper = coupa_time(window.upper);
        let params = filters.iter().copied().chain([
            ("updated-at[gt_or_eq]", lower.as_str()),
            ("updated-at[lt]", upper.as_str()),
            ("id[gt]", after.as_str()),
            ("limit", limit.as_str()),
        ]);
        let url = reqwest::Url::parse_with_params(&format!("{}/api/{resource}", self.base), params)
            .map_err(|e| HttpError::Decode {
                url: self.base.clone(),
                message: e.to_string(),
            })?;
        let resp = self.api.send(&ApiRequest::get(url.as_str())).await?;
        let elements: Vec<serde_json::Value> = resp.json()?;
        let mut refs = Vec::with_capacity(elements.len());
        let mut unreadable = Vec::new();
        for (i, e) in elements.into_iter().enumerate() {
            let id_hint = e
                .get("id")
                .map(|v| v.to_string())
                .unwrap_or_else(|| format!("(element {i} of the page)"));
            match serde_json::from_value::<wire::DocStub>(e.clone()) {
                Ok(stub) => {
                    let updated_at = stub
                        .updated_at
                        .as_deref()
                        .and_then(|s| super::convert::instant(s).ok());
                    refs.push((
                        DocRef {
                            id: stub.id,
                            updated_at,
                        },
                        e,
                    ));
                }
                Err(err) => unreadable.push(CoupaError::Malformed {
                    kind,
                    id: id_hint,
                    message: err.to_string(),
                }),
            }
        }
        Ok((refs, unreadable))
    }

    /// `GET /api/{resource}/{id}` read as `T`; an unreadable body is `Malformed` naming it.
    async fn show<T: serde::de::DeserializeOwned>(
        &self,
        kind: &'static str,
        resource: &str,
        id: i64,
    ) -> Result<T, CoupaError> {
        let resp = self
            .api
            .send(&ApiRequest::get(format!(
                "{}/api/{resource}/{id}",
                self.base
            )))
            .await?;
        serde_json::from_slice(&resp.body).map_err(|e| CoupaError::Malformed {
            kind,
            id: id.to_string(),
            message: e.to_string(),
        })
    }

    /// The full invoice.
    pub async fn invoice(&self, id: i64) -> Result<wire::Invoice, CoupaError> {
        self.show("invoice", "invoices", id).await
    }

    /// The full purchase order with its `order-lines` (coupa.md §1.8).
    pub async fn purchase_order(&self, id: i64) -> Result<wire::PurchaseOrder, CoupaError> {
        self.show("purchase order", "purchase_orders", id).await
    }

    /// The supplier record (coupa.md §1.9).
    pub async fn supplier(&self, id: i64) -> Result<wire::Supplier, CoupaError> {
        self.show("supplier", "suppliers", id).await
    }

    /// Records one payment on an invoice: `PUT /api/invoices/{id}` with `paid`, `payment-date`
    /// and a one-element `payments[]` (coupa.md §1.7; apis/README.md "Coupa paid status").
    /// Amounts go as decimal strings. Not retried after an ambiguous failure (a repeat would
    /// append a second payment): check [`wire::Invoice::has_payment_reference`] first.
    pub async fn record_payment(
        &self,
        invoice_id: i64,
        p: &PaymentRecord,
    ) -> Result<wire::Invoice, CoupaError> {
        let date = p.date.format("%Y-%m-%d").to_string();
        // At least cents, as in §1.7's example ("989.00"); finer scales are sent as they are
        // (Coupa keeps decimal(32,4)).
        let mut amount = p.amount;
        if amount.scale() < 2 {
            amount.rescale(2);
        }
        let body = serde_json::json!({
            "paid": true,
            "payment-date": date,
            "payments": [{
                "amount-paid": amount.to_string(),
                "payment-date": date,
                "notes": p.reference,
            }],
        });
        let resp = self
            .api
            .send(&ApiRequest::put_json(
                format!("{}/api/invoices/{invoice_id}", self.base),
                &body,
            ))
            .await?;
        serde_json::from_slice(&resp.body).map_err(|e| CoupaError::Malformed {
            kind: "invoice",
            id: invoice_id.to_string(),
            message: e.to_string(),
        })
    }

    /// Authenticates and makes one cheap read (`mlc check`).
    pub async fn check(&self) -> Result<String, CoupaError> {
        self.api.authenticate().await?;
        let resp = self
            .api
            .send(&ApiRequest::get(format!(
                "{}/api/invoices?limit=1",
                self.base
            )))
            .await?;
        let n = resp.json::<Vec<serde_json::Value>>()?.len();
        Ok(format!(
            "token ok; GET /api/invoices?limit=1 returned {n} invoice(s)"
        ))
    }
}

/// UTC with a `Z`: no `+` to be mangled into a space by form decoding, and an instant Coupa
/// compares as such (coupa.md §1.3 examples compare datetimes).
fn coupa_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
