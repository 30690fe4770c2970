//! Basware simulator: the token endpoint and the API's bearer/scope guard (basware.md §3.2).

mod basware_support;

use basware_support::*;
use mlc_sandbox::basware::BASWARE_SCOPE;
use serde_json::Value;

#[tokio::test]
async fn a_token_is_issued_for_basic_auth_and_lives_expires_in_seconds() {
    let sim = basware().await;
    let resp = token_with_scope(&sim, BASWARE_SCOPE).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"].as_u64(), Some(3600));
    assert!(v.get("refresh_token").is_none());
    assert_eq!(
        v["scope"],
        BASWARE_SCOPE
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    );
}

#[tokio::test]
async fn a_token_request_without_scope_is_refused() {
    let sim = basware().await;
    let resp = http()
        .post(sim.token_url())
        .basic_auth("basware-client", Some("basware-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "invalid_scope");
}

#[tokio::test]
async fn credentials_in_the_form_body_instead_of_basic_auth_are_refused() {
    let sim = basware().await;
    let resp = http()
        .post(sim.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "basware-client"),
            ("client_secret", "basware-secret"),
            ("scope", "vendors.read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn the_token_url_is_not_under_the_api_base_url() {
    let sim = basware().await;
    let resp = http()
        .post(format!("{}/v1/tokens", sim.base_url()))
        .basic_auth("basware-client", Some("basware-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "vendors.read"),
        ])
        .send()
        .await
        .unwrap();
    assert_ne!(resp.status(), 200);
    assert_ne!(sim.token_url(), format!("{}/v1/tokens", sim.base_url()));
}

#[tokio::test]
async fn an_api_call_without_a_token_is_401_and_with_a_token_lacking_the_scope_403() {
    let sim = basware().await;
    let none = http()
        .get(format!("{}/v1/accountingDocuments", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    let v: Value = token_with_scope(&sim, "vendors.read")
        .await
        .json()
        .await
        .unwrap();
    let narrow = v["access_token"].as_str().unwrap();
    let resp = get(&sim, narrow, "/v1/accountingDocuments")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "ACCESS_TOKEN_VALIDATION_ERROR");
}

#[tokio::test]
async fn an_expired_token_is_refused_with_401() {
    let sim = basware().await;
    let t = token(&sim).await;
    sim.expire_tokens();
    let resp = get(&sim, &t, "/v1/accountingDocuments")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}
