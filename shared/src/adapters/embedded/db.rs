//! The one SQLite file behind the embedded queue, ledger, watermarks, mappings, parking and
//! audit trail.
//!
//! Several processes may open the same file (an `mlc run` killed and restarted, an `mlc` admin
//! command next to a running one), so the file is in WAL mode with a busy timeout, and every
//! operation that writes more than one statement runs in one `BEGIN IMMEDIATE` transaction: a
//! crash leaves either all of it or none of it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::ports::StoreError;

/// The schema this code writes, kept in `PRAGMA user_version`.
pub const SCHEMA_VERSION: i64 = 4;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection. Every statement of the queue and store is fixed
/// text (about 40 of them); rusqlite's default of 16 would evict some on every message, and
/// compiling a statement cost more than running it (issue #16 item 4: a seventh of the
/// connector's CPU per invoice was SQLite's parser).
const STATEMENT_CACHE: usize = 128;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS queue_messages (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT    NOT NULL,
    group_id      TEXT    NOT NULL,
    dedup_id      TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    sent_at       TEXT    NOT NULL,
    visible_at    TEXT    NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT
);
CREATE INDEX IF NOT EXISTS queue_messages_group ON queue_messages (queue, group_id, seq);
-- receive walks one queue in seq order; without this it walked every queue's rows.
CREATE INDEX IF NOT EXISTS queue_messages_queue_seq ON queue_messages (queue, seq);
CREATE UNIQUE INDEX IF NOT EXISTS queue_messages_receipt ON queue_messages (receipt);

CREATE TABLE IF NOT EXISTS queue_dedup (
    queue    TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    sent_at  TEXT NOT NULL,
    PRIMARY KEY (queue, dedup_id)
);
CREATE INDEX IF NOT EXISTS queue_dedup_age ON queue_dedup (queue, sent_at);

CREATE TABLE IF NOT EXISTS queue_dead_letters (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT    NOT NULL,
    original_seq  INTEGER NOT NULL,
    group_id      TEXT    NOT NULL,
    dedup_id      TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    sent_at       TEXT    NOT NULL,
    receive_count INTEGER NOT NULL,
    dead_at       TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_dead_letters_queue ON queue_dead_letters (queue, id);

CREATE TABLE IF NOT EXISTS watermarks (
    key     TEXT    PRIMARY KEY,
    value   TEXT    NOT NULL,
    version INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS ledger (
    integration   TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    source_id     TEXT    NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('claimed', 'done')),
    owner         TEXT    NOT NULL,
    lease_until   TEXT    NOT NULL,
    target_id     TEXT,
    target_number TEXT,
    attempts      INTEGER NOT NULL,
    unsettled_create_at TEXT,
    target        TEXT,
    PRIMARY KEY (integration, kind, source_id)
);

CREATE TABLE IF NOT EXISTS mappings (
    tbl    TEXT NOT NULL,
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    PRIMARY KEY (tbl, source)
);

CREATE TABLE IF NOT EXISTS parked (
    integration            TEXT NOT NULL,
    kind                   TEXT NOT NULL,
    source_id              TEXT NOT NULL,
    source_document_number TEXT,
    reason                 TEXT NOT NULL,
    message                TEXT NOT NULL,
    at                     TEXT NOT NULL,
    PRIMARY KEY (integration, kind, source_id)
);

CREATE TABLE IF NOT EXISTS audit (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    integration            TEXT NOT NULL,
    document_kind          TEXT NOT NULL,
    source_id              TEXT NOT NULL,
    source_document_number TEXT,
    vendor                 TEXT,
    amount                 TEXT,
    currency               TEXT,
    step                   TEXT NOT NULL,
    status                 TEXT NOT NULL,
    target_document_number TEXT,
    target_id              TEXT,
    error                  TEXT,
    at                     TEXT NOT NULL,
    once_key               TEXT,
    repeats                INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS audit_document ON audit (integration, source_id, at);
CREATE INDEX IF NOT EXISTS audit_status ON audit (status, at);
CREATE INDEX IF NOT EXISTS audit_document_number ON audit (source_document_number, at);
"#;

/// Why a database call failed, before it is turned into the port's error type.
#[derive(Debug)]
pub(crate) enum Fail {
    Sql(rusqlite::Error),
    /// The ledger claim is not ours any more.
    LostClaim(String),
    /// The queue receipt is not the current delivery's.
    UnknownReceipt(String),
    Other(String),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail::Sql(e)
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fail::Sql(e) => write!(f, "sqlite: {e}"),
            Fail::LostClaim(k) => write!(f, "the claim on {k} is no longer ours"),
            Fail::UnknownReceipt(r) => write!(f, "receipt '{r}' is not in flight"),
            Fail::Other(m) => f.write_str(m),
        }
    }
}

impl From<Fail> for StoreError {
    fn from(f: Fail) -> Self {
        match f {
            Fail::LostClaim(k) => StoreError::LostClaim(k),
            other => StoreError::Backend(other.to_string()),
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// A handle on the SQLite file; clones share one connection.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
    path: Arc<PathBuf>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

impl Db {
    /// Opens (creating if needed) the database file and its schema.
    pub fn open(path: &Path) -> Result<Db, StoreError> {
        let err = |what: &str, e: rusqlite::Error| {
            StoreError::Backend(format!("{what} {}: {e}", path.display()))
        };
        // The file holds invoices, vendors and the audit trail: readable by its owner only, as
        // the secrets file is. Created here empty with mode 0600 (SQLite takes an empty file
        // for a new database and gives its -wal and -shm files the database file's mode).
        #[cfg(unix)]
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            // Lost a race with another process creating it: theirs is as good.
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path);
        }
        // Two processes starting together on a new file: switching it to WAL takes an
        // exclusive lock that SQLite's busy handler does not wait for, so the loser is told
        // "database is locked" at once. It waits and tries again, as the busy timeout would.
        let started = std::time::Instant::now();
        loop {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(|e| err("cannot open database", e))?;
            match Self::init(conn, path.to_path_buf()) {
                Err(e) if is_busy(&e) && started.elapsed() < BUSY_TIMEOUT => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => return other.map_err(|e| err("cannot initialise database", e)),
            }
        }
    }

    /// Opens an existing database for reading only (`mlc audit` on a file it may not write:
    /// a copy handed to an auditor, a read-only mount). Nothing is created or upgraded; a file
    /// of another schema version is refused with what to do.
    pub fn open_read_only(path: &Path) -> Result<Db, StoreError> {
        let err = |what: &str, e: rusqlite::Error| {
            StoreError::Backend(format!("{what} {}: {e}", path.display()))
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let open = |uri: &str| -> Result<(Connection, i64), rusqlite::Error> {
            let conn = Connection::open_with_flags(uri, flags)?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            let version = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            Ok((conn, version))
        };
        // A WAL-mode file is read through its -shm file, which a reader that may not write the
        // directory cannot create: then it is read as immutable. Safe for a copy or a
        // read-only mount; a file that a running mlc changes meanwhile is not such a file
        // (whoever runs mlc there can write it and takes the first way).
        let uri = format!("file:{}", uri_path(path));
        let (conn, version) = open(&uri)
            .or_else(|_| open(&format!("{uri}?immutable=1")))
            .map_err(|e| err("cannot read database", e))?;
        if version != SCHEMA_VERSION {
            return Err(StoreError::Backend(format!(
                "{} has schema version {version}, this mlc reads {SCHEMA_VERSION}: {}",
                path.display(),
                if version > SCHEMA_VERSION {
                    "upgrade mlc"
                } else {
                    "open it once with write access (any mlc command but audit) to upgrade it"
                }
            )));
        }
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
            path: Arc::new(path.to_path_buf()),
        })
    }

    /// A private in-memory database (tests, dry runs). Not shared with any other handle except
    /// this one's clones.
    pub fn open_in_memory() -> Result<Db, StoreError> {
        let conn = Connection::open_in_memory()
            .map_err(|e| StoreError::Backend(format!("cannot open in-memory database: {e}")))?;
        Self::init(conn, PathBuf::from(":memory:"))
            .map_err(|e| StoreError::Backend(format!("cannot initialise database: {e}")))
    }

    fn init(mut conn: Connection, path: PathBuf) -> Result<Db, rusqlite::Error> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // journal_mode answers with the mode in force; an in-memory database stays "memory".
        let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")?;

        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
                Some(format!(
                    "schema version {version} is newer than this program's {SCHEMA_VERSION}; \
                     upgrade mlc"
                )),
            ));
        }
        tx.execute_batch(SCHEMA)?;
        if version == 1 {
            // Version 2 remembers creates whose outcome is unknown.
            tx.execute_batch("ALTER TABLE ledger ADD COLUMN unsettled_create_at TEXT")?;
        }
        if (1..3).contains(&version) {
            // Version 3 remembers which target (company, environment) an entry was written for.
            tx.execute_batch("ALTER TABLE ledger ADD COLUMN target TEXT")?;
        }
        if (1..4).contains(&version) {
            // Version 4 counts repeated outcomes on one row instead of logging each. (A file
            // that had no audit table got it whole from SCHEMA above.)
            let has_once: bool = tx.query_row(
                "SELECT COUNT(*) > 0 FROM pragma_table_info('audit') WHERE name = 'once_key'",
                [],
                |r| r.get(0),
            )?;
            if !has_once {
                tx.execute_batch(
                    "ALTER TABLE audit ADD COLUMN once_key TEXT;
                     ALTER TABLE audit ADD COLUMN repeats INTEGER NOT NULL DEFAULT 0;",
                )?;
            }
        }
        // After the upgrade: an older file has no once_key column before it.
        tx.execute_batch("CREATE UNIQUE INDEX IF NOT EXISTS audit_once ON audit (once_key)")?;
        if version < SCHEMA_VERSION {
            tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
        }
        tx.commit()?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
            path: Arc::new(path),
        })
    }

    /// Where the file is (`:memory:` for an in-memory database).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the connection: on this thread when nobody else holds it, else on a blocking
    /// thread that waits for it.
    ///
    /// Uncontended, a call is tens of microseconds of SQLite (WAL, `synchronous = NORMAL`: no
    /// fsync on commit), cheaper than the two thread hand-offs of `spawn_blocking`, which were
    /// the larger part of the connector's CPU per invoice (issue #16 item 4: about ten calls an
    /// invoice). A worker that would have to wait for another's call never blocks its runtime
    /// thread: that wait goes to the blocking pool as before.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, Fail>
    where
        F: FnOnce(&mut Connection) -> Result<T, Fail> + Send + 'static,
        T: Send + 'static,
    {
        match self.conn.try_lock() {
            Ok(mut guard) => return f(&mut guard),
            // See below: the connection is still usable.
            Err(std::sync::TryLockError::Poisoned(p)) => return f(&mut p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => {}
        }
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic inside a transaction rolls it back as the stack unwinds, so the
            // connection is still usable after a poisoned lock.
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| Fail::Other(format!("database task failed: {e}")))?
    }

    /// Runs `f` inside one `BEGIN IMMEDIATE` transaction, committed only if `f` succeeds.
    ///
    /// `BEGIN IMMEDIATE` and `COMMIT` are cached statements: rusqlite's `Transaction` compiles
    /// both on every call, seven times an invoice (issue #16 item 4). The transaction is the
    /// same: rolled back if `f` fails, if the commit fails, or if `f` panics (the guard's drop
    /// runs as the stack unwinds, so the connection is usable after a poisoned lock).
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, Fail>
    where
        F: FnOnce(&Connection) -> Result<T, Fail> + Send + 'static,
        T: Send + 'static,
    {
        self.call(move |conn| {
            conn.execute_cached("BEGIN IMMEDIATE", [])?;
            let open = OpenTransaction(conn);
            let out = f(open.0)?;
            open.0.execute_cached("COMMIT", [])?;
            Ok(out)
        })
        .await
    }
}

/// A transaction begun on the connection: rolled back when dropped unless it was committed
/// (SQLite is back in autocommit mode after a `COMMIT`).
struct OpenTransaction<'a>(&'a Connection);

impl Drop for OpenTransaction<'_> {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            // Nothing to do if it fails: the next BEGIN reports the connection's state.
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}

/// `execute` and `query_row` through the connection's statement cache: each fixed statement
/// is compiled once per connection instead of once per call.
pub(crate) trait Cached {
    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;

    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// `path` for a `file:` URI: the characters a URI gives a meaning escaped.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// A timestamp as fixed-width RFC 3339 UTC text (nanoseconds, `Z`), so text order is time order.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>, Fail> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Fail::Other(format!("bad timestamp '{s}' in the database: {e}")))
}

/// `t + d`, saturating instead of overflowing.
pub(crate) fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t - d`, saturating.
pub(crate) fn sub(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_version_3_audit_trail_gains_its_repeat_counts_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT,
                     integration TEXT NOT NULL, document_kind TEXT NOT NULL,
                     source_id TEXT NOT NULL, source_document_number TEXT, vendor TEXT,
                     amount TEXT, currency TEXT, step TEXT NOT NULL, status TEXT NOT NULL,
                     target_document_number TEXT, target_id TEXT, error TEXT, at TEXT NOT NULL);
                 INSERT INTO audit (integration, document_kind, source_id, step, status, at)
                 VALUES ('i', 'invoice', '1', 'post', 'posted', '2026-01-01T00:00:00Z');
                 PRAGMA user_version = 3;",
            )
            .unwrap();
        }
        let db = Db::open(&path).unwrap();
        let (version, rows, repeats): (i64, i64, i64) = db
            .call(|c| {
                let v = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
                let (n, r) = c.query_row("SELECT COUNT(*), SUM(repeats) FROM audit", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
                Ok((v, n, r))
            })
            .await
            .unwrap();
        assert_eq!((version, rows, repeats), (SCHEMA_VERSION, 1, 0));
    }

    #[tokio::test]
    async fn a_version_1_file_gains_the_unsettled_create_and_target_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE ledger (integration TEXT NOT NULL, kind TEXT NOT NULL,
                     source_id TEXT NOT NULL, state TEXT NOT NULL, owner TEXT NOT NULL,
                     lease_until TEXT NOT NULL, target_id TEXT, target_number TEXT,
                     attempts INTEGER NOT NULL, PRIMARY KEY (integration, kind, source_id));
                 INSERT INTO ledger VALUES ('i', 'invoice', '1', 'done', 'w', 'x', 'g', '108001', 1);
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let db = Db::open(&path).unwrap();
        let (version, unsettled, target): (i64, Option<String>, Option<String>) = db
            .call(|c| {
                let v = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
                let (u, t) =
                    c.query_row("SELECT unsettled_create_at, target FROM ledger", [], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?;
                Ok((v, u, t))
            })
            .await
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(
            (unsettled, target),
            (None, None),
            "existing rows keep their data"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_new_database_and_its_journal_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mlc.db");
        let db = Db::open(&path).unwrap();
        db.call(|c| Ok(c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")?))
            .await
            .unwrap();
        for name in ["mlc.db", "mlc.db-wal", "mlc.db-shm"] {
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }

    #[test]
    fn processes_opening_a_new_database_at_once_all_get_it() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("mlc.db");
            let start = Arc::new(std::sync::Barrier::new(6));
            let opens: Vec<_> = (0..6)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        Db::open(&path).map(drop)
                    })
                })
                .collect();
            for o in opens {
                o.join()
                    .unwrap()
                    .unwrap_or_else(|e| panic!("round {round}: {e}"));
            }
        }
    }

    #[tokio::test]
    async fn open_sets_wal_and_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("mlc.db")).unwrap();
        let (mode, version, fk): (String, i64, i64) = db
            .call(|c| {
                let mode = c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
                let version = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
                let fk = c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
                Ok((mode, version, fk))
            })
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(fk, 1);
        // Reopening an existing file is fine.
        Db::open(&dir.path().join("mlc.db")).unwrap();
    }

    #[tokio::test]
    async fn in_memory_database_works() {
        let db = Db::open_in_memory().unwrap();
        let n: i64 = db
            .call(|c| Ok(c.query_row("SELECT COUNT(*) FROM ledger", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn timestamps_are_fixed_width_and_round_trip() {
        let a = DateTime::parse_from_rfc3339("2024-04-01T02:19:09+03:00")
            .unwrap()
            .with_timezone(&Utc);
        let b = add(a, Duration::from_nanos(1));
        assert_eq!(ts(a).len(), ts(b).len());
        assert!(ts(a) < ts(b));
        assert_eq!(parse_ts(&ts(b)).unwrap(), b);
    }
}
