//! The deployment's configuration: one TOML file naming the systems (endpoints, secret names,
//! budgets) and the integrations (mapping rules). Secrets are referenced by NAME only; values
//! live in the secret store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::systems::http::RateBudget;

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
    /// First retry delay of a failed message; doubles (with jitter) per attempt.
    #[serde(default = "default_retry_base")]
    pub retry_base_delay_ms: u64,
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
fn default_max_receives() -> u32 {
    5
}
fn default_visibility() -> u64 {
    120
}
fn default_retry_base() -> u64 {
    500
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            database: default_database(),
            secrets_file: default_secrets_file(),
            webhook_listen: None,
            poll_interval_secs: default_poll_interval(),
            workers: default_workers(),
            max_receives: default_max_receives(),
            visibility_timeout_secs: default_visibility(),
            retry_base_delay_ms: default_retry_base(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SystemsConfig {
    pub coupa: Option<CoupaConfig>,
    pub business_central: Option<BusinessCentralConfig>,
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
    pub company_id: String,
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
}

fn default_bc_api_url() -> String {
    crate::systems::business_central::DEFAULT_API_URL.into()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationKind {
    /// Coupa approved invoices → Business Central posted purchase invoices.
    CoupaToBusinessCentral,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationConfig {
    /// Short, colon-free name; part of ledger keys and dedup ids ("coupa-bc").
    pub name: String,
    pub kind: IntegrationKind,
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
    /// BC purchase invoice id → Coupa invoice id (written when an invoice is posted), so a
    /// paid BC invoice is traced back to its source.
    pub fn posted_invoice(integration: &str) -> String {
        format!("{integration}/posted_invoice")
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
        for p in [&mut cfg.runtime.database, &mut cfg.runtime.secrets_file] {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
        Ok(cfg)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let cfg: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
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
            match i.kind {
                IntegrationKind::CoupaToBusinessCentral => {
                    if self.systems.coupa.is_none() {
                        return Err(format!("integration '{}' needs [systems.coupa]", i.name));
                    }
                    if self.systems.business_central.is_none() {
                        return Err(format!(
                            "integration '{}' needs [systems.business_central]",
                            i.name
                        ));
                    }
                }
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const EXAMPLE: &str = include_str!("../../examples/mlc.toml");

    #[test]
    fn the_readme_example_parses() {
        let cfg = Config::parse(EXAMPLE).unwrap();
        assert_eq!(cfg.integrations[0].name, "coupa-bc");
        assert_eq!(cfg.integrations[0].mapping.dimensions.len(), 2);
        assert_eq!(
            cfg.systems.business_central.unwrap().rate.unwrap().requests,
            6000
        );
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let bad = EXAMPLE.replace("api_version", "api_verison");
        let e = Config::parse(&bad).unwrap_err();
        assert!(e.contains("api_verison"), "{e}");
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
            Config::parse(text).unwrap_err(),
            "integration 'coupa-bc' needs [systems.coupa]"
        );
    }
}
