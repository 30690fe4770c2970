//! A poll loses nothing: paging, records changing mid-read, shared timestamps, and the
//! watermark moving only after the enqueue.

mod common;

use chrono::{Duration, Utc};
use common::Harness;
use mlc_sandbox::{FaultKind, FaultRule};
use mlc_shared::flows::coupa_bc;
use mlc_shared::model::DocumentKind;
use mlc_shared::ports::{Queue, QueueName, SourceDocument, Watermarks};
use mlc_shared::steps::{CARRIED_DOCUMENT_MAX_AGE, IngestMessage};

#[tokio::test]
async fn a_poll_reads_every_page_of_approved_invoices() {
    let h = Harness::new().await;
    for n in 0..120 {
        h.simple_invoice(
            ["SUP-001", "SUP-002", "SUP-003"][n % 3],
            &format!("PG-{n:03}"),
        );
    }
    let reports = h.pipeline.poll_all().await.unwrap();
    assert_eq!(reports[0].1.pages, 3, "120 invoices at 50 a page");
    assert_eq!(reports[0].1.enqueued, 120);
    let list_calls = h
        .coupa
        .requests()
        .iter()
        .filter(|r| r.path == "/api/invoices")
        .count();
    assert_eq!(list_calls, 3);
}

#[tokio::test]
async fn invoices_updated_or_unapproved_while_a_poll_pages_are_not_missed() {
    let h = Harness::new().await;
    let ids: Vec<i64> = (0..110)
        .map(|n| h.simple_invoice("SUP-001", &format!("MID-{n:03}")))
        .collect();
    // After the first page is served: un-approve one from page 1 (with offset paging every later
    // row would shift back by one and a row at the page boundary would be skipped), and update
    // one from page 2 past the poll's upper bound (it leaves this poll's window).
    let (unapproved, updated) = (ids[10], ids[70]);
    let moved_to = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(0).unwrap())
        + Duration::seconds(2);
    h.coupa.after_list_page(
        1,
        Box::new(move |c| {
            c.set_invoice_status(unapproved, "on_hold");
            c.set_invoice_updated_at(updated, moved_to);
        }),
    );
    h.run_once().await;
    let posted = |h: &Harness| -> Vec<String> {
        h.bc_invoices()
            .into_iter()
            .map(|i| i.vendor_invoice_number)
            .collect()
    };
    let first = posted(&h);
    for n in (0..110).filter(|n| *n != 10 && *n != 70) {
        let number = format!("MID-{n:03}");
        assert!(
            first.contains(&number),
            "{number} was skipped by the first poll"
        );
    }
    // MID-010 was approved when the poll listed it and went on hold after: the poll's message
    // carries the invoice as listed (issue #16 item 5: no second read while that reading is
    // fresh, `CARRIED_DOCUMENT_MAX_AGE`), so it moves as the poll saw it, as it would have if
    // the hold had come a moment after the map step's own read. A message that waited longer
    // reads Coupa again (`a_stale_carried_document_is_read_again`).
    assert!(
        first.contains(&"MID-010".to_string()),
        "approved when listed: moves as the poll saw it"
    );
    // The updated one is in the next poll's window.
    while Utc::now() <= moved_to.with_timezone(&Utc) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    h.run_once().await;
    let second = posted(&h);
    assert!(
        second.contains(&"MID-070".to_string()),
        "the updated invoice was lost"
    );
    // All 110: MID-010 moved as listed (see above).
    assert_eq!(second.len(), 110);
}

#[tokio::test]
async fn invoices_sharing_the_watermark_timestamp_are_not_missed() {
    let h = Harness::new().await;
    // No overlap: the next poll starts exactly at the watermark, so only `gt_or_eq` (not a
    // strict `gt`) keeps invoices stamped with that very second.
    let mut cfg = h.cfg.clone();
    cfg.integrations[0].poll_overlap_secs = 0;
    let p = mlc_cli::embedded::pipeline(&cfg, &h.secrets).await.unwrap();
    h.simple_invoice("SUP-001", "TS-A");
    common::run_once(&p).await;
    let wm = p
        .env
        .store
        .watermark(&coupa_bc::watermark_key("coupa-bc", "invoices"))
        .await
        .unwrap()
        .unwrap();
    let mark = chrono::DateTime::parse_from_rfc3339(&wm.value).unwrap();
    // Two invoices committed in the watermark's very second, after the poll had read.
    let b = h.simple_invoice("SUP-001", "TS-B");
    let c = h.simple_invoice("SUP-002", "TS-C");
    h.coupa.set_invoice_updated_at(b, mark);
    h.coupa.set_invoice_updated_at(c, mark);
    while Utc::now() <= mark.with_timezone(&Utc) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    common::run_once(&p).await;
    for n in ["TS-A", "TS-B", "TS-C"] {
        assert_eq!(h.bc_invoices_for(n).len(), 1, "{n}");
    }
}

#[tokio::test]
async fn the_watermark_does_not_move_when_the_poll_fails_midway() {
    let h = Harness::new().await;
    for n in 0..60 {
        h.simple_invoice("SUP-001", &format!("WM-{n:02}"));
    }
    // The second page fails for good (non-retryable 400): nothing after it may be skipped later.
    h.coupa.after_list_page(
        1,
        Box::new(|c| {
            c.fail_next(FaultRule {
                method: "GET".into(),
                path_contains: "/api/invoices".into(),
                count: 1,
                kind: FaultKind::Status(400),
            })
        }),
    );
    assert!(h.pipeline.poll_all().await.is_err());
    assert!(
        h.pipeline
            .env
            .store
            .watermark(&coupa_bc::watermark_key("coupa-bc", "invoices"))
            .await
            .unwrap()
            .is_none()
    );
    // The next poll starts from the same place and gets everything.
    h.run_once().await;
    assert_eq!(h.bc_invoices().len(), 60);
}

#[tokio::test]
async fn a_later_poll_starts_from_the_watermark_minus_the_overlap() {
    let h = Harness::new().await;
    let id = h.simple_invoice("SUP-001", "OV-1");
    // Updated a while ago: not "hot" (changed in the second a poll ends), so its version
    // dedups (the hot case has its own test).
    h.coupa
        .set_invoice_updated_at(id, (Utc::now() - Duration::seconds(10)).fixed_offset());
    let before = Utc::now();
    h.run_once().await;
    let wm = h
        .pipeline
        .env
        .store
        .watermark(&coupa_bc::watermark_key("coupa-bc", "invoices"))
        .await
        .unwrap()
        .unwrap();
    let mark = chrono::DateTime::parse_from_rfc3339(&wm.value).unwrap();
    assert!(mark >= before - Duration::seconds(1));
    let r = h.pipeline.poll_all().await.unwrap();
    // The overlap re-reads OV-1; the dedup window and the ledger absorb it.
    assert_eq!(r[0].1.enqueued, 1);
    assert_eq!(
        h.pipeline.env.queue.depth(QueueName::Ingest).await.unwrap(),
        0,
        "a repeat within the dedup window is dropped"
    );
}

#[tokio::test]
async fn business_central_collections_are_read_across_pages_by_next_link() {
    let h = Harness::new().await;
    let mut cfg = h.cfg.clone();
    cfg.systems.business_central_mut().unwrap().page_size = Some(2);
    let p = mlc_cli::embedded::pipeline(&cfg, &h.secrets).await.unwrap();
    let seg = ["6100", "ADM", "P-100"];
    h.invoice(
        "SUP-001",
        "PAGED-1",
        &[
            ("1", "1.00", seg),
            ("2", "2.00", seg),
            ("3", "3.00", seg),
            ("4", "4.00", seg),
            ("5", "5.00", seg),
        ],
    );
    // A fresh draft gets its lines and their dimensions in one deep insert and is never read
    // back; a resumed one is (issue #16). The first post fails, so the next attempt resumes the
    // draft and reads its lines, with their dimensions, page by page.
    h.bc.fail_next(FaultRule::new(
        "POST",
        "Microsoft.NAV.post",
        1,
        FaultKind::Status(500),
    ));
    common::run_once(&p).await;
    let inv = h.bc_invoices_for("PAGED-1");
    assert_eq!(inv.len(), 1);
    assert_eq!(inv[0].status, "Open");
    // Every one of the five lines got its dimensions, so all three pages of lines were read.
    assert!(
        inv[0].lines.iter().all(|l| l.dimensions.len() == 2),
        "{:?}",
        inv[0].lines
    );
    let line_reads: Vec<_> =
        h.bc.requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/purchaseInvoiceLines"))
            .collect();
    assert_eq!(line_reads.len(), 3, "5 lines at 2 a page");
    assert!(
        line_reads
            .iter()
            .all(|r| r.prefer.as_deref() == Some("odata.maxpagesize=2"))
    );
}

#[tokio::test]
async fn a_document_changed_in_the_second_a_poll_ends_is_not_dropped_as_a_repeat() {
    // Coupa's updated-at has whole seconds: a change within the same second keeps it, so the
    // sighting in the next poll must not share the first one's dedup id.
    let h = Harness::new().await;
    h.simple_invoice("SUP-001", "HOT-1");
    h.pipeline.poll_all().await.unwrap();
    let r = h.pipeline.poll_all().await.unwrap();
    assert_eq!(r[0].1.enqueued, 1);
    assert_eq!(
        h.pipeline.env.queue.depth(QueueName::Ingest).await.unwrap(),
        2,
        "both sightings are queued; the ledger keeps the post exactly once"
    );
    h.run_once().await;
    assert_eq!(h.bc_invoices_for("HOT-1").len(), 1);
}

fn carried_message(id: i64, read_at: chrono::DateTime<Utc>) -> IngestMessage {
    IngestMessage {
        integration: "coupa-bc".into(),
        kind: DocumentKind::Invoice,
        source_id: id.to_string(),
        version: Some(read_at.to_rfc3339()),
        via: "poll".into(),
        document: None,
    }
    .carrying(
        Some(SourceDocument::Unreadable {
            number: None,
            reason: "the carried reading".into(),
        }),
        read_at,
    )
}

async fn drain(h: &Harness) {
    h.pipeline
        .drain(4, std::sync::Arc::new(|_| {}))
        .await
        .unwrap();
}

fn coupa_reads(h: &Harness, id: i64) -> usize {
    h.coupa
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == format!("/api/invoices/{id}"))
        .count()
}

/// Issue #16 item 5: the map step takes the document a fresh poll message carries, without
/// reading Coupa (here the carried reading is unreadable, and it is what gets parked).
#[tokio::test]
async fn a_fresh_carried_document_is_used_without_reading_the_source() {
    let h = Harness::new().await;
    let id = h.simple_invoice("SUP-001", "CARRY-1");
    h.coupa.clear_requests();
    h.pipeline
        .env
        .queue
        .send(
            QueueName::Ingest,
            vec![carried_message(id, Utc::now()).to_outgoing()],
        )
        .await
        .unwrap();
    drain(&h).await;
    assert_eq!(coupa_reads(&h, id), 0);
    let parked = h.parked().await;
    assert_eq!(parked.len(), 1);
    assert!(parked[0].reason.contains("the carried reading"));
}

/// A message that waited past `CARRIED_DOCUMENT_MAX_AGE` (a backlog) reads the source again,
/// so what changed while it waited is seen: here the invoice is approved and readable, and
/// posts.
#[tokio::test]
async fn a_stale_carried_document_is_read_again() {
    let h = Harness::new().await;
    let id = h.simple_invoice("SUP-001", "CARRY-2");
    h.coupa.clear_requests();
    let old = Utc::now()
        - chrono::Duration::from_std(CARRIED_DOCUMENT_MAX_AGE).unwrap()
        - Duration::seconds(5);
    h.pipeline
        .env
        .queue
        .send(
            QueueName::Ingest,
            vec![carried_message(id, old).to_outgoing()],
        )
        .await
        .unwrap();
    drain(&h).await;
    assert_eq!(coupa_reads(&h, id), 1);
    assert!(h.parked().await.is_empty());
    assert_eq!(h.bc_invoices_for("CARRY-2").len(), 1);
}
