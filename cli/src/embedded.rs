//! The embedded runtime's wiring: one SQLite file for queues and store, the encrypted secrets
//! file, the system clients, the pipeline.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mlc_shared::adapters::embedded::{
    Db, QueueSettings, SecretFile, SecretKey, SqliteQueue, SqliteStore,
};
use mlc_shared::config::Config;
use mlc_shared::ports::SystemClock;
use mlc_shared::runtime::{Pipeline, Systems, load_config_mappings};
use mlc_shared::steps::Env;
use mlc_shared::systems::http::RetryPolicy;

pub type EmbeddedPipeline = Pipeline<SqliteQueue, SqliteStore, SystemClock>;

pub fn open_db(cfg: &Config) -> anyhow::Result<Db> {
    Db::open(&cfg.runtime.database)
        .with_context(|| format!("opening the database {}", cfg.runtime.database.display()))
}

pub fn open_secrets(cfg: &Config) -> anyhow::Result<SecretFile> {
    let key = SecretKey::from_env()?;
    SecretFile::open(&cfg.runtime.secrets_file, key).with_context(|| {
        format!(
            "opening the secrets file {}",
            cfg.runtime.secrets_file.display()
        )
    })
}

/// The queues of the configured database, with the configuration's queue settings.
pub fn queue(cfg: &Config, db: Db) -> SqliteQueue {
    let settings = QueueSettings {
        visibility_timeout: Duration::from_secs(cfg.runtime.visibility_timeout_secs),
        max_receives: cfg.runtime.max_receives,
        ..QueueSettings::default()
    };
    SqliteQueue::new(db, SystemClock, settings)
}

pub async fn pipeline(cfg: &Config, secrets: &SecretFile) -> anyhow::Result<Arc<EmbeddedPipeline>> {
    let db = open_db(cfg)?;
    let store = SqliteStore::new(db.clone());
    let queue = queue(cfg, db);
    load_config_mappings(cfg, &store)
        .await
        .context("loading the mapping tables of the configuration")?;
    let systems = Systems::from_config(cfg, secrets).await?;
    Ok(Arc::new(Pipeline {
        env: Env::new(queue, store, SystemClock),
        systems,
        integrations: cfg.integrations.clone(),
        owner: format!(
            "mlc-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ),
        max_receives: cfg.runtime.max_receives,
        retry: RetryPolicy {
            max_attempts: cfg.runtime.max_receives,
            base_delay: Duration::from_millis(cfg.runtime.retry_base_delay_ms),
            max_delay: Duration::from_secs(60),
        },
    }))
}
