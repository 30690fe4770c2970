//! The Service Layer's routes: `/b1s/{v1|v2}/…` parsed by hand, because OData keys sit inside
//! the path segment (`PurchaseOrders(12)`, `BusinessPartners('V10000')`).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::B1Sim;
use super::errors::{NO_MATCHING_RECORDS, Protocol, b1_error};
use super::filter::{self, Lit};
use super::session;
use super::store::{BusinessPartner, DocKind};
use crate::query::parse_pairs;

/// A request's target: an entity set, an optional key, an optional action.
struct Target {
    set: String,
    key: Option<String>,
    action: Option<String>,
}

fn parse_target(rest: &str) -> Option<Target> {
    let (head, action) = match rest.split_once('/') {
        Some((h, a)) => (h, Some(a.to_string())),
        None => (rest, None),
    };
    let (set, key) = match head.split_once('(') {
        Some((set, k)) => {
            let k = k.strip_suffix(')')?;
            // A string key is quoted (`'V10000'`, `''` for a quote); an integer key is bare.
            let k = match k.strip_prefix('\'').and_then(|k| k.strip_suffix('\'')) {
                Some(inner) => inner.replace("''", "'"),
                None => k.to_string(),
            };
            (set.to_string(), Some(k))
        }
        None => (head.to_string(), None),
    };
    Some(Target { set, key, action })
}

pub(crate) async fn dispatch(
    State(sim): State<B1Sim>,
    Path((version, rest)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let Some(p) = Protocol::from_segment(&version) else {
        return b1_error(
            Protocol::V1,
            StatusCode::NOT_FOUND,
            -1,
            "Resource not found",
        );
    };
    // §4.7.3: `Expect: 100-continue` makes the Apache front-end answer an empty 500.
    if headers
        .get("expect")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let rest = percent_encoding::percent_decode_str(&rest)
        .decode_utf8_lossy()
        .into_owned();
    match (&method, rest.as_str()) {
        (&Method::POST, "Login") => return session::login(&sim, p, &body),
        (&Method::POST, "Logout") => return session::logout(&sim, p, &headers),
        _ => {}
    }
    if let Some(resp) = session::refusal(&sim, p, &headers) {
        return resp;
    }
    let Some(t) = parse_target(&rest) else {
        return b1_error(p, StatusCode::BAD_REQUEST, -1, "Invalid resource path");
    };
    let now = sim.now();
    match (method, t.set.as_str(), t.key, t.action.as_deref()) {
        (Method::GET, set, None, None) => list(&sim, p, set, &headers, query.as_deref()),
        (Method::GET, set, Some(key), None) => show(&sim, p, set, &key),
        (Method::POST, set, Some(key), Some(action)) => match DocKind::from_set(set) {
            Some(kind) => {
                let Ok(entry) = key.parse::<i64>() else {
                    return b1_error(p, StatusCode::BAD_REQUEST, -1, "Invalid key");
                };
                match sim.document_action(kind, entry, action, now) {
                    Ok(()) => StatusCode::NO_CONTENT.into_response(),
                    Err((status, code, msg)) => b1_error(p, status, code, &msg),
                }
            }
            None => b1_error(p, StatusCode::NOT_FOUND, -1, "Resource not found"),
        },
        (Method::POST, "BusinessPartners", None, None) => create_partner(&sim, p, &headers, &body),
        (Method::PATCH, "BusinessPartners", Some(key), None) => patch_partner(&sim, p, &key, &body),
        (Method::DELETE, "BusinessPartners", Some(key), None) => delete_partner(&sim, p, &key),
        (Method::POST, set, None, None) if DocKind::from_set(set).is_some() => {
            let kind = DocKind::from_set(set).expect("checked");
            match sim.create_document_from_json(kind, &body) {
                Ok(entry) => {
                    let d = sim.inner.data.lock().unwrap();
                    let doc = &d.documents[&(kind, entry)];
                    (
                        StatusCode::CREATED,
                        axum::Json(doc.render(p, &sim.inner.cfg.local_currency)),
                    )
                        .into_response()
                }
                Err((status, code, msg)) => b1_error(p, status, code, &msg),
            }
        }
        _ => b1_error(p, StatusCode::METHOD_NOT_ALLOWED, -1, "Method not allowed"),
    }
}

/// Page size: `B1S-PageSize: N` (B1SLayer) or `Prefer: odata.maxpagesize=N` (§4.4); default 20.
fn page_size(sim: &B1Sim, headers: &HeaderMap) -> (usize, bool) {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if let Some(n) = header("b1s-pagesize").and_then(|v| v.trim().parse().ok()) {
        return (n, false);
    }
    let prefer = header("prefer").and_then(|v| {
        v.split(',')
            .find_map(|p| p.trim().strip_prefix("odata.maxpagesize="))
            .and_then(|n| n.trim().parse().ok())
    });
    match prefer {
        Some(n) => (n, true),
        None => (sim.inner.cfg.default_page_size, false),
    }
}

fn list(sim: &B1Sim, p: Protocol, set: &str, headers: &HeaderMap, query: Option<&str>) -> Response {
    let pairs = parse_pairs(query);
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let filter = match get("$filter").map(filter::parse).transpose() {
        Ok(f) => f,
        Err(msg) => return b1_error(p, StatusCode::BAD_REQUEST, -1, &msg),
    };
    let Some(known) = super::store::filterable(set) else {
        return b1_error(p, StatusCode::NOT_FOUND, -1, "Resource not found");
    };
    if let Some(bad) = filter
        .iter()
        .flat_map(|f| f.fields())
        .find(|f| !known.contains(f))
    {
        return b1_error(
            p,
            StatusCode::BAD_REQUEST,
            -1,
            &format!("Property '{bad}' is invalid"),
        );
    }
    let skip: usize = match get("$skip").map(str::parse).transpose() {
        Ok(s) => s.unwrap_or(0),
        Err(_) => return b1_error(p, StatusCode::BAD_REQUEST, -1, "Invalid $skip"),
    };
    // Rows are served in key order; ordering by anything else is not simulated and refused,
    // so a client relying on it finds out here.
    if let Some(o) = get("$orderby") {
        let o = o.trim();
        if !matches!(o, "DocEntry" | "DocEntry asc" | "CardCode" | "CardCode asc") {
            return b1_error(p, StatusCode::BAD_REQUEST, -1, "Unsupported $orderby");
        }
    }
    let local = sim.inner.cfg.local_currency.clone();
    let rows: Result<Vec<Value>, String> = {
        let d = sim.inner.data.lock().unwrap();
        let keep = |field: &dyn Fn(&str) -> Option<Lit>| match &filter {
            Some(f) => f.matches(field),
            None => Ok(true),
        };
        let mut out = Vec::new();
        let result: Result<(), String> = (|| {
            match set {
                "PurchaseOrders" | "PurchaseInvoices" => {
                    let kind = DocKind::from_set(set).expect("known");
                    for ((k, _), doc) in d.documents.iter() {
                        if *k == kind && keep(&|n| doc.field(n))? {
                            out.push(doc.render(p, &local));
                        }
                    }
                }
                "BusinessPartners" => {
                    for bp in d.partners.values() {
                        if keep(&|n| bp.field(n))? {
                            out.push(bp.render(p));
                        }
                    }
                }
                "VendorPayments" => {
                    for pay in d.payments.values() {
                        if keep(&|n| pay.field(n))? {
                            out.push(pay.render(p, &d.documents));
                        }
                    }
                }
                _ => return Err("__unknown__".into()),
            }
            Ok(())
        })();
        result.map(|_| out)
    };
    let rows = match rows {
        Ok(r) => r,
        Err(e) if e == "__unknown__" => {
            return b1_error(p, StatusCode::NOT_FOUND, -1, "Resource not found");
        }
        Err(e) => return b1_error(p, StatusCode::BAD_REQUEST, -1, &e),
    };
    let (size, preferred) = page_size(sim, headers);
    let size = size.max(1);
    let page: Vec<Value> = rows.iter().skip(skip).take(size).cloned().collect();
    let mut body = Map::new();
    if p == Protocol::V1 {
        body.insert("odata.metadata".into(), json!(format!("$metadata#{set}")));
    }
    body.insert("value".into(), Value::Array(page));
    if skip + size < rows.len() {
        // §4.4: the link is relative to the service root (`Set?…&$skip=N`). Its query is
        // written as B1 writes it, NOT percent-encoded (spaces and quotes as they are): a client
        // must encode it before sending, not paste it into a URL.
        let mut q: Vec<String> = pairs
            .iter()
            .filter(|(k, _)| k != "$skip")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        q.push(format!("$skip={}", skip + size));
        body.insert(
            p.next_link_key().into(),
            json!(format!("{set}?{}", q.join("&"))),
        );
    }
    let mut resp = (StatusCode::OK, axum::Json(Value::Object(body))).into_response();
    if preferred {
        // §4.4 [U]: echo what was applied, as OData servers do.
        resp.headers_mut().insert(
            "preference-applied",
            format!("odata.maxpagesize={size}").parse().expect("ascii"),
        );
    }
    resp
}

fn show(sim: &B1Sim, p: Protocol, set: &str, key: &str) -> Response {
    let d = sim.inner.data.lock().unwrap();
    let found = match set {
        "PurchaseOrders" | "PurchaseInvoices" => key.parse::<i64>().ok().and_then(|e| {
            d.documents
                .get(&(DocKind::from_set(set).expect("known"), e))
                .map(|doc| doc.render(p, &sim.inner.cfg.local_currency))
        }),
        "BusinessPartners" => d.partners.get(key).map(|bp| bp.render(p)),
        "VendorPayments" => key
            .parse::<i64>()
            .ok()
            .and_then(|e| d.payments.get(&e))
            .map(|pay| pay.render(p, &d.documents)),
        _ => return b1_error(p, StatusCode::NOT_FOUND, -1, "Resource not found"),
    };
    match found {
        Some(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        None => b1_error(
            p,
            StatusCode::NOT_FOUND,
            NO_MATCHING_RECORDS.0,
            NO_MATCHING_RECORDS.1,
        ),
    }
}

fn str_field(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

/// §4.8.4: `CardType` as the enum name (`cSupplier`) or the DB code (`S`).
fn card_type(v: &str) -> Option<&'static str> {
    match v {
        "cSupplier" | "S" => Some("cSupplier"),
        "cCustomer" | "C" => Some("cCustomer"),
        "cLid" | "L" => Some("cLid"),
        _ => None,
    }
}

/// The `BusinessPartner` properties this simulator models (and so accepts in a write).
const PARTNER_PROPERTIES: [&str; 11] = [
    "CardCode",
    "CardName",
    "CardType",
    "FederalTaxID",
    "Currency",
    "EmailAddress",
    "Phone1",
    "Valid",
    "CreationDate",
    "UpdateDate",
    "UpdateTime",
];

/// `OCRD.CardCode` is `nvarchar(15)`. Strict assumption [U]: the limit is in the DI/SDK table
/// definitions, not in sap-b1.md; a longer code is refused rather than cut.
const CARD_CODE_MAX: usize = 15;

/// A write naming a property the entity does not have is refused as a whole: sap-b1.md §4.5
/// ("UDFs not defined on the table … make SL reject the payload"). The message text is
/// invented (the observed one is not in the fact sheet); strict: nothing unknown is ignored.
fn unknown_property(p: Protocol, v: &Value) -> Option<Response> {
    let obj = v.as_object()?;
    let bad = obj
        .keys()
        .find(|k| !PARTNER_PROPERTIES.contains(&k.as_str()))?;
    Some(b1_error(
        p,
        StatusCode::BAD_REQUEST,
        -1000,
        &format!("Property '{bad}' of 'BusinessPartner' is invalid"),
    ))
}

fn create_partner(sim: &B1Sim, p: Protocol, headers: &HeaderMap, body: &[u8]) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return b1_error(p, StatusCode::BAD_REQUEST, -1, "Invalid JSON body");
    };
    if !v.is_object() {
        return b1_error(p, StatusCode::BAD_REQUEST, -1, "Invalid JSON body");
    }
    if let Some(refused) = unknown_property(p, &v) {
        return refused;
    }
    let (Some(code), Some(name)) = (str_field(&v, "CardCode"), str_field(&v, "CardName")) else {
        return b1_error(
            p,
            StatusCode::BAD_REQUEST,
            -1,
            "CardCode and CardName are required",
        );
    };
    if code.trim().is_empty() || code.chars().count() > CARD_CODE_MAX {
        return b1_error(
            p,
            StatusCode::BAD_REQUEST,
            -1,
            &format!("CardCode '{code}' must be 1 to {CARD_CODE_MAX} characters"),
        );
    }
    let Some(kind) = card_type(&str_field(&v, "CardType").unwrap_or_else(|| "cCustomer".into()))
    else {
        return b1_error(p, StatusCode::BAD_REQUEST, -1, "Invalid CardType");
    };
    let (date, time) = super::store::stamp(sim.now());
    let bp = BusinessPartner {
        card_code: code.clone(),
        card_name: name,
        card_type: kind.into(),
        federal_tax_id: str_field(&v, "FederalTaxID"),
        currency: str_field(&v, "Currency"),
        email: str_field(&v, "EmailAddress"),
        phone: str_field(&v, "Phone1"),
        valid: str_field(&v, "Valid").as_deref() != Some("tNO"),
        creation_date: date,
        update_date: date,
        update_time: time,
    };
    {
        let mut d = sim.inner.data.lock().unwrap();
        if d.partners.contains_key(&code) {
            // §4.8.4: the message is the observed one; the code (-10) is the strict assumption.
            let msg = format!(
                "1320000140 - Business partner code '{code}' already assigned to a business partner; enter a unique business partner code"
            );
            return b1_error(
                p,
                StatusCode::BAD_REQUEST,
                sim.inner.cfg.duplicate_code,
                &msg,
            );
        }
        d.partners.insert(code, bp.clone());
    }
    let no_content = headers
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("return-no-content"));
    if no_content {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (StatusCode::CREATED, axum::Json(bp.render(p))).into_response()
    }
}

fn patch_partner(sim: &B1Sim, p: Protocol, key: &str, body: &[u8]) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return b1_error(p, StatusCode::BAD_REQUEST, -1, "Invalid JSON body");
    };
    if !v.is_object() {
        return b1_error(p, StatusCode::BAD_REQUEST, -1, "Invalid JSON body");
    }
    if let Some(refused) = unknown_property(p, &v) {
        return refused;
    }
    // The key is not a property a PATCH changes (OData); strict [U]: refused, not ignored.
    if str_field(&v, "CardCode").is_some_and(|c| c != key) {
        return b1_error(
            p,
            StatusCode::BAD_REQUEST,
            -1,
            "CardCode is the key of a business partner and cannot be changed",
        );
    }
    if let Some(t) = str_field(&v, "CardType")
        && card_type(&t).is_none()
    {
        return b1_error(p, StatusCode::BAD_REQUEST, -1, "Invalid CardType");
    }
    let now = sim.now();
    let found = sim.change_partner(key, now, |bp| {
        if let Some(n) = str_field(&v, "CardName") {
            bp.card_name = n;
        }
        if v.get("FederalTaxID").is_some() {
            bp.federal_tax_id = str_field(&v, "FederalTaxID");
        }
        if v.get("EmailAddress").is_some() {
            bp.email = str_field(&v, "EmailAddress");
        }
        if v.get("Phone1").is_some() {
            bp.phone = str_field(&v, "Phone1");
        }
        if let Some(c) = str_field(&v, "Currency") {
            bp.currency = Some(c);
        }
        if let Some(valid) = str_field(&v, "Valid") {
            bp.valid = valid != "tNO";
        }
        if let Some(t) = str_field(&v, "CardType").as_deref().and_then(card_type) {
            bp.card_type = t.into();
        }
    });
    if found {
        StatusCode::NO_CONTENT.into_response()
    } else {
        b1_error(
            p,
            StatusCode::NOT_FOUND,
            NO_MATCHING_RECORDS.0,
            NO_MATCHING_RECORDS.1,
        )
    }
}

/// `DELETE BusinessPartners('code')` (§4.8.4). Status not stated [U]: 204 as for PATCH. Strict
/// assumption [U]: a partner that documents or payments name is refused (B1 keeps the history
/// of what it booked; message invented), and an unknown one is 404 like a GET.
fn delete_partner(sim: &B1Sim, p: Protocol, key: &str) -> Response {
    let mut d = sim.inner.data.lock().unwrap();
    if !d.partners.contains_key(key) {
        return b1_error(
            p,
            StatusCode::NOT_FOUND,
            NO_MATCHING_RECORDS.0,
            NO_MATCHING_RECORDS.1,
        );
    }
    let used = d.documents.values().any(|doc| doc.card_code == key)
        || d.payments.values().any(|pay| pay.card_code == key);
    if used {
        return b1_error(
            p,
            StatusCode::BAD_REQUEST,
            -10,
            &format!("Business partner '{key}' is used in documents and cannot be removed"),
        );
    }
    d.partners.remove(key);
    StatusCode::NO_CONTENT.into_response()
}
