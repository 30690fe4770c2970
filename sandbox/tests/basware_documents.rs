//! Basware simulator: accounting documents — the redirected list, continuation paging, and the
//! processing-status state machine (basware.md §3.3–§3.6, §3.10).

mod basware_support;

use basware_support::*;
use mlc_sandbox::basware::{BaswareConfig, NewCodingRow, NewDocument, NewInvoiceLine};
use mlc_sandbox::{FaultKind, FaultRule};
use serde_json::{Value, json};

const WAITING: &str = "/v1/accountingDocuments?ProcessingStatus=WaitingForTransfer";

fn invoice(n: &str) -> NewDocument {
    NewDocument::invoice(n, "V10000").coding_row(NewCodingRow::new("6100", "100.00"))
}

#[tokio::test]
async fn the_list_redirects_and_the_target_refuses_a_request_carrying_authorization() {
    let sim = basware().await;
    sim.add_document(invoice("INV-1"));
    let t = token(&sim).await;
    let resp = get(&sim, &t, WAITING).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let with_auth = http().get(&location).bearer_auth(&t).send().await.unwrap();
    assert_eq!(with_auth.status(), 400);
    assert!(
        with_auth
            .text()
            .await
            .unwrap()
            .contains("Only one auth mechanism")
    );
    let without = http().get(&location).send().await.unwrap();
    assert_eq!(without.status(), 200);
    let v: Value = without.json().await.unwrap();
    assert_eq!(v["accountingDocuments"][0]["invoiceNumber"], "INV-1");
}

#[tokio::test]
async fn an_empty_list_is_404() {
    let sim = basware().await;
    let t = token(&sim).await;
    let resp = get(&sim, &t, WAITING).send().await.unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn an_unknown_query_parameter_is_refused() {
    let sim = basware().await;
    sim.add_document(invoice("INV-1"));
    let t = token(&sim).await;
    let resp = get(
        &sim,
        &t,
        "/v1/accountingDocuments?processingStatus=WaitingForTransfer",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn continuation_pages_to_the_end_and_sees_a_document_added_mid_read() {
    let sim = basware().await;
    let first: Vec<String> = (1..=3)
        .map(|i| sim.add_document(invoice(&format!("INV-{i}"))))
        .collect();
    let t = token(&sim).await;
    let q = format!("{WAITING}&pageSize=2");
    let (p1, token1) = page(get(&sim, &t, &q).send().await.unwrap()).await;
    assert_eq!(p1, first[..2]);
    let token1 = token1.expect("more to read");
    let added = sim.add_document(invoice("INV-4"));
    let (p2, token2) = page(
        get(&sim, &t, &q)
            .header("x-amz-meta-continuationtoken", &token1)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(p2, vec![first[2].clone(), added]);
    assert_eq!(token2, None, "the last page carries no token");
}

#[tokio::test]
async fn a_continuation_token_with_other_query_parameters_is_refused() {
    let sim = basware().await;
    for i in 1..=3 {
        sim.add_document(invoice(&format!("INV-{i}")));
    }
    let t = token(&sim).await;
    let (_, token1) = page(
        get(&sim, &t, &format!("{WAITING}&pageSize=2"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let resp = get(&sim, &t, &format!("{WAITING}&pageSize=3"))
        .header("x-amz-meta-continuationtoken", token1.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn acknowledge_moves_to_transfer_in_progress_and_a_repeat_is_405() {
    let sim = basware().await;
    let id = sim.add_document(invoice("INV-1"));
    let t = token(&sim).await;
    let path = format!("/v1/accountingDocuments/{id}/acknowledge");
    let ack = http()
        .post(format!("{}{path}", sim.base_url()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(ack.status(), 200);
    assert_eq!(
        sim.document(&id).unwrap().processing_status,
        "TransferInProgress"
    );
    let again = http()
        .post(format!("{}{path}", sim.base_url()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 405);
    assert_eq!(sim.document(&id).unwrap().acknowledges, 1);
    // Acknowledged documents leave the waiting list.
    assert_eq!(get(&sim, &t, WAITING).send().await.unwrap().status(), 404);
}

async fn ack(sim: &mlc_sandbox::basware::BaswareSim, t: &str, id: &str) {
    let resp = http()
        .post(format!(
            "{}/v1/accountingDocuments/{id}/acknowledge",
            sim.base_url()
        ))
        .bearer_auth(t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_transfer_response_before_the_acknowledge_is_refused() {
    let sim = basware().await;
    let id = sim.add_document(invoice("INV-1"));
    let t = token(&sim).await;
    let path = format!("/v1/accountingDocuments/{id}/transferResponses");
    let resp = post_json(&sim, &t, &path, &transfer_ok("r1", "PI-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        sim.document(&id).unwrap().processing_status,
        "WaitingForTransfer"
    );
}

#[tokio::test]
async fn a_successful_transfer_response_marks_transferred_and_a_second_is_refused() {
    let sim = basware().await;
    let id = sim.add_document(invoice("INV-1"));
    let t = token(&sim).await;
    ack(&sim, &t, &id).await;
    let path = format!("/v1/accountingDocuments/{id}/transferResponses");
    let ok = post_json(&sim, &t, &path, &transfer_ok("r1", "PI-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let doc = sim.document(&id).unwrap();
    assert_eq!(doc.processing_status, "Transferred");
    assert_eq!(doc.transfer_responses[0]["voucherNumber1"], "PI-1");
    let second = post_json(&sim, &t, &path, &transfer_ok("r2", "PI-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 400);
    let shown: Value = get(&sim, &t, &format!("/v1/accountingDocuments/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["voucherNumber1"], "PI-1");
}

#[tokio::test]
async fn a_failed_transfer_response_marks_transfer_failed() {
    let sim = basware().await;
    let id = sim.add_document(invoice("INV-1"));
    let t = token(&sim).await;
    ack(&sim, &t, &id).await;
    let body = json!({
        "externalCode": "f1", "success": false, "paymentBlock": false,
        "responseMessage": "G/L account 6100 is not mapped.",
    });
    let path = format!("/v1/accountingDocuments/{id}/transferResponses");
    let resp = post_json(&sim, &t, &path, &body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        sim.document(&id).unwrap().processing_status,
        "TransferFailed"
    );
}

#[tokio::test]
async fn a_transfer_response_missing_a_required_field_is_refused() {
    let sim = basware().await;
    let id = sim.add_document(invoice("INV-1"));
    let t = token(&sim).await;
    ack(&sim, &t, &id).await;
    let body = json!({ "externalCode": "r1", "success": true, "responseMessage": "ok" });
    let path = format!("/v1/accountingDocuments/{id}/transferResponses");
    let resp = post_json(&sim, &t, &path, &body).send().await.unwrap();
    assert_eq!(resp.status(), 400, "paymentBlock is required");
}

#[tokio::test]
async fn a_repeated_payment_response_is_409() {
    let sim = basware().await;
    let id = sim.add_document(invoice("INV-1"));
    let t = token(&sim).await;
    ack(&sim, &t, &id).await;
    let transfer = format!("/v1/accountingDocuments/{id}/transferResponses");
    post_json(&sim, &t, &transfer, &transfer_ok("r1", "PI-1"))
        .send()
        .await
        .unwrap();
    let body = json!({
        "externalCode": "pay-1", "success": true, "paymentBlock": false,
        "paidTotal": 100.00, "paymentDate": "2026-12-01T00:00:00Z",
    });
    let path = format!("/v1/accountingDocuments/{id}/paymentResponses");
    let first = post_json(&sim, &t, &path, &body).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let repeat = post_json(&sim, &t, &path, &body).send().await.unwrap();
    assert_eq!(repeat.status(), 409);
    assert_eq!(sim.document(&id).unwrap().payment_responses.len(), 1);
}

#[tokio::test]
async fn a_split_coding_row_and_a_credit_note_render_exact_amounts() {
    let sim = basware().await;
    let split = sim.add_document(
        NewDocument::invoice("INV-S", "V10000")
            .coding_row(
                NewCodingRow::new("6100", "60.10")
                    .cost_center("CC1")
                    .tax("T24", "24"),
            )
            .coding_row(
                NewCodingRow::new("6100", "39.90")
                    .cost_center("CC2")
                    .tax("T24", "24"),
            ),
    );
    let credit = sim.add_document(
        NewDocument::credit_note("CN-1", "V10000").coding_row(NewCodingRow::new("6100", "10.5")),
    );
    let t = token(&sim).await;
    let s: Value = get(&sim, &t, &format!("/v1/accountingDocuments/{split}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["netSum"].to_string(), "100");
    assert_eq!(s["codingRows"][0]["costCenterCode"], "CC1");
    assert_eq!(s["codingRows"][1]["costCenterCode"], "CC2");
    assert_eq!(s["codingRows"][0]["taxSum"].to_string(), "14.42");
    assert_eq!(s["codingRows"][1]["taxSum"].to_string(), "9.58");
    assert!(
        s.get("invoiceLines").is_none(),
        "invoice lines are off by default"
    );
    let c: Value = get(&sim, &t, &format!("/v1/accountingDocuments/{credit}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(c["grossSum"].to_string(), "-10.5");
    assert_eq!(c["invoiceTypeCode"], "CREDIT");
}

#[tokio::test]
async fn invoice_lines_are_sent_only_when_the_tenant_enabled_them() {
    let sim = basware_with(BaswareConfig {
        invoice_lines_enabled: true,
        ..BaswareConfig::default()
    })
    .await;
    let id = sim.add_document(invoice("INV-1").line(NewInvoiceLine::new("Paper", "2", "50")));
    let t = token(&sim).await;
    let v: Value = get(&sim, &t, &format!("/v1/accountingDocuments/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["invoiceLines"][0]["netSum"].to_string(), "100");
}

#[tokio::test]
async fn an_injected_429_carries_retry_after_and_changes_nothing() {
    let sim = basware().await;
    let id = sim.add_document(invoice("INV-1"));
    sim.fail_next(FaultRule::new(
        "POST",
        "/acknowledge",
        1,
        FaultKind::TooManyRequests {
            retry_after: Some(2),
        },
    ));
    let t = token(&sim).await;
    let resp = http()
        .post(format!(
            "{}/v1/accountingDocuments/{id}/acknowledge",
            sim.base_url()
        ))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    assert_eq!(
        sim.document(&id).unwrap().processing_status,
        "WaitingForTransfer"
    );
}

#[tokio::test]
async fn a_document_seeded_over_the_control_route_is_listed_and_readable_there() {
    let sim = basware().await;
    let resp = http()
        .post(format!("{}/_sandbox/basware/documents", sim.base_url()))
        .json(&json!({
            "invoice_number": "INV-CTL-1", "supplier_code": "V10000", "credit_note": true,
            "coding_rows": [
                {"account_code": "6100", "net_total": "10.10", "cost_center": "CC1",
                 "tax_code": "T24", "tax_percent": "24", "dims": {"1": "X"}}
            ]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().await.unwrap()["invoiceId"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = token(&sim).await;
    let (ids, _) = page(get(&sim, &t, WAITING).send().await.unwrap()).await;
    assert_eq!(ids, vec![id.clone()]);
    let doc: Value = get(&sim, &t, &format!("/v1/accountingDocuments/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["codingRows"][0]["dimCode1"], "X");
    assert_eq!(doc["codingRows"][0]["taxSum"].to_string(), "-2.42");
    let view: Value = http()
        .get(format!(
            "{}/_sandbox/basware/documents/{id}",
            sim.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["processingStatus"], "WaitingForTransfer");
    let bad = http()
        .post(format!("{}/_sandbox/basware/documents", sim.base_url()))
        .json(&json!({"invoice_number": "X", "supplier_code": "V",
            "coding_rows": [{"account_code": "1", "net_total": "ten"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_fault_queued_over_the_control_route_is_served_once() {
    let sim = basware().await;
    sim.add_document(invoice("INV-1"));
    let rule = FaultRule::new("GET", "/v1/accountingDocuments", 1, FaultKind::Status(503));
    let resp = http()
        .post(format!("{}/_sandbox/basware/faults", sim.base_url()))
        .json(&rule)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let t = token(&sim).await;
    assert_eq!(get(&sim, &t, WAITING).send().await.unwrap().status(), 503);
    assert_eq!(get(&sim, &t, WAITING).send().await.unwrap().status(), 302);
}
