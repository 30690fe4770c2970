use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use mlc_shared::adapters::aws::{AwsSettings, DynamoStore, SecretsManagerSecrets, SqsQueue};
use mlc_shared::config::Config;
use mlc_shared::ports::SystemClock;
use mlc_shared::runtime::{Pipeline, Systems, load_config_mappings};
use mlc_shared::steps::Env;
use mlc_shared::systems::http::RetryPolicy;

pub type AwsPipeline = Pipeline<SqsQueue, DynamoStore, SystemClock>;

/// Everything a handler needs, built once per execution environment (outside the handler), so a
/// warm invocation reuses connections, tokens and cached secrets.
pub struct Context {
    pub config: Config,
    pub settings: AwsSettings,
    pub secrets: SecretsManagerSecrets,
    pub pipeline: Arc<AwsPipeline>,
}

impl Context {
    /// A context for `config` (read by [`crate::config_source`]; `LiveContext` rebuilds it when
    /// the configuration changes).
    pub async fn new(
        config: Config,
        settings: AwsSettings,
        sdk: &aws_config::SdkConfig,
    ) -> anyhow::Result<Self> {
        let queue = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), &settings);
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), settings.tables.clone());
        let secrets = SecretsManagerSecrets::new(
            aws_sdk_secretsmanager::Client::new(sdk),
            &settings.secret_prefix,
            settings.secret_ttl,
        );
        // Mapping rows given in the configuration, on every cold start (as `mlc` does at start).
        load_config_mappings(&config, &store)
            .await
            .context("loading the configuration's mapping tables")?;
        let systems = Systems::from_config(&config, &secrets).await?;
        let pipeline = Arc::new(Pipeline {
            env: Env::new(queue, store, SystemClock),
            systems,
            integrations: config.integrations.clone(),
            owner: format!("lambda-{}", uuid::Uuid::new_v4().simple()),
            // The queues' redrive policy: maxReceiveCount 5 (infra/template.yaml).
            max_receives: config.runtime.max_receives,
            retry: RetryPolicy {
                max_attempts: config.runtime.max_receives,
                base_delay: Duration::from_millis(config.runtime.retry_base_delay_ms),
                max_delay: Duration::from_secs(60),
            },
            backoffs: Default::default(),
        });
        Ok(Self {
            config,
            settings,
            secrets,
            pipeline,
        })
    }
}
