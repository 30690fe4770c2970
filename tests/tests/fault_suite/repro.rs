//! Minimal reproductions of what the suite found, one document each.

use std::sync::Arc;
use std::time::Duration;

use mlc_sandbox::{FaultKind, FaultRule};
use mlc_shared::ports::{Audit, Mappings, Parking, Queue, QueueName};

use super::driver::Factory;
use crate::common::{self, Harness};

/// A create that BC commits after the client has given up on it (timeout): the step looks
/// by natural key at once, finds nothing yet, releases its claim, and the redelivery creates a
/// second draft. The first one lands a moment later: two BC invoices for one Coupa invoice
/// (one posted, one stray draft a clerk may post). Found by `created_but_response_lost`
/// (seed 20260611: 3 to 4 of 200 invoices) at fe07458; passes with the create-settle change
/// to the post step (`CREATE_SETTLE`, `PostOutcome::Unsettled`) in the working tree.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_create_committed_after_the_client_timed_out_is_not_created_again() {
    let h = Arc::new(Harness::new().await);
    h.simple_invoice("SUP-001", "TIMEOUT-1");
    h.bc.fail_next(FaultRule::new(
        "POST",
        "/purchaseInvoices",
        1,
        FaultKind::Hang { millis: 1_500 },
    ));
    // The product's BC timeout is 60 s; 1 s here so the test takes seconds, not minutes.
    let f = Factory::with(h.clone(), h.cfg.clone(), Some(Duration::from_secs(1)));
    let p = f.pipeline().await;
    common::run_once(&p).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await; // the hung create commits
    let inv = h.bc_invoices_for("TIMEOUT-1");
    assert_eq!(
        inv.len(),
        1,
        "one Coupa invoice, {} BC invoices: {:?}",
        inv.len(),
        inv.iter()
            .map(|i| (&i.number, &i.status, i.post_count))
            .collect::<Vec<_>>()
    );
}

/// BC refuses a document (here: the mapped vendor does not exist in BC yet); it is parked.
/// The vendor is created; the next poll cycle retries the parked document. Found by the
/// suite's `poison_documents` (seed 20260611): the map step unparked it and queued a post
/// message with the same dedup id as the refused attempt's, which the queue dropped (five-
/// minute window) — neither posted nor parked. Fixed in 76ed9c2 (a dedup id per map run);
/// kept as the regression test.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_document_refused_by_bc_posts_once_when_fixed_within_five_minutes() {
    let h = Harness::new().await;
    h.pipeline
        .env
        .store
        .put_mapping("coupa-bc/supplier", "SUP-009", "V90000")
        .await
        .unwrap();
    h.simple_invoice("SUP-009", "REFUSED-1");
    h.run_once().await;
    assert!(
        h.bc_invoices_for("REFUSED-1")
            .iter()
            .all(|i| i.status == "Draft")
    );
    let parked = h.parked().await;
    assert_eq!(parked.len(), 1, "refused by BC, so parked");

    h.bc.add_vendor("V90000", "Northwind Traders"); // the fix, a minute later
    let stats = h.run_once().await;
    let q = &h.pipeline.env.queue;
    let state = format!(
        "after the retry: {stats:?}; parked {:?}; queues ingest {} post {}; BC {:?}",
        h.pipeline
            .env
            .store
            .parked()
            .await
            .unwrap()
            .iter()
            .map(|p| &p.reason)
            .collect::<Vec<_>>(),
        q.depth(QueueName::Ingest).await.unwrap(),
        q.depth(QueueName::Post).await.unwrap(),
        h.bc_invoices_for("REFUSED-1")
            .iter()
            .map(|i| (&i.number, &i.status))
            .collect::<Vec<_>>()
    );
    let posted = h
        .bc_invoices_for("REFUSED-1")
        .iter()
        .filter(|i| i.status == "Open")
        .count();
    assert!(
        posted == 1 && h.parked().await.is_empty(),
        "the fixed document is not posted exactly once: {state}"
    );
}

/// A message whose worker is killed at every delivery (a document that crashes the process):
/// after `max_receives` deliveries the queue moves it to the dead-letter queue. The design
/// wants every dead letter visible in the audit trail; a killed worker writes no audit item,
/// so only the queue can say it — here: does it?
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_dying_at_every_delivery_leaves_an_audited_dead_letter() {
    let h = Harness::new().await;
    let id = h.simple_invoice("SUP-001", "KILLER-1");
    let p = &h.pipeline;
    p.poll_all().await.unwrap();
    let db = h.cfg.runtime.database.clone();
    for delivery in 1..=p.max_receives {
        let got = p.env.queue.receive(QueueName::Ingest, 1).await.unwrap();
        assert_eq!(got.len(), 1, "delivery {delivery}");
        let crashed = p
            .handle_ingest_crashing(
                &got[0].body,
                Some(mlc_shared::steps::map::MapCrash::AfterSourceRead),
            )
            .await;
        assert!(crashed.is_err());
        super::driver::time_passes(&db);
    }
    assert!(
        p.env
            .queue
            .receive(QueueName::Ingest, 1)
            .await
            .unwrap()
            .is_empty()
    );
    let dead = p.env.queue.dead_letters(QueueName::Ingest).await.unwrap();
    assert_eq!(
        dead.len(),
        1,
        "dead-lettered after {} deliveries",
        p.max_receives
    );
    // The next poll cycle (or the end of `mlc run --once`) audits what reached the DLQ.
    assert_eq!(p.audit_dead_letters().await.unwrap(), 1);
    let audit = h.audit(mlc_shared::ports::AuditStatus::DeadLettered).await;
    assert!(
        audit.iter().any(|a| a.source_id == id.to_string()),
        "Coupa invoice {id} is in the dead-letter queue but the audit trail has no \
         dead_lettered item for it (audit: {:?})",
        h.pipeline
            .env
            .store
            .query_audit(&mlc_shared::ports::AuditFilter::default())
            .await
            .unwrap()
            .iter()
            .map(|a| (&a.step, &a.status))
            .collect::<Vec<_>>()
    );
}
