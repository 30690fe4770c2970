//! Coupa simulator: purchase orders (coupa.md §1.8), PO-backed invoice lines (§1.6), suppliers
//! (§1.9) and credit notes, over real HTTP.

mod common;

use chrono::DateTime;
use common::*;
use mlc_sandbox::coupa::{
    CoupaSim, NewInvoice, NewInvoiceLine, NewOrderLine, NewPurchaseOrder, NewSupplier,
};
use serde_json::Value;

/// Every scope the simulator knows, including the (unconfirmed, §1.1) purchase-order one.
const SCOPES: &str = "core.common.read core.invoice.read core.invoice.write core.supplier.read core.purchase_order.read";

async fn token_with(sim: &CoupaSim, scope: &str) -> String {
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

fn supplier(sim: &CoupaSim) -> i64 {
    sim.add_supplier(NewSupplier::new("Fabrikam, Inc.", "SUP-001"))
}

fn po(sim: &CoupaSim, s: i64, number: &str) -> i64 {
    sim.add_purchase_order(NewPurchaseOrder::issued(s, number).line(NewOrderLine::qty(
        "Paper",
        "5",
        "12.3456",
        &["6100", "ADM"],
    )))
}

async fn get(sim: &CoupaSim, token: &str, path: &str) -> (u16, Value) {
    let resp = coupa_get(sim, token, path).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .expect("a JSON array")
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

fn at(s: &str) -> DateTime<chrono::FixedOffset> {
    DateTime::parse_from_rfc3339(s).unwrap()
}

#[tokio::test]
async fn purchase_order_renders_the_documented_fields() {
    let sim = coupa().await;
    let s = supplier(&sim);
    let id = sim.add_purchase_order(
        NewPurchaseOrder::issued(s, "PO-1001")
            .line(NewOrderLine::qty("Paper", "5", "12.3456", &["6100", "ADM"]))
            .line(NewOrderLine::qty("Consulting", "2.5", "100", &["6200"]).uom("HR")),
    );
    let token = token_with(&sim, SCOPES).await;
    let (status, v) = get(&sim, &token, &format!("/api/purchase_orders/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(v["id"].as_i64(), Some(id));
    assert_eq!(v["po-number"], "PO-1001");
    assert_eq!(v["status"], "issued");
    assert_eq!(v["version"].as_i64(), Some(1), "version is a number (§1.4)");
    assert_eq!(v["currency"]["code"], "USD");
    assert_eq!(v["supplier"]["id"].as_i64(), Some(s));
    assert_eq!(v["supplier"]["number"], "SUP-001");
    assert_eq!(v["exported"], false);
    assert_eq!(v["total"], "311.73");
    assert!(v["created-at"].as_str().unwrap().ends_with("-07:00"));
    let l = &v["order-lines"][0];
    assert_eq!(l["line-num"].as_i64(), Some(1));
    assert_eq!(
        (l["quantity"].as_str(), l["price"].as_str()),
        (Some("5"), Some("12.3456"))
    );
    assert_eq!(l["total"], "61.73");
    assert_eq!(l["uom"]["code"], "EA");
    assert_eq!(l["account"]["code"], "6100-ADM");
    assert_eq!(l["account"]["segment-2"], "ADM");
    assert_eq!(v["order-lines"][1]["uom"]["code"], "HR");
    assert_eq!(v, sim.purchase_order_json(id).unwrap());
}

#[tokio::test]
async fn purchase_order_index_caps_limit_at_50_and_offset_is_zero_based() {
    let sim = coupa().await;
    let s = supplier(&sim);
    let all: Vec<i64> = (0..120).map(|i| po(&sim, s, &format!("PO-{i}"))).collect();
    let token = token_with(&sim, SCOPES).await;
    let (_, first) = get(&sim, &token, "/api/purchase_orders?limit=200").await;
    assert_eq!(ids(&first), all[..50]);
    let (_, third) = get(&sim, &token, "/api/purchase_orders?limit=50&offset=100").await;
    assert_eq!(ids(&third), all[100..]);
    let (status, past) = get(&sim, &token, "/api/purchase_orders?offset=500").await;
    assert_eq!((status, past), (200, Value::Array(vec![])));
}

#[tokio::test]
async fn purchase_order_index_filters_by_keyset_window_and_status_in_either_spelling() {
    let sim = coupa().await;
    let s = supplier(&sim);
    let ids_all: Vec<i64> = (0..6).map(|i| po(&sim, s, &format!("PO-{i}"))).collect();
    for (i, id) in ids_all.iter().enumerate() {
        sim.set_purchase_order_updated_at(*id, at(&format!("2025-01-0{}T10:00:00Z", i + 1)));
    }
    sim.set_purchase_order_status(ids_all[3], "draft");
    sim.set_purchase_order_updated_at(ids_all[3], at("2025-01-04T10:00:00Z"));
    let token = token_with(&sim, SCOPES).await;
    for (lower, upper, after) in [
        ("updated-at[gt_or_eq]", "updated-at[lt]", "id[gt]"),
        ("updated_at[gt_or_eq]", "updated_at[lt]", "id[gt]"),
    ] {
        let q = format!(
            "/api/purchase_orders?status[not_eq]=draft&{lower}=2025-01-02T10:00:00Z&{upper}=2025-01-06T10:00:00Z&{after}={}",
            ids_all[1]
        );
        let (status, v) = get(&sim, &token, &q).await;
        assert_eq!(status, 200, "{v}");
        // ids_all[1] is at the lower bound but not above the key; [3] is a draft; [5] is at
        // the exclusive upper bound.
        assert_eq!(ids(&v), vec![ids_all[2], ids_all[4]], "{q}");
    }
    let (_, issued) = get(&sim, &token, "/api/purchase_orders?status=issued").await;
    assert_eq!(ids(&issued).len(), 5);
    let (_, by_number) = get(&sim, &token, "/api/purchase_orders?po-number=PO-4").await;
    assert_eq!(ids(&by_number), vec![ids_all[4]]);
}

#[tokio::test]
async fn purchase_orders_need_the_purchase_order_scope() {
    let sim = coupa().await;
    po(&sim, supplier(&sim), "PO-1");
    let without = token_with(&sim, "core.common.read core.invoice.read").await;
    let (status, v) = get(&sim, &without, "/api/purchase_orders").await;
    assert_eq!(status, 403);
    assert!(v["errors"].is_object());
    let (status, _) = get(&sim, &without, "/api/purchase_orders/1").await;
    assert_eq!(status, 403);
    let with = token_with(&sim, "core.purchase_order.read").await;
    assert_eq!(get(&sim, &with, "/api/purchase_orders").await.0, 200);
}

#[tokio::test]
async fn unknown_purchase_order_is_a_404_with_the_errors_shape() {
    let sim = coupa().await;
    let token = token_with(&sim, SCOPES).await;
    let (status, v) = get(&sim, &token, "/api/purchase_orders/999").await;
    assert_eq!(status, 404);
    assert!(v["errors"].is_object());
}

#[tokio::test]
async fn unknown_purchase_order_filter_is_refused() {
    let sim = coupa().await;
    let token = token_with(&sim, SCOPES).await;
    let (status, v) = get(&sim, &token, "/api/purchase_orders?colour=red").await;
    assert_eq!(status, 400);
    assert!(v["errors"]["colour"].is_array());
}

#[tokio::test]
async fn purchase_order_changes_bump_updated_at_and_version() {
    let sim = coupa().await;
    let id = po(&sim, supplier(&sim), "PO-1");
    sim.set_purchase_order_updated_at(id, at("2024-01-01T00:00:00Z"));
    let before = sim.purchase_order_json(id).unwrap();
    sim.set_purchase_order_line_quantity(id, 1, "7");
    let v = sim.purchase_order_json(id).unwrap();
    assert_ne!(v["updated-at"], before["updated-at"]);
    assert_eq!(v["version"].as_i64(), Some(2));
    assert_eq!(v["order-lines"][0]["quantity"], "7");
    assert_eq!(v["total"], "86.42");
    let n = sim.add_purchase_order_line(id, NewOrderLine::qty("Toner", "1", "40", &["6100"]));
    assert_eq!(n, Some(2));
    sim.set_purchase_order_status(id, "cancelled");
    let v = sim.purchase_order_json(id).unwrap();
    assert_eq!(v["version"].as_i64(), Some(4));
    assert_eq!(v["status"], "cancelled");
    assert_eq!(v["order-lines"][1]["line-num"].as_i64(), Some(2));
}

#[tokio::test]
async fn page_hook_runs_after_the_requested_purchase_order_page() {
    let sim = coupa().await;
    let s = supplier(&sim);
    let id = po(&sim, s, "PO-1");
    sim.after_purchase_order_list_page(
        1,
        Box::new(move |sim| sim.set_purchase_order_status(id, "closed")),
    );
    let token = token_with(&sim, SCOPES).await;
    // An invoice list does not count as a purchase-order page.
    assert_eq!(get(&sim, &token, "/api/invoices").await.0, 200);
    assert_eq!(sim.purchase_order_json(id).unwrap()["status"], "issued");
    let (_, v) = get(&sim, &token, "/api/purchase_orders").await;
    assert_eq!(
        v[0]["status"], "issued",
        "the page is built before the hook"
    );
    assert_eq!(sim.purchase_order_json(id).unwrap()["status"], "closed");
}

#[tokio::test]
async fn invoice_line_against_a_po_line_names_the_po_and_its_line() {
    let sim = coupa().await;
    let s = supplier(&sim);
    let po_id = po(&sim, s, "PO-1001");
    let inv = sim.add_invoice(
        NewInvoice::approved(s, "INV-1")
            .line(
                NewInvoiceLine::qty("Paper", "5", "12.3456", &["6100", "ADM"])
                    .against_po("PO-1001", 1),
            )
            .line(NewInvoiceLine::amount("Freight", "10", &["6100"])),
    );
    let v = sim.invoice_json(inv).unwrap();
    let l = &v["invoice-lines"][0];
    assert_eq!(l["po-number"], "PO-1001");
    assert_eq!(l["order-header-num"], "PO-1001");
    assert_eq!(l["order-line-num"], "1");
    let po_line_id = sim.purchase_order_json(po_id).unwrap()["order-lines"][0]["id"].clone();
    assert_eq!(l["order-line-id"], po_line_id);
    let free = &v["invoice-lines"][1];
    assert!(free.get("po-number").is_none() && free.get("order-line-num").is_none());
}

#[tokio::test]
async fn credit_note_renders_negative_lines_and_totals() {
    let sim = coupa().await;
    let s = supplier(&sim);
    let id = sim.add_invoice(
        NewInvoice::credit_note(s, "CN-1")
            .line(NewInvoiceLine::qty("Return", "3", "12.3456", &["6100"]))
            .line(NewInvoiceLine::amount("Fee", "-5", &["6100"])),
    );
    let token = token_with(&sim, SCOPES).await;
    let (_, v) = get(&sim, &token, &format!("/api/invoices/{id}")).await;
    assert_eq!(v["document-type"], "Credit Note");
    assert_eq!(v["is-credit-note"], true);
    assert_eq!(v["invoice-lines"][0]["price"], "-12.3456");
    assert_eq!(v["invoice-lines"][0]["total"], "-37.04");
    assert_eq!(v["invoice-lines"][1]["total"], "-5.00");
    assert_eq!(v["total-with-taxes"], "-42.04");
    assert_eq!(v["gross-total"], "-42.04");
}

#[tokio::test]
async fn supplier_index_filters_by_updated_at_window_and_id_keyset() {
    let sim = coupa().await;
    let ids_all: Vec<i64> = (0..4)
        .map(|i| sim.add_supplier(NewSupplier::new(&format!("S{i}"), &format!("SUP-{i}"))))
        .collect();
    for (i, id) in ids_all.iter().enumerate() {
        sim.set_supplier_updated_at(*id, at(&format!("2025-01-0{}T10:00:00Z", i + 1)));
    }
    let token = token_with(&sim, SCOPES).await;
    let q = format!(
        "/api/suppliers?updated_at[gt_or_eq]=2025-01-01T10:00:00Z&updated-at[lt]=2025-01-04T10:00:00Z&id[gt]={}",
        ids_all[0]
    );
    let (status, v) = get(&sim, &token, &q).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(ids(&v), vec![ids_all[1], ids_all[2]]);
}

#[tokio::test]
async fn supplier_tax_id_changes_bump_updated_at_and_render_all_fields() {
    let sim = coupa().await;
    let id = supplier(&sim);
    sim.set_supplier_updated_at(id, at("2024-01-01T00:00:00Z"));
    sim.set_supplier_tax_id(id, Some("DE123456789"));
    let token = token_with(&sim, SCOPES).await;
    let (_, v) = get(&sim, &token, &format!("/api/suppliers/{id}")).await;
    for f in [
        "id",
        "name",
        "display-name",
        "number",
        "status",
        "tax-id",
        "created-at",
        "updated-at",
    ] {
        assert!(v.get(f).is_some(), "{f} missing from {v}");
    }
    assert_eq!(v["tax-id"], "DE123456789");
    assert_ne!(v["updated-at"], "2023-12-31T17:00:00-07:00");
    sim.set_supplier_tax_id(id, None);
    assert!(sim.supplier_json(id).unwrap().get("tax-id").is_none());
    sim.set_supplier_updated_at(id, at("2024-01-01T00:00:00Z"));
    sim.touch_supplier(id);
    assert_ne!(
        sim.supplier_json(id).unwrap()["updated-at"],
        "2023-12-31T17:00:00-07:00"
    );
}

#[tokio::test]
async fn control_routes_add_a_purchase_order_and_change_its_status() {
    let sim = coupa().await;
    let s = supplier(&sim);
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/_sandbox/purchase_orders", sim.base_url()))
        .json(&serde_json::json!({
            "supplier_id": s, "po_number": "PO-9",
            "lines": [{"description": "Paper", "quantity": "2", "price": "3.50", "segments": ["6100"]}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    assert_eq!(sim.purchase_order_json(id).unwrap()["total"], "7.00");
    let v: Value = http
        .post(format!(
            "{}/_sandbox/purchase_orders/{id}/status",
            sim.base_url()
        ))
        .json(&serde_json::json!({"status": "cancelled"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "cancelled");
    assert_eq!(sim.purchase_order_id_by_number("PO-9"), Some(id));
}

#[tokio::test]
async fn payment_with_an_unreadable_date_or_long_notes_is_refused() {
    let sim = coupa().await;
    let s = supplier(&sim);
    let id = sim.add_invoice(NewInvoice::approved(s, "A").line(NewInvoiceLine::amount(
        "x",
        "10",
        &["6100"],
    )));
    let token = token_with(&sim, SCOPES).await;
    for body in [
        serde_json::json!({"payments": [{"amount-paid": "10", "payment-date": "20/01/2025"}]}),
        serde_json::json!({"payments": [{"amount-paid": "10", "notes": "x".repeat(256)}]}),
    ] {
        let resp = reqwest::Client::new()
            .put(format!("{}/api/invoices/{id}", sim.base_url()))
            .bearer_auth(&token)
            .header("X-COUPA-API-Version", "R40")
            .header("Accept", "application/json")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
    }
    assert!(
        sim.invoice_json(id).unwrap()["payments"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}
