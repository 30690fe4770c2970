//! `mlc config`: prints the configuration in its new form (named systems with `type`, each
//! integration with `source`, `target` and `company`), to migrate a file or see what it resolves to.

use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;
use mlc_shared::config::Config;

pub fn run(config: &Path) -> anyhow::Result<ExitCode> {
    // Read and parse rather than `Config::load`: load makes relative files absolute, and the
    // output should read as the original does.
    let text = std::fs::read_to_string(config)
        .map_err(|e| anyhow!("cannot read {}: {e}", config.display()))?;
    let cfg = Config::parse(&text).map_err(|m| anyhow!("{}: {m}", config.display()))?;
    print!("{}", cfg.to_new_form());
    Ok(ExitCode::SUCCESS)
}
