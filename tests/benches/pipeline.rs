//! Throughput benchmark of the embedded runtime (figures, never assertions):
//!
//! 1. N approved invoices (3 lines each; N = BENCH_INVOICES, default 10,000) through
//!    poll → map → post against the simulators with no rate limit: invoices/second, CPU ms per
//!    invoice, peak RSS, BC requests per invoice.
//! 2. BENCH_THROTTLED_SECS (default 120) against a BC simulator limited to 600 requests/minute,
//!    the client paced to the same budget: achieved requests/minute as a fraction of the limit,
//!    and the 429s received.
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
) -> Arc<mlc_cli::embedded::EmbeddedPipeline> {
    let text = mlc_cli::cmd::sandbox::config_toml(coupa, bc, "bench.sqlite", "bench.secrets")
        .replace("workers = 4", "workers = 8")
        .replace(
            "api_version = \"R40\"",
            "api_version = \"R40\"\nrequests_per_second = 100000",
        );
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
        let p = setup(&coupa, &bc, dir.path(), unlimited).await;
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
            "BC requests/invoice:   {:.2}",
            bc_requests as f64 / n as f64
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
        // More work than fits in the window, so the client runs against the limit throughout.
        demo::bulk_invoices(&coupa, (throttled_secs as usize * 10).max(50), 3);
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
        let per_min = bc_requests as f64 / secs * 60.0;
        println!(
            "== {throttled_secs} s against BC limited to 600 requests/minute (client budget 600/60 s)"
        );
        println!("finished early:        {}", run.is_ok());
        println!("BC requests:           {bc_requests} in {secs:.1} s");
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
        println!(
            "invoices posted:       {}",
            bc.purchase_invoices()
                .iter()
                .filter(|i| i.status != "Draft")
                .count()
        );
    }
}
