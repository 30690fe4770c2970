//! A step that outlives the visibility timeout keeps its message, and a write that outlives its
//! ledger claim's lease keeps its claim: the worker renews both while the step runs, so a slow
//! answer never makes two workers do the same document.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Harness;
use mlc_cli::embedded;
use mlc_sandbox::{FaultKind, FaultRule};
use mlc_shared::adapters::embedded::SqliteStore;
use mlc_shared::ports::{Queue, QueueName, SystemClock};
use mlc_shared::runtime::Pipeline;
use mlc_shared::steps::Env;
use mlc_shared::steps::post::PostOutcome;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_step_slower_than_the_visibility_timeout_runs_on_one_worker_only() {
    let h = Harness::new().await;
    h.simple_invoice("SUP-001", "SLOW-1");
    let mut cfg = h.cfg.clone();
    cfg.runtime.visibility_timeout_secs = 1;
    let p = mlc_cli::embedded::pipeline(&cfg, &h.secrets).await.unwrap();
    // BC answers the draft's create after 3.5 s: more than three visibility timeouts.
    h.bc.fail_next(FaultRule::new(
        "POST",
        "/purchaseInvoices",
        1,
        FaultKind::Hang { millis: 3500 },
    ));
    p.poll_all().await.unwrap();
    let stats = p.drain(2, Arc::new(|_| {})).await.unwrap();
    assert_eq!(stats.posted, 1, "{stats:?}");
    assert_eq!(stats.failed_attempts, 0, "{stats:?}");
    assert_eq!(stats.lost_receipts, 0, "{stats:?}");
    // The draft's create is one deep insert, the post one `$batch` (post + read): a second
    // worker taking the message over would have sent another create.
    let log = h.bc.requests();
    let posts = |suffix: &str| {
        log.iter()
            .filter(|r| r.method == "POST" && r.path.ends_with(suffix))
            .count()
    };
    assert_eq!(
        (posts("/purchaseInvoices"), posts("$batch")),
        (1, 1),
        "one worker: one create, one post batch"
    );
    assert_eq!(h.bc_invoices_for("SLOW-1").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_slower_than_its_claim_lease_keeps_the_claim() {
    let h = Harness::new().await;
    h.simple_invoice("SUP-001", "SLOW-CLAIM");
    let db = embedded::open_db(&h.cfg).unwrap();
    let env = Env::new(
        embedded::queue(&h.cfg, db.clone()),
        SqliteStore::new(db),
        SystemClock,
    )
    .with_claim_lease(Duration::from_secs(1));
    let p = Arc::new(
        Pipeline::build(&h.cfg, env, &h.secrets, "worker-a".into(), None)
            .await
            .unwrap(),
    );
    p.poll_all().await.unwrap();
    let q = &p.env.queue;
    for m in q.receive(QueueName::Ingest, 10).await.unwrap() {
        p.handle_ingest(&m.body).await.unwrap();
        q.ack(QueueName::Ingest, &m.receipt).await.unwrap();
    }
    let post = q.receive(QueueName::Post, 10).await.unwrap();
    assert_eq!(post.len(), 1);
    let msg = post[0].body.clone();
    // BC answers the draft's create after 3 s: three claim leases.
    h.bc.fail_next(FaultRule::new(
        "POST",
        "/purchaseInvoices",
        1,
        FaultKind::Hang { millis: 3000 },
    ));
    let slow = {
        let (p, msg) = (p.clone(), msg.clone());
        tokio::spawn(async move { p.handle_post_crashing(&msg, "worker-a", None).await })
    };
    // Another delivery of the same document (a webhook and a poll, a second queue consumer)
    // arrives when the first claim would have run out.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    match p
        .handle_post_crashing(&msg, "worker-b", None)
        .await
        .unwrap()
    {
        PostOutcome::Busy { owner, .. } => assert_eq!(owner, "worker-a"),
        other => panic!("the second worker must find the claim held, got {other:?}"),
    }
    let first = slow.await.unwrap().unwrap();
    assert!(matches!(first, PostOutcome::Posted { .. }), "{first:?}");
    assert_eq!(h.bc_invoices_for("SLOW-CLAIM").len(), 1);
}

/// Figures, not a test: the CPU the process spends while three of four workers have nothing to
/// do and the fourth waits 5 s for BC. Idle workers sleep until the queue changes (the held
/// message is settled) or something is due, instead of asking the database every 50 ms.
/// `cargo test -p mlc-e2e --test leases -- --ignored --nocapture idle_cpu_figures`
#[ignore = "figures for the notes; run by hand"]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_cpu_figures() {
    fn cpu_ms() -> f64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let f: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
        ticks * 10.0
    }
    let h = Harness::new().await;
    h.simple_invoice("SUP-001", "IDLE-1");
    let p = mlc_cli::embedded::pipeline(&h.cfg, &h.secrets)
        .await
        .unwrap();
    h.bc.fail_next(FaultRule::new(
        "POST",
        "/purchaseInvoices",
        1,
        FaultKind::Hang { millis: 5000 },
    ));
    p.poll_all().await.unwrap();
    let (cpu, wall) = (cpu_ms(), std::time::Instant::now());
    let stats = p.drain(4, Arc::new(|_| {})).await.unwrap();
    assert_eq!(stats.posted, 1);
    println!(
        "idle_cpu_figures: 4 workers, one 5 s answer: {:.0} ms CPU over {:.1} s",
        cpu_ms() - cpu,
        wall.elapsed().as_secs_f64()
    );
}
