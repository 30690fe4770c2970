//! Injected faults, shared by both simulators.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mlc_sandbox::bc::BcConfig;
use mlc_sandbox::{FaultKind, FaultRule};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn lose_response_commits_the_create_but_answers_500() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    sim.fail_next(FaultRule::new(
        "post",
        "/purchaseInvoices",
        1,
        FaultKind::LoseResponse,
    ));
    let r = bc_req(Method::POST, &format!("{}/purchaseInvoices", company_url(&sim)), &token)
        .json(&json!({"vendorNumber": "V10000", "vendorInvoiceNumber": "LOST-1", "purchaseInvoiceLines": one_line()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("CorrelationId")
    );
    let invoices = sim.purchase_invoices();
    assert_eq!(invoices.len(), 1, "the handler ran: the invoice exists");
    assert_eq!(invoices[0].vendor_invoice_number, "LOST-1");
}

#[tokio::test]
async fn hang_delays_the_response_then_runs_the_handler() {
    let sim = coupa().await;
    let token = coupa_token(&sim).await;
    sim.fail_next(FaultRule::new(
        "GET",
        "/api/invoices",
        1,
        FaultKind::Hang { millis: 400 },
    ));
    let started = Instant::now();
    let r = coupa_get(&sim, &token, "/api/invoices")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn hang_trips_a_client_timeout_but_the_write_still_lands() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    sim.fail_next(FaultRule::new(
        "POST",
        "purchaseInvoices",
        1,
        FaultKind::Hang { millis: 300 },
    ));
    let r = bc_req(
        Method::POST,
        &format!("{}/purchaseInvoices", company_url(&sim)),
        &token,
    )
    .timeout(Duration::from_millis(100))
    .json(&json!({"vendorNumber": "V10000", "vendorInvoiceNumber": "SLOW-1"}))
    .send()
    .await;
    assert!(r.unwrap_err().is_timeout());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(sim.purchase_invoices().len(), 1);
}

#[tokio::test]
async fn status_fault_answers_without_running_the_handler_in_the_system_shape() {
    let sim = coupa().await;
    let token = coupa_token(&sim).await;
    sim.fail_next(FaultRule::new(
        "GET",
        "/api/invoices",
        2,
        FaultKind::Status(503),
    ));
    for _ in 0..2 {
        let r = coupa_get(&sim, &token, "/api/invoices")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        assert!(r.json::<Value>().await.unwrap()["errors"].is_object());
    }
    assert_eq!(
        coupa_get(&sim, &token, "/api/invoices")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn too_many_requests_fault_sets_retry_after_and_counts_as_throttled() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    sim.fail_next(FaultRule::new(
        "GET",
        "vendors",
        1,
        FaultKind::TooManyRequests {
            retry_after: Some(7),
        },
    ));
    let r = bc_req(
        Method::GET,
        &format!("{}/vendors", company_url(&sim)),
        &token,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    assert_eq!(sim.throttled_count(), 1);
}

#[tokio::test]
async fn bc_queues_requests_beyond_max_concurrent() {
    let sim = bc_with(BcConfig {
        max_concurrent: 1,
        ..BcConfig::default()
    })
    .await;
    let token = bc_token(&sim).await;
    sim.fail_next(FaultRule::new(
        "GET",
        "vendors",
        1,
        FaultKind::Hang { millis: 300 },
    ));
    let url = format!("{}/vendors", company_url(&sim));
    let slow = tokio::spawn(bc_req(Method::GET, &url, &token).send());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let fast = bc_req(
        Method::GET,
        &format!("{}/accounts", company_url(&sim)),
        &token,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(fast.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "waited for the one slot"
    );
    assert_eq!(slow.await.unwrap().unwrap().status(), 200);
}
