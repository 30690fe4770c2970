//! BC master data → Basware's coding lists (`[systems.<basware>.master_data]`): vendors, posting
//! G/L accounts, and dimension values as cost centres or generic lists (`ACC_LIST_n`), upserted
//! by `externalCode` in requests of at most 200 records (§3.3, §3.7).
//!
//! Only real changes are sent: a digest of each record as last confirmed by Basware is kept per
//! record, and a record is sent when its digest differs (and is not already on its way). The
//! import is two-step (§3.7): HTTP 200 only means the schema was valid; each request is then
//! followed on later cycles through `requestStatus` until it is processed, its records' digests
//! recorded (`Success`, `NotProcessed`, `Warning`), its refused records written to the audit
//! trail with Basware's words (`mlc audit`), and acknowledged.
//!
//! Why not `write_once`: an upsert by `externalCode` is idempotent by Basware's own rule (the
//! same record posted twice is `NotProcessed`), like an acknowledge; a lost answer only means
//! the record is sent again on the next cycle.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::BaswareMasterData;
use crate::ports::{AuditStatus, Clock, Queue, Step, Store};
use crate::steps::{Env, StepError, audit_item};
use crate::systems::basware::BaswareClient;
use crate::systems::business_central::{BcClient, MasterRecords};

/// At most 200 records per request: the vendors' limit, and within every other entity's.
const CHUNK: usize = 200;

/// What one cycle did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MasterDataReport {
    /// Records sent in this cycle.
    pub sent: u32,
    /// Records Basware confirmed (processed or identical) in this cycle.
    pub confirmed: u32,
    /// Records Basware refused in this cycle (audited).
    pub refused: u32,
}

fn sent_table(integration: &str, path: &str) -> String {
    format!("{integration}/basware_sent{path}")
}

fn pending_table(integration: &str) -> String {
    format!("{integration}/basware_pending")
}

/// The record's digest: SHA-256 of its JSON (object keys sorted: `serde_json`'s map is ordered).
fn digest(v: &Value) -> String {
    hex::encode(Sha256::digest(
        serde_json::to_vec(v).expect("JSON serializes"),
    ))
}

/// An `externalCode` (1–36 characters) from a readable key, hashed when too long.
fn external_code(prefix: &str, key: &str) -> String {
    let code = format!("{prefix}-{key}");
    if code.chars().count() <= 36 {
        code
    } else {
        format!("{prefix}-{}", &hex::encode(Sha256::digest(key))[..30])
    }
}

fn en_us(text: &str) -> Value {
    json!([{ "translation": text, "language": "en-US" }])
}

/// (path, externalCode, record) for everything BC has that the configuration imports.
fn records(md: &MasterRecords, cfg: &BaswareMasterData) -> Vec<(String, String, Value)> {
    let company = &cfg.company_code;
    let mut out = Vec::new();
    if cfg.vendors {
        for v in &md.vendors {
            let Some(number) = v.number.as_deref() else {
                continue;
            };
            let code = external_code("bc-vendor", number);
            let record = json!({
                "externalCode": code,
                "vendorCode": number,
                "name": v.display_name.clone().unwrap_or_else(|| number.to_string()),
                "companies": [{ "companyCode": company }],
            });
            out.push(("/v1/vendors".to_string(), code, record));
        }
    }
    if cfg.accounts {
        for a in &md.accounts {
            let Some(number) = a.number.as_deref() else {
                continue;
            };
            let code = external_code("bc-account", number);
            let name = a.display_name.clone().unwrap_or_else(|| number.to_string());
            let record = json!({
                "externalCode": code,
                "accountCode": number,
                "accountNames": en_us(&name),
                "companies": [{ "companyCode": company, "inherit": false, "active": true }],
            });
            out.push(("/v1/accounts".to_string(), code, record));
        }
    }
    for (dim, v) in &md.dimension_values {
        let Some(target) = cfg
            .dimensions
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(dim))
            .map(|(_, t)| t)
        else {
            continue;
        };
        let Some(value) = v.code.as_deref() else {
            continue;
        };
        let name = v.display_name.clone().unwrap_or_else(|| value.to_string());
        let code = external_code("bc-dim", &format!("{dim}-{value}"));
        let companies = json!([{ "companyCode": company, "active": true }]);
        let (path, record) = if target == "cost_centers" {
            (
                "/v1/costCenters".to_string(),
                json!({
                    "externalCode": code, "costCenterCode": value,
                    "costCenterNames": en_us(&name), "companies": companies,
                }),
            )
        } else {
            (
                format!("/v1/lists/{target}"),
                json!({
                    "externalCode": code, "text_1": value, "text_2": name,
                    "companies": companies,
                }),
            )
        };
        out.push((path, code, record));
    }
    out
}

fn store_error(context: &str) -> impl Fn(crate::ports::StoreError) -> StepError + '_ {
    move |e| StepError::new(context, e)
}

/// One cycle: follow the requests in progress, then send what changed.
pub(super) async fn sync<Q: Queue, S: Store, C: Clock>(
    env: &Env<Q, S, C>,
    basware: &BaswareClient,
    bc: &BcClient,
    integration: &str,
    cfg: &BaswareMasterData,
) -> Result<MasterDataReport, StepError> {
    let mut report = MasterDataReport::default();
    let pending = pending_table(integration);
    // Digests still on their way, by (path, externalCode): not sent again meanwhile.
    let mut in_flight: BTreeMap<(String, String), String> = BTreeMap::new();
    let rows = env
        .store
        .list_mappings(Some(&pending))
        .await
        .map_err(store_error("reading the Basware requests in progress"))?;
    for (_, request_id, body) in rows {
        let sent: Value = serde_json::from_str(&body).unwrap_or_default();
        let path = sent["path"].as_str().unwrap_or_default().to_string();
        let digests: BTreeMap<String, String> =
            serde_json::from_value(sent["digests"].clone()).unwrap_or_default();
        let status = basware
            .request_status(&request_id)
            .await
            .map_err(|e| StepError::system("reading a Basware request status", e))?;
        let status = match status {
            // Basware does not know it (expired): the records go again.
            None => {
                env.store
                    .remove_mapping(&pending, &request_id)
                    .await
                    .map_err(store_error("forgetting a Basware request"))?;
                continue;
            }
            Some(s) if s.in_progress() => {
                for (code, d) in digests {
                    in_flight.insert((path.clone(), code), d);
                }
                continue;
            }
            Some(s) => s,
        };
        let sent_to = sent_table(integration, &path);
        for item in status.items() {
            match item.status.as_str() {
                "Success" | "NotProcessed" | "Warning" => {
                    if let Some(d) = digests.get(&item.external_code) {
                        env.store
                            .put_mapping(&sent_to, &item.external_code, d)
                            .await
                            .map_err(store_error("recording a confirmed record"))?;
                        report.confirmed += 1;
                    }
                }
                "InProgress" => {}
                _ => {
                    report.refused += 1;
                    let why: Vec<&str> = item.errors.iter().map(|e| e.message.as_str()).collect();
                    let audit = audit_item(
                        env.clock.now(),
                        integration,
                        "master_data",
                        &item.external_code,
                        Step::Post,
                        AuditStatus::Rejected,
                    )
                    .with_error(format!(
                        "Basware refused {path} record {}: {} ({})",
                        item.external_code,
                        if why.is_empty() {
                            "no reason given".to_string()
                        } else {
                            why.join("; ")
                        },
                        item.status
                    ));
                    env.store
                        .append_audit(&audit)
                        .await
                        .map_err(store_error("writing the audit trail"))?;
                }
            }
        }
        basware
            .acknowledge_requests(std::slice::from_ref(&request_id))
            .await
            .map_err(|e| StepError::system("acknowledging a Basware request status", e))?;
        env.store
            .remove_mapping(&pending, &request_id)
            .await
            .map_err(store_error("forgetting a Basware request"))?;
    }

    let md = bc
        .master_records()
        .await
        .map_err(|e| StepError::system("reading Business Central master data", e))?;
    let mut by_path: BTreeMap<String, Vec<(String, Value, String)>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (path, code, record) in records(&md, cfg) {
        if !seen.insert((path.clone(), code.clone())) {
            continue;
        }
        let d = digest(&record);
        let confirmed = env
            .store
            .mapping(&sent_table(integration, &path), &code)
            .await
            .map_err(store_error("reading a record's digest"))?;
        if confirmed.as_deref() == Some(d.as_str())
            || in_flight.get(&(path.clone(), code.clone())) == Some(&d)
        {
            continue;
        }
        by_path.entry(path).or_default().push((code, record, d));
    }
    for (path, changed) in by_path {
        for chunk in changed.chunks(CHUNK) {
            let body: Vec<Value> = chunk.iter().map(|(_, r, _)| r.clone()).collect();
            let request_id = basware
                .import(&path, &body)
                .await
                .map_err(|e| StepError::system(&format!("importing {path} into Basware"), e))?;
            let digests: BTreeMap<&str, &str> = chunk
                .iter()
                .map(|(c, _, d)| (c.as_str(), d.as_str()))
                .collect();
            env.store
                .put_mapping(
                    &pending,
                    &request_id,
                    &json!({ "path": path, "digests": digests }).to_string(),
                )
                .await
                .map_err(store_error("recording a Basware request"))?;
            report.sent += chunk.len() as u32;
        }
    }
    Ok(report)
}
