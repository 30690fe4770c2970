//! `mlc backfill`: an opt-in first load of many documents through the target's bulk API (F&O:
//! the Data Management package API), exactly once with the normal pipeline: each document is
//! claimed in the same ledger before it goes into a package, what is already written is never
//! sent, and a run after a crash waits for the package it had sent and finds what landed
//! before sending anything again. A later poll finds every landed document done and posts
//! nothing again.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, Utc};
use mlc_shared::config::Config;
use mlc_shared::steps::bulk::{BackfillOptions, BackfillReport, BulkEvent, BulkOptions};

use crate::embedded::{self, EmbeddedPipeline};
use crate::output::for_terminal;

#[derive(clap::Args)]
pub struct Args {
    /// The deployment's configuration.
    #[arg(long, short)]
    config: PathBuf,
    /// The integration to load (it must have a bulk path: coupa → finance_operations).
    #[arg(long)]
    integration: String,
    /// Source documents changed from this date or instant on (2026-01-01 or
    /// 2026-01-01T00:00:00Z); default: the integration's start_from.
    #[arg(long)]
    since: Option<String>,
    /// Documents per package (one legal entity each).
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Read the source and the target, and say what would be sent; claim and send nothing.
    #[arg(long)]
    dry_run: bool,
}

fn parse_since(s: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .with_context(|| format!("--since {s}: not a date (2026-01-01) or an instant"))?;
    Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let cfg = Config::load(&args.config)?;
    let secrets = embedded::open_secrets(&cfg)?;
    let pipeline = embedded::pipeline(&cfg, &secrets).await?;
    let opts = BackfillOptions {
        since: args.since.as_deref().map(parse_since).transpose()?,
        bulk: BulkOptions {
            batch: args.batch,
            dry_run: args.dry_run,
            ..BulkOptions::default()
        },
    };
    let report = backfill(&pipeline, &args.integration, &opts, &print_event).await?;
    print_summary(&report, args.dry_run);
    let t = report.total();
    Ok(if t.parked + t.left + report.unmapped > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs the backfill of `integration` (the command's work, for tests too).
pub async fn backfill(
    pipeline: &EmbeddedPipeline,
    integration: &str,
    opts: &BackfillOptions,
    progress: &(dyn Fn(BulkEvent) + Send + Sync),
) -> anyhow::Result<BackfillReport> {
    let Some(flow) = pipeline.flow(integration) else {
        bail!(
            "no integration '{integration}' (configured: {})",
            pipeline.integration_names().join(", ")
        );
    };
    let owner = embedded::owner();
    Ok(flow.backfill(&pipeline.env, &owner, opts, progress).await?)
}

fn print_event(e: BulkEvent) {
    match e {
        BulkEvent::Prepared {
            listed,
            ready,
            unmapped,
        } => println!(
            "source: {listed} listed, {ready} ready to write, {unmapped} parked (unmapped)"
        ),
        BulkEvent::Target { target, documents } => {
            println!("{}: {documents} documents", for_terminal(&target))
        }
        BulkEvent::WaitingForEarlier { batch, state } => {
            println!("  waiting for the earlier package {batch}: {state}")
        }
        BulkEvent::Sent { batch, documents } => {
            println!("  package {batch} sent: {documents} documents")
        }
        BulkEvent::State { batch, state } => println!("  package {batch}: {state}"),
        BulkEvent::Reconciled {
            batch,
            state,
            landed,
            parked,
            left,
        } => println!(
            "  package {batch} {state}: {landed} landed, {parked} parked, {left} left for later"
        ),
    }
}

fn print_summary(r: &BackfillReport, dry_run: bool) {
    let t = r.total();
    println!();
    if dry_run {
        println!(
            "dry run: {} listed, {} not ready, {} unmapped; {} already done, {} already in the target, {} would be sent",
            r.listed, r.not_ready, r.unmapped, t.already_done, t.found, t.would_send
        );
        return;
    }
    println!(
        "backfill: {} listed, {} not ready, {} left to the poll (credit notes), {} unmapped (parked); {} already done, {} busy, \
         {} found already in the target; {} packages: {} landed, {} parked, {} left for later",
        r.listed,
        r.not_ready,
        r.left_to_poll,
        r.unmapped,
        t.already_done,
        t.busy,
        t.found,
        t.batches,
        t.landed,
        t.parked,
        t.left
    );
    if t.parked + r.unmapped > 0 {
        println!("parked documents: mlc audit --status parked; after a fix: mlc replay --parked");
    }
}
