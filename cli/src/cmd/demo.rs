//! `mlc demo`: both simulators in-process with seeded data, the real pipeline (SQLite file,
//! encrypted secrets file, HTTP to the simulators), and tables of what moved: approved invoices
//! first, then the `[integrations.sync]` flows (purchase orders, an invoice matched to its
//! order, a supplier created as a vendor, a line parked for a dimension value BC lacks, a
//! payment returned to Coupa).

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use indicatif::ProgressBar;
use mlc_sandbox::bc::{BcConfig, BcSim};
use mlc_sandbox::coupa::{CoupaConfig, CoupaSim};
use mlc_sandbox::demo;
use mlc_shared::adapters::embedded::{SecretFile, SecretKey};
use mlc_shared::config::Config;
use mlc_shared::ports::{Audit, AuditFilter, AuditItem, AuditStatus, Parking};
use mlc_shared::runtime::DrainStats;
use mlc_shared::steps::poll::PollReport;

use super::sandbox::config_toml;
use crate::embedded::{self, EmbeddedPipeline};
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

/// What the demo turns on beside approved invoices (every sync write is opt-in).
const SYNC: &str = r#"[integrations.sync]
purchase_orders = true
suppliers = "create"
payments = true

"#;

/// The sandbox configuration with [`SYNC`] inserted before `[integrations.mapping]`.
fn demo_config(coupa: &CoupaSim, bc: &BcSim) -> anyhow::Result<String> {
    let base = config_toml(coupa, bc, "mlc.sqlite", "mlc.secrets");
    let at = base
        .find("[integrations.mapping]")
        .context("the sandbox configuration has no [integrations.mapping]")?;
    Ok(format!("{}{SYNC}{}", &base[..at], &base[at..]))
}

/// One poll of every feed and a drain until idle, with one worker: documents are then taken
/// in the order the poll queued them (invoices before suppliers and orders), so the first
/// cycle always parks the invoices that wait for a vendor or an order and the output is the
/// same on every run. `mlc run` uses `runtime.workers`.
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

async fn audit(pipeline: &EmbeddedPipeline, status: AuditStatus) -> anyhow::Result<Vec<AuditItem>> {
    Ok(pipeline
        .env
        .store
        .query_audit(&AuditFilter {
            status: Some(status),
            ..Default::default()
        })
        .await?)
}

fn is_invoice(kind: &str) -> bool {
    kind == "invoice" || kind == "credit_note"
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let pb = spinner("starting the simulators");
    let coupa = CoupaSim::start(CoupaConfig::default()).await?;
    let bc = BcSim::start(BcConfig::default()).await?;
    demo::seed_bc(&bc);
    let seed = demo::seed_coupa(&coupa, a.invoices, 7);
    let sync_seed = demo::seed_sync(&coupa);
    let vendors_before: BTreeSet<String> = bc.vendors().into_iter().map(|v| v.number).collect();

    let temp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let config_path = dir.join("mlc.toml");
    std::fs::write(&config_path, demo_config(&coupa, &bc)?)?;
    let cfg = Config::load(&config_path)?;

    // The demo's own key; a deployment takes it from MLC_SECRET_KEY or MLC_SECRET_KEY_FILE.
    let secrets = SecretFile::open(&cfg.runtime.secrets_file, SecretKey::generate())?;
    super::sandbox::store_secrets(&secrets, &coupa, &bc)?;

    let pipeline = embedded::pipeline(&cfg, &secrets).await?;
    let (reports, stats) = cycle(&pipeline, &pb, "first cycle").await?;
    let polled: u32 = reports.iter().map(|(_, r)| r.enqueued).sum();
    let others = reports
        .iter()
        .flat_map(|(_, r)| r.others.iter().map(|(feed, n)| format!("{n} {feed}")))
        .collect::<Vec<_>>()
        .join(", ");
    let store = &pipeline.env.store;

    // ---- approved invoices (the first cycle) -----------------------------------------------
    let posted = audit(&pipeline, AuditStatus::Posted).await?;
    let rows: Vec<Vec<String>> = posted
        .iter()
        .filter(|i| is_invoice(&i.document_kind))
        .map(|i| {
            vec![
                opt(&i.source_document_number),
                opt(&i.vendor),
                i.amount.map(|a| a.to_string()).unwrap_or_default(),
                opt(&i.currency),
                "→".into(),
                opt(&i.target_document_number),
                "posted".into(),
            ]
        })
        .collect();
    let parked_first = store.parked().await?;
    pb.suspend(|| {
        println!(
            "Coupa: {} approved invoices seeded ({} not approved, which the poll does not read); {polled} queued by the poll.",
            seed.approved.len(),
            seed.not_approved.len()
        );
        println!(
            "Also seeded for the sync flows: {} purchase orders, invoice {} against {}, invoice {} coded to department {}; the poll also queued {others}.\n",
            sync_seed.purchase_orders.len(),
            sync_seed.po_invoice.0,
            sync_seed.billed_po,
            sync_seed.unknown_dimension_invoice.0,
            demo::UNKNOWN_DEPARTMENT,
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
        let prows: Vec<Vec<String>> = parked_first
            .iter()
            .filter(|p| is_invoice(&p.kind))
            .map(|p| {
                vec![
                    opt(&p.source_document_number),
                    p.source_id.clone(),
                    p.reason.clone(),
                ]
            })
            .collect();
        println!("Parked ({}), waiting for someone to act:", prows.len());
        println!(
            "{}\n",
            table(&["Coupa invoice", "Coupa id", "reason"], &prows)
        );
        let in_bc = bc.purchase_invoices();
        let posted_in_bc = in_bc.iter().filter(|i| i.status != "Draft").count();
        println!(
            "Business Central now holds {} purchase invoice(s), {} posted, {} draft(s), and {} purchase credit memo(s). Retries: {}. Dead-lettered: {}.",
            in_bc.len(),
            posted_in_bc,
            in_bc.len() - posted_in_bc,
            bc.purchase_credit_memos().len(),
            stats.failed_attempts,
            stats.dead_lettered
        );
    });

    // ---- the [integrations.sync] flows ---------------------------------------------------
    // Second cycle: parked documents are retried (the new vendor exists, the order is in BC).
    let (_, stats2) = cycle(&pipeline, &pb, "second cycle").await?;
    // Mark the invoice matched to its order paid in BC; the third cycle returns the payment.
    let (po_invoice_no, po_invoice_id) = &sync_seed.po_invoice;
    let bc_po_invoice = bc.purchase_invoices().into_iter().find(|i| {
        i.vendor_invoice_number.eq_ignore_ascii_case(po_invoice_no) && i.status == "Open"
    });
    if let Some(inv) = &bc_po_invoice {
        bc.mark_paid(inv.id);
    }
    let (_, stats3) = cycle(&pipeline, &pb, "third cycle").await?;
    pb.finish_and_clear();

    println!(
        "\n== Purchase orders, suppliers, master data and payments ([integrations.sync]: purchase_orders, suppliers = \"create\", payments) ==\n"
    );

    let posted = audit(&pipeline, AuditStatus::Posted).await?;
    let vendor_names: std::collections::BTreeMap<String, String> = bc
        .vendors()
        .into_iter()
        .map(|v| (v.number, v.display_name))
        .collect();
    let vendor_label = |no: &str| match vendor_names.get(no) {
        Some(name) => format!("{name} ({no})"),
        None => no.to_string(),
    };

    // Purchase orders.
    let orders = bc.purchase_orders();
    let mut po_rows: Vec<Vec<String>> = posted
        .iter()
        .filter(|i| i.document_kind == "purchase_order")
        .filter_map(|i| {
            let number = opt(&i.target_document_number);
            let o = orders.iter().find(|o| o.number == number)?;
            let lines = o
                .lines
                .iter()
                .map(|l| {
                    format!(
                        "{} {} × {:.2}",
                        l.line_object_number,
                        l.quantity.normalize(),
                        l.direct_unit_cost
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            Some(vec![
                opt(&i.source_document_number),
                "→".into(),
                number,
                vendor_label(&o.vendor_number),
                format!("{:.2}", o.total),
                lines,
            ])
        })
        .collect();
    po_rows.sort();
    println!(
        "Purchase orders created in Business Central ({}):",
        po_rows.len()
    );
    println!(
        "{}\n",
        table(
            &[
                "Coupa PO",
                "",
                "BC order",
                "vendor",
                "amount",
                "lines (G/L qty × cost)"
            ],
            &po_rows
        )
    );

    // The invoice matched to its order.
    let coupa_po_invoice = coupa.invoice_json(*po_invoice_id).unwrap_or_default();
    let coupa_lines = coupa_po_invoice["invoice-lines"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let bc_po_invoice = bc_po_invoice.and_then(|i| bc.purchase_invoice(i.id));
    let mut match_rows = Vec::new();
    if let Some(inv) = &bc_po_invoice {
        for (n, l) in inv.lines.iter().enumerate() {
            let c = coupa_lines.get(n);
            let field = |k: &str| {
                c.and_then(|c| c.get(k))
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .unwrap_or_default()
            };
            let coded = c
                .and_then(|c| c["account"]["code"].as_str())
                .unwrap_or_default()
                .to_string();
            match_rows.push(vec![
                po_invoice_no.clone(),
                format!("{} line {}", field("po-number"), field("order-line-num")),
                coded,
                "→".into(),
                inv.number.clone(),
                vendor_label(&inv.vendor_number),
                l.line_object_number.clone(),
                l.dimensions
                    .iter()
                    .map(|(d, v)| format!("{d}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ]);
        }
    }
    println!(
        "Invoice matched to its purchase order (vendor and G/L account taken from the order's lines):"
    );
    println!(
        "{}\n",
        table(
            &[
                "Coupa invoice",
                "bills",
                "coded in Coupa",
                "",
                "BC invoice",
                "vendor (from the order)",
                "G/L (from the order)",
                "dimensions"
            ],
            &match_rows
        )
    );

    // Vendors created from Coupa suppliers, and the invoices that then posted.
    let retried: BTreeSet<(String, String)> = parked_first
        .iter()
        .map(|p| (p.kind.clone(), p.source_id.clone()))
        .collect();
    let mut vendor_rows: Vec<Vec<String>> = posted
        .iter()
        .filter(|i| i.document_kind == "supplier")
        .map(|i| {
            let number = opt(&i.target_document_number);
            let mut invoices = posted
                .iter()
                .filter(|p| is_invoice(&p.document_kind))
                .filter(|p| retried.contains(&(p.document_kind.clone(), p.source_id.clone())))
                .filter(|p| {
                    p.vendor
                        .as_deref()
                        .is_some_and(|v| v.contains(&format!("({number})")))
                })
                .map(|p| {
                    format!(
                        "{} → {}",
                        opt(&p.source_document_number),
                        opt(&p.target_document_number)
                    )
                })
                .collect::<Vec<_>>();
            invoices.sort();
            vec![
                opt(&i.source_document_number),
                opt(&i.vendor),
                "→".into(),
                number,
                if invoices.is_empty() {
                    "-".into()
                } else {
                    invoices.join(", ")
                },
            ]
        })
        .collect();
    vendor_rows.sort();
    let created_in_bc = bc
        .vendors()
        .into_iter()
        .filter(|v| !vendors_before.contains(&v.number))
        .count();
    println!(
        "Vendors created in Business Central for Coupa suppliers without one ({created_in_bc}):"
    );
    println!(
        "{}\n",
        table(
            &[
                "Coupa supplier",
                "name",
                "",
                "BC vendor",
                "its parked invoices, posted on the next cycle"
            ],
            &vendor_rows
        )
    );

    // Still parked.
    let mut parked_rows: Vec<Vec<String>> = store
        .parked()
        .await?
        .iter()
        .map(|p| {
            vec![
                opt(&p.source_document_number),
                p.kind.replace('_', " "),
                p.reason.clone(),
            ]
        })
        .collect();
    parked_rows.sort();
    println!(
        "Parked after the retries ({}): each reason names the value Business Central lacks",
        parked_rows.len()
    );
    println!(
        "{}\n",
        table(&["Coupa document", "kind", "reason"], &parked_rows)
    );

    // Payments back to Coupa.
    let payments = coupa
        .invoice_json(*po_invoice_id)
        .and_then(|v| v["payments"].as_array().cloned())
        .unwrap_or_default();
    let pay_rows: Vec<Vec<String>> = payments
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().map(str::to_string).unwrap_or_default();
            vec![
                po_invoice_no.clone(),
                po_invoice_id.to_string(),
                s("amount-paid"),
                s("payment-date"),
                s("notes"),
            ]
        })
        .collect();
    println!(
        "Payments returned to Coupa after BC invoice {} was marked paid in the simulator ({}):",
        bc_po_invoice
            .as_ref()
            .map(|i| i.number.as_str())
            .unwrap_or("-"),
        pay_rows.len()
    );
    println!(
        "{}\n",
        table(
            &[
                "Coupa invoice",
                "Coupa id",
                "amount paid",
                "date",
                "reference"
            ],
            &pay_rows
        )
    );
    println!(
        "Three poll cycles in all. Retries: {}. Dead-lettered: {}.",
        stats.failed_attempts + stats2.failed_attempts + stats3.failed_attempts,
        stats.dead_lettered + stats2.dead_lettered + stats3.dead_lettered
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
