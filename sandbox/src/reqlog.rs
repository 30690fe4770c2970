//! Request log kept by each simulator, so tests can assert on what the connector sent.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

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
    /// The status served; [`CLIENT_GONE`] when the client went away before the answer.
    pub status: u16,
    /// Coupa: `X-COUPA-API-Version` present and non-empty.
    pub had_api_version_header: bool,
    /// An `Authorization: Bearer …` header was present (validity not implied).
    pub had_bearer: bool,
    /// `If-Match` value, if any (BC concurrency checks).
    pub if_match: Option<String>,
    /// `Prefer` value, if any (BC paging).
    pub prefer: Option<String>,
    /// `Host` the client dialled, if sent: tells apart clients that reach the simulator through
    /// different addresses (the fault suites give each worker process its own relay port).
    pub host: Option<String>,
    /// Seconds of the `Retry-After` the simulator answered with, if any: a wait it announced.
    pub retry_after: Option<u64>,
    /// When the request arrived.
    pub at: chrono::DateTime<chrono::Utc>,
    /// How long the simulator took to answer it.
    pub elapsed_ms: u64,
}

impl RequestLog {
    /// When the simulator answered.
    pub fn answered_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.at + chrono::Duration::milliseconds(self.elapsed_ms as i64)
    }
}

/// A request that arrived while the server's announced wait for its client was running.
#[derive(Clone, Debug, PartialEq)]
pub struct SentInsideWait<'a> {
    /// The 429 or 503 with `Retry-After` that announced the wait.
    pub announced: &'a RequestLog,
    pub sent: &'a RequestLog,
}

/// Requests a client sent inside a wait the server had announced to it: for every 429 or 503
/// answered with `Retry-After: N`, the requests of the same client (same `Host`) that arrived
/// strictly inside (answer, answer + N s), each end pulled in by `tolerance` (a request already
/// on its way when the answer left, clock granularity). Token requests count like any other:
/// a client that waits takes its token after the wait. A request inside several windows counts
/// once.
pub fn sent_inside_announced_waits(
    log: &[RequestLog],
    tolerance: Duration,
) -> Vec<SentInsideWait<'_>> {
    let tolerance = chrono::Duration::from_std(tolerance).unwrap_or_default();
    let mut by_client: BTreeMap<Option<&str>, Vec<&RequestLog>> = BTreeMap::new();
    for r in log {
        by_client.entry(r.host.as_deref()).or_default().push(r);
    }
    let mut out = Vec::new();
    for requests in by_client.values() {
        let windows: Vec<_> = requests
            .iter()
            .filter(|r| matches!(r.status, 429 | 503))
            .filter_map(|r| {
                let secs = r.retry_after.filter(|s| *s > 0)?;
                let from = r.answered_at() + tolerance;
                let to = r.answered_at() + chrono::Duration::seconds(secs as i64) - tolerance;
                Some((*r, from, to))
            })
            .collect();
        for sent in requests {
            if let Some((announced, ..)) = windows
                .iter()
                .find(|(_, from, to)| sent.at > *from && sent.at < *to)
            {
                out.push(SentInsideWait { announced, sent });
            }
        }
    }
    out
}

/// The status logged for a request whose client went away before the answer (nginx's 499): the
/// server may still have done what it asked.
pub const CLIENT_GONE: u16 = 499;

/// A request being answered; logged when dropped, whether it was answered or not.
struct Pending<'a> {
    store: &'a RequestLogStore,
    started: std::time::Instant,
    entry: Option<RequestLog>,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Some(mut e) = self.entry.take() {
            e.elapsed_ms = self.started.elapsed().as_millis() as u64;
            self.store
                .entries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(e);
        }
    }
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
        let (had_api_version_header, had_bearer, if_match, prefer, host) = {
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
                header("host"),
            )
        };
        let method = req.method().as_str().to_owned();
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        // Logged when this future ends, answered or not: a client that gives up (a timeout)
        // drops the connection, and with it this future; its request is still logged, as
        // `CLIENT_GONE`.
        let mut pending = Pending {
            store: self,
            started: std::time::Instant::now(),
            entry: Some(RequestLog {
                method,
                path,
                query,
                status: CLIENT_GONE,
                had_api_version_header,
                had_bearer,
                if_match,
                prefer,
                host,
                retry_after: None,
                at: chrono::Utc::now(),
                elapsed_ms: 0,
            }),
        };
        let resp = next.run(req).await;
        if let Some(e) = pending.entry.as_mut() {
            e.status = resp.status().as_u16();
            e.retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok());
        }
        drop(pending);
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOLERANCE: Duration = Duration::from_millis(50);

    fn t0() -> chrono::DateTime<chrono::Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    /// A request from `host` arriving `at_ms` after t0, answered `status` after `elapsed_ms`.
    fn req(
        host: &str,
        at_ms: i64,
        elapsed_ms: u64,
        status: u16,
        retry_after: Option<u64>,
    ) -> RequestLog {
        RequestLog {
            method: "GET".into(),
            path: "/api/invoices".into(),
            query: String::new(),
            status,
            had_api_version_header: false,
            had_bearer: true,
            if_match: None,
            prefer: None,
            host: Some(host.into()),
            retry_after,
            at: t0() + chrono::Duration::milliseconds(at_ms),
            elapsed_ms,
        }
    }

    fn count(log: &[RequestLog]) -> usize {
        sent_inside_announced_waits(log, TOLERANCE).len()
    }

    #[test]
    fn a_request_of_the_same_client_inside_the_announced_wait_counts() {
        // 429 answered at 1 000 ms with Retry-After: 2 → the window is (1 000, 3 000) ms.
        let log = [
            req("a", 900, 100, 429, Some(2)),
            req("a", 2_000, 5, 200, None),
        ];
        let found = sent_inside_announced_waits(&log, TOLERANCE);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].announced.status, 429);
        assert_eq!(found[0].sent.at, log[1].at);
    }

    #[test]
    fn requests_after_the_wait_or_within_the_tolerance_of_its_ends_do_not_count() {
        let log = [
            req("a", 900, 100, 429, Some(2)),
            // On its way as the answer left.
            req("a", 1_030, 5, 200, None),
            req("a", 2_980, 5, 200, None),
            req("a", 3_000, 5, 200, None),
        ];
        assert_eq!(count(&log), 0);
    }

    #[test]
    fn another_client_is_not_held_by_the_wait() {
        let log = [
            req("a", 900, 100, 429, Some(2)),
            req("b", 2_000, 5, 200, None),
        ];
        assert_eq!(count(&log), 0);
    }

    #[test]
    fn a_throttle_without_retry_after_announces_nothing() {
        let log = [req("a", 900, 100, 429, None), req("a", 1_200, 5, 200, None)];
        assert_eq!(count(&log), 0);
    }

    #[test]
    fn a_503_with_retry_after_announces_a_wait_and_a_500_does_not() {
        let log = [
            req("a", 0, 100, 503, Some(1)),
            req("a", 500, 5, 200, None),
            req("b", 0, 100, 500, Some(1)),
            req("b", 500, 5, 200, None),
        ];
        assert_eq!(count(&log), 1);
    }

    #[test]
    fn a_request_inside_two_overlapping_waits_counts_once() {
        let log = [
            req("a", 0, 100, 429, Some(2)),
            req("a", 50, 100, 429, Some(2)),
            req("a", 1_000, 5, 200, None),
        ];
        assert_eq!(count(&log), 1);
    }
}
