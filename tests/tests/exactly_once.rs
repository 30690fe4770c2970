//! Exactly once into Business Central, whatever is repeated or lost on the way.

mod common;

use common::Harness;
use mlc_cli::webhook_server::{Limits, Listener};
use mlc_sandbox::{FaultKind, FaultRule};
use mlc_shared::ports::{Audit, AuditFilter, AuditStatus, Queue, QueueName, Step};
use mlc_shared::steps::post::CrashPoint;
use mlc_shared::systems::Instance;

fn rule(method: &str, path: &str, kind: FaultKind) -> FaultRule {
    FaultRule {
        method: method.into(),
        path_contains: path.into(),
        count: 1,
        kind,
    }
}

#[tokio::test]
async fn an_approved_invoice_is_posted_once_with_its_lines_and_dimensions() {
    let h = Harness::new().await;
    h.invoice(
        "SUP-001",
        "INV-1",
        &[
            ("2", "12.3456", ["6100", "ADM", "P-100"]),
            ("1", "100.00", ["6200", "SALES", "P-200"]),
        ],
    );
    let stats = h.run_once().await;
    assert_eq!(stats.posted, 1);
    let inv = h.bc_invoices_for("INV-1");
    assert_eq!(inv.len(), 1);
    assert_eq!(inv[0].status, "Open");
    assert_eq!(inv[0].vendor_number, "V10000");
    assert_eq!(inv[0].lines.len(), 2);
    assert_eq!(inv[0].lines[0].unit_cost.to_string(), "12.3456");
    assert_eq!(inv[0].lines[0].line_object_number, "6100");
    let mut dims = inv[0].lines[1].dimensions.clone();
    dims.sort();
    assert_eq!(
        dims,
        vec![
            ("DEPARTMENT".to_string(), "SALES".to_string()),
            ("PROJECT".to_string(), "P-200".to_string())
        ]
    );
}

#[tokio::test]
async fn webhook_twice_and_an_overlapping_poll_post_one_invoice() {
    let h = Harness::new().await;
    let id = h.simple_invoice("SUP-001", "INV-DUP");
    let server = common_webhook(&h).await;
    assert_eq!(
        h.coupa.send_invoice_webhook(&server, id).await.unwrap(),
        202
    );
    assert_eq!(
        h.coupa.send_invoice_webhook(&server, id).await.unwrap(),
        202
    );
    h.pipeline
        .drain(4, std::sync::Arc::new(|_| {}))
        .await
        .unwrap();
    h.run_once().await;
    h.coupa.touch_invoice(id); // a new version: a fresh dedup id, so only the ledger stands in the way
    h.run_once().await;
    assert_eq!(
        h.coupa.send_invoice_webhook(&server, id).await.unwrap(),
        202
    );
    h.pipeline
        .drain(4, std::sync::Arc::new(|_| {}))
        .await
        .unwrap();
    assert_eq!(h.bc_invoices_for("INV-DUP").len(), 1);
    assert_eq!(h.bc_invoices_for("INV-DUP")[0].post_count, 1);
}

#[tokio::test]
async fn replayed_webhooks_and_overlapping_polls_are_counted_not_logged() {
    let h = Harness::new().await;
    let id = h.simple_invoice("SUP-001", "INV-REPLAYED");
    let server = common_webhook(&h).await;
    for _ in 0..20 {
        assert_eq!(
            h.coupa.send_invoice_webhook(&server, id).await.unwrap(),
            202
        );
    }
    for _ in 0..3 {
        h.run_once().await;
    }
    let trail = h
        .pipeline
        .env
        .store
        .query_audit(&AuditFilter {
            document: Some(id.to_string()),
            ..Default::default()
        })
        .await
        .unwrap();
    let rows = |step: Step, status: AuditStatus| -> Vec<u64> {
        trail
            .iter()
            .filter(|i| i.step == step && i.status == status)
            .map(|i| i.repeats)
            .collect()
    };
    assert_eq!(rows(Step::Webhook, AuditStatus::Received), vec![19]);
    // Three polls read the same version: one row, two repeats.
    assert_eq!(rows(Step::Poll, AuditStatus::Received), vec![2]);
    assert_eq!(rows(Step::Post, AuditStatus::Posted).len(), 1);
    assert!(rows(Step::Post, AuditStatus::AlreadyPosted).is_empty());
    assert_eq!(h.bc_invoices_for("INV-REPLAYED").len(), 1);
}

async fn common_webhook(h: &Harness) -> String {
    let secrets = std::sync::Arc::new(h.secrets.clone());
    let app = Listener::new(h.pipeline.clone(), secrets, Limits::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(app.serve(listener));
    format!("http://{addr}/webhooks/coupa/coupa-bc")
}

#[tokio::test]
async fn a_post_action_failing_once_is_retried_on_the_same_draft() {
    let h = Harness::new().await;
    h.simple_invoice("SUP-002", "INV-POSTFAIL");
    h.bc.fail_next(rule("POST", "Microsoft.NAV.post", FaultKind::Status(500)));
    let stats = h.run_once().await;
    assert_eq!(stats.posted, 1);
    assert!(stats.failed_attempts >= 1);
    let inv = h.bc_invoices_for("INV-POSTFAIL");
    assert_eq!(inv.len(), 1, "a second draft was created");
    assert_eq!(inv[0].status, "Open");
}

#[tokio::test]
async fn a_create_whose_response_is_lost_creates_no_second_invoice() {
    let h = Harness::new().await;
    h.simple_invoice("SUP-003", "INV-LOST");
    h.bc.fail_next(rule("POST", "/purchaseInvoices", FaultKind::LoseResponse));
    h.run_once().await;
    let inv = h.bc_invoices_for("INV-LOST");
    assert_eq!(inv.len(), 1);
    assert_eq!(inv[0].status, "Open");
}

#[tokio::test]
async fn a_create_that_times_out_creates_no_second_invoice() {
    let h = Harness::new().await;
    h.simple_invoice("SUP-003", "INV-SLOW");
    // Longer than the client's timeout would be slow to test; the step must not repeat a POST
    // whose outcome it did not see, so a 504-like loss behaves the same as a timeout.
    h.bc.fail_next(rule("POST", "/purchaseInvoices", FaultKind::LoseResponse));
    h.bc.fail_next(rule("GET", "/purchaseInvoices", FaultKind::Status(503)));
    h.run_once().await;
    assert_eq!(h.bc_invoices_for("INV-SLOW").len(), 1);
}

#[tokio::test]
async fn the_same_invoice_number_at_two_suppliers_makes_two_invoices() {
    let h = Harness::new().await;
    h.simple_invoice("SUP-001", "1001");
    h.simple_invoice("SUP-002", "1001");
    h.run_once().await;
    let mut vendors: Vec<_> = h
        .bc_invoices_for("1001")
        .into_iter()
        .map(|i| i.vendor_number)
        .collect();
    vendors.sort();
    assert_eq!(vendors, vec!["V10000", "V20000"]);
}

#[tokio::test]
async fn an_invoice_number_with_quote_ampersand_hash_slash_is_found_by_the_lookup() {
    let h = Harness::new().await;
    let number = "O'Neil & Sons #12/3";
    h.simple_invoice("SUP-004", number);
    h.simple_invoice("SUP-004", "O'Neil & Sons #12/4");
    h.run_once().await;
    let Some(Instance::BusinessCentral(bc)) = h.pipeline.systems.get("business_central") else {
        panic!("BC is configured");
    };
    let found = bc
        .purchase_invoices_by_vendor_invoice_number("V40000", number)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].vendor_invoice_number.as_deref(),
        Some(number.to_uppercase().as_str())
    );
    // A repeat delivery after the ledger is done must find it and not post again.
    h.coupa.touch_invoice(h.coupa_id_of(number));
    h.run_once().await;
    assert_eq!(h.bc_invoices_for(number).len(), 1);
}

/// Runs the map step for the one ingested invoice and returns the message it queued for posting.
async fn mapped_post_message(h: &Harness) -> String {
    h.pipeline.poll_all().await.unwrap();
    let q = &h.pipeline.env.queue;
    let ingest = q.receive(QueueName::Ingest, 10).await.unwrap();
    for m in &ingest {
        h.pipeline.handle_ingest(&m.body).await.unwrap();
        q.ack(QueueName::Ingest, &m.receipt).await.unwrap();
    }
    let post = q.receive(QueueName::Post, 10).await.unwrap();
    assert_eq!(post.len(), 1);
    q.ack(QueueName::Post, &post[0].receipt).await.unwrap();
    post[0].body.clone()
}

#[tokio::test]
async fn a_worker_crashing_at_any_step_boundary_then_restarting_posts_exactly_once() {
    for crash in [
        CrashPoint::AfterClaim,
        CrashPoint::AfterDraft,
        CrashPoint::AfterPost,
    ] {
        let h = Harness::with(Default::default(), Default::default(), "").await;
        let number = format!("INV-CRASH-{crash:?}");
        h.simple_invoice("SUP-001", &number);
        let msg = mapped_post_message(&h).await;
        let p = &h.pipeline;
        assert!(
            p.handle_post_crashing(&msg, "crashed-worker", Some(crash))
                .await
                .is_err()
        );
        // The restarted worker is the same owner coming back (same claim), as after a restart of
        // a process that keeps its identity; a different worker would wait for the lease.
        let again = p
            .handle_post_crashing(&msg, "crashed-worker", None)
            .await
            .unwrap();
        assert!(matches!(
            again,
            mlc_shared::steps::post::PostOutcome::Posted { .. }
                | mlc_shared::steps::post::PostOutcome::AlreadyPosted { .. }
        ));
        let inv = h.bc_invoices_for(&number);
        assert_eq!(inv.len(), 1, "{crash:?}: {} invoices", inv.len());
        assert_eq!(inv[0].status, "Open", "{crash:?}");
        assert_eq!(inv[0].post_count, 1, "{crash:?}");
        // And a repeat delivery afterwards does nothing.
        let third = p
            .handle_post_crashing(&msg, "another-worker", None)
            .await
            .unwrap();
        assert!(
            matches!(
                third,
                mlc_shared::steps::post::PostOutcome::AlreadyPosted { .. }
            ),
            "{crash:?}"
        );
    }
}

#[tokio::test]
async fn whatever_crashed_the_audit_trail_has_one_posted_row_and_counts_the_repeats() {
    for crash in [
        CrashPoint::AfterClaim,
        CrashPoint::AfterDraft,
        CrashPoint::AfterPost,
        CrashPoint::AfterLedger,
    ] {
        let h = Harness::with(Default::default(), Default::default(), "").await;
        let number = format!("INV-AUDIT-{crash:?}");
        let id = h.simple_invoice("SUP-001", &number);
        let msg = mapped_post_message(&h).await;
        let p = &h.pipeline;
        assert!(
            p.handle_post_crashing(&msg, "w1", Some(crash))
                .await
                .is_err()
        );
        p.handle_post_crashing(&msg, "w1", None).await.unwrap();
        p.handle_post_crashing(&msg, "w2", None).await.unwrap();
        let trail = p
            .env
            .store
            .query_audit(&AuditFilter {
                document: Some(id.to_string()),
                ..Default::default()
            })
            .await
            .unwrap();
        let post: Vec<_> = trail.iter().filter(|i| i.step == Step::Post).collect();
        assert_eq!(post.len(), 1, "{crash:?}: {post:#?}");
        assert_eq!(post[0].status, AuditStatus::Posted, "{crash:?}");
        let bc = h.bc_invoices_for(&number);
        assert_eq!(
            post[0].target_document_number.as_deref(),
            Some(bc[0].number.as_str()),
            "{crash:?}"
        );
        assert!(post[0].repeats >= 1, "{crash:?}: the repeat is counted");
    }
}

#[tokio::test]
async fn a_second_worker_waits_while_a_crashed_workers_claim_holds() {
    let h = Harness::new().await;
    h.simple_invoice("SUP-001", "INV-LEASE");
    let msg = mapped_post_message(&h).await;
    let p = &h.pipeline;
    assert!(
        p.handle_post_crashing(&msg, "dead-worker", Some(CrashPoint::AfterDraft))
            .await
            .is_err()
    );
    let other = p.handle_post_crashing(&msg, "live-worker", None).await;
    match other {
        Ok(mlc_shared::steps::post::PostOutcome::Busy { owner, retry_in }) => {
            assert_eq!(owner, "dead-worker");
            // Come back when the lease has run out, not before.
            assert!(
                retry_in > std::time::Duration::from_secs(60),
                "{retry_in:?}"
            );
        }
        other => panic!("the claim must hold off a second worker until its lease ends: {other:?}"),
    }
    let inv = h.bc_invoices_for("INV-LEASE");
    assert_eq!(inv.len(), 1);
    assert_eq!(inv[0].status, "Draft");
}

#[tokio::test]
async fn a_draft_is_updated_only_with_its_current_entity_tag() {
    let h = Harness::new().await;
    h.simple_invoice("SUP-001", "ETAG-1");
    let msg = mapped_post_message(&h).await;
    let Some(Instance::BusinessCentral(bc)) = h.pipeline.systems.get("business_central") else {
        panic!("BC is configured");
    };
    assert!(
        h.pipeline
            .handle_post_crashing(&msg, "w", Some(CrashPoint::AfterDraft))
            .await
            .is_err()
    );
    let draft = bc
        .purchase_invoices_by_vendor_invoice_number("V10000", "ETAG-1")
        .await
        .unwrap()
        .remove(0);
    let etag = draft.etag.clone().unwrap();
    let changed = bc
        .update_purchase_invoice(
            &draft.id,
            &etag,
            &serde_json::json!({"invoiceDate": "2026-01-31"}),
        )
        .await
        .unwrap();
    assert_ne!(
        changed.etag.as_deref(),
        Some(etag.as_str()),
        "the etag changes with the record"
    );
    let stale = bc
        .update_purchase_invoice(
            &draft.id,
            &etag,
            &serde_json::json!({"invoiceDate": "2026-02-01"}),
        )
        .await;
    let err = stale.unwrap_err();
    assert_eq!(err.http().status(), Some(409));
    assert!(
        err.bc_message()
            .unwrap()
            .starts_with("Request_EntityChanged"),
        "{:?}",
        err.bc_message()
    );
}

/// Issue #16: the post and the read of the posted number travel in one `$batch`. When that
/// batch's answer is lost after BC ran it, the post may have happened: the next attempt finds
/// the invoice by the id the ledger recorded, sees it posted and records it; it never posts a
/// second time and never creates a second draft.
#[tokio::test]
async fn a_post_batch_whose_answer_is_lost_posts_once() {
    let h = Harness::new().await;
    h.simple_invoice("SUP-002", "INV-BATCHLOST");
    h.bc.fail_next(rule("POST", "Microsoft.NAV.post", FaultKind::LoseResponse));
    h.run_once().await;
    let inv = h.bc_invoices_for("INV-BATCHLOST");
    assert_eq!(inv.len(), 1, "one draft");
    assert_eq!(inv[0].status, "Open");
    assert_eq!(inv[0].post_count, 1, "posted once");
    let posted = h.audit(AuditStatus::Posted).await;
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(
        posted[0].target_document_number.as_deref(),
        Some(inv[0].number.as_str())
    );
}

/// A first attempt creates without looking (the ledger shows no earlier create), but a retry
/// looks: a deep insert whose answer was lost is found by its natural key, not created again,
/// and its line dimensions (sent in the lost insert) are there.
#[tokio::test]
async fn a_deep_insert_whose_answer_is_lost_is_found_with_its_dimensions() {
    let h = Harness::new().await;
    h.invoice(
        "SUP-001",
        "INV-DEEPLOST",
        &[
            ("1", "10.00", ["6100", "ADM", "P-100"]),
            ("2", "20.00", ["6200", "SALES", "P-200"]),
        ],
    );
    h.bc.fail_next(rule("POST", "/purchaseInvoices", FaultKind::LoseResponse));
    h.run_once().await;
    let inv = h.bc_invoices_for("INV-DEEPLOST");
    assert_eq!(inv.len(), 1);
    assert_eq!(inv[0].status, "Open");
    assert_eq!(inv[0].lines[1].dimensions.len(), 2);
}
