//! The documents a scenario runs, the seed, and the verdict read from the simulators' final
//! state (never from the connector's own opinion of what it did).

use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::time::Duration;

use mlc_sandbox::bc::{BcConfig, BcInvoiceView};
use mlc_sandbox::coupa::{CoupaConfig, NewInvoice, NewInvoiceLine};
use mlc_shared::ports::{AuditFilter, AuditStatus, Clock, Queue, QueueName, Store};
use mlc_shared::runtime::Pipeline;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::Harness;

/// Simulators without rate limits: scenarios that throttle set their own.
pub fn unlimited() -> (CoupaConfig, BcConfig) {
    (
        CoupaConfig {
            rate_per_sec: None,
            ..CoupaConfig::default()
        },
        BcConfig {
            rate_limit: None,
            ..BcConfig::default()
        },
    )
}

/// One scenario: its name and seed, the simulators and pipeline, the documents it seeded.
pub struct Scenario {
    pub name: &'static str,
    pub seed: u64,
    pub h: std::sync::Arc<Harness>,
    pub docs: Docs,
    pub started: std::time::Instant,
}

impl Scenario {
    /// Starts the simulators, seeds `good` mappable invoices (numbers `{prefix}-…`) and the
    /// poison ones, and prints the seed to reproduce it.
    pub async fn start(
        name: &'static str,
        coupa: CoupaConfig,
        bc: BcConfig,
        poison: &[(Poison, usize)],
        prefix: &str,
        good: usize,
    ) -> Self {
        let seed = scenario_seed(name);
        println!(
            "scenario {name}: seed {seed} (suite seed {}, MLC_FAULT_SEED)",
            suite_seed()
        );
        let h = std::sync::Arc::new(Harness::with(coupa, bc, "").await);
        let docs = seed_documents(&h, seed, prefix, good_docs(good), poison);
        Self {
            name,
            seed,
            h,
            docs,
            started: std::time::Instant::now(),
        }
    }

    pub fn rng(&self, what: &str) -> StdRng {
        keyed_rng(self.seed, what)
    }
}

/// Default seed; `MLC_FAULT_SEED=<u64>` replaces it.
pub const DEFAULT_SEED: u64 = 20_260_611;

/// The suite-wide seed.
pub fn suite_seed() -> u64 {
    match std::env::var("MLC_FAULT_SEED") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("MLC_FAULT_SEED must be an unsigned integer, got '{v}'")),
        _ => DEFAULT_SEED,
    }
}

/// A scenario's own seed: the suite seed mixed with its name, so scenarios differ from each
/// other but each one is reproducible alone.
pub fn scenario_seed(scenario: &str) -> u64 {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    scenario.hash(&mut h);
    suite_seed() ^ h.0
}

/// A stable hash (std's `DefaultHasher` is not guaranteed stable across releases).
pub struct Fnv(pub u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= *b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A seeded random stream for one decision about one thing (a message delivery, a document),
/// independent of the order in which concurrent workers get there.
pub fn keyed_rng(seed: u64, key: impl Hash) -> StdRng {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325 ^ seed);
    key.hash(&mut h);
    StdRng::seed_from_u64(h.0)
}

/// How many mappable invoices a scenario seeds (`MLC_FAULT_DOCS` overrides).
pub fn good_docs(default: usize) -> usize {
    std::env::var("MLC_FAULT_DOCS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poison {
    /// Supplier SUP-009 has no BC vendor: parked at the map step.
    Unmappable,
    /// Currency "X1" is not ISO 4217: parked at the map step.
    Malformed,
    /// A dimension value BC does not know: parked at the map step by the master-data check
    /// (or, with the check off, refused by BC and parked at the post step).
    RefusedByBc,
}

#[derive(Clone, Debug)]
pub struct Doc {
    pub coupa_id: i64,
    pub number: String,
    /// The BC vendor it must be posted to (None for poison documents).
    pub vendor: Option<&'static str>,
    pub lines: usize,
    pub poison: Option<Poison>,
}

pub struct Docs {
    pub all: Vec<Doc>,
}

impl Docs {
    pub fn good(&self) -> impl Iterator<Item = &Doc> {
        self.all.iter().filter(|d| d.poison.is_none())
    }
    pub fn poison(&self) -> impl Iterator<Item = &Doc> {
        self.all.iter().filter(|d| d.poison.is_some())
    }
}

const MAPPED: [(&str, &str); 4] = [
    ("SUP-001", "V10000"),
    ("SUP-002", "V20000"),
    ("SUP-003", "V30000"),
    ("SUP-004", "V40000"),
];
const GL: [&str; 3] = ["6100", "6200", "6300"];
const DEPT: [&str; 3] = ["ADM", "SALES", "PROD"];
const PROJECT: [&str; 2] = ["P-100", "P-200"];

/// Seeds `good` approved, mappable invoices across the mapped suppliers (1 to 3 lines, with
/// dimensions; a few invoice numbers with quote, ampersand, hash and slash) and the poison
/// documents asked for. Numbers carry `prefix` so two worlds never share one.
pub fn seed_documents(
    h: &Harness,
    seed: u64,
    prefix: &str,
    good: usize,
    poison: &[(Poison, usize)],
) -> Docs {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut all = Vec::new();
    for i in 0..good {
        let (supplier, vendor) = MAPPED[rng.random_range(0..MAPPED.len())];
        let number = if rng.random_bool(0.05) {
            format!("{prefix}-O'Neil & Sons #{i}/A")
        } else {
            format!("{prefix}-{i:04}")
        };
        let n_lines = rng.random_range(1..=3);
        let mut inv = NewInvoice::approved(h.supplier_id(supplier), &number);
        for l in 0..n_lines {
            let qty = rng.random_range(1..=20).to_string();
            let price = format!(
                "{}.{:04}",
                rng.random_range(1..5000),
                rng.random_range(0..10000)
            );
            let seg = [
                GL[rng.random_range(0..GL.len())],
                DEPT[rng.random_range(0..DEPT.len())],
                PROJECT[rng.random_range(0..PROJECT.len())],
            ];
            inv = inv.line(NewInvoiceLine::qty(
                &format!("line {}", l + 1),
                &qty,
                &price,
                &seg,
            ));
        }
        let coupa_id = h.coupa.add_invoice(inv);
        all.push(Doc {
            coupa_id,
            number,
            vendor: Some(vendor),
            lines: n_lines,
            poison: None,
        });
    }
    for &(kind, n) in poison {
        for i in 0..n {
            let number = format!("{prefix}-P{kind:?}-{i}");
            let line = NewInvoiceLine::qty("poison", "1", "10.00", &["6100", "ADM", "P-100"]);
            let inv = match kind {
                Poison::Unmappable => {
                    NewInvoice::approved(h.supplier_id("SUP-009"), &number).line(line)
                }
                Poison::Malformed => NewInvoice {
                    currency: "X1".into(),
                    ..NewInvoice::approved(h.supplier_id("SUP-001"), &number)
                }
                .line(line),
                Poison::RefusedByBc => {
                    NewInvoice::approved(h.supplier_id("SUP-003"), &number).line(
                        NewInvoiceLine::qty("poison", "1", "10.00", &["6100", "NOPE", "P-100"]),
                    )
                }
            };
            let coupa_id = h.coupa.add_invoice(inv);
            all.push(Doc {
                coupa_id,
                number,
                vendor: None,
                lines: 1,
                poison: Some(kind),
            });
        }
    }
    Docs { all }
}

/// The usual poison mix: unmappable and malformed documents.
pub const STANDARD_POISON: &[(Poison, usize)] = &[(Poison::Unmappable, 6), (Poison::Malformed, 4)];

/// One scenario's figures, as the table prints them.
#[derive(Clone, Debug, Default)]
pub struct Row {
    pub scenario: String,
    pub seed: u64,
    pub docs_in: usize,
    pub posted_once: usize,
    pub duplicates: usize,
    pub lost: usize,
    pub parked: usize,
    pub dead_lettered: usize,
    /// Faults the scenario injected (crashes, HTTP faults, repeats, kills…).
    pub faults: u64,
    /// Deliveries that did not finish the document (failed steps, crashes, busy claims).
    pub redeliveries: u64,
    /// Requests the HTTP clients repeated (429, 5xx on idempotent calls, token refresh).
    pub http_retries: u64,
    /// Requests a client sent inside a wait a simulator had announced to it (a 429 or 503
    /// with `Retry-After`): must be 0.
    pub in_wait: usize,
    pub secs: f64,
    /// What went wrong, one line per document (empty when the row passes).
    pub problems: Vec<String>,
}

pub fn header() -> String {
    format!(
        "{:<34} | {:>20} | {:>7} | {:>11} | {:>10} | {:>4} | {:>6} | {:>13} | {:>6} | {:>12} | {:>12} | {:>7} | {:>6}",
        "scenario",
        "seed",
        "docs in",
        "posted once",
        "duplicates",
        "lost",
        "parked",
        "dead-lettered",
        "faults",
        "redeliveries",
        "http retries",
        "in_wait",
        "secs"
    )
}

impl Row {
    pub fn line(&self) -> String {
        format!(
            "{:<34} | {:>20} | {:>7} | {:>11} | {:>10} | {:>4} | {:>6} | {:>13} | {:>6} | {:>12} | {:>12} | {:>7} | {:>6.1}",
            self.scenario,
            self.seed,
            self.docs_in,
            self.posted_once,
            self.duplicates,
            self.lost,
            self.parked,
            self.dead_lettered,
            self.faults,
            self.redeliveries,
            self.http_retries,
            self.in_wait,
            self.secs
        )
    }
}

/// Prints the table and appends the rows to `$CARGO_TARGET_TMPDIR/fault_suite-<seed>.txt`, so
/// a whole run leaves one report however the test threads interleaved.
pub fn print_table(rows: &[Row]) {
    print_table_to("fault_suite", rows);
}

/// As [`print_table`], appending to `$CARGO_TARGET_TMPDIR/<stem>-<seed>.txt` (one report per
/// suite: the embedded one, the AWS one).
pub fn print_table_to(stem: &str, rows: &[Row]) {
    let mut out = String::new();
    out.push_str(&header());
    out.push('\n');
    out.push_str(&"-".repeat(header().len()));
    out.push('\n');
    for r in rows {
        out.push_str(&r.line());
        out.push('\n');
        for p in r.problems.iter().take(20) {
            out.push_str(&format!("    ! {p}\n"));
        }
    }
    println!("\n{out}");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{stem}-{}.txt", suite_seed()));
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        for r in rows {
            let _ = writeln!(f, "{}", r.line());
        }
    }
}

/// Fails the test on any duplicate or loss (and on a poison document that got posted), and on
/// any request sent inside a wait a simulator announced.
pub fn assert_clean(rows: &[Row]) {
    for r in rows {
        assert!(
            r.duplicates == 0 && r.lost == 0 && r.in_wait == 0 && r.problems.is_empty(),
            "scenario {} (seed {}, suite seed {}): {} duplicate(s), {} lost, {} request(s) inside \
             an announced wait:\n{}",
            r.scenario,
            r.seed,
            suite_seed(),
            r.duplicates,
            r.lost,
            r.in_wait,
            r.problems.join("\n")
        );
    }
}

/// How far a request may arrive inside an announced wait and still not count: one already on
/// its way when the answer left, and clock granularity.
pub const WAIT_TOLERANCE: Duration = Duration::from_millis(50);

/// Requests each simulator saw inside a wait it had announced to the sending client (see
/// [`mlc_sandbox::sent_inside_announced_waits`]; clients are told apart by [`crate::rig::own_addresses`]),
/// one problem line each.
pub fn inside_announced_waits(h: &Harness) -> (usize, Vec<String>) {
    let mut problems = Vec::new();
    for (system, log) in [("Coupa", h.coupa.requests()), ("BC", h.bc.requests())] {
        for w in mlc_sandbox::sent_inside_announced_waits(&log, WAIT_TOLERANCE) {
            let a = w.announced;
            let ms = (w.sent.at - a.answered_at()).num_milliseconds();
            problems.push(format!(
                "INSIDE A WAIT: {system} answered {} {} with {} and Retry-After: {} s; the same \
                 client ({}) sent {} {} {ms} ms later",
                a.method,
                a.path,
                a.status,
                a.retry_after.unwrap_or_default(),
                a.host.as_deref().unwrap_or("?"),
                w.sent.method,
                w.sent.path,
            ));
        }
    }
    (problems.len(), problems)
}

/// Counts, from the simulators and the store, what happened to every document.
/// `p` is a pipeline of the scenario's runtime (its store and queues are read): the embedded
/// one on the scenario's database file, or the AWS one on its queues and tables.
pub async fn verdict<Q: Queue, S: Store, C: Clock>(
    h: &Harness,
    p: &Pipeline<Q, S, C>,
    docs: &Docs,
    scenario: &str,
    seed: u64,
) -> Row {
    let bc = h.bc.purchase_invoices();
    let (in_wait, wait_problems) = inside_announced_waits(h);
    let mut by_key: BTreeMap<(String, String), Vec<&BcInvoiceView>> = BTreeMap::new();
    for inv in &bc {
        by_key
            .entry((
                inv.vendor_number.clone(),
                inv.vendor_invoice_number.to_uppercase(),
            ))
            .or_default()
            .push(inv);
    }
    let mut row = Row {
        scenario: scenario.to_string(),
        seed,
        docs_in: docs.all.len(),
        in_wait,
        problems: wait_problems,
        ..Row::default()
    };
    let mut expected_keys = HashSet::new();
    for d in docs.good() {
        let key = (d.vendor.unwrap().to_string(), d.number.to_uppercase());
        expected_keys.insert(key.clone());
        let found = by_key.get(&key).cloned().unwrap_or_default();
        let posted: Vec<_> = found.iter().filter(|i| i.status != "Draft").collect();
        if found.len() > 1 {
            row.duplicates += found.len() - 1;
            row.problems.push(format!(
                "DUPLICATE: Coupa invoice {} ({}) is {} BC invoices: {:?}",
                d.coupa_id,
                d.number,
                found.len(),
                found
                    .iter()
                    .map(|i| (&i.number, &i.status, i.post_count))
                    .collect::<Vec<_>>()
            ));
        }
        for i in &found {
            if i.post_count > 1 {
                row.duplicates += (i.post_count - 1) as usize;
                row.problems.push(format!(
                    "DUPLICATE: BC invoice {} of Coupa invoice {} was posted {} times",
                    i.number, d.coupa_id, i.post_count
                ));
            }
        }
        if posted.is_empty() {
            row.lost += 1;
            row.problems.push(format!(
                "LOST: Coupa invoice {} ({}) has no posted BC invoice (BC has {:?})",
                d.coupa_id,
                d.number,
                found.iter().map(|i| &i.status).collect::<Vec<_>>()
            ));
            continue;
        }
        let one = posted[0];
        if found.len() == 1 && one.status == "Open" && one.post_count == 1 {
            if one.lines.len() != d.lines {
                row.problems.push(format!(
                    "Coupa invoice {} ({}) has {} lines, its BC invoice {}",
                    d.coupa_id,
                    d.number,
                    d.lines,
                    one.lines.len()
                ));
            } else {
                row.posted_once += 1;
            }
        }
    }
    for (key, found) in &by_key {
        if expected_keys.contains(key) {
            continue;
        }
        let poison = docs
            .poison()
            .find(|d| d.number.eq_ignore_ascii_case(&key.1));
        let posted = found.iter().filter(|i| i.status != "Draft").count();
        match poison {
            // BC refused its draft: the draft may stay, but it is never posted.
            Some(d) if posted == 0 && d.poison == Some(Poison::RefusedByBc) => {}
            Some(d) => {
                row.duplicates += posted;
                row.problems.push(format!(
                    "POISON POSTED: Coupa invoice {} ({}, {:?}) is in BC: {:?}",
                    d.coupa_id,
                    d.number,
                    d.poison,
                    found.iter().map(|i| &i.status).collect::<Vec<_>>()
                ));
            }
            None => {
                row.duplicates += found.len();
                row.problems.push(format!(
                    "UNKNOWN BC invoice(s) {key:?}: {:?}",
                    found.iter().map(|i| &i.number).collect::<Vec<_>>()
                ));
            }
        }
    }

    // Poison: parked, or dead-lettered and audited as such; never posted (checked above).
    let store = &p.env.store;
    let queue = &p.env.queue;
    let parked = store.parked().await.unwrap();
    let parked_ids: HashSet<String> = parked.iter().map(|p| p.source_id.clone()).collect();
    let mut dead = Vec::new();
    for q in [QueueName::Ingest, QueueName::Post] {
        dead.extend(queue.dead_letters(q).await.unwrap());
    }
    let dead_audit = store
        .query_audit(&AuditFilter {
            status: Some(AuditStatus::DeadLettered),
            ..Default::default()
        })
        .await
        .unwrap();
    let dead_audited: HashSet<String> = dead_audit.iter().map(|a| a.source_id.clone()).collect();
    row.parked = parked.len();
    row.dead_lettered = dead.len();
    for d in docs.poison() {
        let id = d.coupa_id.to_string();
        if !parked_ids.contains(&id) && !dead_audited.contains(&id) {
            row.lost += 1;
            row.problems.push(format!(
                "LOST: poison Coupa invoice {} ({}, {:?}) is neither parked nor dead-lettered",
                d.coupa_id, d.number, d.poison
            ));
        }
    }
    for d in docs.good() {
        if parked_ids.contains(&d.coupa_id.to_string()) {
            row.problems.push(format!(
                "Coupa invoice {} ({}) is posted but still parked",
                d.coupa_id, d.number
            ));
        }
    }
    for m in &dead {
        if let Some(id) = source_id_of(&m.body)
            && !dead_audited.contains(&id)
        {
            row.problems.push(format!(
                "dead letter of document {id} is not in the audit trail as dead_lettered"
            ));
        }
    }
    row
}

pub fn source_id_of(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v["source_id"]
        .as_str()
        .or_else(|| v["invoice"]["source_id"].as_str())
        .map(str::to_string)
}

pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}
