use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use mlc_shared::adapters::embedded::SecretKey;
use mlc_shared::config::Config;

use crate::embedded;

#[derive(Subcommand)]
pub enum Action {
    /// Store a secret; the value is read from standard input (never from the command line,
    /// where it would land in shell history).
    Set {
        /// The secret's name, as the configuration names it (e.g. coupa-client-secret).
        name: String,
    },
    /// Names of the stored secrets (never their values).
    List,
    /// Remove a secret.
    Rm {
        /// The secret's name.
        name: String,
    },
    /// Create a new random key file (0600) for MLC_SECRET_KEY_FILE.
    NewKey {
        /// Where to write the key (refused if the file exists).
        path: std::path::PathBuf,
    },
}

pub fn run(config: Option<&Path>, action: Action) -> anyhow::Result<ExitCode> {
    if let Action::NewKey { path } = &action {
        if path.exists() {
            bail!(
                "{} exists; refusing to overwrite a key (secrets encrypted with it would be lost)",
                path.display()
            );
        }
        SecretKey::generate_to_file(path)?;
        println!(
            "wrote a new key to {}; set MLC_SECRET_KEY_FILE={}",
            path.display(),
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let Some(config) = config else {
        bail!("give --config FILE (it names the secrets file)")
    };
    let cfg = Config::load(config)?;
    let file = embedded::open_secrets(&cfg)?;
    match action {
        Action::Set { name } => {
            let mut value = String::new();
            std::io::stdin()
                .read_to_string(&mut value)
                .context("reading the value from standard input")?;
            let value = value.trim_end_matches(['\r', '\n']);
            if value.is_empty() {
                bail!("empty value on standard input; nothing stored");
            }
            file.set(&name, value)?;
            println!("stored '{name}'");
        }
        Action::List => {
            for n in file.names()? {
                // Written by `mlc run` itself; removing one only costs a token request.
                if n.starts_with("token-cache/") {
                    println!("{n}  (cached access token, kept by mlc)");
                } else {
                    println!("{n}");
                }
            }
        }
        Action::Rm { name } => {
            if file.remove(&name)? {
                println!("removed '{name}'");
            } else {
                bail!("no secret named '{name}'");
            }
        }
        Action::NewKey { .. } => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}
