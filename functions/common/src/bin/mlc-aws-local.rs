//! `mlc-aws-local [PREFIX]`: creates the AWS runtime's queues and tables on a local emulator
//! (`AWS_ENDPOINT_URL`, e.g. `moto_server -p 5000`) and prints the environment the functions
//! need, as `export` lines. Secrets: `mlc-aws-local PREFIX name=value …` stores them too (these
//! are test values for a local emulator; never pass real secrets on a command line).

use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        anyhow::bail!(
            "AWS_ENDPOINT_URL is not set: this tool is for a local emulator, e.g. AWS_ENDPOINT_URL=http://127.0.0.1:5000"
        );
    }
    let mut args = std::env::args().skip(1);
    let prefix = args.next().unwrap_or_else(|| "mlc-local".into());
    let sdk = mlc_shared::adapters::aws::sdk_config().await;
    let settings = mlc_lambda::local::stack(&sdk, &prefix, Duration::from_secs(60)).await?;
    for pair in args {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("'{pair}' is not name=value"))?;
        mlc_lambda::local::put_secret(&sdk, &settings, name, value).await?;
        eprintln!("stored secret {}{name}", settings.secret_prefix);
    }
    for (k, v) in settings.to_env() {
        println!("export {k}='{v}'");
    }
    Ok(())
}
