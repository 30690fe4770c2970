//! Helpers shared by the Basware simulator tests: a started simulator, a token, requests the
//! way a well-behaved client sends them.
#![allow(dead_code)]

use mlc_sandbox::basware::{BASWARE_SCOPE, BaswareConfig, BaswareSim};
use serde_json::Value;

pub async fn basware() -> BaswareSim {
    basware_with(BaswareConfig::default()).await
}

pub async fn basware_with(cfg: BaswareConfig) -> BaswareSim {
    BaswareSim::start(cfg).await.unwrap()
}

/// A client that never follows redirects (the tests look at the 302 themselves).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub async fn token_with_scope(sim: &BaswareSim, scope: &str) -> reqwest::Response {
    http()
        .post(sim.token_url())
        .basic_auth("basware-client", Some("basware-secret"))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .unwrap()
}

pub async fn token(sim: &BaswareSim) -> String {
    let v: Value = token_with_scope(sim, BASWARE_SCOPE)
        .await
        .json()
        .await
        .unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

pub fn get(sim: &BaswareSim, token: &str, path_and_query: &str) -> reqwest::RequestBuilder {
    http()
        .get(format!("{}{path_and_query}", sim.base_url()))
        .bearer_auth(token)
}

pub fn post_json(
    sim: &BaswareSim,
    token: &str,
    path: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    http()
        .post(format!("{}{path}", sim.base_url()))
        .bearer_auth(token)
        .json(body)
}

/// Follows a list's 302 the way the docs say: without `Authorization`. Returns the final
/// answer.
pub async fn follow(resp: reqwest::Response) -> reqwest::Response {
    assert_eq!(resp.status(), 302, "the list redirects");
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    http().get(location).send().await.unwrap()
}

/// The invoice ids of a followed list page, and its continuation token.
pub async fn page(resp: reqwest::Response) -> (Vec<String>, Option<String>) {
    let final_resp = follow(resp).await;
    assert_eq!(final_resp.status(), 200);
    let token = final_resp
        .headers()
        .get("x-amz-meta-continuationtoken")
        .map(|v| v.to_str().unwrap().to_owned());
    let v: Value = final_resp.json().await.unwrap();
    let ids = v["accountingDocuments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["invoiceId"].as_str().unwrap().to_owned())
        .collect();
    (ids, token)
}

pub fn transfer_ok(code: &str, voucher: &str) -> Value {
    serde_json::json!({
        "externalCode": code, "success": true, "responseMessage": "Posted in BC.",
        "voucherNumber1": voucher, "paymentBlock": false,
    })
}
