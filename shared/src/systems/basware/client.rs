//! The Basware P2P API client: a thin layer over [`ApiClient`] (pacing, retries, `Retry-After`,
//! the token) with what is Basware's own: Basic client authentication with a required scope,
//! the list's 302 followed by hand without `Authorization`, the continuation header, 404 on a
//! list meaning "none", and the documented repeat answers (405 on an acknowledge, 409 on a
//! payment response) read as "done already".

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, HeaderName, HeaderValue, LOCATION};

use super::wire;
use crate::ports::{SecretString, SystemError};
use crate::systems::http::{
    ApiClient, ApiRequest, ApiResponse, ClientAuth, ClientCredentials, HttpError, HttpSettings,
    RateBudget, TokenCache, TokenPersistence,
};

/// The continuation token header, request and response (§3.4).
pub const CONTINUATION_HEADER: &str = "x-amz-meta-continuationtoken";

/// The list filter (§3.5; the enum value, not the prose's "ReadyForTransfer").
pub const WAITING_FOR_TRANSFER: &str = "WaitingForTransfer";

#[derive(Clone, Debug)]
pub struct BaswareSettings {
    /// The region's API base URL.
    pub base_url: String,
    /// Its own setting (§3.1): never derived from the base URL.
    pub token_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub scopes: Vec<String>,
    /// Accounting documents per page, 1..=100.
    pub page_size: u32,
    pub requests_per_second: u32,
    pub http: HttpSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum BaswareError {
    #[error(transparent)]
    Http(#[from] HttpError),
    /// "Basware accounting document 1a2b cannot be read: …"
    #[error("Basware accounting document {id} cannot be read: {message}")]
    Malformed { id: String, message: String },
}

impl From<BaswareError> for SystemError {
    fn from(e: BaswareError) -> Self {
        match e {
            BaswareError::Http(h) => h.into(),
            e @ BaswareError::Malformed { .. } => SystemError::Malformed(e.to_string()),
        }
    }
}

/// One page of the waiting list: each element's stub (or why it cannot be read), and the token
/// of the next page.
#[derive(Debug, Default)]
pub struct ListPage {
    pub documents: Vec<Result<wire::DocStub, String>>,
    pub continuation: Option<String>,
}

/// What an acknowledge found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acknowledged {
    Now,
    /// 405: acknowledged before (§3.10 gotcha 5: idempotent success).
    Already,
}

/// What a payment response found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentSent {
    Now,
    /// 409: a response with this `externalCode` is there already.
    Already,
}

#[derive(Clone)]
pub struct BaswareClient {
    api: ApiClient,
    /// For the redirect target only: no credentials, no redirects.
    object: reqwest::Client,
    base: String,
    page_size: u32,
}

fn segment(id: &str) -> String {
    utf8_percent_encode(id, NON_ALPHANUMERIC).to_string()
}

impl BaswareClient {
    pub fn new(s: BaswareSettings) -> Result<Self, HttpError> {
        Self::with_token_cache(s, None)
    }

    /// As [`BaswareClient::new`], keeping the access token in `persistence` too.
    pub fn with_token_cache(
        s: BaswareSettings,
        persistence: Option<TokenPersistence>,
    ) -> Result<Self, HttpError> {
        let base = s.base_url.trim_end_matches('/').to_string();
        let creds = ClientCredentials {
            token_url: s.token_url.clone(),
            client_id: s.client_id.clone(),
            client_secret: s.client_secret.clone(),
            scope: s.scopes.join(" "),
        };
        // §3.2: Basic client authentication; `expires_in` is read as seconds by the cache and
        // the token is replaced before it expires (there is no refresh token).
        let tokens = TokenCache::persisted(creds, persistence).with_client_auth(ClientAuth::Basic);
        let mut http = s.http.clone();
        http.budget = Some(RateBudget::per_second(s.requests_per_second.max(1)));
        // §3.3: the list's redirect is followed by hand, without `Authorization`.
        http.follow_redirects = false;
        let object = reqwest::Client::builder()
            .timeout(http.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| HttpError::Transport {
                method: String::new(),
                url: String::new(),
                message: format!("cannot build the HTTP client: {e}"),
                timeout: false,
            })?;
        let headers = vec![(ACCEPT, HeaderValue::from_static("application/json"))];
        Ok(Self {
            api: ApiClient::new(tokens, headers, http)?,
            object,
            base,
            page_size: s.page_size.clamp(1, 100),
        })
    }

    /// Which Basware tenant this client writes into, for the ledger: `basware:{host}/{client}`.
    pub fn target_identity(&self) -> String {
        let host = self
            .base
            .split_once("://")
            .map_or(self.base.as_str(), |(_, rest)| rest);
        format!("basware:{host}")
    }

    pub fn stats(&self) -> &crate::systems::http::HttpStats {
        &self.api.stats
    }

    /// One page of the documents `WaitingForTransfer`, from `continuation` (`None`: the first).
    /// The query is the same on every page (§3.4). 404 is an empty list (§3.3).
    pub async fn waiting_page(&self, continuation: Option<&str>) -> Result<ListPage, BaswareError> {
        let url = format!(
            "{}/v1/accountingDocuments?ProcessingStatus={WAITING_FOR_TRANSFER}&pageSize={}",
            self.base, self.page_size
        );
        let mut req = ApiRequest::get(url);
        if let Some(token) = continuation {
            req = req.header(HeaderName::from_static(CONTINUATION_HEADER), token);
        }
        let resp = match self.api.send(&req).await {
            Ok(r) => r,
            Err(e) if e.status() == Some(404) => return Ok(ListPage::default()),
            Err(e) => return Err(e.into()),
        };
        let resp = self.followed(resp).await?;
        let continuation = resp
            .headers
            .get(CONTINUATION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        let list: wire::DocumentList = resp.json()?;
        let documents = list
            .accounting_documents
            .into_iter()
            .map(|v| {
                let id = v.get("invoiceId").map(ToString::to_string);
                serde_json::from_value::<wire::DocStub>(v).map_err(|e| {
                    format!(
                        "a listed Basware accounting document ({}) cannot be read: {e}",
                        id.as_deref().unwrap_or("no invoiceId")
                    )
                })
            })
            .collect();
        Ok(ListPage {
            documents,
            continuation,
        })
    }

    /// Follows a 302 once, by hand, WITHOUT `Authorization` (§3.3); any other answer is kept.
    async fn followed(&self, resp: ApiResponse) -> Result<ApiResponse, HttpError> {
        if !resp.status.is_redirection() {
            return Ok(resp);
        }
        let decode = |message: String| HttpError::Decode {
            url: resp.url.clone(),
            message,
        };
        let location = resp
            .headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| decode(format!("HTTP {} without a Location", resp.status)))?;
        let target = reqwest::Url::parse(&resp.url)
            .and_then(|u| u.join(location))
            .map_err(|e| decode(format!("redirect to an unreadable Location: {e}")))?;
        // The pre-signed URL is a credential of its own: never logged with its query.
        let shown = format!("{}{}", target.origin().ascii_serialization(), target.path());
        let answer = self
            .object
            .get(target)
            .send()
            .await
            .map_err(|e| HttpError::transport("GET", &shown, &e))?;
        let status = answer.status();
        let headers = answer.headers().clone();
        let body = answer
            .bytes()
            .await
            .map_err(|e| HttpError::transport("GET", &shown, &e))?;
        if !status.is_success() {
            return Err(HttpError::Status {
                method: "GET".into(),
                url: shown,
                status: status.as_u16(),
                body: crate::text::remote_body(&String::from_utf8_lossy(&body)),
                retry_after: crate::systems::http::retry_after(&headers),
            });
        }
        Ok(ApiResponse {
            status,
            headers,
            body,
            url: shown,
        })
    }

    async fn get_document(&self, id: &str) -> Result<ApiResponse, BaswareError> {
        let url = format!("{}/v1/accountingDocuments/{}", self.base, segment(id));
        let resp = self.api.send(&ApiRequest::get(url)).await?;
        Ok(self.followed(resp).await?)
    }

    /// One accounting document.
    pub async fn document(&self, id: &str) -> Result<wire::AccountingDocument, BaswareError> {
        let resp = self.get_document(id).await?;
        serde_json::from_slice(&resp.body).map_err(|e| BaswareError::Malformed {
            id: id.to_string(),
            message: e.to_string(),
        })
    }

    /// Its processing status and the transfer responses it holds.
    pub async fn responses(&self, id: &str) -> Result<wire::Responses, BaswareError> {
        let resp = self.get_document(id).await?;
        serde_json::from_slice(&resp.body).map_err(|e| BaswareError::Malformed {
            id: id.to_string(),
            message: e.to_string(),
        })
    }

    /// `POST …/acknowledge`; 405 is "acknowledged before" (§3.5), not an error.
    pub async fn acknowledge(&self, id: &str) -> Result<Acknowledged, BaswareError> {
        let url = format!(
            "{}/v1/accountingDocuments/{}/acknowledge",
            self.base,
            segment(id)
        );
        // Safe to repeat after a lost answer: a repeat answers 405, which is success here.
        let req = ApiRequest {
            idempotent: true,
            ..ApiRequest::post_empty(url)
        };
        match self.api.send(&req).await {
            Ok(_) => Ok(Acknowledged::Now),
            Err(e) if e.status() == Some(StatusCode::METHOD_NOT_ALLOWED.as_u16()) => {
                Ok(Acknowledged::Already)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `POST …/transferResponses`. Not repeated on an ambiguous failure: the writer looks for it
    /// by its `externalCode` first.
    pub async fn send_transfer_response(
        &self,
        id: &str,
        response: &wire::TransferResponse,
    ) -> Result<(), BaswareError> {
        let url = format!(
            "{}/v1/accountingDocuments/{}/transferResponses",
            self.base,
            segment(id)
        );
        self.api.send(&ApiRequest::post_json(url, response)).await?;
        Ok(())
    }

    /// `POST …/paymentResponses`; 409 is "this `externalCode` is there already" (§3.6).
    pub async fn send_payment_response(
        &self,
        id: &str,
        response: &wire::PaymentResponse,
    ) -> Result<PaymentSent, BaswareError> {
        let url = format!(
            "{}/v1/accountingDocuments/{}/paymentResponses",
            self.base,
            segment(id)
        );
        match self.api.send(&ApiRequest::post_json(url, response)).await {
            Ok(_) => Ok(PaymentSent::Now),
            Err(e) if e.status() == Some(409) => Ok(PaymentSent::Already),
            Err(e) => Err(e.into()),
        }
    }

    /// `POST {path}` with a JSON array of master-data records (upsert by `externalCode`,
    /// §3.7); the request id from `x-amzn-RequestId`, else the body's `requestId` (§3.11.1).
    /// HTTP 200 means only that the schema was valid: the outcome is read with
    /// [`BaswareClient::request_status`].
    pub async fn import(
        &self,
        path: &str,
        records: &[serde_json::Value],
    ) -> Result<String, BaswareError> {
        let url = format!("{}{path}", self.base);
        let resp = self.api.send(&ApiRequest::post_json(url, &records)).await?;
        let from_header = resp
            .headers
            .get("x-amzn-requestid")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let from_body = || {
            serde_json::from_slice::<serde_json::Value>(&resp.body)
                .ok()?
                .get("requestId")?
                .as_str()
                .map(str::to_owned)
        };
        from_header
            .or_else(from_body)
            .ok_or_else(|| BaswareError::Malformed {
                id: path.to_string(),
                message: "the import answer names no request id".into(),
            })
    }

    /// `GET /v1/requestStatus/{requestId}`; `None` when Basware has none (404).
    pub async fn request_status(
        &self,
        request_id: &str,
    ) -> Result<Option<wire::RequestStatus>, BaswareError> {
        let url = format!("{}/v1/requestStatus/{}", self.base, segment(request_id));
        let resp = match self.api.send(&ApiRequest::get(url)).await {
            Ok(r) => r,
            Err(e) if e.status() == Some(404) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let list: wire::RequestStatusList = resp.json()?;
        Ok(list
            .request_status
            .into_iter()
            .find(|r| r.request_id == request_id))
    }

    /// `POST /v1/requestStatus/acknowledge`; 405 (acknowledged before) is success.
    pub async fn acknowledge_requests(&self, ids: &[String]) -> Result<(), BaswareError> {
        let url = format!("{}/v1/requestStatus/acknowledge", self.base);
        let body = serde_json::json!({ "requestIds": ids });
        // Safe to repeat: a repeat answers 405.
        let req = ApiRequest {
            idempotent: true,
            ..ApiRequest::post_json(url, &body)
        };
        match self.api.send(&req).await {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(405) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// `GET /v1/subscriptions`; 404 is none.
    pub async fn subscriptions(&self) -> Result<Vec<wire::Subscription>, BaswareError> {
        let url = format!("{}/v1/subscriptions", self.base);
        match self.api.send(&ApiRequest::get(url)).await {
            Ok(r) => Ok(r.json()?),
            Err(e) if e.status() == Some(404) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// `POST /v1/subscriptions`: Basware checks the endpoint with a `ConnectionTest` first
    /// (§3.8), so the listener must be up.
    pub async fn subscribe(&self, subs: &[wire::NewSubscription]) -> Result<(), BaswareError> {
        let url = format!("{}/v1/subscriptions", self.base);
        self.api.send(&ApiRequest::post_json(url, &subs)).await?;
        Ok(())
    }

    /// Authenticates and reads the first page of the waiting list (`mlc check`).
    pub async fn check(&self) -> Result<String, BaswareError> {
        self.api.authenticate().await?;
        let page = self.waiting_page(None).await?;
        Ok(format!(
            "token ok; {} accounting document(s) waiting for transfer on the first page",
            page.documents.len()
        ))
    }
}
