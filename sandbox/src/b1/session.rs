//! `Login`, `Logout` and the session check of every other call (sap-b1.md §4.2, §4.7, §4.8.5).

use std::time::Instant;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::B1Sim;
use super::errors::{INVALID_SESSION, LOGIN_FAILED, NO_FREE_LICENCE, Protocol, b1_error};

pub(crate) struct Session {
    route_id: String,
    last_used: Instant,
}

impl Session {
    pub(crate) fn last_used_elapsed(&self) -> std::time::Duration {
        self.last_used.elapsed()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LoginBody {
    #[serde(rename = "CompanyDB")]
    company_db: String,
    user_name: String,
    password: String,
}

/// The cookies of a request (`Cookie: B1SESSION=…; ROUTEID=.node1`), by name.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| n.trim() == name)
        .map(|(_, v)| v.trim().to_string())
}

pub(crate) fn login(sim: &B1Sim, protocol: Protocol, body: &[u8]) -> Response {
    let cfg = &sim.inner.cfg;
    let Ok(b) = serde_json::from_slice::<LoginBody>(body) else {
        return b1_error(
            protocol,
            StatusCode::BAD_REQUEST,
            -1,
            "Invalid login request body",
        );
    };
    if b.company_db != cfg.company_db || b.user_name != cfg.user_name || b.password != cfg.password
    {
        // §4.2: the body never echoes what was sent. The HTTP status of a failed login is not
        // in the sources; 401 is what the session answers use.
        return b1_error(
            protocol,
            StatusCode::UNAUTHORIZED,
            LOGIN_FAILED.0,
            LOGIN_FAILED.1,
        );
    }
    let mut sessions = sim.inner.sessions.lock().unwrap();
    // A timed-out session frees its licence (§4.7.5: sessions are licence-bound).
    let timeout = cfg.session_timeout;
    sessions.retain(|_, s| s.last_used.elapsed() <= timeout);
    if sessions.len() >= cfg.max_sessions {
        // §4.8.5: the real answer is unknown; this one is invented (and labelled so there).
        return b1_error(
            protocol,
            StatusCode::UNAUTHORIZED,
            NO_FREE_LICENCE.0,
            NO_FREE_LICENCE.1,
        );
    }
    let id = uuid::Uuid::new_v4().to_string();
    sessions.insert(
        id.clone(),
        Session {
            route_id: cfg.route_id.clone(),
            last_used: Instant::now(),
        },
    );
    drop(sessions);
    sim.inner
        .logins
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    // §4.2: SessionTimeout is in minutes.
    let minutes = timeout.as_secs().div_ceil(60).max(1);
    let mut body = json!({ "SessionId": id, "Version": "1000190", "SessionTimeout": minutes });
    if protocol == Protocol::V1 {
        body["odata.metadata"] = json!("$metadata#B1Sessions/@Element");
    }
    let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
    // §4.2/§4.7: raw `Set-Cookie` exactly as observed: no Path attribute, a trailing `;`.
    // A cookie jar that needs a Path drops these; a client must parse them by hand.
    let h = resp.headers_mut();
    h.append(
        "set-cookie",
        HeaderValue::from_str(&format!("B1SESSION={id};HttpOnly;")).expect("ascii"),
    );
    h.append(
        "set-cookie",
        HeaderValue::from_str(&format!("ROUTEID={};", cfg.route_id)).expect("ascii"),
    );
    resp
}

pub(crate) fn logout(sim: &B1Sim, protocol: Protocol, headers: &HeaderMap) -> Response {
    if let Some(resp) = refusal(sim, protocol, headers) {
        return resp;
    }
    if let Some(id) = cookie(headers, "B1SESSION") {
        sim.inner.sessions.lock().unwrap().remove(&id);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// Admits a call carrying a live session and its ROUTEID, sliding the session's timeout;
/// otherwise the refusal to answer.
pub(crate) fn refusal(sim: &B1Sim, protocol: Protocol, headers: &HeaderMap) -> Option<Response> {
    let cfg = &sim.inner.cfg;
    let invalid = || {
        Some(b1_error(
            protocol,
            StatusCode::UNAUTHORIZED,
            cfg.expiry_code,
            INVALID_SESSION,
        ))
    };
    let Some(id) = cookie(headers, "B1SESSION") else {
        return invalid();
    };
    let mut sessions = sim.inner.sessions.lock().unwrap();
    let Some(session) = sessions.get_mut(&id) else {
        return invalid();
    };
    if session.last_used.elapsed() > cfg.session_timeout {
        sessions.remove(&id);
        return invalid();
    }
    // §4.7.1: without ROUTEID the built-in load balancer may send the call to a node that does
    // not hold the session. Doubt: which node it picks is unknown; the stricter reading is that
    // a call without the right ROUTEID never finds its session (the same 401 as a timeout).
    if cookie(headers, "ROUTEID").as_deref() != Some(session.route_id.as_str()) {
        return invalid();
    }
    session.last_used = Instant::now();
    None
}
