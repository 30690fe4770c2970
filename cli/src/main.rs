//! `mlc`: the embedded runtime of ml-connector, and the operator's tool.
//! Thin wiring only: the work is in `mlc-shared`.

use mlc_cli::cmd;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mlc",
    version,
    about = "ml-connector: approved supplier invoices into your ERP, exactly once"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the simulators of every integration with seeded data, run the pipeline until idle,
    /// and show what moved and what was parked.
    Demo(cmd::demo::Args),
    /// Run the pipeline against the configured systems (webhook listener + schedule + workers).
    Run {
        /// The deployment's configuration file (TOML: systems, integrations, runtime).
        #[arg(long, short)]
        config: PathBuf,
        /// Poll once, drain the queues, exit (for cron, and for checking a configuration).
        #[arg(long)]
        once: bool,
    },
    /// Authenticate to each configured system and make one cheap read.
    Check {
        /// The deployment's configuration file (TOML: systems, integrations, runtime).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the configuration in the new form: named systems with `type`, each integration with
    /// its `source`, `target` and `company` (today's form is still accepted).
    Config {
        /// The configuration file to print in the new form.
        #[arg(long, short, default_value = "mlc.toml")]
        config: PathBuf,
    },
    /// Each document's state now (one row per document), or with --history every event of the
    /// audit trail; filter by integration, kind, status, document, vendor and date.
    Audit(cmd::audit::Args),
    /// Re-run a document, or the dead-lettered / parked ones matching a filter, from the audit
    /// trail (exactly once: a posted document ends as already posted), and show the outcome.
    Replay(cmd::replay::Args),
    /// Opt-in first load of many documents through the target's bulk API (F&O: Data
    /// Management packages), exactly once with the normal pipeline; prints each package's
    /// progress and a summary. A later poll posts none of them again.
    Backfill(cmd::backfill::Args),
    /// Manage the encrypted secrets file (values are never printed).
    Secrets {
        /// The deployment's configuration (names the secrets file). Not needed for `new-key`.
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: cmd::secrets::Action,
    },
    /// Mapping tables (supplier → vendor, account → G/L account, segment → dimension value).
    Map {
        /// The deployment's configuration file.
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: cmd::map::Action,
    },
    /// Run the simulators of every integration alone and print their URLs and credentials.
    Sandbox(cmd::sandbox::Args),
}

fn main() -> std::process::ExitCode {
    // Plain text for a person (coloured on a terminal); only the Lambda functions log JSON.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MLC_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    // `mlc run` waits on the systems' answers far more than it computes: one thread runs its
    // workers, polls and listener, so a worker woken by an answer never waits for another
    // thread to hand it over (those hand-offs were most of its CPU per invoice, issue #16 item
    // 4); SQLite calls that must wait for another still go to the blocking pool. The other
    // commands (the demo and `mlc sandbox` serve simulators in the same process) keep a thread
    // per core.
    let runtime = match cli.command {
        Command::Run { .. } => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build();
    match runtime {
        Ok(rt) => rt.block_on(run(cli)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> std::process::ExitCode {
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(args).await,
        Command::Run { config, once } => cmd::run::run(&config, once).await,
        Command::Check { config } => cmd::check::run(&config).await,
        Command::Config { config } => cmd::config::run(&config),
        Command::Audit(args) => cmd::audit::run(args).await,
        Command::Replay(args) => cmd::replay::run(args).await,
        Command::Backfill(args) => cmd::backfill::run(args).await,
        Command::Secrets { config, action } => cmd::secrets::run(config.as_deref(), action),
        Command::Map { config, action } => cmd::map::run(config.as_deref(), action).await,
        Command::Sandbox(args) => cmd::sandbox::run(args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // Errors may quote a server or the source data: no raw control characters.
            eprintln!(
                "error: {}",
                mlc_cli::output::for_terminal_lines(&describe(&e))
            );
            if let Some(fix) = fix_for(&e) {
                eprintln!("  fix: {}", mlc_cli::output::for_terminal(&fix));
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each said once: a cause whose text its parent already quotes (a
/// `thiserror` message that embeds its source) is not repeated.
fn describe(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if parts.last().is_some_and(|p| p.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

/// What the operator can do about an error, where the program knows.
fn fix_for(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(|cause| {
        match cause.downcast_ref::<mlc_shared::ports::SecretError>()? {
            mlc_shared::ports::SecretError::NotFound(name) => Some(format!(
                "store it with `mlc secrets set {name} --config <your config>` (the value is read from standard input)"
            )),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every option and argument of every command says what it is for in `--help`.
    #[test]
    fn every_option_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "mlc", &mut missing);
        assert!(missing.is_empty(), "options without help: {missing:?}");
    }
}
