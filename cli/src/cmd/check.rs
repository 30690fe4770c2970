use std::path::Path;
use std::process::ExitCode;

use mlc_shared::config::{Config, SystemConfig};
use mlc_shared::runtime::Systems;

use crate::embedded;

/// Each configured system: ok, or the exact failure. Exit 1 if any failed.
pub async fn run(config: &Path) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(config)?;
    println!(
        "configuration {}: ok ({} integration(s))",
        config.display(),
        cfg.integrations.len()
    );
    let secrets = embedded::open_secrets(&cfg)?;
    let mut failed = false;
    // Build each system alone, so one system's missing secret does not hide the other's state.
    for (name, system) in cfg.systems.iter() {
        let mut only = cfg.clone();
        only.systems.retain(|n, _| n == name);
        let built = Systems::from_config(&only, &secrets).await;
        let r = match (system, built) {
            (_, Err(e)) => Err(e.to_string()),
            (SystemConfig::Coupa(_), Ok(s)) => s
                .coupa
                .expect("configured")
                .check()
                .await
                .map_err(|e| e.to_string()),
            (SystemConfig::BusinessCentral(_), Ok(s)) => {
                s.bc.expect("configured")
                    .check()
                    .await
                    .map_err(|e| e.to_string())
            }
        };
        failed |= report(name, r);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn report(system: &str, r: Result<String, String>) -> bool {
    match r {
        Ok(what) => {
            println!("{system}: ok ({what})");
            false
        }
        Err(e) => {
            println!("{system}: FAILED: {e}");
            true
        }
    }
}
