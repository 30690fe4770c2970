//! `mlc demo`: every registered scenario's simulators in-process with seeded data
//! (`mlc_sandbox::scenarios::all`), one configuration for all of them, the real pipeline
//! (SQLite file, encrypted secrets file, HTTP to the simulators) run for the cycles the
//! scenarios need, and each scenario's report of what moved.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use indicatif::ProgressBar;
use mlc_sandbox::scenarios::{self, Cycle, Listen, Section};
use mlc_shared::adapters::embedded::{SecretFile, SecretKey};
use mlc_shared::config::Config;
use mlc_shared::ports::{Audit, AuditFilter, AuditStatus, Parking};
use mlc_shared::runtime::DrainStats;
use mlc_shared::steps::poll::PollReport;

use crate::embedded::{self, EmbeddedPipeline};
use crate::output::{for_terminal, for_terminal_lines, spinner, table};

#[derive(clap::Args)]
pub struct Args {
    /// Approved invoices each scenario seeds in its source system's simulator.
    #[arg(long, default_value_t = 30)]
    invoices: usize,
    /// Keep the demo's database, secrets and config in this directory (default: a temp dir).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

/// One poll of every feed and a drain until idle, with one worker: documents are then taken
/// in the order the poll queued them, so the output is the same on every run. `mlc run` uses
/// `runtime.workers`.
async fn cycle(
    pipeline: &Arc<EmbeddedPipeline>,
    pb: &ProgressBar,
    what: &str,
) -> anyhow::Result<(Vec<(String, PollReport)>, DrainStats)> {
    pb.set_message(format!("{what}: polling"));
    let reports = pipeline.poll_all().await.context("polling")?;
    let pb2 = pb.clone();
    let what = what.to_string();
    let stats = pipeline
        .drain(
            1,
            Arc::new(move |s| {
                pb2.set_message(format!("{what}: {} posted, {} parked", s.posted, s.parked))
            }),
        )
        .await?;
    Ok((reports, stats))
}

fn print(sections: &[Section]) {
    for s in sections {
        match s {
            Section::Line(text) => println!("{}", for_terminal_lines(text)),
            Section::Table {
                title,
                headers,
                rows,
            } => {
                let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
                println!("{}", for_terminal(title));
                println!("{}\n", table(&headers, rows));
            }
        }
    }
}

const ORDINALS: &[&str] = &["first", "second", "third", "fourth", "fifth"];
const NUMBERS: &[&str] = &["No", "One", "Two", "Three", "Four", "Five"];

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let pb = spinner("starting the simulators");
    let mut sandboxes = Vec::new();
    for scenario in scenarios::all() {
        let mut sandbox = scenario
            .start(&Listen::new())
            .await
            .with_context(|| format!("starting the simulators of {}", scenario.name()))?;
        sandbox.seed_demo(a.invoices);
        sandboxes.push(sandbox);
    }

    let temp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let config_path = dir.join("mlc.toml");
    let fragments: Vec<_> = sandboxes.iter().map(|s| s.demo_config()).collect();
    std::fs::write(
        &config_path,
        scenarios::merged_config("mlc.sqlite", "mlc.secrets", &fragments),
    )?;
    let cfg = Config::load(&config_path)?;

    // The demo's own key; a deployment takes it from MLC_SECRET_KEY or MLC_SECRET_KEY_FILE.
    // A kept directory keeps its key beside the secrets (0600), or nobody could open them.
    let key = match &a.dir {
        None => SecretKey::generate(),
        Some(_) => demo_key(&dir.join(KEY_FILE), &cfg.runtime.secrets_file)?,
    };
    let secrets = SecretFile::open(&cfg.runtime.secrets_file, key)?;
    for sandbox in &sandboxes {
        sandbox.store_secrets(&|name, value| secrets.set(name, value))?;
    }

    let pipeline = embedded::pipeline(&cfg, &secrets).await?;
    let store = &pipeline.env.store;
    let cycles = sandboxes.iter().map(|s| s.demo_cycles()).max().unwrap_or(0);
    let mut total = DrainStats::default();
    for n in 1..=cycles {
        let what = match ORDINALS.get(n - 1) {
            Some(o) => format!("{o} cycle"),
            None => format!("cycle {n}"),
        };
        let (polls, stats) = cycle(&pipeline, &pb, &what).await?;
        total.failed_attempts += stats.failed_attempts;
        total.dead_lettered += stats.dead_lettered;
        let posted = store
            .query_audit(&AuditFilter {
                status: Some(AuditStatus::Posted),
                ..Default::default()
            })
            .await?;
        let parked = store.parked().await?;
        let done = Cycle {
            number: n,
            polls: &polls,
            stats: &stats,
            posted: &posted,
            parked: &parked,
        };
        let mut sections = Vec::new();
        for sandbox in &mut sandboxes {
            sections.extend(sandbox.after_cycle(&done)?);
        }
        if n == cycles {
            pb.finish_and_clear();
            print(&sections);
        } else {
            pb.suspend(|| print(&sections));
        }
    }
    if cycles == 0 {
        pb.finish_and_clear();
    }

    let in_all = match NUMBERS.get(cycles) {
        Some(n) => n.to_string(),
        None => cycles.to_string(),
    };
    println!(
        "{in_all} poll cycle{} in all. Retries: {}. Dead-lettered: {}.",
        if cycles == 1 { "" } else { "s" },
        total.failed_attempts,
        total.dead_lettered
    );

    if a.dir.is_some() {
        let key = dir.join(KEY_FILE);
        println!(
            "Database, secrets and config kept in {}; the secrets' key is {} (owner-only). \
             Try: mlc audit --config {}, or MLC_SECRET_KEY_FILE={} mlc check --config {}.",
            dir.display(),
            key.display(),
            config_path.display(),
            key.display(),
            config_path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The key file `mlc demo --dir` keeps beside its secrets file.
const KEY_FILE: &str = "mlc.key";

/// The kept directory's key: read when it is there, else made (0600). Secrets without their
/// key are not replaced silently (the directory may hold more than a demo).
fn demo_key(key: &std::path::Path, secrets: &std::path::Path) -> anyhow::Result<SecretKey> {
    if key.exists() {
        return Ok(SecretKey::from_file(key)?);
    }
    if secrets.exists() {
        anyhow::bail!(
            "{} exists but its key {} does not: nothing can open it. Remove it (mlc demo \
             stores its secrets again) or give another --dir",
            secrets.display(),
            key.display()
        );
    }
    Ok(SecretKey::generate_to_file(key)?)
}
