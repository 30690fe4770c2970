//! OAuth 2.0 client credentials: a bearer token per (token URL, client id).

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::{AuthScheme, BoxFuture, Credential, lenient_u64, truncate, use_for};
use crate::ports::SecretString;
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

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    expires_in: Option<u64>,
}

struct CachedToken {
    value: SecretString,
    refresh_at: Instant,
}

/// A token cache for one (token URL, client id): a token is reused until shortly before it
/// expires, and dropped when the API answers 401 so the next call fetches a fresh one.
pub struct TokenCache {
    creds: ClientCredentials,
    cached: Mutex<Option<CachedToken>>,
}

impl TokenCache {
    pub fn new(creds: ClientCredentials) -> Self {
        Self {
            creds,
            cached: Mutex::new(None),
        }
    }

    pub fn client_id(&self) -> &str {
        &self.creds.client_id
    }

    /// A valid token, fetched if there is none or it is about to expire. The lock is held while
    /// fetching so concurrent callers share one token request.
    pub async fn token(&self, http: &reqwest::Client) -> Result<SecretString, HttpError> {
        let mut cached = self.cached.lock().await;
        if let Some(t) = cached.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok(t.value.clone());
        }
        let fresh = self.fetch(http).await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// Forget the cached token (after a 401), unless it was already replaced.
    pub async fn invalidate(&self, rejected: &SecretString) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|t| &t.value == rejected) {
            *cached = None;
        }
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<CachedToken, HttpError> {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.creds.client_id.as_str()),
            ("client_secret", self.creds.client_secret.expose()),
            ("scope", self.creds.scope.as_str()),
        ];
        let response = http
            .post(&self.creds.token_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
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
                body: truncate(&body),
            });
        }
        let parsed: TokenResponse = serde_json::from_str(&body).map_err(|e| HttpError::Decode {
            url: self.creds.token_url.clone(),
            message: format!("token response: {e}"),
        })?;
        // Absent expires_in: assume an hour, the common default (tap-coupa does the same).
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(3600));
        let refresh_at = Instant::now() + use_for(lifetime);
        Ok(CachedToken {
            value: SecretString::new(parsed.access_token),
            refresh_at,
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
