//! The deployment's configuration: one TOML file naming the systems (endpoints, secret names,
//! budgets) and the integrations (mapping rules). Secrets are referenced by NAME only; values
//! live in the secret store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A published request budget: at most `requests` in any `window`, and at most `concurrent` in
/// flight. Pacing to it makes a 429 the exception instead of the way limits are discovered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateBudget {
    pub requests: u32,
    pub window_secs: u64,
    #[serde(default)]
    pub concurrent: Option<usize>,
}

impl RateBudget {
    pub fn per_second(requests: u32) -> Self {
        Self {
            requests,
            window_secs: 1,
            concurrent: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub runtime: RuntimeConfig,
    pub systems: SystemsConfig,
    #[serde(default)]
    pub integrations: Vec<IntegrationConfig>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// The SQLite file holding queues, ledger, watermarks, mappings and the audit trail.
    #[serde(default = "default_database")]
    pub database: PathBuf,
    /// The encrypted secrets file (`mlc secrets set|list|rm`).
    #[serde(default = "default_secrets_file")]
    pub secrets_file: PathBuf,
    /// Where `mlc run` listens for webhooks (e.g. "127.0.0.1:8080"); none: no listener.
    #[serde(default)]
    pub webhook_listen: Option<String>,
    /// The listener speaks TLS with this certificate, and asks clients for certificates from
    /// `client_ca_file` (mutual TLS: SAP Concur's events); none: plain HTTP.
    #[serde(default)]
    pub webhook_tls: Option<WebhookTls>,
    #[serde(default = "default_poll_interval")]
    pub poll_interval_secs: u64,
    /// Documents processed at once.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Deliveries of a message before it goes to the dead-letter queue.
    #[serde(default = "default_max_receives")]
    pub max_receives: u32,
    #[serde(default = "default_visibility")]
    pub visibility_timeout_secs: u64,
    /// First retry delay of a failed message; doubles per delivery (plus up to a quarter, to
    /// spread retries), up to `retry_max_delay_secs`. The defaults (4 min, 5 deliveries) retry
    /// after 4, 8, 16 and 32 minutes: a document rides out an outage of an hour before it is
    /// dead-lettered. (Network blips are retried inside the HTTP call, within seconds.)
    #[serde(default = "default_retry_base")]
    pub retry_base_delay_ms: u64,
    /// The longest wait between two deliveries of a failed message.
    #[serde(default = "default_retry_max_delay")]
    pub retry_max_delay_secs: u64,
    /// A server's `Retry-After` up to this is honoured in full for the message that got it; a
    /// longer one (maintenance, a spent daily quota) backs the whole integration off for the
    /// wait asked, audited, without spending deliveries.
    #[serde(default = "default_max_server_wait")]
    pub max_server_wait_secs: u64,
    /// How often a long-running `mlc run` prints its one-line summary (what moved since the
    /// last one, what waits); 0: never.
    #[serde(default = "default_summary_interval")]
    pub summary_interval_secs: u64,
}

fn default_max_server_wait() -> u64 {
    600
}
fn default_summary_interval() -> u64 {
    900
}

/// The shortest visibility timeout the configuration accepts. A step may take as long as its
/// answers do (the worker renews its message's lease every third of the timeout, and its ledger
/// claim likewise), so what must fit inside one timeout is the longest stretch without a renewal:
/// a third of the timeout plus one renewal, which can itself wait up to 10 s for a busy SQLite
/// file (or for SQS). Below 30 s that margin is gone.
pub const MIN_VISIBILITY_TIMEOUT_SECS: u64 = 30;
/// SQS's maximum visibility timeout (12 hours); the embedded queue keeps the same bound.
pub const MAX_VISIBILITY_TIMEOUT_SECS: u64 = 43_200;

impl RuntimeConfig {
    fn validate(&self) -> Result<(), String> {
        let v = self.visibility_timeout_secs;
        if v < MIN_VISIBILITY_TIMEOUT_SECS {
            return Err(format!(
                "runtime.visibility_timeout_secs = {v} is too short: a worker renews the lease of \
                 the message it holds every third of this timeout, and one renewal can wait up to \
                 10 s for a busy database, so a shorter timeout lets a slow step run on two \
                 workers at once; use at least {MIN_VISIBILITY_TIMEOUT_SECS} (default {})",
                default_visibility()
            ));
        }
        if v > MAX_VISIBILITY_TIMEOUT_SECS {
            return Err(format!(
                "runtime.visibility_timeout_secs = {v} is longer than the {MAX_VISIBILITY_TIMEOUT_SECS} s \
                 (12 hours) a queue allows"
            ));
        }
        if self.workers == 0 {
            return Err("runtime.workers = 0: at least one worker is needed".into());
        }
        if self.max_receives == 0 {
            return Err("runtime.max_receives = 0: a message needs at least one delivery".into());
        }
        Ok(())
    }
}

fn default_database() -> PathBuf {
    "mlc.sqlite".into()
}
fn default_secrets_file() -> PathBuf {
    "mlc.secrets".into()
}
fn default_poll_interval() -> u64 {
    300
}
fn default_workers() -> usize {
    4
}
/// `[runtime.webhook_tls]`: files relative to the configuration file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTls {
    /// The listener's certificate chain (PEM).
    pub cert_file: PathBuf,
    /// Its private key (PEM, PKCS#8 or PKCS#1).
    pub key_file: PathBuf,
    /// CA certificates (PEM) a client certificate is verified against. A client that presents
    /// none is still served (Coupa, BC and Basware have none); one that presents a certificate
    /// not issued by these is refused at the handshake. The verified subject reaches the flow
    /// (`WebhookRequest::client_cert_subject`), which pins the CN it expects.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

fn default_max_receives() -> u32 {
    5
}
fn default_visibility() -> u64 {
    120
}
fn default_retry_base() -> u64 {
    240_000
}
fn default_retry_max_delay() -> u64 {
    3_600
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            database: default_database(),
            secrets_file: default_secrets_file(),
            webhook_listen: None,
            webhook_tls: None,
            poll_interval_secs: default_poll_interval(),
            workers: default_workers(),
            max_receives: default_max_receives(),
            visibility_timeout_secs: default_visibility(),
            retry_base_delay_ms: default_retry_base(),
            retry_max_delay_secs: default_retry_max_delay(),
            max_server_wait_secs: default_max_server_wait(),
            summary_interval_secs: default_summary_interval(),
        }
    }
}

mod sap_b1;
pub use sap_b1::SapB1Config;

/// The named system instances: `[systems.<name>]`, each with a `type`. A table without `type`
/// takes it from its name, so today's `[systems.coupa]` / `[systems.business_central]` load as
/// they are.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(transparent)]
pub struct SystemsConfig(BTreeMap<String, SystemConfig>);

/// One system instance. Adding a system type is one variant here and its config struct.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SystemConfig {
    Coupa(CoupaConfig),
    BusinessCentral(BusinessCentralConfig),
    SapB1(SapB1Config),
    FinanceOperations(FinanceOperationsConfig),
    Basware(BaswareConfig),
    Concur(ConcurConfig),
}

impl SystemConfig {
    /// How long one request to it may take.
    pub fn http_timeout_secs(&self) -> u64 {
        match self {
            Self::Coupa(c) => c.http_timeout_secs,
            Self::BusinessCentral(c) => c.http_timeout_secs,
            Self::SapB1(c) => c.http_timeout_secs,
            Self::FinanceOperations(c) => c.http_timeout_secs,
            Self::Basware(c) => c.http_timeout_secs,
            Self::Concur(c) => c.http_timeout_secs,
        }
    }

    /// The `type` it is configured with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Coupa(_) => "coupa",
            Self::BusinessCentral(_) => "business_central",
            Self::SapB1(_) => "sap_b1",
            Self::FinanceOperations(_) => "finance_operations",
            Self::Basware(_) => "basware",
            Self::Concur(_) => "concur",
        }
    }

    /// Reads `[systems.<name>]`; errors name the system.
    fn from_table(name: &str, mut table: toml::Table) -> Result<Self, String> {
        let legacy = !table.contains_key("type");
        if legacy {
            table.insert("type".into(), name.into());
        }
        toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| {
            let message = e.message();
            // serde says "variant"; the file says "type".
            match message.strip_prefix("unknown variant") {
                Some(rest) if legacy => format!(
                    "systems.{name}: unknown type{rest} (a system without `type` takes its name as its type)"
                ),
                Some(rest) => format!("systems.{name}: unknown type{rest}"),
                None => format!("systems.{name}: {message}"),
            }
        })
    }
}

impl<'de> Deserialize<'de> for SystemsConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Tables;
        impl<'de> serde::de::Visitor<'de> for Tables {
            type Value = SystemsConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table of systems, [systems.<name>]")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut systems = BTreeMap::new();
                while let Some(name) = map.next_key::<String>()? {
                    let config = map.next_value_seed(Named(&name))?;
                    systems.insert(name, config);
                }
                Ok(SystemsConfig(systems))
            }
        }
        d.deserialize_map(Tables)
    }
}

/// Reads one `[systems.<name>]` knowing its name (the type of a table without `type`). Done as
/// the map's value, not after the whole map, so a parse error points at this system's table.
struct Named<'a>(&'a str);

impl<'de> serde::de::DeserializeSeed<'de> for Named<'_> {
    type Value = SystemConfig;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<SystemConfig, D::Error> {
        let table = toml::Table::deserialize(d)?;
        SystemConfig::from_table(self.0, table).map_err(serde::de::Error::custom)
    }
}

impl SystemsConfig {
    pub fn get(&self, name: &str) -> Option<&SystemConfig> {
        self.0.get(name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut SystemConfig> {
        self.0.get_mut(name)
    }

    /// The instances by name, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SystemConfig)> {
        self.0.iter().map(|(n, c)| (n.as_str(), c))
    }

    pub fn insert(&mut self, name: impl Into<String>, config: SystemConfig) {
        self.0.insert(name.into(), config);
    }

    /// Keeps the instances `keep` says yes to (e.g. `mlc check` builds one system at a time).
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &SystemConfig) -> bool) {
        self.0.retain(|n, c| keep(n, c));
    }

    /// The first Coupa instance (in name order): for tests, the sandbox and single-instance
    /// code; integrations resolve theirs with [`Config::resolved`].
    pub fn coupa(&self) -> Option<&CoupaConfig> {
        self.0.values().find_map(|c| match c {
            SystemConfig::Coupa(c) => Some(c),
            _ => None,
        })
    }

    pub fn coupa_mut(&mut self) -> Option<&mut CoupaConfig> {
        self.0.values_mut().find_map(|c| match c {
            SystemConfig::Coupa(c) => Some(c),
            _ => None,
        })
    }

    /// The first Business Central instance (in name order); see [`Self::coupa`].
    pub fn business_central(&self) -> Option<&BusinessCentralConfig> {
        self.0.values().find_map(|c| match c {
            SystemConfig::BusinessCentral(c) => Some(c),
            _ => None,
        })
    }

    pub fn business_central_mut(&mut self) -> Option<&mut BusinessCentralConfig> {
        self.0.values_mut().find_map(|c| match c {
            SystemConfig::BusinessCentral(c) => Some(c),
            _ => None,
        })
    }

    /// The names of the instances of one type.
    fn of_type(&self, type_name: &str) -> Vec<&str> {
        self.iter()
            .filter(|(_, c)| c.type_name() == type_name)
            .map(|(n, _)| n)
            .collect()
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CoupaConfig {
    /// `https://{instance}.coupahost.com`
    pub base_url: String,
    /// Default `{base_url}/oauth2/token`.
    #[serde(default)]
    pub token_url: Option<String>,
    pub client_id: String,
    /// Name of the secret holding the OAuth client secret.
    pub client_secret: String,
    #[serde(default = "default_coupa_scopes")]
    pub scopes: Vec<String>,
    /// Value of `X-COUPA-API-Version` (e.g. the instance release).
    pub api_version: String,
    /// Name of the secret holding the webhook HMAC key; none: webhooks are refused.
    #[serde(default)]
    pub webhook_secret: Option<String>,
    #[serde(default = "default_coupa_rate")]
    pub requests_per_second: u32,
    /// How long one HTTP request may take before it is given up (and, for a write, treated as
    /// "may have succeeded").
    #[serde(default = "default_http_timeout")]
    pub http_timeout_secs: u64,
}

fn default_http_timeout() -> u64 {
    60
}

fn default_coupa_scopes() -> Vec<String> {
    vec!["core.invoice.read".into(), "core.common.read".into()]
}
fn default_coupa_rate() -> u32 {
    25
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessCentralConfig {
    #[serde(default = "default_bc_api_url")]
    pub api_url: String,
    /// Default `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`.
    #[serde(default)]
    pub token_url: Option<String>,
    pub tenant: String,
    pub environment: String,
    /// The company integrations post to when they name none (`company` on the integration).
    #[serde(default)]
    pub company_id: Option<String>,
    pub client_id: String,
    /// Name of the secret holding the Entra client secret.
    pub client_secret: String,
    /// Default 6,000 per 300 s, 5 concurrent; `{ requests = 600, window_secs = 60 }` for the
    /// legacy per-environment limit.
    #[serde(default)]
    pub rate: Option<RateBudget>,
    #[serde(default)]
    pub page_size: Option<usize>,
    /// How long one HTTP request may take before it is given up (a write is then looked for,
    /// never repeated blindly).
    #[serde(default = "default_http_timeout")]
    pub http_timeout_secs: u64,
    /// Whether a first attempt to write an invoice or credit memo also reads BC by natural key
    /// (vendor + vendor invoice number) in the same `$batch` as its create: 4 requests of
    /// budget per invoice instead of 3. Off by default (issue #16: no look-up on a first
    /// attempt; retries, take-overs and unsettled creates always look): a document BC already
    /// holds posted (keyed by hand, or written by another ledger: a move to AWS, a restored
    /// database) is still never doubled, because BC refuses to post a second document with the
    /// vendor's number and the writer then looks, deletes its own draft and takes the posted
    /// one. Turn it on to have a draft keyed by hand completed instead of left beside the new
    /// one (a first run over a company where people keyed drafts).
    #[serde(default)]
    pub look_up_on_first_create: bool,
}

/// `[systems.<name>]` with `type = "basware"` (`basware.md` §3.1–§3.2): the API base URL and
/// the token URL are separate settings (regions and test/production differ, and the
/// published host names conflict).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BaswareConfig {
    /// The region's API base URL (`https://api.basware.com`, `https://test.api.basware.com`…).
    pub base_url: String,
    /// The token URL (`https://api.basware.com/v1/tokens`).
    pub token_url: String,
    pub client_id: String,
    /// Name of the secret holding the client secret.
    pub client_secret: String,
    /// Space-separated in the token request; required by Basware. Default: what the
    /// integration reads and writes.
    #[serde(default = "default_basware_scopes")]
    pub scopes: Vec<String>,
    /// Name of the secret holding the subscription's `webhookAuthenticationToken`; none:
    /// webhooks are refused.
    #[serde(default)]
    pub webhook_secret: Option<String>,
    /// Where Basware reaches this connector's `/webhooks/basware/<integration>` (public URL).
    /// With `webhook_secret`, `mlc run` (with a listener) subscribes it when Basware has no
    /// such subscription.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// `invoiceTypeCode`s the tenant uses for credit notes (§3.11.8: no flag on the wire; a
    /// negative gross sum is a credit note too).
    #[serde(default)]
    pub credit_note_types: Vec<String>,
    /// BC master data imported into Basware's coding lists; none: not imported.
    #[serde(default)]
    pub master_data: Option<BaswareMasterData>,
    /// What Basware is told about a document that cannot be mapped or that BC refuses.
    #[serde(default)]
    pub failure_response: FailureResponse,
    /// Accounting documents per list page (1..=100, §3.4).
    #[serde(default = "default_basware_page")]
    pub page_size: u32,
    /// No published limit (§3.9); a polite default.
    #[serde(default = "default_basware_rate")]
    pub requests_per_second: u32,
    #[serde(default = "default_http_timeout")]
    pub http_timeout_secs: u64,
}

/// Which BC master data goes to Basware (`basware.md` §3.7, §3.11), and where.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BaswareMasterData {
    /// The Basware company the records belong to (`companies[].companyCode`).
    pub company_code: String,
    /// BC vendors → `/v1/vendors`.
    #[serde(default)]
    pub vendors: bool,
    /// BC posting G/L accounts → `/v1/accounts`.
    #[serde(default)]
    pub accounts: bool,
    /// BC dimension code → `"cost_centers"` (`/v1/costCenters`) or a generic list key
    /// (`"ACC_LIST_1"` → `/v1/lists/ACC_LIST_1`).
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
}

/// When a failure transfer response goes back to Basware.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureResponse {
    /// At once, with the reason: the document returns to Basware's workflow, where finance
    /// fixes its coding and sends it again.
    #[default]
    AtOnce,
    /// Never by itself: the document is parked here (retried when the mapping exists) and stays
    /// `TransferInProgress` in Basware.
    Park,
}

fn default_basware_scopes() -> Vec<String> {
    ["accountingDocuments.read", "accountingDocuments.write"]
        .map(String::from)
        .to_vec()
}
fn default_basware_page() -> u32 {
    100
}
fn default_basware_rate() -> u32 {
    10
}

/// `[systems.<name>]` with `type = "concur"` (`concur.md` §2.1–§2.7): one SAP Concur company,
/// reached with a company-level token from a rotating refresh token (§2.2), read through
/// Financial Integration v4 (§2.3).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConcurConfig {
    /// The app's geolocation (`https://us.api.concursolutions.com`…, §2.1): used only until a
    /// token response names the company's own; from then on the stored geolocation is used for
    /// refreshes and every API call, never this.
    pub base_url: String,
    pub client_id: String,
    /// Name of the secret holding the client secret.
    pub client_secret: String,
    /// Name of the secret holding the refresh-token state: first the bare refresh token (from
    /// the one-time company request-token exchange), then what the connector stores back after
    /// each refresh (the rotated token and the geolocation, written with compare-and-set).
    pub refresh_token_secret: String,
    /// Sent with token refreshes when set (`FISVC` is the scope FIS needs, §2.3).
    #[serde(default)]
    pub scope: Option<String>,
    /// The FIS `systemId` this connector acknowledges and confirms as (§2.3); "" by default.
    #[serde(default)]
    pub system_id: String,
    /// Which FIS document types are read: `invoice` (invoice payment requests) and/or
    /// `expense` (expense reports). Default both.
    #[serde(default = "default_concur_doc_types")]
    pub document_types: Vec<String>,
    /// Documents per list page (`limit`, §2.7.3: always sent; 1..=100).
    #[serde(default = "default_concur_page")]
    pub page_size: u32,
    /// No published limit (§2.5); a polite default.
    #[serde(default = "default_concur_rate")]
    pub requests_per_second: u32,
    /// A document that cannot be mapped (no vendor, G/L account, dimension) gets an `error`
    /// posting confirmation at once when true; by default it stays parked here, visible in
    /// `mlc audit`, and posts once the mapping exists (a confirmation `error` returns it to
    /// Concur's workflow).
    #[serde(default)]
    pub confirm_unmappable: bool,
    /// Expense reports: card payee code (`IBCP`, `CBCP`, §2.7.1) → the BC vendor of the card
    /// issuer. A code listed here gets one BC purchase invoice per report for the rows the
    /// company owes that issuer; rows owed to a code not listed are not posted (they are named
    /// in the audit trail), and never billed to the employee.
    #[serde(default)]
    pub card_vendors: BTreeMap<String, String>,
    /// Name of the secret holding SAP Concur's public key (PEM) that `Concur-Signature` of
    /// `readyForIntegration` events is verified with (§2.4); none: events are refused and the
    /// poll reads everything. The events arrive over mutual TLS, which the platform terminates
    /// (API Gateway custom domain with mTLS; `mlc run`'s listener).
    #[serde(default)]
    pub webhook_public_key: Option<String>,
    /// The common name the events' client certificate must carry, as the transport that
    /// terminated mutual TLS verified it (§2.4: `webhook.api.concursolutions.com`; pin the
    /// CN, not the serial: the certificate is re-issued yearly). Set, an event that came
    /// without such a certificate is refused; none: only `Concur-Signature` is checked.
    #[serde(default)]
    pub webhook_client_cn: Option<String>,
    /// BC vendors → Concur invoice vendors (Invoice Vendor API v3.1, §2.7.5), each cycle, only
    /// what changed; none: not sent.
    #[serde(default)]
    pub vendors: Option<ConcurVendorExport>,
    #[serde(default = "default_http_timeout")]
    pub http_timeout_secs: u64,
}

/// `[systems.<concur>.vendors]`: how BC vendors become Concur invoice vendors, keyed by the BC
/// vendor number (`VendorCode`) and one address code.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConcurVendorExport {
    /// The `AddressCode` every vendor is sent under (unique within its `VendorCode`).
    #[serde(default = "default_concur_address_code")]
    pub address_code: String,
    /// `CountryCode` of a vendor whose BC country is empty (ISO-2).
    pub default_country: String,
    /// `CurrencyCode` of a vendor in BC's local currency (BC leaves its code empty).
    pub local_currency: String,
}

fn default_concur_address_code() -> String {
    "MAIN".into()
}

fn default_concur_doc_types() -> Vec<String> {
    vec!["invoice".into(), "expense".into()]
}
fn default_concur_page() -> u32 {
    25
}
fn default_concur_rate() -> u32 {
    10
}

fn default_bc_api_url() -> String {
    // business-central.md A1 (the same as `systems::business_central::DEFAULT_API_URL`; the
    // configuration sits below the systems and names no client).
    "https://api.businesscentral.dynamics.com".into()
}

/// `[systems.<name>]` with `type = "finance_operations"`: one Dynamics 365 Finance & Operations
/// environment (d365-fo.md), as one Entra app user.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FinanceOperationsConfig {
    /// `https://{env}.operations.dynamics.com`: the token's audience (scope
    /// `{environment_url}/.default`) and, unless `api_url` says otherwise, where requests go.
    pub environment_url: String,
    /// Where requests go instead (a simulator, a proxy); the OData root is `{api_url}/data`.
    #[serde(default)]
    pub api_url: Option<String>,
    /// Default `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`.
    #[serde(default)]
    pub token_url: Option<String>,
    pub tenant: String,
    pub client_id: String,
    /// Name of the secret holding the Entra client secret.
    pub client_secret: String,
    /// The legal entity (`dataAreaId`) integrations write into when their own rule names none.
    #[serde(default)]
    pub default_legal_entity: Option<String>,
    /// Default 6,000 per 300 s, 52 concurrent (B8).
    #[serde(default)]
    pub rate: Option<RateBudget>,
    /// The ledger dimension format for integrating applications (B5), main account first.
    #[serde(default = "default_fo_ledger_format")]
    pub ledger_dimension_format: Vec<String>,
    #[serde(default = "default_fo_delimiter")]
    pub dimension_delimiter: char,
    #[serde(default = "default_http_timeout")]
    pub http_timeout_secs: u64,
}

fn default_fo_ledger_format() -> Vec<String> {
    vec!["MainAccount".into()]
}

fn default_fo_delimiter() -> char {
    '-'
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationKind {
    /// Coupa approved invoices → Business Central posted purchase invoices.
    CoupaToBusinessCentral,
    /// SAP Business One purchase orders and A/P invoices → Coupa.
    SapB1ToCoupa,
    /// Coupa approved invoices → F&O pending vendor invoices, per legal entity.
    CoupaToFinanceOperations,
    /// Basware accounting documents waiting for transfer → Business Central posted purchase
    /// invoices and credit memos, with transfer responses back.
    BaswareToBusinessCentral,
    /// SAP Concur Financial Integration documents (invoice payment requests, expense reports)
    /// → Business Central posted purchase invoices, with posting confirmations back.
    ConcurToBusinessCentral,
}

impl IntegrationKind {
    /// Every kind, for inferring one from its source and target types.
    pub const ALL: &[IntegrationKind] = &[
        IntegrationKind::CoupaToBusinessCentral,
        IntegrationKind::SapB1ToCoupa,
        IntegrationKind::CoupaToFinanceOperations,
        IntegrationKind::BaswareToBusinessCentral,
        IntegrationKind::ConcurToBusinessCentral,
    ];

    /// The system types it reads from and writes to.
    pub fn types(self) -> (&'static str, &'static str) {
        match self {
            Self::CoupaToBusinessCentral => ("coupa", "business_central"),
            Self::SapB1ToCoupa => ("sap_b1", "coupa"),
            Self::CoupaToFinanceOperations => ("coupa", "finance_operations"),
            Self::BaswareToBusinessCentral => ("basware", "business_central"),
            Self::ConcurToBusinessCentral => ("concur", "business_central"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CoupaToBusinessCentral => "coupa_to_business_central",
            Self::SapB1ToCoupa => "sap_b1_to_coupa",
            Self::CoupaToFinanceOperations => "coupa_to_finance_operations",
            Self::BaswareToBusinessCentral => "basware_to_business_central",
            Self::ConcurToBusinessCentral => "concur_to_business_central",
        }
    }

    /// The kind that reads `source_type` and writes `target_type`, if there is one.
    pub fn between(source_type: &str, target_type: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.types() == (source_type, target_type))
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationConfig {
    /// Short, colon-free name; part of ledger keys and dedup ids ("coupa-bc").
    pub name: String,
    /// Optional in the file: inferred from the types of `source` and `target`. [`Config::parse`]
    /// fills it in, so a parsed configuration always has it.
    #[serde(default)]
    pub kind: Option<IntegrationKind>,
    /// The `[systems.<name>]` documents come from; default: the only system of the type the
    /// kind reads. Filled in by [`Config::parse`].
    #[serde(default)]
    pub source: Option<String>,
    /// The `[systems.<name>]` documents go to; default as for `source`. Filled in by
    /// [`Config::parse`].
    #[serde(default)]
    pub target: Option<String>,
    /// The target's company (BC company id; later an F&O legal entity); default: the target
    /// system's `company_id`. Filled in by [`Config::parse`] where the target has companies.
    #[serde(default)]
    pub company: Option<String>,
    /// Where the first poll starts; later polls start from the stored watermark.
    #[serde(default)]
    pub start_from: Option<DateTime<Utc>>,
    /// How far each poll reaches back before the last watermark (clock skew, late commits).
    #[serde(default = "default_overlap")]
    pub poll_overlap_secs: u64,
    #[serde(default)]
    pub mapping: MappingConfig,
    /// What else besides approved invoices this integration keeps in step. Everything that
    /// writes master data or orders into the ERP, or payments into the source, is opt-in.
    #[serde(default)]
    pub sync: SyncConfig,
}

fn default_overlap() -> u64 {
    300
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Coupa purchase orders → BC purchase orders (created, updated, removed when cancelled).
    #[serde(default)]
    pub purchase_orders: bool,
    /// Coupa suppliers ↔ BC vendors.
    #[serde(default)]
    pub suppliers: SupplierSync,
    /// With `suppliers = "both_ways"`: whose version wins when a supplier changed on both
    /// sides since the last sync ("source" or "target"; default "source"). Every conflict is
    /// audited (status `conflict`) with both versions and the rule that decided.
    #[serde(default)]
    pub supplier_conflicts: ConflictWinner,
    /// SAP B1 → Coupa: the Coupa supplier custom field that holds the B1 `CardCode` (its
    /// hyphenated name, e.g. "b1-card-code"); none: the supplier's `number` holds it. With a
    /// custom field, the connector neither reads nor writes the supplier's `number`.
    #[serde(default)]
    pub supplier_code_field: Option<String>,
    /// BC paid status → a payment on the Coupa invoice.
    #[serde(default)]
    pub payments: bool,
    /// Check every line's G/L account and dimension values against BC's accounts, dimensions
    /// and dimension values before anything is posted, so a bad line parks with its value named.
    #[serde(default = "yes")]
    pub check_master_data: bool,
    /// BC change notifications (webhooks) for purchase invoices: a notification triggers the
    /// paid-status poll at once instead of at the next scheduled poll.
    #[serde(default)]
    pub notifications: Option<NotificationConfig>,
}

fn yes() -> bool {
    true
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            purchase_orders: false,
            suppliers: SupplierSync::Off,
            supplier_conflicts: ConflictWinner::Source,
            supplier_code_field: None,
            payments: false,
            check_master_data: true,
            notifications: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SupplierSync {
    /// Only the mapping table (and the config's `[mapping.suppliers]`) says which vendor.
    #[default]
    Off,
    /// Match Coupa suppliers to existing BC vendors by the supplier key; report the rest as
    /// unmatched (parked, visible in the audit trail).
    Match,
    /// As `match`, and create a BC vendor for a supplier that has none.
    Create,
    /// Both ways, where the target keeps suppliers of its own that the source must have too
    /// (SAP B1 business partners ↔ Coupa suppliers only): as `create`, and a supplier created
    /// or changed in the target is created or changed in the source; a change the connector
    /// wrote is not sent back; a supplier changed on both sides since the last sync is a
    /// conflict, resolved by `supplier_conflicts` and audited.
    BothWays,
}

/// Which side's version of a supplier is kept when both changed since the last sync.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictWinner {
    /// The integration's source (SAP B1: the ERP the partners are kept in).
    #[default]
    Source,
    /// The integration's target (Coupa).
    Target,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationConfig {
    /// The public URL BC posts notifications to, e.g. `https://mlc.example.com/webhooks/bc/coupa-bc`
    /// (served by `mlc run`'s webhook listener or the webhook function).
    pub url: String,
    /// Name of the secret whose value is sent as `clientState` and must come back with every
    /// notification (at most 50 characters: BC's limit is unclear, business-central.md A8).
    pub client_state_secret: String,
    /// Renew a subscription when it has less than this left (it lives three days).
    #[serde(default = "default_renew_before")]
    pub renew_before_hours: u64,
}

fn default_renew_before() -> u64 {
    36
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    /// Which supplier attribute keys the supplier → vendor table.
    #[serde(default)]
    pub supplier_key: SupplierKey,
    /// Where a line's G/L account comes from.
    #[serde(default)]
    pub gl_account: SegmentRule,
    /// Account segments that carry dimension values.
    #[serde(default)]
    pub dimensions: Vec<DimensionRule>,
    /// Supplier key → BC vendor number.
    #[serde(default)]
    pub suppliers: BTreeMap<String, String>,
    /// Full Coupa account code → BC G/L account (checked before the segment rule).
    #[serde(default)]
    pub account_codes: BTreeMap<String, String>,
    /// Segment value → BC G/L account, used when `gl_account.translate` is on.
    #[serde(default)]
    pub gl_accounts: BTreeMap<String, String>,
    /// Dimension code → (segment value → BC dimension value), when a rule's `translate` is on.
    #[serde(default)]
    pub dimension_values: BTreeMap<String, BTreeMap<String, String>>,
    /// For a target with several legal entities (F&O): the account segment (of the first
    /// line) that names a document's legal entity, looked up in `legal_entities`; without it,
    /// every document goes to the integration's `company`.
    #[serde(default)]
    pub legal_entity_segment: Option<usize>,
    /// Segment value → legal entity (F&O `dataAreaId`).
    #[serde(default)]
    pub legal_entities: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SupplierKey {
    #[default]
    Number,
    Id,
    TaxId,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentRule {
    /// 1-based account segment.
    pub segment: usize,
    /// Look the value up in the mapping table instead of using it as is.
    #[serde(default)]
    pub translate: bool,
}

impl Default for SegmentRule {
    fn default() -> Self {
        Self {
            segment: 1,
            translate: false,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DimensionRule {
    pub segment: usize,
    /// BC dimension code ("DEPARTMENT").
    pub dimension: String,
    #[serde(default)]
    pub translate: bool,
}

/// Mapping table names, scoped per integration.
pub mod tables {
    pub fn supplier(integration: &str) -> String {
        format!("{integration}/supplier")
    }
    pub fn account_code(integration: &str) -> String {
        format!("{integration}/account_code")
    }
    pub fn gl_account(integration: &str) -> String {
        format!("{integration}/gl_account")
    }
    pub fn dimension(integration: &str, dimension: &str) -> String {
        format!("{integration}/dimension/{dimension}")
    }
    /// Coupa PO number → BC purchase order id (written when the order is created in BC).
    pub fn purchase_order(integration: &str) -> String {
        format!("{integration}/purchase_order")
    }
    /// Concur employee id → BC vendor number (expense reports; default: the employee id).
    pub fn employee(integration: &str) -> String {
        format!("{integration}/employee")
    }
    /// Concur expense type code → BC G/L account (rows without a journal account code).
    pub fn expense_type(integration: &str) -> String {
        format!("{integration}/expense_type")
    }
    /// BC purchase invoice id → Coupa invoice id (written when an invoice is posted), so a
    /// paid BC invoice is traced back to its source.
    pub fn posted_invoice(integration: &str) -> String {
        format!("{integration}/posted_invoice")
    }
    /// `{FIS document id}@{submission}` of a Concur expense report → why that submission was
    /// backed out of BC (a later document of it refused after an earlier one posted).
    pub fn backed_out_report(integration: &str) -> String {
        format!("{integration}/backed_out_report")
    }
    /// `{BC vendor}\u{1f}{vendor invoice number}` → the Concur report whose backed-out
    /// submission used it: BC keeps the reversed invoice under that number, so a later
    /// submission takes another.
    pub fn backed_out_number(integration: &str) -> String {
        format!("{integration}/backed_out_number")
    }
    /// Ledger key → the bulk batch (an F&O data package import) a document went into last,
    /// recorded before the batch is sent (`steps::bulk`).
    pub fn bulk_batch(integration: &str) -> String {
        format!("{integration}/bulk_batch")
    }
    /// The tables the connector writes for itself (links between records), as opposed to the
    /// ones an operator maintains: hidden from `mlc map list` unless asked for.
    pub fn is_internal(table: &str) -> bool {
        table.rsplit_once('/').is_some_and(|(_, t)| {
            matches!(
                t,
                "purchase_order"
                    | "posted_invoice"
                    | "concur_vendor_sent"
                    | "bulk_batch"
                    | "backed_out_report"
                    | "backed_out_number"
            )
        })
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut cfg = Self::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        })?;
        // Relative files are relative to the config file, not to wherever mlc was started.
        let dir = path.parent().unwrap_or(Path::new("."));
        let tls = cfg.runtime.webhook_tls.as_mut();
        let tls_files = tls
            .map(|t| {
                let mut v = vec![&mut t.cert_file, &mut t.key_file];
                if let Some(ca) = t.client_ca_file.as_mut() {
                    v.push(ca);
                }
                v
            })
            .unwrap_or_default();
        for p in [&mut cfg.runtime.database, &mut cfg.runtime.secrets_file]
            .into_iter()
            .chain(tls_files)
        {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
        Ok(cfg)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The integration's systems and company, as [`Config::parse`] resolved them (or would: a
    /// configuration built by hand is resolved the same way).
    pub fn resolved(&self, integration: &str) -> Result<ResolvedIntegration, String> {
        let i = self
            .integrations
            .iter()
            .find(|i| i.name == integration)
            .ok_or_else(|| {
                format!(
                    "no integration '{integration}' (configured: {})",
                    list(self.integrations.iter().map(|i| i.name.as_str()))
                )
            })?;
        self.resolve(i)
    }

    /// The same configuration in the new form: named systems with their `type`, each integration
    /// with its `kind`, `source`, `target` and `company`. It parses back to an equal configuration.
    pub fn to_new_form(&self) -> String {
        let mut cfg = self.clone();
        // Filled in already when `self` was parsed; again for a configuration built by hand.
        // An unresolvable integration is left as it is: `parse` will say what is wrong with it.
        for i in &mut cfg.integrations {
            if let Ok(r) = self.resolve(i) {
                r.fill(i);
            }
        }
        let body = toml::to_string(&cfg).expect("a configuration serializes to TOML");
        format!(
            "# ml-connector configuration, new form (`mlc config`): named systems with `type`,\n\
             # integrations naming their `source`, `target` and `company`.\n\n{body}"
        )
    }

    fn validate(&mut self) -> Result<(), String> {
        self.runtime.validate()?;
        for (name, system) in self.systems.iter() {
            if system.http_timeout_secs() == 0 {
                return Err(format!(
                    "systems.{name}.http_timeout_secs = 0: every request would time out at once \
                     (default {})",
                    default_http_timeout()
                ));
            }
        }
        let mut names = std::collections::HashSet::new();
        for i in &self.integrations {
            if i.name.is_empty()
                || !i
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!(
                    "integration name '{}' must be letters, digits, '-' or '_'",
                    i.name
                ));
            }
            if !names.insert(&i.name) {
                return Err(format!("integration '{}' is configured twice", i.name));
            }
            let segs = std::iter::once(i.mapping.gl_account.segment)
                .chain(i.mapping.dimensions.iter().map(|d| d.segment));
            if segs.clone().any(|s| s == 0) {
                return Err(format!(
                    "integration '{}': account segments are numbered from 1",
                    i.name
                ));
            }
        }
        let resolved = (self.integrations.iter())
            .map(|i| self.resolve(i))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, r) in self.integrations.iter_mut().zip(resolved) {
            r.fill(i);
        }
        for i in &self.integrations {
            if let Some(f) = &i.sync.supplier_code_field {
                if i.kind != Some(IntegrationKind::SapB1ToCoupa) {
                    return Err(format!(
                        "integration '{}': sync.supplier_code_field is for sap_b1 → coupa only",
                        i.name
                    ));
                }
                if f.is_empty()
                    || !f
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(format!(
                        "integration '{}': sync.supplier_code_field = \"{f}\" must be a Coupa \
                         custom field name (letters, digits, '-', '_')",
                        i.name
                    ));
                }
            }
            if i.sync.suppliers == SupplierSync::BothWays
                && i.kind != Some(IntegrationKind::SapB1ToCoupa)
            {
                return Err(format!(
                    "integration '{}': sync.suppliers = \"both_ways\" is offered only where the \
                     target keeps suppliers the source must have too (sap_b1 → coupa); use \
                     \"create\"",
                    i.name
                ));
            }
        }
        Ok(())
    }

    /// Picks the integration's kind, systems and company; errors name the integration and key.
    fn resolve(&self, i: &IntegrationConfig) -> Result<ResolvedIntegration, String> {
        let name = &i.name;
        let named = |key: &str, system: &Option<String>| -> Result<Option<NamedSystem>, String> {
            let Some(system) = system else {
                return Ok(None);
            };
            match self.systems.get(system) {
                Some(config) => Ok(Some(NamedSystem {
                    name: system.clone(),
                    config: config.clone(),
                })),
                None => Err(format!(
                    "integration '{name}': {key} = \"{system}\" is not a configured system \
                     (configured: {})",
                    list(self.systems.iter().map(|(n, _)| n))
                )),
            }
        };
        let source = named("source", &i.source)?;
        let target = named("target", &i.target)?;
        let kind = match (i.kind, &source, &target) {
            (Some(kind), _, _) => kind,
            (None, Some(s), Some(t)) => {
                let (st, tt) = (s.config.type_name(), t.config.type_name());
                IntegrationKind::between(st, tt).ok_or_else(|| {
                    format!(
                        "integration '{name}': no kind of integration reads {st} and writes {tt} \
                         (source = \"{}\", target = \"{}\"; known kinds: {})",
                        s.name,
                        t.name,
                        list(IntegrationKind::ALL.iter().map(|k| k.as_str()))
                    )
                })?
            }
            (None, _, _) => {
                return Err(format!(
                    "integration '{name}': no `kind`: give one, or both `source` and `target`"
                ));
            }
        };
        let (source_type, target_type) = kind.types();
        let pick = |key: &str, given: Option<NamedSystem>, wanted: &str| match given {
            Some(s) if s.config.type_name() == wanted => Ok(s),
            Some(s) => Err(format!(
                "integration '{name}': {key} = \"{}\" is a {} system, but kind {} needs a {wanted} one",
                s.name,
                s.config.type_name(),
                kind.as_str()
            )),
            None => match self.systems.of_type(wanted)[..] {
                [only] => Ok(NamedSystem {
                    name: only.to_string(),
                    config: self.systems.get(only).expect("listed").clone(),
                }),
                [] => Err(format!(
                    "integration '{name}': {key}: no {wanted} system is configured \
                     ([systems.<name>] with type = \"{wanted}\")"
                )),
                ref several => Err(format!(
                    "integration '{name}': {key}: {} {wanted} systems are configured ({}); \
                     name one with `{key} = \"<system>\"`",
                    several.len(),
                    list(several.iter().copied())
                )),
            },
        };
        let source = pick("source", source, source_type)?;
        let target = pick("target", target, target_type)?;
        let company = match &target.config {
            // F&O: the integration's legal entity, else the system's default; a document may
            // still name its own by the mapping's `legal_entity_segment` rule.
            SystemConfig::FinanceOperations(f) => {
                i.company.clone().or_else(|| f.default_legal_entity.clone())
            }
            SystemConfig::BusinessCentral(b) => Some(
                i.company
                    .clone()
                    .or_else(|| b.company_id.clone())
                    .ok_or_else(|| {
                        format!(
                            "integration '{name}': no company to post to: set `company` on the \
                         integration or `company_id` on [systems.{}]",
                            target.name
                        )
                    })?,
            ),
            other => {
                if i.company.is_some() {
                    return Err(format!(
                        "integration '{name}': company: target \"{}\" is a {} system, which \
                         has no companies",
                        target.name,
                        other.type_name()
                    ));
                }
                None
            }
        };
        Ok(ResolvedIntegration {
            integration: name.clone(),
            kind,
            source,
            target,
            company,
        })
    }
}

/// What an integration runs between, resolved from its configuration.
#[derive(Clone, Debug)]
pub struct ResolvedIntegration {
    pub integration: String,
    pub kind: IntegrationKind,
    pub source: NamedSystem,
    pub target: NamedSystem,
    /// The target's company / legal entity, for targets that have them (always for BC).
    pub company: Option<String>,
}

/// A system instance and its `[systems.<name>]` name.
#[derive(Clone, Debug)]
pub struct NamedSystem {
    pub name: String,
    pub config: SystemConfig,
}

impl ResolvedIntegration {
    /// Writes what was resolved into the integration's own keys.
    fn fill(self, i: &mut IntegrationConfig) {
        i.kind = Some(self.kind);
        i.source = Some(self.source.name);
        i.target = Some(self.target.name);
        i.company = self.company;
    }
}

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<_> = names.collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const EXAMPLE: &str = include_str!("../../examples/mlc.toml");

    /// Two companies of one BC system fed from one Coupa, in the new form.
    const NEW_FORM: &str = r#"
        [systems.coupa-eu]
        type = "coupa"
        base_url = "https://acme.coupahost.com"
        client_id = "c"
        client_secret = "coupa-client-secret"
        api_version = "R40"

        [systems.bc-main]
        type = "business_central"
        tenant = "t"
        environment = "production"
        client_id = "b"
        client_secret = "bc-client-secret"
        http_timeout_secs = 30

        [[integrations]]
        name = "coupa-bc-fr"
        source = "coupa-eu"
        target = "bc-main"
        company = "company-fr"

        [[integrations]]
        name = "coupa-bc-de"
        source = "coupa-eu"
        target = "bc-main"
        company = "company-de"
    "#;

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err()
    }

    #[test]
    fn a_visibility_timeout_too_short_for_the_lease_renewal_is_refused() {
        let e = err(&format!(
            "[runtime]\nvisibility_timeout_secs = 10\n{NEW_FORM}"
        ));
        assert!(
            e.contains("runtime.visibility_timeout_secs = 10 is too short")
                && e.contains("at least 30"),
            "{e}"
        );
        let e = err(&format!(
            "[runtime]\nvisibility_timeout_secs = 50000\n{NEW_FORM}"
        ));
        assert!(e.contains("12 hours"), "{e}");
        assert!(
            Config::parse(&format!(
                "[runtime]\nvisibility_timeout_secs = 60\n{NEW_FORM}"
            ))
            .is_ok()
        );
    }

    #[test]
    fn a_zero_http_timeout_is_refused_naming_the_system() {
        let e = err(&NEW_FORM.replace("http_timeout_secs = 30", "http_timeout_secs = 0"));
        assert!(
            e.starts_with("systems.bc-main.http_timeout_secs = 0"),
            "{e}"
        );
    }

    #[test]
    fn the_readme_example_parses() {
        let cfg = Config::parse(EXAMPLE).unwrap();
        assert_eq!(cfg.integrations[0].name, "coupa-bc");
        assert_eq!(cfg.integrations[0].mapping.dimensions.len(), 2);
        assert_eq!(
            cfg.systems
                .business_central()
                .unwrap()
                .rate
                .clone()
                .unwrap()
                .requests,
            6000
        );
    }

    #[test]
    fn todays_form_resolves_to_the_only_systems_and_the_systems_company() {
        let cfg = Config::parse(EXAMPLE).unwrap();
        let r = cfg.resolved("coupa-bc").unwrap();
        assert_eq!(r.kind, IntegrationKind::CoupaToBusinessCentral);
        assert_eq!(
            (r.source.name.as_str(), r.source.config.type_name()),
            ("coupa", "coupa")
        );
        assert_eq!(
            (r.target.name.as_str(), r.target.config.type_name()),
            ("business_central", "business_central")
        );
        assert_eq!(
            r.company.as_deref(),
            Some("a0a0a0a0-bbbb-cccc-dddd-e1e1e1e1e1e1")
        );
        // Filled in on the integration too.
        let i = &cfg.integrations[0];
        assert_eq!(i.source.as_deref(), Some("coupa"));
        assert_eq!(i.target.as_deref(), Some("business_central"));
        assert_eq!(i.company, r.company);
        assert_eq!(
            cfg.resolved("nope").unwrap_err(),
            "no integration 'nope' (configured: coupa-bc)"
        );
    }

    #[test]
    fn the_new_form_infers_the_kind_and_allows_two_companies_on_one_bc() {
        let cfg = Config::parse(NEW_FORM).unwrap();
        assert_eq!(
            cfg.systems.get("bc-main").unwrap().type_name(),
            "business_central"
        );
        assert_eq!(
            cfg.systems.business_central().unwrap().http_timeout_secs,
            30
        );
        assert_eq!(
            cfg.systems.coupa().unwrap().base_url,
            "https://acme.coupahost.com"
        );
        for (name, company) in [("coupa-bc-fr", "company-fr"), ("coupa-bc-de", "company-de")] {
            let r = cfg.resolved(name).unwrap();
            assert_eq!(r.kind, IntegrationKind::CoupaToBusinessCentral);
            assert_eq!(r.source.name, "coupa-eu");
            assert_eq!(r.target.name, "bc-main");
            assert_eq!(r.company.as_deref(), Some(company));
        }
    }

    #[test]
    fn the_new_form_round_trips() {
        for text in [EXAMPLE, NEW_FORM] {
            let cfg = Config::parse(text).unwrap();
            let new = cfg.to_new_form();
            let again = Config::parse(&new).unwrap_or_else(|e| panic!("{e}\n{new}"));
            let value = |c: &Config| toml::Value::try_from(c).unwrap();
            assert_eq!(value(&cfg), value(&again), "{new}");
            assert_eq!(again.to_new_form(), new);
        }
        let new = Config::parse(EXAMPLE).unwrap().to_new_form();
        for line in [
            "[systems.coupa]\ntype = \"coupa\"",
            "[systems.business_central]\ntype = \"business_central\"",
            "source = \"coupa\"",
            "target = \"business_central\"",
            "company = \"a0a0a0a0-bbbb-cccc-dddd-e1e1e1e1e1e1\"",
        ] {
            assert!(new.contains(line), "{line} not in\n{new}");
        }
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let bad = EXAMPLE.replace("api_version", "api_verison");
        let e = err(&bad);
        assert!(
            e.contains("systems.coupa: unknown field `api_verison`"),
            "{e}"
        );
        let bad = NEW_FORM.replace("tenant", "tenat");
        let e = err(&bad);
        assert!(e.contains("systems.bc-main: unknown field `tenat`"), "{e}");
    }

    #[test]
    fn unknown_types_are_refused_naming_the_known_ones() {
        let e = err(&NEW_FORM.replace("\"business_central\"", "\"netsuite\""));
        assert!(
            e.contains(
                "systems.bc-main: unknown type `netsuite`, expected one of `coupa`, \
                 `business_central`, `sap_b1`, `finance_operations`, `basware`, `concur`"
            ),
            "{e}"
        );
        let e = err(&NEW_FORM.replace("type = \"business_central\"", ""));
        assert!(
            e.contains("systems.bc-main: unknown type `bc-main`, expected one of `coupa`, `business_central`, `sap_b1`, `finance_operations`, `basware`, `concur` (a system without `type` takes its name as its type)"),
            "{e}"
        );
    }

    #[test]
    fn integration_without_its_systems_is_refused() {
        let text = r#"
            [systems]
            [[integrations]]
            name = "coupa-bc"
            kind = "coupa_to_business_central"
        "#;
        assert_eq!(
            err(text),
            "integration 'coupa-bc': source: no coupa system is configured \
             ([systems.<name>] with type = \"coupa\")"
        );
    }

    #[test]
    fn refusals_name_the_integration_and_the_key() {
        // Two BC systems: a kind-only integration must say which.
        let two_bc = EXAMPLE.replacen(
            "[[integrations]]",
            "[systems.bc-other]\ntype = \"business_central\"\ntenant = \"t\"\n\
             environment = \"e\"\nclient_id = \"b\"\nclient_secret = \"s\"\n\n[[integrations]]",
            1,
        );
        assert_eq!(
            err(&two_bc),
            "integration 'coupa-bc': target: 2 business_central systems are configured \
             (bc-other, business_central); name one with `target = \"<system>\"`"
        );
        assert!(
            Config::parse(&two_bc.replace(
                "kind = \"coupa_to_business_central\"",
                "kind = \"coupa_to_business_central\"\ntarget = \"business_central\""
            ))
            .is_ok()
        );

        let no_company = NEW_FORM.replace("company = \"company-de\"", "");
        assert_eq!(
            err(&no_company),
            "integration 'coupa-bc-de': no company to post to: set `company` on the integration \
             or `company_id` on [systems.bc-main]"
        );
        // The system's company_id is the default.
        let defaulted = no_company.replace(
            "http_timeout_secs = 30",
            "http_timeout_secs = 30\ncompany_id = \"company-default\"",
        );
        let cfg = Config::parse(&defaulted).unwrap();
        assert_eq!(
            cfg.resolved("coupa-bc-de").unwrap().company.as_deref(),
            Some("company-default")
        );
        assert_eq!(
            cfg.resolved("coupa-bc-fr").unwrap().company.as_deref(),
            Some("company-fr")
        );

        assert_eq!(
            err(&NEW_FORM.replace(
                "target = \"bc-main\"\n        company = \"company-de\"",
                "target = \"bc-typo\""
            )),
            "integration 'coupa-bc-de': target = \"bc-typo\" is not a configured system \
             (configured: bc-main, coupa-eu)"
        );
        assert_eq!(
            err(&NEW_FORM.replacen("source = \"coupa-eu\"", "source = \"bc-main\"", 1)),
            "integration 'coupa-bc-fr': no kind of integration reads business_central and writes \
             business_central (source = \"bc-main\", target = \"bc-main\"; known kinds: \
             coupa_to_business_central, sap_b1_to_coupa, coupa_to_finance_operations, \
             basware_to_business_central, concur_to_business_central)"
        );
        assert_eq!(
            err(&NEW_FORM.replacen(
                "source = \"coupa-eu\"",
                "kind = \"coupa_to_business_central\"\nsource = \"bc-main\"",
                1
            )),
            "integration 'coupa-bc-fr': source = \"bc-main\" is a business_central system, but \
             kind coupa_to_business_central needs a coupa one"
        );
        assert_eq!(
            err(&NEW_FORM.replacen("source = \"coupa-eu\"", "", 1)),
            "integration 'coupa-bc-fr': no `kind`: give one, or both `source` and `target`"
        );
    }
}
