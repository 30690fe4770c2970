//! The configured system instances (`[systems.<name>]`), each built once into its client and
//! shared by every integration that names it: two integrations posting to two companies of one
//! Business Central environment share one token cache and one request budget.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::basware::{BaswareClient, BaswareSettings, BaswareSource};
use super::business_central::{BcClient, BcSettings};
use super::concur::{ConcurClient, ConcurSettings, ConcurSource};
use super::coupa::{CoupaClient, CoupaSettings};
use super::dynamics_fo::{FoClient, FoSettings};
use super::http::{HttpError, HttpSettings, HttpStats, TokenPersistence, TokenStore};
use super::sap_b1::{B1Client, B1Settings};
use crate::config::{Config, SupplierSync, SystemConfig};
use crate::ports::{SecretError, Secrets, SystemError};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("secret '{name}' (for {what}): {source}")]
    Secret {
        name: String,
        what: String,
        source: SecretError,
    },
    #[error("{what}: {source}")]
    Client { what: String, source: HttpError },
    #[error("system '{0}' is not configured")]
    Unknown(String),
}

/// One system instance's client.
#[derive(Clone)]
pub enum Instance {
    Coupa(CoupaClient),
    BusinessCentral(BcClient),
    SapB1(B1Client),
    FinanceOperations(FoClient),
    Basware(BaswareSource),
    Concur(ConcurSource),
}

impl Instance {
    /// The configuration's name of its type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Instance::Coupa(_) => "coupa",
            Instance::BusinessCentral(_) => "business_central",
            Instance::SapB1(_) => "sap_b1",
            Instance::FinanceOperations(_) => "finance_operations",
            Instance::Basware(_) => "basware",
            Instance::Concur(_) => "concur",
        }
    }

    /// Authenticates and makes one cheap read (`mlc check`): what was found, or why not.
    pub async fn check(&self) -> Result<String, SystemError> {
        match self {
            Instance::Coupa(c) => c.check().await.map_err(Into::into),
            Instance::BusinessCentral(b) => b.check().await.map_err(Into::into),
            Instance::SapB1(b) => b.check().await.map_err(Into::into),
            Instance::FinanceOperations(f) => f.check().await.map_err(Into::into),
            Instance::Basware(b) => b.client.check().await.map_err(Into::into),
            Instance::Concur(c) => c.client.check().await.map_err(Into::into),
        }
    }

    /// Ends its session, where its auth has one (B1 `Logout`, freeing a licence); a no-op for
    /// token-based systems.
    pub async fn logout(&self) -> Result<(), SystemError> {
        match self {
            Instance::SapB1(b) => b.logout().await.map_err(Into::into),
            Instance::Coupa(_)
            | Instance::BusinessCentral(_)
            | Instance::FinanceOperations(_)
            | Instance::Basware(_)
            | Instance::Concur(_) => Ok(()),
        }
    }

    /// Its HTTP client's counters.
    pub fn stats(&self) -> &HttpStats {
        match self {
            Instance::Coupa(c) => c.stats(),
            Instance::BusinessCentral(b) => b.stats(),
            Instance::SapB1(b) => b.stats(),
            Instance::FinanceOperations(f) => f.stats(),
            Instance::Basware(b) => b.client.stats(),
            Instance::Concur(c) => c.client.stats(),
        }
    }
}

/// Every configured instance, by name.
#[derive(Clone, Default)]
pub struct Instances {
    by_name: BTreeMap<String, Instance>,
}

impl Instances {
    /// Builds the client of every configured system, reading its secrets. Access tokens stay
    /// in memory. A system whose credential rotates (a Concur refresh token) keeps a handle on
    /// `secrets` to store each rotated value back (compare-and-set), hence `Clone + 'static`.
    pub async fn from_config<SE: Secrets + Clone + 'static>(
        cfg: &Config,
        secrets: &SE,
    ) -> Result<Self, BuildError> {
        Self::from_config_caching_tokens(cfg, secrets, None).await
    }

    /// As [`Instances::from_config`]; with a `token_store`, each client-credentials system also
    /// keeps its access token there, in the secret `token-cache/<system>`
    /// ([`TokenPersistence::secret_name_for`]), for later processes (the embedded runtime: a
    /// cron `mlc run --once` reuses the last run's token while it is valid).
    pub async fn from_config_caching_tokens<SE: Secrets + Clone + 'static>(
        cfg: &Config,
        secrets: &SE,
        token_store: Option<Arc<dyn TokenStore>>,
    ) -> Result<Self, BuildError> {
        let mut by_name = BTreeMap::new();
        for (name, _) in cfg.systems.iter() {
            let persistence = token_store.as_ref().map(|store| {
                TokenPersistence::new(store.clone(), TokenPersistence::secret_name_for(name))
            });
            by_name.insert(
                name.to_string(),
                Self::build(cfg, name, secrets, persistence).await?,
            );
        }
        Ok(Self { by_name })
    }

    /// Builds the client of one configured system (`mlc check` builds each alone, so one
    /// system's missing secret does not hide another's state). Its token stays in memory:
    /// a check asks for a fresh one.
    pub async fn build_one<SE: Secrets + Clone + 'static>(
        cfg: &Config,
        name: &str,
        secrets: &SE,
    ) -> Result<Instance, BuildError> {
        Self::build(cfg, name, secrets, None).await
    }

    async fn build<SE: Secrets + Clone + 'static>(
        cfg: &Config,
        name: &str,
        secrets: &SE,
        tokens: Option<TokenPersistence>,
    ) -> Result<Instance, BuildError> {
        let secret = |secret_name: &str| {
            let secret_name = secret_name.to_string();
            async move {
                secrets
                    .get(&secret_name)
                    .await
                    .map_err(|source| BuildError::Secret {
                        what: format!("the client secret of system '{name}'"),
                        name: secret_name,
                        source,
                    })
            }
        };
        let client = |source: HttpError| BuildError::Client {
            what: format!("system '{name}'"),
            source,
        };
        let Some(system) = cfg.systems.get(name) else {
            return Err(BuildError::Unknown(name.to_string()));
        };
        match system {
            SystemConfig::Coupa(c) => {
                let settings = CoupaSettings {
                    base_url: c.base_url.clone(),
                    token_url: c.token_url.clone(),
                    client_id: c.client_id.clone(),
                    client_secret: secret(&c.client_secret).await?,
                    scopes: coupa_scopes(cfg, name, &c.scopes),
                    api_version: c.api_version.clone(),
                    requests_per_second: c.requests_per_second,
                    http: HttpSettings {
                        timeout: Duration::from_secs(c.http_timeout_secs.max(1)),
                        ..HttpSettings::default()
                    },
                };
                Ok(Instance::Coupa(
                    CoupaClient::with_token_cache(settings, tokens).map_err(client)?,
                ))
            }
            SystemConfig::BusinessCentral(b) => {
                let settings = BcSettings {
                    api_url: b.api_url.clone(),
                    token_url: b.token_url.clone(),
                    tenant: b.tenant.clone(),
                    environment: b.environment.clone(),
                    // The system's default company; each integration works in its own
                    // (`BcClient::for_company`).
                    company_id: b.company_id.clone().unwrap_or_default(),
                    client_id: b.client_id.clone(),
                    client_secret: secret(&b.client_secret).await?,
                    budget: b.rate.clone().unwrap_or_else(BcSettings::default_budget),
                    page_size: b.page_size,
                    http: HttpSettings {
                        timeout: Duration::from_secs(b.http_timeout_secs.max(1)),
                        ..HttpSettings::default()
                    },
                    look_up_on_first_create: b.look_up_on_first_create,
                };
                Ok(Instance::BusinessCentral(
                    BcClient::with_token_cache(settings, tokens).map_err(client)?,
                ))
            }
            SystemConfig::SapB1(b) => Ok(Instance::SapB1(
                B1Client::new(B1Settings {
                    service_root: b.service_root.clone(),
                    company_db: b.company_db.clone(),
                    user_name: b.user_name.clone(),
                    password: secret(&b.password).await?,
                    expiry_codes: b.session_expiry_codes.clone(),
                    page_size: b.page_size,
                    currencies: b.currencies.clone(),
                    http: HttpSettings {
                        timeout: Duration::from_secs(b.http_timeout_secs.max(1)),
                        accept_invalid_certs: b.accept_self_signed_tls,
                        ..HttpSettings::default()
                    },
                })
                .map_err(client)?,
            )),
            SystemConfig::FinanceOperations(f) => {
                let settings = FoSettings {
                    environment_url: f.environment_url.clone(),
                    api_url: f.api_url.clone(),
                    token_url: f.token_url.clone(),
                    tenant: f.tenant.clone(),
                    client_id: f.client_id.clone(),
                    client_secret: secret(&f.client_secret).await?,
                    budget: f.rate.clone().unwrap_or_else(FoSettings::default_budget),
                    http: HttpSettings {
                        timeout: Duration::from_secs(f.http_timeout_secs.max(1)),
                        ..HttpSettings::default()
                    },
                };
                Ok(Instance::FinanceOperations(
                    FoClient::with_token_cache(settings, tokens).map_err(client)?,
                ))
            }
            SystemConfig::Basware(b) => {
                let settings = BaswareSettings {
                    base_url: b.base_url.clone(),
                    token_url: b.token_url.clone(),
                    client_id: b.client_id.clone(),
                    client_secret: secret(&b.client_secret).await?,
                    scopes: super::basware::scopes_for(b),
                    page_size: b.page_size,
                    requests_per_second: b.requests_per_second,
                    http: HttpSettings {
                        timeout: Duration::from_secs(b.http_timeout_secs.max(1)),
                        ..HttpSettings::default()
                    },
                };
                Ok(Instance::Basware(BaswareSource {
                    client: BaswareClient::with_token_cache(settings, tokens).map_err(client)?,
                    credit_note_types: b.credit_note_types.clone(),
                }))
            }
            SystemConfig::Concur(c) => {
                let settings = ConcurSettings {
                    base_url: c.base_url.clone(),
                    client_id: c.client_id.clone(),
                    client_secret: secret(&c.client_secret).await?,
                    refresh_token_secret: c.refresh_token_secret.clone(),
                    scope: c.scope.clone(),
                    system_id: c.system_id.clone(),
                    page_size: c.page_size,
                    requests_per_second: c.requests_per_second,
                    http: HttpSettings {
                        timeout: Duration::from_secs(c.http_timeout_secs.max(1)),
                        ..HttpSettings::default()
                    },
                };
                // The refresh token lives in the secrets store on every runtime (it rotates:
                // stored back before use), whether or not access tokens are cached there.
                let store: Arc<dyn TokenStore> = Arc::new(secrets.clone());
                Ok(Instance::Concur(ConcurSource {
                    client: ConcurClient::new(settings, store).map_err(client)?,
                }))
            }
        }
    }

    /// An instance built elsewhere (tests that need a client with other settings).
    pub fn insert(&mut self, name: &str, instance: Instance) {
        self.by_name.insert(name.to_string(), instance);
    }

    pub fn get(&self, name: &str) -> Option<&Instance> {
        self.by_name.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Instance)> {
        self.by_name.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Logs every instance out (on shutdown); a failure is logged, never fatal.
    pub async fn logout_all(&self) {
        for (name, instance) in &self.by_name {
            if let Err(e) = instance.logout().await {
                tracing::warn!(system = %name, error = %e, "logout failed");
            }
        }
    }

    /// The Coupa instance `name`, or why not.
    pub fn coupa(&self, name: &str) -> Result<&CoupaClient, String> {
        match self.by_name.get(name) {
            Some(Instance::Coupa(c)) => Ok(c),
            Some(other) => Err(format!(
                "system '{name}' is {}, not coupa",
                other.type_name()
            )),
            None => Err(format!("system '{name}' is not configured")),
        }
    }

    /// The SAP Business One instance `name`, or why not.
    pub fn sap_b1(&self, name: &str) -> Result<&B1Client, String> {
        match self.by_name.get(name) {
            Some(Instance::SapB1(b)) => Ok(b),
            Some(other) => Err(format!(
                "system '{name}' is {}, not sap_b1",
                other.type_name()
            )),
            None => Err(format!("system '{name}' is not configured")),
        }
    }

    /// The F&O instance `name`, or why not.
    pub fn finance_operations(&self, name: &str) -> Result<&FoClient, String> {
        match self.by_name.get(name) {
            Some(Instance::FinanceOperations(f)) => Ok(f),
            Some(other) => Err(format!(
                "system '{name}' is {}, not finance_operations",
                other.type_name()
            )),
            None => Err(format!("system '{name}' is not configured")),
        }
    }

    /// The Basware instance `name`, or why not.
    pub fn basware(&self, name: &str) -> Result<&BaswareSource, String> {
        match self.by_name.get(name) {
            Some(Instance::Basware(b)) => Ok(b),
            Some(other) => Err(format!(
                "system '{name}' is {}, not basware",
                other.type_name()
            )),
            None => Err(format!("system '{name}' is not configured")),
        }
    }

    /// The SAP Concur instance `name`, or why not.
    pub fn concur(&self, name: &str) -> Result<&ConcurSource, String> {
        match self.by_name.get(name) {
            Some(Instance::Concur(c)) => Ok(c),
            Some(other) => Err(format!(
                "system '{name}' is {}, not concur",
                other.type_name()
            )),
            None => Err(format!("system '{name}' is not configured")),
        }
    }

    /// The Business Central instance `name`, or why not.
    pub fn business_central(&self, name: &str) -> Result<&BcClient, String> {
        match self.by_name.get(name) {
            Some(Instance::BusinessCentral(b)) => Ok(b),
            Some(other) => Err(format!(
                "system '{name}' is {}, not business_central",
                other.type_name()
            )),
            None => Err(format!("system '{name}' is not configured")),
        }
    }
}

/// The configured Coupa scopes plus what the integrations' sync settings need (coupa.md §1.1:
/// `service.object.right`; the order and supplier scope names follow that pattern, unconfirmed).
fn coupa_scopes(cfg: &Config, system: &str, configured: &[String]) -> Vec<String> {
    let mut scopes = configured.to_vec();
    for i in cfg
        .integrations
        .iter()
        .filter(|i| i.source.as_deref() == Some(system))
    {
        let s = &i.sync;
        let needed = [
            (s.purchase_orders, "core.purchase_order.read"),
            (s.suppliers != SupplierSync::Off, "core.supplier.read"),
            (s.payments, "core.invoice.write"),
        ];
        for (on, scope) in needed {
            if on && !scopes.iter().any(|x| x == scope) {
                scopes.push(scope.to_string());
            }
        }
    }
    // Integrations writing INTO this Coupa (integration 4) need the write scopes (§1.13.5).
    for i in cfg
        .integrations
        .iter()
        .filter(|i| i.target.as_deref() == Some(system))
    {
        if i.kind == Some(crate::config::IntegrationKind::SapB1ToCoupa) {
            let suppliers = matches!(
                i.sync.suppliers,
                SupplierSync::Create | SupplierSync::BothWays
            )
            .then_some("core.supplier.write");
            // Both ways: Coupa's suppliers are read too (its supplier feed).
            let read = (i.sync.suppliers == SupplierSync::BothWays).then_some("core.supplier.read");
            for scope in ["core.purchase_order.write", "core.invoice.write"]
                .into_iter()
                .chain(suppliers)
                .chain(read)
            {
                if !scopes.iter().any(|x| x == scope) {
                    scopes.push(scope.to_string());
                }
            }
        }
    }
    scopes
}
