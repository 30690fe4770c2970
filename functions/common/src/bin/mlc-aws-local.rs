//! The AWS side of `mlc`:
//!
//! * `mlc-aws-local [PREFIX] [name=value …]`: creates the AWS runtime's queues, tables and
//!   configuration secret on a local emulator (`AWS_ENDPOINT_URL`, e.g. `moto_server -p 5000`)
//!   and prints the environment the functions need, as `export` lines. `name=value` pairs are
//!   stored as secrets too (test values for a local emulator; never pass real secrets on a
//!   command line).
//! * `mlc-aws-local upload-config FILE [--secret ID]`: checks FILE as a configuration and
//!   writes it to the stack's configuration secret (ID = the stack output `ConfigSecretArn`;
//!   default `$MLC_CONFIG_SOURCE`). Works against AWS (the usual credentials and region) or the
//!   emulator. An invalid FILE is refused with the parse error and nothing is written.

use std::time::Duration;

use anyhow::Context as _;
use mlc_lambda::config_source::{CONFIG_SOURCE_ENV, ConfigStore};

const USAGE: &str = "usage:
  mlc-aws-local [PREFIX] [name=value ...]           local emulator stack (needs AWS_ENDPOINT_URL)
  mlc-aws-local upload-config FILE [--secret ID]    upload a configuration (ID default: $MLC_CONFIG_SOURCE)";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some("upload-config") => upload_config(&args[1..]).await,
        _ => local_stack(&args).await,
    }
}

async fn upload_config(args: &[String]) -> anyhow::Result<()> {
    let (file, secret) = match args {
        [file] => (file, None),
        [file, flag, id] if flag == "--secret" => (file, Some(id.clone())),
        _ => anyhow::bail!("upload-config takes FILE [--secret ID]\n{USAGE}"),
    };
    let secret = match secret.or_else(|| std::env::var(CONFIG_SOURCE_ENV).ok()) {
        Some(id) if !id.trim().is_empty() => id.trim().to_string(),
        _ => anyhow::bail!(
            "no configuration secret: pass --secret <the stack output ConfigSecretArn> or set \
             {CONFIG_SOURCE_ENV}"
        ),
    };
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    let sdk = mlc_shared::adapters::aws::sdk_config().await;
    let store = ConfigStore::new(aws_sdk_secretsmanager::Client::new(&sdk), &secret);
    let config = store
        .upload(&text)
        .await
        .with_context(|| format!("{file} was not uploaded"))?;
    let names: Vec<&str> = config
        .integrations
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    eprintln!(
        "uploaded {file} ({} bytes, integrations: {}) to {secret}; warm functions pick it up \
         within MLC_SECRET_TTL_SECS",
        text.len(),
        names.join(", ")
    );
    Ok(())
}

async fn local_stack(args: &[String]) -> anyhow::Result<()> {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        anyhow::bail!(
            "AWS_ENDPOINT_URL is not set: this tool is for a local emulator, e.g. AWS_ENDPOINT_URL=http://127.0.0.1:5000"
        );
    }
    let mut args = args.iter();
    let prefix = args.next().map_or("mlc-local", String::as_str);
    let sdk = mlc_shared::adapters::aws::sdk_config().await;
    let settings = mlc_lambda::local::stack(&sdk, prefix, Duration::from_secs(60)).await?;
    let config_secret = mlc_lambda::local::config_secret(&sdk, &settings).await?;
    for pair in args {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("'{pair}' is not name=value\n{USAGE}"))?;
        mlc_lambda::local::put_secret(&sdk, &settings, name, value).await?;
        eprintln!("stored secret {}{name}", settings.secret_prefix);
    }
    for (k, v) in settings.to_env() {
        println!("export {k}='{v}'");
    }
    println!("export {CONFIG_SOURCE_ENV}='{config_secret}'");
    Ok(())
}
