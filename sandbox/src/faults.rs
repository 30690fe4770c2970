//! Injected failures, shared by both simulators and applied as an axum middleware
//! in front of the API routes (never in front of `/_sandbox` control routes or the
//! token endpoints, so a test can always reach the controls and authenticate).

use std::sync::Mutex;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};

/// What a matching request suffers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum FaultKind {
    /// Answer this status (with the system's error body shape) WITHOUT running the handler.
    Status(u16),
    /// 429, with `Retry-After: N` (seconds) when `Some`.
    TooManyRequests { retry_after: Option<u64> },
    /// 503 Service Unavailable WITHOUT running the handler, with `Retry-After: N` (seconds) when
    /// `Some` (BC under service protection; any server in maintenance).
    Unavailable { retry_after: Option<u64> },
    /// Sleep this long, then run the handler normally. The handler runs on its own task,
    /// so it completes even if the client gave up: a timed-out write may still be committed,
    /// as on a real server.
    Hang { millis: u64 },
    /// RUN the handler (the change is committed!), then answer 500 instead of its response.
    LoseResponse,
    /// Answer this status with this body and `Content-Type` WITHOUT running the handler: what a
    /// proxy, gateway or firewall in front of the system answers (an HTML error page).
    RawBody {
        status: u16,
        content_type: String,
        body: String,
    },
}

/// A queued fault. Each matching request consumes one `count`; a rule with count 0 is dropped.
/// Match = method equal (case-insensitive) and the request path (not query) contains
/// `path_contains`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FaultRule {
    pub method: String,
    pub path_contains: String,
    pub count: u32,
    pub kind: FaultKind,
}

impl FaultRule {
    pub fn new(method: &str, path_contains: &str, count: u32, kind: FaultKind) -> Self {
        FaultRule {
            method: method.to_owned(),
            path_contains: path_contains.to_owned(),
            count,
            kind,
        }
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method.eq_ignore_ascii_case(method) && path.contains(&self.path_contains)
    }
}

/// Renders an error body in the owning system's shape for a status and message.
pub(crate) type ErrorRenderer = fn(StatusCode, &str) -> Response;

#[derive(Default)]
pub(crate) struct FaultQueue {
    rules: Mutex<Vec<FaultRule>>,
}

impl FaultQueue {
    pub(crate) fn push(&self, rule: FaultRule) {
        if rule.count > 0 {
            self.rules.lock().unwrap().push(rule);
        }
    }

    /// Consumes one count of the first (oldest) matching rule.
    pub(crate) fn take(&self, method: &str, path: &str) -> Option<FaultKind> {
        let mut rules = self.rules.lock().unwrap();
        let idx = rules.iter().position(|r| r.matches(method, path))?;
        let kind = rules[idx].kind.clone();
        rules[idx].count -= 1;
        if rules[idx].count == 0 {
            rules.remove(idx);
        }
        Some(kind)
    }

    /// The middleware body: applies the first matching fault, if any.
    pub(crate) async fn apply(&self, render: ErrorRenderer, req: Request, next: Next) -> Response {
        // Path as the client wrote it, but percent-decoded, so a rule can say "purchaseInvoices("
        // whether or not the client encoded the parentheses.
        let path = percent_encoding::percent_decode_str(req.uri().path())
            .decode_utf8_lossy()
            .into_owned();
        let Some(kind) = self.take(req.method().as_str(), &path) else {
            return next.run(req).await;
        };
        match kind {
            FaultKind::Status(code) => {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                render(status, "Injected fault.")
            }
            FaultKind::TooManyRequests { retry_after } => {
                let mut resp = render(StatusCode::TOO_MANY_REQUESTS, "Too many requests.");
                if let Some(secs) = retry_after {
                    resp.headers_mut()
                        .insert("retry-after", HeaderValue::from(secs));
                }
                resp
            }
            FaultKind::Unavailable { retry_after } => {
                let mut resp = render(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable.");
                if let Some(secs) = retry_after {
                    resp.headers_mut()
                        .insert("retry-after", HeaderValue::from(secs));
                }
                resp
            }
            FaultKind::Hang { millis } => {
                let task = tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(millis)).await;
                    next.run(req).await
                });
                task.await.unwrap_or_else(|_| {
                    render(StatusCode::INTERNAL_SERVER_ERROR, "Handler panicked.")
                })
            }
            FaultKind::RawBody {
                status,
                content_type,
                body,
            } => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut resp = Response::new(axum::body::Body::from(body));
                *resp.status_mut() = status;
                if let Ok(v) = HeaderValue::from_str(&content_type) {
                    resp.headers_mut().insert("content-type", v);
                }
                resp
            }
            FaultKind::LoseResponse => {
                // Own task: the commit must happen even if the client disconnects meanwhile.
                let task = tokio::spawn(async move { next.run(req).await });
                let _committed = task.await;
                render(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Injected fault: response lost.",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_match_consumes_one_count_and_rules_queue_in_order() {
        let q = FaultQueue::default();
        q.push(FaultRule::new(
            "get",
            "/api/invoices",
            2,
            FaultKind::Status(503),
        ));
        q.push(FaultRule::new("GET", "/api", 1, FaultKind::LoseResponse));
        assert_eq!(q.take("POST", "/api/invoices"), None);
        assert_eq!(
            q.take("GET", "/api/invoices/1"),
            Some(FaultKind::Status(503))
        );
        assert_eq!(q.take("GET", "/api/invoices"), Some(FaultKind::Status(503)));
        assert_eq!(
            q.take("GET", "/api/invoices"),
            Some(FaultKind::LoseResponse)
        );
        assert_eq!(q.take("GET", "/api/invoices"), None);
    }
}
