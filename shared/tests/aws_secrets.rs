//! `SecretsManagerSecrets` against the moto server, over the real Secrets Manager SDK: its
//! cache, which only this adapter has. Reading a secret, found or not, is the contract's
//! (`tests/contract/secrets.rs`).
#![cfg(feature = "aws")]

mod common;

use std::time::Duration;

use common::moto::{sdk_config, unique};
use mlc_shared::adapters::aws::SecretsManagerSecrets;
use mlc_shared::ports::{PutOutcome, SecretString, SecretVersion, Secrets};

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

fn written(outcome: PutOutcome) -> SecretVersion {
    match outcome {
        PutOutcome::Written(v) => v,
        PutOutcome::Conflict => panic!("expected the write to land, got a conflict"),
    }
}

/// The premise of the compare-and-set: moving AWSCURRENT names the version it is taken from,
/// and the emulator refuses the move when the label is no longer there.
#[tokio::test]
async fn moto_refuses_to_move_awscurrent_from_a_version_that_lost_it() {
    let (client, secrets) = setup("rt-1", Duration::from_secs(300)).await;
    let id = secrets.secret_id("bc-client-secret");
    let (_, v1) = secrets.get_versioned("bc-client-secret").await.unwrap();
    rotate(&client, &id, "rt-2").await; // AWSCURRENT is now on another version.
    let staged = client
        .put_secret_value()
        .secret_id(&id)
        .secret_string("rt-3")
        .version_stages("MLCPENDING")
        .send()
        .await
        .unwrap();
    let err = client
        .update_secret_version_stage()
        .secret_id(&id)
        .version_stage("AWSCURRENT")
        .move_to_version_id(staged.version_id().unwrap())
        .remove_from_version_id(v1.as_str())
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_invalid_parameter_exception()),
        "{err:?}"
    );
}

#[tokio::test]
async fn put_if_at_the_current_version_writes_and_refreshes_the_cache() {
    let (_client, secrets) = setup("rt-1", Duration::from_secs(300)).await;
    assert_eq!(
        secrets.get("bc-client-secret").await.unwrap().expose(),
        "rt-1"
    );
    let (value, v1) = secrets.get_versioned("bc-client-secret").await.unwrap();
    assert_eq!(value.expose(), "rt-1");
    let v2 = written(
        secrets
            .put_if("bc-client-secret", Some(&v1), &SecretString::new("rt-2"))
            .await
            .unwrap(),
    );
    assert_ne!(v1, v2);
    // The cache (TTL 5 minutes) holds the written value, not the one read before.
    assert_eq!(
        secrets.get("bc-client-secret").await.unwrap().expose(),
        "rt-2"
    );
    // A reader with no cache sees it as AWSCURRENT, at the version put_if returned.
    let other = SecretsManagerSecrets::new(
        sdk_client().await,
        secrets.secret_id(""),
        Duration::from_secs(300),
    );
    assert_eq!(
        other.get("bc-client-secret").await.unwrap().expose(),
        "rt-2"
    );
    let (value, seen) = other.get_versioned("bc-client-secret").await.unwrap();
    assert_eq!((value.expose(), &seen), ("rt-2", &v2));
    // And the next write chains from it.
    written(
        other
            .put_if("bc-client-secret", Some(&v2), &SecretString::new("rt-3"))
            .await
            .unwrap(),
    );
    assert_eq!(
        secrets
            .get_versioned("bc-client-secret")
            .await
            .unwrap()
            .0
            .expose(),
        "rt-3"
    );
}

#[tokio::test]
async fn put_if_at_a_stale_version_writes_nothing_and_drops_the_cached_value() {
    let (client, secrets) = setup("rt-1", Duration::from_secs(300)).await;
    let (_, v1) = secrets.get_versioned("bc-client-secret").await.unwrap();
    // Someone else rotates it; our cache still says rt-1.
    rotate(&client, &secrets.secret_id("bc-client-secret"), "rt-other").await;
    assert_eq!(
        secrets.get("bc-client-secret").await.unwrap().expose(),
        "rt-1"
    );
    let outcome = secrets
        .put_if("bc-client-secret", Some(&v1), &SecretString::new("rt-mine"))
        .await
        .unwrap();
    assert_eq!(outcome, PutOutcome::Conflict);
    // Nothing of ours became current, and the stale cached value is gone.
    assert_eq!(
        secrets.get("bc-client-secret").await.unwrap().expose(),
        "rt-other"
    );
}

#[tokio::test]
async fn put_if_absent_creates_once() {
    let (_client, secrets) = setup("unused", Duration::from_secs(300)).await;
    let v = written(
        secrets
            .put_if("concur-token", None, &SecretString::new("rt-1"))
            .await
            .unwrap(),
    );
    assert_eq!(
        secrets
            .put_if("concur-token", None, &SecretString::new("rt-2"))
            .await
            .unwrap(),
        PutOutcome::Conflict
    );
    let (value, seen) = secrets.get_versioned("concur-token").await.unwrap();
    assert_eq!((value.expose(), &seen), ("rt-1", &v));
}

#[tokio::test]
async fn of_concurrent_writers_from_one_version_exactly_one_wins() {
    let (_client, secrets) = setup("rt-0", Duration::from_secs(300)).await;
    let (_, v0) = secrets.get_versioned("bc-client-secret").await.unwrap();
    let writers: Vec<_> = (0..6)
        .map(|i| {
            let (secrets, v0) = (secrets.clone(), v0.clone());
            tokio::spawn(async move {
                let value = SecretString::new(format!("rt-{i}"));
                (
                    i,
                    secrets.put_if("bc-client-secret", Some(&v0), &value).await,
                )
            })
        })
        .collect();
    let mut winners = Vec::new();
    for w in writers {
        let (i, outcome) = w.await.unwrap();
        // A lost race is a conflict (or, if the emulator's check-and-move interleaves, an
        // error), never a second success.
        if let Ok(PutOutcome::Written(_)) = outcome {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let (value, _) = secrets.get_versioned("bc-client-secret").await.unwrap();
    assert_eq!(value.expose(), format!("rt-{}", winners[0]));
}

async fn sdk_client() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&sdk_config().await)
}
