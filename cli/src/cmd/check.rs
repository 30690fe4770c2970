use std::path::Path;
use std::process::ExitCode;

use mlc_shared::config::Config;
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
    let mut only_coupa = cfg.clone();
    only_coupa.systems.business_central = None;
    let mut only_bc = cfg.clone();
    only_bc.systems.coupa = None;

    if cfg.systems.coupa.is_some() {
        let r = match Systems::from_config(&only_coupa, &secrets).await {
            Ok(s) => s
                .coupa
                .expect("configured")
                .check()
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        failed |= report("coupa", r);
    }
    if cfg.systems.business_central.is_some() {
        let r = match Systems::from_config(&only_bc, &secrets).await {
            Ok(s) => {
                s.bc.expect("configured")
                    .check()
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        failed |= report("business_central", r);
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
