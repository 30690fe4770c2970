//! The secrets contract, reading: a stored value comes back and is never shown; a missing one is
//! `NotFound` by its name.

use mlc_shared::ports::{SecretError, Secrets};

use crate::SecretsFixture;

pub async fn get_returns_the_stored_value_never_shown<F: SecretsFixture>() {
    let f = F::with(&[("bc-client-secret", "s3cr3t-v1")]).await;
    let secrets = f.secrets();
    let value = secrets.get("bc-client-secret").await.unwrap();
    assert_eq!(value.expose(), "s3cr3t-v1");
    let shown = format!("{value:?} {value} {secrets:?}");
    assert!(!shown.contains("s3cr3t"), "{shown}");
}

pub async fn a_missing_secret_is_not_found_by_its_name<F: SecretsFixture>() {
    let f = F::with(&[("bc-client-secret", "s3cr3t-v1")]).await;
    match f.secrets().get("coupa-webhook-secret").await {
        Err(SecretError::NotFound(name)) => assert_eq!(name, "coupa-webhook-secret"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}
