//! Helpers of the F&O simulator tests: a seeded simulator with two legal entities, tokens,
//! and requests against the OData root.
#![allow(dead_code)]

use mlc_sandbox::fo::{FoConfig, FoSim};
use serde_json::Value;

pub use mlc_sandbox::fo::seed::seed;

pub async fn fo_with(cfg: FoConfig) -> FoSim {
    let sim = FoSim::start(cfg).await.unwrap();
    seed(&sim);
    sim
}

pub async fn fo() -> FoSim {
    fo_with(FoConfig::default()).await
}

pub async fn token(sim: &FoSim) -> String {
    let resp: Value = reqwest::Client::new()
        .post(sim.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "fo-client"),
            ("client_secret", "fo-secret"),
            ("scope", sim.scope().as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    resp["access_token"].as_str().unwrap().to_owned()
}

/// An authenticated client for one simulator.
pub struct Api {
    pub base: String,
    pub token: String,
    http: reqwest::Client,
}

impl Api {
    pub async fn new(sim: &FoSim) -> Api {
        Api {
            base: sim.base_url(),
            token: token(sim).await,
            http: reqwest::Client::new(),
        }
    }

    /// `path` starts at the OData root: "VendorsV2?cross-company=true".
    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/data/{path}", self.base))
            .bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.req(reqwest::Method::GET, path).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, set: &str, body: Value) -> (u16, Value) {
        let r = self
            .req(reqwest::Method::POST, set)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn patch(&self, path: &str, body: Value, if_match: Option<&str>) -> (u16, Value) {
        let mut b = self.req(reqwest::Method::PATCH, path).json(&body);
        if let Some(tag) = if_match {
            b = b.header("If-Match", tag);
        }
        let r = b.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// A header in `company` for vendor US-101.
pub fn header(company: &str, reference: &str, number: &str) -> Value {
    serde_json::json!({
        "dataAreaId": company,
        "HeaderReference": reference,
        "InvoiceNumber": number,
        "VendorAccount": "US-101",
        "InvoiceDate": "2026-11-30T12:00:00Z",
    })
}

pub fn line(company: &str, reference: &str, n: u32, currency: &str, display: &str) -> Value {
    serde_json::json!({
        "dataAreaId": company,
        "HeaderReference": reference,
        "InvoiceLineNumber": n,
        "Currency": currency,
        "LineDescription": format!("line {n}"),
        "MainAccountDisplayValue": display,
        "NetAmount": 100.25,
    })
}

/// `error.innererror.message` of an F&O error body.
pub fn inner(body: &Value) -> String {
    body["error"]["innererror"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
