use std::path::Path;
use std::process::ExitCode;

use mlc_shared::config::Config;
use mlc_shared::systems::Instances;

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
    // Each system alone, so one system's missing secret does not hide another's state.
    for (name, _) in cfg.systems.iter() {
        let r = match Instances::build_one(&cfg, name, &secrets).await {
            Ok(system) => system.check().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
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
