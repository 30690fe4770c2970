//! The F&O OData client (d365-fo.md B1–B3, B7–B9): Entra client credentials with the scope
//! `{environment URL}/.default`, one refresh on 401 (the shared `ApiClient`), pacing to a budget,
//! `Retry-After` honoured, paging by `@odata.nextLink`, and every read and write scoped to one
//! `dataAreaId` — reads always with `cross-company=true` and a `dataAreaId` filter, so a legal
//! entity that is not the integration user's default company is never silently empty (gotcha
//! 13, B9.4).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{ACCEPT, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::wire::{ErrorBody, LegalEntity};
use crate::ports::{SecretString, SystemError};
use crate::systems::http::odata::{self, string_literal};
use crate::systems::http::{
    ApiClient, ApiRequest, ClientCredentials, HttpError, HttpSettings, HttpStats, RateBudget,
    TokenCache, TokenPersistence,
};

#[derive(Clone, Debug)]
pub struct FoSettings {
    /// The environment's URL, `https://{env}.operations.dynamics.com`: the token's audience.
    pub environment_url: String,
    /// Where requests go, when not the environment URL (a simulator, a proxy). The OData root is
    /// `{api_url}/data`.
    pub api_url: Option<String>,
    /// Default `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`.
    pub token_url: Option<String>,
    pub tenant: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub budget: RateBudget,
    pub http: HttpSettings,
}

impl FoSettings {
    /// B8: the user-based limits (6,000 requests per 5 minutes, 52 concurrent), still the
    /// published numbers where they apply; resource-based 429s come on top, with `Retry-After`.
    pub fn default_budget() -> RateBudget {
        RateBudget {
            requests: 6000,
            window_secs: 300,
            concurrent: Some(52),
        }
    }

    /// B1: `https://{env}.operations.dynamics.com/.default` — the environment's root, not
    /// `/data/.default`.
    pub fn scope(&self) -> String {
        format!("{}/.default", self.environment_url.trim_end_matches('/'))
    }
}

/// Why an F&O call failed, in F&O's own terms first.
#[derive(Debug, thiserror::Error)]
pub enum FoError {
    /// F&O refused a write (HTTP 500 with `AxODataWriteException`, B3): its Infolog words.
    /// `duplicate`: "The record already exists.." (the key is taken).
    #[error("F&O refused the write: {message}")]
    WriteRefused { message: String, duplicate: bool },
    /// HTTP 400: the request is wrong (an unknown or mis-cased property, a bad key or filter).
    #[error("F&O refused the request: {message}")]
    BadRequest { message: String },
    /// What the entity, key or input could not be used for, found before sending.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Http(HttpError),
    /// The blob store behind a Data Management URL failed (B6): the message names the blob
    /// path, never its SAS. `bool`: worth trying again (a 5xx or a broken connection).
    #[error("blob storage: {0}")]
    Upload(String, bool),
}

/// The text of `error.innererror.message` (else `error.message`), on one line.
fn fo_words(body: &str) -> Option<(String, Option<String>)> {
    let parsed: ErrorBody = serde_json::from_str(body).ok()?;
    let inner = parsed.error.innererror;
    let kind = inner.as_ref().and_then(|i| i.kind.clone());
    let text = inner
        .and_then(|i| i.message)
        .filter(|m| !m.trim().is_empty())
        .or(parsed.error.message)?;
    Some((crate::text::one_line(&text, 1000), kind))
}

impl From<HttpError> for FoError {
    fn from(e: HttpError) -> Self {
        if let HttpError::Status { status, body, .. } = &e
            && let Some((message, kind)) = fo_words(body)
        {
            // B3: a refused write is a 500 naming AxODataWriteException; a 500 without it is a
            // server failure whose outcome is unknown (it may have committed).
            if *status == 500
                && kind
                    .as_deref()
                    .is_some_and(|k| k.contains("AxODataWriteException"))
            {
                let duplicate = message.contains("already exists");
                return FoError::WriteRefused { message, duplicate };
            }
            if *status == 400 {
                return FoError::BadRequest { message };
            }
        }
        FoError::Http(e)
    }
}

impl From<FoError> for SystemError {
    fn from(e: FoError) -> Self {
        match e {
            // The key is taken: someone (an earlier attempt) created it; look again, never
            // create a second one.
            FoError::WriteRefused {
                message,
                duplicate: true,
            } => SystemError::Conflict(message),
            FoError::WriteRefused { message, .. } => SystemError::Rejected {
                status: Some(500),
                message,
            },
            FoError::BadRequest { message } => SystemError::Rejected {
                status: Some(400),
                message,
            },
            FoError::Invalid(message) => SystemError::Rejected {
                status: None,
                message,
            },
            FoError::Http(h) => SystemError::from(h),
            // A package is only uploaded, never run, by a PUT: repeating it is harmless.
            FoError::Upload(message, true) => SystemError::Transient {
                message,
                retry_after: None,
            },
            FoError::Upload(message, false) => SystemError::Rejected {
                status: None,
                message,
            },
        }
    }
}

/// A key value of a by-key URL.
#[derive(Clone, Debug)]
pub enum Key<'a> {
    Str(&'a str),
    Int(i64),
}

/// Everything but RFC 3986 unreserved characters and the OData quote is encoded in a key.
const KEY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'\'');

/// One F&O environment, as one app user: its clones share the token cache and request budget.
#[derive(Clone)]
pub struct FoClient {
    pub(super) api: ApiClient,
    /// `{api_url}/data`
    pub(super) root: String,
    /// The environment's host, for the ledger's target identity.
    pub(super) host: String,
    /// Blob storage behind the Data Management URLs (B6): no bearer, the SAS is in the URL.
    pub(super) blob: reqwest::Client,
}

impl FoClient {
    pub fn new(s: FoSettings) -> Result<Self, HttpError> {
        Self::with_token_cache(s, None)
    }

    pub fn with_token_cache(
        s: FoSettings,
        persistence: Option<TokenPersistence>,
    ) -> Result<Self, HttpError> {
        let creds = ClientCredentials {
            token_url: s.token_url.clone().unwrap_or_else(|| {
                format!(
                    "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
                    s.tenant
                )
            }),
            client_id: s.client_id.clone(),
            client_secret: s.client_secret.clone(),
            scope: s.scope(),
        };
        let mut http = s.http.clone();
        http.budget = Some(s.budget.clone());
        let api = ApiClient::new(
            TokenCache::persisted(creds, persistence),
            vec![(ACCEPT, HeaderValue::from_static("application/json"))],
            http,
        )?;
        let api_url = s
            .api_url
            .clone()
            .unwrap_or_else(|| s.environment_url.clone());
        let host = s
            .environment_url
            .trim_end_matches('/')
            .rsplit("://")
            .next()
            .unwrap_or_default()
            .to_lowercase();
        let blob = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(600))
            .build()
            .unwrap_or_default();
        Ok(Self {
            api,
            root: format!("{}/data", api_url.trim_end_matches('/')),
            host,
            blob,
        })
    }

    pub fn stats(&self) -> &HttpStats {
        &self.api.stats
    }

    /// Which legal entity of which environment a writer writes into, for the ledger:
    /// `dynamics_fo:{host}/{dataAreaId}`.
    pub fn target_identity(&self, legal_entity: &str) -> String {
        format!("dynamics_fo:{}/{}", self.host, legal_entity.to_lowercase())
    }

    /// `{root}/{set}(k='v',…)?cross-company=true`: by-key URLs always carry the flag (B9.4),
    /// so a record of a non-default company is found.
    pub fn key_url(&self, set: &str, key: &[(&str, Key<'_>)]) -> String {
        let parts: Vec<String> = key
            .iter()
            .map(|(name, v)| match v {
                Key::Str(s) => format!(
                    "{name}={}",
                    utf8_percent_encode(&string_literal(s), KEY_VALUE)
                ),
                Key::Int(n) => format!("{name}={n}"),
            })
            .collect();
        format!(
            "{}/{set}({})?cross-company=true",
            self.root,
            parts.join(",")
        )
    }

    /// Every row of `set` in legal entity `company` matching `filter` (OData, may be empty),
    /// following `@odata.nextLink` to the end.
    pub async fn list<T: DeserializeOwned>(
        &self,
        set: &str,
        company: &str,
        filter: &str,
    ) -> Result<Vec<T>, FoError> {
        let scoped = if filter.is_empty() {
            format!("dataAreaId eq {}", string_literal(company))
        } else {
            format!("dataAreaId eq {} and ({filter})", string_literal(company))
        };
        let url = format!(
            "{}&cross-company=true",
            odata::with_filter(&format!("{}/{set}", self.root), &scoped)
        );
        // No `Prefer: odata.maxpagesize`: F&O's support for it is [UNCONFIRMED] (B2); its own
        // pages (at most 10,000) are followed by their next link.
        Ok(odata::get_all(&self.api, &url, None).await?)
    }

    /// Rows of a set that is not company-specific (legal entities, main accounts).
    pub async fn list_global<T: DeserializeOwned>(
        &self,
        set: &str,
        filter: &str,
    ) -> Result<Vec<T>, FoError> {
        let base = format!("{}/{set}", self.root);
        let url = if filter.is_empty() {
            base
        } else {
            odata::with_filter(&base, filter)
        };
        Ok(odata::get_all(&self.api, &url, None).await?)
    }

    /// One row by its full key; `None` when F&O does not have it (404).
    pub async fn get<T: DeserializeOwned>(
        &self,
        set: &str,
        key: &[(&str, Key<'_>)],
    ) -> Result<Option<T>, FoError> {
        match self
            .api
            .send(&ApiRequest::get(self.key_url(set, key)))
            .await
        {
            Ok(resp) => Ok(Some(resp.json()?)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// POST a new row (F&O answers 201 with the row). `body` must name its `dataAreaId`: a
    /// row without one would land in the user's default company (B7).
    pub async fn create<B: Serialize, T: DeserializeOwned>(
        &self,
        set: &str,
        body: &B,
    ) -> Result<T, FoError> {
        let value = serde_json::to_value(body)
            .map_err(|e| FoError::Invalid(format!("cannot write the {set} row: {e}")))?;
        if value
            .get("dataAreaId")
            .and_then(|v| v.as_str())
            .is_none_or(str::is_empty)
        {
            return Err(FoError::Invalid(format!(
                "a {set} row without dataAreaId would land in the default company; refused"
            )));
        }
        let url = format!("{}/{set}", self.root);
        Ok(self
            .api
            .send(&ApiRequest::post_json(url, &value))
            .await?
            .json()?)
    }

    /// PATCH a row (F&O answers 204). `etag`: the row's `@odata.etag` when held (a stale one
    /// fails with 412, a conflict), else `*` (B9.5).
    pub async fn update<B: Serialize>(
        &self,
        set: &str,
        key: &[(&str, Key<'_>)],
        changes: &B,
        etag: Option<&str>,
    ) -> Result<(), FoError> {
        let url = self.key_url(set, key);
        self.api
            .send(&ApiRequest::patch_json(url, changes, etag.unwrap_or("*")))
            .await?;
        Ok(())
    }

    /// Authenticates and reads the legal entities (`mlc check`).
    pub async fn check(&self) -> Result<String, FoError> {
        self.api.authenticate().await?;
        let entities: Vec<LegalEntity> = self.list_global("LegalEntities", "").await?;
        Ok(format!(
            "token ok; legal entities: {}",
            entities
                .iter()
                .map(|e| e.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    /// The legal entities this app user can see.
    pub async fn legal_entities(&self) -> Result<Vec<LegalEntity>, FoError> {
        self.list_global("LegalEntities", "").await
    }
}
