//! Coupa simulator behaviour over real HTTP (coupa.md §1).

mod common;

use std::time::Duration;

use chrono::DateTime;
use common::*;
use mlc_sandbox::coupa::{CoupaConfig, CoupaSim, NewInvoice, NewInvoiceLine, NewSupplier};
use serde_json::Value;

fn supplier(sim: &CoupaSim) -> i64 {
    sim.add_supplier(NewSupplier::new("Fabrikam, Inc.", "SUP-001"))
}

fn invoice(sim: &CoupaSim, s: i64, number: &str) -> i64 {
    sim.add_invoice(NewInvoice::approved(s, number).line(NewInvoiceLine::qty(
        "Paper",
        "3",
        "12.3456",
        &["6100", "ADM", "P-100"],
    )))
}

async fn ids(resp: reqwest::Response) -> Vec<i64> {
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn token_is_issued_for_the_right_client_and_refused_for_a_wrong_secret() {
    let sim = coupa().await;
    let url = format!("{}/oauth2/token", sim.base_url());
    let ok: Value = reqwest::Client::new()
        .post(&url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "coupa-client"),
            ("client_secret", "coupa-secret"),
            ("scope", "core.invoice.read"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ok["token_type"], "bearer");
    assert_eq!(ok["expires_in"].as_u64(), Some(86399));
    assert!(ok["access_token"].as_str().unwrap().len() >= 32);
    let bad = reqwest::Client::new()
        .post(&url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "coupa-client"),
            ("client_secret", "nope"),
            ("scope", "core.invoice.read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    assert_eq!(sim.tokens_issued(), 1);
}

#[tokio::test]
async fn token_request_without_scope_is_refused() {
    let sim = coupa().await;
    let resp = reqwest::Client::new()
        .post(format!("{}/oauth2/token", sim.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "coupa-client"),
            ("client_secret", "coupa-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_scope"
    );
}

#[tokio::test]
async fn missing_api_version_header_is_a_400() {
    let sim = coupa().await;
    let token = coupa_token(&sim).await;
    let resp = reqwest::Client::new()
        .get(format!("{}/api/invoices", sim.base_url()))
        .bearer_auth(&token)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["errors"]["X-COUPA-API-Version"][0],
        "header is required"
    );
    assert!(!sim.requests().last().unwrap().had_api_version_header);
}

#[tokio::test]
async fn missing_bearer_is_a_401_with_the_errors_shape() {
    let sim = coupa().await;
    let resp = reqwest::Client::new()
        .get(format!("{}/api/invoices", sim.base_url()))
        .header("X-COUPA-API-Version", "R40")
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"]["error"][0], "Invalid or expired token");
}

#[tokio::test]
async fn token_past_its_ttl_is_a_401() {
    let sim = CoupaSim::start(CoupaConfig {
        token_ttl_secs: 1,
        rate_per_sec: None,
        ..CoupaConfig::default()
    })
    .await
    .unwrap();
    let token = coupa_token(&sim).await;
    assert_eq!(
        coupa_get(&sim, &token, "/api/invoices")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        coupa_get(&sim, &token, "/api/invoices")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn expire_tokens_invalidates_issued_tokens() {
    let sim = coupa().await;
    let token = coupa_token(&sim).await;
    sim.expire_tokens();
    assert_eq!(
        coupa_get(&sim, &token, "/api/invoices")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn accept_other_than_json_is_a_406() {
    let sim = coupa().await;
    let token = coupa_token(&sim).await;
    let resp = coupa_get(&sim, &token, "/api/invoices")
        .header("Accept", "application/xml")
        .send()
        .await
        .unwrap();
    // reqwest appends headers; send a request with only XML accepted.
    let only_xml = reqwest::Client::new()
        .get(format!("{}/api/invoices", sim.base_url()))
        .bearer_auth(&token)
        .header("X-COUPA-API-Version", "R40")
        .header("Accept", "application/xml")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "json among the accepted types is fine");
    assert_eq!(only_xml.status(), 406);
}

#[tokio::test]
async fn limit_is_capped_at_50_and_offset_is_zero_based() {
    let sim = coupa().await;
    let s = supplier(&sim);
    let all: Vec<i64> = (0..120)
        .map(|i| invoice(&sim, s, &format!("INV-{i}")))
        .collect();
    let token = coupa_token(&sim).await;
    let first = ids(coupa_get(&sim, &token, "/api/invoices?limit=200")
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(first, all[..50]);
    let third = ids(coupa_get(&sim, &token, "/api/invoices?limit=50&offset=100")
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(third, all[100..]);
    let past = ids(coupa_get(&sim, &token, "/api/invoices?offset=500")
        .send()
        .await
        .unwrap())
    .await;
    assert!(past.is_empty(), "an empty page is [] with 200");
}

#[tokio::test]
async fn updated_at_filters_compare_instants_across_offsets() {
    let sim = coupa().await;
    let s = supplier(&sim);
    let a = invoice(&sim, s, "A");
    let b = invoice(&sim, s, "B");
    sim.set_invoice_updated_at(
        a,
        DateTime::parse_from_rfc3339("2024-06-01T10:00:00-07:00").unwrap(),
    );
    sim.set_invoice_updated_at(
        b,
        DateTime::parse_from_rfc3339("2024-06-01T18:00:00+00:00").unwrap(),
    );
    let token = coupa_token(&sim).await;
    // 17:00Z == 10:00-07:00: a is not strictly after; b (18:00Z) is.
    let gt = ids(coupa_get(
        &sim,
        &token,
        "/api/invoices?updated-at[gt]=2024-06-01T17:00:00Z",
    )
    .send()
    .await
    .unwrap())
    .await;
    assert_eq!(gt, vec![b]);
    let ge = ids(coupa_get(
        &sim,
        &token,
        "/api/invoices?updated-at[gt_or_eq]=2024-06-01T19%3A00%3A00%2B02%3A00",
    )
    .send()
    .await
    .unwrap())
    .await;
    assert_eq!(ge, vec![a, b], "19:00+02:00 is 17:00Z");
    // Without an offset the value is in the instance offset (-07:00): 10:00 local.
    let local = ids(coupa_get(
        &sim,
        &token,
        "/api/invoices?updated-at[lt_or_eq]=2024-06-01T10:00:00",
    )
    .send()
    .await
    .unwrap())
    .await;
    assert_eq!(local, vec![a]);
}

#[tokio::test]
async fn timestamps_render_in_the_instance_offset_with_seconds() {
    let sim = coupa().await;
    let s = supplier(&sim);
    let a = invoice(&sim, s, "A");
    sim.set_invoice_updated_at(
        a,
        DateTime::parse_from_rfc3339("2024-06-01T18:00:00.750Z").unwrap(),
    );
    assert_eq!(
        sim.invoice_json(a).unwrap()["updated-at"],
        "2024-06-01T11:00:00-07:00"
    );
}

#[tokio::test]
async fn hyphen_and_underscore_filter_keys_mean_the_same() {
    let sim = coupa().await;
    let s = supplier(&sim);
    let a = invoice(&sim, s, "A");
    let _b = invoice(&sim, s, "B");
    let token = coupa_token(&sim).await;
    let hy = ids(coupa_get(
        &sim,
        &token,
        &format!("/api/invoices?id[gt_or_eq]={a}&invoice-number=A"),
    )
    .send()
    .await
    .unwrap())
    .await;
    let us = ids(coupa_get(
        &sim,
        &token,
        &format!("/api/invoices?id[gt_or_eq]={a}&invoice_number=A"),
    )
    .send()
    .await
    .unwrap())
    .await;
    assert_eq!(hy, vec![a]);
    assert_eq!(us, hy);
    let upd = ids(coupa_get(
        &sim,
        &token,
        "/api/invoices?updated_at[gt]=2000-01-01T00:00:00Z",
    )
    .send()
    .await
    .unwrap())
    .await;
    assert_eq!(upd.len(), 2);
}

#[tokio::test]
async fn repeated_status_values_or_together_and_unknown_filters_are_refused() {
    let sim = coupa().await;
    let s = supplier(&sim);
    let a = invoice(&sim, s, "A");
    let b = invoice(&sim, s, "B");
    let _c = invoice(&sim, s, "C");
    sim.set_invoice_status(b, "on_hold");
    sim.set_invoice_status(_c, "draft");
    let token = coupa_token(&sim).await;
    let both = ids(
        coupa_get(&sim, &token, "/api/invoices?status=approved&status=on_hold")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(both, vec![a, b]);
    let r#in = ids(
        coupa_get(&sim, &token, "/api/invoices?status[in]=approved,on_hold")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r#in, vec![a, b]);
    let bad = coupa_get(&sim, &token, "/api/invoices?colour=red")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.json::<Value>().await.unwrap()["errors"]["colour"].is_array());
}

#[tokio::test]
async fn null_fields_are_dropped_and_money_is_strings() {
    let sim = coupa().await;
    let s = sim.add_supplier(NewSupplier {
        name: "No Number Ltd".into(),
        number: None,
        tax_id: None,
    });
    let id = sim.add_invoice(
        NewInvoice::approved(s, "X-1")
            .line(NewInvoiceLine::qty(
                "Paper",
                "3",
                "12.3456",
                &["6100", "ADM", "P-100"],
            ))
            .line(NewInvoiceLine::amount("Fee", "10", &["6400"])),
    );
    let token = coupa_token(&sim).await;
    let v: Value = coupa_get(&sim, &token, &format!("/api/invoices/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        v["supplier"].get("number").is_none(),
        "null supplier number is dropped"
    );
    assert!(v.get("payment-date").is_none());
    assert_eq!(v["total-with-taxes"], "47.04");
    assert_eq!(v["invoice-lines"][0]["price"], "12.3456");
    assert_eq!(v["invoice-lines"][0]["quantity"], "3");
    assert_eq!(v["invoice-lines"][0]["total"], "37.04");
    assert_eq!(v["invoice-lines"][0]["account"]["code"], "6100-ADM-P-100");
    assert_eq!(v["invoice-lines"][0]["account"]["segment-3"], "P-100");
    assert_eq!(v["invoice-lines"][1]["type"], "InvoiceAmountLine");
    assert!(v["invoice-lines"][1].get("quantity").is_none());
    assert_eq!(v, sim.invoice_json(id).unwrap());
}

#[tokio::test]
async fn credit_notes_have_negative_amounts() {
    let sim = coupa().await;
    let s = supplier(&sim);
    let mut inv = NewInvoice::approved(s, "CN-1").line(NewInvoiceLine::qty(
        "Return",
        "2",
        "10.00",
        &["6100"],
    ));
    inv.document_type = "Credit Note".into();
    let v = sim.invoice_json(sim.add_invoice(inv)).unwrap();
    assert_eq!(v["is-credit-note"], true);
    assert_eq!(v["total-with-taxes"], "-20.00");
}

#[tokio::test]
async fn unknown_invoice_is_a_404_with_the_errors_shape() {
    let sim = coupa().await;
    let token = coupa_token(&sim).await;
    let resp = coupa_get(&sim, &token, "/api/invoices/999")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.json::<Value>().await.unwrap()["errors"].is_object());
}

#[tokio::test]
async fn suppliers_are_listed_and_filtered_by_number() {
    let sim = coupa().await;
    let s = supplier(&sim);
    sim.add_supplier(NewSupplier::new("Litware Ltd.", "SUP-003"));
    let token = coupa_token(&sim).await;
    let v: Value = coupa_get(&sim, &token, "/api/suppliers?number=SUP-001")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["id"].as_i64(), Some(s));
    assert_eq!(v[0]["status"], "active");
    assert_eq!(v[0]["display-name"], "Fabrikam, Inc.");
}

#[tokio::test]
async fn page_hook_runs_after_the_requested_list_page() {
    let sim = coupa().await;
    let s = supplier(&sim);
    for i in 0..60 {
        invoice(&sim, s, &format!("I{i}"));
    }
    let token = coupa_token(&sim).await;
    sim.after_list_page(
        1,
        Box::new(move |c| {
            let id = invoice(c, s, "LATE");
            c.set_invoice_status(id, "approved");
        }),
    );
    let p1 = ids(coupa_get(&sim, &token, "/api/invoices")
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(p1.len(), 50);
    let p2 = ids(coupa_get(&sim, &token, "/api/invoices?offset=50")
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(
        p2.len(),
        11,
        "the invoice added after page 1 shows up on page 2"
    );
}

#[tokio::test]
async fn put_records_payment_and_bumps_updated_at() {
    let sim = coupa().await;
    let s = supplier(&sim);
    let id = invoice(&sim, s, "A");
    sim.set_invoice_updated_at(
        id,
        DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z").unwrap(),
    );
    let token = coupa_token(&sim).await;
    let v: Value = reqwest::Client::new()
        .put(format!("{}/api/invoices/{id}", sim.base_url()))
        .bearer_auth(&token)
        .header("X-COUPA-API-Version", "R40")
        .header("Accept", "application/json")
        .json(&serde_json::json!({"paid": true, "payments": [{"amount-paid": "37.04", "notes": "BC-PAY-1", "payment-date": "2025-01-20"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["paid"], true);
    assert_eq!(v["payments"][0]["notes"], "BC-PAY-1");
    assert_ne!(v["updated-at"], "2023-12-31T17:00:00-07:00");
}

#[tokio::test]
async fn requests_beyond_the_rate_get_429_with_retry_after_1() {
    let sim = CoupaSim::start(CoupaConfig {
        rate_per_sec: Some(2),
        burst: 1,
        ..CoupaConfig::default()
    })
    .await
    .unwrap();
    let token = coupa_token(&sim).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..5 {
        let r = coupa_get(&sim, &token, "/api/invoices")
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
        }
        statuses.push(r.status().as_u16());
    }
    assert_eq!(&statuses[..3], &[200, 200, 200]);
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    assert_eq!(retry_after.as_deref(), Some("1"));
}

#[tokio::test]
async fn webhook_signature_verifies_with_the_secret() {
    use axum::body::Bytes;
    use axum::http::HeaderMap;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Bytes)>();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let sig = headers["x-coupa-signature"].to_str().unwrap().to_owned();
                tx.send((sig, body)).unwrap();
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let sim = coupa().await;
    let s = supplier(&sim);
    let id = invoice(&sim, s, "A");
    let status = sim
        .send_invoice_webhook(&format!("http://{addr}/hook"), id)
        .await
        .unwrap();
    assert_eq!(status, 202);
    let (sig, body) = rx.recv().await.unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"coupa-webhook-secret").unwrap();
    mac.update(&body);
    assert_eq!(
        sig,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
    let sent: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(sent, sim.invoice_json(id).unwrap());
}

#[tokio::test]
async fn control_routes_drive_faults_and_status_over_http() {
    let sim = coupa().await;
    let s = supplier(&sim);
    let id = invoice(&sim, s, "A");
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/_sandbox/invoices/{id}/status", sim.base_url()))
        .json(&serde_json::json!({"status": "voided"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "voided");
    http.post(format!("{}/_sandbox/faults", sim.base_url()))
        .json(&serde_json::json!({"method": "GET", "path_contains": "/api/invoices", "count": 1, "kind": {"Status": 503}}))
        .send()
        .await
        .unwrap();
    let token = coupa_token(&sim).await;
    assert_eq!(
        coupa_get(&sim, &token, "/api/invoices")
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    assert_eq!(
        coupa_get(&sim, &token, "/api/invoices")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let log: Vec<Value> = http
        .get(format!("{}/_sandbox/requests", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(log.iter().any(|r| r["status"] == 503));
}
