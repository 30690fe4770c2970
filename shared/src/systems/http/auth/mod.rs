//! Auth flavours of the shared HTTP client. One [`ApiClient`](super::ApiClient) serves them all
//! through [`AuthScheme`]:
//!
//! - [`TokenCache`]: OAuth 2.0 client credentials, a bearer token (Coupa, Business Central,
//!   F&O, Basware), optionally kept across processes in the secrets store
//!   ([`TokenPersistence`]);
//! - [`RefreshTokenAuth`]: a rotating refresh token kept in the secrets store, stored back with
//!   compare-and-set before the new access token is used (SAP Concur company-level tokens);
//! - [`SessionAuth`]: a login that yields session cookies (SAP Business One Service Layer).
//!
//! The client asks for a [`Credential`] when a request leaves (after pacing), tells the scheme
//! when an answer says the credential expired, and replays the call once with a fresh one.

mod client_credentials;
mod refresh_token;
mod session;

use std::future::Future;
use std::pin::Pin;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, COOKIE, HeaderName, HeaderValue};
use serde::{Deserialize, Deserializer};

use super::HttpError;
use crate::ports::SecretString;

pub use client_credentials::{ClientAuth, ClientCredentials, TokenCache, TokenPersistence};
pub use refresh_token::{RefreshTokenAuth, RefreshTokenSettings, TokenStore};
pub use session::{SessionAuth, SessionLogin};

/// A boxed, sendable future: what an object-safe async trait method returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a credential travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `Cookie: <pairs>` (already `name=value; name=value`).
    Cookie,
}

/// What one request carries to say who it is, and where the scheme says the API lives (Concur
/// names the base URL with each token). `Debug` never shows the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    kind: CredentialKind,
    secret: SecretString,
    base_url: Option<String>,
}

impl Credential {
    pub fn bearer(token: SecretString, base_url: Option<String>) -> Self {
        Self {
            kind: CredentialKind::Bearer,
            secret: token,
            base_url,
        }
    }

    pub fn cookie(pairs: SecretString, base_url: Option<String>) -> Self {
        Self {
            kind: CredentialKind::Cookie,
            secret: pairs,
            base_url,
        }
    }

    pub fn kind(&self) -> CredentialKind {
        self.kind
    }

    /// The base URL a relative request URL (one starting with `/`) is resolved against.
    pub fn base_url(&self) -> Option<&str> {
        self.base_url.as_deref()
    }

    /// The header to send, marked sensitive (hyper and reqwest then keep it out of logs).
    pub fn header(&self) -> Result<(HeaderName, HeaderValue), HttpError> {
        let (name, text) = match self.kind {
            CredentialKind::Bearer => (AUTHORIZATION, format!("Bearer {}", self.secret.expose())),
            CredentialKind::Cookie => (COOKIE, self.secret.expose().to_string()),
        };
        let mut value = HeaderValue::from_str(&text).map_err(|_| HttpError::Decode {
            url: self.base_url.clone().unwrap_or_default(),
            message: format!(
                "the {} has characters not allowed in a header",
                match self.kind {
                    CredentialKind::Bearer => "access token",
                    CredentialKind::Cookie => "session cookie",
                }
            ),
        })?;
        value.set_sensitive(true);
        Ok((name, value))
    }
}

/// An auth flavour. Object safe (boxed futures) so one `ApiClient` type serves every system.
pub trait AuthScheme: Send + Sync {
    /// A credential valid now, obtained (token request, refresh, login) if there is none.
    /// Concurrent callers share one acquisition.
    fn credential<'a>(
        &'a self,
        http: &'a reqwest::Client,
    ) -> BoxFuture<'a, Result<Credential, HttpError>>;

    /// Whether this answer means the credential expired or was revoked, so the call was not
    /// processed and may be replayed once with a fresh credential. Default: any 401.
    fn expired(&self, status: StatusCode, _body: &[u8]) -> bool {
        status == StatusCode::UNAUTHORIZED
    }

    /// How many fresh credentials one call may take, each after the refusal of a different
    /// one. A session is logged into once more and the call replayed once (sap-b1.md); a token
    /// is refreshed once per token refused, so a token replaced again while the replay was on
    /// its way (tokens expiring minutes apart under load) gets its own refresh.
    fn reauthorisations(&self) -> usize {
        2
    }

    /// Forget `used` (the server refused it), unless it was already replaced.
    fn forget<'a>(&'a self, used: &'a Credential) -> BoxFuture<'a, ()>;

    /// Ends the session, if the flavour has one (B1 `Logout`); a no-op otherwise.
    fn logout<'a>(&'a self, _http: &'a reqwest::Client) -> BoxFuture<'a, Result<(), HttpError>> {
        Box::pin(async { Ok(()) })
    }
}

/// `expires_in` as a JSON number or, as Concur sends it, a string (`"3600"`).
pub(super) fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    // Through `Value`, not an untagged enum: with serde_json's `arbitrary_precision` (on in this
    // workspace) a number buffered by an untagged enum no longer reads as a u64.
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(t)) => t.trim().parse().ok(),
        _ => None,
    })
}

/// How long to use a token the server says lives `lifetime` seconds: until shortly before it
/// expires, so it never expires in flight. Coupa tokens live 24 h, Entra's and Concur's ~1 h.
pub(super) fn use_for(lifetime: std::time::Duration) -> std::time::Duration {
    const EARLY_REFRESH: std::time::Duration = std::time::Duration::from_secs(300);
    lifetime.saturating_sub(EARLY_REFRESH).max(lifetime / 2)
}

/// A server's response body as an error keeps it: one line, bounded, safe to show.
pub(crate) use crate::text::remote_body;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_debug_and_header_never_show_the_secret() {
        let c = Credential::bearer(SecretString::new("tok-123"), Some("https://x".into()));
        assert!(!format!("{c:?}").contains("tok-123"));
        let (name, value) = c.header().unwrap();
        assert_eq!(name, AUTHORIZATION);
        assert!(value.is_sensitive());
        assert!(!format!("{value:?}").contains("tok-123"));
        let c = Credential::cookie(SecretString::new("B1SESSION=a; ROUTEID=.node0"), None);
        assert_eq!(c.header().unwrap().0, COOKIE);
    }

    #[test]
    fn expires_in_may_be_a_string() {
        #[derive(Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "lenient_u64")]
            expires_in: Option<u64>,
        }
        let n: T = serde_json::from_str(r#"{"expires_in": 3600}"#).unwrap();
        let s: T = serde_json::from_str(r#"{"expires_in": "3600"}"#).unwrap();
        let none: T = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(
            (n.expires_in, s.expires_in, none.expires_in),
            (Some(3600), Some(3600), None)
        );
    }
}
