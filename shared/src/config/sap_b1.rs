//! `[systems.<name>]` with `type = "sap_b1"`: one customer's SAP Business One Service Layer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SapB1Config {
    /// The customer's own Service Layer root, host AND port included (there is no global
    /// host): `https://b1.example.com:50000/b1s/v2` (v2, the primary protocol since FP 2405;
    /// `/b1s/v1` where only v1 is available).
    pub service_root: String,
    /// `CompanyDB` of the login.
    pub company_db: String,
    pub user_name: String,
    /// Name of the secret holding the login password (never the password itself).
    pub password: String,
    /// The `error.code`s of an HTTP 401 that mean "session expired": log in once more and
    /// replay once. 301 is what B1 sends; -5002 is in the product brief (apis/README.md).
    #[serde(default = "default_expiry_codes")]
    pub session_expiry_codes: Vec<i64>,
    /// `Prefer: odata.maxpagesize`; the server's own default is 20.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// B1 currency codes that are not ISO 4217 codes, e.g. `{ "$" = "USD" }`.
    #[serde(default)]
    pub currencies: BTreeMap<String, String>,
    /// Accept a self-signed TLS certificate (common on port 50000). Off unless set here,
    /// for this system only.
    #[serde(default)]
    pub accept_self_signed_tls: bool,
    #[serde(default = "default_http_timeout")]
    pub http_timeout_secs: u64,
    /// Put before a B1 `DocNum` to make the Coupa PO number (the natural key there; Coupa
    /// allows 20 characters), so two B1 companies writing to one Coupa never collide.
    #[serde(default = "default_po_prefix")]
    pub po_number_prefix: String,
    /// Name of the secret holding the HMAC-SHA256 key of B1 webhooks (FP 2602, sap-b1.md §4.6:
    /// payload and signature unconfirmed, so the event is our own configured shape); none:
    /// webhooks are refused and polling alone finds changes (it always stays the backstop).
    #[serde(default)]
    pub webhook_secret: Option<String>,
}

fn default_po_prefix() -> String {
    "B1-".into()
}

fn default_expiry_codes() -> Vec<i64> {
    vec![301, -5002]
}

fn default_page_size() -> u32 {
    50
}

fn default_http_timeout() -> u64 {
    60
}
