use std::sync::Arc;

use anyhow::Context as _;
use mlc_shared::adapters::aws::{AwsSettings, DynamoStore, SecretsManagerSecrets, SqsQueue};
use mlc_shared::config::Config;
use mlc_shared::ports::SystemClock;
use mlc_shared::runtime::Pipeline;
use mlc_shared::steps::Env;

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
        // The same builder as `mlc`: clients, one flow per integration, the configuration's
        // mapping rows (loaded on every cold start, as `mlc` does at start). Access tokens stay
        // in memory (no token store): a warm instance keeps them, and Secrets Manager is not
        // written for a cache.
        let env = Env::new(queue, store, SystemClock);
        let owner = format!("lambda-{}", uuid::Uuid::new_v4().simple());
        let pipeline = Arc::new(
            Pipeline::build(&config, env, &secrets, owner, None)
                .await
                .context("building the pipeline")?,
        );
        Ok(Self {
            config,
            settings,
            secrets,
            pipeline,
        })
    }
}
