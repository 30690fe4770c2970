//! Secrets over AWS Secrets Manager, cached in the warm environment.
//!
//! A secret named `bc-client-secret` in the configuration is the `SecretString` of the secret
//! `{prefix}bc-client-secret`. A read value is served from memory for the TTL, then read again,
//! so a rotated secret is picked up within one TTL. Values never appear in `Debug` or errors.
//!
//! Compare-and-set ([`Secrets::put_if`]): Secrets Manager has no conditional `PutSecretValue`,
//! but moving a staging label is conditional. A write first stores the value as a new version
//! labelled [`PENDING_STAGE`] only (so no reader sees it), then `UpdateSecretVersionStage`
//! moves `AWSCURRENT` to it with `RemoveFromVersionId` = the expected version. The service
//! refuses the move (InvalidParameterException) when `AWSCURRENT` is no longer on that version,
//! i.e. when someone else wrote since our read: that is the conflict. The losing version keeps
//! only the pending label until the next write takes it, and a version without labels is
//! deprecated and cleaned up by the service. Doubt: AWS documents the refusal ("if the label is
//! attached and … the version ID does not match, then the operation fails") but not that the
//! check and the move are one atomic step under concurrent calls; moto 5.2.5 enforces the check
//! (tests/aws_secrets.rs), and a lost race there fails the call instead of succeeding twice.
//!
//! Every write is a new secret version. The service removes surplus versions (past 100) only
//! once they are a day old and advises at most one write per ten minutes: fine for tokens that
//! rotate hourly, not for a value written on every call.
//!
//! Reads name the `AWSCURRENT` stage explicitly: moto answers an unqualified GetSecretValue with
//! the version of the last PutSecretValue that carried `AWSCURRENT`, not where the label is now.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

use super::AwsSettings;
use crate::ports::{PutOutcome, SecretError, SecretString, SecretVersion, Secrets};

/// The staging label of a version written by [`Secrets::put_if`] before `AWSCURRENT` moves to
/// it. One fixed label, not one per write: the service limits the labels of a secret (20), and
/// a label on a losing version is harmless (the compare names version ids, not this label).
pub const PENDING_STAGE: &str = "MLCPENDING";

const CURRENT_STAGE: &str = "AWSCURRENT";

/// Secrets Manager with a per-name cache. Clones share the client and the cache.
#[derive(Clone)]
pub struct SecretsManagerSecrets {
    client: Client,
    prefix: String,
    ttl: Duration,
    cache: Arc<Mutex<HashMap<String, (SecretString, Instant)>>>,
}

impl fmt::Debug for SecretsManagerSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsManagerSecrets")
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl SecretsManagerSecrets {
    /// Secrets with ids `{prefix}{name}`, each cached for `ttl` once read.
    pub fn new(client: Client, prefix: impl Into<String>, ttl: Duration) -> Self {
        Self {
            client,
            prefix: prefix.into(),
            ttl,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// From an SDK configuration and the settings' prefix and TTL.
    pub fn from_conf(conf: &aws_config::SdkConfig, settings: &AwsSettings) -> Self {
        Self::new(
            Client::new(conf),
            settings.secret_prefix.clone(),
            settings.secret_ttl,
        )
    }

    /// The Secrets Manager id of the secret `name`.
    pub fn secret_id(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn cached(&self, name: &str) -> Option<SecretString> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(name)
            .filter(|(_, read_at)| read_at.elapsed() < self.ttl)
            .map(|(value, _)| value.clone())
    }

    fn remember(&self, name: &str, value: Option<&SecretString>) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        match value {
            Some(v) => cache.insert(name.to_string(), (v.clone(), Instant::now())),
            None => cache.remove(name),
        };
    }

    /// The `AWSCURRENT` value and version, from the service now; refreshes the cache.
    async fn read_current(&self, name: &str) -> Result<(SecretString, SecretVersion), SecretError> {
        let id = self.secret_id(name);
        let out = match self
            .client
            .get_secret_value()
            .secret_id(&id)
            .version_stage(CURRENT_STAGE)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Err(SecretError::NotFound(name.to_string()));
            }
            Err(e) => {
                return Err(SecretError::Backend(format!(
                    "GetSecretValue of '{id}': {}",
                    DisplayErrorContext(&e)
                )));
            }
        };
        let version = out
            .version_id
            .clone()
            .map(SecretVersion::new)
            .ok_or_else(|| {
                SecretError::Backend(format!("GetSecretValue of '{id}' returned no VersionId"))
            })?;
        let value = out.secret_string.map(SecretString::new).ok_or_else(|| {
            SecretError::Backend(format!(
                "secret '{id}' has no SecretString (a binary secret is not supported)"
            ))
        })?;
        self.remember(name, Some(&value));
        Ok((value, version))
    }

    /// `expected` = None: create the secret, unless it exists.
    async fn create_if_absent(
        &self,
        name: &str,
        value: &SecretString,
    ) -> Result<PutOutcome, SecretError> {
        let id = self.secret_id(name);
        match self
            .client
            .create_secret()
            .name(&id)
            .secret_string(value.expose())
            .client_request_token(uuid::Uuid::new_v4().to_string())
            .send()
            .await
        {
            Ok(out) => {
                let version = out.version_id.map(SecretVersion::new).ok_or_else(|| {
                    SecretError::Backend(format!("CreateSecret of '{id}' returned no VersionId"))
                })?;
                self.remember(name, Some(value));
                Ok(PutOutcome::Written(version))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_exists_exception()) =>
            {
                self.remember(name, None);
                Ok(PutOutcome::Conflict)
            }
            Err(e) => Err(SecretError::Backend(format!(
                "CreateSecret of '{id}': {}",
                DisplayErrorContext(&e)
            ))),
        }
    }
}

impl Secrets for SecretsManagerSecrets {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        if let Some(value) = self.cached(name) {
            return Ok(value);
        }
        self.read_current(name).await.map(|(value, _)| value)
    }

    async fn get_versioned(
        &self,
        name: &str,
    ) -> Result<(SecretString, SecretVersion), SecretError> {
        self.read_current(name).await
    }

    async fn put_if(
        &self,
        name: &str,
        expected: Option<&SecretVersion>,
        value: &SecretString,
    ) -> Result<PutOutcome, SecretError> {
        let Some(expected) = expected else {
            return self.create_if_absent(name, value).await;
        };
        let id = self.secret_id(name);
        // Our own version id (ClientRequestToken), so a retried call is idempotent.
        let staged = uuid::Uuid::new_v4().to_string();
        if let Err(e) = self
            .client
            .put_secret_value()
            .secret_id(&id)
            .secret_string(value.expose())
            .client_request_token(&staged)
            .version_stages(PENDING_STAGE)
            .send()
            .await
        {
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception())
            {
                // It was expected at a version, and it is gone: someone else changed it.
                self.remember(name, None);
                return Ok(PutOutcome::Conflict);
            }
            return Err(SecretError::Backend(format!(
                "PutSecretValue of '{id}': {}",
                DisplayErrorContext(&e)
            )));
        }
        match self
            .client
            .update_secret_version_stage()
            .secret_id(&id)
            .version_stage(CURRENT_STAGE)
            .move_to_version_id(&staged)
            .remove_from_version_id(expected.as_str())
            .send()
            .await
        {
            Ok(_) => {
                self.remember(name, Some(value));
                Ok(PutOutcome::Written(SecretVersion::new(staged)))
            }
            // AWSCURRENT is not (or no longer) on `expected`, or `expected` no longer exists.
            Err(e)
                if e.as_service_error().is_some_and(|e| {
                    e.is_invalid_parameter_exception() || e.is_resource_not_found_exception()
                }) =>
            {
                self.remember(name, None);
                // The SDK retries a call whose answer was lost; if the first attempt moved the
                // label, the retry is refused although our version is current. Look.
                match self.read_current(name).await {
                    Ok((value, current)) if current.as_str() == staged => {
                        self.remember(name, Some(&value));
                        Ok(PutOutcome::Written(current))
                    }
                    _ => Ok(PutOutcome::Conflict),
                }
            }
            Err(e) => {
                // Unknown whether the label moved: forget the cached value either way.
                self.remember(name, None);
                Err(SecretError::Backend(format!(
                    "UpdateSecretVersionStage of '{id}': {}",
                    DisplayErrorContext(&e)
                )))
            }
        }
    }
}
