//! Tokens, throttling, bad documents and missing mappings: handled, audited, nothing lost.

mod common;

use chrono::Utc;
use common::Harness;
use mlc_sandbox::bc::BcConfig;
use mlc_sandbox::coupa::{NewInvoice, NewInvoiceLine};
use mlc_sandbox::{FaultKind, FaultRule};
use mlc_shared::ports::{AuditStatus, Mappings};

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_the_call_succeeds() {
    let h = Harness::new().await;
    h.simple_invoice("SUP-001", "TOK-1");
    h.run_once().await;
    let (coupa_before, bc_before) = (h.coupa.tokens_issued(), h.bc.tokens_issued());
    h.coupa.expire_tokens();
    h.bc.expire_tokens();
    h.simple_invoice("SUP-001", "TOK-2");
    let stats = h.run_once().await;
    assert_eq!(stats.posted, 1);
    assert_eq!(stats.failed_attempts, 0, "a refresh is not a failure");
    assert_eq!(h.coupa.tokens_issued(), coupa_before + 1);
    assert_eq!(h.bc.tokens_issued(), bc_before + 1);
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_and_retried() {
    let h = Harness::new().await;
    h.simple_invoice("SUP-001", "THR-1");
    // BC throttles the whole request (the create's `$batch`).
    h.bc.fail_next(FaultRule {
        method: "POST".into(),
        path_contains: "/$batch".into(),
        count: 1,
        kind: FaultKind::TooManyRequests {
            retry_after: Some(1),
        },
    });
    let start = std::time::Instant::now();
    let stats = h.run_once().await;
    assert_eq!(stats.posted, 1);
    assert_eq!(
        stats.failed_attempts, 0,
        "a 429 is retried inside the call, not by redelivery"
    );
    assert!(
        start.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After: 1 was not honoured"
    );
    assert_eq!(h.bc_invoices_for("THR-1").len(), 1);
    assert_eq!(
        h.pipeline
            .systems
            .get("business_central")
            .unwrap()
            .stats()
            .throttled
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn the_bc_rate_limit_is_respected_by_pacing_without_429s() {
    // A BC that allows 40 requests per 2 s: the client, paced to the same budget, gets no 429.
    let bc = BcConfig {
        rate_limit: Some(mlc_sandbox::bc::RateLimit {
            requests: 40,
            window: std::time::Duration::from_secs(2),
        }),
        ..BcConfig::default()
    };
    let h = Harness::with(Default::default(), bc, "").await;
    let text = std::fs::read_to_string(h.dir.path().join("mlc.toml")).unwrap();
    assert!(text.contains("client_secret"));
    for n in 0..6 {
        h.simple_invoice("SUP-001", &format!("RATE-{n}"));
    }
    // Reconfigure the client's budget to the simulator's.
    let mut cfg = h.cfg.clone();
    cfg.systems.business_central_mut().unwrap().rate =
        Some(mlc_shared::systems::http::RateBudget {
            requests: 40,
            window_secs: 2,
            concurrent: Some(5),
        });
    let p = mlc_cli::embedded::pipeline(&cfg, &h.secrets).await.unwrap();
    common::run_once(&p).await;
    assert_eq!(h.bc.throttled_count(), 0);
    assert_eq!(h.bc_invoices().len(), 6);
}

#[tokio::test]
async fn an_unknown_vendor_is_parked_with_the_reason_and_posts_once_mapped() {
    let h = Harness::new().await;
    h.simple_invoice("SUP-009", "NW-1");
    h.run_once().await;
    assert!(h.bc_invoices_for("NW-1").is_empty());
    let parked = h.parked().await;
    assert_eq!(parked.len(), 1);
    assert_eq!(
        parked[0].reason,
        "no Business Central vendor mapped for Coupa supplier 'Northwind Traders' (number SUP-009)"
    );
    let audit = h.audit(AuditStatus::Parked).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].source_document_number.as_deref(), Some("NW-1"));
    // A second cycle re-tries it without flooding the audit trail.
    h.run_once().await;
    assert_eq!(h.audit(AuditStatus::Parked).await.len(), 1);

    h.bc.add_vendor("V90000", "Northwind Traders");
    h.pipeline
        .env
        .store
        .put_mapping("coupa-bc/supplier", "SUP-009", "V90000")
        .await
        .unwrap();
    h.run_once().await;
    let inv = h.bc_invoices_for("NW-1");
    assert_eq!(inv.len(), 1);
    assert_eq!(inv[0].vendor_number, "V90000");
    assert!(h.parked().await.is_empty());
}

#[tokio::test]
async fn a_missing_dimension_value_parks_the_invoice_naming_the_value() {
    let h = Harness::new().await;
    h.invoice(
        "SUP-001",
        "DIM-1",
        &[("1", "10.00", ["6100", "NOPE", "P-100"])],
    );
    h.run_once().await;
    let parked = h.parked().await;
    assert_eq!(parked.len(), 1);
    assert!(parked[0].reason.contains("NOPE"), "{}", parked[0].reason);
    assert!(
        parked[0].reason.contains("DEPARTMENT"),
        "{}",
        parked[0].reason
    );
    // The draft BC refused is not left behind half-done.
    assert!(
        h.bc_invoices_for("DIM-1")
            .iter()
            .all(|i| i.status != "Open")
    );
}

#[tokio::test]
async fn a_malformed_coupa_invoice_is_audited_and_parked_and_the_rest_proceed() {
    let h = Harness::new().await;
    let sup = h.supplier_id("SUP-001");
    // No lines and a currency that is not ISO 4217: cannot become a BC invoice.
    let bad = NewInvoice {
        currency: "X1".into(),
        ..NewInvoice::approved(sup, "BAD-1")
    };
    let bad_id = h.coupa.add_invoice(bad.line(NewInvoiceLine::qty(
        "x",
        "1",
        "1.00",
        &["6100", "ADM", "P-100"],
    )));
    h.simple_invoice("SUP-001", "GOOD-1");
    h.simple_invoice("SUP-002", "GOOD-2");
    let stats = h.run_once().await;
    assert_eq!(stats.posted, 2);
    let parked = h.parked().await;
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].source_id, bad_id.to_string());
    assert!(
        parked[0].reason.contains("currency.code"),
        "{}",
        parked[0].reason
    );
    assert_eq!(h.audit(AuditStatus::Parked).await.len(), 1);
}

#[tokio::test]
async fn a_credit_note_is_never_posted_as_an_invoice_but_as_a_credit_memo() {
    let h = Harness::new().await;
    let sup = h.supplier_id("SUP-001");
    let cn = NewInvoice {
        document_type: "Credit Note".into(),
        ..NewInvoice::approved(sup, "CN-1")
    };
    h.coupa.add_invoice(cn.line(NewInvoiceLine::qty(
        "refund",
        "1",
        "50.00",
        &["6100", "ADM", "P-100"],
    )));
    h.run_once().await;
    assert!(h.bc_invoices_for("CN-1").is_empty());
    let memos = h.bc.purchase_credit_memos();
    assert_eq!(memos.len(), 1);
    assert_eq!(memos[0].status, "Open");
    assert!(h.parked().await.is_empty());
}

#[tokio::test]
async fn invoices_that_are_not_approved_are_not_read() {
    let h = Harness::new().await;
    let sup = h.supplier_id("SUP-001");
    let pending = NewInvoice {
        status: "pending_approval".into(),
        ..NewInvoice::approved(sup, "PEND-1")
    };
    h.coupa.add_invoice(pending.line(NewInvoiceLine::qty(
        "x",
        "1",
        "1.00",
        &["6100", "ADM", "P-100"],
    )));
    let stats = h.run_once().await;
    assert_eq!(stats.mapped, 0);
    assert!(h.bc_invoices().is_empty());
    let _ = Utc::now();
}

#[tokio::test]
async fn every_coupa_call_carries_the_api_version_and_json_accept_headers() {
    let h = Harness::new().await;
    h.simple_invoice("SUP-001", "HDR-1");
    h.run_once().await;
    let api: Vec<_> = h
        .coupa
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/"))
        .collect();
    assert!(!api.is_empty());
    assert!(api.iter().all(|r| r.status < 400), "{api:?}");
}

#[tokio::test]
async fn an_invoice_bc_refused_posts_once_the_account_exists_within_the_dedup_window() {
    // Regression: the re-mapped post message once had the same dedup id as the refused one, so
    // a retry within five minutes was dropped by the queue while the map step unparked it.
    // Without the master-data check, so that BC itself refuses the invoice at the post step.
    let h = Harness::with_sync("check_master_data = false").await;
    h.invoice(
        "SUP-001",
        "GL-LATER",
        &[("1", "10.00", ["6999", "ADM", "P-100"])],
    );
    h.run_once().await;
    let parked = h.parked().await;
    assert_eq!(parked.len(), 1, "BC refuses an unknown G/L account: parked");
    assert!(parked[0].reason.contains("6999"), "{}", parked[0].reason);
    h.bc.add_account("6999", "Late account");
    h.run_once().await;
    let inv = h.bc_invoices_for("GL-LATER");
    assert_eq!(
        inv.iter().filter(|i| i.status == "Open").count(),
        1,
        "{inv:?}"
    );
    assert_eq!(
        inv.len(),
        1,
        "the refused draft was resumed, not duplicated"
    );
    assert!(h.parked().await.is_empty());
}
