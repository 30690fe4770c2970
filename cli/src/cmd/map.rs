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
    /// `supplier`, `account_code`, `gl_account` or `dimension:<CODE>`.
    Import {
        file: PathBuf,
        #[arg(long)]
        integration: String,
    },
    /// List the mapping tables (of one integration).
    List {
        #[arg(long)]
        integration: Option<String>,
    },
}

pub async fn run(config: Option<&Path>, action: Action) -> anyhow::Result<ExitCode> {
    let Some(config) = config else {
        bail!("give --config FILE")
    };
    let cfg = Config::load(config)?;
    let store = SqliteStore::new(embedded::open_db(&cfg)?);
    match action {
        Action::Import { file, integration } => {
            if !cfg.integrations.iter().any(|i| i.name == integration) {
                bail!("integration '{integration}' is not in {}", config.display());
            }
            let mut reader = csv::Reader::from_path(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let mut n = 0;
            for (i, row) in reader.records().enumerate() {
                let line = i + 2;
                let row = row.with_context(|| format!("{}:{line}", file.display()))?;
                let (kind, source, target) = match (row.get(0), row.get(1), row.get(2)) {
                    (Some(k), Some(s), Some(t)) if !s.trim().is_empty() && !t.trim().is_empty() => {
                        (k.trim(), s.trim(), t.trim())
                    }
                    _ => bail!(
                        "{}:{line}: expected kind,source,target with non-empty source and target",
                        file.display()
                    ),
                };
                let table = match kind.split_once(':') {
                    None if kind == "supplier" => tables::supplier(&integration),
                    None if kind == "account_code" => tables::account_code(&integration),
                    None if kind == "gl_account" => tables::gl_account(&integration),
                    Some(("dimension", code)) if !code.is_empty() => {
                        tables::dimension(&integration, code)
                    }
                    _ => bail!(
                        "{}:{line}: unknown kind '{kind}' (supplier, account_code, gl_account, dimension:<CODE>)",
                        file.display()
                    ),
                };
                store.put_mapping(&table, source, target).await?;
                n += 1;
            }
            println!("imported {n} mapping(s); parked documents are retried on the next poll");
        }
        Action::List { integration } => {
            let rows = store.list_mappings(None).await?;
            let rows: Vec<Vec<String>> = rows
                .into_iter()
                .filter(|(t, _, _)| {
                    integration
                        .as_ref()
                        .is_none_or(|i| t.starts_with(&format!("{i}/")))
                })
                .map(|(t, s, v)| vec![t, s, v])
                .collect();
            println!("{}", table(&["table", "source", "target"], &rows));
        }
    }
    Ok(ExitCode::SUCCESS)
}
