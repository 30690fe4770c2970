//! A rotating refresh token kept in the secrets store (SAP Concur company-level tokens).
//!
//! A refresh (`grant_type=refresh_token`) may answer with a new refresh token, which replaces
//! the old one, and a `geolocation`: the base URL of every later call and refresh. Several
//! workers (threads, `mlc` processes, Lambda instances) share one stored token, and a refresh
//! token must never be spent twice: a strictly rotating server refuses the second use, and the
//! refusal is indistinguishable from a revoked connection.
//!
//! The stored secret is a JSON object ([`StoredState`]): the refresh token, the geolocation,
//! the last access token with the time until which it may be used, and a lease. A refresh is:
//!
//! 1. read the state with its version; a usable access token in it is used as is (so a fleet
//!    refreshes once per token lifetime, not once per worker);
//! 2. someone else's unexpired lease: wait and read again (they are refreshing);
//! 3. claim: write the state with our lease, compare-and-set on the version read. Only one
//!    worker wins a version, so only one spends the refresh token it holds;
//! 4. spend it; then store the new refresh token, geolocation and access token (lease cleared)
//!    with compare-and-set on the claim's version, and only then use the access token. If that
//!    write conflicts (our lease had run out and another worker took over), the new token is
//!    not used: read again and go on from what is stored.
//!
//! A crash between the token response and the acknowledged store-back: if the write landed,
//! the next reader finds and uses the new tokens. If it did not, the store still holds the old
//! refresh token under the dead worker's lease, and the new refresh token is lost with the
//! process. Once the lease runs out the next worker spends the old refresh token again: a
//! server that rotates strictly refuses it ([`HttpError::RefreshRefused`]: the connection must
//! be authorised again), one that keeps the old token valid for a while answers normally.
//! Whether Concur keeps the previous refresh token valid is not documented. The same holds for
//! a refresh whose answer never arrived (timeout): the claim is released, and the next attempt
//! spends the same token again.

use std::sync::Mutex as StdMutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{AuthScheme, BoxFuture, Credential, lenient_u64, use_for};
use crate::ports::{PutOutcome, SecretError, SecretString, SecretVersion, Secrets};
use crate::systems::http::HttpError;

/// The part of the secrets port a refresh needs, object safe (the port's `impl Future`
/// methods are not), so the HTTP plumbing can hold any store behind one type. Every
/// [`Secrets`] is one.
pub trait TokenStore: Send + Sync {
    fn read<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(SecretString, SecretVersion), SecretError>>;

    fn write<'a>(
        &'a self,
        name: &'a str,
        expected: Option<&'a SecretVersion>,
        value: &'a SecretString,
    ) -> BoxFuture<'a, Result<PutOutcome, SecretError>>;
}

impl<S: Secrets> TokenStore for S {
    fn read<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(SecretString, SecretVersion), SecretError>> {
        Box::pin(self.get_versioned(name))
    }

    fn write<'a>(
        &'a self,
        name: &'a str,
        expected: Option<&'a SecretVersion>,
        value: &'a SecretString,
    ) -> BoxFuture<'a, Result<PutOutcome, SecretError>> {
        Box::pin(self.put_if(name, expected, value))
    }
}

/// Settings of a rotating-refresh-token grant.
#[derive(Clone, Debug)]
pub struct RefreshTokenSettings {
    /// The token endpoint: a path (Concur: `/oauth2/v0/token`), resolved against the current
    /// geolocation, or an absolute URL.
    pub token_url: String,
    /// The base URL until a token response names a geolocation (Concur: the app's own).
    pub base_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Sent when set.
    pub scope: Option<String>,
    /// The secret holding the state (see the module doc); its first value may be the bare
    /// refresh token, or [`RefreshTokenAuth::initial_state`].
    pub secret_name: String,
    /// How long a worker's claim on a refresh lasts. Longer than the token request can take
    /// (the client's timeout): another worker takes over only after it, and then spends the
    /// same refresh token again.
    pub lease: Duration,
}

/// The state stored in the secret. No `Debug`: it holds tokens.
#[derive(Clone, Serialize, Deserialize)]
struct StoredState {
    refresh_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    geolocation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_token: Option<String>,
    /// Unix milliseconds until which `access_token` is handed out (shortly before it expires).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_until_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lease: Option<Lease>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Lease {
    holder: String,
    until_ms: i64,
}

impl StoredState {
    /// JSON, or (the first value an operator stores) the bare refresh token. A parse error is
    /// not passed on: it could quote the value.
    fn parse(raw: &SecretString, name: &str) -> Result<Self, HttpError> {
        let text = raw.expose().trim();
        if !text.starts_with('{') {
            if text.is_empty() {
                return Err(HttpError::Secrets(format!("secret '{name}' is empty")));
            }
            return Ok(Self {
                refresh_token: text.to_string(),
                geolocation: None,
                access_token: None,
                access_until_ms: None,
                lease: None,
            });
        }
        serde_json::from_str(text).map_err(|_| {
            HttpError::Secrets(format!(
                "secret '{name}' is neither a refresh token nor the JSON of a refresh-token state"
            ))
        })
    }

    fn to_secret(&self) -> SecretString {
        SecretString::new(serde_json::to_string(self).expect("serialisable state"))
    }
}

/// The token response. `expires_in` may be a string (Concur sends `"3600"`).
#[derive(Deserialize)]
struct RefreshResponse {
    access_token: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    geolocation: Option<String>,
}

/// An OAuth error body (`{"error": "invalid_grant", "error_description": "…", "code": 108}`).
/// Concur names the geolocation the principal lives at in it (§2.2, code 16 "user lives
/// elsewhere").
#[derive(Deserialize, Default)]
struct OAuthError {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    geolocation: Option<String>,
}

/// The access token in use in this process.
#[derive(Clone)]
struct InUse {
    token: SecretString,
    base_url: String,
    until_ms: i64,
}

/// Access tokens from a rotating refresh token in a [`TokenStore`].
pub struct RefreshTokenAuth {
    settings: RefreshTokenSettings,
    store: Box<dyn TokenStore>,
    /// This worker's name in a lease.
    id: String,
    /// Held while obtaining a token: one refresh at a time per process.
    in_use: Mutex<Option<InUse>>,
    /// The last access token the API refused: a stored copy of it is not used again.
    refused: StdMutex<Option<SecretString>>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A URL that is absolute (`http(s)://`) stays; a path is put under `base`.
fn resolve(base: &str, url: &str) -> String {
    if url.starts_with("http://") || url.starts_with("https://") {
        url.to_string()
    } else {
        format!(
            "{}/{}",
            base.trim_end_matches('/'),
            url.trim_start_matches('/')
        )
    }
}

fn store_error(name: &str, e: SecretError) -> HttpError {
    HttpError::Secrets(format!("refresh-token secret '{name}': {e}"))
}

/// How often a worker looks again while another holds the lease.
const FIRST_POLL: Duration = Duration::from_millis(50);
const MAX_POLL: Duration = Duration::from_secs(1);

impl RefreshTokenAuth {
    pub fn new(settings: RefreshTokenSettings, store: impl TokenStore + 'static) -> Self {
        Self {
            settings,
            store: Box::new(store),
            id: uuid::Uuid::new_v4().simple().to_string(),
            in_use: Mutex::new(None),
            refused: StdMutex::new(None),
        }
    }

    /// The first value of the secret: a refresh token (from the one-time company request token
    /// exchange) and the geolocation it was issued for.
    pub fn initial_state(refresh_token: &SecretString, geolocation: Option<&str>) -> SecretString {
        StoredState {
            refresh_token: refresh_token.expose().to_string(),
            geolocation: geolocation.map(str::to_string),
            access_token: None,
            access_until_ms: None,
            lease: None,
        }
        .to_secret()
    }

    /// An access token and the base URL it is for, refreshing if none is usable.
    pub async fn access(&self, http: &reqwest::Client) -> Result<Credential, HttpError> {
        let mut in_use = self.in_use.lock().await;
        if let Some(t) = in_use.as_ref()
            && now_ms() < t.until_ms
            && !self.is_refused(&t.token)
        {
            return Ok(Credential::bearer(
                t.token.clone(),
                Some(t.base_url.clone()),
            ));
        }
        let fresh = self.obtain(http).await?;
        let credential = Credential::bearer(fresh.token.clone(), Some(fresh.base_url.clone()));
        *in_use = Some(fresh);
        Ok(credential)
    }

    fn is_refused(&self, token: &SecretString) -> bool {
        self.refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            == Some(token)
    }

    fn base_of(&self, state: &StoredState) -> String {
        state
            .geolocation
            .clone()
            .unwrap_or_else(|| self.settings.base_url.clone())
            .trim_end_matches('/')
            .to_string()
    }

    /// The protocol of the module doc: read, use or wait or claim, spend, store back.
    async fn obtain(&self, http: &reqwest::Client) -> Result<InUse, HttpError> {
        let name = self.settings.secret_name.as_str();
        // A live holder finishes within its lease; past it we take over. Bounded either way.
        let give_up =
            tokio::time::Instant::now() + self.settings.lease * 2 + Duration::from_secs(10);
        let mut poll = FIRST_POLL;
        loop {
            if tokio::time::Instant::now() > give_up {
                return Err(HttpError::Secrets(format!(
                    "refresh-token secret '{name}': no usable token after waiting out the \
                     other workers' refreshes"
                )));
            }
            let (raw, version) = self
                .store
                .read(name)
                .await
                .map_err(|e| store_error(name, e))?;
            let state = StoredState::parse(&raw, name)?;
            let now = now_ms();

            if let (Some(token), Some(until)) = (&state.access_token, state.access_until_ms) {
                let token = SecretString::new(token.clone());
                if now < until && !self.is_refused(&token) {
                    return Ok(InUse {
                        token,
                        base_url: self.base_of(&state),
                        until_ms: until,
                    });
                }
            }

            if let Some(lease) = &state.lease
                && lease.holder != self.id
                && now < lease.until_ms
            {
                tokio::time::sleep(poll).await;
                poll = (poll * 2).min(MAX_POLL);
                continue;
            }

            let mut claimed = state.clone();
            claimed.lease = Some(Lease {
                holder: self.id.clone(),
                until_ms: now + self.settings.lease.as_millis() as i64,
            });
            let claim = match self
                .store
                .write(name, Some(&version), &claimed.to_secret())
                .await
                .map_err(|e| store_error(name, e))?
            {
                PutOutcome::Written(v) => v,
                PutOutcome::Conflict => continue, // Someone wrote since our read: look again.
            };

            let answer = match self.refresh(http, &claimed).await {
                Ok(answer) => answer,
                Err(e) => {
                    // Release the claim so others need not wait out the lease. Best effort: if
                    // it fails the lease runs out by itself.
                    let mut released = claimed;
                    released.lease = None;
                    if let Ok(PutOutcome::Conflict) = self
                        .store
                        .write(name, Some(&claim), &released.to_secret())
                        .await
                    {
                        // Someone replaced the state under our claim (an operator storing a
                        // new refresh token, or a worker that outwaited the lease): try that.
                        continue;
                    }
                    return Err(e);
                }
            };

            let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
            let until_ms = now_ms() + use_for(lifetime).as_millis() as i64;
            let geolocation = answer
                .geolocation
                .filter(|g| g.starts_with("https://") || g.starts_with("http://"))
                .map(|g| g.trim_end_matches('/').to_string())
                .or(claimed.geolocation);
            let next = StoredState {
                refresh_token: answer.refresh_token.unwrap_or(claimed.refresh_token),
                geolocation,
                access_token: Some(answer.access_token),
                access_until_ms: Some(until_ms),
                lease: None,
            };
            // Stored before use: a new refresh token that only this process knew would be lost
            // with it.
            match self
                .store
                .write(name, Some(&claim), &next.to_secret())
                .await
                .map_err(|e| store_error(name, e))?
            {
                PutOutcome::Written(_) => {
                    return Ok(InUse {
                        token: SecretString::new(next.access_token.clone().unwrap_or_default()),
                        base_url: self.base_of(&next),
                        until_ms,
                    });
                }
                PutOutcome::Conflict => {
                    tracing::warn!(
                        secret = name,
                        "the refresh-token state changed while this worker held the refresh \
                         lease (the token request outlasted the lease?); using the stored state"
                    );
                    continue;
                }
            }
        }
    }

    /// `POST {token_url}` with `grant_type=refresh_token` at the stored geolocation. A refusal
    /// that names another geolocation (the company moved: concur.md §2.2, code 16 "user lives
    /// elsewhere") did not spend the token: it is sent once more there, and the answer's
    /// geolocation is that one unless it names its own.
    async fn refresh(
        &self,
        http: &reqwest::Client,
        state: &StoredState,
    ) -> Result<RefreshResponse, HttpError> {
        let base = self.base_of(state);
        match self.refresh_at(http, state, &base).await {
            Err((e, Some(elsewhere))) if elsewhere != base => {
                tracing::warn!(
                    from = %base,
                    to = %elsewhere,
                    "the token endpoint names another geolocation; refreshing there"
                );
                drop(e);
                let mut answer = self
                    .refresh_at(http, state, &elsewhere)
                    .await
                    .map_err(|(e, _)| e)?;
                if answer.geolocation.is_none() {
                    answer.geolocation = Some(elsewhere);
                }
                Ok(answer)
            }
            other => other.map_err(|(e, _)| e),
        }
    }

    /// One token request at `base`; a refusal comes with the geolocation it names, if any.
    async fn refresh_at(
        &self,
        http: &reqwest::Client,
        state: &StoredState,
        base: &str,
    ) -> Result<RefreshResponse, (HttpError, Option<String>)> {
        let url = resolve(base, &self.settings.token_url);
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", state.refresh_token.as_str()),
            ("client_id", self.settings.client_id.as_str()),
            ("client_secret", self.settings.client_secret.expose()),
        ];
        if let Some(scope) = &self.settings.scope {
            form.push(("scope", scope.as_str()));
        }
        let response = http
            .post(&url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| (HttpError::transport("POST", &url, &e), None))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| (HttpError::transport("POST", &url, &e), None))?;
        if !status.is_success() {
            // Only the error code and description travel on: never the body as a whole.
            let err: OAuthError = serde_json::from_str(&body).unwrap_or_default();
            let elsewhere = err
                .geolocation
                .as_deref()
                .filter(|g| g.starts_with("https://") || g.starts_with("http://"))
                .map(|g| g.trim_end_matches('/').to_string());
            let error = crate::text::one_line(
                &format!(
                    "{}: {}",
                    err.error.as_deref().unwrap_or("error"),
                    err.error_description.as_deref().unwrap_or("")
                ),
                crate::text::REMOTE_TEXT_MAX,
            );
            let refused = status == reqwest::StatusCode::UNAUTHORIZED
                || (status == reqwest::StatusCode::BAD_REQUEST
                    && err.error.as_deref() == Some("invalid_grant"));
            if refused {
                return Err((
                    HttpError::RefreshRefused {
                        url,
                        status: status.as_u16(),
                        error,
                    },
                    elsewhere,
                ));
            }
            return Err((
                HttpError::Auth {
                    url,
                    status: status.as_u16(),
                    body: error,
                },
                elsewhere,
            ));
        }
        serde_json::from_str(&body).map_err(|_| {
            (
                HttpError::Decode {
                    url,
                    message: "the token response is not a JSON object with an access_token".into(),
                },
                None,
            )
        })
    }
}

impl AuthScheme for RefreshTokenAuth {
    fn credential<'a>(
        &'a self,
        http: &'a reqwest::Client,
    ) -> BoxFuture<'a, Result<Credential, HttpError>> {
        Box::pin(self.access(http))
    }

    fn forget<'a>(&'a self, used: &'a Credential) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(used.secret.clone());
            let mut in_use = self.in_use.lock().await;
            if in_use.as_ref().is_some_and(|t| t.token == used.secret) {
                *in_use = None;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_refresh_token_is_a_state() {
        let s = StoredState::parse(&SecretString::new(" rt-0 \n"), "x").unwrap();
        assert_eq!(s.refresh_token, "rt-0");
        assert!(s.geolocation.is_none() && s.lease.is_none());
        let init = RefreshTokenAuth::initial_state(&SecretString::new("rt-1"), Some("https://g"));
        let s = StoredState::parse(&init, "x").unwrap();
        assert_eq!(
            (s.refresh_token.as_str(), s.geolocation.as_deref()),
            ("rt-1", Some("https://g"))
        );
    }

    #[test]
    fn a_broken_state_is_refused_without_quoting_it() {
        let err = StoredState::parse(&SecretString::new("{\"refresh\": \"rt-secret\""), "concur")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("concur") && !err.contains("rt-secret"),
            "{err}"
        );
    }

    #[test]
    fn token_url_is_put_under_the_geolocation_unless_absolute() {
        assert_eq!(
            resolve("https://us2.api.x/", "/oauth2/v0/token"),
            "https://us2.api.x/oauth2/v0/token"
        );
        assert_eq!(
            resolve("https://us2.api.x", "https://t/token"),
            "https://t/token"
        );
    }
}
