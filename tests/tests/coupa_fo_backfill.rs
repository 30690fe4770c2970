//! Integration 2's bulk backfill end to end: Coupa simulator → `mlc backfill`'s work (the real
//! embedded pipeline, SQLite, the same ledger as the per-record path) → F&O simulator's Data
//! Management package API (d365-fo.md B6), over real HTTP.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mlc_cli::cmd::backfill::backfill;
use mlc_cli::embedded::{self, EmbeddedPipeline};
use mlc_sandbox::coupa::{CoupaConfig, CoupaSim, NewInvoice, NewInvoiceLine, NewSupplier};
use mlc_sandbox::fo::{FoConfig, FoSim, seed};
use mlc_sandbox::{FaultKind, FaultRule};
use mlc_shared::adapters::embedded::{SecretFile, SecretKey, SqliteStore};
use mlc_shared::config::Config;
use mlc_shared::ports::SystemClock;
use mlc_shared::ports::{Ledger, LedgerKey, LedgerState, Parking, SecretString};
use mlc_shared::runtime::{DrainStats, Pipeline};
use mlc_shared::steps::Env;
use mlc_shared::steps::bulk::{BackfillOptions, BackfillReport, BulkCrash, BulkEvent, BulkOptions};
use mlc_shared::systems::dynamics_fo::{FoClient, FoSettings};
use mlc_shared::systems::http::HttpSettings;

struct Harness {
    coupa: CoupaSim,
    fo: FoSim,
    _dir: tempfile::TempDir,
    _secrets: SecretFile,
    pipeline: Arc<EmbeddedPipeline>,
}

/// The ledger lease of these tests.
const LEASE: Duration = Duration::from_secs(1);

const SUPPLIERS: [(&str, &str, &str); 2] = [
    ("Fabrikam, Inc.", "SUP-001", "US-101"),
    ("Contoso GmbH", "SUP-002", "DE-001"),
];

impl Harness {
    async fn new() -> Self {
        Self::with(FoConfig {
            rate_limit: None,
            dmf_execution: Duration::from_millis(300),
            ..FoConfig::default()
        })
        .await
    }

    async fn with(fo_cfg: FoConfig) -> Self {
        let coupa = CoupaSim::start(CoupaConfig {
            rate_per_sec: None,
            ..CoupaConfig::default()
        })
        .await
        .unwrap();
        let fo = FoSim::start(fo_cfg).await.unwrap();
        seed::seed(&fo);
        let mut suppliers = String::new();
        for (name, number, vendor) in SUPPLIERS {
            coupa.add_supplier(NewSupplier::new(name, number));
            suppliers.push_str(&format!("\"{number}\" = \"{vendor}\"\n"));
        }
        let fo_cfg = fo.config();
        let text = format!(
            r#"[runtime]
database = "mlc.sqlite"
secrets_file = "mlc.secrets"
workers = 4
max_receives = 5
visibility_timeout_secs = 120
retry_base_delay_ms = 20

[systems.coupa]
base_url = "{coupa_url}"
client_id = "{coupa_client}"
client_secret = "coupa-client-secret"
api_version = "R40"
webhook_secret = "coupa-webhook-secret"
requests_per_second = 1000

[systems.fo]
type = "finance_operations"
environment_url = "https://{host}"
api_url = "{fo_url}"
token_url = "{token_url}"
tenant = "{tenant}"
client_id = "{fo_client}"
client_secret = "fo-client-secret"
default_legal_entity = "usmf"
rate = {{ requests = 1000000, window_secs = 1, concurrent = 5 }}
ledger_dimension_format = {format:?}

[[integrations]]
name = "coupa-fo"
source = "coupa"
target = "fo"
start_from = "2000-01-01T00:00:00Z"

[integrations.mapping]
gl_account = {{ segment = 2 }}
dimensions = [{{ segment = 3, dimension = "BusinessUnit" }}, {{ segment = 4, dimension = "CostCenter" }}]
legal_entity_segment = 1

[integrations.mapping.legal_entities]
US = "usmf"
DE = "demf"

[integrations.mapping.suppliers]
{suppliers}"#,
            coupa_url = coupa.base_url(),
            coupa_client = coupa.config().client_id,
            host = fo_cfg.environment_host,
            fo_url = fo.base_url(),
            token_url = fo.token_url(),
            tenant = fo_cfg.tenant,
            fo_client = fo_cfg.client_id,
            format = seed::LEDGER_FORMAT,
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mlc.toml");
        std::fs::write(&path, text).unwrap();
        let cfg = Config::load(&path).unwrap();
        let secrets = SecretFile::open(&cfg.runtime.secrets_file, SecretKey::generate()).unwrap();
        secrets
            .set("coupa-client-secret", &coupa.config().client_secret)
            .unwrap();
        secrets
            .set("coupa-webhook-secret", &coupa.config().webhook_secret)
            .unwrap();
        secrets
            .set("fo-client-secret", &fo.config().client_secret)
            .unwrap();
        // The embedded wiring, with a short ledger lease: a crashed run's claims run out within
        // a test (the writers renew theirs every third of it while they work).
        let db = embedded::open_db(&cfg).unwrap();
        let env = Env::new(
            embedded::queue(&cfg, db.clone()),
            SqliteStore::new(db),
            SystemClock,
        )
        .with_claim_lease(LEASE);
        let pipeline = Arc::new(
            Pipeline::build(&cfg, env, &secrets, embedded::owner(), None)
                .await
                .unwrap(),
        );
        Self {
            coupa,
            fo,
            _dir: dir,
            _secrets: secrets,
            pipeline,
        }
    }

    /// An approved invoice with lines (price, [entity, main account, business unit, cost
    /// center]).
    fn invoice(&self, supplier: &str, number: &str, lines: &[(&str, [&str; 4])]) -> i64 {
        let id = self.coupa.supplier_id_by_number(supplier).unwrap();
        let mut inv = NewInvoice::approved(id, number);
        for (i, (price, seg)) in lines.iter().enumerate() {
            inv = inv.line(NewInvoiceLine::qty(
                &format!("line {}", i + 1),
                "1",
                price,
                seg,
            ));
        }
        self.coupa.add_invoice(inv)
    }

    /// `n` approved two-line invoices of SUP-001 into usmf: INV-0000, INV-0001, …
    fn invoices(&self, n: usize) -> Vec<i64> {
        (0..n)
            .map(|i| {
                self.invoice(
                    "SUP-001",
                    &format!("INV-{i:04}"),
                    &[
                        ("10.50", ["US", "600100", "001", "OU_1"]),
                        ("4.25", ["US", "600200", "002", ""]),
                    ],
                )
            })
            .collect()
    }

    async fn backfill(
        &self,
        batch: usize,
        crash: Option<BulkCrash>,
    ) -> anyhow::Result<BackfillReport> {
        let opts = BackfillOptions {
            since: None,
            bulk: BulkOptions {
                batch,
                dry_run: false,
                poll_every: Duration::from_millis(50),
                crash,
            },
        };
        backfill(&self.pipeline, "coupa-fo", &opts, &|_| {}).await
    }

    async fn run_once(&self) -> DrainStats {
        self.pipeline.poll_all().await.unwrap();
        self.pipeline.drain(4, Arc::new(|_| {})).await.unwrap()
    }

    /// How many pending invoices F&O holds per (company, invoice number), and the most.
    fn most_copies(&self) -> usize {
        let mut counts = std::collections::HashMap::new();
        for i in self.fo.pending_invoices() {
            *counts.entry((i.company, i.invoice_number)).or_insert(0) += 1;
        }
        counts.values().copied().max().unwrap_or(0)
    }

    fn count(&self, method: &str, path: &str) -> usize {
        self.fo
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }

    async fn ledger_done(&self, coupa_id: i64) -> bool {
        let key = LedgerKey {
            integration: "coupa-fo".into(),
            kind: "invoice".into(),
            source_id: coupa_id.to_string(),
        };
        self.pipeline
            .env
            .store
            .ledger_entry(&key)
            .await
            .unwrap()
            .is_some_and(|e| e.state == LedgerState::Done)
    }
}

const IMPORT: &str =
    "/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.ImportFromPackage";

#[tokio::test]
async fn a_backfill_lands_every_invoice_once_in_packages_without_per_record_writes() {
    let h = Harness::new().await;
    let ids = h.invoices(25);
    let r = h.backfill(10, None).await.unwrap();
    let t = r.total();
    assert_eq!((r.listed, t.batches, t.landed), (25, 3, 25), "{r:?}");
    let pending = h.fo.pending_invoices();
    assert_eq!(pending.len(), 25);
    assert_eq!(h.most_copies(), 1);
    assert!(
        pending
            .iter()
            .all(|i| i.lines.len() == 2 && i.company == "usmf")
    );
    let lines: Vec<(String, String)> = pending[0]
        .lines
        .iter()
        .map(|l| (l.main_account_display.clone(), l.net_amount.to_string()))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("600100-001-OU_1-".to_string(), "10.5".to_string()),
            ("600200-002--".to_string(), "4.25".to_string())
        ]
    );
    assert_eq!(h.count("POST", "/data/VendorInvoiceHeaders"), 0);
    assert_eq!(h.count("POST", "/data/VendorInvoiceLines"), 0);
    assert_eq!(h.count("POST", IMPORT), 3);
    // A page of look-ups keeps its query string under IIS's default 2,048 characters.
    let longest = h.fo.requests().iter().map(|r| r.query.len()).max();
    assert!(longest.is_some_and(|l| l < 2048), "{longest:?}");
    for id in ids {
        assert!(h.ledger_done(id).await, "ledger of {id}");
    }
}

#[tokio::test]
async fn a_row_fo_refuses_is_parked_with_its_words_and_the_rest_land() {
    let h = Harness::new().await;
    h.invoices(4);
    // Refused: its only line pairs business unit 002 with cost center OU_1, which F&O's
    // account structure refuses (the other invoices never pair them).
    h.fo.refuse_combination(&[("BusinessUnit", "002"), ("CostCenter", "OU_1")]);
    let refused = h.invoice(
        "SUP-001",
        "INV-BAD",
        &[("7.00", ["US", "600100", "002", "OU_1"])],
    );
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let opts = BackfillOptions {
        since: None,
        bulk: BulkOptions {
            poll_every: Duration::from_millis(50),
            ..BulkOptions::default()
        },
    };
    let r = backfill(&h.pipeline, "coupa-fo", &opts, &move |e| {
        seen.lock().unwrap().push(e)
    })
    .await
    .unwrap();
    let t = r.total();
    assert_eq!((t.landed, t.parked, t.left), (4, 1, 0), "{r:?}");
    // B6: the import says so, and its error keys file names the refused invoice.
    assert!(
        events.lock().unwrap().iter().any(|e| matches!(
            e,
            BulkEvent::Reconciled { state, landed: 4, parked: 1, .. } if state == "PartiallySucceeded"
        )),
        "{:?}",
        events.lock().unwrap()
    );
    assert_eq!(h.fo.pending_invoices().len(), 4);
    let parked = h.pipeline.env.store.parked().await.unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0].source_id, refused.to_string());
    assert!(
        parked[0].reason.contains("is not valid")
            && parked[0].reason.contains("Write failed for table row"),
        "F&O's words: {}",
        parked[0].reason
    );
    assert!(!h.ledger_done(refused).await);
}

#[tokio::test]
async fn an_unknown_vendor_in_the_legal_entity_is_parked_and_the_rest_land() {
    let h = Harness::new().await;
    h.invoices(3);
    // DE-001 exists in demf only: F&O refuses it in usmf.
    let refused = h.invoice(
        "SUP-002",
        "INV-NOVENDOR",
        &[("7.00", ["US", "600100", "001", "OU_1"])],
    );
    let r = h.backfill(100, None).await.unwrap();
    let t = r.total();
    assert_eq!((t.landed, t.parked), (3, 1), "{r:?}");
    let parked = h.pipeline.env.store.parked().await.unwrap();
    assert_eq!(parked[0].source_id, refused.to_string());
    assert!(parked[0].reason.contains("DE-001"), "{}", parked[0].reason);
}

#[tokio::test]
async fn a_crash_after_the_import_started_then_a_rerun_waits_for_it_and_lands_each_once() {
    let h = Harness::with(FoConfig {
        rate_limit: None,
        dmf_execution: Duration::from_secs(3),
        ..FoConfig::default()
    })
    .await;
    let ids = h.invoices(12);
    assert!(h.backfill(100, Some(BulkCrash::AfterStart)).await.is_err());
    // The crashed run's claims run out; the re-run comes while its import still executes: it
    // must wait for that import and find what landed, not send a second package.
    tokio::time::sleep(LEASE + Duration::from_millis(200)).await;
    assert_eq!(h.fo.pending_invoices().len(), 0, "still executing");
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let opts = BackfillOptions {
        since: None,
        bulk: BulkOptions {
            batch: 100,
            dry_run: false,
            poll_every: Duration::from_millis(50),
            crash: None,
        },
    };
    let r = backfill(&h.pipeline, "coupa-fo", &opts, &move |e| {
        seen.lock().unwrap().push(e)
    })
    .await
    .unwrap();
    let t = r.total();
    assert_eq!((t.found, t.batches, t.busy), (12, 0, 0), "{r:?}");
    assert_eq!(h.count("POST", IMPORT), 1);
    assert_eq!(h.fo.pending_invoices().len(), 12);
    assert_eq!(h.most_copies(), 1);
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, BulkEvent::WaitingForEarlier { .. })),
        "waited for the earlier import"
    );
    for id in ids {
        assert!(h.ledger_done(id).await);
    }
}

#[tokio::test]
async fn a_crash_after_the_upload_then_a_rerun_sends_one_import_and_lands_each_once() {
    let h = Harness::new().await;
    h.invoices(8);
    assert!(h.backfill(100, Some(BulkCrash::AfterUpload)).await.is_err());
    assert_eq!(h.fo.pending_invoices().len(), 0);
    tokio::time::sleep(LEASE + Duration::from_millis(200)).await;
    let r = h.backfill(100, None).await.unwrap();
    assert_eq!((r.total().landed, r.total().batches), (8, 1), "{r:?}");
    assert_eq!(h.count("POST", IMPORT), 1);
    assert_eq!(h.most_copies(), 1);
}

#[tokio::test]
async fn an_import_whose_answer_was_lost_is_waited_for_and_never_sent_again() {
    let h = Harness::new().await;
    h.invoices(6);
    h.fo.fail_next(FaultRule::new(
        "POST",
        "ImportFromPackage",
        1,
        FaultKind::LoseResponse,
    ));
    let r = h.backfill(100, None).await.unwrap();
    assert_eq!(r.total().landed, 6, "{r:?}");
    assert_eq!(h.fo.dmf_stats().imports, 1);
    assert_eq!(h.most_copies(), 1);
    // A second run finds everything done and sends nothing.
    let r = h.backfill(100, None).await.unwrap();
    assert_eq!((r.total().already_done, r.total().batches), (6, 0), "{r:?}");
    assert_eq!(h.fo.dmf_stats().imports, 1);
}

#[tokio::test]
async fn a_poll_after_the_backfill_posts_nothing_again() {
    let h = Harness::new().await;
    h.invoices(10);
    let r = h.backfill(100, None).await.unwrap();
    assert_eq!(r.total().landed, 10);
    h.fo.clear_requests();
    let stats = h.run_once().await;
    assert_eq!(stats.posted, 0, "{stats:?}");
    assert_eq!(stats.already_posted, 10, "{stats:?}");
    assert_eq!(h.count("POST", "/data/VendorInvoiceHeaders"), 0);
    assert_eq!(h.count("POST", "/data/VendorInvoiceLines"), 0);
    assert_eq!(h.fo.pending_invoices().len(), 10);
    assert_eq!(h.most_copies(), 1);
}

#[tokio::test]
async fn an_invoice_the_poll_wrote_already_is_never_put_in_a_package() {
    let h = Harness::new().await;
    h.invoices(3);
    assert_eq!(h.run_once().await.posted, 3);
    h.invoices_more(2);
    let r = h.backfill(100, None).await.unwrap();
    let t = r.total();
    assert_eq!((t.already_done, t.landed, t.batches), (3, 2, 1), "{r:?}");
    assert_eq!(h.fo.pending_invoices().len(), 5);
    assert_eq!(h.most_copies(), 1);
}

#[tokio::test]
async fn a_dry_run_sends_nothing_and_claims_nothing() {
    let h = Harness::new().await;
    let ids = h.invoices(4);
    let opts = BackfillOptions {
        since: None,
        bulk: BulkOptions {
            dry_run: true,
            ..BulkOptions::default()
        },
    };
    let r = backfill(&h.pipeline, "coupa-fo", &opts, &|_| {})
        .await
        .unwrap();
    assert_eq!(r.total().would_send, 4, "{r:?}");
    assert_eq!(h.fo.dmf_stats().imports, 0);
    for id in ids {
        let key = LedgerKey {
            integration: "coupa-fo".into(),
            kind: "invoice".into(),
            source_id: id.to_string(),
        };
        assert!(
            h.pipeline
                .env
                .store
                .ledger_entry(&key)
                .await
                .unwrap()
                .is_none()
        );
    }
}

impl Harness {
    fn invoices_more(&self, n: usize) {
        for i in 0..n {
            self.invoice(
                "SUP-001",
                &format!("INV-MORE-{i}"),
                &[("3.00", ["US", "600100", "001", "OU_1"])],
            );
        }
    }
}

// -- the simulator's DMF rules --------------------------------------------------------------

fn client(sim: &FoSim) -> FoClient {
    let cfg = sim.config();
    FoClient::new(FoSettings {
        environment_url: format!("https://{}", cfg.environment_host),
        api_url: Some(sim.base_url()),
        token_url: Some(sim.token_url()),
        tenant: cfg.tenant.clone(),
        client_id: cfg.client_id.clone(),
        client_secret: SecretString::new(cfg.client_secret.clone()),
        budget: FoSettings::default_budget(),
        http: HttpSettings::default(),
    })
    .unwrap()
}

fn empty_package() -> Vec<u8> {
    mlc_shared::systems::dynamics_fo::dmf::package(&[]).unwrap()
}

#[tokio::test]
async fn the_fo_simulator_refuses_a_second_import_while_one_executes() {
    let sim = FoSim::start(FoConfig {
        dmf_execution: Duration::from_secs(2),
        ..FoConfig::default()
    })
    .await
    .unwrap();
    let fo = client(&sim);
    let a = fo.dmf_write_url("a.zip").await.unwrap();
    fo.dmf_upload(&a, empty_package()).await.unwrap();
    let b = fo.dmf_write_url("b.zip").await.unwrap();
    fo.dmf_upload(&b, empty_package()).await.unwrap();
    fo.dmf_import(&a, "exec-a", "usmf").await.unwrap();
    let second = fo.dmf_import(&b, "exec-b", "usmf").await;
    let e = second.expect_err("a concurrent import is refused");
    assert!(
        e.to_string().contains("must not be called in parallel"),
        "{e}"
    );
    assert_eq!(sim.dmf_status("exec-b"), "Unknown");
}

#[tokio::test]
async fn the_fo_simulator_refuses_a_package_put_without_x_ms_blob_type() {
    let sim = FoSim::start(FoConfig::default()).await.unwrap();
    let fo = client(&sim);
    let url = fo.dmf_write_url("p.zip").await.unwrap();
    let resp = reqwest::Client::new()
        .put(&url)
        .body(empty_package())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert!(resp.text().await.unwrap().contains("MissingRequiredHeader"));
    assert_eq!(sim.dmf_stats().packages_uploaded, 0);
    // With the header it is taken.
    fo.dmf_upload(&url, empty_package()).await.unwrap();
    assert_eq!(sim.dmf_stats().packages_uploaded, 1);
}

#[tokio::test]
async fn the_write_url_value_is_a_json_string_holding_json() {
    let sim = FoSim::start(FoConfig::default()).await.unwrap();
    let fo = client(&sim);
    // The client parses it twice; the raw answer's value is a string.
    let url = fo.dmf_write_url("x.zip").await.unwrap();
    assert!(
        url.starts_with(&format!("{}/blob/dmf/", sim.base_url())),
        "{url}"
    );
    let token = sim.token_url();
    let t: serde_json::Value = reqwest::Client::new()
        .post(&token)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", sim.config().client_id.as_str()),
            ("client_secret", sim.config().client_secret.as_str()),
            ("scope", sim.scope().as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let raw: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "{}/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.GetAzureWriteUrl",
            sim.base_url()
        ))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .json(&serde_json::json!({"uniqueFileName": "y.zip"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let inner: serde_json::Value =
        serde_json::from_str(raw["value"].as_str().expect("a string")).unwrap();
    assert!(inner["BlobUrl"].as_str().is_some() && inner["BlobId"].as_str().is_some());
}

// -- the figure --------------------------------------------------------------------------------

/// Invoices per second and F&O requests per invoice: the package API against per-record writes
/// (the normal pipeline), on the same 500 invoices into fresh simulators. Run with
/// `cargo test -p mlc-e2e --release --test coupa_fo_backfill -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn figure_backfill_rate_package_vs_per_record() {
    let n: usize = std::env::var("MLC_BACKFILL_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let h = Harness::new().await;
    h.invoices(n);
    h.fo.clear_requests();
    let start = Instant::now();
    let prepared = Arc::new(Mutex::new(None));
    let at = prepared.clone();
    let opts = BackfillOptions {
        since: None,
        bulk: BulkOptions {
            batch: 500,
            poll_every: Duration::from_millis(50),
            ..BulkOptions::default()
        },
    };
    let r = backfill(&h.pipeline, "coupa-fo", &opts, &move |e| {
        if matches!(e, BulkEvent::Prepared { .. }) {
            *at.lock().unwrap() = Some(start.elapsed());
        }
    })
    .await
    .unwrap();
    let bulk = start.elapsed();
    let reading = prepared.lock().unwrap().unwrap_or_default();
    let bulk_requests = h.fo.requests().len();
    assert_eq!(r.total().landed, n);

    let p = Harness::new().await;
    p.invoices(n);
    p.fo.clear_requests();
    let start = Instant::now();
    let stats = p.run_once().await;
    let per_record = start.elapsed();
    let per_record_requests = p.fo.requests().len();
    assert_eq!(stats.posted as usize, n);

    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "FIGURE backfill of {n} two-line invoices into F&O: package API {:.1} invoices/s ({:.2?} of which {:.2?} listing and reading Coupa, {} F&O requests, {:.3}/invoice) vs per-record {:.1} invoices/s ({:.2?}, {} F&O requests, {:.3}/invoice); simulated import execution {:?}",
        rate(bulk),
        bulk,
        reading,
        bulk_requests,
        bulk_requests as f64 / n as f64,
        rate(per_record),
        per_record,
        per_record_requests,
        per_record_requests as f64 / n as f64,
        h.fo.config().dmf_execution,
    );
}

#[tokio::test]
async fn a_per_record_worker_running_during_a_package_writes_none_of_its_invoices() {
    let h = Arc::new(
        Harness::with(FoConfig {
            rate_limit: None,
            dmf_execution: Duration::from_secs(2),
            ..FoConfig::default()
        })
        .await,
    );
    h.invoices(8);
    let bf = h.clone();
    let running = tokio::spawn(async move { bf.backfill(100, None).await.unwrap() });
    // The package is executing: the normal pipeline meets every invoice claimed.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(h.fo.dmf_stats().imports, 1);
    let during = h.run_once().await;
    let r = running.await.unwrap();
    let after = h.run_once().await;
    assert_eq!(r.total().landed, 8, "{r:?}");
    assert_eq!(during.posted + after.posted, 0, "{during:?} {after:?}");
    assert_eq!(h.count("POST", "/data/VendorInvoiceHeaders"), 0);
    assert_eq!(h.fo.pending_invoices().len(), 8);
    assert_eq!(h.most_copies(), 1);
}

#[tokio::test]
async fn the_fo_simulator_exempts_data_management_calls_from_service_protection() {
    // B8: DMF/DIXF is exempt. A budget of one request is spent by the first OData read; the
    // package calls still go through.
    let sim = FoSim::start(FoConfig {
        rate_limit: Some(mlc_sandbox::fo::RateLimit {
            requests: 1,
            window: Duration::from_secs(300),
        }),
        ..FoConfig::default()
    })
    .await
    .unwrap();
    let fo = client(&sim);
    fo.legal_entities().await.unwrap();
    let url = fo.dmf_write_url("t.zip").await.unwrap();
    fo.dmf_upload(&url, empty_package()).await.unwrap();
    fo.dmf_import(&url, "exec-t", "usmf").await.unwrap();
    assert_ne!(fo.dmf_status("exec-t").await.unwrap(), "Unknown");
    assert_eq!(sim.throttled_count(), 0);
}
