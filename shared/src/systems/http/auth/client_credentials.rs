//! OAuth 2.0 client credentials: a bearer token per (token URL, client id).
//!
//! The token lives in process memory and, when the cache is given a [`TokenPersistence`] (the
//! embedded runtime: the encrypted secrets file), also in one secret per system instance, so a
//! cron `mlc run --once` reuses the token an earlier run fetched instead of asking for a new one
//! each time. The stored entry (`StoredToken`, JSON) names the token URL, client id and scope it
//! was issued for (another system, a changed client id or scope never reuses it) and its
//! absolute expiry in wall-clock time (an `Instant` does not survive a process). It is read at
//! first use; a token past its refresh point is not used; a token the API refuses (401) is
//! forgotten in memory and in the store, so the next process does not try it again. The store
//! is a cache: failing to read or write it never fails a request (a warning, never the token).
//!
//! Lambda keeps tokens warm in its execution environment and passes no store: nothing is
//! written to Secrets Manager.

use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{AuthScheme, BoxFuture, Credential, TokenStore, lenient_u64, remote_body, use_for};
use crate::ports::{PutOutcome, SecretError, SecretString};
use crate::systems::http::HttpError;

/// OAuth 2.0 client-credentials settings (Coupa `{instance}/oauth2/token`, Entra ID
/// `login.microsoftonline.com/{tenant}/oauth2/v2.0/token`): the same grant, only the URL and
/// scope differ.
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Space-separated, as RFC 6749 §3.3 wants.
    pub scope: String,
}

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body (Coupa, Entra ID).
    #[default]
    Body,
    /// `Authorization: Basic base64(client_id:client_secret)`, the form carrying only the grant
    /// and the scope (Basware, `basware.md` §3.2).
    Basic,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    expires_in: Option<u64>,
}

struct CachedToken {
    value: SecretString,
    refresh_at: Instant,
    /// Wall-clock twins of `refresh_at` and of the server's expiry, for the store.
    refresh_at_ms: i64,
    expires_at_ms: i64,
}

/// Where a [`TokenCache`] keeps its token between processes: a store (the secrets port) and
/// the name of the secret. `Debug` shows the name only.
#[derive(Clone)]
pub struct TokenPersistence {
    store: Arc<dyn TokenStore>,
    secret_name: String,
}

impl TokenPersistence {
    pub fn new(store: Arc<dyn TokenStore>, secret_name: impl Into<String>) -> Self {
        Self {
            store,
            secret_name: secret_name.into(),
        }
    }

    /// The secret holding the token of system instance `system` (`[systems.<system>]`):
    /// `token-cache/<system>`.
    pub fn secret_name_for(system: &str) -> String {
        format!("token-cache/{system}")
    }

    pub fn secret_name(&self) -> &str {
        &self.secret_name
    }
}

impl std::fmt::Debug for TokenPersistence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPersistence")
            .field("secret_name", &self.secret_name)
            .finish_non_exhaustive()
    }
}

/// The stored entry (JSON in the secret). No `Debug`: it holds the token. After a 401 the
/// entry stays with no `access_token` (the port has no delete).
#[derive(Serialize, Deserialize)]
struct StoredToken {
    token_url: String,
    client_id: String,
    scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_token: Option<String>,
    /// Unix milliseconds: when the token expires, as the server said.
    #[serde(default)]
    expires_at_ms: i64,
    /// Unix milliseconds until which the token is used (shortly before it expires).
    #[serde(default)]
    refresh_at_ms: i64,
}

impl StoredToken {
    fn to_secret(&self) -> SecretString {
        SecretString::new(serde_json::to_string(self).expect("serialisable token entry"))
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A token cache for one (token URL, client id): a token is reused until shortly before it
/// expires, and dropped when the API answers 401 so the next call fetches a fresh one. With a
/// [`TokenPersistence`] the token is shared with later processes (see the module doc).
pub struct TokenCache {
    creds: ClientCredentials,
    cached: Mutex<Option<CachedToken>>,
    persistence: Option<TokenPersistence>,
    /// The last token the API refused: a stored copy of it is not used again.
    refused: StdMutex<Option<SecretString>>,
    /// Whether this process has looked in the store yet. Only its first token comes from
    /// there (a cron run reusing the last run's token); later ones are fetched, because a
    /// token another process stored meanwhile may already be one the server refuses (tokens
    /// revoked at once, a token ticker in the fault suite), which would use up the one
    /// refresh a refused call gets.
    consulted_store: std::sync::atomic::AtomicBool,
    client_auth: ClientAuth,
}

impl TokenCache {
    pub fn new(creds: ClientCredentials) -> Self {
        Self {
            creds,
            cached: Mutex::new(None),
            persistence: None,
            refused: StdMutex::new(None),
            consulted_store: std::sync::atomic::AtomicBool::new(false),
            client_auth: ClientAuth::Body,
        }
    }

    /// The same cache, authenticating at the token endpoint as `auth` says.
    pub fn with_client_auth(mut self, auth: ClientAuth) -> Self {
        self.client_auth = auth;
        self
    }

    /// A cache that also keeps its token in `persistence` (read at first use, written after
    /// each token request, cleared after a 401), or only in memory when `None`.
    pub fn persisted(creds: ClientCredentials, persistence: Option<TokenPersistence>) -> Self {
        Self {
            persistence,
            ..Self::new(creds)
        }
    }

    pub fn client_id(&self) -> &str {
        &self.creds.client_id
    }

    /// A valid token: the one in memory, else (the first time only) a usable one in the store,
    /// else a fresh one (stored for later processes). The lock is held meanwhile so concurrent callers share
    /// one token request.
    pub async fn token(&self, http: &reqwest::Client) -> Result<SecretString, HttpError> {
        let mut cached = self.cached.lock().await;
        if let Some(t) = cached.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok(t.value.clone());
        }
        if let Some(stored) = self.load().await {
            let value = stored.value.clone();
            *cached = Some(stored);
            return Ok(value);
        }
        let fresh = self.fetch(http).await?;
        self.save(&fresh).await;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// Forget the cached token (after a 401), unless it was already replaced; the stored copy
    /// too, so the next process does not try it again.
    pub async fn invalidate(&self, rejected: &SecretString) {
        let mut cached = self.cached.lock().await;
        *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(rejected.clone());
        if cached.as_ref().is_some_and(|t| &t.value == rejected) {
            *cached = None;
        }
        self.forget_stored(rejected).await;
    }

    fn is_refused(&self, token: &SecretString) -> bool {
        self.refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            == Some(token)
    }

    /// Whether a stored entry was issued for these credentials.
    fn is_ours(&self, entry: &StoredToken) -> bool {
        entry.token_url == self.creds.token_url
            && entry.client_id == self.creds.client_id
            && entry.scope == self.creds.scope
    }

    /// The stored entry, if there is one for these credentials; `None` (and a warning) if the
    /// store cannot be read.
    async fn read_stored(&self, p: &TokenPersistence) -> Option<StoredToken> {
        let name = p.secret_name.as_str();
        match p.store.read(name).await {
            Ok((raw, _)) => {
                // A parse error is not passed on: it could quote the value.
                let entry: StoredToken = serde_json::from_str(raw.expose()).ok()?;
                self.is_ours(&entry).then_some(entry)
            }
            Err(SecretError::NotFound(_)) => None,
            Err(e) => {
                tracing::warn!(
                    secret = name,
                    error = %e,
                    "cannot read the cached access token; requesting a new one"
                );
                None
            }
        }
    }

    /// A usable token from the store: issued for these credentials, before its refresh point,
    /// and not the one the API last refused.
    async fn load(&self) -> Option<CachedToken> {
        let p = self.persistence.as_ref()?;
        if self
            .consulted_store
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            return None;
        }
        let entry = self.read_stored(p).await?;
        let value = SecretString::new(entry.access_token?);
        let left = entry.refresh_at_ms.min(entry.expires_at_ms) - now_ms();
        if left <= 0 || self.is_refused(&value) {
            return None;
        }
        Some(CachedToken {
            value,
            refresh_at: Instant::now().checked_add(Duration::from_millis(left as u64))?,
            refresh_at_ms: entry.refresh_at_ms,
            expires_at_ms: entry.expires_at_ms,
        })
    }

    /// Stores `token` for later processes. Best effort: a failure is a warning, never the
    /// caller's error. Two processes refreshing at once both write; the last writer wins,
    /// which is harmless: both tokens are valid, and a process that kept the other one in
    /// memory goes on using it until it expires.
    async fn save(&self, token: &CachedToken) {
        let Some(p) = self.persistence.as_ref() else {
            return;
        };
        let name = p.secret_name.as_str();
        let value = StoredToken {
            token_url: self.creds.token_url.clone(),
            client_id: self.creds.client_id.clone(),
            scope: self.creds.scope.clone(),
            access_token: Some(token.value.expose().to_string()),
            expires_at_ms: token.expires_at_ms,
            refresh_at_ms: token.refresh_at_ms,
        }
        .to_secret();
        // The port writes with compare-and-set only: write over the version just read, and
        // once more if someone wrote in between (last writer wins).
        for _ in 0..2 {
            let expected = match p.store.read(name).await {
                Ok((_, version)) => Some(version),
                Err(SecretError::NotFound(_)) => None,
                Err(e) => {
                    tracing::warn!(
                        secret = name,
                        error = %e,
                        "cannot cache the access token for later runs"
                    );
                    return;
                }
            };
            match p.store.write(name, expected.as_ref(), &value).await {
                Ok(PutOutcome::Written(_)) => return,
                Ok(PutOutcome::Conflict) => continue,
                Err(e) => {
                    tracing::warn!(
                        secret = name,
                        error = %e,
                        "cannot cache the access token for later runs"
                    );
                    return;
                }
            }
        }
        tracing::debug!(
            secret = name,
            "the cached access token kept changing while this process wrote it; left as it is"
        );
    }

    /// Clears the stored token if it is `rejected` (compare-and-set: a newer token another
    /// process stored meanwhile stays). Best effort, like [`TokenCache::save`].
    async fn forget_stored(&self, rejected: &SecretString) {
        let Some(p) = self.persistence.as_ref() else {
            return;
        };
        let name = p.secret_name.as_str();
        let (raw, version) = match p.store.read(name).await {
            Ok(found) => found,
            Err(SecretError::NotFound(_)) => return,
            Err(e) => {
                tracing::warn!(
                    secret = name,
                    error = %e,
                    "cannot clear the refused access token from the cache"
                );
                return;
            }
        };
        let Ok(mut entry) = serde_json::from_str::<StoredToken>(raw.expose()) else {
            return;
        };
        if entry.access_token.as_deref() != Some(rejected.expose()) {
            return;
        }
        entry.access_token = None;
        entry.refresh_at_ms = 0;
        match p
            .store
            .write(name, Some(&version), &entry.to_secret())
            .await
        {
            Ok(_) => {} // Written, or replaced meanwhile by someone else's (newer) token.
            Err(e) => tracing::warn!(
                secret = name,
                error = %e,
                "cannot clear the refused access token from the cache"
            ),
        }
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<CachedToken, HttpError> {
        let request = http
            .post(&self.creds.token_url)
            .header(reqwest::header::ACCEPT, "application/json");
        let request = match self.client_auth {
            ClientAuth::Body => request.form(&[
                ("grant_type", "client_credentials"),
                ("client_id", self.creds.client_id.as_str()),
                ("client_secret", self.creds.client_secret.expose()),
                ("scope", self.creds.scope.as_str()),
            ]),
            // reqwest marks the Basic header sensitive (kept out of logs).
            ClientAuth::Basic => request
                .basic_auth(
                    &self.creds.client_id,
                    Some(self.creds.client_secret.expose()),
                )
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("scope", self.creds.scope.as_str()),
                ]),
        };
        let response = request
            .send()
            .await
            .map_err(|e| HttpError::transport("POST", &self.creds.token_url, &e))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| HttpError::transport("POST", &self.creds.token_url, &e))?;
        if !status.is_success() {
            return Err(HttpError::Auth {
                url: self.creds.token_url.clone(),
                status: status.as_u16(),
                // Token endpoints answer with an error code and description, never the secret.
                body: remote_body(&body),
            });
        }
        let parsed: TokenResponse = serde_json::from_str(&body).map_err(|e| HttpError::Decode {
            url: self.creds.token_url.clone(),
            message: format!("token response: {e}"),
        })?;
        // Absent expires_in: assume an hour, the common default (tap-coupa does the same).
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(3600));
        let (now, now_ms) = (Instant::now(), now_ms());
        let to_ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Ok(CachedToken {
            value: SecretString::new(parsed.access_token),
            refresh_at: now + use_for(lifetime),
            refresh_at_ms: now_ms.saturating_add(to_ms(use_for(lifetime))),
            expires_at_ms: now_ms.saturating_add(to_ms(lifetime)),
        })
    }
}

impl AuthScheme for TokenCache {
    fn credential<'a>(
        &'a self,
        http: &'a reqwest::Client,
    ) -> BoxFuture<'a, Result<Credential, HttpError>> {
        Box::pin(async move { Ok(Credential::bearer(self.token(http).await?, None)) })
    }

    fn forget<'a>(&'a self, used: &'a Credential) -> BoxFuture<'a, ()> {
        Box::pin(self.invalidate(&used.secret))
    }
}
