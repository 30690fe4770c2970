//! Helpers shared by the simulator tests: tokens and pre-configured requests.
#![allow(dead_code)]

use mlc_sandbox::bc::{BC_SCOPE, BcConfig, BcSim};
use mlc_sandbox::coupa::{CoupaConfig, CoupaSim};
use serde_json::Value;

pub const COUPA_SCOPE: &str =
    "core.common.read core.invoice.read core.invoice.write core.supplier.read";

pub async fn coupa() -> CoupaSim {
    CoupaSim::start(CoupaConfig {
        rate_per_sec: None,
        ..CoupaConfig::default()
    })
    .await
    .unwrap()
}

pub async fn coupa_token(sim: &CoupaSim) -> String {
    let resp: Value = reqwest::Client::new()
        .post(format!("{}/oauth2/token", sim.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "coupa-client"),
            ("client_secret", "coupa-secret"),
            ("scope", COUPA_SCOPE),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    resp["access_token"].as_str().unwrap().to_owned()
}

/// A GET on the Coupa API with every header the simulator requires.
pub fn coupa_get(sim: &CoupaSim, token: &str, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .get(format!("{}{path}", sim.base_url()))
        .bearer_auth(token)
        .header("X-COUPA-API-Version", "R40")
        .header("Accept", "application/json")
}

pub async fn bc() -> BcSim {
    bc_with(BcConfig::default()).await
}

pub async fn bc_with(cfg: BcConfig) -> BcSim {
    let sim = BcSim::start(cfg).await.unwrap();
    mlc_sandbox::demo::seed_bc(&sim);
    sim
}

pub async fn bc_token(sim: &BcSim) -> String {
    let resp: Value = reqwest::Client::new()
        .post(sim.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "bc-client"),
            ("client_secret", "bc-secret"),
            ("scope", BC_SCOPE),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    resp["access_token"].as_str().unwrap().to_owned()
}

/// `{api root}/companies({id})`
pub fn company_url(sim: &BcSim) -> String {
    format!("{}/companies({})", sim.api_root(), sim.company_id())
}

pub fn bc_req(method: reqwest::Method, url: &str, token: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, url)
        .bearer_auth(token)
}

/// Creates a draft invoice for V10000 with the given lines; returns its JSON.
pub async fn create_invoice(sim: &BcSim, token: &str, vendor_invoice: &str, lines: Value) -> Value {
    let resp = bc_req(
        reqwest::Method::POST,
        &format!("{}/purchaseInvoices", company_url(sim)),
        token,
    )
    .json(&serde_json::json!({
        "vendorNumber": "V10000",
        "vendorInvoiceNumber": vendor_invoice,
        "invoiceDate": "2025-01-15",
        "purchaseInvoiceLines": lines,
    }))
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

pub fn one_line() -> Value {
    serde_json::json!([{ "lineType": "Account", "lineObjectNumber": "6100", "quantity": 2, "unitCost": 12.3456 }])
}
