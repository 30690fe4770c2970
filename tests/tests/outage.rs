//! The default retry schedule rides out a one-hour outage of the target: a document that fails
//! throughout it is retried, not dead-lettered, and posts once when the target is back. Time
//! runs on a fast (manual) clock: the queue's retry delays are real, the waits are skipped.

mod common;

use std::time::Duration;

use common::Harness;
use mlc_cli::embedded;
use mlc_sandbox::{FaultKind, FaultRule};
use mlc_shared::adapters::embedded::{ManualClock, QueueSettings, SqliteQueue, SqliteStore};
use mlc_shared::config::RuntimeConfig;
use mlc_shared::ports::{Clock, Queue, QueueName};
use mlc_shared::runtime::{Delivery, DrainStats, Pipeline};
use mlc_shared::steps::Env;

#[tokio::test(flavor = "multi_thread")]
async fn with_the_default_schedule_a_document_rides_out_a_one_hour_outage() {
    let h = Harness::new().await;
    h.simple_invoice("SUP-001", "OUT-1");
    // The product's schedule, not the harness's 20 ms.
    let defaults = RuntimeConfig::default();
    let mut cfg = h.cfg.clone();
    cfg.runtime.retry_base_delay_ms = defaults.retry_base_delay_ms;
    cfg.runtime.retry_max_delay_secs = defaults.retry_max_delay_secs;
    cfg.runtime.max_receives = defaults.max_receives;
    let clock = ManualClock::new(chrono::Utc::now());
    let db = embedded::open_db(&cfg).unwrap();
    let queue = SqliteQueue::new(
        db.clone(),
        clock.clone(),
        QueueSettings {
            visibility_timeout: Duration::from_secs(cfg.runtime.visibility_timeout_secs),
            max_receives: cfg.runtime.max_receives,
            ..QueueSettings::default()
        },
    );
    let env = Env::new(queue, SqliteStore::new(db), clock.clone());
    let p = Pipeline::build(&cfg, env, &h.secrets, "worker".into(), None)
        .await
        .unwrap();
    p.poll_all().await.unwrap();
    let q = &p.env.queue;
    let mut stats = DrainStats::default();
    for m in q.receive(QueueName::Ingest, 10).await.unwrap() {
        let d = p
            .run_message(QueueName::Ingest, &m.body, m.receive_count, &mut stats)
            .await;
        p.settle(QueueName::Ingest, &m, &d, true).await.unwrap();
    }

    let started = clock.now();
    let outage = chrono::Duration::hours(1);
    let mut deliveries = 0;
    loop {
        let Some(m) = q.receive(QueueName::Post, 1).await.unwrap().pop() else {
            // Nothing due yet: time passes.
            clock.advance(Duration::from_secs(30));
            assert!(
                clock.now() - started < chrono::Duration::hours(3),
                "the document never came back"
            );
            continue;
        };
        deliveries += 1;
        if clock.now() - started < outage {
            // BC is down: every create fails.
            h.bc.fail_next(FaultRule::new(
                "POST",
                "/purchaseInvoices",
                1,
                FaultKind::Status(500),
            ));
        }
        let d = p
            .run_message(QueueName::Post, &m.body, m.receive_count, &mut stats)
            .await;
        p.settle(QueueName::Post, &m, &d, true).await.unwrap();
        match d {
            Delivery::Done => break,
            Delivery::Failed { dead_lettered, .. } => assert!(
                !dead_lettered,
                "dead-lettered {} min into a one-hour outage",
                (clock.now() - started).num_minutes()
            ),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        clock.now() - started >= outage,
        "it posted during the outage"
    );
    assert!(deliveries <= defaults.max_receives, "{deliveries}");
    assert!(q.dead_letters(QueueName::Post).await.unwrap().is_empty());
    let inv = h.bc_invoices_for("OUT-1");
    assert_eq!(inv.len(), 1);
    assert_eq!((inv[0].status.as_str(), inv[0].post_count), ("Open", 1));
}
