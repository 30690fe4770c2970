//! Integration 4 end to end: the B1 simulator and the Coupa simulator over real HTTP, a real
//! SQLite file, a real encrypted secrets file, and the pipeline `mlc run` uses.

use std::sync::Arc;

use mlc_cli::embedded::{self, EmbeddedPipeline};
use mlc_sandbox::b1::{B1Config, B1Sim, DocKind, DocLine, NewDocument, NewPartner};
use mlc_sandbox::coupa::{CoupaConfig, CoupaSim, NewSupplier};
use mlc_sandbox::{FaultKind, FaultRule};
use mlc_shared::adapters::embedded::{SecretFile, SecretKey};
use mlc_shared::config::Config;
use mlc_shared::ports::{Audit, Parking};
use mlc_shared::runtime::DrainStats;
use serde_json::Value;

const WEBHOOK_KEY: &str = "b1-hook-key";

struct Harness {
    b1: B1Sim,
    coupa: CoupaSim,
    _dir: tempfile::TempDir,
    secrets: SecretFile,
    pipeline: Arc<EmbeddedPipeline>,
}

impl Harness {
    async fn new() -> Self {
        Self::with_sync("").await
    }

    /// `sync` lines go into the integration's `[integrations.sync]`.
    async fn with_sync(sync: &str) -> Self {
        Self::with_coupa(sync, CoupaConfig::default()).await
    }

    async fn with_coupa(sync: &str, coupa_cfg: CoupaConfig) -> Self {
        let b1 = B1Sim::start(B1Config::default()).await.unwrap();
        b1.add_partner(NewPartner::supplier("V10000", "Maxi-Teq"));
        let coupa = CoupaSim::start(CoupaConfig {
            rate_per_sec: None,
            ..coupa_cfg
        })
        .await
        .unwrap();
        let maxi = coupa.add_supplier(NewSupplier::new("Maxi-Teq", "V10000"));
        if let Some(field) = coupa.config().supplier_custom_fields.first() {
            coupa.set_supplier_custom_field(maxi, field, "V10000");
        }
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            r#"[runtime]
database = "mlc.sqlite"
secrets_file = "mlc.secrets"
workers = 4
max_receives = 5
visibility_timeout_secs = 120
retry_base_delay_ms = 20

[systems.b1]
type = "sap_b1"
service_root = "{b1_root}"
company_db = "SBODEMOUS"
user_name = "manager"
password = "b1-password"
webhook_secret = "b1-webhook-secret"

[systems.coupa]
type = "coupa"
base_url = "{coupa_url}"
client_id = "coupa-client"
client_secret = "coupa-client-secret"
api_version = "R40"
requests_per_second = 1000

[[integrations]]
name = "b1-coupa"
source = "b1"
target = "coupa"

[integrations.sync]
{sync}
"#,
            b1_root = b1.service_root(mlc_sandbox::b1::Protocol::V2),
            coupa_url = coupa.base_url(),
        );
        let path = dir.path().join("mlc.toml");
        std::fs::write(&path, text).unwrap();
        let cfg = Config::load(&path).unwrap();
        let secrets = SecretFile::open(&cfg.runtime.secrets_file, SecretKey::generate()).unwrap();
        secrets.set("b1-password", &b1.config().password).unwrap();
        secrets.set("b1-webhook-secret", WEBHOOK_KEY).unwrap();
        secrets
            .set("coupa-client-secret", &coupa.config().client_secret)
            .unwrap();
        let pipeline = embedded::pipeline(&cfg, &secrets).await.unwrap();
        Self {
            b1,
            coupa,
            _dir: dir,
            secrets,
            pipeline,
        }
    }

    async fn run_once(&self) -> DrainStats {
        self.pipeline.poll_all().await.unwrap();
        self.pipeline.drain(4, Arc::new(|_| {})).await.unwrap()
    }

    fn po(&self, qty: &str) -> i64 {
        self.b1
            .add_document(
                DocKind::PurchaseOrders,
                NewDocument::for_supplier("V10000")
                    .line(DocLine::item("A100", "Paper", qty, "10.50", "0").costing(&["SALES"])),
            )
            .unwrap()
    }

    fn coupa_po_number(&self, entry: i64) -> String {
        let doc_num = self
            .b1
            .document(DocKind::PurchaseOrders, entry)
            .unwrap()
            .doc_num;
        format!("B1-{doc_num}")
    }

    /// Every Coupa purchase order with this number (exactly one, when all is well).
    fn coupa_orders(&self, number: &str) -> Vec<Value> {
        (1..200)
            .filter_map(|id| self.coupa.purchase_order_json(id))
            .filter(|po| po["po-number"] == number)
            .collect()
    }

    fn coupa_invoices(&self, number: &str) -> Vec<Value> {
        (1..200)
            .filter_map(|id| self.coupa.invoice_json(id))
            .filter(|i| i["invoice-number"] == number)
            .collect()
    }
}

#[tokio::test]
async fn a_po_and_an_invoice_copied_from_it_land_in_coupa_once() {
    let h = Harness::new().await;
    let po = h.po("4");
    h.b1.add_document(
        DocKind::PurchaseInvoices,
        NewDocument::for_supplier("V10000")
            .num_at_card("INV-1")
            .line(DocLine::item("A100", "Paper", "4", "10.50", "4.20").from_po(po, 0)),
    )
    .unwrap();
    h.run_once().await;
    h.run_once().await;
    let number = h.coupa_po_number(po);
    let orders = h.coupa_orders(&number);
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(orders[0]["type"], "ExternalOrderHeader");
    assert_eq!(orders[0]["order-lines"][0]["quantity"], "4");
    assert_eq!(orders[0]["order-lines"][0]["account"]["segment-1"], "SALES");
    let invoices = h.coupa_invoices("INV-1");
    assert_eq!(invoices.len(), 1, "{invoices:?}");
    assert_eq!(invoices[0]["invoice-lines"][0]["po-number"], number);
    assert_eq!(invoices[0]["tax-amount"], "4.20");
    assert_eq!(invoices[0]["total-with-taxes"], "46.20");
    assert_eq!(h.b1.logins(), 1, "one session for the whole run");
}

#[tokio::test]
async fn a_coupa_create_whose_answer_is_lost_is_found_again_not_duplicated() {
    let h = Harness::new().await;
    let po = h.po("1");
    h.b1.add_document(
        DocKind::PurchaseInvoices,
        NewDocument::for_supplier("V10000")
            .num_at_card("INV-LOST")
            .line(DocLine::item("A100", "Paper", "1", "10.50", "0")),
    )
    .unwrap();
    for path in ["/api/purchase_orders", "/api/invoices"] {
        h.coupa
            .fail_next(FaultRule::new("POST", path, 1, FaultKind::LoseResponse));
    }
    h.run_once().await;
    h.run_once().await;
    h.run_once().await;
    assert_eq!(h.coupa_orders(&h.coupa_po_number(po)).len(), 1);
    assert_eq!(h.coupa_invoices("INV-LOST").len(), 1);
    let posts = h
        .coupa
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/api/"))
        .count();
    assert_eq!(
        posts, 2,
        "one create each; the lost ones were found, not repeated"
    );
}

#[tokio::test]
async fn a_po_cancelled_in_b1_is_cancelled_in_coupa_and_one_cancelled_first_is_never_created() {
    let h = Harness::new().await;
    let po = h.po("1");
    h.run_once().await;
    let number = h.coupa_po_number(po);
    assert_eq!(h.coupa_orders(&number)[0]["status"], "draft");
    let now = chrono::Utc::now().naive_utc();
    h.b1.document_action(DocKind::PurchaseOrders, po, "Cancel", now)
        .unwrap();
    h.run_once().await;
    let orders = h.coupa_orders(&number);
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["status"], "cancelled");

    let never = h.po("2");
    h.b1.document_action(DocKind::PurchaseOrders, never, "Cancel", now)
        .unwrap();
    h.run_once().await;
    assert!(h.coupa_orders(&h.coupa_po_number(never)).is_empty());
}

#[tokio::test]
async fn a_po_changed_twice_in_one_day_updates_the_coupa_order_each_time() {
    let h = Harness::new().await;
    let po = h.po("1");
    h.run_once().await;
    let number = h.coupa_po_number(po);
    for qty in ["2", "3"] {
        h.b1.change_document(DocKind::PurchaseOrders, po, |d| {
            d.lines[0].quantity = qty.parse().unwrap()
        });
        h.run_once().await;
        let orders = h.coupa_orders(&number);
        assert_eq!(orders.len(), 1);
        assert_eq!(orders[0]["order-lines"][0]["quantity"], qty);
    }
    // Polled again with nothing changed: nothing more is written.
    let before = h
        .coupa
        .requests()
        .iter()
        .filter(|r| r.method == "PUT")
        .count();
    h.run_once().await;
    let after = h
        .coupa
        .requests()
        .iter()
        .filter(|r| r.method == "PUT")
        .count();
    assert_eq!(before, after);
}

#[tokio::test]
async fn a_b1_supplier_missing_in_coupa_is_created_and_its_po_lands_then_a_rename_follows() {
    let h = Harness::with_sync("suppliers = \"create\"").await;
    h.b1.add_partner(NewPartner {
        federal_tax_id: Some("DE123".into()),
        ..NewPartner::supplier("V20000", "Northwind GmbH")
    });
    let po =
        h.b1.add_document(
            DocKind::PurchaseOrders,
            NewDocument::for_supplier("V20000").line(DocLine::item("A1", "Bolts", "9", "1", "0")),
        )
        .unwrap();
    h.run_once().await;
    h.run_once().await;
    let id = h
        .coupa
        .supplier_id_by_number("V20000")
        .expect("created in Coupa");
    let s = h.coupa.supplier_json(id).unwrap();
    assert_eq!(
        (s["name"].as_str(), s["tax-id"].as_str()),
        (Some("Northwind GmbH"), Some("DE123"))
    );
    assert_eq!(h.coupa_orders(&h.coupa_po_number(po)).len(), 1);

    let now = chrono::Utc::now().naive_utc();
    h.b1.change_partner("V20000", now, |bp| bp.card_name = "Northwind AG".into());
    h.run_once().await;
    assert_eq!(h.coupa.supplier_json(id).unwrap()["name"], "Northwind AG");
    assert_eq!(
        h.coupa.supplier_id_by_number("V20000"),
        Some(id),
        "updated, not created again"
    );
    let puts = |h: &Harness| {
        h.coupa
            .requests()
            .iter()
            .filter(|r| r.method == "PUT" && r.path.starts_with("/api/suppliers"))
            .count()
    };
    let before = puts(&h);
    h.run_once().await;
    assert_eq!(puts(&h), before, "nothing changed, nothing written");
}

#[tokio::test]
async fn a_b1_session_expired_between_polls_is_replaced_and_logout_frees_it() {
    let h = Harness::new().await;
    h.po("1");
    h.run_once().await;
    h.b1.expire_sessions();
    let second = h.po("2");
    h.run_once().await;
    assert_eq!(h.coupa_orders(&h.coupa_po_number(second)).len(), 1);
    assert_eq!(h.b1.logins(), 2);
    assert_eq!(h.b1.live_sessions(), 1);
    h.pipeline.systems.logout_all().await;
    assert_eq!(h.b1.live_sessions(), 0);
}

#[tokio::test]
async fn a_b1_payment_is_recorded_once_on_the_coupa_invoice_even_when_its_answer_is_lost() {
    let h = Harness::with_sync("payments = true").await;
    let inv =
        h.b1.add_document(
            DocKind::PurchaseInvoices,
            NewDocument::for_supplier("V10000")
                .num_at_card("INV-P")
                .line(DocLine::item("A100", "Paper", "4", "10.50", "4.20")),
        )
        .unwrap();
    h.run_once().await;
    assert_eq!(h.coupa_invoices("INV-P").len(), 1);
    let pay =
        h.b1.add_payment("V10000", "WIRE-1", &[(inv, "46.20")])
            .unwrap();
    h.coupa.fail_next(FaultRule::new(
        "PUT",
        "/api/invoices/",
        1,
        FaultKind::LoseResponse,
    ));
    h.run_once().await;
    h.run_once().await;
    h.run_once().await;
    let coupa = &h.coupa_invoices("INV-P")[0];
    let payments = coupa["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 1, "{payments:?}");
    assert_eq!(payments[0]["amount-paid"], "46.20");
    let lost = h
        .coupa
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.status == 500)
        .count();
    assert_eq!(lost, 1, "the first PUT's answer was lost");
    let puts = h
        .coupa
        .requests()
        .iter()
        .filter(|r| r.method == "PUT")
        .count();
    assert_eq!(puts, 1, "found by its reference, not sent again");
    let doc_num = 5000 + pay;
    assert_eq!(payments[0]["notes"], format!("B1-VP-{doc_num}-{inv}"));
}

async fn b1_event(h: &Harness, body: &[u8], signature: &str) -> u16 {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-b1-signature", signature.parse().unwrap());
    let req = mlc_shared::flows::WebhookRequest {
        channel: "b1",
        method: "POST",
        headers: &headers,
        query: &[],
        body,
        client_cert_subject: None,
    };
    h.pipeline.webhook("b1-coupa", &h.secrets, req).await.status
}

#[tokio::test]
async fn a_signed_b1_event_triggers_a_read_and_a_badly_signed_one_queues_nothing() {
    let h = Harness::new().await;
    let po = h.po("3");
    let body = format!(r#"{{"ObjectType":"22","Key":"{po}","Action":"A"}}"#);
    let forged = mlc_sandbox::coupa::webhook_signature("guess", body.as_bytes());
    assert_eq!(b1_event(&h, body.as_bytes(), &forged).await, 401);
    h.pipeline.drain(4, Arc::new(|_| {})).await.unwrap();
    assert!(
        h.coupa_orders(&h.coupa_po_number(po)).is_empty(),
        "nothing queued"
    );

    let signed = mlc_sandbox::coupa::webhook_signature(WEBHOOK_KEY, body.as_bytes());
    assert_eq!(b1_event(&h, body.as_bytes(), &signed).await, 202);
    // No poll: the event alone brings the order over.
    h.pipeline.drain(4, Arc::new(|_| {})).await.unwrap();
    assert_eq!(h.coupa_orders(&h.coupa_po_number(po)).len(), 1);
}

// ------------------------------------------------- suppliers both ways (issue #14 item 5)

const BOTH_WAYS: &str = "suppliers = \"both_ways\"";

impl Harness {
    /// Requests of `method` the simulator served on a path containing `path`.
    fn b1_requests(&self, method: &str, path: &str) -> usize {
        self.b1
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path.contains(path))
            .count()
    }

    fn coupa_requests(&self, method: &str, path: &str) -> usize {
        self.coupa
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(path))
            .count()
    }

    async fn audit(
        &self,
        status: mlc_shared::ports::AuditStatus,
    ) -> Vec<mlc_shared::ports::AuditItem> {
        self.pipeline
            .env
            .store
            .query_audit(&mlc_shared::ports::AuditFilter {
                status: Some(status),
                ..Default::default()
            })
            .await
            .unwrap()
    }

    fn maxi_teq(&self) -> i64 {
        self.coupa.supplier_id_by_number("V10000").unwrap()
    }
}

#[tokio::test]
async fn a_coupa_supplier_b1_does_not_have_is_created_in_b1_as_a_supplier_partner() {
    let h = Harness::with_sync(BOTH_WAYS).await;
    h.coupa.add_supplier(NewSupplier {
        tax_id: Some("GB999".into()),
        ..NewSupplier::new("Contoso Ltd", "V30000")
    });
    h.run_once().await;
    let bp = h.b1.partner("V30000").expect("created in B1");
    assert_eq!(
        (
            bp.card_name.as_str(),
            bp.card_type.as_str(),
            bp.federal_tax_id.as_deref()
        ),
        ("Contoso Ltd", "cSupplier", Some("GB999"))
    );
    h.run_once().await;
    assert_eq!(h.b1_requests("POST", "BusinessPartners"), 1, "created once");
}

#[tokio::test]
async fn a_coupa_supplier_renamed_in_coupa_is_renamed_in_b1() {
    let h = Harness::with_sync(BOTH_WAYS).await;
    h.run_once().await;
    h.coupa.set_supplier_name(h.maxi_teq(), "Maxi-Teq Ltd");
    h.run_once().await;
    assert_eq!(h.b1.partner("V10000").unwrap().card_name, "Maxi-Teq Ltd");
    assert_eq!(
        h.b1_requests("POST", "BusinessPartners"),
        0,
        "updated, not created"
    );
}

#[tokio::test]
async fn a_b1_partner_created_then_renamed_in_b1_reaches_coupa_with_suppliers_both_ways() {
    let h = Harness::with_sync(BOTH_WAYS).await;
    h.b1.add_partner(NewPartner::supplier("V20000", "Northwind GmbH"));
    h.run_once().await;
    let id = h
        .coupa
        .supplier_id_by_number("V20000")
        .expect("created in Coupa");
    assert_eq!(h.coupa.supplier_json(id).unwrap()["name"], "Northwind GmbH");
    let now = chrono::Utc::now().naive_utc();
    h.b1.change_partner("V20000", now, |bp| bp.card_name = "Northwind AG".into());
    h.run_once().await;
    assert_eq!(h.coupa.supplier_json(id).unwrap()["name"], "Northwind AG");
    assert_eq!(
        h.coupa_requests("POST", "/api/suppliers"),
        1,
        "created once"
    );
}

#[tokio::test]
async fn a_supplier_the_connector_wrote_to_coupa_is_not_written_back_to_b1() {
    let h = Harness::with_sync(BOTH_WAYS).await;
    h.run_once().await;
    let now = chrono::Utc::now().naive_utc();
    h.b1.change_partner("V10000", now, |bp| bp.card_name = "Maxi-Teq Inc".into());
    h.run_once().await;
    assert_eq!(
        h.coupa.supplier_json(h.maxi_teq()).unwrap()["name"],
        "Maxi-Teq Inc"
    );
    // Coupa's feed now lists the supplier the connector changed: its echo.
    h.run_once().await;
    h.run_once().await;
    assert_eq!(
        h.b1_requests("PATCH", "BusinessPartners"),
        0,
        "nothing sent back to B1"
    );
    assert_eq!(h.b1_requests("POST", "BusinessPartners"), 0);
    assert_eq!(
        h.coupa_requests("PUT", "/api/suppliers"),
        1,
        "one write, into Coupa"
    );
    let echo = h.audit(mlc_shared::ports::AuditStatus::AlreadyPosted).await;
    assert!(
        echo.iter().any(|a| a.source_id.starts_with("coupa:")
            && a.error.as_deref().is_some_and(|e| e.contains("in step"))),
        "{echo:?}"
    );
}

#[tokio::test]
async fn a_partner_the_connector_wrote_to_b1_is_not_written_back_to_coupa() {
    let h = Harness::with_sync(BOTH_WAYS).await;
    h.run_once().await;
    h.coupa.set_supplier_name(h.maxi_teq(), "Maxi-Teq Ltd");
    h.run_once().await;
    assert_eq!(h.b1.partner("V10000").unwrap().card_name, "Maxi-Teq Ltd");
    // B1's feed now lists the partner the connector changed: its echo.
    h.run_once().await;
    h.run_once().await;
    assert_eq!(
        h.coupa_requests("PUT", "/api/suppliers"),
        0,
        "nothing sent back to Coupa"
    );
    assert_eq!(h.coupa_requests("POST", "/api/suppliers"), 0);
    assert_eq!(
        h.b1_requests("PATCH", "BusinessPartners"),
        1,
        "one write, into B1"
    );
}

/// Renames the partner on both sides after a first sync, and runs the pipeline.
async fn change_on_both_sides(h: &Harness) {
    h.run_once().await;
    let now = chrono::Utc::now().naive_utc();
    h.b1.change_partner("V10000", now, |bp| bp.card_name = "Maxi-Teq (B1)".into());
    h.coupa.set_supplier_name(h.maxi_teq(), "Maxi-Teq (Coupa)");
    h.run_once().await;
    h.run_once().await;
}

#[tokio::test]
async fn a_supplier_changed_on_both_sides_keeps_b1s_version_by_default_and_is_audited() {
    let h = Harness::with_sync(BOTH_WAYS).await;
    change_on_both_sides(&h).await;
    assert_eq!(h.b1.partner("V10000").unwrap().card_name, "Maxi-Teq (B1)");
    assert_eq!(
        h.coupa.supplier_json(h.maxi_teq()).unwrap()["name"],
        "Maxi-Teq (B1)"
    );
    assert_eq!(h.b1_requests("PATCH", "BusinessPartners"), 0);
    let conflicts = h.audit(mlc_shared::ports::AuditStatus::Conflict).await;
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    let why = conflicts[0].error.clone().unwrap();
    assert!(
        why.contains("'Maxi-Teq (B1)'")
            && why.contains("'Maxi-Teq (Coupa)'")
            && why.contains("kept SAP B1's"),
        "{why}"
    );
}

#[tokio::test]
async fn a_supplier_changed_on_both_sides_keeps_coupas_version_when_the_rule_says_target() {
    let h = Harness::with_sync(&format!("{BOTH_WAYS}\nsupplier_conflicts = \"target\"")).await;
    change_on_both_sides(&h).await;
    assert_eq!(
        h.b1.partner("V10000").unwrap().card_name,
        "Maxi-Teq (Coupa)"
    );
    assert_eq!(
        h.coupa.supplier_json(h.maxi_teq()).unwrap()["name"],
        "Maxi-Teq (Coupa)"
    );
    assert_eq!(h.coupa_requests("PUT", "/api/suppliers"), 0);
    let conflicts = h.audit(mlc_shared::ports::AuditStatus::Conflict).await;
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert!(
        conflicts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("kept Coupa's")
    );
}

#[tokio::test]
async fn a_coupa_supplier_whose_number_is_a_b1_customer_is_parked_not_made_a_supplier() {
    let h = Harness::with_sync(BOTH_WAYS).await;
    h.b1.add_partner(NewPartner {
        card_type: "cCustomer".into(),
        ..NewPartner::supplier("C50000", "Fabrikam Retail")
    });
    h.coupa
        .add_supplier(NewSupplier::new("Fabrikam Supplies", "C50000"));
    h.run_once().await;
    let bp = h.b1.partner("C50000").unwrap();
    assert_eq!(
        (bp.card_type.as_str(), bp.card_name.as_str()),
        ("cCustomer", "Fabrikam Retail")
    );
    let parked = h.audit(mlc_shared::ports::AuditStatus::Parked).await;
    assert!(
        parked.iter().any(|a| a
            .error
            .as_deref()
            .is_some_and(|e| e.contains("not a supplier"))),
        "{parked:?}"
    );
}

#[tokio::test]
async fn a_b1_partner_renamed_back_to_an_earlier_name_is_renamed_back_in_coupa() {
    let h = Harness::with_sync("suppliers = \"create\"").await;
    h.run_once().await;
    // On later days, so each change has its own B1 stamp (not a repeat the queue drops).
    let rename = |days: i64, name: &'static str| {
        let at = chrono::Utc::now().naive_utc() + chrono::Duration::days(days);
        h.b1.change_partner("V10000", at, |bp| bp.card_name = name.into());
    };
    rename(1, "Maxi-Teq Inc");
    h.run_once().await;
    assert_eq!(
        h.coupa.supplier_json(h.maxi_teq()).unwrap()["name"],
        "Maxi-Teq Inc"
    );
    rename(2, "Maxi-Teq");
    h.run_once().await;
    assert_eq!(
        h.coupa.supplier_json(h.maxi_teq()).unwrap()["name"],
        "Maxi-Teq"
    );
}

/// Requests per supplier change, in each direction, beyond the poll's own listings: printed
/// (`--nocapture`), with exactly one write for the change and none for its echo. (Within one
/// test second the poll lists each version again as a "hot" one, so a few look-ups repeat
/// here that the queue's dedup window absorbs in a real run.)
#[tokio::test]
async fn a_supplier_change_costs_one_write_and_its_echo_none_with_the_requests_printed() {
    let h = Harness::with_sync(BOTH_WAYS).await;
    h.run_once().await;
    h.run_once().await;
    // (B1 reads, B1 writes, Coupa reads, Coupa writes) of suppliers, not the feeds' listings.
    let work = |h: &Harness| {
        let b1: Vec<_> =
            h.b1.requests()
                .into_iter()
                .filter(|r| r.path.contains("BusinessPartners('"))
                .collect();
        let coupa: Vec<_> = h
            .coupa
            .requests()
            .into_iter()
            .filter(|r| r.path.starts_with("/api/suppliers") && !r.query.contains("updated"))
            .collect();
        let reads = |v: &[mlc_sandbox::RequestLog]| v.iter().filter(|r| r.method == "GET").count();
        (
            reads(&b1),
            b1.len() - reads(&b1),
            reads(&coupa),
            coupa.len() - reads(&coupa),
        )
    };
    let mut figures = Vec::new();
    for (what, from_coupa) in [("Coupa → B1", true), ("B1 → Coupa", false)] {
        h.b1.clear_requests();
        h.coupa.clear_requests();
        if from_coupa {
            h.coupa.set_supplier_name(h.maxi_teq(), "Maxi-Teq Ltd");
        } else {
            let at = chrono::Utc::now().naive_utc() + chrono::Duration::days(1);
            h.b1.change_partner("V10000", at, |bp| bp.card_name = "Maxi-Teq Inc".into());
        }
        h.run_once().await;
        let write = work(&h);
        h.b1.clear_requests();
        h.coupa.clear_requests();
        h.run_once().await;
        let echo = work(&h);
        figures.push((what, from_coupa, write, echo));
    }
    eprintln!("supplier requests (B1 reads, B1 writes, Coupa reads, Coupa writes):");
    for (what, _, write, echo) in &figures {
        eprintln!("  {what}: the change's cycle {write:?}, its echo's cycle {echo:?}");
    }
    for (what, from_coupa, (_, b1_writes, _, coupa_writes), (_, eb1, _, ecoupa)) in figures {
        let expected = if from_coupa { (1, 0) } else { (0, 1) };
        assert_eq!((b1_writes, coupa_writes), expected, "{what}");
        assert_eq!((eb1, ecoupa), (0, 0), "{what}: its echo wrote");
    }
}

#[tokio::test]
async fn a_b1_partner_create_whose_answer_is_lost_is_found_again_not_sent_twice() {
    let h = Harness::with_sync(BOTH_WAYS).await;
    h.coupa
        .add_supplier(NewSupplier::new("Contoso Ltd", "V30000"));
    h.b1.fail_next(FaultRule::new(
        "POST",
        "/b1s/v2/BusinessPartners",
        1,
        FaultKind::LoseResponse,
    ));
    h.run_once().await;
    h.run_once().await;
    assert_eq!(h.b1.partner("V30000").unwrap().card_name, "Contoso Ltd");
    assert_eq!(
        h.b1_requests("POST", "BusinessPartners"),
        1,
        "the lost create was found, not repeated"
    );
    let parked = h.pipeline.env.store.parked().await.unwrap();
    assert!(parked.is_empty(), "{parked:?}");
}

#[tokio::test]
async fn a_partner_deleted_in_b1_after_a_sync_is_not_created_again_from_coupa() {
    let h = Harness::with_sync(BOTH_WAYS).await;
    h.b1.add_partner(NewPartner::supplier("V60000", "Old Supplier"));
    h.run_once().await;
    let id = h
        .coupa
        .supplier_id_by_number("V60000")
        .expect("synced to Coupa");
    assert!(h.b1.remove_partner("V60000"));
    h.coupa.set_supplier_name(id, "Old Supplier Ltd");
    h.run_once().await;
    h.run_once().await;
    assert!(h.b1.partner("V60000").is_none(), "not created again");
    assert_eq!(h.b1_requests("POST", "BusinessPartners"), 0);
    let skipped = h.audit(mlc_shared::ports::AuditStatus::Rejected).await;
    assert!(
        skipped.iter().any(|a| a
            .error
            .as_deref()
            .is_some_and(|e| e.contains("no longer in SAP B1"))),
        "{skipped:?}"
    );
}

#[tokio::test]
async fn a_coupa_supplier_without_a_number_is_not_synced_and_the_audit_says_why_once() {
    let h = Harness::with_sync(BOTH_WAYS).await;
    h.coupa.add_supplier(NewSupplier {
        number: None,
        ..NewSupplier::new("One-off Supplier", "")
    });
    h.run_once().await;
    h.run_once().await;
    assert_eq!(h.b1_requests("POST", "BusinessPartners"), 0);
    let skipped: Vec<_> = h
        .audit(mlc_shared::ports::AuditStatus::Rejected)
        .await
        .into_iter()
        .filter(|a| {
            a.error
                .as_deref()
                .is_some_and(|e| e.contains("'One-off Supplier'") && e.contains("no number"))
        })
        .collect();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
}

#[tokio::test]
async fn a_coupa_edit_made_between_the_decision_and_the_write_is_not_overwritten_but_decided_again()
{
    use mlc_shared::ports::{Queue, QueueName};
    let h = Harness::with_sync(BOTH_WAYS).await;
    h.run_once().await;
    let at = chrono::Utc::now().naive_utc() + chrono::Duration::days(1);
    h.b1.change_partner("V10000", at, |bp| bp.card_name = "Maxi-Teq (B1)".into());
    // The map step decides (B1 changed, Coupa did not): write B1's name into Coupa.
    h.pipeline.poll_all().await.unwrap();
    let q = &h.pipeline.env.queue;
    for m in q.receive(QueueName::Ingest, 50).await.unwrap() {
        h.pipeline.handle_ingest(&m.body).await.unwrap();
        q.ack(QueueName::Ingest, &m.receipt).await.unwrap();
    }
    // A person edits the Coupa supplier before the post step runs.
    h.coupa.set_supplier_name(h.maxi_teq(), "Maxi-Teq (person)");
    h.pipeline.drain(4, Arc::new(|_| {})).await.unwrap();
    assert_eq!(
        h.coupa.supplier_json(h.maxi_teq()).unwrap()["name"],
        "Maxi-Teq (person)",
        "not overwritten unseen"
    );
    let parked = h.pipeline.env.store.parked().await.unwrap();
    assert!(
        parked
            .iter()
            .any(|p| p.reason.contains("changed after this write was decided")),
        "{parked:?}"
    );
    // Next cycle: both changed since the last sync, a conflict, decided by the rule, audited.
    h.run_once().await;
    assert_eq!(
        h.coupa.supplier_json(h.maxi_teq()).unwrap()["name"],
        "Maxi-Teq (B1)"
    );
    let conflicts = h.audit(mlc_shared::ports::AuditStatus::Conflict).await;
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert!(
        conflicts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("'Maxi-Teq (person)'")
    );
    assert!(h.pipeline.env.store.parked().await.unwrap().is_empty());
}

#[tokio::test]
async fn with_the_card_code_in_a_coupa_custom_field_suppliers_are_matched_and_created_by_it() {
    let h = Harness::with_coupa(
        &format!("{BOTH_WAYS}\nsupplier_code_field = \"b1-card-code\""),
        CoupaConfig {
            supplier_custom_fields: vec!["b1-card-code".into()],
            ..CoupaConfig::default()
        },
    )
    .await;
    // A Coupa supplier whose own number is Coupa's, its CardCode in the custom field.
    let contoso = h
        .coupa
        .add_supplier(NewSupplier::new("Contoso Ltd", "COUPA-77"));
    h.coupa
        .set_supplier_custom_field(contoso, "b1-card-code", "V30000");
    h.b1.add_partner(NewPartner::supplier("V20000", "Northwind GmbH"));
    h.run_once().await;
    h.run_once().await;
    assert_eq!(
        h.b1.partner("V30000").expect("created in B1").card_name,
        "Contoso Ltd"
    );
    assert!(h.b1.partner("COUPA-77").is_none());
    let northwind = h
        .coupa
        .suppliers_json()
        .into_iter()
        .find(|s| s["name"] == "Northwind GmbH")
        .expect("created in Coupa");
    assert_eq!(northwind["custom-fields"]["b1-card-code"], "V20000");
    assert!(
        northwind.get("number").is_none(),
        "Coupa's own number left alone: {northwind}"
    );
    assert_eq!(
        h.coupa_requests("POST", "/api/suppliers"),
        1,
        "Maxi-Teq matched by the field"
    );
}
