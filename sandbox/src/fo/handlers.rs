//! `/data/{Set}` and `/data/{Set}(keys)`: reads with the default-company rule, writes with
//! F&O's status codes (201 with the entity, 204 on update and delete), ETags and If-Match.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::FoSim;
use super::errors::{FoError, FoResult};
use super::odata::{self, Filter};
use super::rules;
use super::schema::{self, EntitySet};
use super::store::{Fields, key_of, key_string};

struct Target {
    set: &'static EntitySet,
    key: Option<Vec<Value>>,
}

fn route(path: &str) -> FoResult<Target> {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let rest = decoded.strip_prefix("/data/").ok_or_else(|| {
        FoError::not_found(format!(
            "No HTTP resource was found that matches the request URI '{decoded}'."
        ))
    })?;
    let (name, key) = match rest.find('(') {
        Some(at) if rest.ends_with(')') => (&rest[..at], Some(&rest[at + 1..rest.len() - 1])),
        Some(_) => {
            return Err(FoError::bad_request(format!(
                "Bad key segment in '{rest}'."
            )));
        }
        None => (rest.trim_end_matches('/'), None),
    };
    // Gotcha 12: entity set names are case-sensitive; `vendorinvoiceheaders` is not found.
    let set = schema::set(name).ok_or_else(|| {
        FoError::not_found(format!(
            "No HTTP resource was found that matches the request URI: the entity set '{name}' does not exist (names are case-sensitive)."
        ))
    })?;
    let key = key.map(|k| odata::parse_key(set, k)).transpose()?;
    Ok(Target { set, key })
}

struct Query {
    cross_company: bool,
    filter: Option<Filter>,
    select: Option<Vec<String>>,
    top: Option<usize>,
    skip: usize,
    skiptoken: Option<String>,
    count: bool,
    /// Every pair but `$skiptoken`, to build the next link.
    rest: Vec<(String, String)>,
}

fn parse_query(set: &EntitySet, raw: Option<&str>) -> FoResult<Query> {
    let mut q = Query {
        cross_company: false,
        filter: None,
        select: None,
        top: None,
        skip: 0,
        skiptoken: None,
        count: false,
        rest: Vec::new(),
    };
    for (k, v) in crate::query::parse_pairs(raw) {
        match k.as_str() {
            "cross-company" => q.cross_company = v.eq_ignore_ascii_case("true"),
            "$filter" => q.filter = Some(odata::parse_filter(set, &v)?),
            "$select" => {
                let fields: Vec<String> = v.split(',').map(|s| s.trim().to_owned()).collect();
                if let Some(bad) = fields.iter().find(|f| !set.has_field(f)) {
                    return Err(FoError::bad_request(format!(
                        "Could not find a property named '{bad}' on type 'Microsoft.Dynamics.DataEntities.{}'.",
                        set.aot.trim_end_matches("Entity")
                    )));
                }
                q.select = Some(fields);
            }
            "$top" => q.top = Some(v.parse().map_err(|_| FoError::bad_request("Bad $top."))?),
            "$skip" => q.skip = v.parse().map_err(|_| FoError::bad_request("Bad $skip."))?,
            "$skiptoken" => {
                let raw = hex::decode(&v).map_err(|_| FoError::bad_request("Bad $skiptoken."))?;
                q.skiptoken = Some(String::from_utf8_lossy(&raw).into_owned());
            }
            "$count" => q.count = v == "true",
            _ => {}
        }
        if k != "$skiptoken" {
            q.rest.push((k, v));
        }
    }
    Ok(q)
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn base_of(headers: &HeaderMap, sim: &FoSim) -> String {
    // The host the client dialled (a relay in front of the simulator stays in the path).
    match headers.get("host").and_then(|h| h.to_str().ok()) {
        Some(h) => format!("http://{h}"),
        None => sim.base_url(),
    }
}

/// The company a request may see of a company-specific set: all with `cross-company=true`,
/// else only the default company (B1, B7, gotcha 13).
fn visible(sim: &FoSim, set: &EntitySet, cross: bool, fields: &Fields) -> bool {
    !set.company
        || cross
        || fields
            .get("dataAreaId")
            .and_then(Value::as_str)
            .is_some_and(|c| c.eq_ignore_ascii_case(&sim.inner.cfg.default_company))
}

pub(crate) async fn api(State(sim): State<FoSim>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, 16 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => return FoError::bad_request("Body too large.").into_response(),
    };
    match handle(&sim, &parts.method, &parts.uri, &parts.headers, &body) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn handle(
    sim: &FoSim,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> FoResult<Response> {
    let target = route(uri.path())?;
    let set = target.set;
    let q = parse_query(set, uri.query())?;
    let base = base_of(headers, sim);
    match (method.as_str(), &target.key) {
        ("GET", None) => list(sim, set, &q, &base, uri.path()),
        ("GET", Some(key)) => get_one(sim, set, key, &q),
        ("POST", None) => create(sim, set, body, &base),
        ("PATCH" | "PUT", Some(key)) => update(sim, set, key, &q, headers, body),
        ("DELETE", Some(key)) => remove(sim, set, key, &q, headers),
        _ => Err(FoError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            inner: format!(
                "The HTTP method '{method}' is not allowed on '{}'.",
                uri.path()
            ),
            kind: super::errors::ODATA_EXCEPTION,
        }),
    }
}

fn project(row: Value, select: &Option<Vec<String>>) -> Value {
    let Some(fields) = select else { return row };
    let Value::Object(map) = row else { return row };
    let out: Map<String, Value> = map
        .into_iter()
        .filter(|(k, _)| k == "@odata.etag" || fields.iter().any(|f| f == k))
        .collect();
    Value::Object(out)
}

fn list(sim: &FoSim, set: &EntitySet, q: &Query, base: &str, path: &str) -> FoResult<Response> {
    let store = sim.inner.store.lock().unwrap();
    let page_size = sim.inner.cfg.max_page_size.max(1);
    let matching: Vec<(&String, &super::store::Row)> = store
        .table(set.name)
        .iter()
        .filter(|(k, _)| q.skiptoken.as_ref().is_none_or(|t| *k > t))
        .filter(|(_, r)| visible(sim, set, q.cross_company, &r.fields))
        .filter(|(_, r)| q.filter.as_ref().is_none_or(|f| f.matches(&r.fields)))
        .collect();
    let total = matching.len();
    let wanted: Vec<_> = matching
        .into_iter()
        .skip(q.skip)
        .take(q.top.unwrap_or(usize::MAX))
        .collect();
    let more = wanted.len() > page_size;
    let page = &wanted[..wanted.len().min(page_size)];
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        format!("{base}/data/$metadata#{}", set.name).into(),
    );
    if q.count {
        body.insert("@odata.count".into(), total.into());
    }
    body.insert(
        "value".into(),
        Value::Array(
            page.iter()
                .map(|(_, r)| project(r.to_json(), &q.select))
                .collect(),
        ),
    );
    if more && let Some((last, _)) = page.last() {
        // The continuation resumes after the last key served: a row added or removed before
        // it between pages neither repeats nor hides a row. `$top` and `$skip` were applied
        // to the first page's view; the link carries neither, only the rest of the query.
        let mut pairs: Vec<String> = q
            .rest
            .iter()
            .filter(|(k, _)| k != "$top" && k != "$skip")
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        pairs.push(format!("$skiptoken={}", hex::encode(last.as_bytes())));
        body.insert(
            "@odata.nextLink".into(),
            format!("{base}{path}?{}", pairs.join("&")).into(),
        );
    }
    Ok((StatusCode::OK, axum::Json(Value::Object(body))).into_response())
}

/// The row at `key`, as a request may address it: another company's row without
/// `cross-company=true` is 404 (B9.4).
fn locate(sim: &FoSim, set: &EntitySet, key: &[Value], cross: bool) -> FoResult<String> {
    let k = key_string(set, key);
    let store = sim.inner.store.lock().unwrap();
    match store.table(set.name).get(&k) {
        Some(r) if visible(sim, set, cross, &r.fields) => Ok(k),
        _ => Err(FoError::not_found(format!(
            "Resource not found for the segment '{}'.",
            set.name
        ))),
    }
}

fn with_etag(mut resp: Response, etag: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(etag) {
        resp.headers_mut().insert("etag", v);
    }
    resp
}

fn get_one(sim: &FoSim, set: &EntitySet, key: &[Value], q: &Query) -> FoResult<Response> {
    let k = locate(sim, set, key, q.cross_company)?;
    let store = sim.inner.store.lock().unwrap();
    let row = &store.table(set.name)[&k];
    let resp = (
        StatusCode::OK,
        axum::Json(project(row.to_json(), &q.select)),
    )
        .into_response();
    Ok(with_etag(resp, &row.etag()))
}

fn parse_body(set: &EntitySet, body: &Bytes) -> FoResult<Fields> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| FoError::bad_request(format!("The request body is not valid JSON: {e}.")))?;
    let Value::Object(map) = v else {
        return Err(FoError::bad_request(
            "The request body must be a JSON object.",
        ));
    };
    let mut out = Fields::new();
    for (k, v) in map {
        if k.starts_with('@') {
            continue;
        }
        // Case-sensitive property names (gotcha 12): `invoiceNumber` is not `InvoiceNumber`.
        if !set.has_field(&k) {
            return Err(FoError::bad_request(format!(
                "The property '{k}' does not exist on type 'Microsoft.Dynamics.DataEntities.{}'. Make sure to only use property names that are defined by the type.",
                set.aot.trim_end_matches("Entity")
            )));
        }
        out.insert(k, v);
    }
    Ok(out)
}

fn create(sim: &FoSim, set: &'static EntitySet, body: &Bytes, base: &str) -> FoResult<Response> {
    if !set.writable {
        return Err(FoError::method_not_allowed(set.name));
    }
    let fields = parse_body(set, body)?;
    let refused = sim.inner.refused.lock().unwrap().clone();
    let mut store = sim.inner.store.lock().unwrap();
    let row = insert_checked(sim, &mut store, &refused, set, fields)?;
    Ok(rendered_create(set, row, base))
}

/// A new row of `set` as F&O's write path checks it (company, keys, duplicates, the entity's
/// rules): the OData POST and the Data Management import (`dmf.rs`) insert through it alike,
/// so a row one refuses the other refuses with the same words.
pub(crate) fn insert_checked(
    sim: &FoSim,
    store: &mut super::store::Store,
    refused: &[super::dims::Combination],
    set: &'static EntitySet,
    mut fields: Fields,
) -> FoResult<super::store::Row> {
    if set.company {
        // B7: a POST without dataAreaId lands in the caller's default company.
        let company = match fields.get("dataAreaId").and_then(Value::as_str) {
            Some(c) if !c.is_empty() => c.to_lowercase(),
            _ => sim.inner.cfg.default_company.to_lowercase(),
        };
        if store.company(&company).is_none() {
            // Doubt: F&O's words for an unknown company are not in the fact sheet.
            return Err(FoError::write_failed(
                set.aot,
                format!("Error: Company '{company}' does not exist."),
            ));
        }
        fields.insert("dataAreaId".into(), company.into());
    }
    rules::fill_keys(store, set, &mut fields)?;
    let key = key_of(set, &fields);
    if store.table(set.name).contains_key(&key) {
        let shown = set
            .keys
            .iter()
            .map(|(k, _)| {
                format!(
                    "{k}: {}",
                    fields[*k]
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| fields[*k].to_string())
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        return Err(FoError::already_exists(
            set.aot,
            set.table_label,
            set.table,
            &shown,
        ));
    }
    rules::check(store, &sim.inner.cfg, refused, set, &mut fields, true)?;
    Ok(store.insert(set, fields))
}

fn rendered_create(set: &'static EntitySet, row: super::store::Row, base: &str) -> Response {
    let keys = set
        .keys
        .iter()
        .map(|(k, _)| match &row.fields[*k] {
            Value::String(s) => format!("{k}='{}'", s.replace('\'', "''")),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(",");
    let mut resp = (StatusCode::CREATED, axum::Json(row.to_json())).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{base}/data/{}({keys})", set.name)) {
        resp.headers_mut().insert("location", v);
    }
    with_etag(resp, &row.etag())
}

/// B9.5: If-Match is not required; `*` matches anything; an explicit tag must be current (412).
fn check_if_match(headers: &HeaderMap, etag: &str) -> FoResult<()> {
    match headers.get("if-match").and_then(|v| v.to_str().ok()) {
        None => Ok(()),
        Some(v) if v.trim() == "*" || v.trim() == etag => Ok(()),
        Some(_) => Err(FoError::precondition_failed()),
    }
}

fn update(
    sim: &FoSim,
    set: &'static EntitySet,
    key: &[Value],
    q: &Query,
    headers: &HeaderMap,
    body: &Bytes,
) -> FoResult<Response> {
    if !set.writable {
        return Err(FoError::method_not_allowed(set.name));
    }
    let k = locate(sim, set, key, q.cross_company)?;
    let changes = parse_body(set, body)?;
    let refused = sim.inner.refused.lock().unwrap().clone();
    let mut store = sim.inner.store.lock().unwrap();
    let row = store.table(set.name)[&k].clone();
    check_if_match(headers, &row.etag())?;
    let mut merged = row.fields.clone();
    for (name, v) in changes {
        if set.key_type(&name).is_some() {
            let same = match (&merged[&name], &v) {
                (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
                (a, b) => a == b,
            };
            if !same {
                return Err(FoError::bad_request(format!(
                    "Key property '{name}' cannot be changed."
                )));
            }
            continue;
        }
        merged.insert(name, v);
    }
    rules::check(&store, &sim.inner.cfg, &refused, set, &mut merged, false)?;
    let entry = store.table_mut(set.name).get_mut(&k).expect("located");
    if entry.fields != merged {
        entry.fields = merged;
        entry.version += 1;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn remove(
    sim: &FoSim,
    set: &'static EntitySet,
    key: &[Value],
    q: &Query,
    headers: &HeaderMap,
) -> FoResult<Response> {
    if !set.writable {
        return Err(FoError::method_not_allowed(set.name));
    }
    let k = locate(sim, set, key, q.cross_company)?;
    let mut store = sim.inner.store.lock().unwrap();
    let row = store.table(set.name)[&k].clone();
    check_if_match(headers, &row.etag())?;
    store.table_mut(set.name).remove(&k);
    // Deleting a pending invoice or an order takes its lines with it.
    let child = match set.name {
        schema::HEADERS => Some((schema::LINES, "HeaderReference")),
        schema::PO_HEADERS => Some((schema::PO_LINES, "PurchaseOrderNumber")),
        _ => None,
    };
    if let Some((lines, field)) = child {
        let company = row.str("dataAreaId").to_owned();
        let parent = row.str(field).to_owned();
        store
            .table_mut(lines)
            .retain(|_, r| !(r.str("dataAreaId") == company && r.str(field) == parent));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// An OData error body for a request outside `/data/` that reached the fallback.
pub(crate) fn unknown() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error":{"code":"","message":"No HTTP resource was found that matches the request URI."}})),
    )
        .into_response()
}
