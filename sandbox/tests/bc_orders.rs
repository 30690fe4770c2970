//! Business Central purchaseOrders / purchaseOrderLines over real HTTP (business-central.md
//! A6.4, A3 ETags).

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

async fn create_order(sim: &mlc_sandbox::bc::BcSim, token: &str, lines: Value) -> Value {
    let resp = bc_req(
        Method::POST,
        &format!("{}/purchaseOrders", company_url(sim)),
        token,
    )
    .json(&json!({
        "vendorNumber": "V10000",
        "orderDate": "2025-02-01",
        "purchaseOrderLines": lines,
    }))
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

fn two_lines() -> Value {
    json!([
        {"lineType": "Account", "lineObjectNumber": "6100", "description": "Paper",
         "description2": "A4, 80 g", "quantity": 10, "directUnitCost": 4.5},
        {"lineType": "Account", "lineObjectNumber": "6200", "quantity": 1, "directUnitCost": 120}
    ])
}

async fn get_json(url: &str, token: &str) -> Value {
    let r = bc_req(Method::GET, url, token).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.json().await.unwrap()
}

#[tokio::test]
async fn purchase_order_deep_insert_creates_draft_with_lines() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let po = create_order(&sim, &token, two_lines()).await;
    assert_eq!(po["status"], "Draft");
    assert_eq!(po["number"], "106001");
    assert_eq!(po["vendorName"], "Fabrikam, Inc.");
    assert_eq!(po["orderDate"], "2025-02-01");
    assert!(po["@odata.etag"].as_str().unwrap().starts_with("W/\""));
    assert!(
        po.get("purchaseOrderLines").is_none(),
        "lines only with $expand"
    );
    let id = po["id"].as_str().unwrap();
    let expanded = get_json(
        &format!(
            "{}/purchaseOrders({id})?$expand=purchaseOrderLines",
            company_url(&sim)
        ),
        &token,
    )
    .await;
    let lines = expanded["purchaseOrderLines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["sequence"], 10000);
    assert_eq!(lines[0]["directUnitCost"], 4.5);
    assert_eq!(lines[0]["description2"], "A4, 80 g");
    assert_eq!(lines[0]["receiveQuantity"], 10);
    assert!(lines[0].get("unitCost").is_none());
    assert_eq!(lines[1]["description"], "IT Services");
    assert_eq!(expanded["totalAmountExcludingTax"], 165);

    let view = &sim.purchase_orders()[0];
    assert_eq!(view.vendor_number, "V10000");
    assert_eq!(view.lines[0].description2, "A4, 80 g");
    assert_eq!(
        view.lines[0].direct_unit_cost,
        rust_decimal::Decimal::new(45, 1)
    );

    let filtered = get_json(
        &format!(
            "{}/purchaseOrders?$filter=number eq '106001'",
            company_url(&sim)
        ),
        &token,
    )
    .await;
    assert_eq!(filtered["value"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn purchase_order_lines_refuse_unit_cost_and_unknown_accounts() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let url = format!("{}/purchaseOrders", company_url(&sim));
    let unit_cost = bc_req(Method::POST, &url, &token)
        .json(&json!({"vendorNumber": "V10000", "purchaseOrderLines": [
            {"lineType": "Account", "lineObjectNumber": "6100", "quantity": 1, "unitCost": 3}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(unit_cost.status(), 400);
    assert_eq!(
        unit_cost.json::<Value>().await.unwrap()["error"]["code"],
        "BadRequest"
    );
    let unknown = bc_req(Method::POST, &url, &token)
        .json(&json!({"vendorNumber": "V10000", "purchaseOrderLines": [
            {"lineType": "Account", "lineObjectNumber": "9999", "quantity": 1, "directUnitCost": 3}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["error"]["code"],
        "Internal_InvalidTableRelation"
    );
    assert!(sim.purchase_orders().is_empty(), "deep insert is atomic");
}

#[tokio::test]
async fn purchase_order_number_is_read_only_on_post() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let r = bc_req(
        Method::POST,
        &format!("{}/purchaseOrders", company_url(&sim)),
        &token,
    )
    .json(&json!({"vendorNumber": "V10000", "number": "PO-1"}))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "BadRequest_InvalidOperation");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Control 'number' is read-only.")
    );
    assert!(sim.purchase_orders().is_empty());
}

#[tokio::test]
async fn purchase_order_patch_without_if_match_is_refused() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let po = create_order(&sim, &token, two_lines()).await;
    let url = format!(
        "{}/purchaseOrders({})",
        company_url(&sim),
        po["id"].as_str().unwrap()
    );
    let r = bc_req(Method::PATCH, &url, &token)
        .json(&json!({"requestedReceiptDate": "2025-03-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "BadRequest_InvalidToken"
    );
}

#[tokio::test]
async fn purchase_order_patch_with_stale_etag_is_409() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let po = create_order(&sim, &token, two_lines()).await;
    let url = format!(
        "{}/purchaseOrders({})",
        company_url(&sim),
        po["id"].as_str().unwrap()
    );
    let etag = po["@odata.etag"].as_str().unwrap();
    let first = bc_req(Method::PATCH, &url, &token)
        .header("If-Match", etag)
        .json(&json!({"purchaser": "AH"}))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let stale = bc_req(Method::PATCH, &url, &token)
        .header("If-Match", etag)
        .json(&json!({"purchaser": "BD"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 409);
    assert_eq!(
        stale.json::<Value>().await.unwrap()["error"]["code"],
        "Request_EntityChanged"
    );
}

#[tokio::test]
async fn purchase_order_patch_with_current_etag_returns_200_and_new_etag() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let po = create_order(&sim, &token, two_lines()).await;
    let url = format!(
        "{}/purchaseOrders({})",
        company_url(&sim),
        po["id"].as_str().unwrap()
    );
    let r = bc_req(Method::PATCH, &url, &token)
        .header("If-Match", po["@odata.etag"].as_str().unwrap())
        .json(&json!({"requestedReceiptDate": "2025-03-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let header_etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["requestedReceiptDate"], "2025-03-01");
    assert_ne!(body["@odata.etag"], po["@odata.etag"]);
    assert_eq!(body["@odata.etag"], header_etag.as_str());
    assert_eq!(sim.purchase_orders()[0].version, 2);
}

#[tokio::test]
async fn purchase_order_line_patch_needs_if_match_and_changes_the_header_etag() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let po = create_order(&sim, &token, two_lines()).await;
    let id = po["id"].as_str().unwrap();
    let lines = get_json(
        &format!(
            "{}/purchaseOrders({id})/purchaseOrderLines",
            company_url(&sim)
        ),
        &token,
    )
    .await;
    let line = &lines["value"][0];
    let line_url = format!(
        "{}/purchaseOrders({id})/purchaseOrderLines({})",
        company_url(&sim),
        line["id"].as_str().unwrap()
    );
    let missing = bc_req(Method::PATCH, &line_url, &token)
        .json(&json!({"quantity": 12}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    let ok = bc_req(Method::PATCH, &line_url, &token)
        .header("If-Match", line["@odata.etag"].as_str().unwrap())
        .json(&json!({"quantity": 12, "description2": "changed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let patched: Value = ok.json().await.unwrap();
    assert_eq!(patched["quantity"], 12);
    assert_ne!(patched["@odata.etag"], line["@odata.etag"]);
    let header = get_json(
        &format!("{}/purchaseOrders({id})", company_url(&sim)),
        &token,
    )
    .await;
    assert_ne!(header["@odata.etag"], po["@odata.etag"]);
    assert_ne!(header["lastModifiedDateTime"], po["lastModifiedDateTime"]);
    assert_eq!(header["totalAmountExcludingTax"], 174);
}

#[tokio::test]
async fn purchase_order_lines_can_be_added_dimensioned_and_deleted() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let po = create_order(&sim, &token, json!([])).await;
    let id = po["id"].as_str().unwrap();
    let lines_url = format!(
        "{}/purchaseOrders({id})/purchaseOrderLines",
        company_url(&sim)
    );
    let r = bc_req(Method::POST, &lines_url, &token)
        .json(&json!({"lineType": "Account", "lineObjectNumber": "6300", "quantity": 2, "directUnitCost": 50}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let line: Value = r.json().await.unwrap();
    let line_id = line["id"].as_str().unwrap();
    let dims_url = format!(
        "{}/purchaseOrderLines({line_id})/dimensionSetLines",
        company_url(&sim)
    );
    let d = bc_req(Method::POST, &dims_url, &token)
        .json(&json!({"code": "DEPARTMENT", "valueCode": "SALES"}))
        .send()
        .await
        .unwrap();
    assert_eq!(d.status(), 201);
    let dim: Value = d.json().await.unwrap();
    assert_eq!(dim["parentType"], "Purchase Order Line");
    let listed = get_json(&dims_url, &token).await;
    assert_eq!(listed["value"][0]["valueCode"], "SALES");
    assert_eq!(
        sim.purchase_orders()[0].lines[0].dimensions,
        vec![("DEPARTMENT".to_owned(), "SALES".to_owned())]
    );

    let del = bc_req(Method::DELETE, &format!("{lines_url}({line_id})"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    assert!(sim.purchase_orders()[0].lines.is_empty());
    let del_po = bc_req(
        Method::DELETE,
        &format!("{}/purchaseOrders({id})", company_url(&sim)),
        &token,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(del_po.status(), 204);
    assert!(sim.purchase_orders().is_empty());
}

#[tokio::test]
async fn purchase_orders_have_no_post_action() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let po = create_order(&sim, &token, two_lines()).await;
    let r = bc_req(
        Method::POST,
        &format!(
            "{}/purchaseOrders({})/Microsoft.NAV.post",
            company_url(&sim),
            po["id"].as_str().unwrap()
        ),
        &token,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
}
