use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use mlc_shared::adapters::embedded::SqliteStore;
use mlc_shared::config::{Config, tables};
use mlc_shared::ports::Mappings;

use crate::embedded;
use crate::output::table;

#[derive(Subcommand)]
pub enum Action {
    /// Import rows from a CSV file with the header `kind,source,target`, where kind is
    /// `supplier`, `account_code`, `gl_account` or `dimension:<CODE>`. All rows or none: a bad
    /// row, two rows mapping one source to different targets, or a row that would change an
    /// existing mapping (without --replace) stops the import before anything is written.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// The integration the rows are for (its name in the configuration).
        #[arg(long)]
        integration: String,
        /// Let rows change existing mappings (each change is listed).
        #[arg(long)]
        replace: bool,
    },
    /// List the mapping tables an operator maintains (of one integration).
    List {
        /// Only this integration's tables.
        #[arg(long)]
        integration: Option<String>,
        /// Also the tables the connector keeps for itself (links between records).
        #[arg(long)]
        all: bool,
    },
}

/// One row of an import file, resolved to its table.
struct Row {
    line: usize,
    kind: String,
    table: String,
    source: String,
    target: String,
}

pub async fn run(config: Option<&Path>, action: Action) -> anyhow::Result<ExitCode> {
    let Some(config) = config else {
        bail!("give --config FILE")
    };
    let cfg = Config::load(config)?;
    let store = SqliteStore::new(embedded::open_db(&cfg)?);
    match action {
        Action::Import {
            file,
            integration,
            replace,
        } => {
            if !cfg.integrations.iter().any(|i| i.name == integration) {
                bail!("integration '{integration}' is not in {}", config.display());
            }
            let rows = read(&file, &integration)?;
            let existing: HashMap<(String, String), String> = store
                .list_mappings(None)
                .await?
                .into_iter()
                .map(|(t, s, v)| ((t, s), v))
                .collect();
            let mut changes = Vec::new();
            for r in &rows {
                match existing.get(&(r.table.clone(), r.source.clone())) {
                    Some(old) if *old != r.target => changes.push(format!(
                        "{}:{}: {} {} is mapped to {old}; this row maps it to {}",
                        file.display(),
                        r.line,
                        r.kind,
                        r.source,
                        r.target
                    )),
                    _ => {}
                }
            }
            if !changes.is_empty() && !replace {
                bail!(
                    "nothing imported: {} row(s) would change an existing mapping (give --replace \
                     to change them):\n  {}",
                    changes.len(),
                    changes.join("\n  ")
                );
            }
            let n = rows.len();
            let kinds: Vec<(String, String)> = rows
                .iter()
                .map(|r| (r.kind.clone(), r.target.clone()))
                .collect();
            store
                .put_mappings(
                    rows.into_iter()
                        .map(|r| (r.table, r.source, r.target))
                        .collect(),
                )
                .await?;
            for c in &changes {
                println!("changed: {c}");
            }
            println!("imported {n} mapping(s); parked documents are retried on the next poll");
            warn_unknown_targets(&cfg, &integration, &kinds).await;
        }
        Action::List { integration, all } => {
            let rows = store.list_mappings(None).await?;
            let hidden = rows
                .iter()
                .filter(|(t, _, _)| tables::is_internal(t))
                .count();
            let rows: Vec<Vec<String>> = rows
                .into_iter()
                .filter(|(t, _, _)| all || !tables::is_internal(t))
                .filter(|(t, _, _)| {
                    integration
                        .as_ref()
                        .is_none_or(|i| t.starts_with(&format!("{i}/")))
                })
                .map(|(t, s, v)| vec![t, s, v])
                .collect();
            if rows.is_empty() {
                println!("no mappings");
            } else {
                println!("{}", table(&["table", "source", "target"], &rows));
            }
            if !all && hidden > 0 {
                println!(
                    "({hidden} row(s) the connector keeps for itself not shown; --all shows them)"
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Every row of the file, checked: a bad row or two rows that map one source to different
/// targets stop the import, naming file and line.
fn read(file: &Path, integration: &str) -> anyhow::Result<Vec<Row>> {
    let mut reader =
        csv::Reader::from_path(file).with_context(|| format!("reading {}", file.display()))?;
    let mut rows: Vec<Row> = Vec::new();
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.with_context(|| format!("{}:{line}", file.display()))?;
        let (kind, source, target) = match (record.get(0), record.get(1), record.get(2)) {
            (Some(k), Some(s), Some(t)) if !s.trim().is_empty() && !t.trim().is_empty() => {
                (k.trim(), s.trim(), t.trim())
            }
            _ => bail!(
                "{}:{line}: expected kind,source,target with non-empty source and target \
                 (nothing imported)",
                file.display()
            ),
        };
        let table = match kind.split_once(':') {
            None if kind == "supplier" => tables::supplier(integration),
            None if kind == "account_code" => tables::account_code(integration),
            None if kind == "gl_account" => tables::gl_account(integration),
            Some(("dimension", code)) if !code.is_empty() => tables::dimension(integration, code),
            _ => bail!(
                "{}:{line}: unknown kind '{kind}' (supplier, account_code, gl_account, \
                 dimension:<CODE>; nothing imported)",
                file.display()
            ),
        };
        if let Some(&first) = seen.get(&(table.clone(), source.to_string())) {
            let earlier = &rows[first];
            if earlier.target != target {
                bail!(
                    "{}:{line}: {kind} {source} is mapped to {} on line {} and to {target} here \
                     (nothing imported)",
                    file.display(),
                    earlier.target,
                    earlier.line
                );
            }
            continue;
        }
        seen.insert((table.clone(), source.to_string()), rows.len());
        rows.push(Row {
            line,
            kind: kind.to_string(),
            table,
            source: source.to_string(),
            target: target.to_string(),
        });
    }
    Ok(rows)
}

/// Warns of mapped values the target system does not have (a vendor number mistyped or not
/// created yet). Only a warning: the import stands, and a system that cannot be asked is said.
async fn warn_unknown_targets(cfg: &Config, integration: &str, rows: &[(String, String)]) {
    let checked = async {
        let secrets = embedded::open_secrets(cfg)?;
        let pipeline = embedded::pipeline(cfg, &secrets).await?;
        let flow = pipeline
            .flow(integration)
            .with_context(|| format!("integration '{integration}'"))?;
        anyhow::Ok(flow.unknown_mapping_targets(rows).await?)
    };
    match checked.await {
        Ok(unknown) => {
            for u in unknown {
                println!("warning: {u}");
            }
        }
        Err(e) => println!("note: the mapped values could not be checked in the target: {e:#}"),
    }
}
