//! Master-data imports (§3.7, §3.11): `POST /v1/vendors|accounts|costCenters|lists/{listKey}`
//! take a JSON array (upsert by `externalCode`), answer 200 after schema validation with the
//! request id in `x-amzn-RequestId`, and are processed later: the outcome per record is read
//! from `GET /v1/requestStatus` and acknowledged with `POST /v1/requestStatus/acknowledge`.

use std::collections::{HashMap, HashSet};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::{BaswareSim, error};
use crate::query::parse_pairs;

/// One record's outcome (§3.11.1 item statuses).
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ItemView {
    pub external_code: String,
    /// `Success`, `NotProcessed` (identical to the last import), `Error`.
    pub status: String,
    pub errors: Vec<String>,
}

/// One import as the simulator holds it, for tests to read.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImportView {
    pub request_id: String,
    pub entity_type: String,
    pub generic_list_key: Option<String>,
    /// `InProgress`, `Success`, `Error`, `AcknowledgedSuccess`, `AcknowledgedError`.
    pub request_status: String,
    pub records: usize,
    /// Empty while in progress.
    pub items: Vec<ItemView>,
}

struct Import {
    request_id: String,
    entity_type: &'static str,
    list_key: Option<String>,
    store_key: String,
    records: Vec<Value>,
    reads: u32,
    items: Option<Vec<ItemView>>,
    acknowledged: bool,
    last_updated: DateTime<Utc>,
}

impl Import {
    fn status(&self) -> &'static str {
        match (&self.items, self.acknowledged) {
            (None, _) => "InProgress",
            (Some(items), acked) => {
                let failed = items.iter().any(|i| i.status == "Error");
                match (failed, acked) {
                    (false, false) => "Success",
                    (true, false) => "Error",
                    (false, true) => "AcknowledgedSuccess",
                    (true, true) => "AcknowledgedError",
                }
            }
        }
    }

    fn view(&self) -> ImportView {
        ImportView {
            request_id: self.request_id.clone(),
            entity_type: self.entity_type.into(),
            generic_list_key: self.list_key.clone(),
            request_status: self.status().into(),
            records: self.records.len(),
            items: self.items.clone().unwrap_or_default(),
        }
    }

    fn render(&self, ignore_successful: bool) -> Value {
        let items: Vec<Value> = self
            .items
            .iter()
            .flatten()
            .filter(|i| !(ignore_successful && i.status == "Success"))
            .map(|i| {
                json!({
                    "externalCode": i.external_code,
                    "parentExternalCode": null,
                    "status": i.status,
                    "errors": i.errors.iter().map(|m| json!({
                        "type": "Error", "message": m, "category": "DataValidation"
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let at = self
            .last_updated
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        json!({
            "requestId": self.request_id,
            "entityType": self.entity_type,
            "entityVersion": format!("{}V1", self.entity_type),
            "requestStatus": self.status(),
            "changedBy": "API",
            "operationType": "POST",
            "genericListKey": self.list_key,
            "lastUpdated": at,
            "systems": [{
                "system": "P2P", "module": "IA", "systemStatus": self.status(),
                "lastUpdated": at, "items": items,
            }],
        })
    }
}

#[derive(Default)]
pub(crate) struct MasterData {
    /// Records P2P holds, by store key (`vendors`, `lists/ACC_LIST_1`…) and `externalCode`.
    records: HashMap<String, HashMap<String, Value>>,
    imports: Vec<Import>,
    /// `externalCode`s the target refuses (a test knob).
    refused: HashSet<String>,
}

impl MasterData {
    /// Processes what waited long enough: each read of the request status counts one wait.
    fn advance(&mut self, reads_in_progress: u32, companies: &[String]) {
        let MasterData {
            records,
            imports,
            refused,
        } = self;
        for imp in imports.iter_mut().filter(|i| i.items.is_none()) {
            if imp.reads < reads_in_progress {
                imp.reads += 1;
                continue;
            }
            let store = records.entry(imp.store_key.clone()).or_default();
            let items = imp
                .records
                .iter()
                .map(|r| {
                    let code = r["externalCode"].as_str().unwrap_or_default().to_owned();
                    let bad_company = r["companies"].as_array().is_none_or(|cs| {
                        cs.iter().any(|c| {
                            !c["companyCode"]
                                .as_str()
                                .is_some_and(|cc| companies.iter().any(|k| k == cc))
                        })
                    });
                    let (status, errors) = if bad_company {
                        (
                            "Error",
                            vec!["Record skipped due to wrong or missing CompanyCode".into()],
                        )
                    } else if refused.contains(&code) {
                        ("Error", vec!["Record refused by P2P.".into()])
                    } else if store.get(&code) == Some(r) {
                        // §3.11.2: an identical re-import is skipped. Doubt: byte-identical or
                        // field-equal is not stated; compared field-equal after parsing.
                        ("NotProcessed", Vec::new())
                    } else {
                        store.insert(code.clone(), r.clone());
                        ("Success", Vec::new())
                    };
                    ItemView {
                        external_code: code,
                        status: status.into(),
                        errors,
                    }
                })
                .collect();
            imp.items = Some(items);
            imp.last_updated = Utc::now();
        }
    }
}

impl BaswareSim {
    /// Processes every import still in progress now.
    pub fn process_imports(&self) {
        let mut m = self.inner.master.lock().unwrap();
        m.advance(0, &self.inner.cfg.companies);
    }

    /// Every import received, oldest first.
    pub fn imports(&self) -> Vec<ImportView> {
        let m = self.inner.master.lock().unwrap();
        m.imports.iter().map(Import::view).collect()
    }

    /// The records P2P holds under `store_key` (`vendors`, `accounts`, `costCenters`,
    /// `lists/ACC_LIST_1`…), by `externalCode`.
    pub fn master_records(&self, store_key: &str) -> HashMap<String, Value> {
        let m = self.inner.master.lock().unwrap();
        m.records.get(store_key).cloned().unwrap_or_default()
    }

    /// From now on, a record with this `externalCode` fails in P2P (status `Error`).
    pub fn refuse_record(&self, external_code: &str) {
        let mut m = self.inner.master.lock().unwrap();
        m.refused.insert(external_code.into());
    }
}

fn schema_error(external_code: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "requestId": uuid::Uuid::new_v4().to_string(),
            "hasErrors": true,
            "errors": [{
                "externalCode": external_code, "type": "VALIDATION",
                "code": "SCHEMA_VALIDATION_ERROR", "message": message, "info": ""
            }],
        })),
    )
        .into_response()
}

/// What one entity requires (§3.7, §3.11.4, §3.11.6).
struct Schema {
    entity_type: &'static str,
    /// §3.3: 200 vendors per request, 500 for most others.
    max_records: usize,
    required: &'static [&'static str],
    /// Fields every `companies[]` item must carry.
    company_fields: &'static [&'static str],
}

const VENDOR: Schema = Schema {
    entity_type: "Vendor",
    max_records: 200,
    required: &["companies", "externalCode", "name", "vendorCode"],
    company_fields: &["companyCode"],
};
const ACCOUNT: Schema = Schema {
    entity_type: "Account",
    max_records: 500,
    required: &["accountCode", "accountNames", "companies", "externalCode"],
    company_fields: &["companyCode", "inherit", "active"],
};
const COST_CENTER: Schema = Schema {
    entity_type: "CostCenter",
    max_records: 500,
    required: &[
        "companies",
        "costCenterCode",
        "costCenterNames",
        "externalCode",
    ],
    company_fields: &["companyCode", "active"],
};
const GENERIC_LIST: Schema = Schema {
    entity_type: "GenericList",
    max_records: 500,
    required: &["externalCode"],
    company_fields: &["companyCode", "active"],
};

/// §3.7: `ACC_LIST_1..35`, `INV_LIST_1..20`, `CUST_RESOLVER_1..5`.
fn list_key_is_known(key: &str) -> bool {
    let within = |prefix: &str, max: u32| {
        key.strip_prefix(prefix)
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| (1..=max).contains(&n) && !key.ends_with("_0"))
    };
    within("ACC_LIST_", 35) || within("INV_LIST_", 20) || within("CUST_RESOLVER_", 5)
}

fn import(
    sim: &BaswareSim,
    schema: &Schema,
    store_key: String,
    list_key: Option<String>,
    body: &Bytes,
) -> Response {
    let Ok(Value::Array(records)) = serde_json::from_slice::<Value>(body) else {
        return schema_error("", "A JSON array of records is expected.");
    };
    if records.is_empty() || records.len() > schema.max_records {
        return schema_error(
            "",
            &format!("1 to {} records per request.", schema.max_records),
        );
    }
    // §3.3: "incoming request size ≤ 6 MB".
    if body.len() > 6 * 1024 * 1024 {
        return schema_error("", "Request larger than 6 MB.");
    }
    for r in &records {
        let code = r["externalCode"].as_str().unwrap_or_default();
        if code.is_empty() || code.chars().count() > 36 {
            return schema_error(code, "'externalCode' is required (1 to 36 characters).");
        }
        for f in schema.required {
            if r.get(*f).is_none_or(Value::is_null) {
                return schema_error(code, &format!("'{f}' is required."));
            }
        }
        if let Some(cs) = r.get("companies") {
            let ok = cs.as_array().is_some_and(|cs| {
                cs.iter().all(|c| {
                    schema
                        .company_fields
                        .iter()
                        .all(|f| c.get(*f).is_some_and(|v| !v.is_null()))
                })
            });
            if !ok {
                return schema_error(
                    code,
                    &format!(
                        "every companies[] item needs {}.",
                        schema.company_fields.join(", ")
                    ),
                );
            }
        }
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    sim.inner.master.lock().unwrap().imports.push(Import {
        request_id: request_id.clone(),
        entity_type: schema.entity_type,
        list_key,
        store_key,
        records: records.clone(),
        reads: 0,
        items: None,
        acknowledged: false,
        last_updated: Utc::now(),
    });
    // §3.11.1: the request id comes back in the `x-amzn-RequestId` response header.
    let mut resp = Json(Value::Array(records)).into_response();
    resp.headers_mut().insert(
        "x-amzn-RequestId",
        HeaderValue::from_str(&request_id).expect("uuid"),
    );
    resp
}

pub(crate) async fn import_vendors(State(sim): State<BaswareSim>, body: Bytes) -> Response {
    import(&sim, &VENDOR, "vendors".into(), None, &body)
}

pub(crate) async fn import_accounts(State(sim): State<BaswareSim>, body: Bytes) -> Response {
    import(&sim, &ACCOUNT, "accounts".into(), None, &body)
}

pub(crate) async fn import_cost_centers(State(sim): State<BaswareSim>, body: Bytes) -> Response {
    import(&sim, &COST_CENTER, "costCenters".into(), None, &body)
}

pub(crate) async fn import_list(
    State(sim): State<BaswareSim>,
    Path(list_key): Path<String>,
    body: Bytes,
) -> Response {
    if !list_key_is_known(&list_key) {
        return error(
            StatusCode::BAD_REQUEST,
            "VALIDATION",
            "PARAMETER_VALIDATION_ERROR",
            &format!("Unknown list key '{list_key}'."),
        );
    }
    import(
        &sim,
        &GENERIC_LIST,
        format!("lists/{list_key}"),
        Some(list_key),
        &body,
    )
}

fn none_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "VALIDATION",
        "ENTITY_NOT_FOUND",
        "No request statuses found.",
    )
}

/// `GET /v1/requestStatus` (§3.11.1). Each read also lets imports in progress advance. With
/// neither `entityType` nor `system`, only `Error` requests are listed (documented default).
/// Doubt: continuation paging of request statuses is not simulated; at most `pageSize`
/// (default and maximum 500) come back.
pub(crate) async fn request_status(
    State(sim): State<BaswareSim>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = parse_pairs(raw.as_deref());
    let param = |name: &str| q.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let entity = param("entityType");
    let system = param("system");
    let status = param("status")
        .or_else(|| (entity.is_none() && system.is_none()).then(|| "Error".to_owned()));
    let ignore = param("ignoreSuccessfullItems").as_deref() == Some("true");
    let page = param("pageSize")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(500)
        .clamp(1, 500);
    let mut m = sim.inner.master.lock().unwrap();
    m.advance(
        sim.inner.cfg.import_reads_in_progress,
        &sim.inner.cfg.companies,
    );
    let found: Vec<Value> = m
        .imports
        .iter()
        .filter(|i| status.as_deref().is_none_or(|s| i.status() == s))
        // Acknowledged requests "are no longer offered for next GET" unless asked for.
        .filter(|i| !i.acknowledged || status.as_deref().is_some_and(|s| s.starts_with("Ack")))
        .filter(|i| entity.as_deref().is_none_or(|e| i.entity_type == e))
        .filter(|_| system.as_deref().is_none_or(|s| s == "P2P"))
        .take(page)
        .map(|i| i.render(ignore))
        .collect();
    if found.is_empty() {
        return none_found();
    }
    Json(json!({ "requestStatus": found })).into_response()
}

/// `GET /v1/requestStatus/{requestId}`.
pub(crate) async fn request_status_one(
    State(sim): State<BaswareSim>,
    Path(id): Path<String>,
) -> Response {
    let mut m = sim.inner.master.lock().unwrap();
    m.advance(
        sim.inner.cfg.import_reads_in_progress,
        &sim.inner.cfg.companies,
    );
    match m.imports.iter().find(|i| i.request_id == id) {
        Some(i) => Json(json!({ "requestStatus": [i.render(false)] })).into_response(),
        None => none_found(),
    }
}

/// `POST /v1/requestStatus/acknowledge` `{"requestIds": […]}` (§3.11.1): 404 for an unknown
/// id, 405 for one acknowledged already. Doubt: acknowledging a request still in progress is not
/// described; refused with 400 (it has no outcome yet). All ids are checked before any changes.
pub(crate) async fn acknowledge_requests(State(sim): State<BaswareSim>, body: Bytes) -> Response {
    let ids: Vec<String> = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => match v["requestIds"].as_array() {
            Some(a) if !a.is_empty() => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => return schema_error("", "'requestIds' is required."),
        },
        Err(_) => return schema_error("", "A JSON object is expected."),
    };
    let mut m = sim.inner.master.lock().unwrap();
    for id in &ids {
        match m.imports.iter().find(|i| &i.request_id == id) {
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    "VALIDATION",
                    "ENTITY_NOT_FOUND",
                    "Record to acknowledge not found",
                );
            }
            Some(i) if i.acknowledged => {
                return error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "BUSINESS",
                    "METHOD_NOT_ALLOWED",
                    &format!("Request {id} is acknowledged already."),
                );
            }
            Some(i) if i.items.is_none() => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "BUSINESS",
                    "DATA_VALIDATION_FAILED",
                    &format!("Request {id} is still in progress."),
                );
            }
            Some(_) => {}
        }
    }
    for i in m.imports.iter_mut().filter(|i| ids.contains(&i.request_id)) {
        i.acknowledged = true;
    }
    Json(Value::String("Acknowledged".into())).into_response()
}

/// `GET /v1/errorFeedbacks` (§3.11.3, older twin of requestStatus): one entry per failed record
/// of processed imports, `errorEntity` the posted record as a JSON string; 404 when none.
pub(crate) async fn error_feedbacks(
    State(sim): State<BaswareSim>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = parse_pairs(raw.as_deref());
    let entity = q
        .iter()
        .find(|(k, _)| k == "entityType")
        .map(|(_, v)| v.clone());
    let m = sim.inner.master.lock().unwrap();
    let mut list = Vec::new();
    for imp in &m.imports {
        if entity.as_deref().is_some_and(|e| e != imp.entity_type) {
            continue;
        }
        for (item, record) in imp.items.iter().flatten().zip(&imp.records) {
            if item.status != "Error" {
                continue;
            }
            list.push(json!({
                "id": uuid::Uuid::new_v4().to_string(),
                "requestId": imp.request_id,
                "externalCode": item.external_code,
                "errorEntity": record.to_string(),
                "entityType": imp.entity_type,
                "errorStamp": imp.last_updated.to_rfc3339_opts(SecondsFormat::Millis, true),
                "errors": item.errors,
                "targetSystem": "P2P",
            }));
        }
    }
    if list.is_empty() {
        return none_found();
    }
    Json(json!({ "errorList": list })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_keys_follow_the_documented_ranges() {
        assert!(list_key_is_known("ACC_LIST_1"));
        assert!(list_key_is_known("ACC_LIST_35"));
        assert!(!list_key_is_known("ACC_LIST_36"));
        assert!(!list_key_is_known("ACC_LIST_0"));
        assert!(list_key_is_known("CUST_RESOLVER_5"));
        assert!(!list_key_is_known("GENERIC_1"));
    }
}
