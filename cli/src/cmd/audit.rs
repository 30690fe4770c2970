use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, Utc};
use mlc_shared::adapters::embedded::{Db, SqliteStore};
use mlc_shared::config::Config;
use mlc_shared::ports::{Audit, AuditFilter, AuditItem, AuditStatus};

use crate::output::{csv_cell, table};

#[derive(clap::Args)]
pub struct Args {
    /// The deployment's configuration (its database is read).
    #[arg(long, short, conflicts_with = "db")]
    config: Option<PathBuf>,
    /// A database file, instead of --config.
    #[arg(long)]
    db: Option<PathBuf>,
    #[arg(long)]
    integration: Option<String>,
    /// received, mapped, parked, posted, already_posted, failed, dead_lettered, rejected
    #[arg(long)]
    status: Option<String>,
    /// Source id or document number.
    #[arg(long)]
    document: Option<String>,
    #[arg(long)]
    vendor: Option<String>,
    /// From this date or instant (inclusive): 2026-11-01 or 2026-11-01T08:00:00Z.
    #[arg(long)]
    from: Option<String>,
    /// Up to this date or instant (exclusive).
    #[arg(long)]
    to: Option<String>,
    /// Show at most this many items, the newest (the output says how many it leaves out).
    #[arg(long, default_value_t = 200)]
    limit: usize,
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    #[arg(long)]
    csv: bool,
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let path = match (&a.config, &a.db) {
        (Some(c), _) => Config::load(c)?.runtime.database,
        (None, Some(d)) => d.clone(),
        (None, None) => bail!("give --config FILE or --db FILE"),
    };
    if !path.exists() {
        bail!("no database at {}", path.display());
    }
    let store =
        SqliteStore::new(Db::open(&path).with_context(|| format!("opening {}", path.display()))?);
    let status = match &a.status {
        Some(s) => Some(AuditStatus::parse(s).with_context(|| format!("unknown status '{s}'"))?),
        None => None,
    };
    let filter = AuditFilter {
        integration: a.integration,
        status,
        from: a.from.as_deref().map(instant).transpose()?,
        to: a.to.as_deref().map(instant).transpose()?,
        vendor: a.vendor,
        document: a.document,
        limit: None,
    };
    // All that match, to say how many the limit leaves out; the newest `limit` are shown.
    let all = store.query_audit(&filter).await?;
    let items = &all[all.len().saturating_sub(a.limit)..];
    let left_out = all.len() - items.len();
    if left_out > 0 && (a.json || a.csv) {
        eprintln!(
            "{} of {} audit items (the newest); --limit {} for all",
            items.len(),
            all.len(),
            all.len()
        );
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else if a.csv {
        print!("{}", csv(items)?);
    } else if items.is_empty() {
        println!("no audit items match");
    } else {
        println!(
            "{}",
            table(&HEADERS, &items.iter().map(row).collect::<Vec<_>>())
        );
        if left_out > 0 {
            println!(
                "{} of {} shown (the newest, newest last); --limit {} for all",
                items.len(),
                all.len(),
                all.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

const HEADERS: [&str; 10] = [
    "at",
    "integration",
    "document",
    "number",
    "vendor",
    "amount",
    "step",
    "status",
    "target",
    "error",
];

fn row(i: &AuditItem) -> Vec<String> {
    vec![
        i.at.format("%Y-%m-%d %H:%M:%S").to_string(),
        i.integration.clone(),
        i.source_id.clone(),
        i.source_document_number.clone().unwrap_or_default(),
        i.vendor.clone().unwrap_or_default(),
        match (&i.amount, &i.currency) {
            (Some(a), Some(c)) => format!("{a} {c}"),
            _ => String::new(),
        },
        i.step.as_str().to_string(),
        i.status.as_str().to_string(),
        i.target_document_number.clone().unwrap_or_default(),
        i.error.clone().unwrap_or_default(),
    ]
}

/// The CSV columns: the table's, with the amount and its currency apart, so the amount is a
/// number a spreadsheet can add up.
const CSV_HEADERS: [&str; 11] = [
    "at",
    "integration",
    "document",
    "number",
    "vendor",
    "amount",
    "currency",
    "step",
    "status",
    "target",
    "error",
];

/// RFC 4180 CSV for a spreadsheet: each cell quoted as needed and neutralised against formulas
/// ([`csv_cell`]); otherwise the stored text, exactly.
fn csv(items: &[AuditItem]) -> anyhow::Result<String> {
    let mut w = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(CSV_HEADERS)?;
    for i in items {
        let mut cells = row(i);
        // "21.00 USD" -> "21.00", "USD"
        cells[5] = i.amount.map(|a| a.to_string()).unwrap_or_default();
        cells.insert(6, i.currency.clone().unwrap_or_default());
        w.write_record(cells.iter().map(|c| csv_cell(c).into_owned()))?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

fn instant(s: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .with_context(|| format!("'{s}' is neither a date (2026-11-01) nor an RFC 3339 instant"))?;
    Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
}
