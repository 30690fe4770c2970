//! The contract on the AWS adapters against the moto server of this test process
//! (`common::moto`): a fresh set of queues and tables per test, and secrets under a fresh
//! prefix. Time is real here: a queue's visibility timeout is waited out with a sleep.

use std::time::Duration;

use mlc_shared::adapters::aws::{DynamoStore, SecretsManagerSecrets, SqsQueue};

use crate::common::moto::{Stack, sdk_config, unique};
use crate::{QueueFixture, SecretsFixture, StoreFixture};

/// Visibility timeout of the queues of a store test (unused there).
const UNUSED_VISIBILITY: Duration = Duration::from_secs(30);

pub struct Queues {
    queue: SqsQueue,
}

impl QueueFixture for Queues {
    type Queue = SqsQueue;

    async fn new(visibility: Duration) -> Self {
        let stack = Stack::new(visibility).await;
        // No long polling: a receive that finds nothing answers at once.
        let queue = stack.queue().with_wait_time(Duration::ZERO);
        Self { queue }
    }

    fn queue(&self) -> &SqsQueue {
        &self.queue
    }

    async fn pass(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

pub struct Stores {
    stack: Stack,
}

impl StoreFixture for Stores {
    type Store = DynamoStore;

    async fn new() -> Self {
        Self {
            stack: Stack::new(UNUSED_VISIBILITY).await,
        }
    }

    /// Its own SDK client on the same tables.
    fn handle(&self) -> DynamoStore {
        self.stack.store()
    }
}

pub struct Secrets {
    secrets: SecretsManagerSecrets,
}

impl SecretsFixture for Secrets {
    type Secrets = SecretsManagerSecrets;

    async fn with(secrets: &[(&str, &str)]) -> Self {
        let conf = sdk_config().await;
        let client = aws_sdk_secretsmanager::Client::new(&conf);
        let under = SecretsManagerSecrets::new(
            client.clone(),
            format!("{}/", unique("mlc")),
            Duration::from_secs(300),
        );
        for (name, value) in secrets {
            client
                .create_secret()
                .name(under.secret_id(name))
                .secret_string(*value)
                .send()
                .await
                .unwrap();
        }
        Self { secrets: under }
    }

    fn secrets(&self) -> &SecretsManagerSecrets {
        &self.secrets
    }
}

contract!(queue: Queues, store: Stores, secrets: Secrets);
