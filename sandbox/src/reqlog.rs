//! Request log kept by each simulator, so tests can assert on what the connector sent.

use std::sync::Mutex;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};

/// One request as the simulator saw it, with the status it answered.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RequestLog {
    pub method: String,
    /// Path as received (still percent-encoded).
    pub path: String,
    /// Raw query string ("" when none).
    pub query: String,
    pub status: u16,
    /// Coupa: `X-COUPA-API-Version` present and non-empty.
    pub had_api_version_header: bool,
    /// An `Authorization: Bearer …` header was present (validity not implied).
    pub had_bearer: bool,
    /// `If-Match` value, if any (BC concurrency checks).
    pub if_match: Option<String>,
    /// `Prefer` value, if any (BC paging).
    pub prefer: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
    pub elapsed_ms: u64,
}

#[derive(Default)]
pub(crate) struct RequestLogStore {
    entries: Mutex<Vec<RequestLog>>,
}

impl RequestLogStore {
    pub(crate) fn snapshot(&self) -> Vec<RequestLog> {
        self.entries.lock().unwrap().clone()
    }

    pub(crate) fn clear(&self) {
        self.entries.lock().unwrap().clear();
    }

    /// Runs the request and records it with the status actually served
    /// (after faults, throttling and auth have had their say).
    pub(crate) async fn record(&self, req: Request, next: Next) -> Response {
        // Read headers in a block: a borrow of the (non-Sync) request must not live across
        // the await below.
        let (had_api_version_header, had_bearer, if_match, prefer) = {
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            (
                header("x-coupa-api-version").is_some_and(|v| !v.trim().is_empty()),
                header("authorization")
                    .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ")),
                header("if-match"),
                header("prefer"),
            )
        };
        let method = req.method().as_str().to_owned();
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        let at = chrono::Utc::now();
        let started = std::time::Instant::now();
        let resp = next.run(req).await;
        let entry = RequestLog {
            method,
            path,
            query,
            status: resp.status().as_u16(),
            had_api_version_header,
            had_bearer,
            if_match,
            prefer,
            at,
            elapsed_ms: started.elapsed().as_millis() as u64,
        };
        self.entries.lock().unwrap().push(entry);
        resp
    }
}
