//! A session-cookie login (SAP Business One Service Layer).
//!
//! `POST {root}/Login` with `{CompanyDB, UserName, Password}` answers with the cookies
//! `B1SESSION` (the session) and `ROUTEID` (load-balancer stickiness); both go on every later
//! call as one `Cookie` header. The `Set-Cookie` lines are parsed here by hand, not by a cookie
//! jar: B1 sends `B1SESSION=<guid>;HttpOnly;` with no Path and a trailing `;`, which some jars
//! drop. An expired session answers 401 with error code 301 (and, where configured, -5002):
//! the client then logs in once more and replays the call once. Logins are serialised: the
//! sessions a B1 server grants are licence-bound, so concurrent calls that find the session
//! expired share one new login.

use reqwest::StatusCode;
use reqwest::header::SET_COOKIE;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::{AuthScheme, BoxFuture, Credential, remote_body};
use crate::ports::SecretString;
use crate::systems::http::HttpError;

/// What a B1 login needs.
#[derive(Clone, Debug)]
pub struct SessionLogin {
    /// The service root, e.g. `https://b1.example.com:50000/b1s/v1`; `Login` and `Logout` are
    /// under it, and relative request URLs are resolved against it.
    pub service_root: String,
    pub company_db: String,
    pub user_name: String,
    pub password: SecretString,
    /// The `error.code` values of a 401 that mean "session expired, log in again". B1 answers
    /// 301; -5002 is documented nowhere as a session error (it is a generic validation code),
    /// so it is only added where a deployment is known to send it.
    pub expiry_codes: Vec<i64>,
}

impl SessionLogin {
    /// The code every B1 version sends for an invalid or timed-out session.
    pub const SESSION_EXPIRED: i64 = 301;

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.service_root.trim_end_matches('/'))
    }
}

/// The session of one B1 login, shared by the workers of a client.
pub struct SessionAuth {
    login: SessionLogin,
    /// The cookie header of the current session. The lock is held while logging in, so
    /// concurrent callers share one login.
    session: Mutex<Option<SecretString>>,
}

#[derive(Deserialize)]
struct LoginBody {
    #[serde(rename = "SessionId")]
    session_id: Option<String>,
}

impl SessionAuth {
    pub fn new(login: SessionLogin) -> Self {
        Self {
            login,
            session: Mutex::new(None),
        }
    }

    /// The cookie header of a live session, logging in if there is none.
    pub async fn cookie(&self, http: &reqwest::Client) -> Result<SecretString, HttpError> {
        let mut session = self.session.lock().await;
        if let Some(cookie) = session.as_ref() {
            return Ok(cookie.clone());
        }
        let cookie = self.log_in(http).await?;
        *session = Some(cookie.clone());
        Ok(cookie)
    }

    async fn log_in(&self, http: &reqwest::Client) -> Result<SecretString, HttpError> {
        let url = self.login.url("Login");
        let body = serde_json::json!({
            "CompanyDB": self.login.company_db,
            "UserName": self.login.user_name,
            "Password": self.login.password.expose(),
        });
        let response = http
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| HttpError::transport("POST", &url, &e))?;
        let status = response.status();
        let cookies: Vec<String> = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        let text = response
            .text()
            .await
            .map_err(|e| HttpError::transport("POST", &url, &e))?;
        if !status.is_success() {
            // B1 answers `{"error":{"code":100000027,"message":{"value":"Login failed"}}}`:
            // never the password. Not retried here: a refused login does not get better by
            // looping, and each attempt may count against the licences.
            return Err(HttpError::Auth {
                url,
                status: status.as_u16(),
                body: remote_body(&text),
            });
        }
        let mut pairs = session_cookies(&cookies);
        if !pairs.iter().any(|(name, _)| name == "B1SESSION") {
            // No cookie (a proxy that strips them): the body names the session too.
            let id = serde_json::from_str::<LoginBody>(&text)
                .ok()
                .and_then(|b| b.session_id)
                .ok_or_else(|| HttpError::Decode {
                    url: url.clone(),
                    message: "the login answered without a B1SESSION cookie or a SessionId".into(),
                })?;
            pairs.insert(0, ("B1SESSION".to_string(), id));
        }
        let header = pairs
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        tracing::debug!(url = %url, "logged in to the B1 service layer");
        Ok(SecretString::new(header))
    }

    /// Whether `body` is a B1 error whose code says the session expired.
    fn is_expiry(&self, body: &[u8]) -> bool {
        error_code(body).is_some_and(|code| self.login.expiry_codes.contains(&code))
    }
}

/// `B1SESSION` and `ROUTEID`, in that order, from `Set-Cookie` lines: the part before the
/// first `;` of each (`B1SESSION=abc;HttpOnly;` → `B1SESSION`, `abc`).
fn session_cookies(lines: &[String]) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = Vec::new();
    for wanted in ["B1SESSION", "ROUTEID"] {
        let value = lines.iter().rev().find_map(|line| {
            let pair = line.split(';').next()?.trim();
            let (name, value) = pair.split_once('=')?;
            (name.trim() == wanted && !value.trim().is_empty()).then(|| value.trim().to_string())
        });
        if let Some(v) = value {
            found.push((wanted.to_string(), v));
        }
    }
    found
}

/// `error.code` of a B1 error body: a number in v1 (OData v3), possibly a string in v2.
fn error_code(body: &[u8]) -> Option<i64> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    match json.get("error")?.get("code")? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl AuthScheme for SessionAuth {
    /// Log in once more and replay the call once; a second expiry is the answer.
    fn reauthorisations(&self) -> usize {
        1
    }

    fn credential<'a>(
        &'a self,
        http: &'a reqwest::Client,
    ) -> BoxFuture<'a, Result<Credential, HttpError>> {
        Box::pin(async move {
            Ok(Credential::cookie(
                self.cookie(http).await?,
                Some(self.login.service_root.trim_end_matches('/').to_string()),
            ))
        })
    }

    fn expired(&self, status: StatusCode, body: &[u8]) -> bool {
        status == StatusCode::UNAUTHORIZED && self.is_expiry(body)
    }

    fn forget<'a>(&'a self, used: &'a Credential) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut session = self.session.lock().await;
            // Only the session that expired: another caller may have logged in already.
            if session.as_ref() == Some(&used.secret) {
                *session = None;
            }
        })
    }

    /// `POST {root}/Logout` (204), freeing the server's session (and its licence) now rather
    /// than at its timeout. A session the server already dropped (401) is logged out too.
    fn logout<'a>(&'a self, http: &'a reqwest::Client) -> BoxFuture<'a, Result<(), HttpError>> {
        Box::pin(async move {
            let Some(cookie) = self.session.lock().await.take() else {
                return Ok(());
            };
            let url = self.login.url("Logout");
            let (name, value) = Credential::cookie(cookie, None).header()?;
            let response = http
                .post(&url)
                .header(name, value)
                .send()
                .await
                .map_err(|e| HttpError::transport("POST", &url, &e))?;
            let status = response.status();
            if status.is_success() || status == StatusCode::UNAUTHORIZED {
                return Ok(());
            }
            let body = response.text().await.unwrap_or_default();
            Err(HttpError::Status {
                method: "POST".into(),
                url,
                status: status.as_u16(),
                body: remote_body(&body),
                retry_after: None,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_cookie_without_path_and_with_a_trailing_semicolon_is_read() {
        let lines = vec![
            "B1SESSION=ac79876e-1e72-11ed-8000-000c299130e0;HttpOnly;".to_string(),
            "ROUTEID=.node0; path=/b1s".to_string(),
            "other=x".to_string(),
        ];
        assert_eq!(
            session_cookies(&lines),
            [
                (
                    "B1SESSION".to_string(),
                    "ac79876e-1e72-11ed-8000-000c299130e0".to_string()
                ),
                ("ROUTEID".to_string(), ".node0".to_string()),
            ]
        );
        assert!(session_cookies(&["B1SESSION=;HttpOnly;".to_string()]).is_empty());
    }

    #[test]
    fn error_codes_of_v1_and_v2_bodies() {
        let v1 = br#"{"error":{"code":301,"message":{"lang":"en-us","value":"Invalid session or session already timeout."}}}"#;
        let v2 = br#"{"error":{"code":"-5002","message":"x"}}"#;
        assert_eq!(error_code(v1), Some(301));
        assert_eq!(error_code(v2), Some(-5002));
        assert_eq!(error_code(b"not json"), None);
    }
}
