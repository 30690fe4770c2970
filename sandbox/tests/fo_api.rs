//! F&O simulator: the OData protocol as d365-fo.md describes it (auth, names, keys, companies,
//! status codes, ETags, errors, paging, throttling), over real HTTP.

#[path = "fo_common/mod.rs"]
mod fo_common;

use std::time::Duration;

use fo_common::*;
use mlc_sandbox::fo::{FoConfig, RateLimit};
use mlc_sandbox::{FaultKind, FaultRule};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn token_requires_the_environment_host_scope() {
    let sim = fo().await;
    let http = reqwest::Client::new();
    let ask = |scope: String| {
        http.post(sim.token_url()).form(&[
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", "fo-client".to_owned()),
            ("client_secret", "fo-secret".to_owned()),
            ("scope", scope),
        ])
    };
    let ok = ask(sim.scope()).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        sim.scope(),
        "https://mlc-sandbox.operations.dynamics.com/.default"
    );
    let data_form = ask("https://mlc-sandbox.operations.dynamics.com/data/.default".into())
        .send()
        .await
        .unwrap();
    assert_eq!(data_form.status(), 400);
    let body: Value = data_form.json().await.unwrap();
    assert_eq!(body["error"], "invalid_scope");
}

#[tokio::test]
async fn missing_or_expired_bearer_is_401() {
    let sim = fo().await;
    let none = reqwest::Client::new()
        .get(format!("{}/data/VendorsV2", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    let api = Api::new(&sim).await;
    assert_eq!(api.get("VendorsV2").await.0, 200);
    sim.expire_tokens();
    assert_eq!(api.get("VendorsV2").await.0, 401);
}

#[tokio::test]
async fn entity_set_names_are_case_sensitive() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    let (status, body) = api.get("vendorsV2").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "");
    assert!(inner(&body).contains("vendorsV2"), "{body}");
    assert_eq!(api.get("VendorsV2").await.0, 200);
}

#[tokio::test]
async fn property_names_are_case_sensitive_on_write() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    let (status, body) = api
        .post(
            "VendorsV2",
            json!({"dataAreaId":"usmf","vendorAccountNumber":"X-1","VendorOrganizationName":"X"}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        inner(&body).contains("'vendorAccountNumber' does not exist"),
        "{body}"
    );
}

#[tokio::test]
async fn reads_without_cross_company_see_only_the_default_company() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    let (_, default_only) = api.get("VendorsV2").await;
    let companies: Vec<&str> = default_only["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["dataAreaId"].as_str().unwrap())
        .collect();
    assert_eq!(companies, vec!["usmf"]);
    let (_, all) = api.get("VendorsV2?cross-company=true").await;
    assert_eq!(all["value"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn filtering_another_company_without_cross_company_returns_nothing() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    let (status, silent) = api.get("VendorsV2?$filter=dataAreaId eq 'demf'").await;
    assert_eq!(status, 200);
    assert_eq!(silent["value"].as_array().unwrap().len(), 0);
    let (_, seen) = api
        .get("VendorsV2?$filter=dataAreaId eq 'DEMF'&cross-company=true")
        .await;
    let accounts: Vec<&str> = seen["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["VendorAccountNumber"].as_str().unwrap())
        .collect();
    assert_eq!(accounts, vec!["DE-001", "US-101"]);
}

#[tokio::test]
async fn by_key_access_to_another_company_needs_cross_company() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    let key = "VendorsV2(dataAreaId='demf',VendorAccountNumber='DE-001')";
    assert_eq!(api.get(key).await.0, 404);
    let (status, body) = api.get(&format!("{key}?cross-company=true")).await;
    assert_eq!(status, 200);
    assert_eq!(body["VendorOrganizationName"], "Contoso GmbH");
}

#[tokio::test]
async fn key_urls_must_name_every_key_field() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    assert_eq!(
        api.get("VendorsV2(VendorAccountNumber='US-101')").await.0,
        400
    );
    assert_eq!(api.get("VendorsV2('US-101')").await.0, 400);
    assert_eq!(
        api.get("VendorsV2(dataAreaId='usmf',VendorAccountNumber='US-101')")
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn write_without_data_area_id_lands_in_the_default_company() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    let (status, body) = api
        .post(
            "VendorsV2",
            json!({"VendorAccountNumber":"NEW-1","VendorOrganizationName":"New"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["dataAreaId"], "usmf");
    let (status, body) = api
        .post(
            "VendorsV2",
            json!({"dataAreaId":"DEMF","VendorAccountNumber":"NEW-1","VendorOrganizationName":"New"}),
        )
        .await;
    assert_eq!(status, 201);
    // B7: compared case-insensitively, returned lower-case.
    assert_eq!(body["dataAreaId"], "demf");
}

#[tokio::test]
async fn create_is_201_with_the_entity_and_update_is_204() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    let (status, body) = api
        .post("VendorInvoiceHeaders", header("usmf", "H1", "INV-1"))
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["HeaderReference"], "H1");
    assert!(body["@odata.etag"].as_str().unwrap().starts_with("W/\""));
    let (status, body) = api
        .patch(
            "VendorInvoiceHeaders(dataAreaId='usmf',HeaderReference='H1')",
            json!({"InvoiceDescription":"changed"}),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(body, Value::Null);
    let (_, now) = api
        .get("VendorInvoiceHeaders(dataAreaId='usmf',HeaderReference='H1')")
        .await;
    assert_eq!(now["InvoiceDescription"], "changed");
}

#[tokio::test]
async fn stale_if_match_is_412_and_star_or_none_is_accepted() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    let key = "VendorsV2(dataAreaId='usmf',VendorAccountNumber='US-101')";
    let (_, before) = api.get(key).await;
    let tag = before["@odata.etag"].as_str().unwrap().to_owned();
    let change = |n: &str| json!({ "VendorSearchName": n });
    assert_eq!(api.patch(key, change("a"), Some(&tag)).await.0, 204);
    let (status, body) = api.patch(key, change("b"), Some(&tag)).await;
    assert_eq!(status, 412, "{body}");
    assert_eq!(api.patch(key, change("c"), Some("*")).await.0, 204);
    assert_eq!(api.patch(key, change("d"), None).await.0, 204);
    let (_, after) = api.get(key).await;
    assert_eq!(after["VendorSearchName"], "d");
    assert_ne!(after["@odata.etag"], before["@odata.etag"]);
}

#[tokio::test]
async fn duplicate_key_is_500_with_the_write_exception_wrapper() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    let (status, _) = api
        .post("VendorInvoiceHeaders", header("usmf", "H1", "INV-1"))
        .await;
    assert_eq!(status, 201);
    let (status, body) = api
        .post("VendorInvoiceHeaders", header("usmf", "H1", "INV-2"))
        .await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["code"], "");
    assert_eq!(body["error"]["message"], "An error has occurred.");
    assert!(
        body["error"]["innererror"]["type"]
            .as_str()
            .unwrap()
            .ends_with("AxODataWriteException")
    );
    let msg = inner(&body);
    assert!(
        msg.starts_with("Write failed for table row of type 'VendorInvoiceHeaderEntity'.")
            && msg.ends_with("The record already exists.."),
        "{msg}"
    );
}

#[tokio::test]
async fn paging_follows_next_link_and_skips_nothing_when_rows_arrive_between_pages() {
    let sim = fo_with(FoConfig {
        max_page_size: 2,
        ..FoConfig::default()
    })
    .await;
    for i in 0..5 {
        sim.add_vendor("usmf", &format!("V-{i}"), "v", "USD");
    }
    let api = Api::new(&sim).await;
    let (_, first) = api
        .get("VendorsV2?$filter=VendorAccountNumber eq 'V-*'")
        .await;
    assert_eq!(first["value"].as_array().unwrap().len(), 2);
    // A row sorting before the continuation point arrives: it must not shift the next page.
    sim.add_vendor("usmf", "V-0a", "v", "USD");
    let mut seen: Vec<String> = first["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["VendorAccountNumber"].as_str().unwrap().to_owned())
        .collect();
    let mut next = first["@odata.nextLink"].as_str().map(str::to_owned);
    while let Some(url) = next {
        let page: Value = reqwest::Client::new()
            .get(&url)
            .bearer_auth(&api.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen.extend(
            page["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["VendorAccountNumber"].as_str().unwrap().to_owned()),
        );
        next = page["@odata.nextLink"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, vec!["V-0", "V-1", "V-2", "V-3", "V-4"]);
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after() {
    let sim = fo_with(FoConfig {
        rate_limit: Some(RateLimit {
            requests: 2,
            window: Duration::from_secs(60),
        }),
        retry_after_secs: 7,
        ..FoConfig::default()
    })
    .await;
    let api = Api::new(&sim).await;
    assert_eq!(api.get("VendorsV2").await.0, 200);
    assert_eq!(api.get("VendorsV2").await.0, 200);
    let r = api.req(Method::GET, "VendorsV2").send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    let body: Value = r.json().await.unwrap();
    assert!(inner(&body).contains("high resource utilization"), "{body}");
    assert_eq!(sim.throttled_count(), 1);
}

#[tokio::test]
async fn in_and_has_operators_are_refused() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    let (status, body) = api
        .get("VendorsV2?$filter=VendorAccountNumber in ('US-101')")
        .await;
    assert_eq!(status, 400);
    assert!(
        inner(&body).contains("'in' operator is not supported"),
        "{body}"
    );
}

#[tokio::test]
async fn a_lost_answer_commits_and_names_no_write_exception() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    sim.fail_next(FaultRule::new(
        "POST",
        "/data/VendorInvoiceHeaders",
        1,
        FaultKind::LoseResponse,
    ));
    let (status, body) = api
        .post("VendorInvoiceHeaders", header("usmf", "H9", "INV-9"))
        .await;
    assert_eq!(status, 500);
    assert!(
        !body["error"]["innererror"]["type"]
            .as_str()
            .unwrap_or_default()
            .contains("AxODataWriteException")
    );
    assert_eq!(sim.pending_invoices().len(), 1);
}

#[tokio::test]
async fn read_only_sets_refuse_writes() {
    let sim = fo().await;
    let api = Api::new(&sim).await;
    let (status, _) = api
        .post(
            "MainAccounts",
            json!({"ChartOfAccounts":"Shared","MainAccountId":"1"}),
        )
        .await;
    assert_eq!(status, 405);
}
