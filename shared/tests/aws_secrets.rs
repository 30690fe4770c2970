//! `SecretsManagerSecrets` against the moto server, over the real Secrets Manager SDK: its
//! cache, which only this adapter has. Reading a secret, found or not, is the contract's
//! (`tests/contract/secrets.rs`).
#![cfg(feature = "aws")]

mod common;

use std::time::Duration;

use common::moto::{sdk_config, unique};
use mlc_shared::adapters::aws::SecretsManagerSecrets;
use mlc_shared::ports::Secrets;

/// A client, a fresh prefix, and a secret `bc-client-secret` under it holding `value`.
async fn setup(
    value: &str,
    ttl: Duration,
) -> (aws_sdk_secretsmanager::Client, SecretsManagerSecrets) {
    let conf = sdk_config().await;
    let client = aws_sdk_secretsmanager::Client::new(&conf);
    let secrets = SecretsManagerSecrets::new(client.clone(), format!("{}/", unique("mlc")), ttl);
    client
        .create_secret()
        .name(secrets.secret_id("bc-client-secret"))
        .secret_string(value)
        .send()
        .await
        .unwrap();
    (client, secrets)
}

async fn rotate(client: &aws_sdk_secretsmanager::Client, id: &str, value: &str) {
    client
        .put_secret_value()
        .secret_id(id)
        .secret_string(value)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_cached_value_is_served_within_the_ttl() {
    let (client, secrets) = setup("s3cr3t-v1", Duration::from_secs(300)).await;
    assert_eq!(
        secrets.get("bc-client-secret").await.unwrap().expose(),
        "s3cr3t-v1"
    );
    rotate(&client, &secrets.secret_id("bc-client-secret"), "s3cr3t-v2").await;
    assert_eq!(
        secrets.get("bc-client-secret").await.unwrap().expose(),
        "s3cr3t-v1"
    );
    // The cache is per name and shared by clones.
    let clone = secrets.clone();
    assert_eq!(
        clone.get("bc-client-secret").await.unwrap().expose(),
        "s3cr3t-v1"
    );
}

#[tokio::test]
async fn a_rotated_secret_is_picked_up_after_the_ttl() {
    let (client, secrets) = setup("s3cr3t-v1", Duration::from_secs(1)).await;
    assert_eq!(
        secrets.get("bc-client-secret").await.unwrap().expose(),
        "s3cr3t-v1"
    );
    rotate(&client, &secrets.secret_id("bc-client-secret"), "s3cr3t-v2").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        secrets.get("bc-client-secret").await.unwrap().expose(),
        "s3cr3t-v2"
    );
}
