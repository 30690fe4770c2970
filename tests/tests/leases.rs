//! A step that outlives the visibility timeout keeps its message: the worker renews the lease
//! while the step runs, so a slow answer never makes two workers do the same document.

mod common;

use std::sync::Arc;

use common::Harness;
use mlc_sandbox::{FaultKind, FaultRule};

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
    let creates =
        h.bc.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/purchaseInvoices"))
            .count();
    assert_eq!(creates, 1, "one worker, one create");
    assert_eq!(h.bc_invoices_for("SLOW-1").len(), 1);
}
