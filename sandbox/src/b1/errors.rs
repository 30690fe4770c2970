//! The two error shapes of the Service Layer (sap-b1.md §4.3) and the errors it is known to send.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The OData protocol a request came in on: `/b1s/v1` (OData v3) or `/b1s/v2` (OData v4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    V1,
    V2,
}

impl Protocol {
    pub(crate) fn from_segment(s: &str) -> Option<Protocol> {
        match s {
            "v1" => Some(Protocol::V1),
            "v2" => Some(Protocol::V2),
            _ => None,
        }
    }

    /// The key of the next-page link: `odata.nextLink` in v1, `@odata.nextLink` in v2 (§4.4).
    pub(crate) fn next_link_key(self) -> &'static str {
        match self {
            Protocol::V1 => "odata.nextLink",
            Protocol::V2 => "@odata.nextLink",
        }
    }
}

/// `{"error":{"code":<int>,"message":{"lang":"en-us","value":"…"}}}` in v1;
/// `{"error":{"code":"<code>","message":"…"}}` in v2 (code a string, message plain), so a
/// client must read both (§4.3).
pub(crate) fn b1_error(
    protocol: Protocol,
    status: StatusCode,
    code: i64,
    message: &str,
) -> Response {
    let body = match protocol {
        Protocol::V1 => json!({
            "error": { "code": code, "message": { "lang": "en-us", "value": message } }
        }),
        Protocol::V2 => json!({ "error": { "code": code.to_string(), "message": message } }),
    };
    (status, Json(body)).into_response()
}

/// The fault middleware's renderer: injected failures in the v1 shape.
pub(crate) fn fault_error(status: StatusCode, message: &str) -> Response {
    b1_error(Protocol::V1, status, -1, message)
}

/// §4.2 verbatim: the answer to a call with an invalid or timed-out session.
pub(crate) const INVALID_SESSION: &str = "Invalid session or session already timeout.";
/// §4.2 verbatim.
pub(crate) const LOGIN_FAILED: (i64, &str) = (100000027, "Login failed");
/// §4.8.5: invented (labelled so in the fact sheet); the licence-exhausted login failure.
pub(crate) const NO_FREE_LICENCE: (i64, &str) = (-1, "No free licence");
/// §4.3: `No matching records found (ODBC -2028)`, for an unknown key.
pub(crate) const NO_MATCHING_RECORDS: (i64, &str) =
    (-2028, "No matching records found (ODBC -2028)");
