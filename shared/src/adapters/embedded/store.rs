//! Watermarks, the posting ledger, mappings, parking and the audit trail over SQLite.
//!
//! Every read-modify-write (the ledger claim above all) is one `BEGIN IMMEDIATE` transaction,
//! so two workers — in this process or another one on the same file — can never both get
//! `Claim::Acquired` for one document.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Row, params, params_from_iter};
use rust_decimal::Decimal;

use super::db::{Cached, Db, Fail, add, parse_ts, ts};
use crate::ports::{
    Audit, AuditFilter, AuditItem, AuditStatus, Claim, Ledger, LedgerEntry, LedgerKey, LedgerState,
    Mappings, ParkedDoc, Parking, Step, StoreError, Watermark, Watermarks,
};

/// The embedded store; clones share the connection.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    db: Db,
}

impl SqliteStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}

/// A lease that has certainly run out (what `release` leaves behind).
const LONG_AGO: &str = "1970-01-01T00:00:00.000000000Z";

fn ledger_entry(key: &LedgerKey, row: &Row<'_>) -> rusqlite::Result<Result<LedgerEntry, Fail>> {
    let state: String = row.get("state")?;
    let lease: String = row.get("lease_until")?;
    let attempts: u32 = row.get("attempts")?;
    let owner: String = row.get("owner")?;
    let target_id: Option<String> = row.get("target_id")?;
    let target_number: Option<String> = row.get("target_number")?;
    let unsettled: Option<String> = row.get("unsettled_create_at")?;
    let target: Option<String> = row.get("target")?;
    Ok((|| {
        let state = match state.as_str() {
            "claimed" => LedgerState::Claimed,
            "done" => LedgerState::Done,
            other => return Err(Fail::Other(format!("bad ledger state '{other}'"))),
        };
        Ok(LedgerEntry {
            key: key.clone(),
            state,
            owner,
            lease_until: parse_ts(&lease)?,
            target_id,
            target_number,
            attempts,
            unsettled_create_at: unsettled.as_deref().map(parse_ts).transpose()?,
            target,
        })
    })())
}

fn read_entry(conn: &rusqlite::Connection, key: &LedgerKey) -> Result<Option<LedgerEntry>, Fail> {
    let row = conn
        .query_row_cached(
            "SELECT state, owner, lease_until, target_id, target_number, attempts,
                    unsettled_create_at, target
             FROM ledger WHERE integration = ?1 AND kind = ?2 AND source_id = ?3",
            params![key.integration, key.kind, key.source_id],
            |r| ledger_entry(key, r),
        )
        .optional()?;
    row.transpose()
}

impl Watermarks for SqliteStore {
    async fn watermark(&self, key: &str) -> Result<Option<Watermark>, StoreError> {
        let key = key.to_string();
        Ok(self
            .db
            .call(move |conn| {
                Ok(conn
                    .query_row_cached(
                        "SELECT value, version FROM watermarks WHERE key = ?1",
                        [key],
                        |r| {
                            Ok(Watermark {
                                value: r.get(0)?,
                                version: r.get::<_, i64>(1)? as u64,
                            })
                        },
                    )
                    .optional()?)
            })
            .await?)
    }

    async fn set_watermark(
        &self,
        key: &str,
        expected: Option<u64>,
        value: &str,
    ) -> Result<bool, StoreError> {
        let (key, value) = (key.to_string(), value.to_string());
        Ok(self
            .db
            .call(move |conn| {
                let n = match expected {
                    None => conn.execute_cached(
                        "INSERT INTO watermarks (key, value, version) VALUES (?1, ?2, 1)
                         ON CONFLICT (key) DO NOTHING",
                        params![key, value],
                    )?,
                    Some(v) => conn.execute_cached(
                        "UPDATE watermarks SET value = ?2, version = version + 1
                         WHERE key = ?1 AND version = ?3",
                        params![key, value, v as i64],
                    )?,
                };
                Ok(n == 1)
            })
            .await?)
    }
}

impl Ledger for SqliteStore {
    async fn claim(
        &self,
        key: &LedgerKey,
        owner: &str,
        target: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let (key, owner, target) = (key.clone(), owner.to_string(), target.to_string());
        let lease_until = add(now, lease);
        Ok(self
            .db
            .write(move |tx| {
                let k = (&key.integration, &key.kind, &key.source_id);
                let Some(entry) = read_entry(tx, &key)? else {
                    tx.execute_cached(
                        "INSERT INTO ledger (integration, kind, source_id, state, owner,
                             lease_until, target_id, target_number, attempts, target)
                         VALUES (?1, ?2, ?3, 'claimed', ?4, ?5, NULL, NULL, 1, ?6)",
                        params![k.0, k.1, k.2, owner, ts(lease_until), target],
                    )?;
                    return Ok(Claim::Acquired(LedgerEntry {
                        key,
                        state: LedgerState::Claimed,
                        owner,
                        lease_until,
                        target_id: None,
                        target_number: None,
                        attempts: 1,
                        unsettled_create_at: None,
                        target: Some(target),
                    }));
                };
                let expired = entry.lease_until <= now;
                let elsewhere = entry.target.as_ref().is_some_and(|t| *t != target);
                if elsewhere
                    && (entry.state == LedgerState::Done || expired || entry.owner == owner)
                {
                    // Not done in this target: a new attempt here, knowing nothing of there.
                    let attempts = entry.attempts + 1;
                    tx.execute_cached(
                        "UPDATE ledger SET state = 'claimed', owner = ?4, lease_until = ?5,
                             attempts = ?6, target = ?7, target_id = NULL, target_number = NULL,
                             unsettled_create_at = NULL
                         WHERE integration = ?1 AND kind = ?2 AND source_id = ?3",
                        params![k.0, k.1, k.2, owner, ts(lease_until), attempts, target],
                    )?;
                    return Ok(Claim::Acquired(LedgerEntry {
                        state: LedgerState::Claimed,
                        owner,
                        lease_until,
                        target_id: None,
                        target_number: None,
                        attempts,
                        unsettled_create_at: None,
                        target: Some(target),
                        ..entry
                    }));
                }
                if entry.state == LedgerState::Done {
                    return Ok(Claim::Done(entry));
                }
                if !expired && entry.owner != owner {
                    return Ok(Claim::Busy(entry));
                }
                // Take-over of a run-out lease (a new attempt), or re-entry by the holder.
                let attempts = if expired {
                    entry.attempts + 1
                } else {
                    entry.attempts
                };
                tx.execute_cached(
                    "UPDATE ledger SET owner = ?4, lease_until = ?5, attempts = ?6, target = ?7
                     WHERE integration = ?1 AND kind = ?2 AND source_id = ?3",
                    params![k.0, k.1, k.2, owner, ts(lease_until), attempts, target],
                )?;
                Ok(Claim::Acquired(LedgerEntry {
                    owner,
                    lease_until,
                    attempts,
                    target: Some(target),
                    ..entry
                }))
            })
            .await?)
    }

    async fn record_target(
        &self,
        key: &LedgerKey,
        owner: &str,
        target_id: &str,
    ) -> Result<(), StoreError> {
        let (key, owner, target_id) = (key.clone(), owner.to_string(), target_id.to_string());
        Ok(self
            .db
            .call(move |conn| {
                let n = conn.execute_cached(
                    "UPDATE ledger SET target_id = ?5, unsettled_create_at = NULL
                     WHERE integration = ?1 AND kind = ?2 AND source_id = ?3
                       AND owner = ?4 AND state = 'claimed'",
                    params![key.integration, key.kind, key.source_id, owner, target_id],
                )?;
                if n == 0 {
                    return Err(Fail::LostClaim(key.to_string()));
                }
                Ok(())
            })
            .await?)
    }

    async fn record_unsettled_create(
        &self,
        key: &LedgerKey,
        owner: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (key, owner) = (key.clone(), owner.to_string());
        Ok(self
            .db
            .call(move |conn| {
                let n = conn.execute_cached(
                    "UPDATE ledger SET unsettled_create_at = ?5
                     WHERE integration = ?1 AND kind = ?2 AND source_id = ?3
                       AND owner = ?4 AND state = 'claimed'",
                    params![key.integration, key.kind, key.source_id, owner, ts(at)],
                )?;
                if n == 0 {
                    return Err(Fail::LostClaim(key.to_string()));
                }
                Ok(())
            })
            .await?)
    }

    async fn complete(
        &self,
        key: &LedgerKey,
        owner: &str,
        target_id: &str,
        target_number: &str,
    ) -> Result<(), StoreError> {
        let (key, owner) = (key.clone(), owner.to_string());
        let (target_id, target_number) = (target_id.to_string(), target_number.to_string());
        Ok(self
            .db
            .call(move |conn| {
                let n = conn.execute_cached(
                    "UPDATE ledger SET state = 'done', target_id = ?5, target_number = ?6
                     WHERE integration = ?1 AND kind = ?2 AND source_id = ?3
                       AND owner = ?4 AND state = 'claimed'",
                    params![
                        key.integration,
                        key.kind,
                        key.source_id,
                        owner,
                        target_id,
                        target_number
                    ],
                )?;
                if n == 0 {
                    return Err(Fail::LostClaim(key.to_string()));
                }
                Ok(())
            })
            .await?)
    }

    async fn release(&self, key: &LedgerKey, owner: &str) -> Result<(), StoreError> {
        let (key, owner) = (key.clone(), owner.to_string());
        Ok(self
            .db
            .call(move |conn| {
                // Not ours any more (or done): nothing to give up.
                conn.execute_cached(
                    "UPDATE ledger SET lease_until = ?5
                     WHERE integration = ?1 AND kind = ?2 AND source_id = ?3
                       AND owner = ?4 AND state = 'claimed'",
                    params![key.integration, key.kind, key.source_id, owner, LONG_AGO],
                )?;
                Ok(())
            })
            .await?)
    }

    async fn ledger_entry(&self, key: &LedgerKey) -> Result<Option<LedgerEntry>, StoreError> {
        let key = key.clone();
        Ok(self.db.call(move |conn| read_entry(conn, &key)).await?)
    }

    async fn forget(
        &self,
        key: &LedgerKey,
        now: DateTime<Utc>,
    ) -> Result<Option<LedgerEntry>, StoreError> {
        let key = key.clone();
        Ok(self
            .db
            .write(move |tx| {
                let Some(entry) = read_entry(tx, &key)? else {
                    return Ok(None);
                };
                if entry.state == LedgerState::Claimed && entry.lease_until > now {
                    return Err(Fail::LostClaim(key.to_string()));
                }
                tx.execute_cached(
                    "DELETE FROM ledger WHERE integration = ?1 AND kind = ?2 AND source_id = ?3",
                    params![key.integration, key.kind, key.source_id],
                )?;
                Ok(Some(entry))
            })
            .await?)
    }

    async fn ledger_targets(
        &self,
        integration: &str,
    ) -> Result<Vec<(Option<String>, u64)>, StoreError> {
        let integration = integration.to_string();
        Ok(self
            .db
            .call(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT target, COUNT(*) FROM ledger WHERE integration = ?1
                     GROUP BY target ORDER BY target",
                )?;
                let rows = stmt
                    .query_map([integration], |r| {
                        Ok((r.get::<_, Option<String>>(0)?, r.get::<_, i64>(1)? as u64))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?)
    }
}

impl Mappings for SqliteStore {
    async fn mapping(&self, table: &str, source: &str) -> Result<Option<String>, StoreError> {
        let (table, source) = (table.to_string(), source.to_string());
        Ok(self
            .db
            .call(move |conn| {
                Ok(conn
                    .query_row_cached(
                        "SELECT target FROM mappings WHERE tbl = ?1 AND source = ?2",
                        params![table, source],
                        |r| r.get(0),
                    )
                    .optional()?)
            })
            .await?)
    }

    async fn put_mapping(&self, table: &str, source: &str, target: &str) -> Result<(), StoreError> {
        let (table, source, target) = (table.to_string(), source.to_string(), target.to_string());
        Ok(self
            .db
            .call(move |conn| {
                conn.execute_cached(
                    "INSERT INTO mappings (tbl, source, target) VALUES (?1, ?2, ?3)
                     ON CONFLICT (tbl, source) DO UPDATE SET target = excluded.target",
                    params![table, source, target],
                )?;
                Ok(())
            })
            .await?)
    }

    async fn remove_mapping(&self, table: &str, source: &str) -> Result<bool, StoreError> {
        let (table, source) = (table.to_string(), source.to_string());
        Ok(self
            .db
            .call(move |conn| {
                Ok(conn.execute_cached(
                    "DELETE FROM mappings WHERE tbl = ?1 AND source = ?2",
                    params![table, source],
                )? == 1)
            })
            .await?)
    }

    async fn list_mappings(
        &self,
        table: Option<&str>,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let table = table.map(str::to_string);
        Ok(self
            .db
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT tbl, source, target FROM mappings
                     WHERE ?1 IS NULL OR tbl = ?1 ORDER BY tbl, source",
                )?;
                let rows = stmt
                    .query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?)
    }
}

impl Parking for SqliteStore {
    async fn park(&self, doc: &ParkedDoc) -> Result<(), StoreError> {
        let doc = doc.clone();
        Ok(self
            .db
            .call(move |conn| {
                conn.execute_cached(
                    "INSERT INTO parked (integration, kind, source_id, source_document_number,
                         reason, message, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (integration, kind, source_id) DO UPDATE SET
                         source_document_number = excluded.source_document_number,
                         reason = excluded.reason,
                         message = excluded.message,
                         at = excluded.at",
                    params![
                        doc.integration,
                        doc.kind,
                        doc.source_id,
                        doc.source_document_number,
                        doc.reason,
                        doc.message,
                        ts(doc.at)
                    ],
                )?;
                Ok(())
            })
            .await?)
    }

    async fn parked(&self) -> Result<Vec<ParkedDoc>, StoreError> {
        Ok(self
            .db
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT integration, kind, source_id, source_document_number, reason,
                            message, at
                     FROM parked ORDER BY at, integration, kind, source_id",
                )?;
                let rows = stmt
                    .query_map([], |r| {
                        Ok((
                            ParkedDoc {
                                integration: r.get(0)?,
                                kind: r.get(1)?,
                                source_id: r.get(2)?,
                                source_document_number: r.get(3)?,
                                reason: r.get(4)?,
                                message: r.get(5)?,
                                at: DateTime::<Utc>::UNIX_EPOCH,
                            },
                            r.get::<_, String>(6)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                rows.into_iter()
                    .map(|(doc, at)| {
                        Ok(ParkedDoc {
                            at: parse_ts(&at)?,
                            ..doc
                        })
                    })
                    .collect()
            })
            .await?)
    }

    async fn unpark(
        &self,
        integration: &str,
        kind: &str,
        source_id: &str,
    ) -> Result<bool, StoreError> {
        let (i, k, s) = (
            integration.to_string(),
            kind.to_string(),
            source_id.to_string(),
        );
        Ok(self
            .db
            .call(move |conn| {
                Ok(conn.execute_cached(
                    "DELETE FROM parked WHERE integration = ?1 AND kind = ?2 AND source_id = ?3",
                    params![i, k, s],
                )? == 1)
            })
            .await?)
    }
}

/// Inserts an audit row; with a `once` key, only if no row holds it yet (`false`: one does).
fn insert_audit(
    conn: &rusqlite::Connection,
    item: &AuditItem,
    once: Option<&str>,
) -> Result<bool, Fail> {
    let n = conn.execute_cached(
        "INSERT INTO audit (integration, document_kind, source_id, source_document_number, \
         vendor, amount, currency, step, status, target_document_number, target_id, error, at, \
         once_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
         ON CONFLICT (once_key) DO NOTHING",
        params![
            item.integration,
            item.document_kind,
            item.source_id,
            item.source_document_number,
            item.vendor,
            item.amount.map(|a| a.to_string()),
            item.currency,
            item.step.as_str(),
            item.status.as_str(),
            item.target_document_number,
            item.target_id,
            item.error,
            ts(item.at),
            once,
        ],
    )?;
    Ok(n == 1)
}

const AUDIT_COLUMNS: &str = "integration, document_kind, source_id, source_document_number, \
     vendor, amount, currency, step, status, target_document_number, target_id, error, at, \
     repeats";

struct RawAudit {
    integration: String,
    document_kind: String,
    source_id: String,
    source_document_number: Option<String>,
    vendor: Option<String>,
    amount: Option<String>,
    currency: Option<String>,
    step: String,
    status: String,
    target_document_number: Option<String>,
    target_id: Option<String>,
    error: Option<String>,
    at: String,
    repeats: i64,
}

impl RawAudit {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            integration: r.get(0)?,
            document_kind: r.get(1)?,
            source_id: r.get(2)?,
            source_document_number: r.get(3)?,
            vendor: r.get(4)?,
            amount: r.get(5)?,
            currency: r.get(6)?,
            step: r.get(7)?,
            status: r.get(8)?,
            target_document_number: r.get(9)?,
            target_id: r.get(10)?,
            error: r.get(11)?,
            at: r.get(12)?,
            repeats: r.get(13)?,
        })
    }

    fn into_item(self) -> Result<AuditItem, Fail> {
        let amount = self
            .amount
            .map(|a| {
                Decimal::from_str(&a)
                    .map_err(|e| Fail::Other(format!("bad audit amount '{a}': {e}")))
            })
            .transpose()?;
        Ok(AuditItem {
            at: parse_ts(&self.at)?,
            integration: self.integration,
            document_kind: self.document_kind,
            source_id: self.source_id,
            source_document_number: self.source_document_number,
            vendor: self.vendor,
            amount,
            currency: self.currency,
            step: Step::parse(&self.step)
                .ok_or_else(|| Fail::Other(format!("bad audit step '{}'", self.step)))?,
            status: AuditStatus::parse(&self.status)
                .ok_or_else(|| Fail::Other(format!("bad audit status '{}'", self.status)))?,
            target_document_number: self.target_document_number,
            target_id: self.target_id,
            error: self.error,
            repeats: u64::try_from(self.repeats).unwrap_or_default(),
        })
    }
}

impl SqliteStore {
    /// Puts every (table, source, target) row in one transaction: all of them or none (an
    /// operator's import).
    pub async fn put_mappings(
        &self,
        rows: Vec<(String, String, String)>,
    ) -> Result<(), StoreError> {
        Ok(self
            .db
            .write(move |tx| {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO mappings (tbl, source, target) VALUES (?1, ?2, ?3)
                     ON CONFLICT (tbl, source) DO UPDATE SET target = excluded.target",
                )?;
                for (table, source, target) in &rows {
                    stmt.execute(params![table, source, target])?;
                }
                Ok(())
            })
            .await?)
    }
}

impl Audit for SqliteStore {
    async fn append_audit(&self, item: &AuditItem) -> Result<(), StoreError> {
        let item = item.clone();
        Ok(self
            .db
            .call(move |conn| insert_audit(conn, &item, None).map(|_| ()))
            .await?)
    }

    async fn append_audit_once(&self, item: &AuditItem, once: &str) -> Result<bool, StoreError> {
        let (item, once) = (item.clone(), once.to_string());
        Ok(self
            .db
            .write(move |tx| {
                if insert_audit(tx, &item, Some(&once))? {
                    return Ok(true);
                }
                tx.execute_cached(
                    "UPDATE audit SET repeats = repeats + 1 WHERE once_key = ?1",
                    params![once],
                )?;
                Ok(false)
            })
            .await?)
    }

    async fn query_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditItem>, StoreError> {
        if filter.limit == Some(0) {
            return Ok(Vec::new());
        }
        let mut conds: Vec<&str> = Vec::new();
        let mut args: Vec<Value> = Vec::new();
        if let Some(i) = &filter.integration {
            conds.push("integration = ?");
            args.push(Value::Text(i.clone()));
        }
        if let Some(s) = filter.status {
            conds.push("status = ?");
            args.push(Value::Text(s.as_str().to_string()));
        }
        if let Some(from) = filter.from {
            conds.push("at >= ?");
            args.push(Value::Text(ts(from)));
        }
        if let Some(to) = filter.to {
            conds.push("at < ?");
            args.push(Value::Text(ts(to)));
        }
        if let Some(v) = &filter.vendor {
            conds.push("vendor = ?");
            args.push(Value::Text(v.clone()));
        }
        if let Some(d) = &filter.document {
            conds.push("(source_id = ? OR source_document_number = ?)");
            args.push(Value::Text(d.clone()));
            args.push(Value::Text(d.clone()));
        }
        let mut sql = format!("SELECT {AUDIT_COLUMNS} FROM audit");
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
        // The latest `limit` items, returned oldest first.
        let limit = filter.limit;
        if let Some(n) = limit {
            sql.push_str(" ORDER BY at DESC, id DESC LIMIT ?");
            args.push(Value::Integer(i64::try_from(n).unwrap_or(i64::MAX)));
        } else {
            sql.push_str(" ORDER BY at, id");
        }
        Ok(self
            .db
            .call(move |conn| {
                let mut stmt = conn.prepare(&sql)?;
                let raws = stmt
                    .query_map(params_from_iter(args), RawAudit::from_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                let mut items = raws
                    .into_iter()
                    .map(RawAudit::into_item)
                    .collect::<Result<Vec<_>, _>>()?;
                if limit.is_some() {
                    items.reverse();
                }
                Ok(items)
            })
            .await?)
    }
}

// Tested by the store contract (`shared/tests/contract/store.rs`), run on this adapter and on
// DynamoDB.
