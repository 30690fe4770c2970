//! Every registered integration end to end (figures, never assertions): each scenario of
//! `mlc demo` on its own simulators, seeded with `MLC_BENCH_DOCS` documents (default 200) as
//! `mlc sandbox` seeds them, moved by the embedded runtime (poll, then drain with four
//! workers, repeated while documents wait for a dependency) until the target holds every one.
//! Prints per integration: documents, seconds, documents per second, and the requests each
//! system served per document (token requests included), plus B1 logins.
//!
//! The simulators keep the limits `mlc sandbox` gives them (Coupa's 25 requests/s, BC's
//! budget, ...), and the connector paces to them as configured: the rate is what a user of the
//! sandbox sees, not an unthrottled ceiling.
//!
//! `cargo bench -p mlc-e2e --bench every`

use std::sync::Arc;
use std::time::Instant;

use mlc_sandbox::scenarios::{self, Expect, Listen};
use mlc_shared::adapters::embedded::{SecretFile, SecretKey};
use mlc_shared::config::Config;

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let docs: usize = std::env::var("MLC_BENCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    println!(
        "{:<12} {:>6} {:>8} {:>8} {:>9}  requests per document",
        "integration", "docs", "landed", "seconds", "docs/s"
    );
    for scenario in scenarios::all() {
        let mut sandbox = scenario.start(&Listen::new()).await.unwrap();
        sandbox.seed(docs);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mlc.toml");
        std::fs::write(
            &path,
            scenarios::merged_config("mlc.sqlite", "mlc.secrets", &[sandbox.config()]),
        )
        .unwrap();
        let cfg = Config::load(&path).unwrap();
        let secrets = SecretFile::open(&cfg.runtime.secrets_file, SecretKey::generate()).unwrap();
        sandbox
            .store_secrets(&|name, value| secrets.set(name, value))
            .unwrap();
        let before = sandbox.requests_served();
        let started = Instant::now();
        let pipeline = mlc_cli::embedded::pipeline(&cfg, &secrets).await.unwrap();
        let must = |s: &dyn scenarios::Sandbox| {
            s.landings()
                .iter()
                .filter(|l| l.expect == Expect::Once)
                .map(|l| (l.copies == 1 && l.finished) as usize)
                .sum::<usize>()
        };
        let expected = sandbox
            .landings()
            .iter()
            .filter(|l| l.expect == Expect::Once)
            .count();
        for _ in 0..5 {
            pipeline.poll_all().await.unwrap();
            pipeline.drain(4, Arc::new(|_| {})).await.unwrap();
            if must(sandbox.as_ref()) == expected {
                break;
            }
        }
        let secs = started.elapsed().as_secs_f64();
        let landed = must(sandbox.as_ref());
        let per_doc: Vec<String> = sandbox
            .requests_served()
            .iter()
            .map(|(system, n)| {
                let was = before
                    .iter()
                    .find(|(s, _)| s == system)
                    .map_or(0, |(_, b)| *b);
                if system.ends_with("logins") {
                    // Sessions are licence-bound: the total, not a share per document.
                    format!("{system} {} in all", n - was)
                } else {
                    format!("{system} {:.2}", (n - was) as f64 / landed.max(1) as f64)
                }
            })
            .collect();
        println!(
            "{:<12} {:>6} {:>8} {:>8.1} {:>9.1}  {}",
            scenario.name(),
            expected,
            landed,
            secs,
            landed as f64 / secs,
            per_doc.join(", ")
        );
    }
}
