use std::path::Path;
use std::process::ExitCode;

use mlc_shared::adapters::embedded::SecretFile;
use mlc_shared::config::{Config, SystemConfig};
use mlc_shared::ports::Ledger;
use mlc_shared::systems::Instances;

use crate::embedded;
use crate::output::for_terminal;

/// Each configured system: ok, or the exact failure (on one line: a server's words are shown
/// escaped). Exit 1 if any failed.
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
    for problem in runtime_problems(&cfg, &secrets)? {
        println!("FAILED: {}", for_terminal(&problem));
        failed = true;
    }
    if !failed {
        ledger_targets(&cfg, &secrets).await?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// What `mlc run` would refuse or silently lose that the systems' own checks do not see: a
/// listen address that is no address, and a webhook secret named but not stored (every webhook
/// would be refused).
fn runtime_problems(cfg: &Config, secrets: &SecretFile) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    if let Some(addr) = &cfg.runtime.webhook_listen
        && let Err(e) = std::net::ToSocketAddrs::to_socket_addrs(addr.as_str())
    {
        problems.push(format!(
            "runtime.webhook_listen = \"{addr}\" is not an address to listen on ({e}); \
             give host:port, e.g. 127.0.0.1:8080"
        ));
    }
    let stored = secrets.names()?;
    for (name, system) in cfg.systems.iter() {
        if let SystemConfig::Coupa(c) = system
            && let Some(secret) = &c.webhook_secret
            && !stored.iter().any(|s| s == secret)
        {
            problems.push(format!(
                "systems.{name}.webhook_secret names secret '{secret}', which is not stored: \
                 every webhook would be refused; store it with `mlc secrets set {secret}`"
            ));
        }
    }
    Ok(problems)
}

/// Warns when the database holds ledger entries written for another target than the one the
/// configuration names (pointed at another company or environment): those documents are not
/// done in this one.
async fn ledger_targets(cfg: &Config, secrets: &SecretFile) -> anyhow::Result<()> {
    if !cfg.runtime.database.exists() {
        return Ok(());
    }
    let pipeline = embedded::pipeline(cfg, secrets).await?;
    for flow in &pipeline.flows {
        let current = flow.targets();
        for (target, count) in pipeline.env.store.ledger_targets(flow.name()).await? {
            let Some(target) = target.filter(|t| !current.contains(t)) else {
                continue;
            };
            let target = for_terminal(&target);
            println!(
                "warning: integration '{}': the database holds {count} ledger entr{} written \
                 for {target}, but this configuration writes into {}; those documents are not \
                 done here and are written here when they are seen again",
                flow.name(),
                if count == 1 { "y" } else { "ies" },
                for_terminal(&current.join(" and "))
            );
        }
    }
    Ok(())
}

fn report(system: &str, r: Result<String, String>) -> bool {
    match r {
        Ok(what) => {
            println!("{system}: ok ({})", for_terminal(&what));
            false
        }
        Err(e) => {
            println!("{system}: FAILED: {}", for_terminal(&e));
            true
        }
    }
}
