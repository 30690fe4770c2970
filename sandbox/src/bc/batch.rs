//! OData JSON `$batch` (business-central.md A5, A4): `POST {api root}/$batch` with
//! `{"requests":[{"method","id","url","headers","body"}]}`, at most 100 operations, answered
//! 200 with one `responses[i]` per operation in order (status, headers, body).
//!
//! - `Isolation: snapshot` makes the batch one transaction (BC ≥ 17.1, `use-odata-batch.md`):
//!   when an operation fails, every change of the batch is rolled back. The simulator answers
//!   the failing operation with its error and every other one with 424 Failed Dependency
//!   (OData 4.01 JSON batch's status for an operation that did not take effect); BC's exact
//!   per-operation statuses after a rollback are not in the fact sheet [UNCONFIRMED], so the
//!   connector treats any failure in a snapshot batch as "nothing of it happened".
//! - Without the header each operation commits on its own, in order.
//! - Echoed `id`s: BC's documented example answers `"id": null` [CONFLICT with OData], so the
//!   simulator echoes nothing and clients correlate by position.
//!
//! Rate budget: every operation counts as one request against the per-user budget. Two
//! readings exist (the envelope is one request; each operation is one), and the docs are silent;
//! the simulator takes the stricter one, so a batch of N operations costs N of the 6,000 per
//! five minutes (the envelope is not counted on top: it does no work of its own). A batch that
//! does not fit in what is left of the window is refused whole with 429, before any operation
//! runs. Concurrency: the batch holds one of the five slots while it runs, as BC runs a batch's
//! operations one after another.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::BcSim;
use super::errors::{self, ApiError, ApiResult};
use super::handlers::{dispatch, prepare};
use crate::faults::FaultKind;

/// A4: "Max $batch size: 100 operations".
pub(crate) const MAX_OPERATIONS: usize = 100;

/// Characters a batch operation's `url` may hold that a URI may not (a `$filter` written as
/// text): encoded before the path is parsed, as a client's HTTP library would.
const URL_UNSAFE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^');

#[derive(Clone)]
struct Operation {
    method: Method,
    url: String,
    headers: HeaderMap,
    body: Bytes,
}

fn parse(body: &Bytes) -> ApiResult<Vec<Operation>> {
    let v: Value = serde_json::from_slice(body).map_err(|_| ApiError::invalid_body())?;
    let requests = v
        .get("requests")
        .and_then(Value::as_array)
        .ok_or_else(ApiError::invalid_body)?;
    if requests.len() > MAX_OPERATIONS {
        // Doubt: BC's code and words for an oversized batch are not in the fact sheet.
        return Err(ApiError::bad(
            "BadRequest",
            format!(
                "The batch request contains {} operations; the maximum is {MAX_OPERATIONS}.",
                requests.len()
            ),
        ));
    }
    requests
        .iter()
        .map(|r| {
            let method = r
                .get("method")
                .and_then(Value::as_str)
                .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
                .ok_or_else(ApiError::invalid_body)?;
            let url = r
                .get("url")
                .and_then(Value::as_str)
                .ok_or_else(ApiError::invalid_body)?
                .to_owned();
            let mut headers = HeaderMap::new();
            if let Some(h) = r.get("headers").and_then(Value::as_object) {
                for (k, v) in h {
                    if let (Ok(name), Some(Ok(value))) = (
                        HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()),
                        v.as_str().map(HeaderValue::from_str),
                    ) {
                        headers.insert(name, value);
                    }
                }
            }
            let body = match r.get("body") {
                None | Some(Value::Null) => Bytes::new(),
                Some(b) => Bytes::from(serde_json::to_vec(b).expect("a JSON value serialises")),
            };
            Ok(Operation {
                method,
                url,
                headers,
                body,
            })
        })
        .collect()
}

/// The path of an operation's `url`: relative to the API root (A5), or absolute.
fn operation_uri(sim: &BcSim, url: &str) -> ApiResult<Uri> {
    let cfg = sim.config();
    let rel = if let Some(rest) = url.strip_prefix(&sim.api_root()) {
        rest.trim_start_matches('/').to_owned()
    } else {
        url.trim_start_matches('/').to_owned()
    };
    let path = format!("/v2.0/{}/{}/api/v2.0/{rel}", cfg.tenant, cfg.environment);
    percent_encoding::utf8_percent_encode(&path, URL_UNSAFE)
        .to_string()
        .parse::<Uri>()
        .map_err(|_| ApiError::syntax())
}

/// An operation's answer as the batch response carries it.
fn answer(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    let mut headers = Map::new();
    for name in [
        "content-type",
        "odata-version",
        "etag",
        "location",
        "retry-after",
    ] {
        if let Some(v) = resp.headers().get(name).and_then(|v| v.to_str().ok()) {
            headers.insert(name.into(), json!(v));
        }
    }
    // The simulator's bodies are whole in memory: the body future is ready at its first poll.
    let mut fut = std::pin::pin!(axum::body::to_bytes(resp.into_body(), usize::MAX));
    let bytes = match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(b)) => b,
        _ => Bytes::new(),
    };
    let mut item = Map::new();
    item.insert("id".into(), Value::Null);
    item.insert("status".into(), json!(status.as_u16()));
    item.insert("headers".into(), Value::Object(headers));
    if !bytes.is_empty()
        && let Ok(body) = serde_json::from_slice::<Value>(&bytes)
    {
        item.insert("body".into(), body);
    }
    (status, Value::Object(item))
}

fn with_retry_after(mut resp: Response, secs: Option<u64>) -> Response {
    if let Some(s) = secs {
        resp.headers_mut()
            .insert("retry-after", HeaderValue::from(s));
    }
    resp
}

fn failed_dependency() -> Value {
    json!({
        "id": null,
        "status": 424,
        "headers": {"content-type": "application/json; odata.metadata=minimal"},
        "body": {"error": {"code": "FailedDependency",
            "message": "Not applied: another operation of this snapshot batch failed and the batch was rolled back."}}
    })
}

pub(super) async fn run(sim: &BcSim, headers: &HeaderMap, body: &Bytes) -> ApiResult<Response> {
    let ops = parse(body)?;
    // The envelope took one unit when it was admitted; each further operation takes one more.
    if !sim.spend_extra(ops.len().saturating_sub(1)) {
        return Ok(sim.too_many());
    }
    let snapshot = headers
        .get("isolation")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("snapshot"));
    // Injected faults reach the operations of a batch as they reach single requests (a rule on
    // "Microsoft.NAV.post" fires whether the post comes alone or batched), taken in order now:
    // a status is that operation's answer, without running it; a lost response runs it and
    // loses the answer of the whole batch (the client cannot tell what happened); a hang
    // delays the whole batch, which then runs on its own task (committed even if the client
    // gave up meanwhile, as on a real server).
    let faults: Vec<Option<FaultKind>> = ops
        .iter()
        .map(|op| {
            let uri = operation_uri(sim, &op.url).ok()?;
            let path = percent_encoding::percent_decode_str(uri.path())
                .decode_utf8_lossy()
                .into_owned();
            sim.inner.faults.take(op.method.as_str(), &path)
        })
        .collect();
    // A raw page (a proxy, gateway or firewall in front of BC) answers the whole HTTP request:
    // it cannot sit inside a batch answer, so it replaces the batch's, and nothing runs.
    if let Some(FaultKind::RawBody {
        status,
        content_type,
        body,
    }) = faults
        .iter()
        .flatten()
        .find(|f| matches!(f, FaultKind::RawBody { .. }))
        .cloned()
    {
        return Ok((
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            [(axum::http::header::CONTENT_TYPE, content_type)],
            body,
        )
            .into_response());
    }
    let hang = faults
        .iter()
        .filter_map(|f| match f {
            Some(FaultKind::Hang { millis }) => Some(*millis),
            _ => None,
        })
        .max();
    let Some(millis) = hang else {
        return execute(sim, snapshot, &ops, faults, 0);
    };
    let sim = sim.clone();
    let task = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
        execute(&sim, snapshot, &ops, faults, millis)
    });
    task.await.unwrap_or_else(|_| {
        Ok(errors::fault_body(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Handler panicked.",
        ))
    })
}

fn execute(
    sim: &BcSim,
    snapshot: bool,
    ops: &[Operation],
    faults: Vec<Option<FaultKind>>,
    delayed_ms: u64,
) -> ApiResult<Response> {
    let mut store = sim.inner.store.lock().unwrap();
    let before = snapshot.then(|| store.clone());
    let mut responses: Vec<Value> = Vec::with_capacity(ops.len());
    let mut failed_at: Option<usize> = None;
    let mut lose_answer = false;
    for (i, (op, fault)) in ops.iter().zip(faults).enumerate() {
        let uri = operation_uri(sim, &op.url);
        let injected = match fault {
            Some(FaultKind::Status(code)) => Some(errors::fault_body(
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "Injected fault.",
            )),
            Some(FaultKind::TooManyRequests { retry_after }) => {
                Some(with_retry_after(sim.too_many(), retry_after))
            }
            Some(FaultKind::Unavailable { retry_after }) => Some(with_retry_after(
                errors::fault_body(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable."),
                retry_after,
            )),
            Some(FaultKind::RawBody { status, .. }) => Some(errors::fault_body(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "Injected fault.",
            )),
            Some(FaultKind::LoseResponse) => {
                lose_answer = true;
                None
            }
            Some(FaultKind::Hang { .. }) | None => None,
        };
        let resp = match injected {
            Some(r) => r,
            None => match uri.and_then(|uri| {
                let (ctx, base) = prepare(sim, &uri, &op.headers)?;
                if ctx.rel == "$batch" {
                    return Err(ApiError::dialog("A $batch cannot hold another $batch."));
                }
                dispatch(&mut store, &op.method, &op.headers, &op.body, ctx, &base)
            }) {
                Ok(r) => r,
                Err(e) => e.into_response(),
            },
        };
        let (status, item) = answer(resp);
        sim.inner
            .batch_ops
            .lock()
            .unwrap()
            .push(super::BcBatchOpView {
                method: op.method.to_string(),
                url: op.url.clone(),
                if_match: op
                    .headers
                    .get("if-match")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                status: status.as_u16(),
                delayed_ms,
            });
        responses.push(item);
        if snapshot && !status.is_success() {
            failed_at = Some(i);
            break;
        }
    }
    if let (Some(at), Some(before)) = (failed_at, before) {
        *store = before;
        let failing = responses.pop().expect("the failing answer");
        responses = (0..ops.len())
            .map(|i| {
                if i == at {
                    failing.clone()
                } else {
                    failed_dependency()
                }
            })
            .collect();
    }
    drop(store);
    if lose_answer {
        return Ok(errors::fault_body(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Injected fault: response lost.",
        ));
    }
    let mut resp = (
        StatusCode::OK,
        axum::Json(json!({ "responses": responses })),
    )
        .into_response();
    resp.headers_mut()
        .insert("odata-version", HeaderValue::from_static("4.0"));
    Ok(resp)
}
