//! The fault suite against every registered integration: the scenarios of
//! `mlc_sandbox::scenarios::all()` (the ones `mlc demo` runs), each started on its own
//! simulators and seeded as `mlc sandbox` seeds it, then driven through the real pipeline on
//! both runtimes while workers die at every step boundary, answers are lost after the write
//! committed, the servers throttle and every token and session runs out on a timer.
//!
//! The verdict is read from the simulators ([`mlc_sandbox::scenarios::Sandbox::landings`]):
//! every document that must land is in the target exactly once and finished (posted, every
//! line there), answered back to its source at most once; every document that must not land
//! is not there. A new integration that registers its scenario is covered here without a line
//! of this file changing but the `every_integration!` list below.
//!
//! Size: `MLC_FAULT_DOCS` documents per integration and scenario (default 24, which keeps CI
//! short; the figures in the notes come from `MLC_FAULT_DOCS=200`). `MLC_FAULT_SEED` as in
//! `fault_suite.rs`. Each scenario prints one row (also appended to
//! `$CARGO_TARGET_TMPDIR/fault_suite_every-<seed>.txt`).

mod common;

#[path = "fault_suite/aws.rs"]
mod aws;
#[path = "fault_suite/driver.rs"]
mod driver;
#[path = "fault_suite/rig.rs"]
mod rig;
#[allow(dead_code)]
#[path = "fault_suite/world.rs"]
mod world;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mlc_sandbox::scenarios::{self, Expect, Landing, Listen, Sandbox, Side};
use mlc_sandbox::{FaultKind, FaultRule};
use mlc_shared::adapters::embedded::{SecretFile, SecretKey};
use mlc_shared::config::Config;
use mlc_shared::ports::{Audit, AuditFilter};
use rand::Rng;
use rand::rngs::StdRng;

use driver::{Boundary, CrashPlan, Driver, Factory};
use rig::Rig;

/// Documents per integration and scenario unless `MLC_FAULT_DOCS` says otherwise.
const DOCS: usize = 24;

/// Receives before SQS dead-letters a message in the AWS scenario (see there).
const MIXED_MAX_RECEIVES: u32 = 8;

/// One registered integration's simulators, seeded, with the configuration and secrets file
/// that point the connector at them.
struct Registered {
    integration: &'static str,
    scenario: String,
    seed: u64,
    sandbox: Mutex<Box<dyn Sandbox>>,
    urls: Vec<String>,
    cfg: Config,
    secrets: SecretFile,
    _dir: tempfile::TempDir,
    started: Instant,
}

impl Rig for Registered {
    fn config(&self) -> &Config {
        &self.cfg
    }

    fn secrets(&self) -> &SecretFile {
        &self.secrets
    }

    fn base_urls(&self) -> Vec<String> {
        self.urls.clone()
    }

    /// Tokens and sessions run out when time passes: a dead worker's session (SAP B1 holds a
    /// licence for each) is freed by its timeout, as on the real server.
    fn time_passed(&self) {
        self.sandbox.lock().unwrap().expire_credentials();
    }
}

impl Registered {
    async fn start(integration: &'static str, scenario: &str) -> Arc<Self> {
        let name = format!("{integration}/{scenario}");
        let seed = world::scenario_seed(&name);
        println!(
            "scenario {name}: seed {seed} (suite seed {}, MLC_FAULT_SEED)",
            world::suite_seed()
        );
        let registered = scenarios::all()
            .into_iter()
            .find(|s| s.name() == integration)
            .unwrap_or_else(|| panic!("{integration} is not a registered scenario"));
        let mut sandbox = registered.start(&Listen::new()).await.unwrap();
        sandbox.seed(world::good_docs(DOCS));
        let dir = tempfile::tempdir().unwrap();
        // Retries a few milliseconds apart instead of the product's half second: the suite
        // makes time pass for leases and visibility, not for the HTTP client's backoff.
        let text = scenarios::merged_config("mlc.sqlite", "mlc.secrets", &[sandbox.config()])
            .replace("[runtime]\n", "[runtime]\nretry_base_delay_ms = 20\n");
        let path = dir.path().join("mlc.toml");
        std::fs::write(&path, text).unwrap();
        let cfg = Config::load(&path).unwrap();
        let secrets = SecretFile::open(&cfg.runtime.secrets_file, SecretKey::generate()).unwrap();
        sandbox
            .store_secrets(&|name, value| secrets.set(name, value))
            .unwrap();
        Arc::new(Self {
            integration,
            scenario: name,
            seed,
            urls: sandbox.base_urls(),
            sandbox: Mutex::new(sandbox),
            cfg,
            secrets,
            _dir: dir,
            started: Instant::now(),
        })
    }

    fn rng(&self, what: &str) -> StdRng {
        world::keyed_rng(self.seed, what)
    }

    fn landings(&self) -> Vec<Landing> {
        self.sandbox.lock().unwrap().landings()
    }

    /// Documents that must land and have not (yet).
    fn missing(&self) -> usize {
        self.landings()
            .iter()
            .filter(|l| l.expect == Expect::Once && !(l.copies == 1 && l.finished))
            .count()
    }

    /// `n` seeded fault rules of `kinds` on a side's endpoints, each failing one to three
    /// requests in a row. Returns how many faulty answers were queued.
    fn storm(&self, side: Side, n: usize, kinds: &[FaultKind], rng: &mut StdRng) -> u64 {
        let sandbox = self.sandbox.lock().unwrap();
        let targets = sandbox.fault_targets(side);
        let mut queued = 0;
        for _ in 0..n {
            let (method, path) = targets[rng.random_range(0..targets.len())];
            let kind = kinds[rng.random_range(0..kinds.len())].clone();
            let rule = FaultRule::new(method, path, rng.random_range(1..=3), kind);
            queued += rule.count as u64;
            sandbox.fail_next(side, rule);
        }
        queued
    }

    /// Ends every token and session every `every` while the documents move; returns the
    /// ticker and how many times it fired.
    fn credentials_run_out(
        self: &Arc<Self>,
        every: Duration,
    ) -> (tokio::task::JoinHandle<()>, Arc<AtomicU64>) {
        let fired = Arc::new(AtomicU64::new(0));
        let (me, n) = (self.clone(), fired.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                me.sandbox.lock().unwrap().expire_credentials();
                n.fetch_add(1, Ordering::Relaxed);
            }
        });
        (task, fired)
    }

    /// Judges the simulators' final state; prints the row and fails on a duplicate, a loss or
    /// a document that landed where it must not, with the audit trail of each document in
    /// question (read from `audit`, the runtime's store).
    async fn verdict<A: Audit>(
        &self,
        runtime: &str,
        faults: u64,
        redeliveries: u64,
        http_retries: u64,
        audit: &A,
    ) {
        let landings = self.landings();
        assert!(
            !landings.is_empty(),
            "{}: the scenario reports no seeded document",
            self.integration
        );
        let must = landings.iter().filter(|l| l.expect == Expect::Once);
        let landed = must.clone().filter(|l| l.copies == 1 && l.finished).count();
        let mut problems = Vec::new();
        for l in &landings {
            match l.expect {
                Expect::Once if l.copies > 1 => problems.push(format!(
                    "DUPLICATE: {} is in the target {} times",
                    l.document, l.copies
                )),
                Expect::Once if l.copies == 0 => {
                    problems.push(format!("LOST: {} is not in the target", l.document))
                }
                Expect::Once if !l.finished => problems.push(format!(
                    "UNFINISHED: {} is in the target but not posted or not whole",
                    l.document
                )),
                Expect::Never if l.copies > 0 => problems.push(format!(
                    "LANDED: {} must never reach the target, and is there {} times",
                    l.document, l.copies
                )),
                _ => {}
            }
            if let Some(n) = l.answers.filter(|n| *n > 1) {
                problems.push(format!(
                    "DUPLICATE ANSWER: the source got {n} answers about {}",
                    l.document
                ));
            }
        }
        let row = format!(
            "{:<34} {:<8} docs {:>4} landed once {:>4} never {:>3} problems {:>2} faults {:>4} \
             redeliveries {:>4} http retries {:>4} {:>6.1} s",
            self.scenario,
            runtime,
            landings.len(),
            landed,
            landings
                .iter()
                .filter(|l| l.expect == Expect::Never)
                .count(),
            problems.len(),
            faults,
            redeliveries,
            http_retries,
            self.started.elapsed().as_secs_f64(),
        );
        println!("{row}");
        let report = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("fault_suite_every-{}.txt", world::suite_seed()));
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(report)
        {
            let _ = writeln!(f, "{row}");
        }
        if !problems.is_empty() {
            for l in landings.iter().filter(|l| {
                l.expect == Expect::Once && !(l.copies == 1 && l.finished)
                    || l.expect == Expect::Never && l.copies > 0
            }) {
                let number = l.document.split(' ').next().unwrap_or_default();
                let filter = AuditFilter {
                    document: Some(number.to_string()),
                    ..Default::default()
                };
                println!("audit trail of {}:", l.document);
                // Failures are recorded under the source id only: look again by it.
                let mut trail = audit.query_audit(&filter).await.unwrap_or_default();
                let ids: std::collections::BTreeSet<String> =
                    trail.iter().map(|a| a.source_id.clone()).collect();
                for id in ids.into_iter().filter(|id| id != number) {
                    let by_id = AuditFilter {
                        document: Some(id),
                        ..Default::default()
                    };
                    trail.extend(audit.query_audit(&by_id).await.unwrap_or_default());
                }
                trail.sort_by_key(|a| a.at);
                trail.dedup_by(|a, b| a.at == b.at && a.status == b.status);
                for a in trail {
                    println!(
                        "  {} {:?} {:?} {}",
                        a.at,
                        a.step,
                        a.status,
                        a.error.as_deref().unwrap_or_default()
                    );
                }
            }
        }
        assert!(
            problems.is_empty(),
            "{}: {}",
            self.scenario,
            problems.join("\n")
        );
    }
}

/// What the servers do to the connector in the "lost answers and throttling" scenarios:
/// writes committed with their answer lost, throttling with and without `Retry-After`,
/// service unavailable.
fn server_faults(r: &Registered) -> u64 {
    let mut rng = r.rng("server faults");
    let target = [
        FaultKind::LoseResponse,
        FaultKind::TooManyRequests {
            retry_after: Some(1),
        },
        FaultKind::TooManyRequests { retry_after: None },
        FaultKind::Unavailable {
            retry_after: Some(1),
        },
    ];
    let source = [
        FaultKind::LoseResponse,
        FaultKind::TooManyRequests {
            retry_after: Some(1),
        },
        FaultKind::Status(502),
    ];
    r.storm(Side::Target, 10, &target, &mut rng) + r.storm(Side::Source, 5, &source, &mut rng)
}

/// Polls until one poll succeeds (a poll may fail under faults; the next covers the same
/// ground).
async fn poll(p: &mlc_cli::embedded::EmbeddedPipeline) {
    for _ in 0..10 {
        match p.poll_all().await {
            Ok(_) => return,
            Err(e) => eprintln!("poll failed: {e:#}"),
        }
    }
    panic!("no poll succeeded in 10 tries");
}

/// After the faults: fresh workers poll and drain until everything that must land has (a
/// document parked for a dependency, such as an invoice whose order had not reached the
/// target yet, is retried by the next poll), at most five rounds.
async fn settle_embedded(r: &Arc<Registered>, f: &Arc<Factory>) {
    for _ in 0..5 {
        if r.missing() == 0 {
            break;
        }
        poll(&*f.pipeline().await).await;
        Driver::new(f.clone(), CrashPlan::none(), r.seed, 2)
            .run()
            .await;
    }
}

async fn crashes_at_every_step_boundary(integration: &'static str) {
    let r = Registered::start(integration, "crashes").await;
    let f = Factory::new(r.clone());
    poll(&*f.pipeline().await).await;
    let plan = CrashPlan {
        boundaries: Boundary::ALL.to_vec(),
        probability: 0.35,
    };
    let d = Driver::new(f.clone(), plan, r.seed, 2);
    d.run().await;
    settle_embedded(&r, &f).await;
    let crashes = d.counters.crashes.load(Ordering::Relaxed);
    assert!(crashes > 0, "no crash was injected");
    r.verdict(
        "embedded",
        crashes,
        d.counters.total_redeliveries(),
        f.http_retries(),
        &f.pipeline().await.env.store,
    )
    .await;
}

async fn lost_answers_throttling_and_expiry(integration: &'static str) {
    let r = Registered::start(integration, "lost answers").await;
    let faults = server_faults(&r);
    let (ticker, fired) = r.credentials_run_out(Duration::from_millis(300));
    let f = Factory::new(r.clone());
    poll(&*f.pipeline().await).await;
    let d = Driver::new(f.clone(), CrashPlan::none(), r.seed, 4);
    d.run().await;
    ticker.abort();
    settle_embedded(&r, &f).await;
    assert!(fired.load(Ordering::Relaxed) > 0);
    r.verdict(
        "embedded",
        faults,
        d.counters.total_redeliveries(),
        f.http_retries(),
        &f.pipeline().await.env.store,
    )
    .await;
}

/// The AWS runtime (queues, tables and secrets on moto, the real handlers): workers die at
/// every step boundary while answers are lost and servers throttle.
async fn aws_crashes_and_lost_answers(integration: &'static str) {
    let r = Registered::start(integration, "aws").await;
    let faults = server_faults(&r);
    // More deliveries than the contract's 5 (the redrive policy too), as in
    // `fault_suite_aws.rs`'s mixed scenario: crashes, 5xx and lost answers all land on the same
    // documents here, and a document dead-lettered after its source acknowledged it (Basware,
    // Concur) waits for an operator's replay, which this suite would count as lost.
    let s = aws::Stack::new(
        r.clone(),
        &format!("every-{integration}"),
        aws::VISIBILITY,
        MIXED_MAX_RECEIVES,
        None,
    )
    .await;
    aws::poll_until_ok(&*s.context().await, 10).await;
    let plan = CrashPlan {
        boundaries: Boundary::ALL.to_vec(),
        probability: 0.3,
    };
    let d = aws::Driver::new(s.clone(), plan, r.seed, 3);
    d.run().await;
    for _ in 0..5 {
        if r.missing() == 0 {
            break;
        }
        aws::poll_until_ok(&*s.context().await, 10).await;
        aws::Driver::new(s.clone(), CrashPlan::none(), r.seed, 2)
            .run()
            .await;
    }
    // What the scheduled poll does after polling: dead letters enter the audit trail.
    aws::audit_dead_letters(&*s.context().await).await;
    let crashes = d.counters.crashes.load(Ordering::Relaxed);
    r.verdict(
        "aws",
        faults + crashes,
        d.counters.total_redeliveries(),
        s.http_retries(),
        &s.context().await.pipeline.env.store,
    )
    .await;
}

/// The three scenarios for each registered integration. Coupa → BC has its own, larger suite
/// (`fault_suite.rs`, `fault_suite_aws.rs`) and runs here too, as the check that this generic
/// suite judges the way that one does.
macro_rules! every_integration {
    ($($module:ident => $name:expr),* $(,)?) => {$(
        mod $module {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn crashes_at_every_step_boundary() {
                super::crashes_at_every_step_boundary($name).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn lost_answers_throttling_and_expiry() {
                super::lost_answers_throttling_and_expiry($name).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn aws_crashes_and_lost_answers() {
                super::aws_crashes_and_lost_answers($name).await;
            }
        }
    )*};
}

every_integration! {
    coupa_bc => "coupa-bc",
    coupa_fo => "coupa-fo",
    basware_bc => "basware-bc",
    b1_coupa => "b1-coupa",
    concur_bc => "concur-bc",
}

/// Every registered scenario is in the list above: a new integration cannot skip the suite.
#[test]
fn every_registered_integration_runs_the_fault_suite() {
    let listed = [
        "coupa-bc",
        "coupa-fo",
        "basware-bc",
        "b1-coupa",
        "concur-bc",
    ];
    for s in scenarios::all() {
        assert!(
            listed.contains(&s.name()),
            "{} is registered but not in every_integration!",
            s.name()
        );
    }
}
