//! Coupa simulator, write side: external purchase orders, invoices and suppliers created and
//! updated through the API (coupa.md §1.8, §1.13), over real HTTP.

use mlc_sandbox::coupa::{CoupaConfig, CoupaSim, NewSupplier};
use serde_json::{Value, json};

const WRITE_SCOPES: &str = "core.purchase_order.write core.invoice.write core.supplier.write";

async fn sim() -> CoupaSim {
    CoupaSim::start(CoupaConfig {
        rate_per_sec: None,
        ..CoupaConfig::default()
    })
    .await
    .unwrap()
}

async fn token(sim: &CoupaSim, scope: &str) -> String {
    let resp: Value = reqwest::Client::new()
        .post(format!("{}/oauth2/token", sim.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "coupa-client"),
            ("client_secret", "coupa-secret"),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    resp["access_token"].as_str().unwrap().to_owned()
}

async fn call(
    sim: &CoupaSim,
    tok: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", sim.base_url()))
        .bearer_auth(tok)
        .header("X-COUPA-API-Version", "R40")
        .header("Accept", "application/json");
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn po_body(number: &str) -> Value {
    json!({
        "type": "ExternalOrderHeader",
        "po-number": number,
        "version": 1,
        "currency": {"code": "USD"},
        "supplier": {"number": "V10000"},
        "order-lines": [
            {"line-num": 1, "description": "Paper", "quantity": "5", "price": "12.50",
             "uom": {"code": "EA"}, "account": {"segment-1": "6100", "segment-2": "ADM"}}
        ]
    })
}

fn invoice_body(number: &str) -> Value {
    json!({
        "invoice-number": number,
        "invoice-date": "2026-07-01",
        "currency": {"code": "EUR"},
        "supplier": {"number": "V10000"},
        "invoice-lines": [
            {"type": "InvoiceQuantityLine", "description": "Paper", "quantity": "2", "price": "50.00",
             "tax-amount": "19.00", "account": {"segment-1": "6100", "segment-2": "SALES"}}
        ]
    })
}

async fn setup() -> (CoupaSim, String) {
    let s = sim().await;
    s.add_supplier(NewSupplier::new("Maxi-Teq", "V10000"));
    let t = token(&s, WRITE_SCOPES).await;
    (s, t)
}

#[tokio::test]
async fn an_external_po_is_created_with_201_and_found_by_its_po_number() {
    let (s, t) = setup().await;
    let (status, po) = call(
        &s,
        &t,
        reqwest::Method::POST,
        "/api/purchase_orders",
        Some(po_body("B1-1001")),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(po["type"], "ExternalOrderHeader");
    assert_eq!(po["total"], "62.50");
    assert_eq!(po["order-lines"][0]["account"]["code"], "6100-ADM");
    let (_, found) = call(
        &s,
        &t,
        reqwest::Method::GET,
        "/api/purchase_orders?po-number=B1-1001",
        None,
    )
    .await;
    assert_eq!(found[0]["id"], po["id"]);
}

#[tokio::test]
async fn a_second_po_with_the_same_number_is_refused() {
    let (s, t) = setup().await;
    call(
        &s,
        &t,
        reqwest::Method::POST,
        "/api/purchase_orders",
        Some(po_body("B1-1001")),
    )
    .await;
    let (status, body) = call(
        &s,
        &t,
        reqwest::Method::POST,
        "/api/purchase_orders",
        Some(po_body("B1-1001")),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"]["po-number"][0], "has already been taken");
    let (_, all) = call(&s, &t, reqwest::Method::GET, "/api/purchase_orders", None).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_po_without_the_external_type_is_refused() {
    let (s, t) = setup().await;
    let mut body = po_body("B1-1");
    body["type"] = json!("OrderHeader");
    let (status, err) = call(
        &s,
        &t,
        reqwest::Method::POST,
        "/api/purchase_orders",
        Some(body),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        err["errors"]["type"][0]
            .as_str()
            .unwrap()
            .contains("ExternalOrderHeader")
    );
}

#[tokio::test]
async fn a_po_put_updates_lines_by_line_num_adds_new_ones_and_refuses_a_lower_version() {
    let (s, t) = setup().await;
    let (_, po) = call(
        &s,
        &t,
        reqwest::Method::POST,
        "/api/purchase_orders",
        Some(po_body("B1-2")),
    )
    .await;
    let path = format!("/api/purchase_orders/{}", po["id"]);
    let change = json!({"version": 2, "order-lines": [
        {"line-num": 1, "description": "Paper", "quantity": "7", "price": "12.50"},
        {"line-num": 2, "description": "Toner", "quantity": "1", "price": "80"}]});
    let (status, updated) = call(&s, &t, reqwest::Method::PUT, &path, Some(change)).await;
    assert_eq!(status, 200);
    assert_eq!(updated["order-lines"][0]["quantity"], "7");
    assert_eq!(updated["order-lines"].as_array().unwrap().len(), 2);
    let version = updated["version"].as_i64().unwrap();
    assert!(version > 2);
    let (status, _) = call(
        &s,
        &t,
        reqwest::Method::PUT,
        &path,
        Some(json!({"version": 1})),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_cancelled_po_cannot_be_changed_and_a_repeat_cancel_is_harmless() {
    let (s, t) = setup().await;
    let (_, po) = call(
        &s,
        &t,
        reqwest::Method::POST,
        "/api/purchase_orders",
        Some(po_body("B1-3")),
    )
    .await;
    let cancel = format!("/api/purchase_orders/{}/cancel", po["id"]);
    let (status, c) = call(&s, &t, reqwest::Method::PUT, &cancel, None).await;
    assert_eq!((status, c["status"].as_str()), (200, Some("cancelled")));
    let (status, again) = call(&s, &t, reqwest::Method::PUT, &cancel, None).await;
    assert_eq!((status, &again["version"]), (200, &c["version"]));
    let (status, _) = call(
        &s,
        &t,
        reqwest::Method::PUT,
        &format!("/api/purchase_orders/{}", po["id"]),
        Some(json!({"version": 9})),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn writes_need_their_write_scope() {
    let s = sim().await;
    s.add_supplier(NewSupplier::new("Maxi-Teq", "V10000"));
    let read_only = token(
        &s,
        "core.purchase_order.read core.invoice.read core.supplier.read",
    )
    .await;
    let (po, _) = call(
        &s,
        &read_only,
        reqwest::Method::POST,
        "/api/purchase_orders",
        Some(po_body("X")),
    )
    .await;
    let (inv, _) = call(
        &s,
        &read_only,
        reqwest::Method::POST,
        "/api/invoices",
        Some(invoice_body("X")),
    )
    .await;
    let (sup, _) = call(
        &s,
        &read_only,
        reqwest::Method::POST,
        "/api/suppliers",
        Some(json!({"name": "N"})),
    )
    .await;
    assert_eq!((po, inv, sup), (403, 403, 403));
}

#[tokio::test]
async fn a_write_without_the_api_version_header_is_refused() {
    let (s, t) = setup().await;
    let resp = reqwest::Client::new()
        .post(format!("{}/api/invoices", s.base_url()))
        .bearer_auth(&t)
        .header("Accept", "application/json")
        .json(&invoice_body("INV-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn an_invoice_is_created_with_tax_currency_and_account_segments() {
    let (s, t) = setup().await;
    let (status, inv) = call(
        &s,
        &t,
        reqwest::Method::POST,
        "/api/invoices",
        Some(invoice_body("INV-1")),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(inv["currency"]["code"], "EUR");
    assert_eq!(inv["tax-amount"], "19.00");
    assert_eq!(inv["total-with-taxes"], "119.00");
    assert_eq!(inv["invoice-lines"][0]["account"]["segment-2"], "SALES");
    assert_eq!(inv["status"], "pending_approval");
}

#[tokio::test]
async fn a_duplicate_invoice_number_for_the_supplier_is_refused_and_found_by_the_natural_key() {
    let (s, t) = setup().await;
    let (_, first) = call(
        &s,
        &t,
        reqwest::Method::POST,
        "/api/invoices",
        Some(invoice_body("INV-9")),
    )
    .await;
    let (status, err) = call(
        &s,
        &t,
        reqwest::Method::POST,
        "/api/invoices",
        Some(invoice_body("INV-9")),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        err["errors"]["request"][0]["invoice-header"][0],
        "Invoice # has already been used for this supplier"
    );
    let sup = first["supplier"]["id"].as_i64().unwrap();
    let (_, found) = call(
        &s,
        &t,
        reqwest::Method::GET,
        &format!("/api/invoices?invoice-number=INV-9&supplier[id]={sup}"),
        None,
    )
    .await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["id"], first["id"]);
}

#[tokio::test]
async fn an_invoice_against_a_po_line_references_it_and_an_unknown_po_is_refused() {
    let (s, t) = setup().await;
    call(
        &s,
        &t,
        reqwest::Method::POST,
        "/api/purchase_orders",
        Some(po_body("B1-5")),
    )
    .await;
    let mut body = invoice_body("INV-5");
    body["currency"] = json!({"code": "USD"});
    body["invoice-lines"][0]["po-number"] = json!("B1-5");
    body["invoice-lines"][0]["order-line-num"] = json!(1);
    let (status, inv) = call(
        &s,
        &t,
        reqwest::Method::POST,
        "/api/invoices",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(inv["invoice-lines"][0]["po-number"], "B1-5");
    assert!(inv["invoice-lines"][0]["order-line-id"].is_i64());
    body["invoice-number"] = json!("INV-6");
    body["invoice-lines"][0]["po-number"] = json!("NOPE");
    let (status, _) = call(&s, &t, reqwest::Method::POST, "/api/invoices", Some(body)).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn an_invoice_missing_required_fields_is_refused_field_by_field() {
    let (s, t) = setup().await;
    for missing in [
        "invoice-number",
        "invoice-date",
        "currency",
        "supplier",
        "invoice-lines",
    ] {
        let mut body = invoice_body("INV-R");
        body.as_object_mut().unwrap().remove(missing);
        let (status, err) = call(&s, &t, reqwest::Method::POST, "/api/invoices", Some(body)).await;
        assert_eq!(status, 400, "{missing}");
        assert!(err["errors"][missing].is_array(), "{missing}: {err}");
    }
}

#[tokio::test]
async fn a_supplier_is_created_updated_and_its_name_and_number_are_unique() {
    let (s, t) = setup().await;
    let (status, sup) = call(
        &s,
        &t,
        reqwest::Method::POST,
        "/api/suppliers",
        Some(json!({"name": "New Co", "number": "V20000"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = call(
        &s,
        &t,
        reqwest::Method::POST,
        "/api/suppliers",
        Some(json!({"name": "new co"})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = call(
        &s,
        &t,
        reqwest::Method::POST,
        "/api/suppliers",
        Some(json!({"name": "Other", "number": "V20000"})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, upd) = call(
        &s,
        &t,
        reqwest::Method::PUT,
        &format!("/api/suppliers/{}", sup["id"]),
        Some(json!({"tax-id": "DE123"})),
    )
    .await;
    assert_eq!(
        (status, upd["tax-id"].as_str(), upd["name"].as_str()),
        (200, Some("DE123"), Some("New Co"))
    );
    let (_, found) = call(
        &s,
        &t,
        reqwest::Method::GET,
        "/api/suppliers?number=V20000",
        None,
    )
    .await;
    assert_eq!(found[0]["id"], sup["id"]);
}

#[tokio::test]
async fn a_supplier_custom_field_is_written_and_queried_only_when_defined() {
    let sim = CoupaSim::start(CoupaConfig {
        rate_per_sec: None,
        supplier_custom_fields: vec!["b1-card-code".into()],
        ..CoupaConfig::default()
    })
    .await
    .unwrap();
    let tok = token(&sim, WRITE_SCOPES).await;
    let (status, body) = call(
        &sim,
        &tok,
        reqwest::Method::POST,
        "/api/suppliers",
        Some(json!({"name": "Contoso", "custom-fields": {"undefined-field": "x"}})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, created) = call(
        &sim,
        &tok,
        reqwest::Method::POST,
        "/api/suppliers",
        Some(json!({"name": "Contoso", "custom-fields": {"b1-card-code": "V30000"}})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["custom-fields"]["b1-card-code"], "V30000");
    let (status, found) = call(
        &sim,
        &tok,
        reqwest::Method::GET,
        "/api/suppliers?custom-fields[b1-card-code]=V30000",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    let (_, none) = call(
        &sim,
        &tok,
        reqwest::Method::GET,
        "/api/suppliers?custom-fields[b1-card-code]=V99999",
        None,
    )
    .await;
    assert_eq!(none, json!([]));
}
