//! Watermarks, the posting ledger, mappings, parking and the audit trail over DynamoDB, in the
//! tables of `docs/aws-runtime.md`.
//!
//! Every read-modify-write is one conditional write, so two workers anywhere can never both get
//! `Claim::Acquired` for one document. Reads are strongly consistent. Timestamps are stored as
//! fixed-width RFC 3339 UTC strings (nanoseconds, `Z`) so they compare and sort as strings;
//! amounts as strings, the exact decimal. Absent values are left out of the item.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::TableNames;
use crate::ports::{
    Audit, AuditFilter, AuditItem, AuditStatus, Claim, Ledger, LedgerEntry, LedgerKey, LedgerState,
    Mappings, ParkedDoc, Parking, Step, StoreError, Watermark, Watermarks,
};

type Item = HashMap<String, AttributeValue>;

/// The store over the five tables. Clones share the SDK client.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    tables: TableNames,
}

impl fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoStore")
            .field("tables", &self.tables)
            .finish()
    }
}

impl DynamoStore {
    pub fn new(client: Client, tables: TableNames) -> Self {
        Self { client, tables }
    }

    /// From an SDK configuration (see [`super::sdk_config`]).
    pub fn from_conf(conf: &aws_config::SdkConfig, tables: TableNames) -> Self {
        Self::new(Client::new(conf), tables)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn tables(&self) -> &TableNames {
        &self.tables
    }
}

// ---------------------------------------------------------------------------------------------
// Values

/// A lease that has certainly run out (what `release` leaves behind).
const LONG_AGO: &str = "1970-01-01T00:00:00.000000000Z";

/// Fixed width (`YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`), so string order is time order. Clamped to
/// years 0000..=9999, which is all that fixed width can hold.
fn ts(t: DateTime<Utc>) -> String {
    let min = DateTime::parse_from_rfc3339("0000-01-01T00:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let max = DateTime::parse_from_rfc3339("9999-12-31T23:59:59.999999999Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    t.clamp(min, max)
        .format("%Y-%m-%dT%H:%M:%S%.9fZ")
        .to_string()
}

fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Backend(format!("bad timestamp '{s}' in DynamoDB: {e}")))
}

/// `t + d`, saturating.
fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn put_opt(item: &mut Item, name: &str, v: &Option<String>) {
    if let Some(v) = v {
        item.insert(name.to_string(), s(v));
    }
}

fn opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

fn req_s(item: &Item, table: &str, name: &str) -> Result<String, StoreError> {
    opt_s(item, name).ok_or_else(|| {
        StoreError::Backend(format!(
            "table {table}: an item has no string attribute '{name}'"
        ))
    })
}

/// A whole number, however DynamoDB (or an emulator) wrote it ("2", "2.0").
fn req_n(item: &Item, table: &str, name: &str) -> Result<u64, StoreError> {
    let bad = || StoreError::Backend(format!("table {table}: bad number attribute '{name}'"));
    let AttributeValue::N(v) = item.get(name).ok_or_else(bad)? else {
        return Err(bad());
    };
    v.parse::<u64>()
        .ok()
        .or_else(|| {
            Decimal::from_str(v)
                .ok()
                .filter(|d| d.fract().is_zero())?
                .to_u64()
        })
        .ok_or_else(bad)
}

/// `#name` → `name` for every `#name` token in the expressions (DynamoDB refuses unused ones).
fn names_in(exprs: &[&str]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for e in exprs {
        let mut rest = *e;
        while let Some(i) = rest.find('#') {
            let tail = &rest[i + 1..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            let name = &tail[..end];
            if !name.is_empty() {
                out.insert(format!("#{name}"), name.to_string());
            }
            rest = &tail[end..];
        }
    }
    out
}

fn values(pairs: Vec<(&str, AttributeValue)>) -> Option<Item> {
    if pairs.is_empty() {
        return None;
    }
    Some(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn non_empty<T>(m: HashMap<String, T>) -> Option<HashMap<String, T>> {
    (!m.is_empty()).then_some(m)
}

/// Whether an SDK error is DynamoDB's ConditionalCheckFailedException.
fn condition_failed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

fn backend<E, R>(op: &str, table: &str, e: &SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: fmt::Debug,
{
    StoreError::Backend(format!(
        "DynamoDB {op} on table {table}: {}",
        DisplayErrorContext(e)
    ))
}

// ---------------------------------------------------------------------------------------------
// Paging

impl DynamoStore {
    /// Every item of a scan, all pages.
    async fn scan_all(
        &self,
        table: &str,
        filter: Option<String>,
        vals: Vec<(&str, AttributeValue)>,
    ) -> Result<Vec<Item>, StoreError> {
        let names = filter
            .as_deref()
            .map(|f| names_in(&[f]))
            .and_then(non_empty);
        let vals = values(vals);
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(table)
                .consistent_read(true)
                .set_filter_expression(filter.clone())
                .set_expression_attribute_names(names.clone())
                .set_expression_attribute_values(vals.clone())
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend("Scan", table, &e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// Pages of a query, handed to `page` until it returns false or the pages run out.
    #[allow(clippy::too_many_arguments)]
    async fn query_pages(
        &self,
        table: &str,
        index: Option<&str>,
        key_condition: &str,
        vals: Vec<(&str, AttributeValue)>,
        forward: bool,
        mut page: impl FnMut(Vec<Item>) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let names = non_empty(names_in(&[key_condition]));
        let vals = values(vals);
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(table)
                .set_index_name(index.map(str::to_string))
                // Global secondary indexes are eventually consistent only.
                .set_consistent_read(index.is_none().then_some(true))
                .key_condition_expression(key_condition)
                .set_expression_attribute_names(names.clone())
                .set_expression_attribute_values(vals.clone())
                .scan_index_forward(forward)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend("Query", table, &e))?;
            if !page(out.items.unwrap_or_default())? {
                return Ok(());
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(()),
            }
        }
    }

    async fn get(&self, table: &str, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("GetItem", table, &e))?;
        Ok(out.item)
    }

    /// Deletes; true if there was an item.
    async fn delete(&self, table: &str, key: Item) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(table)
            .set_key(Some(key))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| backend("DeleteItem", table, &e))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }
}

// ---------------------------------------------------------------------------------------------
// Watermarks

impl Watermarks for DynamoStore {
    async fn watermark(&self, key: &str) -> Result<Option<Watermark>, StoreError> {
        let table = &self.tables.watermarks;
        let Some(item) = self
            .get(table, HashMap::from([("watermark_key".into(), s(key))]))
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Watermark {
            value: req_s(&item, table, "value")?,
            version: req_n(&item, table, "version")?,
        }))
    }

    async fn set_watermark(
        &self,
        key: &str,
        expected: Option<u64>,
        value: &str,
    ) -> Result<bool, StoreError> {
        let table = &self.tables.watermarks;
        let result = match expected {
            None => {
                let cond = "attribute_not_exists(#watermark_key)";
                self.client
                    .put_item()
                    .table_name(table)
                    .item("watermark_key", s(key))
                    .item("value", s(value))
                    .item("version", n(1))
                    .condition_expression(cond)
                    .set_expression_attribute_names(Some(names_in(&[cond])))
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| (condition_failed(&e), backend("PutItem", table, &e)))
            }
            Some(v) => {
                let update = "SET #value = :value, #version = #version + :one";
                let cond = "#version = :expected";
                self.client
                    .update_item()
                    .table_name(table)
                    .key("watermark_key", s(key))
                    .update_expression(update)
                    .condition_expression(cond)
                    .set_expression_attribute_names(Some(names_in(&[update, cond])))
                    .set_expression_attribute_values(values(vec![
                        (":value", s(value)),
                        (":one", n(1)),
                        (":expected", n(v)),
                    ]))
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| (condition_failed(&e), backend("UpdateItem", table, &e)))
            }
        };
        match result {
            Ok(()) => Ok(true),
            Err((true, _)) => Ok(false),
            Err((false, e)) => Err(e),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ledger

fn ledger_key_av(key: &LedgerKey) -> Item {
    HashMap::from([("ledger_key".into(), s(key.to_string()))])
}

fn ledger_entry(key: &LedgerKey, table: &str, item: &Item) -> Result<LedgerEntry, StoreError> {
    let state = match req_s(item, table, "state")?.as_str() {
        "claimed" => LedgerState::Claimed,
        "done" => LedgerState::Done,
        other => {
            return Err(StoreError::Backend(format!(
                "table {table}: bad ledger state '{other}' for {key}"
            )));
        }
    };
    Ok(LedgerEntry {
        key: key.clone(),
        state,
        owner: req_s(item, table, "owner")?,
        lease_until: parse_ts(&req_s(item, table, "lease_until")?)?,
        target_id: opt_s(item, "target_id"),
        target_number: opt_s(item, "target_number"),
        attempts: u32::try_from(req_n(item, table, "attempts")?).unwrap_or(u32::MAX),
        unsettled_create_at: opt_s(item, "unsettled_create_at")
            .as_deref()
            .map(parse_ts)
            .transpose()?,
        target: opt_s(item, "target"),
    })
}

/// How many times `claim` re-reads and retries when the item changes under it.
const CLAIM_ROUNDS: usize = 5;

impl DynamoStore {
    /// Updates a ledger item on condition that `owner` holds the claim; `LostClaim` if not.
    async fn update_claimed(
        &self,
        key: &LedgerKey,
        owner: &str,
        update: &str,
        mut vals: Vec<(&str, AttributeValue)>,
        return_new: bool,
    ) -> Result<Option<Item>, StoreError> {
        let table = &self.tables.ledger;
        let cond = "#owner = :me AND #state = :claimed";
        vals.push((":me", s(owner)));
        vals.push((":claimed", s("claimed")));
        let out = self
            .client
            .update_item()
            .table_name(table)
            .set_key(Some(ledger_key_av(key)))
            .update_expression(update)
            .condition_expression(cond)
            .set_expression_attribute_names(Some(names_in(&[update, cond])))
            .set_expression_attribute_values(values(vals))
            .return_values(if return_new {
                ReturnValue::AllNew
            } else {
                ReturnValue::None
            })
            .send()
            .await;
        match out {
            Ok(out) => Ok(out.attributes),
            Err(e) if condition_failed(&e) => Err(StoreError::LostClaim(key.to_string())),
            Err(e) => Err(backend("UpdateItem", table, &e)),
        }
    }
}

impl Ledger for DynamoStore {
    async fn claim(
        &self,
        key: &LedgerKey,
        owner: &str,
        target: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let table = &self.tables.ledger;
        let lease_until = ts(add(now, lease));
        for _ in 0..CLAIM_ROUNDS {
            // One conditional write: create the entry, or take over a claim for this target (or
            // one recorded before targets were) whose lease ran out (a new attempt; the target
            // id of the earlier one stays).
            let update = "SET #integration = :integration, #document_kind = :kind, \
                 #source_id = :source_id, #state = :claimed, #owner = :me, \
                 #lease_until = :lease, #target = :target, \
                 #attempts = if_not_exists(#attempts, :zero) + :one";
            let cond = "attribute_not_exists(#ledger_key) OR \
                 (#state = :claimed AND #lease_until <= :now AND \
                  (attribute_not_exists(#target) OR #target = :target))";
            let out = self
                .client
                .update_item()
                .table_name(table)
                .set_key(Some(ledger_key_av(key)))
                .update_expression(update)
                .condition_expression(cond)
                .set_expression_attribute_names(Some(names_in(&[update, cond])))
                .set_expression_attribute_values(values(vec![
                    (":integration", s(&key.integration)),
                    (":kind", s(&key.kind)),
                    (":source_id", s(&key.source_id)),
                    (":claimed", s("claimed")),
                    (":me", s(owner)),
                    (":lease", s(&lease_until)),
                    (":target", s(target)),
                    (":now", s(ts(now))),
                    (":zero", n(0)),
                    (":one", n(1)),
                ]))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            match out {
                Ok(out) => {
                    let item = out.attributes.unwrap_or_default();
                    return Ok(Claim::Acquired(ledger_entry(key, table, &item)?));
                }
                Err(e) if condition_failed(&e) => {}
                Err(e) => return Err(backend("UpdateItem", table, &e)),
            }
            // Done, held by someone else, held by us (re-entry), or written for another target.
            let Some(item) = self.get(table, ledger_key_av(key)).await? else {
                continue;
            };
            let entry = ledger_entry(key, table, &item)?;
            let expired = entry.lease_until <= now;
            let elsewhere = entry.target.as_ref().filter(|t| t.as_str() != target);
            if let Some(old) = elsewhere
                && (entry.state == LedgerState::Done || expired || entry.owner == owner)
            {
                // Not done in this target: a new attempt here, knowing nothing of there. On
                // condition that nobody changed it since it was read.
                let update = "SET #state = :claimed, #owner = :me, #lease_until = :lease, \
                     #target = :target, #attempts = #attempts + :one \
                     REMOVE #target_id, #target_number, #unsettled_create_at";
                let cond = "#target = :old AND #state = :was AND #owner = :was_owner";
                let out = self
                    .client
                    .update_item()
                    .table_name(table)
                    .set_key(Some(ledger_key_av(key)))
                    .update_expression(update)
                    .condition_expression(cond)
                    .set_expression_attribute_names(Some(names_in(&[update, cond])))
                    .set_expression_attribute_values(values(vec![
                        (":claimed", s("claimed")),
                        (":me", s(owner)),
                        (":lease", s(&lease_until)),
                        (":target", s(target)),
                        (":one", n(1)),
                        (":old", s(old)),
                        (
                            ":was",
                            s(match entry.state {
                                LedgerState::Done => "done",
                                LedgerState::Claimed => "claimed",
                            }),
                        ),
                        (":was_owner", s(&entry.owner)),
                    ]))
                    .return_values(ReturnValue::AllNew)
                    .send()
                    .await;
                match out {
                    Ok(out) => {
                        let item = out.attributes.unwrap_or_default();
                        return Ok(Claim::Acquired(ledger_entry(key, table, &item)?));
                    }
                    Err(e) if condition_failed(&e) => continue,
                    Err(e) => return Err(backend("UpdateItem", table, &e)),
                }
            }
            if entry.state == LedgerState::Done {
                return Ok(Claim::Done(entry));
            }
            if expired {
                continue; // ran out since the write: try the take-over again
            }
            if entry.owner != owner {
                return Ok(Claim::Busy(entry));
            }
            match self
                .update_claimed(
                    key,
                    owner,
                    "SET #lease_until = :lease, #target = :target",
                    vec![(":lease", s(&lease_until)), (":target", s(target))],
                    true,
                )
                .await
            {
                Ok(item) => {
                    let item = item.unwrap_or_default();
                    return Ok(Claim::Acquired(ledger_entry(key, table, &item)?));
                }
                Err(StoreError::LostClaim(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Backend(format!(
            "table {table}: the ledger entry {key} kept changing during the claim"
        )))
    }

    async fn record_target(
        &self,
        key: &LedgerKey,
        owner: &str,
        target_id: &str,
    ) -> Result<(), StoreError> {
        self.update_claimed(
            key,
            owner,
            "SET #target_id = :target_id REMOVE #unsettled_create_at",
            vec![(":target_id", s(target_id))],
            false,
        )
        .await
        .map(drop)
    }

    async fn record_unsettled_create(
        &self,
        key: &LedgerKey,
        owner: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update_claimed(
            key,
            owner,
            "SET #unsettled_create_at = :at",
            vec![(":at", s(ts(at)))],
            false,
        )
        .await
        .map(drop)
    }

    async fn complete(
        &self,
        key: &LedgerKey,
        owner: &str,
        target_id: &str,
        target_number: &str,
    ) -> Result<(), StoreError> {
        self.update_claimed(
            key,
            owner,
            "SET #state = :done, #target_id = :target_id, #target_number = :target_number",
            vec![
                (":done", s("done")),
                (":target_id", s(target_id)),
                (":target_number", s(target_number)),
            ],
            false,
        )
        .await
        .map(drop)
    }

    async fn release(&self, key: &LedgerKey, owner: &str) -> Result<(), StoreError> {
        match self
            .update_claimed(
                key,
                owner,
                "SET #lease_until = :long_ago",
                vec![(":long_ago", s(LONG_AGO))],
                false,
            )
            .await
        {
            // Not ours any more (or done): nothing to give up.
            Ok(_) | Err(StoreError::LostClaim(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn ledger_entry(&self, key: &LedgerKey) -> Result<Option<LedgerEntry>, StoreError> {
        let table = &self.tables.ledger;
        self.get(table, ledger_key_av(key))
            .await?
            .map(|item| ledger_entry(key, table, &item))
            .transpose()
    }

    async fn forget(
        &self,
        key: &LedgerKey,
        now: DateTime<Utc>,
    ) -> Result<Option<LedgerEntry>, StoreError> {
        let table = &self.tables.ledger;
        // Never while a live claim holds it: a worker may be writing.
        let cond = "attribute_not_exists(#ledger_key) OR #state = :done OR #lease_until <= :now";
        let out = self
            .client
            .delete_item()
            .table_name(table)
            .set_key(Some(ledger_key_av(key)))
            .condition_expression(cond)
            .set_expression_attribute_names(Some(names_in(&[cond])))
            .set_expression_attribute_values(values(vec![
                (":done", s("done")),
                (":now", s(ts(now))),
            ]))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match out {
            Ok(out) => out
                .attributes
                .filter(|a| !a.is_empty())
                .map(|item| ledger_entry(key, table, &item))
                .transpose(),
            Err(e) if condition_failed(&e) => Err(StoreError::LostClaim(key.to_string())),
            Err(e) => Err(backend("DeleteItem", table, &e)),
        }
    }

    async fn ledger_targets(
        &self,
        integration: &str,
    ) -> Result<Vec<(Option<String>, u64)>, StoreError> {
        let t = &self.tables.ledger;
        let items = self
            .scan_all(
                t,
                Some("#integration = :integration".into()),
                vec![(":integration", s(integration))],
            )
            .await?;
        let mut counts = std::collections::BTreeMap::<Option<String>, u64>::new();
        for i in &items {
            *counts.entry(opt_s(i, "target")).or_default() += 1;
        }
        Ok(counts.into_iter().collect())
    }
}

// ---------------------------------------------------------------------------------------------
// Mappings

fn mapping_key(table: &str, source: &str) -> Item {
    HashMap::from([
        ("mapping_table".into(), s(table)),
        ("source_value".into(), s(source)),
    ])
}

impl Mappings for DynamoStore {
    async fn mapping(&self, table: &str, source: &str) -> Result<Option<String>, StoreError> {
        let t = &self.tables.mappings;
        self.get(t, mapping_key(table, source))
            .await?
            .map(|item| req_s(&item, t, "target_value"))
            .transpose()
    }

    async fn put_mapping(&self, table: &str, source: &str, target: &str) -> Result<(), StoreError> {
        let t = &self.tables.mappings;
        let mut item = mapping_key(table, source);
        item.insert("target_value".into(), s(target));
        self.client
            .put_item()
            .table_name(t)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| backend("PutItem", t, &e))?;
        Ok(())
    }

    async fn remove_mapping(&self, table: &str, source: &str) -> Result<bool, StoreError> {
        self.delete(&self.tables.mappings, mapping_key(table, source))
            .await
    }

    async fn list_mappings(
        &self,
        table: Option<&str>,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let t = &self.tables.mappings;
        let items = match table {
            Some(table) => {
                let mut items = Vec::new();
                self.query_pages(
                    t,
                    None,
                    "#mapping_table = :table",
                    vec![(":table", s(table))],
                    true,
                    |page| {
                        items.extend(page);
                        Ok(true)
                    },
                )
                .await?;
                items
            }
            None => self.scan_all(t, None, Vec::new()).await?,
        };
        let mut rows = items
            .iter()
            .map(|i| {
                Ok((
                    req_s(i, t, "mapping_table")?,
                    req_s(i, t, "source_value")?,
                    req_s(i, t, "target_value")?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        rows.sort();
        Ok(rows)
    }
}

// ---------------------------------------------------------------------------------------------
// Parking

fn document_key(integration: &str, kind: &str, source_id: &str) -> Item {
    HashMap::from([(
        "document_key".into(),
        s(format!("{integration}/{kind}/{source_id}")),
    )])
}

impl Parking for DynamoStore {
    async fn park(&self, doc: &ParkedDoc) -> Result<(), StoreError> {
        let t = &self.tables.parked;
        let mut item = document_key(&doc.integration, &doc.kind, &doc.source_id);
        item.insert("integration".into(), s(&doc.integration));
        item.insert("document_kind".into(), s(&doc.kind));
        item.insert("source_id".into(), s(&doc.source_id));
        put_opt(
            &mut item,
            "source_document_number",
            &doc.source_document_number,
        );
        item.insert("reason".into(), s(&doc.reason));
        item.insert("message".into(), s(&doc.message));
        item.insert("parked_at".into(), s(ts(doc.at)));
        self.client
            .put_item()
            .table_name(t)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| backend("PutItem", t, &e))?;
        Ok(())
    }

    async fn parked(&self) -> Result<Vec<ParkedDoc>, StoreError> {
        let t = &self.tables.parked;
        let mut docs = self
            .scan_all(t, None, Vec::new())
            .await?
            .iter()
            .map(|i| {
                Ok(ParkedDoc {
                    integration: req_s(i, t, "integration")?,
                    kind: req_s(i, t, "document_kind")?,
                    source_id: req_s(i, t, "source_id")?,
                    source_document_number: opt_s(i, "source_document_number"),
                    reason: req_s(i, t, "reason")?,
                    message: req_s(i, t, "message")?,
                    at: parse_ts(&req_s(i, t, "parked_at")?)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        docs.sort_by(|a, b| {
            (a.at, &a.integration, &a.kind, &a.source_id).cmp(&(
                b.at,
                &b.integration,
                &b.kind,
                &b.source_id,
            ))
        });
        Ok(docs)
    }

    async fn unpark(
        &self,
        integration: &str,
        kind: &str,
        source_id: &str,
    ) -> Result<bool, StoreError> {
        self.delete(
            &self.tables.parked,
            document_key(integration, kind, source_id),
        )
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// Audit

/// A UUID (version 7 layout) that sorts in creation order within this process: milliseconds
/// since the epoch, then a counter for items created in the same millisecond, then random
/// bits. It breaks ties between audit items with the same `at`, as the insertion order does
/// in the embedded store.
fn audit_id() -> String {
    static LAST: Mutex<(u64, u16)> = Mutex::new((0, 0));
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let (ms, counter) = {
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        *last = if now_ms > last.0 {
            (now_ms, 0)
        } else if last.1 < 0x0FFF {
            (last.0, last.1 + 1)
        } else {
            (last.0 + 1, 0)
        };
        *last
    };
    let random: [u8; 8] = rand::random();
    let mut bytes = [0u8; 10];
    bytes[0] = (counter >> 8) as u8 & 0x0F;
    bytes[1] = counter as u8;
    bytes[2..].copy_from_slice(&random);
    uuid::Builder::from_unix_timestamp_millis(ms, &bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

fn audit_item(t: &str, i: &Item) -> Result<(String, AuditItem), StoreError> {
    let bad = |what: &str, v: &str| StoreError::Backend(format!("table {t}: bad {what} '{v}'"));
    let amount = opt_s(i, "amount")
        .map(|a| Decimal::from_str(&a).map_err(|_| bad("amount", &a)))
        .transpose()?;
    let step = req_s(i, t, "step")?;
    let status = req_s(i, t, "status")?;
    Ok((
        req_s(i, t, "audit_id")?,
        AuditItem {
            at: parse_ts(&req_s(i, t, "at")?)?,
            integration: req_s(i, t, "integration")?,
            document_kind: req_s(i, t, "document_kind")?,
            source_id: req_s(i, t, "source_id")?,
            source_document_number: opt_s(i, "source_document_number"),
            vendor: opt_s(i, "vendor"),
            amount,
            currency: opt_s(i, "currency"),
            step: Step::parse(&step).ok_or_else(|| bad("step", &step))?,
            status: AuditStatus::parse(&status).ok_or_else(|| bad("status", &status))?,
            target_document_number: opt_s(i, "target_document_number"),
            target_id: opt_s(i, "target_id"),
            error: opt_s(i, "error"),
            repeats: if i.contains_key("repeats") {
                req_n(i, t, "repeats")?
            } else {
                0
            },
        },
    ))
}

fn audit_row(id: String, item: &AuditItem) -> Item {
    let mut row: Item = HashMap::from([
        ("audit_id".into(), s(id)),
        (
            "document".into(),
            s(format!("{}/{}", item.integration, item.source_id)),
        ),
        ("at".into(), s(ts(item.at))),
        ("integration".into(), s(&item.integration)),
        ("document_kind".into(), s(&item.document_kind)),
        ("source_id".into(), s(&item.source_id)),
        ("step".into(), s(item.step.as_str())),
        ("status".into(), s(item.status.as_str())),
    ]);
    put_opt(
        &mut row,
        "source_document_number",
        &item.source_document_number,
    );
    put_opt(&mut row, "vendor", &item.vendor);
    put_opt(&mut row, "amount", &item.amount.map(|a| a.to_string()));
    put_opt(&mut row, "currency", &item.currency);
    put_opt(
        &mut row,
        "target_document_number",
        &item.target_document_number,
    );
    put_opt(&mut row, "target_id", &item.target_id);
    put_opt(&mut row, "error", &item.error);
    row
}

/// Every condition of the filter, as the embedded store applies them.
fn matches(f: &AuditFilter, i: &AuditItem) -> bool {
    f.integration.as_ref().is_none_or(|v| *v == i.integration)
        && f.status.is_none_or(|v| v == i.status)
        && f.from.is_none_or(|v| i.at >= v)
        && f.to.is_none_or(|v| i.at < v)
        && f.vendor
            .as_ref()
            .is_none_or(|v| Some(v) == i.vendor.as_ref())
        && f.document
            .as_ref()
            .is_none_or(|v| *v == i.source_id || Some(v) == i.source_document_number.as_ref())
}

/// `at` conditions for a key condition on an index whose range key is `at`.
fn at_range(f: &AuditFilter, vals: &mut Vec<(&'static str, AttributeValue)>) -> &'static str {
    match (f.from, f.to) {
        (Some(from), Some(to)) => {
            vals.push((":from", s(ts(from))));
            vals.push((":to", s(ts(to))));
            // BETWEEN includes `to`; `matches` drops it again.
            " AND #at BETWEEN :from AND :to"
        }
        (Some(from), None) => {
            vals.push((":from", s(ts(from))));
            " AND #at >= :from"
        }
        (None, Some(to)) => {
            vals.push((":to", s(ts(to))));
            " AND #at < :to"
        }
        (None, None) => "",
    }
}

/// Collects matching items from pages in `at` descending order and tells when the latest
/// `limit` of them are known.
struct Newest<'a> {
    filter: &'a AuditFilter,
    table: &'a str,
    found: Vec<(String, AuditItem)>,
    /// Audit ids already found: an item can come back from two indexes.
    seen: std::collections::HashSet<String>,
}

impl Newest<'_> {
    fn page(&mut self, page: Vec<Item>) -> Result<bool, StoreError> {
        let mut oldest_seen = None;
        for i in &page {
            let (id, item) = audit_item(self.table, i)?;
            oldest_seen = Some(item.at);
            if matches(self.filter, &item) && self.seen.insert(id.clone()) {
                self.found.push((id, item));
            }
        }
        let (Some(limit), Some(oldest_seen)) = (self.filter.limit, oldest_seen) else {
            return Ok(true);
        };
        if self.found.len() < limit {
            return Ok(true);
        }
        // Every later page is at or before `oldest_seen`: once the `limit`-th newest match is
        // strictly after it, nothing later can displace it.
        sort_items(&mut self.found);
        let boundary = self.found[self.found.len() - limit].1.at;
        Ok(boundary <= oldest_seen)
    }
}

fn sort_items(items: &mut [(String, AuditItem)]) {
    items.sort_by(|a, b| (a.1.at, &a.0).cmp(&(b.1.at, &b.0)));
}

impl Audit for DynamoStore {
    async fn append_audit(&self, item: &AuditItem) -> Result<(), StoreError> {
        let t = &self.tables.audit;
        self.client
            .put_item()
            .table_name(t)
            .set_item(Some(audit_row(audit_id(), item)))
            .send()
            .await
            .map_err(|e| backend("PutItem", t, &e))?;
        Ok(())
    }

    /// The once key names the item (`audit_id`), so a conditional put appends it once; a
    /// repeat adds one to its `repeats`.
    async fn append_audit_once(&self, item: &AuditItem, once: &str) -> Result<bool, StoreError> {
        let t = &self.tables.audit;
        let id = format!("once-{}", crate::digest::short_hex(once.as_bytes(), 64));
        match self
            .client
            .put_item()
            .table_name(t)
            .set_item(Some(audit_row(id.clone(), item)))
            .condition_expression("attribute_not_exists(audit_id)")
            .send()
            .await
        {
            Ok(_) => return Ok(true),
            Err(e) if condition_failed(&e) => {}
            Err(e) => return Err(backend("PutItem", t, &e)),
        }
        self.client
            .update_item()
            .table_name(t)
            .key("audit_id", s(id))
            .update_expression("ADD repeats :one")
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(|e| backend("UpdateItem", t, &e))?;
        Ok(false)
    }

    /// By the `by_document` (source id, with the integration) and `by_document_number` indexes
    /// when the filter names a document; else by `by_status_date` when it names a status; else a
    /// scan. Every condition is applied again to what comes back.
    async fn query_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditItem>, StoreError> {
        if filter.limit == Some(0) {
            return Ok(Vec::new());
        }
        let t = &self.tables.audit;
        let mut newest = Newest {
            filter,
            table: t,
            found: Vec::new(),
            seen: Default::default(),
        };
        let mut done = false;
        if let Some(document) = &filter.document {
            // A document is named by its source id (`by_document`, which needs the integration)
            // or by its number (`by_document_number`); both are asked, matches are merged.
            let mut any = false;
            if let Some(integration) = &filter.integration {
                let mut vals = vec![(":document", s(format!("{integration}/{document}")))];
                let range = at_range(filter, &mut vals);
                self.query_pages(
                    t,
                    Some("by_document"),
                    &format!("#document = :document{range}"),
                    vals,
                    false,
                    |page| {
                        any |= !page.is_empty();
                        newest.page(page)
                    },
                )
                .await?;
            }
            let mut vals = vec![(":number", s(document))];
            let range = at_range(filter, &mut vals);
            self.query_pages(
                t,
                Some("by_document_number"),
                &format!("#source_document_number = :number{range}"),
                vals,
                false,
                |page| {
                    any |= !page.is_empty();
                    newest.page(page)
                },
            )
            .await?;
            // Without an integration a source id can only be found by a scan (below).
            done = any || filter.integration.is_some();
        }
        if !done && let Some(status) = filter.status {
            let mut vals = vec![(":status", s(status.as_str()))];
            let range = at_range(filter, &mut vals);
            self.query_pages(
                t,
                Some("by_status_date"),
                &format!("#status = :status{range}"),
                vals,
                false,
                |page| newest.page(page),
            )
            .await?;
            done = true;
        }
        if !done {
            let mut conds: Vec<&str> = Vec::new();
            let mut vals: Vec<(&str, AttributeValue)> = Vec::new();
            if let Some(v) = &filter.integration {
                conds.push("#integration = :integration");
                vals.push((":integration", s(v)));
            }
            if let Some(v) = &filter.vendor {
                conds.push("#vendor = :vendor");
                vals.push((":vendor", s(v)));
            }
            if let Some(v) = &filter.document {
                conds.push("(#source_id = :document OR #source_document_number = :document)");
                vals.push((":document", s(v)));
            }
            if let Some(v) = filter.from {
                conds.push("#at >= :from");
                vals.push((":from", s(ts(v))));
            }
            if let Some(v) = filter.to {
                conds.push("#at < :to");
                vals.push((":to", s(ts(v))));
            }
            let expr = (!conds.is_empty()).then(|| conds.join(" AND "));
            for i in &self.scan_all(t, expr, vals).await? {
                let (id, item) = audit_item(t, i)?;
                if matches(filter, &item) {
                    newest.found.push((id, item));
                }
            }
        }
        let mut found = newest.found;
        sort_items(&mut found);
        let skip = filter
            .limit
            .map_or(0, |limit| found.len().saturating_sub(limit));
        Ok(found.into_iter().skip(skip).map(|(_, i)| i).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_fixed_width_and_sort_as_strings() {
        let a = DateTime::parse_from_rfc3339("2024-04-01T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let b = a + TimeDelta::nanoseconds(1);
        assert_eq!(ts(a), "2024-04-01T08:00:00.000000000Z");
        assert_eq!(ts(a).len(), ts(b).len());
        assert!(ts(a) < ts(b));
        assert_eq!(parse_ts(&ts(b)).unwrap(), b);
        assert_eq!(ts(DateTime::<Utc>::MAX_UTC).len(), ts(a).len());
        assert!(LONG_AGO < ts(a).as_str());
    }

    #[test]
    fn audit_ids_sort_in_creation_order() {
        let ids: Vec<String> = (0..5000).map(|_| audit_id()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert!(ids.iter().all(|id| uuid::Uuid::parse_str(id).is_ok()));
    }

    #[test]
    fn expression_names_are_collected() {
        let names = names_in(&["SET #a = :x, #b_c = #b_c + :one", "#a = :y"]);
        assert_eq!(names.len(), 2);
        assert_eq!(names["#b_c"], "b_c");
    }

    #[test]
    fn numbers_are_read_however_they_are_written() {
        let item: Item = HashMap::from([
            ("a".into(), AttributeValue::N("2".into())),
            ("b".into(), AttributeValue::N("2.0".into())),
            ("c".into(), AttributeValue::N("2.5".into())),
        ]);
        assert_eq!(req_n(&item, "t", "a").unwrap(), 2);
        assert_eq!(req_n(&item, "t", "b").unwrap(), 2);
        assert!(req_n(&item, "t", "c").is_err());
    }
}
