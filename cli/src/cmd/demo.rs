//! `mlc demo`: both simulators in-process with seeded data, the real pipeline (SQLite file,
//! encrypted secrets file, HTTP to the simulators), and a table of what moved.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use mlc_sandbox::bc::{BcConfig, BcSim};
use mlc_sandbox::coupa::{CoupaConfig, CoupaSim};
use mlc_sandbox::demo;
use mlc_shared::adapters::embedded::{SecretFile, SecretKey};
use mlc_shared::config::Config;
use mlc_shared::ports::{Audit, AuditFilter, AuditStatus, Parking};

use super::sandbox::config_toml;
use crate::embedded;
use crate::output::{spinner, table};

#[derive(clap::Args)]
pub struct Args {
    /// Approved invoices to seed in the Coupa simulator.
    #[arg(long, default_value_t = 30)]
    invoices: usize,
    /// Keep the demo's database, secrets and config in this directory (default: a temp dir).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let pb = spinner("starting the simulators");
    let coupa = CoupaSim::start(CoupaConfig::default()).await?;
    let bc = BcSim::start(BcConfig::default()).await?;
    demo::seed_bc(&bc);
    let seed = demo::seed_coupa(&coupa, a.invoices, 7);

    let temp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let config_path = dir.join("mlc.toml");
    std::fs::write(
        &config_path,
        config_toml(&coupa, &bc, "mlc.sqlite", "mlc.secrets"),
    )?;
    let cfg = Config::load(&config_path)?;

    // The demo's own key; a deployment takes it from MLC_SECRET_KEY or MLC_SECRET_KEY_FILE.
    let secrets = SecretFile::open(&cfg.runtime.secrets_file, SecretKey::generate())?;
    super::sandbox::store_secrets(&secrets, &coupa, &bc)?;

    let pipeline = embedded::pipeline(&cfg, &secrets).await?;
    pb.set_message("polling Coupa");
    let reports = pipeline.poll_all().await.context("polling Coupa")?;
    let polled: u32 = reports.iter().map(|(_, r)| r.enqueued).sum();
    let pb2 = pb.clone();
    let stats = pipeline
        .drain(
            4,
            Arc::new(move |s| {
                pb2.set_message(format!("posting: {} posted, {} parked", s.posted, s.parked))
            }),
        )
        .await?;
    pb.finish_and_clear();

    let store = &pipeline.env.store;
    let posted = store
        .query_audit(&AuditFilter {
            status: Some(AuditStatus::Posted),
            ..Default::default()
        })
        .await?;
    let rows: Vec<Vec<String>> = posted
        .iter()
        .map(|i| {
            vec![
                i.source_document_number.clone().unwrap_or_default(),
                i.vendor.clone().unwrap_or_default(),
                i.amount.map(|a| a.to_string()).unwrap_or_default(),
                i.currency.clone().unwrap_or_default(),
                "→".into(),
                i.target_document_number.clone().unwrap_or_default(),
                "posted".into(),
            ]
        })
        .collect();
    println!(
        "Coupa: {} approved invoices seeded ({} not approved, which the poll does not read); {polled} queued by the poll.\n",
        seed.approved.len(),
        seed.not_approved.len()
    );
    println!("Moved to Business Central ({}):", rows.len());
    println!(
        "{}\n",
        table(
            &[
                "Coupa invoice",
                "vendor",
                "amount",
                "currency",
                "",
                "BC document",
                "status"
            ],
            &rows
        )
    );

    let parked = store.parked().await?;
    println!("Parked ({}), waiting for someone to act:", parked.len());
    let prows: Vec<Vec<String>> = parked
        .iter()
        .map(|p| {
            vec![
                p.source_document_number.clone().unwrap_or_default(),
                p.source_id.clone(),
                p.reason.clone(),
            ]
        })
        .collect();
    println!(
        "{}\n",
        table(&["Coupa invoice", "Coupa id", "reason"], &prows)
    );

    let in_bc = bc.purchase_invoices();
    let posted_in_bc = in_bc.iter().filter(|i| i.status != "Draft").count();
    println!(
        "Business Central now holds {} purchase invoice(s), {} posted, {} draft(s). Retries: {}. Dead-lettered: {}.",
        in_bc.len(),
        posted_in_bc,
        in_bc.len() - posted_in_bc,
        stats.failed_attempts,
        stats.dead_lettered
    );
    if a.dir.is_some() {
        println!(
            "Database, secrets and config kept in {} (try: mlc audit --config {}).",
            dir.display(),
            config_path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
