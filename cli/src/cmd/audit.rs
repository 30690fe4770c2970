//! `mlc audit`: what each document's state is now (one row per document), or with `--history`
//! every event of the audit trail. Repeats (a replayed webhook, a poll reading its overlap
//! again, a redelivery the ledger stopped) are counted on the row they repeat, not listed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, Utc};
use mlc_shared::adapters::embedded::{Db, SqliteStore};
use mlc_shared::config::Config;
use mlc_shared::ports::{Audit, AuditFilter, AuditItem, AuditStatus, Parking};
use mlc_shared::steps::{DocumentState, current_states};
use rust_decimal::Decimal;

use crate::output::{csv_cell, table};

#[derive(clap::Args)]
pub struct Args {
    /// The deployment's configuration (its database is read).
    #[arg(long, short, conflicts_with = "db")]
    config: Option<PathBuf>,
    /// A database file, instead of --config (read only: a copy or a read-only file will do).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Every event (received, mapped, parked, posted, ...) instead of each document's state now.
    #[arg(long)]
    history: bool,
    /// Only this integration (its name in the configuration, e.g. coupa-bc).
    #[arg(long)]
    integration: Option<String>,
    /// Only this kind of document: invoice, credit_note, purchase_order, supplier, payment.
    #[arg(long)]
    kind: Option<String>,
    /// Only documents in this state now (events of this status with --history): received,
    /// mapped, parked, posted, already_posted, updated, failed, dead_lettered, rejected,
    /// discarded, conflict, backed_out.
    #[arg(long)]
    status: Option<String>,
    /// Only this document: its source id or its number (as the supplier wrote it).
    #[arg(long)]
    document: Option<String>,
    /// Only this vendor: part of its name or its number, in any case.
    #[arg(long)]
    vendor: Option<String>,
    /// From this date or instant (inclusive): 2026-11-01 or 2026-11-01T08:00:00Z.
    #[arg(long)]
    from: Option<String>,
    /// Up to this date or instant (exclusive).
    #[arg(long)]
    to: Option<String>,
    /// Show at most this many rows, the newest (the output says how many it leaves out).
    #[arg(long, default_value_t = 200)]
    limit: usize,
    /// JSON, exact values, for programs.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// CSV for a spreadsheet: amount and currency in their own columns.
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
    let store = SqliteStore::new(open(&path)?);
    let status = match &a.status {
        Some(s) => Some(AuditStatus::parse(s).with_context(|| {
            format!("unknown status '{s}' (see mlc audit --help for the statuses)")
        })?),
        None => None,
    };
    let from = a.from.as_deref().map(instant).transpose()?;
    let to = a.to.as_deref().map(instant).transpose()?;
    // Vendor and kind are matched here (case-insensitive, name or number); the store narrows
    // by what it indexes.
    let filter = AuditFilter {
        integration: a.integration.clone(),
        status: if a.history { status } else { None },
        from: if a.history { from } else { None },
        to: if a.history { to } else { None },
        vendor: None,
        document: a.document.clone(),
        limit: None,
    };
    let mut events = store.query_audit(&filter).await?;
    if let Some(doc) = &a.document {
        // Failed attempts are recorded under the source id alone (the failing message may not
        // carry the number): a document asked for by its number gets them too.
        let ids: std::collections::BTreeSet<String> = events
            .iter()
            .filter(|i| i.source_id != *doc)
            .map(|i| i.source_id.clone())
            .collect();
        for id in ids {
            let by_id = AuditFilter {
                document: Some(id.clone()),
                ..filter.clone()
            };
            events.extend(
                store
                    .query_audit(&by_id)
                    .await?
                    .into_iter()
                    .filter(|i| i.source_id == id && i.source_document_number.is_none()),
            );
        }
        events.sort_by_key(|i| i.at);
    }
    let keep = |kind: &str, vendor: Option<&str>| {
        a.kind
            .as_deref()
            .is_none_or(|k| k.eq_ignore_ascii_case(kind))
            && a.vendor.as_deref().is_none_or(|v| {
                vendor.is_some_and(|have| have.to_lowercase().contains(&v.to_lowercase()))
            })
    };
    let rows: Rows = if a.history {
        Rows::Events(
            events
                .into_iter()
                .filter(|i| keep(&i.document_kind, i.vendor.as_deref()))
                .collect(),
        )
    } else {
        let parked: Vec<_> = store
            .parked()
            .await?
            .into_iter()
            .filter(|p| a.integration.as_ref().is_none_or(|i| *i == p.integration))
            .filter(|p| {
                a.document.as_ref().is_none_or(|d| {
                    *d == p.source_id || p.source_document_number.as_ref() == Some(d)
                })
            })
            .collect();
        Rows::Documents(
            current_states(&events, &parked)
                .into_iter()
                .filter(|d| keep(&d.document_kind, d.vendor.as_deref()))
                .filter(|d| status.is_none_or(|s| s == d.status))
                .filter(|d| from.is_none_or(|f| d.at >= f) && to.is_none_or(|t| d.at < t))
                .collect(),
        )
    };
    let all = rows.len();
    let shown = rows.newest(a.limit);
    let left_out = all - shown.len();
    let what = if a.history {
        "audit items"
    } else {
        "documents"
    };
    if left_out > 0 && (a.json || a.csv) {
        eprintln!(
            "{} of {all} {what} (the newest); --limit {all} for all",
            shown.len()
        );
    }
    if a.json {
        println!("{}", shown.json()?);
    } else if a.csv {
        print!("{}", shown.csv()?);
    } else if shown.len() == 0 {
        println!("no {what} match");
    } else {
        println!("{}", shown.table());
        if left_out > 0 {
            println!(
                "{} of {all} shown (the newest, newest last); --limit {all} for all",
                shown.len()
            );
        }
        let repeats = shown.repeats();
        if repeats > 0 {
            println!(
                "{repeats} repeat(s) not listed (the same document seen again: webhooks \
                 replayed, polls overlapping, redeliveries stopped by the ledger); --json \
                 shows them per row"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The file as it is: written to only when its schema must be brought up to date and it can
/// be; otherwise read only (a copy handed to an auditor, a read-only mount).
fn open(path: &Path) -> anyhow::Result<Db> {
    match Db::open_read_only(path) {
        Ok(db) => Ok(db),
        Err(read_only) => Db::open(path)
            .map_err(|_| read_only)
            .with_context(|| format!("opening {}", path.display())),
    }
}

enum Rows {
    Events(Vec<AuditItem>),
    Documents(Vec<DocumentState>),
}

impl Rows {
    fn len(&self) -> usize {
        match self {
            Rows::Events(v) => v.len(),
            Rows::Documents(v) => v.len(),
        }
    }

    /// The newest `n`, newest last.
    fn newest(self, n: usize) -> Rows {
        fn tail<T>(mut v: Vec<T>, n: usize) -> Vec<T> {
            v.drain(..v.len().saturating_sub(n));
            v
        }
        match self {
            Rows::Events(v) => Rows::Events(tail(v, n)),
            Rows::Documents(v) => Rows::Documents(tail(v, n)),
        }
    }

    fn repeats(&self) -> u64 {
        match self {
            Rows::Events(v) => v.iter().map(|i| i.repeats).sum(),
            Rows::Documents(v) => v.iter().map(|d| d.repeats).sum(),
        }
    }

    fn json(&self) -> serde_json::Result<String> {
        match self {
            Rows::Events(v) => serde_json::to_string_pretty(v),
            Rows::Documents(v) => serde_json::to_string_pretty(v),
        }
    }

    fn cells(&self) -> (Vec<&'static str>, Vec<Vec<String>>) {
        match self {
            Rows::Events(v) => (EVENT_HEADERS.to_vec(), v.iter().map(event_row).collect()),
            Rows::Documents(v) => (
                DOCUMENT_HEADERS.to_vec(),
                v.iter().map(document_row).collect(),
            ),
        }
    }

    fn table(&self) -> String {
        let (headers, rows) = self.cells();
        let rows: Vec<Vec<String>> = rows
            .into_iter()
            .zip(self.amounts())
            .map(|(mut r, (amount, currency))| {
                r[AMOUNT] = match (amount, currency) {
                    (Some(a), Some(c)) => format!("{a} {c}"),
                    (Some(a), None) => a.to_string(),
                    _ => String::new(),
                };
                r
            })
            .collect();
        table(&headers, &rows)
    }

    /// RFC 4180 CSV for a spreadsheet: each cell quoted as needed and neutralised against
    /// formulas ([`csv_cell`]); the amount a number a spreadsheet can add up, its currency
    /// beside it; otherwise the stored text, exactly.
    fn csv(&self) -> anyhow::Result<String> {
        let (mut headers, rows) = self.cells();
        headers.insert(AMOUNT + 1, "currency");
        let mut w = ::csv::WriterBuilder::new()
            .terminator(::csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        w.write_record(&headers)?;
        for (mut cells, (amount, currency)) in rows.into_iter().zip(self.amounts()) {
            cells[AMOUNT] = amount.map(|a| a.to_string()).unwrap_or_default();
            cells.insert(AMOUNT + 1, currency.unwrap_or_default());
            w.write_record(cells.iter().map(|c| csv_cell(c).into_owned()))?;
        }
        Ok(String::from_utf8(w.into_inner()?)?)
    }

    fn amounts(&self) -> Vec<(Option<Decimal>, Option<String>)> {
        match self {
            Rows::Events(v) => v.iter().map(|i| (i.amount, i.currency.clone())).collect(),
            Rows::Documents(v) => v.iter().map(|d| (d.amount, d.currency.clone())).collect(),
        }
    }
}

/// Where the amount is in both row layouts.
const AMOUNT: usize = 6;

const EVENT_HEADERS: [&str; 12] = [
    "at",
    "integration",
    "kind",
    "document",
    "number",
    "vendor",
    "amount",
    "step",
    "status",
    "target",
    "repeats",
    "error",
];

fn event_row(i: &AuditItem) -> Vec<String> {
    vec![
        i.at.format("%Y-%m-%d %H:%M:%S").to_string(),
        i.integration.clone(),
        i.document_kind.clone(),
        i.source_id.clone(),
        i.source_document_number.clone().unwrap_or_default(),
        i.vendor.clone().unwrap_or_default(),
        String::new(),
        i.step.as_str().to_string(),
        i.status.as_str().to_string(),
        i.target_document_number.clone().unwrap_or_default(),
        count(i.repeats),
        i.error.clone().unwrap_or_default(),
    ]
}

const DOCUMENT_HEADERS: [&str; 11] = [
    "since",
    "integration",
    "kind",
    "document",
    "number",
    "vendor",
    "amount",
    "status",
    "target",
    "repeats",
    "reason",
];

fn document_row(d: &DocumentState) -> Vec<String> {
    vec![
        d.at.format("%Y-%m-%d %H:%M:%S").to_string(),
        d.integration.clone(),
        d.document_kind.clone(),
        d.source_id.clone(),
        d.source_document_number.clone().unwrap_or_default(),
        d.vendor.clone().unwrap_or_default(),
        String::new(),
        d.status.as_str().to_string(),
        d.target_document_number.clone().unwrap_or_default(),
        count(d.repeats),
        d.error.clone().unwrap_or_default(),
    ]
}

fn count(n: u64) -> String {
    if n == 0 { String::new() } else { n.to_string() }
}

fn instant(s: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .with_context(|| format!("'{s}' is neither a date (2026-11-01) nor an RFC 3339 instant"))?;
    Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
}
