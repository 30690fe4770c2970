//! `/v1/accountingDocuments` (§3.4–§3.6, §3.10): the redirected list with its continuation
//! header, and the processing-status state machine
//! `WaitingForTransfer --ack--> TransferInProgress --transfer response--> Transferred |
//! TransferFailed`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::Value;

use super::model::{Cursor, Object};
use super::{BaswareSim, error};
use crate::query::parse_pairs;

/// The continuation token header, request and response (§3.4; case differs in the doc).
pub const CONTINUATION_HEADER: &str = "x-amz-meta-continuationtoken";

/// Where the list's 302 points: an object-store-like URL (§3.3 [U]: presumably pre-signed S3).
pub(crate) const OBJECT_PREFIX: &str = "/_exports/";
pub(crate) const OBJECT_ROUTE: &str = "/_exports/{key}";

/// §3.4: `pageSize` 1..100, default 100, for accounting documents.
const MAX_PAGE: usize = 100;

/// Query parameters the list takes (§3.4, §3.5).
const LIST_PARAMS: &[&str] = &[
    "ProcessingStatus",
    "pageSize",
    "companyCode",
    "lastUpdated",
    "p2pProcessingMode",
];

fn bad_parameter(message: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "VALIDATION",
        "PARAMETER_VALIDATION_ERROR",
        message,
    )
}

fn unknown_invoice(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "VALIDATION",
        "ENTITY_NOT_FOUND",
        &format!("Accounting document {id} not found."),
    )
}

pub(crate) async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "VALIDATION",
        "METHOD_NOT_ALLOWED",
        "Method not allowed.",
    )
}

/// `GET /v1/accountingDocuments`: answers 302 to the page's object (§3.3), or 404 when there is
/// nothing (§3.3: "request succeeded, no records").
pub(crate) async fn list(
    State(sim): State<BaswareSim>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let mut query = parse_pairs(raw.as_deref());
    // Doubt: an unknown parameter is not documented; it is refused, so a misspelt filter
    // (`processingStatus`) fails in tests instead of silently listing every status.
    if let Some((k, _)) = query
        .iter()
        .find(|(k, _)| !LIST_PARAMS.contains(&k.as_str()))
    {
        return bad_parameter(&format!("Unknown query parameter '{k}'."));
    }
    query.sort();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let page_size = match param("pageSize").map(|v| v.parse::<usize>()) {
        None => MAX_PAGE,
        Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => return bad_parameter("pageSize must be between 1 and 100."),
    };
    let last_updated = match param("lastUpdated").map(|v| v.parse::<chrono::DateTime<Utc>>()) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => return bad_parameter("lastUpdated must be an ISO-8601 date-time."),
    };
    let status = param("ProcessingStatus");
    let company = param("companyCode");
    let mut data = sim.inner.data.lock().unwrap();
    let after_seq = match headers
        .get(CONTINUATION_HEADER)
        .map(|v| v.to_str().unwrap_or_default().to_owned())
    {
        None => 0,
        Some(token) => match data.cursors.get(&token) {
            // §3.4: "you must include the same query parameters that were used when getting the
            // first page".
            Some(c) if c.query == query => c.after_seq,
            Some(_) => {
                return bad_parameter(
                    "The continuation token was issued for other query parameters.",
                );
            }
            None => return bad_parameter("Unknown continuation token."),
        },
    };
    let matching: Vec<usize> = data
        .docs
        .iter()
        .enumerate()
        .filter(|(_, d)| d.seq > after_seq)
        .filter(|(_, d)| status.as_deref().is_none_or(|s| d.status == s))
        .filter(|(_, d)| company.as_deref().is_none_or(|c| d.new.company_code == c))
        .filter(|(_, d)| last_updated.is_none_or(|t| d.last_updated > t))
        .map(|(i, _)| i)
        .collect();
    if matching.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "VALIDATION",
            "ENTITY_NOT_FOUND",
            "No accounting documents found.",
        );
    }
    let served = &matching[..matching.len().min(page_size)];
    let cfg = &sim.inner.cfg;
    let docs: Vec<Value> = served
        .iter()
        .map(|&i| {
            data.docs[i].render_signed(
                &cfg.credit_note_type_code,
                cfg.invoice_lines_enabled,
                cfg.credit_notes_negative,
            )
        })
        .collect();
    let last_seq = data.docs[*served.last().expect("non-empty")].seq;
    // Doubt: how long a token lives is not documented; it is kept for the simulator's
    // lifetime and may be replayed (a client retrying a lost page), but only with the query
    // it was issued for.
    let continuation = (matching.len() > served.len()).then(|| {
        let token = uuid::Uuid::new_v4().to_string();
        data.cursors.insert(
            token.clone(),
            Cursor {
                query: query.clone(),
                after_seq: last_seq,
            },
        );
        token
    });
    let body = serde_json::to_vec(&serde_json::json!({ "accountingDocuments": docs }))
        .expect("JSON value serializes");
    let key = hex::encode(rand::random::<[u8; 16]>());
    data.objects
        .insert(key.clone(), Object { body, continuation });
    drop(data);
    redirect_to(&sim, &key)
}

/// The redirect target. Refuses a request carrying `Authorization` (§3.3: "must not send
/// `Authorization` on the redirected request"), the way S3 refuses a pre-signed URL with a
/// second auth mechanism: 400, S3's XML error. Carries the continuation token as object
/// metadata (`x-amz-meta-*`) — Doubt: the doc does not say whether the header rides on the 302
/// or the final answer; `x-amz-meta-*` is object metadata, so only the final answer has it.
pub(crate) async fn redirected_object(
    State(sim): State<BaswareSim>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    if headers.contains_key("authorization") {
        let mut resp = (
            StatusCode::BAD_REQUEST,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidArgument</Code>\
             <Message>Only one auth mechanism allowed; only the X-Amz-Algorithm query \
             parameter, Signature query string parameter or the Authorization header should \
             be specified</Message></Error>",
        )
            .into_response();
        resp.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/xml"));
        return resp;
    }
    let data = sim.inner.data.lock().unwrap();
    let Some(obj) = data.objects.get(&key) else {
        return (
            StatusCode::FORBIDDEN,
            "<Error><Code>AccessDenied</Code></Error>",
        )
            .into_response();
    };
    let mut resp = (StatusCode::OK, obj.body.clone()).into_response();
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    if let Some(token) = &obj.continuation {
        // §3.4 writes the response header `X-amz-meta-continuationToken`.
        resp.headers_mut().insert(
            "X-amz-meta-continuationToken",
            HeaderValue::from_str(token).expect("uuid"),
        );
    }
    resp
}

/// `GET /v1/accountingDocuments/{invoiceId}`. Doubt: whether the single GET may also redirect
/// is not said ("some GETs"); it answers directly unless `redirect_single` is on.
pub(crate) async fn show(State(sim): State<BaswareSim>, Path(id): Path<String>) -> Response {
    let mut data = sim.inner.data.lock().unwrap();
    let cfg = &sim.inner.cfg;
    let Some(d) = data.doc(&id) else {
        return unknown_invoice(&id);
    };
    let body = d.render_signed(
        &cfg.credit_note_type_code,
        cfg.invoice_lines_enabled,
        cfg.credit_notes_negative,
    );
    if !cfg.redirect_single {
        return Json(body).into_response();
    }
    let body = serde_json::to_vec(&body).expect("JSON value serializes");
    let key = hex::encode(rand::random::<[u8; 16]>());
    data.objects.insert(
        key.clone(),
        Object {
            body,
            continuation: None,
        },
    );
    drop(data);
    redirect_to(&sim, &key)
}

/// 302 to the stored object `key`, at a pre-signed-looking URL.
fn redirect_to(sim: &BaswareSim, key: &str) -> Response {
    let location = format!(
        "{}{OBJECT_PREFIX}{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=300&X-Amz-Signature={}",
        sim.base_url(),
        hex::encode(rand::random::<[u8; 16]>())
    );
    let mut resp = StatusCode::FOUND.into_response();
    resp.headers_mut().insert(
        "location",
        HeaderValue::from_str(&location).expect("ASCII URL"),
    );
    resp
}

/// `POST …/{invoiceId}/acknowledge`: `WaitingForTransfer → TransferInProgress`, 200 with a JSON
/// string; 405 when already acknowledged (§3.5); 404 unknown. Doubt: a document in any other
/// status (Transferred, TransferFailed) also answers 405, the only refusal documented.
pub(crate) async fn acknowledge(State(sim): State<BaswareSim>, Path(id): Path<String>) -> Response {
    let mut data = sim.inner.data.lock().unwrap();
    let Some(doc) = data.doc_mut(&id) else {
        return unknown_invoice(&id);
    };
    if doc.status != "WaitingForTransfer" {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "BUSINESS",
            "METHOD_NOT_ALLOWED",
            &format!("Accounting document {id} is {} already.", doc.status),
        );
    }
    doc.status = "TransferInProgress".into();
    doc.acknowledges += 1;
    doc.last_updated = Utc::now();
    Json(Value::String("Acknowledged".into())).into_response()
}

/// Reads a JSON object body and checks the required fields and lengths (§3.6).
fn entity(
    body: &Bytes,
    required: &[&str],
    max_len: &[(&str, usize)],
) -> Result<serde_json::Map<String, Value>, Box<Response>> {
    let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body) else {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "VALIDATION",
            "SCHEMA_VALIDATION_ERROR",
            "A JSON object is expected.",
        )));
    };
    for f in required {
        if m.get(*f).is_none_or(Value::is_null) {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "VALIDATION",
                "SCHEMA_VALIDATION_ERROR",
                &format!("'{f}' is required."),
            )));
        }
    }
    for (f, max) in max_len {
        if let Some(v) = m.get(*f)
            && !v.is_null()
            && v.as_str().is_none_or(|s| s.chars().count() > *max)
        {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "VALIDATION",
                "SCHEMA_VALIDATION_ERROR",
                &format!("'{f}' must be a string of at most {max} characters."),
            )));
        }
    }
    for f in ["success", "paymentBlock"] {
        if m.get(f).is_some_and(|v| !v.is_boolean()) {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "VALIDATION",
                "SCHEMA_VALIDATION_ERROR",
                &format!("'{f}' must be a boolean."),
            )));
        }
    }
    Ok(m)
}

fn conflict(message: &str) -> Response {
    error(
        StatusCode::CONFLICT,
        "BUSINESS",
        "CONFLICT_IN_POST",
        message,
    )
}

/// `POST …/{invoiceId}/transferResponses` (TransferResponseEntity, §3.6). Accepted only while
/// the document is `TransferInProgress`: §3.5 forbids it when `Transferred` and forbids sending
/// it concurrently with the acknowledge. Doubt: the status for these refusals is not documented
/// (400 is the only client error listed), and whether `TransferFailed` may take another response
/// is not said: refused too, the stricter reading. A repeated `externalCode` is 409 (Doubt:
/// documented for payment responses only).
pub(crate) async fn transfer_response(
    State(sim): State<BaswareSim>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let m = match entity(
        &body,
        &["externalCode", "success", "responseMessage", "paymentBlock"],
        &[
            ("externalCode", 36),
            ("responseMessage", 250),
            ("sourceSystem", 32),
            ("voucherNumber1", 25),
            ("voucherNumber2", 25),
        ],
    ) {
        Ok(m) => m,
        Err(r) => return *r,
    };
    let mut data = sim.inner.data.lock().unwrap();
    let Some(doc) = data.doc_mut(&id) else {
        return unknown_invoice(&id);
    };
    if doc
        .transfer_responses
        .iter()
        .any(|r| r["externalCode"] == m["externalCode"])
    {
        return conflict("A transfer response with this externalCode exists.");
    }
    if doc.status != "TransferInProgress" {
        return error(
            StatusCode::BAD_REQUEST,
            "BUSINESS",
            "DATA_VALIDATION_FAILED",
            &format!(
                "Accounting document {id} is {}: a transfer response is accepted only in \
                 TransferInProgress.",
                doc.status
            ),
        );
    }
    let success = m["success"].as_bool().unwrap_or(false);
    doc.status = if success {
        // §3.5: voucher numbers are saved only when success = true.
        doc.voucher_number = m
            .get("voucherNumber1")
            .and_then(Value::as_str)
            .map(str::to_owned);
        "Transferred".into()
    } else {
        "TransferFailed".into()
    };
    doc.last_updated = Utc::now();
    let entity = Value::Object(m);
    doc.transfer_responses.push(entity.clone());
    Json(entity).into_response()
}

/// `POST …/{invoiceId}/paymentResponses` (PaymentResponseEntity, §3.6): 409 on a repeated
/// `externalCode`. Doubt: a payment on a document not yet `Transferred` is not described; it is
/// refused (400). Doubt: whether a payment moves the document to `Paid` is not described; the
/// status is left as it is.
pub(crate) async fn payment_response(
    State(sim): State<BaswareSim>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let m = match entity(
        &body,
        &["externalCode", "success", "paymentBlock"],
        &[
            ("externalCode", 36),
            ("sourceSystem", 32),
            ("paymentMessage", 100),
        ],
    ) {
        Ok(m) => m,
        Err(r) => return *r,
    };
    let mut data = sim.inner.data.lock().unwrap();
    let Some(doc) = data.doc_mut(&id) else {
        return unknown_invoice(&id);
    };
    if doc
        .payment_responses
        .iter()
        .any(|r| r["externalCode"] == m["externalCode"])
    {
        return conflict("A payment response with this externalCode exists.");
    }
    if doc.status != "Transferred" {
        return error(
            StatusCode::BAD_REQUEST,
            "BUSINESS",
            "DATA_VALIDATION_FAILED",
            &format!(
                "Accounting document {id} is {}: a payment response needs Transferred.",
                doc.status
            ),
        );
    }
    doc.last_updated = Utc::now();
    let entity = Value::Object(m);
    doc.payment_responses.push(entity.clone());
    Json(entity).into_response()
}
