//! OData JSON `$batch` (business-central.md A5): several operations in one round trip.
//!
//! - `POST {api root}/$batch`, `{"requests":[{"method","id","url","headers","body"}]}`; inner
//!   URLs relative to the API root; at most 100 operations (A4).
//! - The answer is 200 even when operations failed: each `responses[i].status` says. BC's
//!   documented example echoes `"id": null`, so answers are matched to operations by position.
//! - `Isolation: snapshot` (BC ≥ 17.1) makes the batch one transaction: one failed operation
//!   rolls back the others. Without it each operation commits on its own, in order.
//! - Every operation counts against the per-user request budget (the stricter of the two
//!   readings; the simulator enforces it), so the client paces a batch as that many requests.
//!   What a batch saves is round trips (latency, concurrency slots), not budget; the budget is
//!   saved by sending fewer operations (a deep insert carrying lines and their dimensions).

use reqwest::header::HeaderName;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::{BcClient, BcError};
use crate::systems::http::{ApiRequest, HttpError};

/// A4: "Max $batch size: 100 operations".
pub const MAX_BATCH_OPERATIONS: usize = 100;

/// One operation of a batch. `path` is below the company (`purchaseInvoices(…)/…`).
#[derive(Clone, Debug)]
pub(super) struct BatchOp {
    pub method: &'static str,
    pub path: String,
    pub if_match: Option<String>,
    pub body: Option<Value>,
}

impl BatchOp {
    pub fn get(path: String) -> Self {
        Self {
            method: "GET",
            path,
            if_match: None,
            body: None,
        }
    }

    pub fn post(path: String, body: Option<Value>) -> Self {
        Self {
            method: "POST",
            path,
            if_match: None,
            body,
        }
    }

    /// BC requires `If-Match` on every PATCH inside a batch too (gotcha 6).
    pub fn patch(path: String, etag: &str, body: Value) -> Self {
        Self {
            method: "PATCH",
            path,
            if_match: Some(etag.to_string()),
            body: Some(body),
        }
    }

    pub fn delete(path: String, etag: &str) -> Self {
        Self {
            method: "DELETE",
            path,
            if_match: Some(etag.to_string()),
            body: None,
        }
    }
}

#[derive(Debug, Deserialize)]
struct BatchBody {
    responses: Vec<BatchItem>,
}

#[derive(Debug, Deserialize)]
struct BatchItem {
    status: u16,
    #[serde(default)]
    headers: serde_json::Map<String, Value>,
    #[serde(default)]
    body: Option<Value>,
}

impl BatchItem {
    /// An operation's own `Retry-After` (seconds), header names compared case-insensitively.
    fn retry_after(&self) -> Option<std::time::Duration> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, v)| {
                v.as_str()
                    .map(str::to_owned)
                    .or_else(|| v.as_u64().map(|n| n.to_string()))
            })
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(std::time::Duration::from_secs)
    }
}

/// One operation's answer.
#[derive(Debug)]
pub(super) struct BatchAnswer {
    pub status: u16,
    pub body: Option<Value>,
    /// The operation's `Retry-After`, when the server sent one with its answer.
    retry_after: Option<std::time::Duration>,
    /// The operation, for error texts.
    method: &'static str,
    url: String,
}

impl BatchAnswer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The operation's failure as the error a single request would have given (BC's code and
    /// message in the body), so callers treat both alike.
    pub fn error(&self) -> BcError {
        BcError::Http(HttpError::Status {
            method: self.method.to_string(),
            url: self.url.clone(),
            status: self.status,
            body: self.body.as_ref().map(Value::to_string).unwrap_or_default(),
            retry_after: self.retry_after,
        })
    }

    /// The operation's entity, or its failure.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, BcError> {
        if !self.is_success() {
            return Err(self.error());
        }
        serde_json::from_value(self.body.clone().unwrap_or(Value::Null)).map_err(|e| {
            BcError::Http(HttpError::Decode {
                url: self.url.clone(),
                message: e.to_string(),
            })
        })
    }
}

impl BcClient {
    /// Sends `ops` in one `$batch` (one round trip, `ops.len()` requests of budget); with
    /// `snapshot`, all or nothing. The answers come back in the order of `ops`. An envelope that
    /// fails (429, 5xx, a lost answer) is an error like any request's: with `snapshot` none of
    /// the operations took effect unless the error may have succeeded.
    pub(super) async fn batch(
        &self,
        ops: &[BatchOp],
        snapshot: bool,
    ) -> Result<Vec<BatchAnswer>, BcError> {
        assert!(
            !ops.is_empty() && ops.len() <= MAX_BATCH_OPERATIONS,
            "a batch holds 1 to {MAX_BATCH_OPERATIONS} operations"
        );
        let company_rel = format!("companies({})", self.company_id());
        let requests: Vec<Value> = ops
            .iter()
            .enumerate()
            .map(|(i, op)| {
                let mut headers = serde_json::Map::new();
                if op.body.is_some() || op.method == "POST" {
                    headers.insert("Content-Type".into(), json!("application/json"));
                }
                if let Some(tag) = &op.if_match {
                    headers.insert("If-Match".into(), json!(tag));
                }
                let mut r = json!({
                    "method": op.method,
                    "id": (i + 1).to_string(),
                    "url": format!("{company_rel}/{}", op.path),
                    "headers": headers,
                });
                if let Some(b) = &op.body {
                    r["body"] = b.clone();
                }
                r
            })
            .collect();
        let mut req = ApiRequest::post_json(
            format!("{}/$batch", self.root),
            &json!({ "requests": requests }),
        );
        if snapshot {
            req = req.header(HeaderName::from_static("isolation"), "snapshot");
        }
        let resp = self.api.send_costing(&req, ops.len() as u32).await?;
        let body: BatchBody = resp.json()?;
        if body.responses.len() != ops.len() {
            return Err(BcError::Http(HttpError::Decode {
                url: format!("{}/$batch", self.root),
                message: format!(
                    "{} answers to {} operations",
                    body.responses.len(),
                    ops.len()
                ),
            }));
        }
        Ok(body
            .responses
            .into_iter()
            .zip(ops)
            .map(|(r, op)| {
                let retry_after = r.retry_after();
                // An operation throttled or told to wait stops the whole client, as a single
                // request's answer would (every worker of this app user waits).
                self.api.server_answered(r.status, retry_after);
                BatchAnswer {
                    status: r.status,
                    body: r.body,
                    retry_after,
                    method: op.method,
                    url: self.url(&op.path),
                }
            })
            .collect())
    }
}
