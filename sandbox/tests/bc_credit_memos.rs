//! Business Central purchaseCreditMemos over real HTTP (BCDOCS
//! `resources/dynamics_purchasecreditmemo.md`, ALAPP `APIV2PurchaseCreditMemos.Page.al`).

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

async fn create_credit_memo(sim: &mlc_sandbox::bc::BcSim, token: &str, ext: &str) -> Value {
    let resp = bc_req(
        Method::POST,
        &format!("{}/purchaseCreditMemos", company_url(sim)),
        token,
    )
    .json(&json!({
        "vendorNumber": "V20000",
        "vendorCreditMemoNumber": ext,
        "creditMemoDate": "2025-01-20",
        "purchaseCreditMemoLines": [
            {"lineType": "Account", "lineObjectNumber": "6400", "quantity": 1, "unitCost": 250}
        ],
    }))
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

fn post_url(sim: &mlc_sandbox::bc::BcSim, id: &str) -> String {
    format!(
        "{}/purchaseCreditMemos({id})/Microsoft.NAV.post",
        company_url(sim)
    )
}

#[tokio::test]
async fn credit_memo_deep_insert_creates_a_draft_with_lines() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let cm = create_credit_memo(&sim, &token, "cn-77").await;
    assert_eq!(cm["status"], "Draft");
    assert_eq!(
        cm["vendorCreditMemoNumber"], "CN-77",
        "Code[35] is upper-cased"
    );
    assert_eq!(cm["creditMemoDate"], "2025-01-20");
    assert_eq!(cm["dueDate"], "2025-01-20");
    assert_eq!(cm["totalAmountIncludingTax"], 250);
    let id = cm["id"].as_str().unwrap();
    let lines: Value = bc_req(
        Method::GET,
        &format!(
            "{}/purchaseCreditMemos({id})/purchaseCreditMemoLines",
            company_url(&sim)
        ),
        &token,
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let line = &lines["value"][0];
    assert_eq!(line["unitCost"], 250);
    assert!(
        line.get("description2").is_none(),
        "not a credit memo line field"
    );
    let dims = bc_req(
        Method::POST,
        &format!(
            "{}/purchaseCreditMemoLines({})/dimensionSetLines",
            company_url(&sim),
            line["id"].as_str().unwrap()
        ),
        &token,
    )
    .json(&json!({"code": "PROJECT", "valueCode": "P-200"}))
    .send()
    .await
    .unwrap();
    assert_eq!(dims.status(), 201);
    assert_eq!(
        dims.json::<Value>().await.unwrap()["parentType"],
        "Purchase Credit Memo Line"
    );
    let view = &sim.purchase_credit_memos()[0];
    assert_eq!(view.vendor_credit_memo_number, "CN-77");
    assert_eq!(
        view.lines[0].dimensions,
        vec![("PROJECT".to_owned(), "P-200".to_owned())]
    );
}

#[tokio::test]
async fn credit_memo_read_only_fields_are_refused() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    for field in [
        json!({"number": "X"}),
        json!({"pricesIncludeTax": false}),
        json!({"status": "Open"}),
    ] {
        let mut body = json!({"vendorNumber": "V20000", "vendorCreditMemoNumber": "CN-1"});
        body.as_object_mut()
            .unwrap()
            .extend(field.as_object().unwrap().clone());
        let r = bc_req(
            Method::POST,
            &format!("{}/purchaseCreditMemos", company_url(&sim)),
            &token,
        )
        .json(&body)
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 400, "{field}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"]["code"],
            "BadRequest_InvalidOperation"
        );
    }
    assert!(sim.purchase_credit_memos().is_empty());
}

#[tokio::test]
async fn credit_memo_post_renumbers_keeps_id_and_opens() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let cm = create_credit_memo(&sim, &token, "CN-1").await;
    let id = cm["id"].as_str().unwrap();
    let r = bc_req(Method::POST, &post_url(&sim, id), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.bytes().await.unwrap().is_empty());
    let after: Value = bc_req(
        Method::GET,
        &format!("{}/purchaseCreditMemos({id})", company_url(&sim)),
        &token,
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(after["id"], id);
    assert_ne!(after["number"], cm["number"]);
    assert_eq!(after["number"], "109001");
    assert_eq!(after["status"], "Open");
    assert_ne!(after["@odata.etag"], cm["@odata.etag"]);
    let view = &sim.purchase_credit_memos()[0];
    assert_eq!(view.post_count, 1);
    assert_eq!(view.status, "Open");
}

#[tokio::test]
async fn second_post_of_a_credit_memo_is_refused() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let cm = create_credit_memo(&sim, &token, "CN-2").await;
    let url = post_url(&sim, cm["id"].as_str().unwrap());
    let first = bc_req(Method::POST, &url, &token).send().await.unwrap();
    assert_eq!(first.status(), 204);
    let again = bc_req(Method::POST, &url, &token).send().await.unwrap();
    assert_eq!(again.status(), 400);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Application_DialogException");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("The action can be applied to a draft credit memo only.")
    );
    assert_eq!(sim.purchase_credit_memos()[0].post_count, 1);
}

#[tokio::test]
async fn credit_memo_without_vendor_credit_memo_number_cannot_be_posted() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let cm = create_credit_memo(&sim, &token, "").await;
    let r = bc_req(
        Method::POST,
        &post_url(&sim, cm["id"].as_str().unwrap()),
        &token,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["error"]["code"],
        "Application_FieldValidationException"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Vendor Cr. Memo No. must have a value")
    );
}

/// A posted invoice of V10000 for 24.69 (2 × 12.3456, rounded per line): its id.
async fn posted_invoice(sim: &mlc_sandbox::bc::BcSim, token: &str) -> String {
    let inv = create_invoice(sim, token, "INV-APPLY", one_line()).await;
    let id = inv["id"].as_str().unwrap().to_string();
    let r = bc_req(
        Method::POST,
        &format!(
            "{}/purchaseInvoices({id})/Microsoft.NAV.post",
            company_url(sim)
        ),
        token,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    id
}

async fn credit_memo_for(
    sim: &mlc_sandbox::bc::BcSim,
    token: &str,
    body: Value,
) -> reqwest::Response {
    bc_req(
        Method::POST,
        &format!("{}/purchaseCreditMemos", company_url(sim)),
        token,
    )
    .json(&body)
    .send()
    .await
    .unwrap()
}

#[tokio::test]
async fn a_credit_memo_applied_to_a_posted_invoice_closes_it_when_posted() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let inv_id = posted_invoice(&sim, &token).await;
    let r = credit_memo_for(
        &sim,
        &token,
        json!({
            "vendorNumber": "V10000",
            "vendorCreditMemoNumber": "INV-APPLY-REV",
            "invoiceId": inv_id,
            "purchaseCreditMemoLines": one_line(),
        }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let cm: Value = r.json().await.unwrap();
    let invoice_number = sim.purchase_invoices()[0].number.clone();
    assert_eq!(cm["invoiceId"], inv_id.as_str());
    assert_eq!(cm["invoiceNumber"], invoice_number.as_str());
    assert_eq!(sim.purchase_invoices()[0].status, "Open");
    let r = bc_req(
        Method::POST,
        &post_url(&sim, cm["id"].as_str().unwrap()),
        &token,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    // Its open entry is closed: "Paid" (Purch. Inv. Aggregator: Closed → Paid).
    assert_eq!(sim.purchase_invoices()[0].status, "Paid");
}

#[tokio::test]
async fn a_credit_memo_linked_to_a_draft_or_unknown_invoice_is_refused() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let draft = create_invoice(&sim, &token, "INV-DRAFT", one_line()).await;
    for link in [
        json!({ "invoiceId": draft["id"] }),
        json!({ "invoiceId": "5d115c9c-44e3-ea11-bb43-000d3a2feca1" }),
        json!({ "invoiceNumber": "NO-SUCH" }),
    ] {
        let mut body = json!({
            "vendorNumber": "V10000",
            "vendorCreditMemoNumber": "CM-X",
            "purchaseCreditMemoLines": one_line(),
        });
        body.as_object_mut()
            .unwrap()
            .extend(link.as_object().unwrap().clone());
        let r = credit_memo_for(&sim, &token, body).await;
        assert_eq!(r.status(), 400, "{link}");
        let e: Value = r.json().await.unwrap();
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("do not match to")
                || e["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("does not match to an Invoice"),
            "{e}"
        );
    }
    assert!(sim.purchase_credit_memos().is_empty());
}
