//! Secrets over AWS Secrets Manager, cached in the warm environment.
//!
//! A secret named `bc-client-secret` in the configuration is the `SecretString` of the secret
//! `{prefix}bc-client-secret`. A read value is served from memory for the TTL, then read again,
//! so a rotated secret is picked up within one TTL. Values never appear in `Debug` or errors.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

use super::AwsSettings;
use crate::ports::{SecretError, SecretString, Secrets};

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
}

impl Secrets for SecretsManagerSecrets {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        if let Some(value) = self.cached(name) {
            return Ok(value);
        }
        let id = self.secret_id(name);
        let out = match self.client.get_secret_value().secret_id(&id).send().await {
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
        let value = out.secret_string.map(SecretString::new).ok_or_else(|| {
            SecretError::Backend(format!(
                "secret '{id}' has no SecretString (a binary secret is not supported)"
            ))
        })?;
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), (value.clone(), Instant::now()));
        Ok(value)
    }
}
