//! Business Central JSON `$batch` (business-central.md A5, A4) and multi-level deep insert
//! (lines with their `dimensionSetLines`) over real HTTP.

mod common;

use std::time::Duration;

use common::*;
use mlc_sandbox::bc::{BcConfig, RateLimit};
use reqwest::Method;
use serde_json::{Value, json};

fn batch_url(sim: &mlc_sandbox::bc::BcSim) -> String {
    format!("{}/$batch", sim.api_root())
}

fn rel(sim: &mlc_sandbox::bc::BcSim, path: &str) -> String {
    format!("companies({})/{path}", sim.company_id())
}

async fn send_batch(
    sim: &mlc_sandbox::bc::BcSim,
    token: &str,
    snapshot: bool,
    requests: Value,
) -> (u16, Value) {
    let mut req = bc_req(Method::POST, &batch_url(sim), token)
        .header("Accept", "application/json")
        .json(&json!({ "requests": requests }));
    if snapshot {
        req = req.header("Isolation", "snapshot");
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn dims_line(seq: i64, account: &str, dept: &str, project: &str) -> Value {
    json!({"sequence": seq, "lineType": "Account", "lineObjectNumber": account,
           "quantity": 1, "unitCost": 10,
           "dimensionSetLines": [{"code": "DEPARTMENT", "valueCode": dept},
                                 {"code": "PROJECT", "valueCode": project}]})
}

#[tokio::test]
async fn deep_insert_takes_each_lines_dimension_set_lines() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let inv = create_invoice(
        &sim,
        &token,
        "DEEP-1",
        json!([
            dims_line(10000, "6100", "SALES", "P-100"),
            dims_line(20000, "6200", "ADM", "P-200")
        ]),
    )
    .await;
    let view = sim
        .purchase_invoice(inv["id"].as_str().unwrap().parse().unwrap())
        .unwrap();
    assert_eq!(
        view.lines[1].dimensions,
        vec![
            ("DEPARTMENT".to_string(), "ADM".to_string()),
            ("PROJECT".to_string(), "P-200".to_string())
        ]
    );
    assert_eq!(sim.requests().len(), 2, "token + one create");
}

#[tokio::test]
async fn deep_insert_with_an_unknown_dimension_value_creates_nothing() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let resp = bc_req(
        Method::POST,
        &format!("{}/purchaseInvoices", company_url(&sim)),
        &token,
    )
    .json(
        &json!({"vendorNumber": "V10000", "vendorInvoiceNumber": "DEEP-2",
                  "purchaseInvoiceLines": [dims_line(10000, "6100", "SALES", "P-999")]}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(sim.purchase_invoices().is_empty());
}

#[tokio::test]
async fn batch_runs_operations_in_order_and_answers_each_by_position() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let inv = create_invoice(&sim, &token, "B-1", one_line()).await;
    let id = inv["id"].as_str().unwrap();
    sim.clear_requests();
    let spent = sim.budget_spent();
    let (status, body) = send_batch(
        &sim,
        &token,
        false,
        json!([
            {"method": "POST", "id": "1",
             "url": rel(&sim, &format!("purchaseInvoices({id})/Microsoft.NAV.post")),
             "headers": {"Content-Type": "application/json"}},
            {"method": "GET", "id": "2", "url": rel(&sim, &format!("purchaseInvoices({id})"))}
        ]),
    )
    .await;
    assert_eq!(status, 200);
    let r = body["responses"].as_array().unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["status"], 204);
    assert_eq!(r[1]["status"], 200);
    assert_eq!(r[1]["body"]["status"], "Open", "the GET sees the post");
    assert_ne!(r[1]["body"]["number"], inv["number"], "renumbered");
    assert_eq!(sim.requests().len(), 1, "one round trip");
    assert_eq!(sim.budget_spent() - spent, 2, "each operation counts");
}

#[tokio::test]
async fn snapshot_batch_that_fails_leaves_nothing() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let (status, body) = send_batch(
        &sim,
        &token,
        true,
        json!([
            {"method": "POST", "url": rel(&sim, "purchaseInvoices"),
             "headers": {"Content-Type": "application/json"},
             "body": {"vendorNumber": "V10000", "vendorInvoiceNumber": "SNAP-1",
                      "purchaseInvoiceLines": [{"lineType": "Account", "lineObjectNumber": "6100", "quantity": 1, "unitCost": 5}]}},
            {"method": "POST", "url": rel(&sim, "purchaseInvoices"),
             "headers": {"Content-Type": "application/json"},
             "body": {"vendorNumber": "NO-SUCH-VENDOR", "vendorInvoiceNumber": "SNAP-2"}}
        ]),
    )
    .await;
    assert_eq!(status, 200, "the envelope succeeds");
    let r = body["responses"].as_array().unwrap();
    assert_eq!(r[1]["status"], 400);
    assert_ne!(r[0]["status"], 201, "rolled back: not reported as created");
    assert!(sim.purchase_invoices().is_empty(), "rolled back entirely");

    // Without the header the first create stands.
    let (_, body) = send_batch(
        &sim,
        &token,
        false,
        json!([
            {"method": "POST", "url": rel(&sim, "purchaseInvoices"),
             "headers": {"Content-Type": "application/json"},
             "body": {"vendorNumber": "V10000", "vendorInvoiceNumber": "SNAP-1"}},
            {"method": "POST", "url": rel(&sim, "purchaseInvoices"),
             "headers": {"Content-Type": "application/json"},
             "body": {"vendorNumber": "NO-SUCH-VENDOR", "vendorInvoiceNumber": "SNAP-2"}}
        ]),
    )
    .await;
    assert_eq!(body["responses"][0]["status"], 201);
    assert_eq!(sim.purchase_invoices().len(), 1);
}

#[tokio::test]
async fn batch_over_one_hundred_operations_is_refused() {
    let sim = bc().await;
    let token = bc_token(&sim).await;
    let ops: Vec<Value> = (0..101)
        .map(|_| json!({"method": "GET", "url": rel(&sim, "vendors")}))
        .collect();
    let (status, _) = send_batch(&sim, &token, false, Value::Array(ops)).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn batch_operations_count_against_the_rate_budget() {
    let sim = bc_with(BcConfig {
        rate_limit: Some(RateLimit {
            requests: 10,
            window: Duration::from_secs(300),
        }),
        ..BcConfig::default()
    })
    .await;
    let token = bc_token(&sim).await;
    let ops = |n: usize| -> Value {
        Value::Array(
            (0..n)
                .map(|_| json!({"method": "GET", "url": rel(&sim, "vendors")}))
                .collect(),
        )
    };
    let (status, _) = send_batch(&sim, &token, false, ops(8)).await;
    assert_eq!(status, 200);
    // 8 of 10 spent: a batch of 3 does not fit (the envelope's unit is spent on the refusal).
    let (status, _) = send_batch(&sim, &token, false, ops(3)).await;
    assert_eq!(status, 429);
    assert_eq!(sim.throttled_count(), 1);
}
