//! The Data Management package API (d365-fo.md B6): the actions of
//! `DataManagementDefinitionGroups`, a blob store standing in for the Azure container the write
//! URL points into, and imports that run as a batch job.
//!
//! - `GetAzureWriteUrl {uniqueFileName}` → `{"value":"{\"BlobId\":…,\"BlobUrl\":…}"}`: the
//!   value is a JSON *string* holding JSON (B6 step 1);
//! - `PUT {BlobUrl}` stores the package; Azure requires `x-ms-blob-type: BlockBlob` (B6 step 2,
//!   [UNCONFIRMED] in the F&O docs, so the simulator takes the stricter side and refuses a PUT
//!   without it, 400 with Azure's `MissingRequiredHeader`); the SAS signature must match;
//! - `ImportFromPackage` refuses a second import while one is queued or executing ("must not
//!   be called in parallel", B6 step 3), refuses `overwrite: true` (the package holds a
//!   composite entity, B6), answers the execution id at once and executes later: `NotRun`,
//!   then `Executing` for `FoConfig::dmf_execution`, then `Succeeded`, `PartiallySucceeded` or
//!   `Failed` (B6 step 4);
//! - the rows go into the same tables the OData entities serve, through the same checks
//!   (`handlers::insert_checked`): an unknown vendor or a refused dimension combination is
//!   refused with the same Infolog words;
//! - per-record errors: `GetImportStagingErrorFileUrl` (source → staging: a malformed package),
//!   `GenerateImportTargetErrorKeysFile` (true when target rows failed), then
//!   `GetImportTargetErrorKeysFileUrl`, "" on the first ask after generating (B6 step 5 says to
//!   poll until it is non-empty), then a URL of a CSV of the failed keys with F&O's words.
//!
//! Package layout (the fact sheet gives no manifest; this is our choice, the stricter reading):
//! a zip holding `Manifest.xml` (the definition group, one composite entity, and for each of
//! its entities the data file and the format, CSV), `PackageHeader.xml`, and one CSV per
//! entity named in the manifest, the first line naming the columns by entity field names. One
//! composite entity per package (B6): the vendor invoice, header and lines, which lands or is
//! refused as one document (a refused line refuses its whole invoice). Rows carry no
//! `dataAreaId`: the import's `legalEntityId` is the company of every row (one legal entity per
//! package). Doubt: real packages may differ in file names and manifest elements; what the
//! simulator checks is that everything it reads is named by the manifest.

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::FoSim;
use super::errors::{self, FoError};
use super::handlers::insert_checked;
use super::rules::decimal_fields;
use super::schema::{self, EntitySet, KeyType};
use super::store::{Fields, decimal_value, key_of};

/// The composite entity the simulator imports, and its two entities.
pub const COMPOSITE: &str = "VendorInvoiceDocument";
pub const HEADER_ENTITY: &str = "VendorInvoiceHeaderEntity";
pub const LINE_ENTITY: &str = "VendorInvoiceLineEntity";

#[derive(Clone, Debug)]
pub(crate) struct Execution {
    pub status: &'static str,
    /// Source → staging errors (a malformed package).
    pub staging_errors: Vec<String>,
    /// Target errors: (HeaderReference, F&O's words).
    pub target_errors: Vec<(String, String)>,
    /// How often the keys file URL was asked for since it was generated.
    pub keys_asked: u32,
    pub keys_generated: bool,
}

#[derive(Default)]
pub(crate) struct Dmf {
    /// Blob name → (SAS signature issued, content once PUT).
    blobs: std::sync::Mutex<HashMap<String, (String, Option<Bytes>)>>,
    executions: std::sync::Mutex<HashMap<String, Execution>>,
    /// Error files served by `GET /blob/dmf-errors/{name}`.
    files: std::sync::Mutex<HashMap<String, String>>,
}

/// What the simulator's DMF saw, for tests.
#[derive(Clone, Debug, Default)]
pub struct DmfStats {
    pub packages_uploaded: usize,
    pub imports: usize,
}

impl FoSim {
    pub fn dmf_stats(&self) -> DmfStats {
        let d = &self.inner.dmf;
        DmfStats {
            packages_uploaded: d
                .blobs
                .lock()
                .unwrap()
                .values()
                .filter(|(_, b)| b.is_some())
                .count(),
            imports: d.executions.lock().unwrap().len(),
        }
    }

    /// The status of an execution, as `GetExecutionSummaryStatus` answers it.
    pub fn dmf_status(&self, execution_id: &str) -> String {
        self.inner
            .dmf
            .executions
            .lock()
            .unwrap()
            .get(execution_id)
            .map(|e| e.status)
            .unwrap_or("Unknown")
            .to_string()
    }
}

/// B6: every answer is `{"@odata.context": …#Edm.String, "value": …}`.
fn answer(sim: &FoSim, value: Value) -> Response {
    (
        StatusCode::OK,
        Json(json!({
            "@odata.context": format!("{}/data/$metadata#Edm.String", sim.base_url()),
            "value": value,
        })),
    )
        .into_response()
}

fn refuse(message: impl Into<String>) -> Response {
    FoError::bad_request(message).into_response()
}

fn str_arg<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

/// `POST /data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.{Action}`
pub(crate) async fn action(
    State(sim): State<FoSim>,
    Path(action): Path<String>,
    body: Bytes,
) -> Response {
    let Some(action) = action.strip_prefix("Microsoft.Dynamics.DataEntities.") else {
        return FoError::not_found(format!("No action '{action}' is bound to the entity set."))
            .into_response();
    };
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return refuse("The request body must be a JSON object."),
    };
    match action {
        "GetAzureWriteUrl" => write_url(&sim, &body),
        "ImportFromPackage" => import(&sim, &body),
        "GetExecutionSummaryStatus" => {
            let Some(id) = str_arg(&body, "executionId") else {
                return refuse("executionId is required.");
            };
            answer(&sim, json!(sim.dmf_status(id)))
        }
        "GetImportStagingErrorFileUrl" => error_file(&sim, &body, true),
        "GenerateImportTargetErrorKeysFile" => {
            let Some(id) = str_arg(&body, "executionId") else {
                return refuse("executionId is required.");
            };
            let mut ex = sim.inner.dmf.executions.lock().unwrap();
            let Some(e) = ex.get_mut(id) else {
                return answer(&sim, json!(false));
            };
            e.keys_generated = true;
            e.keys_asked = 0;
            let any = !e.target_errors.is_empty();
            drop(ex);
            answer(&sim, json!(any))
        }
        "GetImportTargetErrorKeysFileUrl" => error_file(&sim, &body, false),
        other => FoError::not_found(format!(
            "No action 'Microsoft.Dynamics.DataEntities.{other}' is bound to 'DataManagementDefinitionGroups'."
        ))
        .into_response(),
    }
}

fn write_url(sim: &FoSim, body: &Value) -> Response {
    let Some(name) = str_arg(body, "uniqueFileName").filter(|n| !n.is_empty()) else {
        return refuse("uniqueFileName is required.");
    };
    let blob = format!("{}-{}", uuid::Uuid::new_v4().simple(), sanitize(name));
    let sig = uuid::Uuid::new_v4().simple().to_string();
    sim.inner
        .dmf
        .blobs
        .lock()
        .unwrap()
        .insert(blob.clone(), (sig.clone(), None));
    let inner = json!({
        "BlobId": format!("{{{}}}", uuid::Uuid::new_v4()),
        "BlobUrl": format!("{}/blob/dmf/{blob}?sv=2014-02-14&sr=b&sp=rw&sig={sig}", sim.base_url()),
    });
    // B6: the value is a string holding JSON, parsed twice by the client.
    answer(sim, Value::String(inner.to_string()))
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn sig_of(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .find_map(|p| p.strip_prefix("sig="))
        .map(str::to_owned)
}

/// Azure's error body (XML) for a blob request.
fn azure_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/xml")],
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
        ),
    )
        .into_response()
}

/// `PUT /blob/dmf/{name}?…&sig=…`: the package upload.
pub(crate) async fn put_blob(
    State(sim): State<FoSim>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut blobs = sim.inner.dmf.blobs.lock().unwrap();
    let Some((sig, content)) = blobs.get_mut(&name) else {
        return azure_error(
            StatusCode::NOT_FOUND,
            "ContainerNotFound",
            "The specified container does not exist.",
        );
    };
    if sig_of(query.as_deref()).as_deref() != Some(sig.as_str()) {
        return azure_error(
            StatusCode::FORBIDDEN,
            "AuthenticationFailed",
            "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
        );
    }
    match headers.get("x-ms-blob-type").and_then(|v| v.to_str().ok()) {
        Some("BlockBlob") => {}
        Some(_) => {
            return azure_error(
                StatusCode::BAD_REQUEST,
                "InvalidHeaderValue",
                "The value for one of the HTTP headers is not in the correct format.",
            );
        }
        None => {
            return azure_error(
                StatusCode::BAD_REQUEST,
                "MissingRequiredHeader",
                "An HTTP header that's mandatory for this request is not specified. x-ms-blob-type",
            );
        }
    }
    *content = Some(body);
    StatusCode::CREATED.into_response()
}

/// `GET /blob/dmf-errors/{name}`: an error file an action pointed to.
pub(crate) async fn get_error_file(State(sim): State<FoSim>, Path(name): Path<String>) -> Response {
    match sim.inner.dmf.files.lock().unwrap().get(&name) {
        Some(text) => {
            (StatusCode::OK, [("content-type", "text/csv")], text.clone()).into_response()
        }
        None => azure_error(
            StatusCode::NOT_FOUND,
            "BlobNotFound",
            "The specified blob does not exist.",
        ),
    }
}

fn error_file(sim: &FoSim, body: &Value, staging: bool) -> Response {
    let Some(id) = str_arg(body, "executionId") else {
        return refuse("executionId is required.");
    };
    let entity = str_arg(body, "entityName").unwrap_or_default().to_string();
    let mut ex = sim.inner.dmf.executions.lock().unwrap();
    let Some(e) = ex.get_mut(id) else {
        return answer(sim, json!(""));
    };
    let text = if staging {
        if e.staging_errors.is_empty() {
            return answer(sim, json!(""));
        }
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record(["Error"]);
        for m in &e.staging_errors {
            let _ = w.write_record([m]);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    } else {
        // B6: generate first, then poll until the URL is non-empty.
        if !e.keys_generated || e.target_errors.is_empty() {
            return answer(sim, json!(""));
        }
        e.keys_asked += 1;
        if e.keys_asked < 2 {
            return answer(sim, json!(""));
        }
        // Only the header entity's keys: the composite lands or fails per invoice.
        if !entity.is_empty() && entity != HEADER_ENTITY && entity != COMPOSITE {
            return answer(sim, json!(""));
        }
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record(["HeaderReference", "Error"]);
        for (r, m) in &e.target_errors {
            let _ = w.write_record([r, m]);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    };
    drop(ex);
    let name = format!(
        "{}-{}.csv",
        sanitize(id),
        if staging { "staging" } else { "target-keys" }
    );
    sim.inner
        .dmf
        .files
        .lock()
        .unwrap()
        .insert(name.clone(), text);
    answer(
        sim,
        json!(format!(
            "{}/blob/dmf-errors/{name}?sv=2014-02-14&sr=b&sp=r&sig=x",
            sim.base_url()
        )),
    )
}

fn import(sim: &FoSim, body: &Value) -> Response {
    let Some(url) = str_arg(body, "packageUrl") else {
        return refuse("packageUrl is required.");
    };
    let Some(legal_entity) = str_arg(body, "legalEntityId").filter(|l| !l.is_empty()) else {
        return refuse("legalEntityId is required.");
    };
    if body.get("overwrite").and_then(Value::as_bool) != Some(false) {
        // B6: overwrite must be false for composite entities.
        return errors::render(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error: Overwrite is not supported for composite entities; import with overwrite false.",
            "System.InvalidOperationException",
        );
    }
    if body.get("execute").and_then(Value::as_bool) != Some(true) {
        return refuse("execute must be true: the simulator does not stage without executing.");
    }
    let blob = url
        .split('?')
        .next()
        .and_then(|u| u.rsplit("/blob/dmf/").next())
        .unwrap_or_default()
        .to_string();
    let Some(package) = sim
        .inner
        .dmf
        .blobs
        .lock()
        .unwrap()
        .get(&blob)
        .and_then(|(_, c)| c.clone())
    else {
        return errors::render(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error: The package could not be read from the given URL.",
            "System.IO.FileNotFoundException",
        );
    };
    let mut executions = sim.inner.dmf.executions.lock().unwrap();
    // B6: must not be called in parallel. Doubt: F&O's words and status for a second import
    // are not in the fact sheet; a 500 in the B3 wrapper, refusing it, is the stricter side.
    if let Some((id, _)) = executions
        .iter()
        .find(|(_, e)| e.status == "NotRun" || e.status == "Executing")
    {
        return errors::render(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!(
                "Error: Data package import {id} is still executing; ImportFromPackage must not be called in parallel."
            ),
            "System.InvalidOperationException",
        );
    }
    let id = match str_arg(body, "executionId").filter(|i| !i.is_empty()) {
        Some(i) if executions.contains_key(i) => {
            return errors::render(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("Error: Execution id {i} is already used."),
                "System.InvalidOperationException",
            );
        }
        Some(i) => i.to_string(),
        None => format!("mlc-sim-{}", uuid::Uuid::new_v4().simple()),
    };
    executions.insert(
        id.clone(),
        Execution {
            status: "NotRun",
            staging_errors: Vec::new(),
            target_errors: Vec::new(),
            keys_asked: 0,
            keys_generated: false,
        },
    );
    drop(executions);
    let (sim2, id2, le) = (sim.clone(), id.clone(), legal_entity.to_lowercase());
    let took = sim.inner.cfg.dmf_execution;
    // A batch job: queued, then executing for a while, then done.
    tokio::spawn(async move {
        tokio::time::sleep(took / 4).await;
        set_status(&sim2, &id2, "Executing");
        tokio::time::sleep(took).await;
        let result = execute(&sim2, &package, &le);
        let mut ex = sim2.inner.dmf.executions.lock().unwrap();
        if let Some(e) = ex.get_mut(&id2) {
            match result {
                Err(staging) => {
                    e.status = "Failed";
                    e.staging_errors = vec![staging];
                }
                Ok((landed, refused)) => {
                    e.status = match (landed, refused.is_empty()) {
                        (_, true) => "Succeeded",
                        (0, false) => "Failed",
                        _ => "PartiallySucceeded",
                    };
                    e.target_errors = refused;
                }
            }
        }
    });
    answer(sim, json!(id))
}

fn set_status(sim: &FoSim, id: &str, status: &'static str) {
    if let Some(e) = sim.inner.dmf.executions.lock().unwrap().get_mut(id) {
        e.status = status;
    }
}

/// The text between `<tag>` and `</tag>`, each occurrence.
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(a) = rest.find(&open) {
        let after = &rest[a + open.len()..];
        let Some(b) = after.find(&close) else { break };
        out.push(&after[..b]);
        rest = &after[b + close.len()..];
    }
    out
}

fn read_file(zip: &mut zip::ZipArchive<Cursor<Bytes>>, name: &str) -> Result<String, String> {
    let mut f = zip
        .by_name(name)
        .map_err(|_| format!("The package has no file '{name}'."))?;
    let mut text = String::new();
    f.read_to_string(&mut text)
        .map_err(|e| format!("The file '{name}' could not be read: {e}."))?;
    Ok(text)
}

/// The rows of one entity's CSV, typed as the OData entity types them.
fn rows(set: &EntitySet, text: &str, company: &str) -> Result<Vec<Fields>, String> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let heads = r.headers().map_err(|e| e.to_string())?.clone();
    for h in &heads {
        if !set.has_field(h) || h == "dataAreaId" {
            return Err(format!(
                "The column '{h}' does not map to a field of entity '{}'.",
                set.aot
            ));
        }
    }
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| e.to_string())?;
        let mut f = Fields::new();
        f.insert("dataAreaId".into(), company.into());
        for (h, v) in heads.iter().zip(rec.iter()) {
            if v.is_empty() {
                continue;
            }
            let value = if set.key_type(h) == Some(KeyType::Int) {
                json!(
                    v.parse::<i64>()
                        .map_err(|_| format!("'{v}' is not a number ({h})."))?
                )
            } else if decimal_fields(set.name).contains(&h) {
                decimal_value(
                    v.parse()
                        .map_err(|_| format!("'{v}' is not a decimal ({h})."))?,
                )
            } else {
                Value::String(v.to_string())
            };
            f.insert(h.to_string(), value);
        }
        out.push(f);
    }
    Ok(out)
}

/// Runs a package: `Ok((invoices landed, refused (HeaderReference, words)))`, or a staging
/// error (the package itself is wrong; nothing lands).
fn execute(
    sim: &FoSim,
    package: &Bytes,
    company: &str,
) -> Result<(usize, Vec<(String, String)>), String> {
    let mut zip = zip::ZipArchive::new(Cursor::new(package.clone()))
        .map_err(|e| format!("The package is not a zip file: {e}."))?;
    let manifest = read_file(&mut zip, "Manifest.xml")?;
    read_file(&mut zip, "PackageHeader.xml")?;
    let composite = elements(&manifest, "CompositeEntity");
    if composite != [COMPOSITE] {
        // B6: one composite entity per package.
        return Err(format!(
            "The package must hold exactly one composite entity ({COMPOSITE}); it names {composite:?}."
        ));
    }
    let mut files: HashMap<&str, &str> = HashMap::new();
    for e in elements(&manifest, "Entity") {
        let name = elements(e, "EntityName")
            .first()
            .copied()
            .unwrap_or_default();
        let file = elements(e, "FileName").first().copied().unwrap_or_default();
        if elements(e, "SourceFormat").first().copied() != Some("CSV") {
            return Err(format!(
                "Entity '{name}': only the CSV source format is set up."
            ));
        }
        files.insert(name, file);
    }
    let (Some(hfile), Some(lfile)) = (files.get(HEADER_ENTITY), files.get(LINE_ENTITY)) else {
        return Err(format!(
            "The manifest must name {HEADER_ENTITY} and {LINE_ENTITY} with their files."
        ));
    };
    if files.len() != 2 {
        return Err("The manifest names entities outside the composite entity.".into());
    }
    let hset = schema::set(schema::HEADERS).expect("schema");
    let lset = schema::set(schema::LINES).expect("schema");
    let headers = rows(hset, &read_file(&mut zip, hfile)?, company)?;
    let lines = rows(lset, &read_file(&mut zip, lfile)?, company)?;
    let refused_combos = sim.inner.refused.lock().unwrap().clone();
    let mut store = sim.inner.store.lock().unwrap();
    let (mut landed, mut refused) = (0, Vec::new());
    for h in headers {
        let reference = h
            .get("HeaderReference")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let hkey = key_of(hset, &h);
        if let Err(e) = insert_checked(sim, &mut store, &refused_combos, hset, h) {
            refused.push((reference, e.inner));
            continue;
        }
        // The composite lands whole or not at all: a refused line takes its header and the
        // lines before it out again.
        let mut done: Vec<String> = Vec::new();
        let mut failed = None;
        for l in lines
            .iter()
            .filter(|l| l.get("HeaderReference").and_then(Value::as_str) == Some(&reference))
        {
            let lkey = key_of(lset, l);
            match insert_checked(sim, &mut store, &refused_combos, lset, l.clone()) {
                Ok(_) => done.push(lkey),
                Err(e) => {
                    failed = Some(e.inner);
                    break;
                }
            }
        }
        match failed {
            None => landed += 1,
            Some(words) => {
                for k in done {
                    store.table_mut(lset.name).remove(&k);
                }
                store.table_mut(hset.name).remove(&hkey);
                refused.push((reference, words));
            }
        }
    }
    Ok((landed, refused))
}

/// How long the simulator's imports take by default (queued a quarter of it first).
pub const DEFAULT_EXECUTION: Duration = Duration::from_millis(400);
