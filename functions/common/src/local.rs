//! Running the functions away from AWS: a stack of the contract's queues, tables and secrets on
//! a local emulator (moto), for `mlc-aws-local`, the handler tests and the benchmark.

use std::time::Duration;

use mlc_shared::adapters::aws::{AwsSettings, ensure_resources};

/// An SDK configuration for a local emulator at `endpoint` (moto): region us-east-1 and
/// throw-away credentials, without touching the process environment.
pub async fn emulator_sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "emulator",
        ))
        .load()
        .await
}

/// Creates (where absent) the queues and tables of a stack named `prefix` on the SDK's endpoint,
/// and returns its settings with the queue URLs SQS gave.
pub async fn stack(
    sdk: &aws_config::SdkConfig,
    prefix: &str,
    visibility_timeout: Duration,
) -> anyhow::Result<AwsSettings> {
    ensure_resources(
        &aws_sdk_sqs::Client::new(sdk),
        &aws_sdk_dynamodb::Client::new(sdk),
        &AwsSettings::local(prefix),
        visibility_timeout,
    )
    .await
    .map_err(|e| anyhow::anyhow!("creating the local stack '{prefix}': {e}"))
}

/// Stores a secret under the stack's prefix (creates it, or puts a new value).
pub async fn put_secret(
    sdk: &aws_config::SdkConfig,
    settings: &AwsSettings,
    name: &str,
    value: &str,
) -> anyhow::Result<()> {
    let sm = aws_sdk_secretsmanager::Client::new(sdk);
    let id = format!("{}{name}", settings.secret_prefix);
    let created = sm
        .create_secret()
        .name(&id)
        .secret_string(value)
        .send()
        .await;
    if created.is_err() {
        sm.put_secret_value()
            .secret_id(&id)
            .secret_string(value)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "storing secret '{id}': {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                )
            })?;
    }
    Ok(())
}

/// Creates (where absent) the stack's configuration secret `{secret prefix}mlc-config` holding
/// the placeholder, as the template's `ConfigSecret` does, and returns its ARN
/// (`MLC_CONFIG_SOURCE`).
pub async fn config_secret(
    sdk: &aws_config::SdkConfig,
    settings: &AwsSettings,
) -> anyhow::Result<String> {
    use crate::config_source::{CONFIG_SECRET_NAME, PLACEHOLDER};
    let sm = aws_sdk_secretsmanager::Client::new(sdk);
    let id = format!("{}{CONFIG_SECRET_NAME}", settings.secret_prefix);
    let created = sm
        .create_secret()
        .name(&id)
        .secret_string(PLACEHOLDER)
        .send()
        .await;
    if let Ok(out) = created
        && let Some(arn) = out.arn
    {
        return Ok(arn);
    }
    // It exists already: keep what it holds.
    let described = sm
        .describe_secret()
        .secret_id(&id)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "creating the configuration secret '{id}': {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(e)
            )
        })?;
    described
        .arn
        .ok_or_else(|| anyhow::anyhow!("the configuration secret '{id}' has no ARN"))
}
