//! The SAP Concur client: a thin layer over [`ApiClient`] with what is Concur's own. Auth is
//! the platform's rotating refresh token ([`RefreshTokenAuth`], §2.2): the token response's
//! `geolocation` is stored with the rotated refresh token (compare-and-set) before the new
//! access token is used, and every request URL here is relative, so it goes to that
//! geolocation, never to a configured host. FIS v4 (§2.3): paged lists by `page`/`limit` and
//! the `next` link, one document by `docId` (with `ignoreDocumentStatus=yes`, so a document
//! already acknowledged is read again, §2.7.3), acknowledgements and posting confirmations
//! whose per-item `code` is read from a 200 body.

use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{ACCEPT, HeaderName, HeaderValue};

use super::wire;
use crate::ports::{SecretString, SystemError};
use crate::systems::http::{
    ApiClient, ApiRequest, HttpError, HttpSettings, RateBudget, RefreshTokenAuth,
    RefreshTokenSettings, TokenStore,
};

/// The token endpoint, under the geolocation (§2.2).
pub const TOKEN_PATH: &str = "/oauth2/v0/token";
/// The FIS v4 prefix, under the geolocation (§2.3).
pub const FIS_PREFIX: &str = "/financialintegration/fi/v4/companies/transactiontypes";
/// The Invoice Vendor API v3.1, under the geolocation (§2.7.5).
pub const VENDORS_PATH: &str = "/api/v3.1/invoice/vendors";
/// The header choosing the `document` representation; lower-case `json` (§2.7.3).
pub const FORMAT_HEADER: &str = "documentformatas";

#[derive(Clone, Debug)]
pub struct ConcurSettings {
    /// The app's geolocation: only until a token response names the company's own.
    pub base_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// The secret holding the refresh-token state.
    pub refresh_token_secret: String,
    pub scope: Option<String>,
    pub system_id: String,
    pub page_size: u32,
    pub requests_per_second: u32,
    pub http: HttpSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum ConcurError {
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A FIS per-item answer that is not success (§2.3 service codes).
    #[error("SAP Concur answered code {code} for document {doc_id}: {message}")]
    Item {
        code: i64,
        doc_id: String,
        message: String,
    },
    #[error("SAP Concur's answer cannot be read: {0}")]
    Malformed(String),
}

impl From<ConcurError> for SystemError {
    fn from(e: ConcurError) -> Self {
        match e {
            ConcurError::Http(h) => h.into(),
            ConcurError::Item { code, .. } => {
                let message = e.to_string();
                match code {
                    // "Unknown error - please try again later".
                    199 => SystemError::Transient {
                        message,
                        retry_after: None,
                    },
                    // "This document does not exist" (ack 104, posting 116).
                    104 | 116 => SystemError::NotFound(message),
                    // The systemId is the integration's configuration: nothing of this
                    // integration can succeed until a person fixes it, so it backs off.
                    99 => SystemError::Unauthorized(message),
                    // 102/112 recalled, 103 not ready, 105/115 wrong type, 111 not
                    // acknowledged, 114 unknown state, 198 invalid request (don't retry),
                    // 298: refused, a person decides.
                    _ => SystemError::Rejected {
                        status: Some(200),
                        message,
                    },
                }
            }
            ConcurError::Malformed(m) => SystemError::Malformed(m),
        }
    }
}

/// What an acknowledge found (§2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acknowledged {
    Now,
    /// 101 "previously acknowledged": success (our own earlier attempt, or a repeat).
    Already,
    /// 102: the admin recalled (sent back) the document: it is not to be posted.
    Recalled,
}

/// What a posting or payment confirmation found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirmed {
    Now,
    /// 113 (posting) / 213 or 298 NOOP (payment): confirmed before; success.
    Already,
}

/// One page of a FIS list: each document (or why it cannot be read), and the next page.
#[derive(Debug, Default)]
pub struct ListPage {
    pub documents: Vec<Result<wire::FiDocument, String>>,
    pub next: Option<u32>,
}

#[derive(Clone)]
pub struct ConcurClient {
    api: ApiClient,
    system_id: String,
    page_size: u32,
    /// The configured app geolocation, for the ledger's identity of this company.
    app_base: String,
    client_id: String,
}

fn segment(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// The `page` of a `next` link's query (its host is not followed: §2.4 shows internal hosts in
/// hrefs; the request is rebuilt under the geolocation).
fn page_of(href: &str) -> Option<u32> {
    let query = href.split_once('?')?.1;
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "page")
        .and_then(|(_, v)| v.parse().ok())
}

impl ConcurClient {
    pub fn new(s: ConcurSettings, store: Arc<dyn TokenStore>) -> Result<Self, HttpError> {
        let auth = RefreshTokenAuth::new(
            RefreshTokenSettings {
                token_url: TOKEN_PATH.into(),
                base_url: s.base_url.clone(),
                client_id: s.client_id.clone(),
                client_secret: s.client_secret.clone(),
                scope: s.scope.clone(),
                secret_name: s.refresh_token_secret.clone(),
                // Longer than a token request may take (the client's timeout).
                lease: s.http.timeout + Duration::from_secs(5),
            },
            ArcStore(store),
        );
        let mut http = s.http.clone();
        http.budget = Some(RateBudget::per_second(s.requests_per_second.max(1)));
        let headers = vec![
            (ACCEPT, HeaderValue::from_static("application/json")),
            (
                HeaderName::from_static(FORMAT_HEADER),
                HeaderValue::from_static("json"),
            ),
        ];
        Ok(Self {
            api: ApiClient::with_auth(Arc::new(auth), headers, http)?,
            system_id: s.system_id,
            page_size: s.page_size.clamp(1, 100),
            app_base: s.base_url.trim_end_matches('/').to_string(),
            client_id: s.client_id,
        })
    }

    /// Which Concur company this client confirms into, for the ledger:
    /// `concur:{app geolocation host}/{client id}/{systemId}`.
    pub fn target_identity(&self) -> String {
        let host = self
            .app_base
            .split_once("://")
            .map_or(self.app_base.as_str(), |(_, rest)| rest);
        format!("concur:{host}/{}/{}", self.client_id, self.system_id)
    }

    pub fn stats(&self) -> &crate::systems::http::HttpStats {
        &self.api.stats
    }

    fn transactions(doc_type: &str) -> String {
        format!("{FIS_PREFIX}/{}/transactions", segment(doc_type))
    }

    /// One page of the documents READY for integration (§2.3; `limit` always sent, §2.7.3).
    pub async fn page(&self, doc_type: &str, page: u32) -> Result<ListPage, ConcurError> {
        let url = format!(
            "{}?page={page}&limit={}",
            Self::transactions(doc_type),
            self.page_size
        );
        let resp = self.api.send(&ApiRequest::get(url)).await?;
        let list: wire::DocumentPage = resp.json()?;
        let next = list
            .links
            .iter()
            .find(|l| l.rel.as_deref() == Some("next"))
            .and_then(|l| l.href.as_deref())
            .and_then(page_of)
            // A `next` that does not move forward would loop for ever.
            .filter(|n| *n > page);
        let documents = list
            .content
            .into_iter()
            .map(|v| {
                let id = v.get("id").and_then(|i| i.as_str()).map(str::to_string);
                serde_json::from_value::<wire::FiDocument>(v).map_err(|e| {
                    format!(
                        "a listed Concur {doc_type} document ({}) cannot be read: {e}",
                        id.as_deref().unwrap_or("no id")
                    )
                })
            })
            .collect();
        Ok(ListPage { documents, next })
    }

    /// One document by its FIS id, whatever its status (`ignoreDocumentStatus=yes` with
    /// `docId`, §2.7.3); `None` when Concur has none.
    pub async fn document(
        &self,
        doc_type: &str,
        doc_id: &str,
    ) -> Result<Option<wire::FiDocument>, ConcurError> {
        let url = format!(
            "{}?docId={}&ignoreDocumentStatus=yes&page=0&limit=1",
            Self::transactions(doc_type),
            segment(doc_id)
        );
        let resp = match self.api.send(&ApiRequest::get(url)).await {
            Ok(r) => r,
            Err(e) if e.status() == Some(404) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let list: wire::DocumentPage = resp.json()?;
        for v in list.content {
            let d: wire::FiDocument = serde_json::from_value(v).map_err(|e| {
                ConcurError::Malformed(format!("Concur {doc_type} document {doc_id}: {e}"))
            })?;
            if d.id == doc_id {
                return Ok(Some(d));
            }
        }
        Ok(None)
    }

    /// The item of `doc_id` in a per-item answer.
    fn item(body: &[u8], doc_id: &str) -> Result<wire::ItemResult, ConcurError> {
        let items: Vec<wire::ItemResult> = serde_json::from_slice(body)
            .map_err(|e| ConcurError::Malformed(format!("a per-document answer: {e}")))?;
        let only = (items.len() == 1).then(|| items[0].clone());
        items
            .into_iter()
            .find(|i| i.doc_id.as_deref() == Some(doc_id))
            // One item for one document sent: it is ours, whatever `docId` it echoes.
            .or(only)
            .ok_or_else(|| {
                ConcurError::Malformed(format!("the answer names no item for document {doc_id}"))
            })
    }

    fn refused(item: &wire::ItemResult, doc_id: &str, result: Option<&str>) -> ConcurError {
        ConcurError::Item {
            code: item.code.unwrap_or(-1),
            doc_id: doc_id.to_string(),
            message: crate::text::one_line(
                &format!(
                    "{} {}",
                    result.unwrap_or(""),
                    item.error_message.as_deref().unwrap_or("")
                ),
                crate::text::REMOTE_TEXT_MAX,
            )
            .trim()
            .to_string(),
        }
    }

    /// `POST …/acknowledgements` for one document (§2.3). Safe to repeat (101 on a repeat).
    pub async fn acknowledge(
        &self,
        doc_type: &str,
        doc_id: &str,
    ) -> Result<Acknowledged, ConcurError> {
        let url = format!("{}/acknowledgements", Self::transactions(doc_type));
        let body = wire::AcknowledgeRequest {
            ids: vec![doc_id],
            system_id: &self.system_id,
        };
        let req = ApiRequest {
            idempotent: true,
            ..ApiRequest::post_json(url, &body)
        };
        let resp = self.api.send(&req).await?;
        let item = Self::item(&resp.body, doc_id)?;
        match item.code {
            Some(0) => Ok(Acknowledged::Now),
            Some(101) => Ok(Acknowledged::Already),
            Some(102) => Ok(Acknowledged::Recalled),
            _ => Err(Self::refused(
                &item,
                doc_id,
                item.acknowledge_result.as_deref(),
            )),
        }
    }

    /// `POST …/postingconfirmations` for one document. 113 (confirmed before) is success.
    /// Not repeated blindly on an ambiguous failure: the writer reads the status first.
    pub async fn confirm_posting(
        &self,
        doc_type: &str,
        confirmation: wire::PostingConfirmation,
    ) -> Result<Confirmed, ConcurError> {
        let url = format!("{}/postingconfirmations", Self::transactions(doc_type));
        let doc_id = confirmation.doc_id.clone();
        let body = wire::PostingConfirmations {
            system_id: self.system_id.clone(),
            posting_confirmations: vec![confirmation],
        };
        let resp = self.api.send(&ApiRequest::post_json(url, &body)).await?;
        let item = Self::item(&resp.body, &doc_id)?;
        match item.code {
            Some(0) => Ok(Confirmed::Now),
            Some(113) => Ok(Confirmed::Already),
            _ => Err(Self::refused(
                &item,
                &doc_id,
                item.posting_confirmation_result.as_deref(),
            )),
        }
    }

    /// `POST …/paymentconfirmations` for one document. Branches on the result string, never on
    /// the code (§2.7.4): `SUCCESS` sent; `NOOP` (213/298, this `paymentRef` is there already)
    /// done before; `NOT_POSTING_CONFIRMED` not yet (the posting confirmation goes first), a
    /// transient refusal.
    pub async fn confirm_payment(
        &self,
        doc_type: &str,
        confirmation: wire::PaymentConfirmation,
    ) -> Result<Confirmed, ConcurError> {
        let url = format!("{}/paymentconfirmations", Self::transactions(doc_type));
        let doc_id = confirmation.doc_id.clone();
        let body = wire::PaymentConfirmations {
            system_id: self.system_id.clone(),
            processing_confirmation: vec![confirmation],
        };
        let resp = self.api.send(&ApiRequest::post_json(url, &body)).await?;
        let item = Self::item(&resp.body, &doc_id)?;
        match item.payment_confirmation_result.as_deref() {
            Some("SUCCESS") => Ok(Confirmed::Now),
            Some("NOOP") => Ok(Confirmed::Already),
            // Code 199 "try again later" travels as Transient below; this one too: the
            // posting confirmation is on its way (or parked, and the payment waits for it).
            Some("NOT_POSTING_CONFIRMED") | Some("SYSTEM_ERROR_OCCURRED") => {
                Err(ConcurError::Item {
                    code: 199,
                    doc_id: doc_id.clone(),
                    message: format!(
                        "{}: {}",
                        item.payment_confirmation_result.as_deref().unwrap_or(""),
                        item.error_message.as_deref().unwrap_or("")
                    ),
                })
            }
            other => Err(Self::refused(&item, &doc_id, other)),
        }
    }

    /// `GET /api/v3.1/invoice/vendors?vendorCode=&addressCode=` (exact search, §2.7.5).
    pub async fn invoice_vendor(
        &self,
        vendor_code: &str,
        address_code: &str,
    ) -> Result<Option<wire::InvoiceVendor>, ConcurError> {
        let url = format!(
            "{VENDORS_PATH}?vendorCode={}&addressCode={}&searchType=exact&limit=25",
            segment(vendor_code),
            segment(address_code)
        );
        let resp = self.api.send(&ApiRequest::get(url)).await?;
        let c: wire::VendorCollection = resp.json()?;
        Ok(c.vendor.into_iter().chain(c.items).find(|v| {
            v.vendor_code.eq_ignore_ascii_case(vendor_code)
                && v.address_code.eq_ignore_ascii_case(address_code)
        }))
    }

    /// `POST` (create) or `PUT` (update) one invoice vendor; the outcome is per record
    /// (§2.7.5: HTTP 200 with each record's `StatusList`, read here, never assumed).
    pub async fn send_invoice_vendor(
        &self,
        vendor: &wire::InvoiceVendor,
        create: bool,
    ) -> Result<Result<(), String>, ConcurError> {
        let body = wire::VendorCollection {
            vendor: vec![vendor.clone()],
            items: vec![vendor.clone()],
            next_page: None,
        };
        let req = if create {
            ApiRequest::post_json(VENDORS_PATH, &body)
        } else {
            ApiRequest::put_json(VENDORS_PATH, &body)
        };
        let resp = self.api.send(&req).await?;
        let c: wire::VendorCollection = resp.json()?;
        let answered = c.vendor.into_iter().chain(c.items).find(|v| {
            v.vendor_code.eq_ignore_ascii_case(&vendor.vendor_code)
                && v.address_code.eq_ignore_ascii_case(&vendor.address_code)
        });
        let Some(answered) = answered else {
            return Err(ConcurError::Malformed(format!(
                "the vendor answer names no record for {}",
                vendor.vendor_code
            )));
        };
        // Doubt (§2.7.5 [U]): the success value of `Type` is not documented; anything but
        // ERROR/WARNING/FAILURE counts, and a WARNING is a failure as public clients read it.
        let failed: Vec<String> = answered
            .status_list
            .iter()
            .filter(|s| {
                matches!(
                    s.kind.as_deref().map(str::to_ascii_uppercase).as_deref(),
                    Some("ERROR" | "WARNING" | "FAILURE")
                )
            })
            .map(|s| {
                format!(
                    "{} {}",
                    s.code.as_deref().unwrap_or(""),
                    s.message.as_deref().unwrap_or("")
                )
                .trim()
                .to_string()
            })
            .collect();
        Ok(if failed.is_empty() {
            Ok(())
        } else {
            Err(crate::text::one_line(
                &failed.join("; "),
                crate::text::REMOTE_TEXT_MAX,
            ))
        })
    }

    /// Refreshes the token (storing the rotated one) and reads the first invoice page
    /// (`mlc check`).
    pub async fn check(&self) -> Result<String, ConcurError> {
        self.api.authenticate().await?;
        let page = self.page("invoice", 0).await?;
        Ok(format!(
            "token ok; {} invoice payment request(s) ready on the first page",
            page.documents.len()
        ))
    }
}

/// A shared [`TokenStore`] as the owned one [`RefreshTokenAuth`] takes.
struct ArcStore(Arc<dyn TokenStore>);

impl TokenStore for ArcStore {
    fn read<'a>(
        &'a self,
        name: &'a str,
    ) -> crate::systems::http::auth::BoxFuture<
        'a,
        Result<(SecretString, crate::ports::SecretVersion), crate::ports::SecretError>,
    > {
        self.0.read(name)
    }

    fn write<'a>(
        &'a self,
        name: &'a str,
        expected: Option<&'a crate::ports::SecretVersion>,
        value: &'a SecretString,
    ) -> crate::systems::http::auth::BoxFuture<
        'a,
        Result<crate::ports::PutOutcome, crate::ports::SecretError>,
    > {
        self.0.write(name, expected, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_is_read_from_the_link_query_not_its_host() {
        assert_eq!(
            page_of(
                "https://fiserviceurlhere/fi/v4/companies/transactiontypes/expense/transactions?limit=3&page=1&size=3"
            ),
            Some(1)
        );
        assert_eq!(page_of("https://x/y"), None);
    }

    #[test]
    fn service_codes_map_to_what_a_step_does() {
        let item = |code| ConcurError::Item {
            code,
            doc_id: "d".into(),
            message: String::new(),
        };
        assert!(matches!(
            SystemError::from(item(199)),
            SystemError::Transient { .. }
        ));
        assert!(matches!(
            SystemError::from(item(104)),
            SystemError::NotFound(_)
        ));
        assert!(SystemError::from(item(198)).is_rejection());
        assert!(SystemError::from(item(112)).is_rejection());
        assert!(matches!(
            SystemError::from(item(99)),
            SystemError::Unauthorized(_)
        ));
    }
}
