//! `mlc replay` as an operator runs it: the real binary, a real SQLite file, the simulators over
//! HTTP. Every replay must end exactly once in Business Central.

mod common;

use std::process::Output;

use common::{mlc, text};

use mlc_sandbox::bc::{BcConfig, BcSim};
use mlc_sandbox::coupa::{CoupaConfig, CoupaSim, NewInvoice, NewInvoiceLine, NewSupplier};
use mlc_sandbox::demo;
use mlc_sandbox::faults::{FaultKind, FaultRule};

struct Deployment {
    dir: tempfile::TempDir,
    coupa: CoupaSim,
    bc: BcSim,
}

impl Deployment {
    fn mlc(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend(["-c", "mlc.toml"]);
        mlc(self.dir.path(), &all, None)
    }

    /// An approved invoice of the Coupa supplier `supplier` (created if new) with one line.
    fn invoice(&self, supplier: &str, number: &str) -> i64 {
        let sid = self
            .coupa
            .supplier_id_by_number(supplier)
            .unwrap_or_else(|| {
                self.coupa
                    .add_supplier(NewSupplier::new(&format!("Supplier {supplier}"), supplier))
            });
        self.coupa
            .add_invoice(NewInvoice::approved(sid, number).line(NewInvoiceLine::qty(
                "Toner cartridges",
                "2",
                "45.50",
                &["6100", "ADM", "P-100"],
            )))
    }

    fn bc_invoices(&self, number: &str) -> Vec<mlc_sandbox::bc::BcInvoiceView> {
        self.bc
            .purchase_invoices()
            .into_iter()
            .filter(|i| i.vendor_invoice_number == number)
            .collect()
    }

    /// The audit trail's events.
    fn audit(&self, extra: &[&str]) -> Vec<serde_json::Value> {
        let mut args = vec!["audit", "--history", "--json"];
        args.extend(extra);
        let o = self.mlc(&args);
        assert!(o.status.success(), "{}", text(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// What a dry run must leave alone: the audit trail, BC, and the database file byte for byte
    /// (queues, dead letters, parked list, ledger, mappings).
    fn snapshot(&self) -> (Vec<serde_json::Value>, usize, Vec<u8>) {
        let db = std::fs::read(self.dir.path().join("mlc.sqlite")).unwrap_or_default();
        (self.audit(&[]), self.bc.purchase_invoices().len(), db)
    }
}

/// Simulators with BC's demo master data, no Coupa invoices yet, a configuration (with
/// `runtime` overrides) and the secrets stored through `mlc secrets set`.
async fn deployment(runtime: &[(&str, &str)]) -> Deployment {
    let coupa = CoupaSim::start(CoupaConfig::default()).await.unwrap();
    let bc = BcSim::start(BcConfig::default()).await.unwrap();
    demo::seed_bc(&bc);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = mlc_cli::cmd::sandbox::config_toml(&coupa, &bc, "mlc.sqlite", "mlc.secrets");
    for (key, value) in runtime {
        let lines: Vec<String> = cfg
            .lines()
            .filter(|l| !l.starts_with(&format!("{key} =")))
            .map(str::to_string)
            .collect();
        cfg = lines
            .join("\n")
            .replacen("[runtime]\n", &format!("[runtime]\n{key} = {value}\n"), 1)
            + "\n";
    }
    std::fs::write(dir.path().join("mlc.toml"), cfg).unwrap();
    let d = Deployment { dir, coupa, bc };
    common::store_secrets(d.dir.path(), &d.coupa, &d.bc);
    d
}

/// Sends `POST path` (no credentials) and returns the status: used to use up injected faults
/// that outlived the run (a fault answers before authentication; without one BC says 401).
async fn raw_post(base: &str, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf);
    head.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn replaying_a_posted_invoice_ends_as_already_posted_and_bc_keeps_one() {
    let d = deployment(&[]).await;
    let id = d.invoice("SUP-001", "RP-1001");
    let o = d.mlc(&["run", "--once"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(d.bc_invoices("RP-1001").len(), 1);

    // By document number, and then by Coupa id: both are the same document.
    for which in ["RP-1001".to_string(), id.to_string()] {
        let o = d.mlc(&["replay", "--document", &which]);
        let out = text(&o);
        assert!(o.status.success(), "{out}");
        assert!(out.contains("replaying 1 document(s)"), "{out}");
        assert!(out.contains("already_posted"), "{out}");
        let bc = d.bc_invoices("RP-1001");
        assert_eq!(bc.len(), 1, "a replay created a second BC invoice");
        assert_eq!(bc[0].post_count, 1);
        assert!(out.contains(&bc[0].number), "{out}");
    }
    let replays = d.audit(&["--document", "RP-1001"]);
    let steps: Vec<(&str, &str)> = replays
        .iter()
        .map(|i| (i["step"].as_str().unwrap(), i["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps
            .iter()
            .filter(|s| **s == ("replay", "received"))
            .count(),
        2,
        "{steps:?}"
    );
    // The repeats are counted on the row that recorded the post, not logged as rows.
    assert!(!steps.contains(&("post", "already_posted")), "{steps:?}");
    let posted: Vec<_> = replays
        .iter()
        .filter(|i| i["step"] == "post" && i["status"] == "posted")
        .collect();
    assert_eq!(posted.len(), 1, "{replays:?}");
    assert_eq!(posted[0]["repeats"], 2, "{replays:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_lettered_post_is_replayed_after_the_fault_clears_and_posts_once() {
    let d = deployment(&[("max_receives", "2"), ("retry_base_delay_ms", "10")]).await;
    d.invoice("SUP-002", "RP-2001");
    d.bc.fail_next(FaultRule {
        method: "POST".into(),
        path_contains: "/purchaseInvoices".into(),
        count: 10,
        kind: FaultKind::Status(500),
    });
    let o = d.mlc(&["run", "--once"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(d.bc_invoices("RP-2001").is_empty());
    let dead = d.audit(&["--status", "dead_lettered"]);
    assert_eq!(dead.len(), 1, "{dead:?}");

    // The fault clears: use up what is left of it.
    let path = format!(
        "{}/companies({})/purchaseInvoices",
        d.bc.api_root().trim_start_matches(&d.bc.base_url()),
        d.bc.company_id()
    );
    let mut left = 0;
    while raw_post(&d.bc.base_url(), &path).await == 500 {
        left += 1;
        assert!(left <= 10, "the fault never cleared");
    }

    let o = d.mlc(&["replay", "--dead-lettered", "--dry-run"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("would replay 1 document(s)"), "{out}");
    assert!(
        out.contains("dead letter would move back to the post queue"),
        "{out}"
    );

    let o = d.mlc(&["replay", "--dead-lettered", "--integration", "coupa-bc"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("posted"), "{out}");
    let bc = d.bc_invoices("RP-2001");
    assert_eq!(bc.len(), 1, "{bc:?}");
    assert_eq!(bc[0].status, "Open");
    assert_eq!(bc[0].post_count, 1);
    let replayed = d.audit(&["--document", "RP-2001"]);
    assert!(
        replayed
            .iter()
            .any(|i| i["step"] == "replay" && i["status"] == "received"),
        "{replayed:?}"
    );

    // It left the dead-letter queue: a second replay finds nothing, and says so.
    // Nothing dead-lettered is good news: said, and exit 0.
    let o = d.mlc(&["replay", "--dead-lettered"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("nothing to replay: no dead-lettered message"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("nothing to replay: no dead-lettered message"),
        "{}",
        text(&o)
    );
    // And replaying the posted document again still leaves one invoice.
    let o = d.mlc(&["replay", "--document", "RP-2001"]);
    assert!(text(&o).contains("already_posted"), "{}", text(&o));
    assert_eq!(d.bc_invoices("RP-2001").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn replaying_parked_invoices_posts_them_once_the_vendor_is_mapped() {
    let d = deployment(&[]).await;
    d.invoice("SUP-001", "RP-3001");
    d.invoice("SUP-009", "RP-3002");
    let o = d.mlc(&["run", "--once"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(d.bc_invoices("RP-3002").is_empty());

    // Still unmapped: the replay runs and the invoice stays parked, with its reason.
    let o = d.mlc(&["replay", "--parked"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("parked"), "{out}");
    assert!(out.contains("no Business Central vendor mapped"), "{out}");

    // Nothing was parked after this date: the filter leaves nothing to do, which is no error.
    let o = d.mlc(&["replay", "--parked", "--from", "2999-01-01"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("nothing to replay: no parked document from 2999-01-01"),
        "{}",
        text(&o)
    );

    d.bc.add_vendor("V90000", "Supplier SUP-009");
    std::fs::write(
        d.dir.path().join("map.csv"),
        "kind,source,target\nsupplier,SUP-009,V90000\n",
    )
    .unwrap();
    let o = d.mlc(&["map", "import", "map.csv", "--integration", "coupa-bc"]);
    assert!(o.status.success(), "{}", text(&o));

    let o = d.mlc(&["replay", "--parked", "--document", "RP-3002"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("posted"), "{out}");
    let bc = d.bc_invoices("RP-3002");
    assert_eq!(bc.len(), 1);
    assert_eq!(bc[0].vendor_number, "V90000");
    assert_eq!(bc[0].post_count, 1);
    assert_eq!(d.bc_invoices("RP-3001").len(), 1);
    // Nothing is parked any more: said, exit 0.
    let o = d.mlc(&["replay", "--parked"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("nothing to replay: no parked document"),
        "{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_lists_and_changes_nothing() {
    let d = deployment(&[]).await;
    d.invoice("SUP-001", "RP-4001");
    d.invoice("SUP-009", "RP-4002");
    let o = d.mlc(&["run", "--once"]);
    assert!(o.status.success(), "{}", text(&o));
    d.bc.add_vendor("V90000", "Supplier SUP-009");
    std::fs::write(
        d.dir.path().join("map.csv"),
        "kind,source,target\nsupplier,SUP-009,V90000\n",
    )
    .unwrap();
    let o = d.mlc(&["map", "import", "map.csv", "--integration", "coupa-bc"]);
    assert!(o.status.success(), "{}", text(&o));

    let before = d.snapshot();
    for args in [
        vec!["replay", "--parked", "--dry-run"],
        vec!["replay", "--document", "RP-4001", "--dry-run"],
    ] {
        let o = d.mlc(&args);
        let out = text(&o);
        assert!(o.status.success(), "{out}");
        assert!(out.contains("would replay 1 document(s)"), "{out}");
        assert!(out.contains("dry run: nothing changed"), "{out}");
    }
    let o = d.mlc(&["replay", "--parked", "--dry-run"]);
    assert!(text(&o).contains("RP-4002"), "{}", text(&o));
    let after = d.snapshot();
    assert_eq!(before.0, after.0, "the audit trail changed");
    assert_eq!(before.1, after.1, "BC changed");
    assert!(before.2 == after.2, "the database file changed");
    assert!(d.bc_invoices("RP-4002").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_refuses_clearly() {
    let d = deployment(&[]).await;
    d.invoice("SUP-001", "RP-5001");
    let o = d.mlc(&["run", "--once"]);
    assert!(o.status.success(), "{}", text(&o));

    let o = d.mlc(&["replay"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("say what to replay: --document"),
        "{}",
        text(&o)
    );

    let o = d.mlc(&["replay", "--document", "RP-5001", "--integration", "nope"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("integration 'nope' is not configured"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("coupa-bc"), "{}", text(&o));

    let o = d.mlc(&["replay", "--document", "NO-SUCH-1"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("nothing to replay: no document 'NO-SUCH-1' in the audit trail"),
        "{}",
        text(&o)
    );

    // Nothing dead-lettered is good news: said, and exit 0.
    let o = d.mlc(&["replay", "--dead-lettered"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("nothing to replay: no dead-lettered message"),
        "{}",
        text(&o)
    );

    let o = d.mlc(&["replay", "--document", "RP-5001", "--from", "yesterday"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("'yesterday' is neither a date"),
        "{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_company_that_lost_a_posted_invoice_gets_it_parked_and_repost_writes_it_once() {
    let d = deployment(&[]).await;
    d.invoice("SUP-001", "RS-1001");
    let o = d.mlc(&["run", "--once"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(d.bc_invoices("RS-1001").len(), 1);

    // The company is restored from a backup older than the invoice.
    d.bc.restore_without_documents();
    let o = d.mlc(&["replay", "--document", "RS-1001"]);
    let out = text(&o);
    assert!(out.contains("parked"), "{out}");
    assert!(out.contains("no longer in business_central:"), "{out}");
    assert!(out.contains("--repost"), "{out}");
    assert!(!out.contains("already_posted"), "{out}");
    assert!(d.bc_invoices("RS-1001").is_empty());
    let parked = d.audit(&["--status", "parked", "--document", "RS-1001"]);
    assert_eq!(parked.len(), 1, "{parked:?}");

    // A person decides to write it again.
    let o = d.mlc(&["replay", "--document", "RS-1001", "--repost"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("posted"), "{out}");
    let bc = d.bc_invoices("RS-1001");
    assert_eq!(bc.len(), 1);
    assert_eq!((bc[0].status.as_str(), bc[0].post_count), ("Open", 1));
    let asked = d.audit(&["--document", "RS-1001"]);
    assert!(
        asked.iter().any(|i| i["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("re-post requested: the ledger's record (done"))),
        "the re-post is audited: {asked:?}"
    );

    // A second re-post finds it in BC: still one.
    let o = d.mlc(&["replay", "--document", "RS-1001", "--repost"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("already_posted"), "{}", text(&o));
    assert_eq!(d.bc_invoices("RS-1001").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_pointed_at_another_company_is_warned_about_and_posts_there() {
    let d = deployment(&[]).await;
    let id = d.invoice("SUP-001", "MV-1001");
    let o = d.mlc(&["run", "--once"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(d.bc_invoices("MV-1001").len(), 1);

    // The same configuration, now naming another BC company (test → production).
    let other = BcSim::start(BcConfig::default()).await.unwrap();
    demo::seed_bc(&other);
    let path = d.dir.path().join("mlc.toml");
    let cfg = std::fs::read_to_string(&path)
        .unwrap()
        .replace(&d.bc.base_url(), &other.base_url())
        .replace(
            &d.bc.company_id().to_string(),
            &other.company_id().to_string(),
        );
    std::fs::write(&path, cfg).unwrap();
    let o = d.mlc(&["check"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("warning: integration 'coupa-bc': the database holds 1 ledger entry written for business_central:")
            && out.contains(&d.bc.company_id().to_string())
            && out.contains("not done here"),
        "{out}"
    );

    // Seen again, it is written into the new company, not reported as already posted.
    d.coupa.touch_invoice(id);
    let o = d.mlc(&["run", "--once"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("posted 1,"), "{out}");
    assert!(out.contains("already posted 0"), "{out}");
    let moved: Vec<_> = other
        .purchase_invoices()
        .into_iter()
        .filter(|i| i.vendor_invoice_number == "MV-1001")
        .collect();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].status, "Open");
    assert_eq!(
        d.bc_invoices("MV-1001").len(),
        1,
        "the first company keeps its own"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_that_must_not_be_replayed_is_discarded_with_its_reason() {
    let d = deployment(&[("max_receives", "2"), ("retry_base_delay_ms", "10")]).await;
    let id = d.invoice("SUP-002", "DS-1001");
    d.bc.fail_next(FaultRule {
        method: "POST".into(),
        path_contains: "/purchaseInvoices".into(),
        count: 10,
        kind: FaultKind::Status(500),
    });
    let o = d.mlc(&["run", "--once"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // Days later (the invoice is out of the next poll's window).
    d.coupa
        .set_invoice_updated_at(id, (chrono::Utc::now() - chrono::Duration::days(3)).into());

    // Finance keyed the invoice by hand in BC meanwhile: it must not be written again.
    let o = d.mlc(&["replay", "--discard", "DS-1001"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--reason"), "{}", text(&o));
    let o = d.mlc(&[
        "replay",
        "--discard",
        "DS-1001",
        "--reason",
        "keyed by hand in BC",
    ]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("discarded 1 dead letter(s)"), "{out}");

    let o = d.mlc(&["run", "--once"]);
    assert!(o.status.success(), "no dead letter left: {}", text(&o));
    let discarded = d.audit(&["--status", "discarded"]);
    assert_eq!(discarded.len(), 1, "{discarded:?}");
    assert_eq!(
        discarded[0]["error"],
        "dead letter closed by hand: keyed by hand in BC"
    );
    assert!(d.bc_invoices("DS-1001").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_id_that_names_an_invoice_and_a_purchase_order_is_refused_until_kind_says_which() {
    use mlc_sandbox::coupa::{NewOrderLine, NewPurchaseOrder};
    let d = deployment(&[]).await;
    let path = d.dir.path().join("mlc.toml");
    let cfg = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        cfg + "\n[integrations.sync]\npurchase_orders = true\n",
    )
    .unwrap();
    let invoice = d.invoice("SUP-001", "RK-1001");
    let supplier = d.coupa.supplier_id_by_number("SUP-001").unwrap();
    let order =
        d.coupa
            .add_purchase_order(NewPurchaseOrder::issued(supplier, "PO-RK-1").line(
                NewOrderLine::qty("Paper", "10", "4.50", &["6100", "ADM", "P-100"]),
            ));
    assert_eq!(invoice, order, "Coupa numbers invoices and orders apart");
    let o = d.mlc(&["run", "--once"]);
    assert!(o.status.success(), "{}", text(&o));

    let id = invoice.to_string();
    let o = d.mlc(&["replay", "--document", &id]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("names documents of several kinds"), "{out}");
    assert!(
        out.contains("invoice") && out.contains("purchase_order"),
        "{out}"
    );
    assert!(out.contains("--kind"), "{out}");

    let o = d.mlc(&["replay", "--document", &id, "--kind", "purchase_order"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("replaying 1 document(s)"), "{out}");
    assert!(out.contains("PO-RK-1"), "{out}");
    assert!(!out.contains("RK-1001"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_give_up_on_a_parked_document_of_an_integration_without_one_says_so_and_leaves_it_parked()
{
    let d = deployment(&[]).await;
    d.invoice("SUP-009", "RP-7001");
    let o = d.mlc(&["run", "--once"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = d.mlc(&[
        "replay",
        "--give-up",
        "RP-7001",
        "--reason",
        "wrong supplier",
    ]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("not offered") && out.contains("still parked"),
        "{out}"
    );
    let o = d.mlc(&["replay", "--parked", "--dry-run"]);
    assert!(text(&o).contains("RP-7001"), "{}", text(&o));
    // Nothing parked under that name: said, and a failure.
    let o = d.mlc(&["replay", "--give-up", "RP-0000", "--reason", "x"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("nothing to give up"), "{}", text(&o));
    // A reason is required, and belongs to --discard or --give-up only.
    assert!(!d.mlc(&["replay", "--give-up", "RP-7001"]).status.success());
    let o = d.mlc(&["replay", "--parked", "--reason", "x"]);
    assert!(!o.status.success(), "{}", text(&o));
}
