//! Integration 4 end to end: the B1 simulator and the Coupa simulator over real HTTP, a real
//! SQLite file, a real encrypted secrets file, and the pipeline `mlc run` uses.

use std::sync::Arc;

use mlc_cli::embedded::{self, EmbeddedPipeline};
use mlc_sandbox::b1::{B1Config, B1Sim, DocKind, DocLine, NewDocument, NewPartner};
use mlc_sandbox::coupa::{CoupaConfig, CoupaSim, NewSupplier};
use mlc_sandbox::{FaultKind, FaultRule};
use mlc_shared::adapters::embedded::{SecretFile, SecretKey};
use mlc_shared::config::Config;
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
        let b1 = B1Sim::start(B1Config::default()).await.unwrap();
        b1.add_partner(NewPartner::supplier("V10000", "Maxi-Teq"));
        let coupa = CoupaSim::start(CoupaConfig {
            rate_per_sec: None,
            ..CoupaConfig::default()
        })
        .await
        .unwrap();
        coupa.add_supplier(NewSupplier::new("Maxi-Teq", "V10000"));
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
