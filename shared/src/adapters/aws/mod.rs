//! AWS adapters: the queues over SQS FIFO, the store (ledger, watermarks, mappings, parking,
//! audit trail) over DynamoDB, secrets over Secrets Manager. Names and shapes follow
//! `docs/aws-runtime.md` (the contract with the functions and the SAM template).
//!
//! Built only with the cargo feature `aws`, so the embedded CLI never compiles the AWS SDK.

mod dynamodb;
mod local;
mod secrets_manager;
mod sqs;

use std::time::Duration;

use aws_config::BehaviorVersion;

pub use dynamodb::DynamoStore;
pub use local::ensure_resources;
pub use secrets_manager::SecretsManagerSecrets;
pub use sqs::SqsQueue;

/// The environment variables of the contract.
pub const INGEST_QUEUE_URL_ENV: &str = "MLC_INGEST_QUEUE_URL";
pub const POST_QUEUE_URL_ENV: &str = "MLC_POST_QUEUE_URL";
pub const INGEST_DLQ_URL_ENV: &str = "MLC_INGEST_DLQ_URL";
pub const POST_DLQ_URL_ENV: &str = "MLC_POST_DLQ_URL";
pub const LEDGER_TABLE_ENV: &str = "MLC_LEDGER_TABLE";
pub const WATERMARKS_TABLE_ENV: &str = "MLC_WATERMARKS_TABLE";
pub const MAPPINGS_TABLE_ENV: &str = "MLC_MAPPINGS_TABLE";
pub const PARKED_TABLE_ENV: &str = "MLC_PARKED_TABLE";
pub const AUDIT_TABLE_ENV: &str = "MLC_AUDIT_TABLE";
pub const SECRET_PREFIX_ENV: &str = "MLC_SECRET_PREFIX";
pub const SECRET_TTL_SECS_ENV: &str = "MLC_SECRET_TTL_SECS";

/// How long a read secret is cached when `MLC_SECRET_TTL_SECS` is not set.
pub const DEFAULT_SECRET_TTL: Duration = Duration::from_secs(300);

/// The DynamoDB tables of the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableNames {
    pub ledger: String,
    pub watermarks: String,
    pub mappings: String,
    pub parked: String,
    pub audit: String,
}

/// Where the AWS runtime's queues, tables and secrets are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsSettings {
    pub ingest_queue_url: String,
    pub post_queue_url: String,
    pub ingest_dlq_url: String,
    pub post_dlq_url: String,
    pub tables: TableNames,
    /// Prepended to a secret's name to get its Secrets Manager id.
    pub secret_prefix: String,
    /// How long a read secret is cached.
    pub secret_ttl: Duration,
}

impl AwsSettings {
    /// Reads the contract's environment variables (`MLC_*_QUEUE_URL`, `MLC_*_DLQ_URL`,
    /// `MLC_*_TABLE`, `MLC_SECRET_PREFIX`, optional `MLC_SECRET_TTL_SECS`). The error names the
    /// variable that is missing or bad.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`AwsSettings::from_env`], reading variables through `var`.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let required = |name: &str| -> Result<String, String> {
            match var(name) {
                Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
                Some(_) => Err(format!("environment variable {name} is empty")),
                None => Err(format!("environment variable {name} is not set")),
            }
        };
        let secret_prefix = var(SECRET_PREFIX_ENV)
            .ok_or_else(|| format!("environment variable {SECRET_PREFIX_ENV} is not set"))?;
        let secret_ttl = match var(SECRET_TTL_SECS_ENV) {
            None => DEFAULT_SECRET_TTL,
            Some(v) if v.trim().is_empty() => DEFAULT_SECRET_TTL,
            Some(v) => Duration::from_secs(v.trim().parse::<u64>().map_err(|_| {
                format!(
                    "environment variable {SECRET_TTL_SECS_ENV} must be a whole number of \
                     seconds, got '{v}'"
                )
            })?),
        };
        Ok(Self {
            ingest_queue_url: required(INGEST_QUEUE_URL_ENV)?,
            post_queue_url: required(POST_QUEUE_URL_ENV)?,
            ingest_dlq_url: required(INGEST_DLQ_URL_ENV)?,
            post_dlq_url: required(POST_DLQ_URL_ENV)?,
            tables: TableNames {
                ledger: required(LEDGER_TABLE_ENV)?,
                watermarks: required(WATERMARKS_TABLE_ENV)?,
                mappings: required(MAPPINGS_TABLE_ENV)?,
                parked: required(PARKED_TABLE_ENV)?,
                audit: required(AUDIT_TABLE_ENV)?,
            },
            secret_prefix,
            secret_ttl,
        })
    }

    /// The environment variables that [`Self::from_env`] reads back into these settings (for
    /// starting functions locally, and the benchmark).
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        vec![
            (INGEST_QUEUE_URL_ENV, self.ingest_queue_url.clone()),
            (POST_QUEUE_URL_ENV, self.post_queue_url.clone()),
            (INGEST_DLQ_URL_ENV, self.ingest_dlq_url.clone()),
            (POST_DLQ_URL_ENV, self.post_dlq_url.clone()),
            (LEDGER_TABLE_ENV, self.tables.ledger.clone()),
            (WATERMARKS_TABLE_ENV, self.tables.watermarks.clone()),
            (MAPPINGS_TABLE_ENV, self.tables.mappings.clone()),
            (PARKED_TABLE_ENV, self.tables.parked.clone()),
            (AUDIT_TABLE_ENV, self.tables.audit.clone()),
            (SECRET_PREFIX_ENV, self.secret_prefix.clone()),
            (SECRET_TTL_SECS_ENV, self.secret_ttl.as_secs().to_string()),
        ]
    }

    /// Settings for a local stack whose every queue and table name starts with `prefix`
    /// (`{prefix}-ingest.fifo`, `{prefix}-ledger`, ...). The queue "URLs" are the bare queue
    /// names until [`ensure_resources`] creates the queues and returns the real URLs.
    pub fn local(prefix: &str) -> Self {
        Self {
            ingest_queue_url: format!("{prefix}-ingest.fifo"),
            post_queue_url: format!("{prefix}-post.fifo"),
            ingest_dlq_url: format!("{prefix}-ingest-dlq.fifo"),
            post_dlq_url: format!("{prefix}-post-dlq.fifo"),
            tables: TableNames {
                ledger: format!("{prefix}-ledger"),
                watermarks: format!("{prefix}-watermarks"),
                mappings: format!("{prefix}-mappings"),
                parked: format!("{prefix}-parked"),
                audit: format!("{prefix}-audit"),
            },
            secret_prefix: format!("{prefix}/"),
            secret_ttl: DEFAULT_SECRET_TTL,
        }
    }
}

/// The SDK configuration from the environment, as every AWS SDK reads it (credentials chain,
/// `AWS_REGION`, `AWS_ENDPOINT_URL` for a local emulator, ...).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn full() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            (INGEST_QUEUE_URL_ENV, "https://sqs/1/ingest.fifo"),
            (POST_QUEUE_URL_ENV, "https://sqs/1/post.fifo"),
            (INGEST_DLQ_URL_ENV, "https://sqs/1/ingest-dlq.fifo"),
            (POST_DLQ_URL_ENV, "https://sqs/1/post-dlq.fifo"),
            (LEDGER_TABLE_ENV, "ledger"),
            (WATERMARKS_TABLE_ENV, "watermarks"),
            (MAPPINGS_TABLE_ENV, "mappings"),
            (PARKED_TABLE_ENV, "parked"),
            (AUDIT_TABLE_ENV, "audit"),
            (SECRET_PREFIX_ENV, "mlc/prod/"),
        ])
    }

    fn read(env: &HashMap<&'static str, &'static str>) -> Result<AwsSettings, String> {
        AwsSettings::from_lookup(|k| env.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn settings_from_the_contract_variables() {
        let s = read(&full()).unwrap();
        assert_eq!(s.post_dlq_url, "https://sqs/1/post-dlq.fifo");
        assert_eq!(s.tables.audit, "audit");
        assert_eq!(s.secret_prefix, "mlc/prod/");
        assert_eq!(s.secret_ttl, DEFAULT_SECRET_TTL);
        let mut env = full();
        env.insert(SECRET_TTL_SECS_ENV, "5");
        assert_eq!(read(&env).unwrap().secret_ttl, Duration::from_secs(5));
    }

    #[test]
    fn settings_survive_a_round_trip_through_the_environment() {
        let s = read(&full()).unwrap();
        let env: HashMap<&str, String> = s.to_env().into_iter().collect();
        let back = AwsSettings::from_lookup(|k| env.get(k).cloned()).unwrap();
        assert_eq!(back.tables.parked, s.tables.parked);
        assert_eq!(back.ingest_dlq_url, s.ingest_dlq_url);
        assert_eq!(back.secret_ttl, s.secret_ttl);
    }

    #[test]
    fn a_missing_or_bad_variable_is_named() {
        let mut env = full();
        env.remove(MAPPINGS_TABLE_ENV);
        assert!(read(&env).unwrap_err().contains("MLC_MAPPINGS_TABLE"));
        let mut env = full();
        env.insert(SECRET_TTL_SECS_ENV, "five");
        assert!(read(&env).unwrap_err().contains("MLC_SECRET_TTL_SECS"));
    }
}
