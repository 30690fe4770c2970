use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{ACCEPT, HeaderName, HeaderValue};

use super::wire;
use crate::ports::SecretString;
use crate::systems::http::{
    ApiClient, ApiRequest, ClientCredentials, HttpError, HttpSettings, RateBudget, TokenCache,
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
    #[error("Coupa invoice {id} cannot be read: {message}")]
    Malformed { id: String, message: String },
}

/// One page's worth of a poll: an invoice reference, or why an element could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceRef {
    pub id: i64,
    pub updated_at: Option<DateTime<Utc>>,
}

/// The instants a poll covers: `[lower, upper)`, fixed when the poll starts.
#[derive(Clone, Copy, Debug)]
pub struct PollWindow {
    pub lower: DateTime<Utc>,
    pub upper: DateTime<Utc>,
}

#[derive(Clone)]
pub struct CoupaClient {
    api: ApiClient,
    base: String,
}

impl CoupaClient {
    pub fn new(s: CoupaSettings) -> Result<Self, HttpError> {
        let base = s.base_url.trim_end_matches('/').to_string();
        let tokens = TokenCache::new(ClientCredentials {
            token_url: s
                .token_url
                .clone()
                .unwrap_or_else(|| format!("{base}/oauth2/token")),
            client_id: s.client_id.clone(),
            client_secret: s.client_secret.clone(),
            scope: s.scopes.join(" "),
        });
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
        let limit = PAGE_SIZE.to_string();
        let after = after_id.to_string();
        let lower = coupa_time(window.lower);
        let upper = coupa_time(window.upper);
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/invoices", self.base),
            [
                ("status", "approved"),
                ("updated-at[gt_or_eq]", lower.as_str()),
                ("updated-at[lt]", upper.as_str()),
                ("id[gt]", after.as_str()),
                ("limit", limit.as_str()),
            ],
        )
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
            match serde_json::from_value::<wire::InvoiceStub>(e) {
                Ok(stub) => {
                    let updated_at = stub
                        .updated_at
                        .as_deref()
                        .and_then(|s| super::convert::instant(s).ok());
                    refs.push(InvoiceRef {
                        id: stub.id,
                        updated_at,
                    });
                }
                Err(err) => unreadable.push(CoupaError::Malformed {
                    id: id_hint,
                    message: err.to_string(),
                }),
            }
        }
        Ok((refs, unreadable))
    }

    /// The full invoice, as wire type and raw JSON (for the audit of a document that won't map).
    pub async fn invoice(&self, id: i64) -> Result<wire::Invoice, CoupaError> {
        let resp = self
            .api
            .send(&ApiRequest::get(format!("{}/api/invoices/{id}", self.base)))
            .await?;
        serde_json::from_slice(&resp.body).map_err(|e| CoupaError::Malformed {
            id: id.to_string(),
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
