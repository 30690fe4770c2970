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

use super::db::{Db, Fail, add, parse_ts, ts};
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
        })
    })())
}

fn read_entry(conn: &rusqlite::Connection, key: &LedgerKey) -> Result<Option<LedgerEntry>, Fail> {
    let row = conn
        .query_row(
            "SELECT state, owner, lease_until, target_id, target_number, attempts,
                    unsettled_create_at
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
                    .query_row(
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
                    None => conn.execute(
                        "INSERT INTO watermarks (key, value, version) VALUES (?1, ?2, 1)
                         ON CONFLICT (key) DO NOTHING",
                        params![key, value],
                    )?,
                    Some(v) => conn.execute(
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
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let (key, owner) = (key.clone(), owner.to_string());
        let lease_until = add(now, lease);
        Ok(self
            .db
            .write(move |tx| {
                let k = (&key.integration, &key.kind, &key.source_id);
                let Some(entry) = read_entry(tx, &key)? else {
                    tx.execute(
                        "INSERT INTO ledger (integration, kind, source_id, state, owner,
                             lease_until, target_id, target_number, attempts)
                         VALUES (?1, ?2, ?3, 'claimed', ?4, ?5, NULL, NULL, 1)",
                        params![k.0, k.1, k.2, owner, ts(lease_until)],
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
                    }));
                };
                if entry.state == LedgerState::Done {
                    return Ok(Claim::Done(entry));
                }
                let expired = entry.lease_until <= now;
                if !expired && entry.owner != owner {
                    return Ok(Claim::Busy(entry));
                }
                // Take-over of a run-out lease (a new attempt), or re-entry by the holder.
                let attempts = if expired {
                    entry.attempts + 1
                } else {
                    entry.attempts
                };
                tx.execute(
                    "UPDATE ledger SET owner = ?4, lease_until = ?5, attempts = ?6
                     WHERE integration = ?1 AND kind = ?2 AND source_id = ?3",
                    params![k.0, k.1, k.2, owner, ts(lease_until), attempts],
                )?;
                Ok(Claim::Acquired(LedgerEntry {
                    owner,
                    lease_until,
                    attempts,
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
                let n = conn.execute(
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
                let n = conn.execute(
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
                let n = conn.execute(
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
                conn.execute(
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
}

impl Mappings for SqliteStore {
    async fn mapping(&self, table: &str, source: &str) -> Result<Option<String>, StoreError> {
        let (table, source) = (table.to_string(), source.to_string());
        Ok(self
            .db
            .call(move |conn| {
                Ok(conn
                    .query_row(
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
                conn.execute(
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
                Ok(conn.execute(
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
                conn.execute(
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
                Ok(conn.execute(
                    "DELETE FROM parked WHERE integration = ?1 AND kind = ?2 AND source_id = ?3",
                    params![i, k, s],
                )? == 1)
            })
            .await?)
    }
}

const AUDIT_COLUMNS: &str = "integration, document_kind, source_id, source_document_number, \
     vendor, amount, currency, step, status, target_document_number, target_id, error, at";

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
        })
    }
}

impl Audit for SqliteStore {
    async fn append_audit(&self, item: &AuditItem) -> Result<(), StoreError> {
        let item = item.clone();
        Ok(self
            .db
            .call(move |conn| {
                conn.execute(
                    &format!(
                        "INSERT INTO audit ({AUDIT_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                    ),
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
                    ],
                )?;
                Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn key(id: &str) -> LedgerKey {
        LedgerKey {
            integration: "coupa-bc".into(),
            kind: "invoice".into(),
            source_id: id.into(),
        }
    }

    fn setup() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("mlc.db")).unwrap();
        (dir, SqliteStore::new(db))
    }

    const LEASE: Duration = Duration::from_secs(60);

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_claims_from_two_handles_on_one_file_acquire_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mlc.db");
        let a = SqliteStore::new(Db::open(&path).unwrap());
        let b = SqliteStore::new(Db::open(&path).unwrap());
        let now = t("2024-04-01T08:00:00Z");
        let mut tasks = Vec::new();
        for i in 0..32 {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                store
                    .claim(&key("92010"), &format!("worker-{i}"), now, LEASE)
                    .await
                    .unwrap()
            }));
        }
        let mut acquired = 0;
        for task in tasks {
            match task.await.unwrap() {
                Claim::Acquired(_) => acquired += 1,
                Claim::Busy(_) => {}
                Claim::Done(_) => panic!("nobody completed it"),
            }
        }
        assert_eq!(acquired, 1);
        let entry = a.ledger_entry(&key("92010")).await.unwrap().unwrap();
        assert_eq!(entry.attempts, 1);
    }

    #[tokio::test]
    async fn lease_expiry_take_over_keeps_target_id() {
        let (_d, s) = setup();
        let now = t("2024-04-01T08:00:00Z");
        let k = key("1");
        assert!(matches!(
            s.claim(&k, "a", now, LEASE).await.unwrap(),
            Claim::Acquired(_)
        ));
        s.record_target(&k, "a", "guid-1").await.unwrap();
        let later = now + chrono::Duration::seconds(30);
        match s.claim(&k, "b", later, LEASE).await.unwrap() {
            Claim::Busy(e) => assert_eq!(e.owner, "a"),
            other => panic!("expected Busy, got {other:?}"),
        }
        let expired = now + chrono::Duration::seconds(60);
        match s.claim(&k, "b", expired, LEASE).await.unwrap() {
            Claim::Acquired(e) => {
                assert_eq!(e.owner, "b");
                assert_eq!(e.target_id.as_deref(), Some("guid-1"));
                assert_eq!(e.attempts, 2);
                assert_eq!(e.lease_until, expired + chrono::Duration::seconds(60));
            }
            other => panic!("expected Acquired, got {other:?}"),
        }
        assert_eq!(s.ledger_entry(&k).await.unwrap().unwrap().owner, "b");
    }

    #[tokio::test]
    async fn an_unsettled_create_survives_a_take_over_until_its_target_is_recorded() {
        let (_d, s) = setup();
        let now = t("2024-04-01T08:00:00Z");
        let k = key("unsettled");
        assert!(matches!(
            s.claim(&k, "a", now, LEASE).await.unwrap(),
            Claim::Acquired(_)
        ));
        s.record_unsettled_create(&k, "a", now).await.unwrap();
        s.release(&k, "a").await.unwrap();
        // Another worker's claim sees the create that may still land in the target.
        match s
            .claim(&k, "b", now + chrono::Duration::seconds(5), LEASE)
            .await
            .unwrap()
        {
            Claim::Acquired(e) => assert_eq!(e.unsettled_create_at, Some(now)),
            other => panic!("expected Acquired, got {other:?}"),
        }
        // Found after all: recording its id settles it.
        s.record_target(&k, "b", "guid-late").await.unwrap();
        let e = s.ledger_entry(&k).await.unwrap().unwrap();
        assert_eq!(e.unsettled_create_at, None);
        assert_eq!(e.target_id.as_deref(), Some("guid-late"));
        // Only the claim holder may record it.
        assert!(matches!(
            s.record_unsettled_create(&k, "a", now).await,
            Err(StoreError::LostClaim(_))
        ));
    }

    #[tokio::test]
    async fn same_owner_re_enters_its_claim() {
        let (_d, s) = setup();
        let now = t("2024-04-01T08:00:00Z");
        s.claim(&key("1"), "a", now, LEASE).await.unwrap();
        match s.claim(&key("1"), "a", now, LEASE).await.unwrap() {
            Claim::Acquired(e) => assert_eq!(e.attempts, 1),
            other => panic!("expected Acquired, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn complete_then_claim_is_done() {
        let (_d, s) = setup();
        let now = t("2024-04-01T08:00:00Z");
        let k = key("1");
        s.claim(&k, "a", now, LEASE).await.unwrap();
        s.complete(&k, "a", "guid-1", "PI-1001").await.unwrap();
        let much_later = now + chrono::Duration::days(1);
        match s.claim(&k, "b", much_later, LEASE).await.unwrap() {
            Claim::Done(e) => {
                assert_eq!(e.state, LedgerState::Done);
                assert_eq!(e.target_id.as_deref(), Some("guid-1"));
                assert_eq!(e.target_number.as_deref(), Some("PI-1001"));
            }
            other => panic!("expected Done, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn record_target_after_losing_the_claim_is_lost_claim() {
        let (_d, s) = setup();
        let now = t("2024-04-01T08:00:00Z");
        let k = key("1");
        s.claim(&k, "a", now, LEASE).await.unwrap();
        s.claim(&k, "b", now + chrono::Duration::seconds(61), LEASE)
            .await
            .unwrap();
        match s.record_target(&k, "a", "guid-x").await {
            Err(StoreError::LostClaim(which)) => assert_eq!(which, k.to_string()),
            other => panic!("expected LostClaim, got {other:?}"),
        }
        assert!(matches!(
            s.complete(&k, "a", "guid-x", "PI-1").await,
            Err(StoreError::LostClaim(_))
        ));
        assert_eq!(s.ledger_entry(&k).await.unwrap().unwrap().target_id, None);
    }

    #[tokio::test]
    async fn release_lets_another_worker_take_it_at_once() {
        let (_d, s) = setup();
        let now = t("2024-04-01T08:00:00Z");
        let k = key("1");
        s.claim(&k, "a", now, LEASE).await.unwrap();
        s.record_target(&k, "a", "guid-1").await.unwrap();
        s.release(&k, "a").await.unwrap();
        match s.claim(&k, "b", now, LEASE).await.unwrap() {
            Claim::Acquired(e) => {
                assert_eq!(e.target_id.as_deref(), Some("guid-1"));
                assert_eq!(e.attempts, 2);
            }
            other => panic!("expected Acquired, got {other:?}"),
        }
        // Releasing a claim that is not ours does nothing.
        s.release(&k, "a").await.unwrap();
        assert!(matches!(
            s.claim(&k, "c", now, LEASE).await.unwrap(),
            Claim::Busy(_)
        ));
    }

    #[tokio::test]
    async fn watermark_compare_and_set() {
        let (_d, s) = setup();
        assert_eq!(s.watermark("coupa").await.unwrap(), None);
        assert!(s.set_watermark("coupa", None, "t1").await.unwrap());
        assert!(!s.set_watermark("coupa", None, "t1b").await.unwrap());
        let w = s.watermark("coupa").await.unwrap().unwrap();
        assert_eq!(w.value, "t1");
        assert!(
            s.set_watermark("coupa", Some(w.version), "t2")
                .await
                .unwrap()
        );
        assert!(
            !s.set_watermark("coupa", Some(w.version), "t3")
                .await
                .unwrap()
        );
        let w2 = s.watermark("coupa").await.unwrap().unwrap();
        assert_eq!(w2.value, "t2");
        assert_eq!(w2.version, w.version + 1);
    }

    #[tokio::test]
    async fn mappings_put_get_list_remove() {
        let (_d, s) = setup();
        s.put_mapping("supplier", "17", "V0001").await.unwrap();
        s.put_mapping("supplier", "17", "V0002").await.unwrap();
        s.put_mapping("gl_account", "6000", "61100").await.unwrap();
        assert_eq!(
            s.mapping("supplier", "17").await.unwrap().as_deref(),
            Some("V0002")
        );
        assert_eq!(s.list_mappings(None).await.unwrap().len(), 2);
        assert_eq!(
            s.list_mappings(Some("supplier")).await.unwrap(),
            vec![("supplier".into(), "17".into(), "V0002".into())]
        );
        assert!(s.remove_mapping("supplier", "17").await.unwrap());
        assert!(!s.remove_mapping("supplier", "17").await.unwrap());
        assert_eq!(s.mapping("supplier", "17").await.unwrap(), None);
    }

    fn audit(at: &str, id: &str, status: AuditStatus, vendor: &str) -> AuditItem {
        AuditItem {
            at: t(at),
            integration: "coupa-bc".into(),
            document_kind: "invoice".into(),
            source_id: id.into(),
            source_document_number: Some(format!("INV-{id}")),
            vendor: Some(vendor.into()),
            amount: Some(Decimal::from_str("1234.50").unwrap()),
            currency: Some("EUR".into()),
            step: Step::Post,
            status,
            target_document_number: None,
            target_id: None,
            error: None,
        }
    }

    async fn seeded() -> (tempfile::TempDir, SqliteStore) {
        let (d, s) = setup();
        for item in [
            audit("2024-04-01T08:00:00Z", "1", AuditStatus::Received, "Acme"),
            audit("2024-04-01T09:00:00Z", "1", AuditStatus::Posted, "Acme"),
            audit("2024-04-02T08:00:00Z", "2", AuditStatus::Received, "Globex"),
            audit("2024-04-02T09:00:00Z", "2", AuditStatus::Failed, "Globex"),
            audit("2024-04-03T08:00:00Z", "3", AuditStatus::Failed, "Acme"),
        ] {
            s.append_audit(&item).await.unwrap();
        }
        (d, s)
    }

    #[tokio::test]
    async fn audit_query_by_document_matches_id_or_number() {
        let (_d, s) = seeded().await;
        let by_id = s
            .query_audit(&AuditFilter {
                document: Some("1".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let statuses: Vec<_> = by_id.iter().map(|i| i.status).collect();
        assert_eq!(statuses, [AuditStatus::Received, AuditStatus::Posted]);
        assert_eq!(by_id[0].amount.unwrap().to_string(), "1234.50");
        let by_number = s
            .query_audit(&AuditFilter {
                document: Some("INV-1".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_number, by_id);
    }

    #[tokio::test]
    async fn audit_query_by_status_and_date_range() {
        let (_d, s) = seeded().await;
        let failed = s
            .query_audit(&AuditFilter {
                status: Some(AuditStatus::Failed),
                from: Some(t("2024-04-02T09:00:00Z")),
                to: Some(t("2024-04-03T08:00:00Z")),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(failed.len(), 1, "from inclusive, to exclusive");
        assert_eq!(failed[0].source_id, "2");
    }

    #[tokio::test]
    async fn audit_query_by_vendor() {
        let (_d, s) = seeded().await;
        let acme = s
            .query_audit(&AuditFilter {
                vendor: Some("Acme".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let ids: Vec<_> = acme.iter().map(|i| i.source_id.as_str()).collect();
        assert_eq!(ids, ["1", "1", "3"]);
    }

    #[tokio::test]
    async fn audit_query_limit_keeps_the_latest_newest_last() {
        let (_d, s) = seeded().await;
        // Same timestamp: insertion order breaks the tie.
        let mut tie = audit(
            "2024-04-03T08:00:00Z",
            "4",
            AuditStatus::Received,
            "Initech",
        );
        s.append_audit(&tie).await.unwrap();
        tie.status = AuditStatus::Mapped;
        s.append_audit(&tie).await.unwrap();
        let latest = s
            .query_audit(&AuditFilter {
                limit: Some(3),
                ..Default::default()
            })
            .await
            .unwrap();
        let got: Vec<_> = latest
            .iter()
            .map(|i| (i.source_id.as_str(), i.status))
            .collect();
        assert_eq!(
            got,
            [
                ("3", AuditStatus::Failed),
                ("4", AuditStatus::Received),
                ("4", AuditStatus::Mapped)
            ]
        );
    }

    #[tokio::test]
    async fn parking_replaces_and_unparks() {
        let (_d, s) = setup();
        let mut doc = ParkedDoc {
            integration: "coupa-bc".into(),
            kind: "invoice".into(),
            source_id: "1".into(),
            source_document_number: Some("INV-1".into()),
            reason: "unknown vendor 17".into(),
            message: "{\"id\":1}".into(),
            at: t("2024-04-01T08:00:00Z"),
        };
        s.park(&doc).await.unwrap();
        doc.reason = "unknown GL account 6000".into();
        doc.at = t("2024-04-01T09:00:00Z");
        s.park(&doc).await.unwrap();
        assert_eq!(s.parked().await.unwrap(), vec![doc.clone()]);
        assert!(s.unpark("coupa-bc", "invoice", "1").await.unwrap());
        assert!(!s.unpark("coupa-bc", "invoice", "1").await.unwrap());
        assert!(s.parked().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn store_handles_are_shareable_across_tasks() {
        let (_d, s) = setup();
        let s = Arc::new(s);
        let s2 = Arc::clone(&s);
        tokio::spawn(async move { s2.put_mapping("supplier", "1", "V1").await.unwrap() })
            .await
            .unwrap();
        assert!(s.mapping("supplier", "1").await.unwrap().is_some());
    }
}
