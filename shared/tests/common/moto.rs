//! The moto fixture for the AWS adapter tests: an SDK configuration for the one moto server
//! of this test process (`mlc_sandbox::moto`), and a fresh stack of the contract's queues and
//! tables per test.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;
use mlc_shared::adapters::aws::{
    AwsSettings, DynamoStore, SecretsManagerSecrets, SqsQueue, ensure_resources,
};

/// The moto server's URL, starting it on first use.
pub fn url() -> &'static str {
    mlc_sandbox::moto::endpoint()
}

/// An SDK configuration for the moto server: its endpoint, region us-east-1, credentials
/// `testing`/`testing`.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(url())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await
}

/// A fresh name prefix, so tests don't share queues or tables.
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}

/// A fresh set of queues and tables of the contract, on the moto server.
pub struct Stack {
    pub conf: SdkConfig,
    pub settings: AwsSettings,
}

impl Stack {
    /// Creates them; `visibility_timeout` is the main queues'.
    pub async fn new(visibility_timeout: Duration) -> Self {
        let conf = sdk_config().await;
        let wanted = AwsSettings::local(&unique("mlc"));
        let settings = ensure_resources(
            &aws_sdk_sqs::Client::new(&conf),
            &aws_sdk_dynamodb::Client::new(&conf),
            &wanted,
            visibility_timeout,
        )
        .await
        .expect("creating the queues and tables on moto");
        Self { conf, settings }
    }

    pub fn queue(&self) -> SqsQueue {
        SqsQueue::from_conf(&self.conf, &self.settings)
    }

    pub fn store(&self) -> DynamoStore {
        DynamoStore::from_conf(&self.conf, self.settings.tables.clone())
    }

    pub fn secrets(&self, ttl: Duration) -> SecretsManagerSecrets {
        SecretsManagerSecrets::from_conf(
            &self.conf,
            &AwsSettings {
                secret_ttl: ttl,
                ..self.settings.clone()
            },
        )
    }
}
