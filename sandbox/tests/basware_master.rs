//! Basware simulator: master-data imports with asynchronous request status, identical
//! re-imports skipped, error feedback (basware.md §3.7, §3.11).

mod basware_support;

use basware_support::*;
use serde_json::{Value, json};

fn vendor(code: &str, name: &str, company: &str) -> Value {
    json!({
        "externalCode": format!("vendor-{code}"), "vendorCode": code, "name": name,
        "companies": [{ "companyCode": company }],
    })
}

async fn import_vendors(
    sim: &mlc_sandbox::basware::BaswareSim,
    t: &str,
    body: &Value,
) -> reqwest::Response {
    post_json(sim, t, "/v1/vendors", body).send().await.unwrap()
}

async fn status_of(sim: &mlc_sandbox::basware::BaswareSim, t: &str, request_id: &str) -> Value {
    get(sim, t, &format!("/v1/requestStatus/{request_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_import_answers_its_request_id_and_is_in_progress_before_it_is_processed() {
    let sim = basware().await;
    let t = token(&sim).await;
    let resp = import_vendors(&sim, &t, &json!([vendor("V1", "Fabrikam", "BW00")])).await;
    assert_eq!(resp.status(), 200);
    let id = resp.headers()["x-amzn-requestid"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        sim.master_records("vendors").is_empty(),
        "not processed yet"
    );
    let first = status_of(&sim, &t, &id).await;
    assert_eq!(first["requestStatus"][0]["requestStatus"], "InProgress");
    let second = status_of(&sim, &t, &id).await;
    assert_eq!(second["requestStatus"][0]["requestStatus"], "Success");
    assert_eq!(
        sim.master_records("vendors")["vendor-V1"]["name"],
        "Fabrikam"
    );
}

#[tokio::test]
async fn more_than_200_vendors_in_one_post_are_refused() {
    let sim = basware().await;
    let t = token(&sim).await;
    let many: Vec<Value> = (0..201)
        .map(|i| vendor(&format!("V{i}"), "x", "BW00"))
        .collect();
    let resp = import_vendors(&sim, &t, &Value::Array(many)).await;
    assert_eq!(resp.status(), 400);
    assert!(sim.imports().is_empty());
}

#[tokio::test]
async fn a_vendor_missing_a_required_field_is_refused_at_once() {
    let sim = basware().await;
    let t = token(&sim).await;
    let resp = import_vendors(&sim, &t, &json!([{ "externalCode": "x", "name": "n" }])).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "SCHEMA_VALIDATION_ERROR");
}

#[tokio::test]
async fn an_identical_reimport_is_not_processed_and_a_changed_one_is() {
    let sim = basware().await;
    let t = token(&sim).await;
    let body = json!([
        vendor("V1", "Fabrikam", "BW00"),
        vendor("V2", "Contoso", "BW00")
    ]);
    import_vendors(&sim, &t, &body).await;
    sim.process_imports();
    import_vendors(
        &sim,
        &t,
        &json!([
            vendor("V1", "Fabrikam", "BW00"),
            vendor("V2", "Contoso Ltd", "BW00")
        ]),
    )
    .await;
    sim.process_imports();
    let second = &sim.imports()[1];
    let by_code = |c: &str| {
        second
            .items
            .iter()
            .find(|i| i.external_code == c)
            .unwrap()
            .status
            .clone()
    };
    assert_eq!(by_code("vendor-V1"), "NotProcessed");
    assert_eq!(by_code("vendor-V2"), "Success");
    assert_eq!(
        sim.master_records("vendors")["vendor-V2"]["name"],
        "Contoso Ltd"
    );
}

#[tokio::test]
async fn a_record_of_an_unknown_company_fails_and_shows_in_error_feedbacks() {
    let sim = basware().await;
    let t = token(&sim).await;
    import_vendors(&sim, &t, &json!([vendor("V9", "Nowhere", "XX99")])).await;
    sim.process_imports();
    // Without entityType or system, only Error requests are listed (documented default).
    let v: Value = get(&sim, &t, "/v1/requestStatus")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let item = &v["requestStatus"][0]["systems"][0]["items"][0];
    assert_eq!(item["status"], "Error");
    assert!(
        item["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("CompanyCode")
    );
    let fb: Value = get(&sim, &t, "/v1/errorFeedbacks")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fb["errorList"][0]["externalCode"], "vendor-V9");
}

#[tokio::test]
async fn a_bare_request_status_read_lists_only_errors() {
    let sim = basware().await;
    let t = token(&sim).await;
    import_vendors(&sim, &t, &json!([vendor("V1", "Fabrikam", "BW00")])).await;
    sim.process_imports();
    let bare = get(&sim, &t, "/v1/requestStatus").send().await.unwrap();
    assert_eq!(bare.status(), 404, "a successful request is not an Error");
    let narrowed = get(&sim, &t, "/v1/requestStatus?entityType=Vendor")
        .send()
        .await
        .unwrap();
    assert_eq!(narrowed.status(), 200);
}

#[tokio::test]
async fn acknowledging_a_request_status_twice_is_405_and_it_is_no_longer_listed() {
    let sim = basware().await;
    let t = token(&sim).await;
    let resp = import_vendors(&sim, &t, &json!([vendor("V1", "Fabrikam", "BW00")])).await;
    let id = resp.headers()["x-amzn-requestid"]
        .to_str()
        .unwrap()
        .to_owned();
    sim.process_imports();
    let body = json!({ "requestIds": [id] });
    let first = post_json(&sim, &t, "/v1/requestStatus/acknowledge", &body)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let again = post_json(&sim, &t, "/v1/requestStatus/acknowledge", &body)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 405);
    let listed = get(
        &sim,
        &t,
        "/v1/requestStatus?status=Success&entityType=Vendor",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(listed.status(), 404);
    assert_eq!(sim.imports()[0].request_status, "AcknowledgedSuccess");
}

#[tokio::test]
async fn acknowledging_an_unknown_request_is_404() {
    let sim = basware().await;
    let t = token(&sim).await;
    let resp = post_json(
        &sim,
        &t,
        "/v1/requestStatus/acknowledge",
        &json!({ "requestIds": ["nope"] }),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn a_generic_list_needs_a_known_list_key_and_company_items_with_active() {
    let sim = basware().await;
    let t = token(&sim).await;
    let item = json!([{ "externalCode": "dim-SALES", "text_1": "SALES",
        "companies": [{ "companyCode": "BW00", "active": true }] }]);
    let ok = post_json(&sim, &t, "/v1/lists/ACC_LIST_1", &item)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let unknown = post_json(&sim, &t, "/v1/lists/GENERIC_1", &item)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    let no_active = json!([{ "externalCode": "dim-X", "companies": [{ "companyCode": "BW00" }] }]);
    let refused = post_json(&sim, &t, "/v1/lists/ACC_LIST_1", &no_active)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    sim.process_imports();
    assert_eq!(
        sim.master_records("lists/ACC_LIST_1")["dim-SALES"]["text_1"],
        "SALES"
    );
}

#[tokio::test]
async fn a_cost_centre_import_is_stored_after_processing() {
    let sim = basware().await;
    let t = token(&sim).await;
    let body = json!([{ "externalCode": "cc-100", "costCenterCode": "100",
        "costCenterNames": [{ "translation": "Sales", "language": "en-US" }],
        "companies": [{ "companyCode": "BW00", "active": true }] }]);
    let resp = post_json(&sim, &t, "/v1/costCenters", &body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    sim.process_imports();
    assert_eq!(
        sim.master_records("costCenters")["cc-100"]["costCenterCode"],
        "100"
    );
}
