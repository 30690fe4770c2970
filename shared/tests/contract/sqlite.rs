//! The contract on the embedded adapters: the queues and the store over a SQLite file in a
//! temporary directory, the queues on a manual clock; the encrypted secrets file.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mlc_shared::adapters::embedded::{
    Db, ManualClock, QueueSettings, SecretFile, SecretKey, SqliteQueue, SqliteStore,
};

use crate::{QueueFixture, SecretsFixture, StoreFixture};

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-04-01T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub struct Queues {
    _dir: tempfile::TempDir,
    queue: SqliteQueue<ManualClock>,
    clock: ManualClock,
}

impl QueueFixture for Queues {
    type Queue = SqliteQueue<ManualClock>;

    async fn new(visibility: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("mlc.db")).unwrap();
        let clock = ManualClock::new(start());
        let settings = QueueSettings {
            visibility_timeout: visibility,
            ..QueueSettings::default()
        };
        let queue = SqliteQueue::new(db, clock.clone(), settings);
        Self {
            _dir: dir,
            queue,
            clock,
        }
    }

    fn queue(&self) -> &Self::Queue {
        &self.queue
    }

    async fn pass(&self, d: Duration) {
        self.clock.advance(d);
    }
}

pub struct Stores {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl StoreFixture for Stores {
    type Store = SqliteStore;

    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mlc.db");
        Self { _dir: dir, path }
    }

    /// Its own connection to the one file.
    fn handle(&self) -> SqliteStore {
        SqliteStore::new(Db::open(&self.path).unwrap())
    }
}

pub struct Secrets {
    _dir: tempfile::TempDir,
    file: SecretFile,
}

impl SecretsFixture for Secrets {
    type Secrets = SecretFile;

    async fn with(secrets: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = SecretFile::open(dir.path().join("secrets.enc"), SecretKey::generate()).unwrap();
        for (name, value) in secrets {
            file.set(name, value).unwrap();
        }
        Self { _dir: dir, file }
    }

    fn secrets(&self) -> &SecretFile {
        &self.file
    }
}

contract!(queue: Queues, store: Stores, secrets: Secrets);
