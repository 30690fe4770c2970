//! A session-cookie login (SAP Business One Service Layer).
//!
//! `POST {root}/Login` with `{CompanyDB, UserName, Password}` answers with the cookies
//! `B1SESSION` (the session) and `ROUTEID` (load-balancer stickiness); both go on every later
//! call as one `Cookie` header. The `Set-Cookie` lines are parsed here by hand, not by a cookie
//! jar: B1 sends `B1SESSION=<guid>;HttpOnly;` with no Path and a trailing `;`, which some jars
//! drop. An expired session answers 401 with error code 301 (and, where configured, -5002):
//! the client then logs in once more and replays the call once. Logins are serialised: the
//! sessions a B1 server grants are licence-bound, so concurrent calls that find the session
//! expired share one new login. The timeout slides with every call (`SessionTimeout`, minutes,
//! in the login answer); a session idle almost that long is replaced before a call leaves, as
//! public clients do (§4.2), so a call rarely meets an expired session at all.

use std::time::{Duration, Instant};

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
    /// The current session. The lock is held while logging in, so concurrent callers share
    /// one login.
    session: Mutex<Option<Session>>,
    logins: std::sync::atomic::AtomicU64,
}

/// A live session: its cookie header, when a call last left with it, and how long the server
/// keeps it idle.
struct Session {
    cookie: SecretString,
    last_used: Instant,
    timeout: Duration,
}

impl Session {
    /// Idle so long that the server may drop it before a call now arrives: replaced first.
    fn nearly_expired(&self) -> bool {
        let margin = (self.timeout / 10).min(Duration::from_secs(60));
        self.last_used.elapsed() + margin >= self.timeout
    }
}

#[derive(Deserialize)]
struct LoginBody {
    #[serde(rename = "SessionId")]
    session_id: Option<String>,
    /// Minutes (§4.2); 30 when absent.
    #[serde(rename = "SessionTimeout")]
    session_timeout: Option<serde_json::Value>,
}

impl SessionAuth {
    pub fn new(login: SessionLogin) -> Self {
        Self {
            login,
            session: Mutex::new(None),
            logins: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Successful logins so far (a figure for `mlc check` and benchmarks: logins per hour).
    pub fn logins(&self) -> u64 {
        self.logins.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The cookie header of a live session, logging in if there is none or it has been idle
    /// nearly as long as the server keeps it; the session's idle time restarts now.
    pub async fn cookie(&self, http: &reqwest::Client) -> Result<SecretString, HttpError> {
        let mut session = self.session.lock().await;
        if let Some(s) = session.as_mut().filter(|s| !s.nearly_expired()) {
            s.last_used = Instant::now();
            return Ok(s.cookie.clone());
        }
        let fresh = self.log_in(http).await?;
        let cookie = fresh.cookie.clone();
        *session = Some(fresh);
        Ok(cookie)
    }

    async fn log_in(&self, http: &reqwest::Client) -> Result<Session, HttpError> {
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
        let minutes = serde_json::from_str::<LoginBody>(&text)
            .ok()
            .and_then(|b| b.session_timeout)
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()))
            .filter(|m| *m > 0)
            .unwrap_or(30);
        self.logins
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(url = %url, minutes, "logged in to the B1 service layer");
        Ok(Session {
            cookie: SecretString::new(header),
            last_used: Instant::now(),
            timeout: Duration::from_secs(minutes * 60),
        })
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
            if session.as_ref().map(|s| &s.cookie) == Some(&used.secret) {
                *session = None;
            }
        })
    }

    /// `POST {root}/Logout` (204), freeing the server's session (and its licence) now rather
    /// than at its timeout. A session the server already dropped (401) is logged out too.
    fn logout<'a>(&'a self, http: &'a reqwest::Client) -> BoxFuture<'a, Result<(), HttpError>> {
        Box::pin(async move {
            let Some(Session { cookie, .. }) = self.session.lock().await.take() else {
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
    fn a_session_idle_nearly_its_timeout_is_replaced_before_a_call() {
        let session = |idle: u64, timeout: u64| Session {
            cookie: SecretString::new("B1SESSION=a"),
            last_used: Instant::now() - Duration::from_secs(idle),
            timeout: Duration::from_secs(timeout),
        };
        // 30 minutes: replaced from one minute before the end.
        assert!(!session(28 * 60, 30 * 60).nearly_expired());
        assert!(session(29 * 60 + 1, 30 * 60).nearly_expired());
        // 1 minute: replaced from a tenth of it before the end.
        assert!(!session(50, 60).nearly_expired());
        assert!(session(55, 60).nearly_expired());
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
