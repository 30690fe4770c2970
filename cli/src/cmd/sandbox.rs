//! `mlc sandbox`: every registered scenario's simulators (`mlc_sandbox::scenarios::all`), seeded,
//! with their URLs and credentials and one configuration for all of them.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Arg, ArgMatches, Command, FromArgMatches, value_parser};
use mlc_sandbox::scenarios::{self, Listen};

/// The registry's configuration and secrets helpers, for the tests and benchmarks that start
/// the simulators themselves.
pub use mlc_sandbox::scenarios::{config_toml, store_secrets};

/// `--<simulator> <ADDR>` for every simulator of the registry, and `--invoices`.
pub struct Args {
    listen: Listen,
    invoices: usize,
}

impl FromArgMatches for Args {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let listen = scenarios::simulators()
            .into_iter()
            .filter_map(|sim| Some((sim.name, *m.get_one::<SocketAddr>(sim.name)?)))
            .collect();
        let invoices = m.get_one::<usize>("invoices").copied().unwrap_or(30);
        Ok(Args { listen, invoices })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

/// `<NAME>` for `--name`, as `#[derive(clap::Args)]` names a field's value. The command is
/// built once per process, so leaking these few bytes is harmless.
fn value_name(flag: &str) -> &'static str {
    Box::leak(flag.to_uppercase().into_boxed_str())
}

impl clap::Args for Args {
    fn augment_args(cmd: Command) -> Command {
        scenarios::simulators()
            .into_iter()
            .fold(cmd, |cmd, sim| {
                cmd.arg(
                    Arg::new(sim.name)
                        .long(sim.name)
                        .value_name(value_name(sim.name))
                        .help(format!("Where the {} simulator listens", sim.name))
                        .value_parser(value_parser!(SocketAddr))
                        .default_value(sim.default_addr),
                )
            })
            .arg(
                Arg::new("invoices")
                    .long("invoices")
                    .help("Approved invoices to seed")
                    .value_name("INVOICES")
                    .value_parser(value_parser!(usize))
                    .default_value("30"),
            )
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

/// Ready-to-paste `mlc secrets set` lines for every secret the sandboxes' configuration names.
fn secret_commands(sandboxes: &[Box<dyn scenarios::Sandbox>]) -> anyhow::Result<Vec<String>> {
    let lines = std::cell::RefCell::new(Vec::new());
    for sandbox in sandboxes {
        sandbox.store_secrets(&|name, value| {
            // Single-quoted for the shell; simulator values hold no quote, but stay safe.
            let quoted = value.replace('\'', r"'\''");
            lines.borrow_mut().push(format!(
                "printf '%s' '{quoted}' | mlc secrets set {name} --config mlc.toml"
            ));
            Ok(())
        })?;
    }
    Ok(lines.into_inner())
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let mut sandboxes = Vec::new();
    for scenario in scenarios::all() {
        let mut sandbox = scenario.start(&a.listen).await?;
        sandbox.seed(a.invoices);
        sandboxes.push(sandbox);
    }
    for sandbox in &sandboxes {
        for line in sandbox.describe() {
            println!("{line}");
        }
    }
    println!(
        "\nA configuration for these (save as mlc.toml, then `mlc secrets set` each secret it names):\n"
    );
    let fragments: Vec<_> = sandboxes.iter().map(|s| s.config()).collect();
    println!(
        "{}",
        scenarios::merged_config("mlc.sqlite", "mlc.secrets", &fragments)
    );
    println!(
        "Then store the secrets it names (simulator values, printed on purpose; real ones are never printed):\n"
    );
    for line in secret_commands(&sandboxes)? {
        println!("{line}");
    }
    println!(
        "\n(These are simulator credentials, printed on purpose; real ones are never printed.)"
    );
    tokio::signal::ctrl_c().await?;
    Ok(ExitCode::SUCCESS)
}
