//! The HTTP plumbing every system client shares: one reqwest client, a pluggable auth flavour
//! (client credentials, rotating refresh token, session cookie: see [`auth`]), pacing to the
//! published budget, and retries (one fresh credential and one replay when the server says the
//! credential expired).
//!
//! # Backing off
//!
//! A rate signal is about the client (one system instance, one app user), not about the request
//! that drew it, so it is obeyed by every clone of an [`ApiClient`]:
//!
//! - A **429**, a **503** from a client that treats 503 as throttling (Coupa), and any **503
//!   with `Retry-After`** pause the client's [`Pacer`]: no request leaves from any worker until
//!   the window ends. The window is the server's `Retry-After`, in full (never cut to a backoff
//!   cap: waking the server early only draws more 429s), else an exponential backoff with full
//!   jitter that grows with each throttle and starts afresh after a success.
//! - A wait up to [`HttpSettings::max_inline_wait`] is spent inside the call, which then retries
//!   (a non-idempotent request only after a 429: the server did not process it). A longer one is
//!   not: the call fails at once with the status and its `retry_after` (or, for a caller that
//!   finds the client paused, [`HttpError::Paused`]), the step asks the queue to bring the
//!   message back no earlier, and the worker is free meanwhile. Nothing is sent inside the
//!   window.
//! - When the window ends, the callers that waited leave one at a time, at the pacer's own rate
//!   (or ten a second without a budget), until a request succeeds: a rate limiter idle through
//!   the pause has its burst saved up, and spending it at once is what the server refused.
//! - The credential is taken when the request leaves, after the pause and the pacing, so a
//!   request that waited goes out with the token current then, not the one that expired while
//!   it queued.
//! - Other failures (5xx, timeouts) concern one request: it alone backs off (idempotent ones).

pub mod auth;
pub mod odata;
mod pacing;
mod retry;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

pub use auth::{
    AuthScheme, ClientAuth, ClientCredentials, Credential, RefreshTokenAuth, RefreshTokenSettings,
    SessionAuth, SessionLogin, TokenCache, TokenPersistence, TokenStore,
};
pub use pacing::{Pacer, Paused, RateBudget};
pub use retry::{RetryPolicy, retry_after};

/// Why a call failed, with enough context to act on (method, URL, status, the server's error).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// `body` is the server's, made one line and safe at construction
    /// ([`crate::text::remote_body`]: a JSON error body stays parseable); the message shows at
    /// most [`crate::text::REMOTE_TEXT_MAX`] characters of it.
    #[error(
        "{method} {url}: HTTP {status}: {}",
        crate::text::cut(body, crate::text::REMOTE_TEXT_MAX)
    )]
    Status {
        method: String,
        url: String,
        status: u16,
        body: String,
        /// The server's `Retry-After`, when it sent one: it travels with the error to the queue.
        retry_after: Option<Duration>,
    },
    /// Not sent: the server asked this client (any of its clones) to wait longer than a call
    /// waits inline. The wait travels to the queue like a `Retry-After`.
    #[error(
        "{method} {url}: not sent: the server asked this client to wait {}s more",
        retry_after.as_secs_f64().ceil()
    )]
    Paused {
        method: String,
        url: String,
        retry_after: Duration,
    },
    #[error("{method} {url}: {message}")]
    Transport {
        method: String,
        url: String,
        message: String,
        timeout: bool,
    },
    /// A token request or login was refused (wrong client secret, password, scope...).
    #[error(
        "authentication at {url} refused: HTTP {status}: {}",
        crate::text::cut(body, crate::text::REMOTE_TEXT_MAX)
    )]
    Auth {
        url: String,
        status: u16,
        body: String,
    },
    /// The stored refresh token was refused (`invalid_grant`, or 401): revoked, expired, or
    /// already spent. Retrying cannot help; the connection must be authorised again.
    #[error(
        "refresh token refused by {url}: HTTP {status}: {error}; the connection must be \
         authorised again"
    )]
    RefreshRefused {
        url: String,
        status: u16,
        /// The server's OAuth error code and description (never the token).
        error: String,
    },
    /// The secrets store holding a rotating credential failed (its messages never hold values).
    #[error("{0}")]
    Secrets(String),
    #[error("{url}: cannot read the response: {message}")]
    Decode { url: String, message: String },
}

impl HttpError {
    pub(crate) fn transport(method: &str, url: &str, e: &reqwest::Error) -> Self {
        // reqwest's Display includes the URL; ours is given separately, without query secrets.
        HttpError::Transport {
            method: method.to_string(),
            url: url.to_string(),
            message: e.without_url_ref().to_string(),
            timeout: e.is_timeout(),
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The request may have taken effect on the server although we saw a failure: a timeout, a
    /// broken connection, or a 5xx. A create that fails so must be checked for, not repeated.
    pub fn may_have_succeeded(&self) -> bool {
        match self {
            HttpError::Transport { .. } => true,
            HttpError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// The server may still be working on the request after we stopped waiting: a timeout or a
    /// broken connection, or a gateway that gave up on its backend (502, 504). Unlike a plain
    /// 5xx answer from the server itself, looking right away cannot settle whether it happened.
    pub fn may_still_commit(&self) -> bool {
        match self {
            HttpError::Transport { .. } => true,
            HttpError::Status { status, .. } => matches!(*status, 502 | 504),
            _ => false,
        }
    }

    /// Every call of this client will fail the same way until a person re-authorises the
    /// connection: the whole integration should back off, not each message on its own.
    pub fn needs_reauthorization(&self) -> bool {
        matches!(self, HttpError::RefreshRefused { .. })
    }

    /// A client error that retrying will not fix (bad data, missing permission).
    pub fn is_rejection(&self) -> bool {
        matches!(self, HttpError::Status { status, .. } if (400..500).contains(status) && *status != 408 && *status != 429)
    }
}

impl From<HttpError> for crate::ports::SystemError {
    /// Every system's HTTP failures in the steps' terms. A system whose error bodies say more
    /// (BC's `error.code`, B1's session codes) maps those first and falls back to this.
    fn from(e: HttpError) -> Self {
        use crate::ports::SystemError as S;
        let message = e.to_string();
        match e {
            HttpError::Status {
                status,
                retry_after,
                ..
            } => match status {
                // A 401 here came after the client's one refresh: most likely the token was
                // replaced or expired in between (a race), so the call is retried. Credentials
                // that are really refused fail at the token endpoint (`Auth`, below). A 403 is
                // a permission a person must grant.
                401 => S::Transient {
                    message,
                    retry_after,
                },
                403 => S::Unauthorized(message),
                404 | 410 => S::NotFound(message),
                409 | 412 => S::Conflict(message),
                408 | 429 => S::Transient {
                    message,
                    retry_after,
                },
                500..=599 => S::MayHaveSucceeded {
                    message,
                    may_still_commit: matches!(status, 502 | 504),
                    retry_after,
                },
                _ => S::Rejected {
                    status: Some(status),
                    message,
                },
            },
            HttpError::Transport { .. } => S::MayHaveSucceeded {
                message,
                may_still_commit: true,
                retry_after: None,
            },
            // Never sent, so safe to repeat; not before the server's window ends.
            HttpError::Paused { retry_after, .. } => S::Transient {
                message,
                retry_after: Some(retry_after),
            },
            // The token endpoint refused our client credentials: nothing can succeed until a
            // person fixes them. A token endpoint that is down (5xx) is only transient.
            HttpError::Auth { status, .. } if status < 500 => S::Unauthorized(message),
            HttpError::Auth { .. } => S::Transient {
                message,
                retry_after: None,
            },
            // A refused refresh token needs a person to authorise the connection again.
            HttpError::RefreshRefused { .. } => S::Unauthorized(message),
            // The store of a rotating credential failed: try again, the token is not spent.
            HttpError::Secrets(_) => S::Transient {
                message,
                retry_after: None,
            },
            HttpError::Decode { .. } => S::Malformed(message),
        }
    }
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut e = String::new();
        let mut src: Option<&dyn std::error::Error> = Some(self);
        // Walk the chain for the root cause ("connection refused", "operation timed out").
        while let Some(s) = src {
            e = s.to_string();
            src = s.source();
        }
        if self.is_timeout() {
            format!("timed out ({e})")
        } else {
            e
        }
    }
}

/// A request, kept as data so it can be sent again on retry.
#[derive(Clone, Debug)]
pub struct ApiRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub json: Option<Vec<u8>>,
    /// Safe to repeat after an ambiguous failure (a GET, a PATCH with If-Match). Non-idempotent
    /// requests are retried only on 429, which means the server did not process them.
    pub idempotent: bool,
}

impl ApiRequest {
    pub fn get(url: impl Into<String>) -> Self {
        Self {
            method: Method::GET,
            url: url.into(),
            headers: Vec::new(),
            json: None,
            idempotent: true,
        }
    }

    pub fn post_json<T: serde::Serialize>(url: impl Into<String>, body: &T) -> Self {
        Self {
            method: Method::POST,
            url: url.into(),
            headers: Vec::new(),
            json: Some(serde_json::to_vec(body).expect("serialisable body")),
            idempotent: false,
        }
    }

    /// A PATCH carrying `If-Match` (BC requires it: the entity's `@odata.etag`, or `*`). Safe to
    /// repeat: if the first one landed, the repeat fails on the changed etag instead of applying
    /// twice.
    pub fn patch_json<T: serde::Serialize>(url: impl Into<String>, body: &T, etag: &str) -> Self {
        Self {
            method: Method::PATCH,
            url: url.into(),
            headers: Vec::new(),
            json: Some(serde_json::to_vec(body).expect("serialisable body")),
            idempotent: true,
        }
        .header(reqwest::header::IF_MATCH, etag)
    }

    /// A PUT with a JSON body. Not idempotent for our retry policy (retried only on 429, like
    /// POST): a Coupa invoice PUT carrying `payments[]` appends a payment each time it lands.
    pub fn put_json<T: serde::Serialize>(url: impl Into<String>, body: &T) -> Self {
        Self {
            method: Method::PUT,
            url: url.into(),
            headers: Vec::new(),
            json: Some(serde_json::to_vec(body).expect("serialisable body")),
            idempotent: false,
        }
    }

    pub fn post_empty(url: impl Into<String>) -> Self {
        Self {
            method: Method::POST,
            url: url.into(),
            headers: Vec::new(),
            json: None,
            idempotent: false,
        }
    }

    /// A DELETE carrying `If-Match` (BC requires it). Safe to repeat: a repeat finds the entity
    /// gone (404), which callers treat as done.
    pub fn delete(url: impl Into<String>, etag: &str) -> Self {
        Self {
            method: Method::DELETE,
            url: url.into(),
            headers: Vec::new(),
            json: None,
            idempotent: true,
        }
        .header(reqwest::header::IF_MATCH, etag)
    }

    pub fn header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }
}

#[derive(Debug)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
    pub url: String,
}

impl ApiResponse {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Decode {
            url: self.url.clone(),
            message: e.to_string(),
        })
    }
}

/// Counters a benchmark or `mlc check` reads.
#[derive(Debug, Default)]
pub struct HttpStats {
    /// Round trips sent (a `$batch` is one).
    pub requests: std::sync::atomic::AtomicU64,
    /// Requests as the server counts them against its rate budget (a `$batch` counts each of
    /// its operations).
    pub budget: std::sync::atomic::AtomicU64,
    pub throttled: std::sync::atomic::AtomicU64,
    pub retries: std::sync::atomic::AtomicU64,
    pub token_refreshes: std::sync::atomic::AtomicU64,
}

/// Settings of one system's HTTP client.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub budget: Option<RateBudget>,
    /// Also treat 503 as "not processed, back off" (Coupa's throttle may answer 503).
    pub retry_503: bool,
    /// The longest server-announced wait spent inside a call; a longer one fails the call at
    /// once with its `retry_after`, so the queue waits instead of a worker.
    pub max_inline_wait: Duration,
    /// Accept a certificate no trusted authority signed (a B1 Service Layer on port 50000 with
    /// its self-signed certificate, sap-b1.md §4.7.4). Off unless a system's configuration
    /// opts in explicitly.
    pub accept_invalid_certs: bool,
    /// Whether redirects are followed (reqwest's default policy). When not, a 3xx answer is
    /// returned to the caller like a success, for it to follow: Basware's list answers 302 to
    /// a URL that must be fetched WITHOUT `Authorization` (`basware.md` §3.3), and reqwest
    /// keeps the header on a same-host redirect.
    pub follow_redirects: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            budget: None,
            retry_503: false,
            max_inline_wait: Duration::from_secs(30),
            accept_invalid_certs: false,
            follow_redirects: true,
        }
    }
}

/// How a failed request is tried again.
#[derive(Debug)]
enum Retry {
    /// The client is paused for this long: the next `acquire` waits it out with every caller.
    Paused(Duration),
    /// This request alone backs off for this long.
    Sleep(Duration),
}

impl Retry {
    fn wait(&self) -> Duration {
        match self {
            Retry::Paused(w) | Retry::Sleep(w) => *w,
        }
    }
}

/// One system's HTTP client: an auth flavour, fixed headers, pacing and retries.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    auth: Arc<dyn AuthScheme>,
    fixed_headers: Vec<(HeaderName, HeaderValue)>,
    pacer: Pacer,
    settings: HttpSettings,
    pub stats: Arc<HttpStats>,
}

impl ApiClient {
    /// Whether `other` is a clone of this client: the same credentials cache and pacer.
    pub fn shares_with(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.auth, &other.auth) && self.pacer.same_as(&other.pacer)
    }

    /// A client authenticating with OAuth client credentials.
    pub fn new(
        tokens: TokenCache,
        fixed_headers: Vec<(HeaderName, HeaderValue)>,
        settings: HttpSettings,
    ) -> Result<Self, HttpError> {
        Self::with_auth(Arc::new(tokens), fixed_headers, settings)
    }

    /// A client with any auth flavour ([`TokenCache`], [`RefreshTokenAuth`], [`SessionAuth`]).
    /// A request URL that starts with `/` is resolved against the base URL the credential
    /// names when the request leaves (Concur's geolocation, the B1 service root).
    pub fn with_auth(
        auth: Arc<dyn AuthScheme>,
        fixed_headers: Vec<(HeaderName, HeaderValue)>,
        settings: HttpSettings,
    ) -> Result<Self, HttpError> {
        let redirects = if settings.follow_redirects {
            reqwest::redirect::Policy::default()
        } else {
            reqwest::redirect::Policy::none()
        };
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(redirects)
            .connect_timeout(Duration::from_secs(10))
            .danger_accept_invalid_certs(settings.accept_invalid_certs)
            .build()
            .map_err(|e| HttpError::Transport {
                method: String::new(),
                url: String::new(),
                message: format!("cannot build the HTTP client: {e}"),
                timeout: false,
            })?;
        let pacer = settings.budget.as_ref().map(Pacer::new).unwrap_or_default();
        Ok(Self {
            http,
            auth,
            fixed_headers,
            pacer,
            settings,
            stats: Arc::default(),
        })
    }

    /// The end of the latest client-wide pause a throttle answer started (in the past once it
    /// is over); None if the server never asked this client to wait.
    pub fn paused_until(&self) -> Option<std::time::Instant> {
        self.pacer.paused_until()
    }

    /// Fetches a token or logs in now (for `mlc check`).
    pub async fn authenticate(&self) -> Result<(), HttpError> {
        self.auth.credential(&self.http).await.map(|_| ())
    }

    /// Ends the auth session, if the flavour has one (B1 `Logout`); call on shutdown.
    pub async fn logout(&self) -> Result<(), HttpError> {
        self.auth.logout(&self.http).await
    }

    /// Sends `req`, retrying what is safe to retry; a non-2xx final answer is an error.
    pub async fn send(&self, req: &ApiRequest) -> Result<ApiResponse, HttpError> {
        self.send_costing(req, 1).await
    }

    /// As [`ApiClient::send`] for a request the server counts as `cost` requests against the
    /// rate budget (a `$batch` of `cost` operations): paced accordingly, and counted once in
    /// [`HttpStats::requests`] (a round trip) and `cost` times in [`HttpStats::budget`].
    pub async fn send_costing(
        &self,
        req: &ApiRequest,
        cost: u32,
    ) -> Result<ApiResponse, HttpError> {
        use std::sync::atomic::Ordering::Relaxed;
        let max_inline_wait = self.settings.max_inline_wait;
        // Credentials the server refused during this call. Each refusal of a credential not
        // refused before gets one fresh credential and one replay (a token that expired, was
        // revoked early or replaced by another worker meanwhile; a session that timed out), up
        // to the scheme's number; the same credential refused twice is the answer.
        let mut refused: Vec<Credential> = Vec::new();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let (credential, outcome) = {
                let _permit = self
                    .pacer
                    .acquire_n(max_inline_wait, cost)
                    .await
                    .map_err(|p| HttpError::Paused {
                        method: req.method.to_string(),
                        url: req.url.clone(),
                        retry_after: p.retry_after,
                    })?;
                // Taken when the request leaves, after any pause and the pacing: a wait
                // cannot make the credential stale, and another worker's refresh is seen.
                let credential = self.auth.credential(&self.http).await?;
                self.stats.requests.fetch_add(1, Relaxed);
                self.stats.budget.fetch_add(u64::from(cost.max(1)), Relaxed);
                let outcome = self.send_once(req, &credential).await;
                (credential, outcome)
            };
            let retry = match &outcome {
                Ok(resp)
                    if resp.status.is_success()
                        || (resp.status.is_redirection() && !self.settings.follow_redirects) =>
                {
                    self.pacer.succeeded();
                    return outcome;
                }
                Ok(resp)
                    if refused.len() < self.auth.reauthorisations()
                        && !refused.contains(&credential)
                        && self.auth.expired(resp.status, &resp.body) =>
                {
                    // The server did not process the call, so a replay is safe even for a POST.
                    refused.push(credential.clone());
                    self.stats.token_refreshes.fetch_add(1, Relaxed);
                    self.auth.forget(&credential).await;
                    attempt -= 1;
                    continue;
                }
                Ok(resp) => self.after_failure(req, resp, attempt),
                Err(_) if req.idempotent => {
                    Some(Retry::Sleep(self.settings.retry.delay(attempt - 1, None)))
                }
                Err(_) => None,
            };
            // A client-wide pause outlasting this call: the queue must not come back sooner.
            let pause = match &retry {
                Some(Retry::Paused(w)) => Some(*w),
                _ => None,
            };
            match retry {
                Some(retry)
                    if attempt < self.settings.retry.max_attempts
                        && retry.wait() <= max_inline_wait =>
                {
                    self.stats.retries.fetch_add(1, Relaxed);
                    tracing::debug!(method = %req.method, url = %req.url, ?retry, attempt, "retrying");
                    if let Retry::Sleep(wait) = retry {
                        tokio::time::sleep(wait).await;
                    }
                    // A paused client: the next `acquire` waits the window out with everyone.
                }
                _ => {
                    let resp = outcome?;
                    return Err(HttpError::Status {
                        method: req.method.to_string(),
                        url: resp.url.clone(),
                        status: resp.status.as_u16(),
                        // The server's own value; else the client's throttle backoff, so the
                        // queue waits it out too.
                        retry_after: retry_after(&resp.headers).or(pause),
                        body: auth::remote_body(&String::from_utf8_lossy(&resp.body)),
                    });
                }
            }
        }
    }

    /// A status and `Retry-After` the server gave inside a response (an operation of a
    /// `$batch`): throttling (429, or 503 when so configured) pauses the whole client as it
    /// would for a request of its own, and a 503 naming its wait holds every request until
    /// then. Any other status changes nothing.
    pub fn server_answered(&self, status: u16, retry_after: Option<Duration>) {
        use std::sync::atomic::Ordering::Relaxed;
        let unavailable = status == 503;
        if status == 429 || (self.settings.retry_503 && unavailable) {
            self.pacer.throttled(retry_after, &self.settings.retry);
            self.stats.throttled.fetch_add(1, Relaxed);
        } else if let (true, Some(wait)) = (unavailable, retry_after) {
            self.pacer.pause_for(wait);
        }
    }

    /// After a non-2xx answer (not an expired credential): pauses the whole client when the
    /// server asked for it, and says whether and how this request is retried.
    fn after_failure(&self, req: &ApiRequest, resp: &ApiResponse, attempt: u32) -> Option<Retry> {
        use std::sync::atomic::Ordering::Relaxed;
        let server_wait = retry_after(&resp.headers);
        let unavailable = resp.status == StatusCode::SERVICE_UNAVAILABLE;
        let throttled = resp.status == StatusCode::TOO_MANY_REQUESTS
            || (self.settings.retry_503 && unavailable);
        if throttled {
            // Paused before the count moves: whoever sees the count sees the pause.
            let wait = self.pacer.throttled(server_wait, &self.settings.retry);
            self.stats.throttled.fetch_add(1, Relaxed);
            tracing::info!(
                method = %req.method, url = %resp.url, status = resp.status.as_u16(), ?wait,
                "throttled: the client pauses"
            );
            // Not processed by the server, so even a POST may be sent again after the window.
            return Some(Retry::Paused(wait));
        }
        let transient = resp.status.is_server_error() || resp.status == StatusCode::REQUEST_TIMEOUT;
        if let (true, Some(wait)) = (unavailable, server_wait) {
            // The server announced when it is back: nobody asks before then. A POST may have
            // been processed, so only idempotent requests are sent again.
            self.pacer.pause_for(wait);
            return req.idempotent.then_some(Retry::Paused(wait));
        }
        (req.idempotent && transient)
            .then(|| Retry::Sleep(self.settings.retry.delay(attempt - 1, Some(&resp.headers))))
    }

    async fn send_once(
        &self,
        req: &ApiRequest,
        credential: &Credential,
    ) -> Result<ApiResponse, HttpError> {
        let url = match (req.url.starts_with('/'), credential.base_url()) {
            (false, _) => req.url.clone(),
            (true, Some(base)) => format!("{}{}", base.trim_end_matches('/'), req.url),
            (true, None) => {
                return Err(HttpError::Decode {
                    url: req.url.clone(),
                    message: "a relative URL, and the auth flavour names no base URL".into(),
                });
            }
        };
        let mut builder = self.http.request(req.method.clone(), &url);
        for (k, v) in self.fixed_headers.iter().chain(req.headers.iter()) {
            builder = builder.header(k, v);
        }
        let (name, value) = credential.header()?;
        builder = builder.header(name, value);
        if let Some(body) = &req.json {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let method = req.method.as_str();
        let resp = builder
            .send()
            .await
            .map_err(|e| HttpError::transport(method, &url, &e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| HttpError::transport(method, &url, &e))?;
        Ok(ApiResponse {
            status,
            headers,
            body,
            url,
        })
    }
}
