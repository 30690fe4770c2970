//! Webhook subscriptions and notifications (business-central.md A8, gotchas 8 and 10).
//!
//! `{api root}/subscriptions[('<id>')]`, not company-scoped. Creating or renewing runs the
//! validation handshake against `notificationUrl` first. Changes to subscribed entity sets
//! are collected by the store and delivered by [`notifier`], one POST per notification URL
//! per window of `BcConfig::notification_delay` (BC: 30 s, coalesced).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::errors::{ApiError, ApiResult};
use super::handlers::check_if_match;
use super::store::{Change, ChangeType};
use super::values::{datetime, etag};
use super::{BcHandshakeView, BcNotificationView, BcSim};

/// A4: at most 200 subscriptions per environment.
pub(crate) const MAX_SUBSCRIPTIONS: usize = 200;
/// A8 [CONFLICT]: v2 docs say 2048, v1 docs 250, the NAV table `Client State: Text[50]`.
/// The strictest source wins.
const CLIENT_STATE_MAX: usize = 50;
/// A8: a subscription expires 3 days after creation or renewal.
const LIFETIME: TimeDelta = TimeDelta::days(3);
/// How long the handshake receiver may take. Doubt: BC's timeout is not documented.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A8: more than 1,000 changes in one window become one `collection` notification.
const COLLECTION_THRESHOLD: usize = 1000;
/// A8: BC retries 408/429/5xx for 36 hours; the simulator tries this many more times,
/// with short backoff.
const RETRIES: u32 = 3;

/// A8 "Supported entities (v2.0 list)".
const SUPPORTED: &[&str] = &[
    "accounts",
    "companyInformation",
    "countriesRegions",
    "currencies",
    "customerPaymentJournals",
    "customers",
    "dimensions",
    "employees",
    "generalLedgerEntries",
    "itemCategories",
    "items",
    "journals",
    "paymentMethods",
    "paymentTerms",
    "purchaseInvoices",
    "salesCreditMemos",
    "salesInvoices",
    "salesOrders",
    "salesQuotes",
    "shipmentMethods",
    "unitsOfMeasure",
    "vendors",
];

/// The supported sets this simulator also serves.
const SIMULATED: &[&str] = &["accounts", "dimensions", "purchaseInvoices", "vendors"];

/// The fixed user the simulated app registration acts as.
const USER_ID: &str = "00000000-0000-0000-0000-000000000001";

#[derive(Clone, Debug)]
pub(crate) struct Subscription {
    /// 32 lowercase hex digits (a GUID without dashes, as in the A8 example).
    pub id: String,
    pub notification_url: String,
    /// As the client sent it (leading slash or not).
    pub resource: String,
    pub client_state: String,
    /// The entity set named by `resource`.
    pub set: &'static str,
    pub expiration: DateTime<Utc>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub version: u64,
}

impl Subscription {
    fn etag(&self) -> String {
        etag(Uuid::parse_str(&self.id).unwrap_or_default(), self.version)
    }

    fn render(&self) -> Map<String, Value> {
        let m = json!({
            "@odata.etag": self.etag(),
            "subscriptionId": self.id,
            "notificationUrl": self.notification_url,
            "resource": self.resource,
            "timestamp": self.modified.timestamp_millis(),
            "userId": USER_ID,
            "lastModifiedDateTime": datetime(self.modified),
            "clientState": self.client_state,
            "expirationDateTime": datetime(self.expiration),
            "systemCreatedAt": datetime(self.created),
            "systemCreatedBy": USER_ID,
            "systemModifiedAt": datetime(self.modified),
            "systemModifiedBy": USER_ID,
        });
        match m {
            Value::Object(m) => m,
            _ => unreachable!("json! object literal"),
        }
    }
}

impl BcSim {
    /// Live subscriptions; expired ones are dropped first (lazily, against the clock).
    pub(crate) fn live_subscriptions(&self) -> Vec<Subscription> {
        let mut subs = self.inner.subs.lock().unwrap();
        let now = Utc::now();
        subs.retain(|s| s.expiration > now);
        subs.clone()
    }
}

/// What a path below the API root names: the collection, or one quoted key.
fn parse_key(rel: &str) -> ApiResult<Option<String>> {
    if rel == "subscriptions" {
        return Ok(None);
    }
    let rest = rel.strip_prefix("subscriptions(").ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "BadRequest_ResourceNotFound",
            format!(
                "Resource not found for the segment '{}'.",
                rel.split('/').next_back().unwrap_or(rel)
            ),
        )
    })?;
    let inner = rest.strip_suffix(')').ok_or_else(ApiError::syntax)?;
    // Gotcha 10: the key is a string and must be single-quoted; an unquoted GUID-style
    // key fails. Doubt: BC's exact code and text; we answer like any malformed key.
    match inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        Some(id) if !id.is_empty() && !id.contains('\'') => Ok(Some(id.to_owned())),
        _ => Err(ApiError::syntax()),
    }
}

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "BadRequest_NotFound",
        "The subscription does not exist.",
    )
}

fn json_response(status: StatusCode, body: Map<String, Value>) -> Response {
    let etag = body
        .get("@odata.etag")
        .and_then(Value::as_str)
        .and_then(|e| HeaderValue::from_str(e).ok());
    let mut resp = (status, axum::Json(Value::Object(body))).into_response();
    let h = resp.headers_mut();
    h.insert("odata-version", HeaderValue::from_static("4.0"));
    h.insert(
        "content-type",
        HeaderValue::from_static("application/json; odata.metadata=minimal"),
    );
    if let Some(e) = etag {
        h.insert("etag", e);
    }
    resp
}

fn entity(root: &str, sub: &Subscription, status: StatusCode) -> Response {
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!("{root}/$metadata#subscriptions/$entity")),
    );
    body.extend(sub.render());
    json_response(status, body)
}

/// The three writable fields of a subscription body.
struct SubBody {
    notification_url: String,
    resource: String,
    client_state: String,
}

const READ_ONLY: &[&str] = &[
    "subscriptionId",
    "expirationDateTime",
    "timestamp",
    "userId",
    "lastModifiedDateTime",
    "systemCreatedAt",
    "systemCreatedBy",
    "systemModifiedAt",
    "systemModifiedBy",
];

/// Parses a POST or PATCH body. Both need `notificationUrl` and `resource` (A8: the
/// renewal PATCH carries notificationUrl, resource and clientState; we require the first
/// two on PATCH too, the stricter reading).
fn parse_body(body: &Bytes) -> ApiResult<SubBody> {
    let Some(Value::Object(obj)) = serde_json::from_slice::<Value>(body).ok() else {
        return Err(ApiError::invalid_body());
    };
    let mut out = SubBody {
        notification_url: String::new(),
        resource: String::new(),
        client_state: String::new(),
    };
    for (k, v) in &obj {
        if k.starts_with('@') {
            continue;
        }
        if READ_ONLY.contains(&k.as_str()) {
            return Err(ApiError::read_only(k));
        }
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            _ => return Err(ApiError::invalid_body()),
        };
        match k.as_str() {
            "notificationUrl" => out.notification_url = text,
            "resource" => out.resource = text,
            "clientState" => out.client_state = text,
            _ => return Err(ApiError::invalid_body()),
        }
    }
    for (name, v) in [
        ("notificationUrl", &out.notification_url),
        ("resource", &out.resource),
    ] {
        if v.trim().is_empty() {
            return Err(ApiError::bad(
                "BadRequest_RequiredParamNotProvided",
                format!("Field '{name}' must not be blank or empty."),
            ));
        }
    }
    let n = out.client_state.chars().count();
    if n > CLIENT_STATE_MAX {
        return Err(ApiError::bad(
            "Application_StringExceededLength",
            format!(
                "The length of the string is {n}, but it must be less than or equal to {CLIENT_STATE_MAX} characters. Value: {}",
                out.client_state
            ),
        ));
    }
    Ok(out)
}

/// The entity set a `resource` names: `[/]api/v2.0/companies({id})/{set}` with a set from
/// the A8 supported list (purchaseOrders, for one, is not: gotcha 8).
fn resource_set(company: Uuid, resource: &str) -> ApiResult<&'static str> {
    let invalid = || {
        // Doubt: BC's exact text for an unusable resource is not documented.
        ApiError::dialog(format!(
            "The resource '{resource}' is not valid. Use api/v2.0/companies({{id}})/{{entitySet}}."
        ))
    };
    let rest = resource
        .trim_start_matches('/')
        .strip_prefix("api/v2.0/companies(")
        .ok_or_else(invalid)?;
    let (cid, set) = rest.split_once(")/").ok_or_else(invalid)?;
    let cid = Uuid::parse_str(cid).map_err(|_| invalid())?;
    if cid != company {
        return Err(ApiError::dialog(format!(
            "The company '{cid}' in the resource does not exist."
        )));
    }
    if set.is_empty() || set.contains(['(', '/', '?', '$']) {
        return Err(invalid());
    }
    if !SUPPORTED.contains(&set) {
        return Err(ApiError::dialog(format!(
            "The entity set '{set}' does not support webhook subscriptions."
        )));
    }
    SIMULATED.iter().copied().find(|s| *s == set).ok_or_else(|| {
        ApiError::dialog(format!(
            "The entity set '{set}' supports webhooks in Business Central but is not simulated by the sandbox."
        ))
    })
}

/// A8 handshake: `notificationUrl?validationToken=<token>`; the receiver must answer 200
/// with the token as the body, within [`HANDSHAKE_TIMEOUT`]. Doubt: the HTTP method is
/// undocumented ("issues a request"); we POST with an empty body, so a receiver that only
/// accepts GET fails here (the fact sheet tells receivers to accept both).
async fn handshake(sim: &BcSim, url: &str) -> ApiResult<()> {
    let token = hex::encode(rand::random::<[u8; 24]>());
    let sep = if url.contains('?') { '&' } else { '?' };
    let target = format!("{url}{sep}validationToken={token}");
    let res = sim
        .inner
        .http
        .post(&target)
        .timeout(HANDSHAKE_TIMEOUT)
        .body(Vec::new())
        .send()
        .await;
    let (status, accepted) = match res {
        Ok(r) => {
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            (Some(status), status == 200 && body == token)
        }
        Err(_) => (None, false),
    };
    sim.inner.handshakes.lock().unwrap().push(BcHandshakeView {
        url: url.to_owned(),
        status,
        accepted,
        at: Utc::now(),
    });
    if accepted {
        Ok(())
    } else {
        // Doubt: BC's code and text for a failed handshake are not documented.
        Err(ApiError::bad(
            "BadRequest",
            format!(
                "The subscription could not be validated: the notification URL did not answer the validation request with 200 and the validation token (status: {}).",
                status.map_or("no response".to_owned(), |s| s.to_string())
            ),
        ))
    }
}

fn method_not_allowed(method: &Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "BadRequest_MethodNotAllowed",
        format!(
            "'{method}' requests for 'subscriptions' of EdmType 'Entity' are not allowed within Dynamics 365 Business Central OData web services."
        ),
    )
}

fn needs_json(headers: &HeaderMap) -> ApiResult<()> {
    if headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"))
    {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BadRequest",
            "The content type of the request must be application/json.",
        ))
    }
}

/// `{api root}/subscriptions…`; `rel` is the decoded path below the API root.
pub(crate) async fn handle(
    sim: &BcSim,
    method: &Method,
    rel: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Response> {
    let root = sim.api_root();
    let key = parse_key(rel)?;
    let if_match = headers
        .get("if-match")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let find = |id: &str| -> ApiResult<Subscription> {
        sim.live_subscriptions()
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(not_found)
    };
    match (method.as_str(), key) {
        ("GET", None) => {
            let mut subs = sim.live_subscriptions();
            subs.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
            let mut out = Map::new();
            out.insert(
                "@odata.context".into(),
                json!(format!("{root}/$metadata#subscriptions")),
            );
            out.insert(
                "value".into(),
                Value::Array(subs.iter().map(|s| Value::Object(s.render())).collect()),
            );
            Ok(json_response(StatusCode::OK, out))
        }
        ("GET", Some(id)) => Ok(entity(&root, &find(&id)?, StatusCode::OK)),
        ("POST", None) => {
            needs_json(headers)?;
            let b = parse_body(body)?;
            let set = resource_set(sim.company_id(), &b.resource)?;
            let full = || {
                // Doubt: BC's text at the limit is not documented.
                ApiError::dialog(format!(
                    "The maximum number of webhook subscriptions ({MAX_SUBSCRIPTIONS}) has been reached."
                ))
            };
            if sim.live_subscriptions().len() >= MAX_SUBSCRIPTIONS {
                return Err(full());
            }
            handshake(sim, &b.notification_url).await?;
            let now = Utc::now();
            let sub = Subscription {
                id: Uuid::new_v4().simple().to_string(),
                notification_url: b.notification_url,
                resource: b.resource,
                client_state: b.client_state,
                set,
                expiration: now + LIFETIME,
                created: now,
                modified: now,
                version: 1,
            };
            {
                let mut subs = sim.inner.subs.lock().unwrap();
                subs.retain(|s| s.expiration > now);
                if subs.len() >= MAX_SUBSCRIPTIONS {
                    return Err(full());
                }
                subs.push(sub.clone());
            }
            let mut resp = entity(&root, &sub, StatusCode::CREATED);
            if let Ok(loc) = HeaderValue::from_str(&format!("{root}/subscriptions('{}')", sub.id)) {
                resp.headers_mut().insert("location", loc);
            }
            Ok(resp)
        }
        ("PATCH", Some(id)) => {
            let current = find(&id)?;
            check_if_match(if_match.as_deref(), &current.etag(), true)?;
            needs_json(headers)?;
            let b = parse_body(body)?;
            let set = resource_set(sim.company_id(), &b.resource)?;
            // A8: renewal runs the handshake again; a failure leaves the subscription as is.
            handshake(sim, &b.notification_url).await?;
            let now = Utc::now();
            let updated = {
                let mut subs = sim.inner.subs.lock().unwrap();
                let sub = subs
                    .iter_mut()
                    .find(|s| s.id == id && s.expiration > now)
                    .ok_or_else(not_found)?;
                if sub.version != current.version {
                    // Changed while the handshake ran.
                    check_if_match(if_match.as_deref(), &sub.etag(), true)?;
                }
                sub.notification_url = b.notification_url;
                sub.resource = b.resource;
                sub.client_state = b.client_state;
                sub.set = set;
                sub.expiration = now + LIFETIME;
                sub.modified = now;
                sub.version += 1;
                sub.clone()
            };
            Ok(entity(&root, &updated, StatusCode::OK))
        }
        ("DELETE", Some(id)) => {
            let current = find(&id)?;
            // A3/A8: DELETE of a subscription lists If-Match as Required.
            check_if_match(if_match.as_deref(), &current.etag(), true)?;
            sim.inner.subs.lock().unwrap().retain(|s| s.id != id);
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(method_not_allowed(method)),
    }
}

/// One POST to make: the URL, the subscriptions it covers, the body.
type Delivery = (String, Vec<String>, Value);

/// Groups a window's changes into notification bodies: per subscription, one item per
/// changed record (coalesced: the first change type wins, except that a deletion
/// overrides; doubt: BC's exact coalescing rule is not documented), or one `collection`
/// item over [`COLLECTION_THRESHOLD`] records; per notification URL, one POST.
fn build(subs: &[Subscription], changes: &[Change], company: Uuid) -> Vec<Delivery> {
    let mut by_url: BTreeMap<String, (Vec<String>, Vec<Value>)> = BTreeMap::new();
    for sub in subs {
        let mut order: Vec<Uuid> = Vec::new();
        let mut per: HashMap<Uuid, (ChangeType, DateTime<Utc>)> = HashMap::new();
        let mut first: Option<DateTime<Utc>> = None;
        // Only what changed after the subscription was made.
        for c in changes
            .iter()
            .filter(|c| c.set == sub.set && c.at >= sub.created)
        {
            first = Some(first.map_or(c.at, |f| f.min(c.at)));
            match per.get_mut(&c.id) {
                None => {
                    order.push(c.id);
                    per.insert(c.id, (c.change, c.at));
                }
                Some(e) => {
                    if c.change == ChangeType::Deleted {
                        e.0 = ChangeType::Deleted;
                    }
                    e.1 = e.1.max(c.at);
                }
            }
        }
        let Some(first) = first else { continue };
        let item = |resource: String, change: &str, at: DateTime<Utc>| {
            json!({
                "subscriptionId": sub.id,
                "clientState": sub.client_state,
                "expirationDateTime": datetime(sub.expiration),
                "resource": resource,
                "changeType": change,
                "lastModifiedDateTime": datetime(at),
            })
        };
        let items: Vec<Value> = if order.len() > COLLECTION_THRESHOLD {
            let last = per.values().map(|v| v.1).max().unwrap_or(first);
            // Doubt: the A8 example filters on `lastDateTimeModified` (a v1 name); we use
            // the v2.0 field so the URL can be queried as given.
            let since = datetime(first - TimeDelta::seconds(1));
            vec![item(
                format!(
                    "api/v2.0/companies({company})/{}?$filter=lastModifiedDateTime%20gt%20{since}",
                    sub.set
                ),
                "collection",
                last,
            )]
        } else {
            order
                .iter()
                .map(|id| {
                    let (change, at) = per[id];
                    item(
                        format!("api/v2.0/companies({company})/{}({id})", sub.set),
                        change.as_str(),
                        at,
                    )
                })
                .collect()
        };
        let e = by_url.entry(sub.notification_url.clone()).or_default();
        e.0.push(sub.id.clone());
        e.1.extend(items);
    }
    by_url
        .into_iter()
        .map(|(url, (ids, items))| (url, ids, json!({ "value": items })))
        .collect()
}

/// POSTs one notification body. A8 / gotcha 8: 408, 429 and 5xx are retried; any other
/// non-2xx deletes the subscriptions it carried. Doubt: BC's handling of a receiver that
/// cannot be reached is not documented; we retry it like a 5xx.
async fn deliver(sim: BcSim, url: String, sub_ids: Vec<String>, body: Value) {
    let bytes = serde_json::to_vec(&body).expect("json");
    let mut attempt = 0u32;
    loop {
        let res = sim
            .inner
            .http
            .post(&url)
            .header("content-type", "application/json")
            .timeout(Duration::from_secs(10))
            .body(bytes.clone())
            .send()
            .await;
        let status = res.ok().map(|r| r.status().as_u16());
        sim.inner
            .notifications
            .lock()
            .unwrap()
            .push(BcNotificationView {
                url: url.clone(),
                status,
                body: body.clone(),
                at: Utc::now(),
            });
        match status {
            Some(200..=299) => return,
            Some(408 | 429 | 500..=599) | None => {
                attempt += 1;
                if attempt > RETRIES {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            Some(_) => {
                sim.inner
                    .subs
                    .lock()
                    .unwrap()
                    .retain(|s| !sub_ids.contains(&s.id));
                return;
            }
        }
    }
}

/// Background task: waits for a change, lets the window run (`notification_delay`), then
/// delivers what changed to the live subscriptions. Never holds a lock across an await.
pub(crate) async fn notifier(sim: BcSim) {
    loop {
        sim.inner.wake.notified().await;
        if sim.inner.store.lock().unwrap().changes.is_empty() {
            continue;
        }
        tokio::time::sleep(sim.inner.cfg.notification_delay).await;
        let (changes, company) = {
            let mut store = sim.inner.store.lock().unwrap();
            (std::mem::take(&mut store.changes), store.company_id)
        };
        let subs = sim.live_subscriptions();
        for (url, ids, body) in build(&subs, &changes, company) {
            tokio::spawn(deliver(sim.clone(), url, ids, body));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_be_single_quoted() {
        assert_eq!(parse_key("subscriptions").unwrap(), None);
        assert_eq!(
            parse_key("subscriptions('abc123')").unwrap(),
            Some("abc123".into())
        );
        assert!(parse_key("subscriptions(abc123)").is_err());
        assert!(parse_key("subscriptions({'abc'})").is_err());
    }

    #[test]
    fn purchase_orders_cannot_be_subscribed() {
        let c = Uuid::new_v4();
        assert_eq!(
            resource_set(c, &format!("/api/v2.0/companies({c})/purchaseInvoices")).unwrap(),
            "purchaseInvoices"
        );
        assert!(resource_set(c, &format!("api/v2.0/companies({c})/purchaseOrders")).is_err());
        assert!(resource_set(Uuid::new_v4(), &format!("api/v2.0/companies({c})/vendors")).is_err());
    }
}
