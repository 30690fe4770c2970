//! A Business Central answer slower than the queue's visibility timeout, as a cron user meets
//! it: `mlc run --once`, a 60-second visibility timeout, one answer after 65 seconds.

mod common;

use common::{mlc, text};

use mlc_sandbox::bc::{BcConfig, BcSim};
use mlc_sandbox::coupa::{CoupaConfig, CoupaSim};
use mlc_sandbox::{FaultKind, FaultRule, demo};

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_slower_than_the_visibility_timeout_is_waited_for_by_one_worker() {
    let coupa = CoupaSim::start(CoupaConfig::default()).await.unwrap();
    let bc = BcSim::start(BcConfig::default()).await.unwrap();
    demo::seed_bc(&bc);
    demo::seed_coupa(&coupa, 6, 3);
    let dir = tempfile::tempdir().unwrap();
    let cfg = mlc_cli::cmd::sandbox::config_toml(&coupa, &bc, "mlc.sqlite", "mlc.secrets")
        .replace(
            "visibility_timeout_secs = 120",
            "visibility_timeout_secs = 60",
        )
        // The answer must be waited for, not timed out.
        .replace(
            "[systems.business_central]",
            "[systems.business_central]\nhttp_timeout_secs = 90",
        );
    assert!(cfg.contains("visibility_timeout_secs = 60"), "{cfg}");
    std::fs::write(dir.path().join("mlc.toml"), cfg).unwrap();
    common::store_secrets(dir.path(), &coupa, &bc);
    // The first invoice's create (one `$batch`: its look-up and its deep insert with lines and
    // dimensions) is answered after 65 s.
    bc.fail_next(FaultRule::new(
        "POST",
        "/$batch",
        1,
        FaultKind::Hang { millis: 65_000 },
    ));

    let o = mlc(dir.path(), &["run", "--once", "-c", "mlc.toml"], None);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("mapped "), "the summary is printed: {out}");
    assert!(!out.contains("finished after their message"), "{out}");

    let log = bc.requests();
    assert!(
        log.iter().any(|r| r.elapsed_ms >= 65_000),
        "the slow answer happened"
    );
    let refused: Vec<_> = log.iter().filter(|r| r.status >= 400).collect();
    assert!(refused.is_empty(), "no request was refused: {refused:?}");
    let mut numbers: Vec<_> = bc
        .purchase_invoices()
        .into_iter()
        .map(|i| i.vendor_invoice_number)
        .collect();
    let all = numbers.len();
    assert!(all > 0);
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), all, "every invoice once");
}
