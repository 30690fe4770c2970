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
use mlc_shared::runtime::Pipeline;
use mlc_shared::steps::Env;
use mlc_shared::systems::http::TokenStore;

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
    let env = Env::new(queue(cfg, db.clone()), SqliteStore::new(db), SystemClock);
    // Access tokens are cached in the secrets file too, so a cron `mlc run --once` reuses the
    // last run's token while it is valid.
    let tokens: Arc<dyn TokenStore> = Arc::new(secrets.clone());
    Ok(Arc::new(
        Pipeline::build(cfg, env, secrets, owner(), Some(tokens)).await?,
    ))
}

/// Names this process in ledger claims.
pub fn owner() -> String {
    format!(
        "mlc-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A running embedded setup for the CLI's own tests: both simulators, a real SQLite file and
/// secrets file, and the webhook listener on a free port.
#[cfg(test)]
pub(crate) mod testkit {
    use std::net::SocketAddr;

    use mlc_sandbox::bc::{BcConfig, BcSim};
    use mlc_sandbox::coupa::{CoupaConfig, CoupaSim, NewInvoice, NewInvoiceLine, NewSupplier};
    use mlc_shared::adapters::embedded::{SecretFile, SecretKey};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::webhook_server::{Limits, Listener};

    /// The sample value of the `bc-client-state` secret.
    pub const CLIENT_STATE: &str = "mlc-test-client-state-7f3a";

    pub struct Kit {
        pub coupa: CoupaSim,
        pub bc: BcSim,
        pub _dir: tempfile::TempDir,
        pub pipeline: Arc<EmbeddedPipeline>,
        pub secrets: Arc<SecretFile>,
        /// The webhook listener.
        pub addr: SocketAddr,
    }

    impl Kit {
        /// `notifications`: whether integration `coupa-bc` has `sync.notifications`, pointing
        /// at this kit's listener.
        pub async fn start(notifications: bool) -> Self {
            let coupa = CoupaSim::start(CoupaConfig {
                rate_per_sec: None,
                ..CoupaConfig::default()
            })
            .await
            .unwrap();
            let bc = BcSim::start(BcConfig {
                rate_limit: None,
                notification_delay: Duration::from_millis(50),
                ..BcConfig::default()
            })
            .await
            .unwrap();
            coupa.add_supplier(NewSupplier::new("Fabrikam, Inc.", "SUP-001"));
            bc.add_vendor("V10000", "Fabrikam, Inc.");
            bc.add_account("6100", "Office Supplies");
            bc.add_dimension("DEPARTMENT", &["ADM"]);
            bc.add_dimension("PROJECT", &["P-100"]);

            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let sync = if notifications {
                format!(
                    "notifications = {{ url = \"http://{addr}/webhooks/bc/coupa-bc\", client_state_secret = \"bc-client-state\" }}"
                )
            } else {
                String::new()
            };
            let dir = tempfile::tempdir().unwrap();
            let text = crate::cmd::sandbox::config_toml(&coupa, &bc, "mlc.sqlite", "mlc.secrets")
                .replace("[runtime]\n", "[runtime]\nretry_base_delay_ms = 20\n")
                .replace(
                    "api_version = \"R40\"\n",
                    "api_version = \"R40\"\nrequests_per_second = 1000\n",
                )
                .replace(
                    "client_secret = \"bc-client-secret\"\n",
                    "client_secret = \"bc-client-secret\"\nrate = { requests = 1000000, window_secs = 1, concurrent = 5 }\n",
                )
                .replace(
                    "[integrations.mapping]\n",
                    &format!("[integrations.sync]\n{sync}\n\n[integrations.mapping]\n"),
                );
            let path = dir.path().join("mlc.toml");
            std::fs::write(&path, text).unwrap();
            let cfg = Config::load(&path).unwrap();
            let secrets =
                SecretFile::open(&cfg.runtime.secrets_file, SecretKey::generate()).unwrap();
            crate::cmd::sandbox::store_secrets(&secrets, &coupa, &bc).unwrap();
            secrets.set("bc-client-state", CLIENT_STATE).unwrap();
            let pipeline = pipeline(&cfg, &secrets).await.unwrap();
            let secrets = Arc::new(secrets);
            let webhooks = Listener::new(pipeline.clone(), secrets.clone(), Limits::default());
            tokio::spawn(webhooks.serve(listener));
            Self {
                coupa,
                bc,
                _dir: dir,
                pipeline,
                secrets,
                addr,
            }
        }

        pub fn notification_url(&self) -> String {
            format!("http://{}/webhooks/bc/coupa-bc", self.addr)
        }

        /// An approved Coupa invoice that maps cleanly.
        pub fn simple_invoice(&self, supplier: &str, number: &str) -> i64 {
            let id = self.coupa.supplier_id_by_number(supplier).unwrap();
            self.coupa
                .add_invoice(NewInvoice::approved(id, number).line(NewInvoiceLine::qty(
                    "Toner",
                    "2",
                    "10.1250",
                    &["6100", "ADM", "P-100"],
                )))
        }
    }

    #[derive(Debug)]
    pub struct RawResponse {
        pub status: u16,
        pub content_type: String,
        pub body: String,
    }

    /// One HTTP/1.1 request over a plain socket (the CLI has no HTTP client).
    pub async fn raw_http(addr: SocketAddr, method: &str, target: &str, body: &str) -> RawResponse {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .expect("a status line");
        let content_type = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
        RawResponse {
            status,
            content_type,
            body: body.to_string(),
        }
    }
}
