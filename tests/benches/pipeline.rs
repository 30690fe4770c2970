//! Throughput benchmark of the embedded runtime (figures, never assertions):
//!
//! 1. N approved invoices (3 lines each; N = BENCH_INVOICES, default 10,000) through
//!    poll → map → post against the simulators with no rate limit: invoices/second, CPU ms per
//!    invoice, peak RSS, BC requests per invoice.
//!    BC round trips and budget units (a `$batch` counts each operation) per invoice, Coupa
//!    requests per invoice (issue #16).
//! 2. BENCH_THROTTLED_SECS (default 120) against a BC simulator limited to 600 requests/minute,
//!    fed by TWO integrations (two Coupa instances) that name the same `[systems.business_central]`
//!    and so share one client, one token cache and one pacer (issue #16 item 2): achieved
//!    budget use as a fraction of the limit, and the 429s received (the aim: near 100 %, zero).
//!
//! `cargo bench -p mlc-e2e --bench pipeline`. The simulators run in this process, so CPU and
//! RSS include them: the connector alone costs less.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use mlc_sandbox::bc::{BcConfig, BcSim, RateLimit};
use mlc_sandbox::coupa::{CoupaConfig, CoupaSim};
use mlc_sandbox::demo;
use mlc_shared::adapters::embedded::{SecretFile, SecretKey};
use mlc_shared::config::Config;
use mlc_shared::systems::http::RateBudget;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (user + system CPU seconds, peak RSS in MiB) of this process, from /proc.
fn cpu_and_peak_rss() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let cpu = (ticks(11) + ticks(12)) / 100.0; // utime, stime (after the ')' field 3 is index 0)
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, hwm / 1024.0)
}

async fn setup(
    coupa: &CoupaSim,
    bc: &BcSim,
    dir: &std::path::Path,
    budget: RateBudget,
    second_coupa: Option<&CoupaSim>,
) -> Arc<mlc_cli::embedded::EmbeddedPipeline> {
    let mut text = mlc_cli::cmd::sandbox::config_toml(coupa, bc, "bench.sqlite", "bench.secrets")
        .replace("workers = 4", "workers = 8")
        .replace(
            "api_version = \"R40\"",
            "api_version = \"R40\"\nrequests_per_second = 100000",
        );
    if let Some(c2) = second_coupa {
        // A second integration into the same BC system instance: one client, one pacer.
        text.push_str(&format!(
            r#"
[systems.coupa2]
type = "coupa"
base_url = "{url}"
client_id = "{client}"
client_secret = "coupa-client-secret"
api_version = "R40"
requests_per_second = 100000

[[integrations]]
name = "coupa2-bc"
kind = "coupa_to_business_central"
source = "coupa2"
target = "business_central"
start_from = "2000-01-01T00:00:00Z"

[integrations.mapping]
gl_account = {{ segment = 1 }}
dimensions = [{{ segment = 2, dimension = "DEPARTMENT" }}, {{ segment = 3, dimension = "PROJECT" }}]

[integrations.mapping.suppliers]
"SUP-001" = "V10000"
"SUP-002" = "V20000"
"SUP-003" = "V30000"
"SUP-004" = "V40000"
"#,
            url = c2.base_url(),
            client = c2.config().client_id,
        ));
    }
    let path = dir.join("mlc.toml");
    std::fs::write(&path, text).unwrap();
    let mut cfg = Config::load(&path).unwrap();
    cfg.systems.business_central_mut().unwrap().rate = Some(budget);
    let secrets = SecretFile::open(&cfg.runtime.secrets_file, SecretKey::generate()).unwrap();
    mlc_cli::cmd::sandbox::store_secrets(&secrets, coupa, bc).unwrap();
    mlc_cli::embedded::pipeline(&cfg, &secrets).await.unwrap()
}

#[tokio::main]
async fn main() {
    let n = env_num("BENCH_INVOICES", 10_000) as usize;
    let throttled_secs = env_num("BENCH_THROTTLED_SECS", 120);

    // 1. Unthrottled throughput.
    {
        let coupa = CoupaSim::start(CoupaConfig {
            rate_per_sec: None,
            ..CoupaConfig::default()
        })
        .await
        .unwrap();
        let bc = BcSim::start(BcConfig {
            rate_limit: None,
            ..BcConfig::default()
        })
        .await
        .unwrap();
        demo::seed_bc(&bc);
        demo::bulk_invoices(&coupa, n, 3);
        let dir = tempfile::tempdir().unwrap();
        let unlimited = RateBudget {
            requests: 1_000_000,
            window_secs: 1,
            concurrent: Some(8),
        };
        let p = setup(&coupa, &bc, dir.path(), unlimited, None).await;
        let (cpu0, _) = cpu_and_peak_rss();
        let start = Instant::now();
        p.poll_all().await.unwrap();
        let stats = p.drain(8, Arc::new(|_| {})).await.unwrap();
        let secs = start.elapsed().as_secs_f64();
        let (cpu1, rss) = cpu_and_peak_rss();
        let bc_requests = p
            .systems
            .get("business_central")
            .unwrap()
            .stats()
            .requests
            .load(Relaxed);
        let bc_budget = p
            .systems
            .get("business_central")
            .unwrap()
            .stats()
            .budget
            .load(Relaxed);
        let coupa_requests = p
            .systems
            .get("coupa")
            .unwrap()
            .stats()
            .requests
            .load(Relaxed);
        println!("== {n} invoices x 3 lines, no rate limit, embedded (simulators in-process)");
        println!(
            "posted:                {} (parked {}, failed attempts {})",
            stats.posted, stats.parked, stats.failed_attempts
        );
        println!("wall time:             {secs:.1} s");
        println!("invoices/second:       {:.1}", stats.posted as f64 / secs);
        println!(
            "CPU ms per invoice:    {:.2} (process total, simulators included)",
            (cpu1 - cpu0) * 1000.0 / n as f64
        );
        println!("peak RSS:              {rss:.1} MiB (process, simulators included)");
        println!(
            "BC requests/invoice:   {:.2} round trips, {:.2} budget units (simulator counted {:.2})",
            bc_requests as f64 / n as f64,
            bc_budget as f64 / n as f64,
            bc.budget_spent() as f64 / n as f64
        );
        println!(
            "Coupa requests/invoice: {:.2}",
            coupa_requests as f64 / n as f64
        );
        println!("BC invoices in sim:    {}", bc.purchase_invoices().len());
    }

    // 2. Two minutes against BC at 600 requests/minute.
    if throttled_secs > 0 {
        let coupa = CoupaSim::start(CoupaConfig {
            rate_per_sec: None,
            ..CoupaConfig::default()
        })
        .await
        .unwrap();
        let bc = BcSim::start(BcConfig {
            rate_limit: Some(RateLimit {
                requests: 600,
                window: Duration::from_secs(60),
            }),
            ..BcConfig::default()
        })
        .await
        .unwrap();
        demo::seed_bc(&bc);
        let coupa2 = CoupaSim::start(CoupaConfig {
            rate_per_sec: None,
            ..CoupaConfig::default()
        })
        .await
        .unwrap();
        // About as much work as the budget allows in the time (3 budget units an invoice, 10
        // units a second), half from each integration, so the client runs against the limit
        // throughout and both integrations' documents get through (the queue is FIFO).
        let each = (throttled_secs as usize * 10 / 6).max(25);
        demo::bulk_invoices(&coupa, each, 3);
        demo::bulk_invoices(&coupa2, each, 3);
        let dir = tempfile::tempdir().unwrap();
        let p = setup(
            &coupa,
            &bc,
            dir.path(),
            RateBudget {
                requests: 600,
                window_secs: 60,
                concurrent: Some(5),
            },
            Some(&coupa2),
        )
        .await;
        p.poll_all().await.unwrap();
        let start = Instant::now();
        let run = tokio::time::timeout(
            Duration::from_secs(throttled_secs),
            p.drain(8, Arc::new(|_| {})),
        )
        .await;
        let secs = start.elapsed().as_secs_f64();
        let bc_requests = p
            .systems
            .get("business_central")
            .unwrap()
            .stats()
            .requests
            .load(Relaxed);
        // The limit counts budget units (each operation of a $batch), not round trips.
        let spent = bc.budget_spent();
        let per_min = spent as f64 / secs * 60.0;
        println!(
            "== {throttled_secs} s against BC limited to 600 requests/minute (client budget 600/60 s), two integrations sharing the BC system"
        );
        println!("finished early:        {}", run.is_ok());
        println!("BC round trips:        {bc_requests} in {secs:.1} s");
        println!("BC budget units:       {spent} (as the simulator counts them)");
        println!(
            "achieved:              {per_min:.0} requests/minute = {:.1}% of the limit",
            per_min / 600.0 * 100.0
        );
        println!(
            "429s received:         {} (simulator counted {})",
            p.systems
                .get("business_central")
                .unwrap()
                .stats()
                .throttled
                .load(Relaxed),
            bc.throttled_count()
        );
        let posted: Vec<_> = bc
            .purchase_invoices()
            .into_iter()
            .filter(|i| i.status != "Draft")
            .collect();
        println!("invoices posted:       {}", posted.len());
        // Each integration's invoices carry their own bulk batch in the number (BULK-{b}-…).
        let mut by_batch = std::collections::BTreeMap::<String, usize>::new();
        for i in &posted {
            let batch = i.vendor_invoice_number.split('-').nth(1).unwrap_or("?");
            *by_batch.entry(batch.to_string()).or_default() += 1;
        }
        println!("posted per integration: {by_batch:?} (one bulk batch each)");
    }
}
