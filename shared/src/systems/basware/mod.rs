//! Basware Purchase-to-Pay API (`../shared/apis/basware.md` §3): OAuth client credentials with
//! Basic auth and a required scope on its own token URL, accounting documents as a state queue
//! (`WaitingForTransfer`, acknowledge, transfer and payment responses), the list's 302 followed
//! without credentials, paging by the `x-amz-meta-continuationtoken` header.

mod client;
mod convert;
mod source;
pub mod wire;
mod writers;

pub use client::{
    Acknowledged, BaswareClient, BaswareError, BaswareSettings, CONTINUATION_HEADER, ListPage,
    PaymentSent, WAITING_FOR_TRANSFER,
};
pub use convert::{ConvertError, SEGMENTS, invoice_from_wire, is_credit_note};
pub use source::{ACCOUNTING_DOCUMENTS, BaswareSource};
pub use writers::{
    PaymentResponseWriter, RESPONSE_SETTLE, TransferDoc, TransferWriter, payment_code,
};

/// The webhook signature header (product decision; see `../shared/apis/README.md`).
pub const SIGNATURE_HEADER: &str = "X-BWAPI-Signature-256";

/// The configured scopes plus what the configuration needs (§3.2: `scope` is required, and
/// a scope guards each API): master-data imports and their request status, subscriptions.
pub fn scopes_for(cfg: &crate::config::BaswareConfig) -> Vec<String> {
    let mut scopes = cfg.scopes.clone();
    let mut need = |s: &str| {
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_string());
        }
    };
    if let Some(md) = &cfg.master_data {
        let mut apis = Vec::new();
        if md.vendors {
            apis.push("vendors");
        }
        if md.accounts {
            apis.push("accounts");
        }
        for target in md.dimensions.values() {
            apis.push(if target == "cost_centers" {
                "costCenters"
            } else {
                "lists"
            });
        }
        for api in apis {
            need(&format!("{api}.write"));
        }
        need("requestStatus.read");
        need("requestStatus.write");
    }
    if cfg.webhook_url.is_some() {
        need("subscriptions.read");
        need("subscriptions.write");
    }
    scopes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scopes_follow_what_the_configuration_imports_and_subscribes() {
        let cfg: crate::config::BaswareConfig = toml::from_str(
            r#"
            base_url = "https://api.basware.com"
            token_url = "https://api.basware.com/v1/tokens"
            client_id = "c"
            client_secret = "s"
            webhook_url = "https://mlc.example.com/webhooks/basware/x"
            [master_data]
            company_code = "BW00"
            vendors = true
            dimensions = { DEPARTMENT = "cost_centers", PROJECT = "ACC_LIST_1" }
            "#,
        )
        .unwrap();
        let scopes = scopes_for(&cfg);
        for s in [
            "accountingDocuments.read",
            "accountingDocuments.write",
            "vendors.write",
            "costCenters.write",
            "lists.write",
            "requestStatus.read",
            "requestStatus.write",
            "subscriptions.write",
        ] {
            assert!(scopes.iter().any(|x| x == s), "{s} missing from {scopes:?}");
        }
        assert!(!scopes.iter().any(|x| x == "accounts.write"), "{scopes:?}");
    }
}
