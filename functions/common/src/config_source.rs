//! Where the functions' configuration comes from, and keeping it current in a warm environment.
//!
//! The configuration of a deployment with several integrations and their mapping tables does
//! not fit in Lambda's 4 KB of environment, so the stack owns a Secrets Manager secret that
//! holds it (`MLC_CONFIG_SOURCE`, the secret's ARN or name; up to 64 KiB), written by
//! `mlc-aws-local upload-config`. `MLC_CONFIG` (the configuration itself) is the fallback for
//! stacks deployed before, small deployments and the tests. Which one wins
//! (`docs/aws-runtime.md`, "Configuration"):
//!
//! 1. `MLC_CONFIG_SOURCE` set and its secret holds a configuration → that one (a non-empty
//!    `MLC_CONFIG` beside it is ignored, with a warning on every read);
//! 2. otherwise (no source, or the stack's placeholder: nothing uploaded yet) → `MLC_CONFIG`;
//! 3. neither → an error naming both.
//!
//! A secret that cannot be read is an error, never a silent fall back to `MLC_CONFIG`: the
//! environment may hold an older configuration than the one uploaded.
//!
//! [`LiveContext`] re-reads the configuration after the secrets' TTL (`MLC_SECRET_TTL_SECS`)
//! and rebuilds the [`Context`] when the text changed, so an upload reaches warm functions as a
//! rotated secret does.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use mlc_shared::adapters::aws::{AwsSettings, sdk_config};
use mlc_shared::config::Config;

use crate::Context;

/// The configuration itself (the fallback; stacks deployed before the configuration secret).
pub const CONFIG_ENV: &str = "MLC_CONFIG";
/// The ARN (or name) of the Secrets Manager secret that holds the configuration.
pub const CONFIG_SOURCE_ENV: &str = "MLC_CONFIG_SOURCE";
/// The configuration secret's name under the stack's `SecretPrefix` (infra/template.yaml
/// `ConfigSecret`); a configuration must not name a secret of its own so.
pub const CONFIG_SECRET_NAME: &str = "mlc-config";
/// Secrets Manager's limit on a secret value (65,536 bytes).
pub const MAX_CONFIG_BYTES: usize = 65_536;
/// What the stack (and `mlc-aws-local`) put in the configuration secret when creating it. Any
/// text without TOML content (blank and comment lines only) counts as "nothing uploaded".
pub const PLACEHOLDER: &str = "# No configuration uploaded yet: run `mlc-aws-local upload-config mlc.toml --secret <ConfigSecretArn>`.\n";

/// True when `text` holds nothing but blank lines and comments (the placeholder).
pub fn is_placeholder(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#')
    })
}

/// Parses and checks `text` as a configuration the functions can run: [`Config::parse`], not
/// blank, and within Secrets Manager's size limit. The error says what is wrong.
pub fn validate(text: &str) -> anyhow::Result<Config> {
    if is_placeholder(text) {
        anyhow::bail!("it holds no configuration (only blank lines and comments)");
    }
    if text.len() > MAX_CONFIG_BYTES {
        anyhow::bail!(
            "it is {} bytes; a Secrets Manager secret holds at most {MAX_CONFIG_BYTES}",
            text.len()
        );
    }
    Config::parse(text).map_err(|e| anyhow::anyhow!("it is not a valid configuration: {e}"))
}

/// The stack's configuration secret.
#[derive(Clone, Debug)]
pub struct ConfigStore {
    client: Client,
    secret_id: String,
}

impl ConfigStore {
    /// The secret `secret_id` (ARN or name).
    pub fn new(client: Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
        }
    }

    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    /// The stored configuration text; `None` while the secret holds the placeholder.
    pub async fn read(&self) -> anyhow::Result<Option<String>> {
        let id = &self.secret_id;
        let out = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "reading the configuration secret '{id}' ({CONFIG_SOURCE_ENV}): {}",
                    DisplayErrorContext(&e)
                )
            })?;
        let text = out.secret_string.ok_or_else(|| {
            anyhow::anyhow!("the configuration secret '{id}' has no SecretString (it is binary)")
        })?;
        Ok((!is_placeholder(&text)).then_some(text))
    }

    /// Validates `text` ([`validate`]) and stores it as the secret's new value. Nothing is
    /// written when it is invalid. The secret must exist: the stack owns it (a secret created
    /// here would make the next deploy fail on its name).
    pub async fn upload(&self, text: &str) -> anyhow::Result<Config> {
        let config = validate(text)?;
        let id = &self.secret_id;
        self.client
            .put_secret_value()
            .secret_id(id)
            .secret_string(text)
            .send()
            .await
            .map_err(|e| {
                let missing = e
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception());
                if missing {
                    anyhow::anyhow!(
                        "the configuration secret '{id}' does not exist: the stack creates it \
                         (stack output ConfigSecretArn), so deploy first"
                    )
                } else {
                    anyhow::anyhow!(
                        "writing the configuration secret '{id}': {}",
                        DisplayErrorContext(&e)
                    )
                }
            })?;
        Ok(config)
    }
}

/// Where a loaded configuration came from (for logs and errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Secret(String),
    Env,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Secret(id) => write!(f, "the configuration secret '{id}'"),
            Origin::Env => f.write_str(CONFIG_ENV),
        }
    }
}

/// A configuration read, with its text (to notice a change) and where it came from.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub text: String,
    pub origin: Origin,
}

/// The configuration secret (if any) and `MLC_CONFIG` (if set and not blank).
#[derive(Clone, Debug)]
pub struct ConfigSource {
    store: Option<ConfigStore>,
    env_text: Option<String>,
}

impl ConfigSource {
    pub fn new(store: Option<ConfigStore>, env_text: Option<String>) -> Self {
        let env_text = env_text.filter(|t| !t.trim().is_empty());
        Self { store, env_text }
    }

    /// From `MLC_CONFIG_SOURCE` and `MLC_CONFIG` (an empty variable counts as unset: the
    /// template sets both, `MLC_CONFIG` from the optional `ConnectorConfig`).
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Self {
        let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let store = var(CONFIG_SOURCE_ENV).map(|id| ConfigStore::new(Client::new(sdk), id.trim()));
        Self::new(store, var(CONFIG_ENV))
    }

    /// Reads the configuration by the precedence in the module comment.
    pub async fn load(&self) -> anyhow::Result<Loaded> {
        let stored = match &self.store {
            Some(store) => store.read().await?.map(|t| (t, store.secret_id())),
            None => None,
        };
        let (text, origin) = match (stored, &self.env_text) {
            (Some((text, id)), env) => {
                if env.is_some() {
                    tracing::warn!(
                        secret = id,
                        "{CONFIG_ENV} is set but ignored: the configuration secret holds the \
                         configuration (clear the stack's ConnectorConfig parameter)"
                    );
                }
                (text, Origin::Secret(id.to_string()))
            }
            (None, Some(text)) => (text.clone(), Origin::Env),
            (None, None) => {
                return Err(match &self.store {
                    Some(store) => anyhow::anyhow!(
                        "no configuration: the configuration secret '{}' ({CONFIG_SOURCE_ENV}) \
                         holds none yet (upload one with `mlc-aws-local upload-config`) and \
                         {CONFIG_ENV} is empty",
                        store.secret_id()
                    ),
                    None => anyhow::anyhow!(
                        "no configuration: neither {CONFIG_SOURCE_ENV} (the configuration \
                         secret) nor {CONFIG_ENV} (the configuration itself) is set"
                    ),
                });
            }
        };
        let config = Config::parse(&text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        Ok(Loaded {
            config,
            text,
            origin,
        })
    }
}

/// The [`Context`] of a warm execution environment, rebuilt when the configuration changes.
///
/// The configuration is re-read once the secrets' TTL has passed since the last read (a failed
/// read waits a TTL too, so a throttled Secrets Manager is not asked on every invocation). An
/// unchanged text keeps the context (its connections, tokens, cached secrets); a changed one
/// builds a new context (systems, mapping rows loaded again). A configuration that cannot be
/// read or built is logged and the previous context stays: a bad edit does not stop a running
/// deployment (a cold start with it fails, loudly).
pub struct LiveContext {
    source: ConfigSource,
    settings: AwsSettings,
    sdk: aws_config::SdkConfig,
    current: tokio::sync::Mutex<Current>,
}

struct Current {
    ctx: Arc<Context>,
    text: String,
    read_at: Instant,
}

impl LiveContext {
    /// From the function's environment (`docs/aws-runtime.md`): the configuration source, the
    /// queue URLs, table names, secret prefix and TTL.
    pub async fn from_env() -> anyhow::Result<Self> {
        let settings = AwsSettings::from_env().map_err(|e| anyhow::anyhow!(e))?;
        let sdk = sdk_config().await;
        Self::new(ConfigSource::from_env(&sdk), settings, sdk).await
    }

    pub async fn new(
        source: ConfigSource,
        settings: AwsSettings,
        sdk: aws_config::SdkConfig,
    ) -> anyhow::Result<Self> {
        let loaded = source.load().await?;
        tracing::info!(from = %loaded.origin, "configuration read");
        let ctx = Context::new(loaded.config, settings.clone(), &sdk)
            .await
            .with_context(|| format!("building the functions' context from {}", loaded.origin))?;
        Ok(Self {
            source,
            settings,
            sdk,
            current: tokio::sync::Mutex::new(Current {
                ctx: Arc::new(ctx),
                text: loaded.text,
                read_at: Instant::now(),
            }),
        })
    }

    /// The context for this invocation: the current one, re-read first when its TTL is over.
    pub async fn current(&self) -> Arc<Context> {
        let mut cur = self.current.lock().await;
        if cur.read_at.elapsed() < self.settings.secret_ttl {
            return cur.ctx.clone();
        }
        cur.read_at = Instant::now();
        let loaded = match self.source.load().await {
            Ok(loaded) if loaded.text == cur.text => return cur.ctx.clone(),
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "re-reading the configuration failed; keeping the one read before"
                );
                return cur.ctx.clone();
            }
        };
        match Context::new(loaded.config, self.settings.clone(), &self.sdk).await {
            Ok(ctx) => {
                tracing::info!(from = %loaded.origin, "configuration changed; context rebuilt");
                cur.ctx = Arc::new(ctx);
                cur.text = loaded.text;
            }
            Err(e) => tracing::error!(
                from = %loaded.origin,
                error = format!("{e:#}"),
                "the changed configuration could not be used; keeping the one read before"
            ),
        }
        cur.ctx.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_placeholder_and_blank_texts_are_nothing_uploaded() {
        assert!(is_placeholder(PLACEHOLDER));
        assert!(is_placeholder(""));
        assert!(is_placeholder("  \n# a comment\n\t# another\n"));
        assert!(!is_placeholder("# header\n[systems.coupa]\n"));
    }

    #[test]
    fn validation_names_what_is_wrong() {
        let err = validate(PLACEHOLDER).unwrap_err().to_string();
        assert!(err.contains("no configuration"), "{err}");
        let err = validate("[[integrations]\n").unwrap_err().to_string();
        assert!(err.contains("not a valid configuration"), "{err}");
        let big = format!("# {}\n[systems]\n", "x".repeat(MAX_CONFIG_BYTES));
        let err = validate(&big).unwrap_err().to_string();
        assert!(err.contains("at most 65536"), "{err}");
    }

    #[test]
    fn the_example_configuration_is_valid_and_fits_the_secret() {
        let text = include_str!("../../../infra/config.example.toml");
        let config = validate(text).unwrap();
        assert!(!config.integrations.is_empty());
    }

    #[test]
    fn a_blank_environment_variable_is_unset() {
        let source = ConfigSource::new(None, Some("  \n".into()));
        assert!(source.env_text.is_none());
    }
}
