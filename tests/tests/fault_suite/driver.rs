//! Drives the embedded queues the way `Pipeline::drain` does (receive → step → ack), but with a
//! crash injected at a chosen step boundary for a seeded fraction of deliveries. A crash is
//! what a killed worker leaves: the step stops where it is, nothing is acked, released or
//! audited, and the worker comes back as a NEW pipeline on the same database file (another
//! ledger owner, cold token caches).
//!
//! Time passing. The suite runs on the system clock, so the two waits a crash causes (the
//! message's visibility timeout, the ledger lease `CLAIM_LEASE` of 90 s that holds off another
//! owner) are made to pass by moving them in the SQLite file: when every worker is idle (none
//! is inside a step: they all wait on a gate) and nothing is visible but the queues are not
//! empty, the coordinator sets the claimed ledger rows' `lease_until` into the past and makes
//! the hidden messages visible. That is exactly the state the file would be in 90 s later,
//! reached in milliseconds. A lease is never expired under a running step.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use mlc_cli::embedded::{self, EmbeddedPipeline};
use mlc_shared::config::Config;
use mlc_shared::ports::{Clock, Message, Queue, QueueError, QueueName, SystemClock};
use mlc_shared::runtime::{Delivery, DrainStats};
use mlc_shared::steps::map::{MapCrash, MapOutcome};
use mlc_shared::steps::post::{CrashPoint, PostOutcome};
use mlc_shared::steps::{IngestMessage, PostEnvelope};
use rand::Rng;

use super::rig::{Rig, own_addresses, shorten_target_timeout};
use super::world::{keyed_rng, source_id_of};

/// Builds pipelines on the harness's database file, as `mlc` would on a (re)start, and keeps
/// them to add up their HTTP clients' retry counts.
pub struct Factory {
    pub rig: Arc<dyn Rig>,
    pub cfg: Config,
    /// A shorter HTTP timeout for the target than the product's 60 s, so a response lost to a
    /// timeout can be tested in seconds.
    pub target_timeout: Option<Duration>,
    created: Mutex<Vec<Arc<EmbeddedPipeline>>>,
}

impl Factory {
    pub fn new(rig: Arc<dyn Rig>) -> Arc<Self> {
        let cfg = rig.config().clone();
        Self::with(rig, cfg, None)
    }

    pub fn with(rig: Arc<dyn Rig>, cfg: Config, target_timeout: Option<Duration>) -> Arc<Self> {
        Arc::new(Self {
            rig,
            cfg,
            target_timeout,
            created: Mutex::new(Vec::new()),
        })
    }

    /// A new pipeline (a new process, for the ledger: a new owner), with clients of its own
    /// that reach the simulators through their own addresses.
    pub async fn pipeline(&self) -> Arc<EmbeddedPipeline> {
        let mut cfg = self.cfg.clone();
        own_addresses(self.rig.as_ref(), &mut cfg).await;
        if let Some(timeout) = self.target_timeout {
            shorten_target_timeout(&mut cfg, timeout);
        }
        let p = embedded::pipeline(&cfg, self.rig.secrets()).await.unwrap();
        self.created.lock().unwrap().push(p.clone());
        p
    }

    /// Requests the HTTP clients of every pipeline built here repeated (throttling, transient
    /// errors on idempotent calls, token refreshes).
    pub fn http_retries(&self) -> u64 {
        let mut n = 0;
        for p in self.created.lock().unwrap().iter() {
            for (_, system) in p.systems.iter() {
                let stats = system.stats();
                n += stats.retries.load(Ordering::Relaxed)
                    + stats.token_refreshes.load(Ordering::Relaxed);
            }
        }
        n
    }

    pub fn database(&self) -> std::path::PathBuf {
        self.cfg.runtime.database.clone()
    }
}

/// A step boundary a worker can die at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Boundary {
    Map(MapCrash),
    /// The map step finished (post message queued, audit written), the ack did not happen.
    MapBeforeAck,
    Post(CrashPoint),
    /// The post step finished (ledger done, audit written), the ack did not happen.
    PostBeforeAck,
}

impl Boundary {
    pub const ALL: [Boundary; 8] = [
        Boundary::Map(MapCrash::BeforeSourceRead),
        Boundary::Map(MapCrash::AfterSourceRead),
        Boundary::Map(MapCrash::AfterEnqueue),
        Boundary::MapBeforeAck,
        Boundary::Post(CrashPoint::AfterClaim),
        Boundary::Post(CrashPoint::AfterDraft),
        Boundary::Post(CrashPoint::AfterPost),
        Boundary::PostBeforeAck,
    ];

    pub fn queue(self) -> QueueName {
        match self {
            Boundary::Map(_) | Boundary::MapBeforeAck => QueueName::Ingest,
            Boundary::Post(_) | Boundary::PostBeforeAck => QueueName::Post,
        }
    }
}

#[derive(Clone, Debug)]
pub struct CrashPlan {
    pub boundaries: Vec<Boundary>,
    /// Chance that one delivery crashes (at one of the boundaries of its queue).
    pub probability: f64,
}

impl CrashPlan {
    pub fn none() -> Self {
        Self {
            boundaries: Vec::new(),
            probability: 0.0,
        }
    }

    /// Where (if anywhere) the delivery of `m` from `queue` crashes, drawn from the seed, the
    /// document and the receive count, so a run is reproducible whatever the interleaving.
    /// Every message keeps two deliveries that cannot crash, so crashes alone never exhaust
    /// its receives (see `a_worker_dying_at_every_delivery_is_dead_lettered…`).
    pub fn crash_for(
        &self,
        seed: u64,
        queue: QueueName,
        m: &Message,
        max_receives: u32,
    ) -> Option<Boundary> {
        if self.probability <= 0.0 || m.receive_count + 2 > max_receives {
            return None;
        }
        let here: Vec<Boundary> = self
            .boundaries
            .iter()
            .copied()
            .filter(|b| b.queue() == queue)
            .collect();
        if here.is_empty() {
            return None;
        }
        let key = (
            queue.as_str(),
            source_id_of(&m.body).unwrap_or_default(),
            m.receive_count,
        );
        let mut rng = keyed_rng(seed, key);
        rng.random_bool(self.probability)
            .then(|| here[rng.random_range(0..here.len())])
    }
}

#[derive(Default)]
pub struct Counters {
    pub crashes: AtomicU64,
    pub restarts: AtomicU64,
    /// Deliveries that ended without finishing the document: failed steps, busy claims.
    pub redeliveries: AtomicU64,
    /// Acks refused because the message had been delivered again meanwhile.
    pub stale_acks: AtomicU64,
    /// Times the coordinator made time pass (leases run out, hidden messages visible).
    pub time_jumps: AtomicU64,
    pub stats: Mutex<DrainStats>,
}

impl Counters {
    pub fn add(&self, l: &DrainStats) {
        let mut t = self.stats.lock().unwrap();
        t.mapped += l.mapped;
        t.parked += l.parked;
        t.skipped += l.skipped;
        t.posted += l.posted;
        t.already_posted += l.already_posted;
        t.failed_attempts += l.failed_attempts;
        t.dead_lettered += l.dead_lettered;
    }

    pub fn total_redeliveries(&self) -> u64 {
        self.crashes.load(Ordering::Relaxed) + self.redeliveries.load(Ordering::Relaxed)
    }
}

pub struct Driver {
    pub factory: Arc<Factory>,
    pub plan: CrashPlan,
    pub seed: u64,
    /// Concurrent workers, each its own pipeline (its own process, as far as the ledger knows).
    pub workers: usize,
    pub counters: Arc<Counters>,
    /// How long the queues must have been idle (nothing deliverable) before time may jump:
    /// longer than any request a simulator is still working on (a `Hang` fault), so time never
    /// passes for the connector while the server has not caught up.
    pub server_settle: Duration,
    gate: tokio::sync::RwLock<()>,
}

impl Driver {
    pub fn new(factory: Arc<Factory>, plan: CrashPlan, seed: u64, workers: usize) -> Arc<Self> {
        Self::settling(factory, plan, seed, workers, Duration::ZERO)
    }

    pub fn settling(
        factory: Arc<Factory>,
        plan: CrashPlan,
        seed: u64,
        workers: usize,
        server_settle: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            factory,
            plan,
            seed,
            workers,
            server_settle,
            counters: Arc::default(),
            gate: tokio::sync::RwLock::new(()),
        })
    }

    /// Works both queues until they are empty, crashing and restarting workers per the plan.
    pub async fn run(self: &Arc<Self>) {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..self.workers.max(1) {
            let me = self.clone();
            tasks.spawn(async move { me.worker().await });
        }
        let coordinator = {
            let me = self.clone();
            tokio::spawn(async move { me.coordinate().await })
        };
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        coordinator.abort();
    }

    async fn coordinate(&self) {
        let verbose = std::env::var_os("MLC_FAULT_VERBOSE").is_some();
        let mut ticks = 0u64;
        let mut idle_since: Option<std::time::Instant> = None;
        loop {
            tokio::time::sleep(Duration::from_millis(60)).await;
            ticks += 1;
            if verbose && ticks.is_multiple_of(50) {
                let (visible, depth) = queue_state(&self.factory.database());
                let c = &self.counters;
                eprintln!(
                    "[driver] visible {visible} depth {depth} crashes {} redeliveries {} stale {} jumps {} {:?}",
                    c.crashes.load(Ordering::Relaxed),
                    c.redeliveries.load(Ordering::Relaxed),
                    c.stale_acks.load(Ordering::Relaxed),
                    c.time_jumps.load(Ordering::Relaxed),
                    c.stats.lock().unwrap()
                );
            }
            let _all_idle = self.gate.write().await;
            let db = self.factory.database();
            let (visible, depth) = queue_state(&db);
            if visible == 0 && depth > 0 {
                let since = *idle_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() >= self.server_settle {
                    time_passes(&db);
                    self.factory.rig.time_passed();
                    self.counters.time_jumps.fetch_add(1, Ordering::Relaxed);
                    idle_since = None;
                }
            } else {
                idle_since = None;
            }
        }
    }

    async fn worker(self: Arc<Self>) {
        let mut p = self.factory.pipeline().await;
        loop {
            let mut worked = false;
            let mut crashed = false;
            {
                let _in_step = self.gate.read().await;
                for queue in [QueueName::Post, QueueName::Ingest] {
                    let batch = p.env.queue.receive(queue, 1).await.unwrap();
                    for m in batch {
                        worked = true;
                        crashed |= self.deliver(&p, queue, m).await;
                    }
                    if crashed {
                        break;
                    }
                }
            }
            if crashed {
                // The process died; a new one starts on the same file.
                p = self.factory.pipeline().await;
                self.counters.restarts.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if !worked {
                let q = &p.env.queue;
                let depth = q.depth(QueueName::Ingest).await.unwrap()
                    + q.depth(QueueName::Post).await.unwrap();
                if depth == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Handles one delivery; true when the worker died doing it.
    async fn deliver(&self, p: &Arc<EmbeddedPipeline>, queue: QueueName, m: Message) -> bool {
        let c = &self.counters;
        let Some(boundary) = self.plan.crash_for(self.seed, queue, &m, p.max_receives) else {
            deliver_normally(p, queue, m, c).await;
            return false;
        };
        let crashed = match boundary {
            Boundary::MapBeforeAck | Boundary::PostBeforeAck => {
                let mut local = DrainStats::default();
                p.run_message(queue, &m.body, m.receive_count, &mut local)
                    .await;
                c.add(&local);
                true
            }
            Boundary::Map(point) => {
                if serde_json::from_str::<IngestMessage>(&m.body).is_err() {
                    deliver_normally(p, queue, m, c).await;
                    return false;
                }
                match p.handle_ingest_crashing(&m.body, Some(point)).await {
                    // Finished before reaching the boundary (parked, skipped).
                    Ok(outcome) => {
                        let mut local = DrainStats::default();
                        match outcome {
                            MapOutcome::Mapped => local.mapped += 1,
                            MapOutcome::Parked(_) => local.parked += 1,
                            MapOutcome::Skipped(_) => local.skipped += 1,
                        }
                        c.add(&local);
                        ack(p, queue, &m, c).await;
                        false
                    }
                    Err(_) => true,
                }
            }
            Boundary::Post(point) => {
                if PostEnvelope::decode(&m.body).is_err() {
                    deliver_normally(p, queue, m, c).await;
                    return false;
                }
                match p.handle_post_crashing(&m.body, &p.owner, Some(point)).await {
                    Ok(
                        PostOutcome::Posted { .. }
                        | PostOutcome::AlreadyPosted { .. }
                        | PostOutcome::Parked(_),
                    ) => {
                        ack(p, queue, &m, c).await;
                        false
                    }
                    // Not now (claimed by another owner, or an earlier create may still land):
                    // come back after time has passed (the coordinator makes it pass).
                    Ok(_) => {
                        c.redeliveries.fetch_add(1, Ordering::Relaxed);
                        retry(p, queue, &m, Duration::from_secs(900), c).await;
                        false
                    }
                    Err(_) => true,
                }
            }
        };
        if crashed {
            c.crashes.fetch_add(1, Ordering::Relaxed);
        }
        crashed
    }
}

/// What `Pipeline::drain` does with one delivery: run its step, then ack or schedule the retry.
pub async fn deliver_normally(
    p: &Arc<EmbeddedPipeline>,
    queue: QueueName,
    m: Message,
    c: &Counters,
) {
    let mut local = DrainStats::default();
    let d = p
        .run_message(queue, &m.body, m.receive_count, &mut local)
        .await;
    c.add(&local);
    if !matches!(d, Delivery::Done | Delivery::DeadLetterNow { .. }) {
        c.redeliveries.fetch_add(1, Ordering::Relaxed);
    }
    match p.settle(queue, &m, &d, true).await {
        Ok(()) => {}
        Err(QueueError::UnknownReceipt { .. }) => {
            c.stale_acks.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => panic!("settling a delivery: {e}"),
    }
}

async fn ack(p: &Arc<EmbeddedPipeline>, queue: QueueName, m: &Message, c: &Counters) {
    match p.env.queue.ack(queue, &m.receipt).await {
        Ok(()) => {}
        Err(QueueError::UnknownReceipt { .. }) => {
            c.stale_acks.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => panic!("ack: {e}"),
    }
}

async fn retry(
    p: &Arc<EmbeddedPipeline>,
    queue: QueueName,
    m: &Message,
    wait: Duration,
    c: &Counters,
) {
    match p.env.queue.retry_later(queue, &m.receipt, wait).await {
        Ok(()) => {}
        Err(QueueError::UnknownReceipt { .. }) => {
            c.stale_acks.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => panic!("retry_later: {e}"),
    }
}

fn open(db: &std::path::Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(db).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

fn now_ts() -> String {
    SystemClock
        .now()
        .to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// (messages deliverable now, messages in the queues).
pub fn queue_state(db: &std::path::Path) -> (i64, i64) {
    let c = open(db);
    let visible = c
        .query_row(
            // Deliverable: visible AND the head of its group (a later message of a group
            // whose head is hidden waits with it, as in `SqliteQueue::receive`).
            "SELECT COUNT(*) FROM queue_messages m WHERE m.visible_at <= ?1
               AND m.seq = (SELECT MIN(x.seq) FROM queue_messages x
                            WHERE x.queue = m.queue AND x.group_id = m.group_id)",
            [now_ts()],
            |r| r.get(0),
        )
        .unwrap();
    let depth = c
        .query_row("SELECT COUNT(*) FROM queue_messages", [], |r| r.get(0))
        .unwrap();
    (visible, depth)
}

/// Time passes for whoever is not running: every claim's lease runs out, every hidden
/// message (in flight with a dead worker, or waiting for its retry) becomes visible, and a
/// create whose outcome was unknown has had its settle time. Call only when no step is
/// running and no simulator is still working on a request.
pub fn time_passes(db: &std::path::Path) {
    let c = open(db);
    let past =
        (Utc::now() - chrono::Duration::seconds(1)).to_rfc3339_opts(SecondsFormat::Nanos, true);
    c.execute(
        "UPDATE ledger SET lease_until = ?1 WHERE state = 'claimed'",
        [&past],
    )
    .unwrap();
    c.execute(
        "UPDATE queue_messages SET visible_at = ?1 WHERE visible_at > ?1",
        [&past],
    )
    .unwrap();
    // A create whose outcome was unknown has had all the time BC allows it to land (where
    // the ledger records such creates).
    let has_unsettled: bool = c
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('ledger') WHERE name = 'unsettled_create_at'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
        > 0;
    if has_unsettled {
        let long_ago =
            (Utc::now() - chrono::Duration::days(1)).to_rfc3339_opts(SecondsFormat::Nanos, true);
        c.execute(
            "UPDATE ledger SET unsettled_create_at = ?1 WHERE unsettled_create_at IS NOT NULL",
            [&long_ago],
        )
        .unwrap();
    }
}

/// The queue's five-minute deduplication window passes: a repeat is no longer dropped by the
/// queue, only the ledger stands in its way.
pub fn dedup_window_passes(db: &std::path::Path) {
    open(db).execute("DELETE FROM queue_dedup", []).unwrap();
}
