//! Integration 2 end to end: Coupa simulator → the real embedded pipeline (SQLite, encrypted
//! secrets file, the same wiring `mlc` uses) → F&O simulator, over real HTTP.

use std::sync::Arc;

use mlc_cli::embedded::{self, EmbeddedPipeline};
use mlc_sandbox::coupa::{
    CoupaConfig, CoupaSim, NewInvoice, NewInvoiceLine, NewOrderLine, NewPurchaseOrder, NewSupplier,
};
use mlc_sandbox::fo::{FoConfig, FoInvoiceView, FoSim, seed};
use mlc_sandbox::{FaultKind, FaultRule};
use mlc_shared::adapters::embedded::{SecretFile, SecretKey};
use mlc_shared::config::Config;
use mlc_shared::ports::{ParkedDoc, Parking};
use mlc_shared::runtime::DrainStats;

struct Harness {
    coupa: CoupaSim,
    fo: FoSim,
    _dir: tempfile::TempDir,
    secrets: SecretFile,
    pipeline: Arc<EmbeddedPipeline>,
}

/// Coupa suppliers and the F&O vendor accounts they map to. US-101 exists in both legal
/// entities; DE-001 in demf only.
const SUPPLIERS: [(&str, &str, &str); 2] = [
    ("Fabrikam, Inc.", "SUP-001", "US-101"),
    ("Contoso GmbH", "SUP-002", "DE-001"),
];

impl Harness {
    async fn new() -> Self {
        Self::with_sync("").await
    }

    /// `sync` lines go into the integration's `[integrations.sync]`.
    async fn with_sync(sync: &str) -> Self {
        let coupa = CoupaSim::start(CoupaConfig {
            rate_per_sec: None,
            ..CoupaConfig::default()
        })
        .await
        .unwrap();
        let fo = FoSim::start(FoConfig {
            rate_limit: None,
            ..FoConfig::default()
        })
        .await
        .unwrap();
        seed::seed(&fo);
        let mut suppliers = String::new();
        for (name, number, vendor) in SUPPLIERS {
            coupa.add_supplier(NewSupplier::new(name, number));
            suppliers.push_str(&format!("\"{number}\" = \"{vendor}\"\n"));
        }
        let fo_cfg = fo.config();
        let text = format!(
            r#"[runtime]
database = "mlc.sqlite"
secrets_file = "mlc.secrets"
workers = 4
max_receives = 5
visibility_timeout_secs = 120
retry_base_delay_ms = 20

[systems.coupa]
base_url = "{coupa_url}"
client_id = "{coupa_client}"
client_secret = "coupa-client-secret"
api_version = "R40"
webhook_secret = "coupa-webhook-secret"
requests_per_second = 1000

[systems.fo]
type = "finance_operations"
environment_url = "https://{host}"
api_url = "{fo_url}"
token_url = "{token_url}"
tenant = "{tenant}"
client_id = "{fo_client}"
client_secret = "fo-client-secret"
default_legal_entity = "usmf"
rate = {{ requests = 1000000, window_secs = 1, concurrent = 5 }}
ledger_dimension_format = {format:?}

[[integrations]]
name = "coupa-fo"
source = "coupa"
target = "fo"
start_from = "2000-01-01T00:00:00Z"

[integrations.sync]
{sync}

[integrations.mapping]
gl_account = {{ segment = 2 }}
dimensions = [{{ segment = 3, dimension = "BusinessUnit" }}, {{ segment = 4, dimension = "CostCenter" }}]
legal_entity_segment = 1

[integrations.mapping.legal_entities]
US = "usmf"
DE = "demf"

[integrations.mapping.suppliers]
{suppliers}"#,
            coupa_url = coupa.base_url(),
            coupa_client = coupa.config().client_id,
            host = fo_cfg.environment_host,
            fo_url = fo.base_url(),
            token_url = fo.token_url(),
            tenant = fo_cfg.tenant,
            fo_client = fo_cfg.client_id,
            format = seed::LEDGER_FORMAT,
            sync = sync,
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mlc.toml");
        std::fs::write(&path, text).unwrap();
        let cfg = Config::load(&path).unwrap();
        let secrets = SecretFile::open(&cfg.runtime.secrets_file, SecretKey::generate()).unwrap();
        secrets
            .set("coupa-client-secret", &coupa.config().client_secret)
            .unwrap();
        secrets
            .set("coupa-webhook-secret", &coupa.config().webhook_secret)
            .unwrap();
        secrets
            .set("fo-client-secret", &fo.config().client_secret)
            .unwrap();
        let pipeline = embedded::pipeline(&cfg, &secrets).await.unwrap();
        Self {
            coupa,
            fo,
            _dir: dir,
            secrets,
            pipeline,
        }
    }

    /// An approved invoice; each line is (price, [entity, main account, business unit, cost
    /// center]) with quantity 1.
    fn invoice(&self, supplier: &str, number: &str, lines: &[(&str, [&str; 4])]) -> i64 {
        let id = self.coupa.supplier_id_by_number(supplier).unwrap();
        let mut inv = NewInvoice::approved(id, number);
        for (i, (price, seg)) in lines.iter().enumerate() {
            inv = inv.line(NewInvoiceLine::qty(
                &format!("line {}", i + 1),
                "1",
                price,
                seg,
            ));
        }
        self.coupa.add_invoice(inv)
    }

    async fn run_once(&self) -> DrainStats {
        self.pipeline.poll_all().await.unwrap();
        self.pipeline.drain(4, Arc::new(|_| {})).await.unwrap()
    }

    async fn parked(&self) -> Vec<ParkedDoc> {
        self.pipeline.env.store.parked().await.unwrap()
    }

    fn pending(&self, number: &str) -> Vec<FoInvoiceView> {
        self.fo
            .pending_invoices()
            .into_iter()
            .filter(|i| i.invoice_number == number)
            .collect()
    }

    /// Requests that reached F&O's OData root.
    fn fo_api_requests(&self) -> Vec<(String, String)> {
        self.fo
            .requests()
            .into_iter()
            .filter(|r| r.path.starts_with("/data/"))
            .map(|r| (r.method, r.path))
            .collect()
    }

    /// How many `method path` requests F&O answered with `status`.
    fn answered(&self, method: &str, path: &str, status: u16) -> usize {
        self.fo
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path == path && r.status == status)
            .count()
    }
}

fn rule(method: &str, path: &str, count: u32, kind: FaultKind) -> FaultRule {
    FaultRule::new(method, path, count, kind)
}

#[tokio::test]
async fn two_legal_entities_take_the_same_vendor_invoice_number_once_each() {
    let h = Harness::new().await;
    h.invoice(
        "SUP-001",
        "INV-100",
        &[
            ("10.50", ["US", "600100", "001", "OU_1"]),
            ("4.25", ["US", "600200", "002", ""]),
        ],
    );
    h.invoice(
        "SUP-001",
        "INV-100",
        &[("99.00", ["DE", "600100", "001", "OU_1"])],
    );
    let stats = h.run_once().await;
    assert_eq!(stats.posted, 2, "{stats:?}");
    let mut got = h.pending("INV-100");
    got.sort_by(|a, b| a.company.cmp(&b.company));
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].company, "demf");
    assert_eq!(got[0].lines.len(), 1);
    assert_eq!(got[0].lines[0].net_amount.to_string(), "99");
    assert_eq!(got[1].company, "usmf");
    let lines: Vec<(&str, String)> = got[1]
        .lines
        .iter()
        .map(|l| (l.main_account_display.as_str(), l.net_amount.to_string()))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("600100-001-OU_1-", "10.5".to_string()),
            ("600200-002--", "4.25".to_string())
        ]
    );
    // Header references come from the Coupa ids, so the two never collide.
    assert_ne!(got[0].header_reference, got[1].header_reference);
    // A second cycle writes nothing more.
    h.run_once().await;
    assert_eq!(h.pending("INV-100").len(), 2);
    assert_eq!(
        h.fo.pending_invoices()
            .iter()
            .map(|i| i.lines.len())
            .sum::<usize>(),
        3
    );
}

#[tokio::test]
async fn a_header_create_whose_answer_is_lost_is_found_again_and_written_once() {
    let h = Harness::new().await;
    h.fo.fail_next(rule(
        "POST",
        "/data/VendorInvoiceHeaders",
        1,
        FaultKind::LoseResponse,
    ));
    h.invoice(
        "SUP-001",
        "INV-LOST",
        &[
            ("1.00", ["US", "600100", "", ""]),
            ("2.00", ["US", "600200", "", ""]),
        ],
    );
    let stats = h.run_once().await;
    assert_eq!(stats.posted, 1, "{stats:?}");
    let got = h.pending("INV-LOST");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].lines.len(), 2);
    let header_posts = h
        .fo_api_requests()
        .iter()
        .filter(|(m, p)| m == "POST" && p == "/data/VendorInvoiceHeaders")
        .count();
    assert_eq!(header_posts, 1, "the header was created once, never again");
    assert_eq!(
        h.answered("POST", "/data/VendorInvoiceHeaders", 500),
        1,
        "its answer was lost"
    );
}

#[tokio::test]
async fn a_line_create_whose_answer_is_lost_leaves_no_duplicate_line() {
    let h = Harness::new().await;
    h.fo.fail_next(rule(
        "POST",
        "/data/VendorInvoiceLines",
        1,
        FaultKind::LoseResponse,
    ));
    h.invoice(
        "SUP-001",
        "INV-LINE",
        &[
            ("1.00", ["US", "600100", "", ""]),
            ("2.00", ["US", "600200", "", ""]),
        ],
    );
    h.run_once().await;
    h.run_once().await;
    let got = h.pending("INV-LINE");
    assert_eq!(got.len(), 1);
    let numbers: Vec<i64> = got[0].lines.iter().map(|l| l.number).collect();
    assert_eq!(numbers, vec![1, 2]);
    assert_eq!(
        h.answered("POST", "/data/VendorInvoiceLines", 500),
        1,
        "an answer was lost"
    );
    assert!(h.parked().await.is_empty());
}

#[tokio::test]
async fn a_refused_dimension_combination_parks_keeps_the_header_and_completes_after_the_fix() {
    let h = Harness::new().await;
    let combo = [("MainAccount", "600200"), ("CostCenter", "OU_2")];
    h.fo.refuse_combination(&combo);
    h.invoice(
        "SUP-001",
        "INV-DIM",
        &[
            ("5.00", ["US", "600100", "001", "OU_1"]),
            ("7.00", ["US", "600200", "001", "OU_2"]),
        ],
    );
    let stats = h.run_once().await;
    assert_eq!(stats.posted, 0, "{stats:?}");
    let parked = h.parked().await;
    assert_eq!(parked.len(), 1, "{parked:?}");
    let reason = &parked[0].reason;
    assert!(
        reason.contains("line 2") && reason.contains("CostCenter 'OU_2'"),
        "{reason}"
    );
    let half = h.pending("INV-DIM");
    assert_eq!(half.len(), 1, "the header is kept");
    assert_eq!(half[0].lines.len(), 1);

    // A person fixes the account structure; the next cycle retries the parked invoice.
    h.fo.allow_combination(&combo);
    let stats = h.run_once().await;
    assert_eq!(stats.posted, 1, "{stats:?}");
    assert!(h.parked().await.is_empty());
    let done = h.pending("INV-DIM");
    assert_eq!(done.len(), 1);
    let lines: Vec<(i64, String)> = done[0]
        .lines
        .iter()
        .map(|l| (l.number, l.net_amount.to_string()))
        .collect();
    assert_eq!(lines, vec![(1, "5".to_string()), (2, "7".to_string())]);
}

#[tokio::test]
async fn a_vendor_missing_from_the_legal_entity_is_parked_with_f_and_o_words() {
    let h = Harness::new().await;
    // SUP-002 maps to DE-001, which exists in demf only.
    h.invoice("SUP-002", "INV-DE", &[("1.00", ["US", "600100", "", ""])]);
    h.run_once().await;
    let parked = h.parked().await;
    assert_eq!(parked.len(), 1);
    assert!(
        parked[0]
            .reason
            .contains("The value 'DE-001' in field 'Vendor account' is not found"),
        "{}",
        parked[0].reason
    );
    assert!(h.pending("INV-DE").is_empty());
}

#[tokio::test]
async fn a_posted_invoice_that_left_the_pending_entities_is_not_written_again() {
    let h = Harness::new().await;
    let id = h.invoice(
        "SUP-001",
        "INV-POSTED",
        &[("3.00", ["US", "600100", "", ""])],
    );
    h.run_once().await;
    let reference = h.pending("INV-POSTED")[0].header_reference.clone();
    h.fo.post_invoice("usmf", &reference).unwrap();
    // A new version in Coupa: a fresh dedup id, so only the ledger and the writer's look-up
    // stand between it and a second invoice.
    h.coupa.touch_invoice(id);
    h.run_once().await;
    assert!(h.pending("INV-POSTED").is_empty());
    let posted = h.fo.posted_invoices();
    assert_eq!(posted.len(), 1);
    assert!(h.parked().await.is_empty(), "{:?}", h.parked().await);
}

#[tokio::test]
async fn an_invoice_with_n_lines_costs_n_plus_three_f_and_o_requests() {
    let h = Harness::new().await;
    h.invoice(
        "SUP-001",
        "INV-COUNT",
        &[
            ("1.00", ["US", "600100", "", ""]),
            ("2.00", ["US", "600100", "", ""]),
            ("3.00", ["US", "600100", "", ""]),
        ],
    );
    h.run_once().await;
    let requests = h.fo_api_requests();
    // find: pending by reference or natural key (1 GET), posted journal (1 GET); the header
    // (1 POST); one POST per line. The token request is outside /data/.
    let gets = requests.iter().filter(|(m, _)| m == "GET").count();
    let posts = requests.iter().filter(|(m, _)| m == "POST").count();
    assert_eq!((gets, posts), (2, 4), "{requests:?}");
}

fn coupa_payments(h: &Harness, id: i64) -> Vec<serde_json::Value> {
    h.coupa.invoice_json(id).unwrap()["payments"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_paid_invoice_is_recorded_once_on_its_coupa_invoice_though_seen_in_three_polls() {
    let h = Harness::with_sync("payments = true").await;
    // In demf, which is not the integration user's default company.
    let id = h.invoice("SUP-001", "INV-PAY", &[("12.34", ["DE", "600100", "", ""])]);
    h.run_once().await;
    let reference = h.pending("INV-PAY")[0].header_reference.clone();
    let voucher = h.fo.post_invoice("demf", &reference).unwrap();
    h.run_once().await;
    assert!(coupa_payments(&h, id).is_empty(), "posted is not paid");
    h.fo.pay_invoice("demf", "US-101", "INV-PAY", None).unwrap();
    for _ in 0..3 {
        h.run_once().await;
    }
    let payments = coupa_payments(&h, id);
    assert_eq!(payments.len(), 1, "{payments:?}");
    assert_eq!(payments[0]["amount-paid"], "12.34");
    assert_eq!(
        payments[0]["notes"],
        mlc_shared::flows::coupa_fo::payment_reference("demf", &voucher)
    );
    assert_eq!(h.coupa.invoice_json(id).unwrap()["paid"], true);
}

#[tokio::test]
async fn a_partly_paid_invoice_is_not_reported_until_it_is_paid_in_full() {
    let h = Harness::with_sync("payments = true").await;
    let id = h.invoice(
        "SUP-001",
        "INV-PART",
        &[("100.00", ["US", "600100", "", ""])],
    );
    h.run_once().await;
    let reference = h.pending("INV-PART")[0].header_reference.clone();
    h.fo.post_invoice("usmf", &reference).unwrap();
    h.fo.pay_invoice(
        "usmf",
        "US-101",
        "INV-PART",
        Some(rust_decimal::Decimal::new(40, 0)),
    )
    .unwrap();
    h.run_once().await;
    assert!(coupa_payments(&h, id).is_empty());
    h.fo.pay_invoice("usmf", "US-101", "INV-PART", None)
        .unwrap();
    h.run_once().await;
    assert_eq!(coupa_payments(&h, id).len(), 1);
}

#[tokio::test]
async fn a_credit_note_becomes_a_vendor_invoice_with_negative_lines() {
    let h = Harness::new().await;
    let sup = h.coupa.supplier_id_by_number("SUP-001").unwrap();
    let cn = NewInvoice {
        document_type: "Credit Note".into(),
        ..NewInvoice::approved(sup, "CN-1")
    };
    h.coupa.add_invoice(cn.line(NewInvoiceLine::qty(
        "refund",
        "1",
        "50.00",
        &["US", "600100", "001", ""],
    )));
    h.run_once().await;
    assert!(h.parked().await.is_empty(), "{:?}", h.parked().await);
    let got = h.pending("CN-1");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].lines[0].net_amount.to_string(), "-50");
}

#[tokio::test]
async fn a_429_storm_on_line_writes_is_waited_out_and_each_line_written_once() {
    let h = Harness::new().await;
    h.fo.fail_next(rule(
        "POST",
        "/data/VendorInvoiceLines",
        3,
        FaultKind::TooManyRequests {
            retry_after: Some(1),
        },
    ));
    h.invoice(
        "SUP-001",
        "INV-429",
        &[
            ("1.00", ["US", "600100", "", ""]),
            ("2.00", ["US", "600200", "", ""]),
        ],
    );
    let stats = h.run_once().await;
    assert_eq!(stats.posted, 1, "{stats:?}");
    let numbers: Vec<i64> = h.pending("INV-429")[0]
        .lines
        .iter()
        .map(|l| l.number)
        .collect();
    assert_eq!(numbers, vec![1, 2]);
    assert_eq!(h.fo.throttled_count(), 3);
    let log = h.fo.requests();
    let early =
        mlc_sandbox::sent_inside_announced_waits(&log, std::time::Duration::from_millis(50));
    assert!(early.is_empty(), "{early:?}");
}

#[tokio::test]
async fn a_token_refused_mid_invoice_is_refreshed_once_and_the_line_written_once() {
    let h = Harness::new().await;
    h.fo.fail_next(rule(
        "POST",
        "/data/VendorInvoiceLines",
        1,
        FaultKind::Status(401),
    ));
    h.invoice("SUP-001", "INV-401", &[("1.00", ["US", "600100", "", ""])]);
    let stats = h.run_once().await;
    assert_eq!(stats.posted, 1, "{stats:?}");
    assert_eq!(h.pending("INV-401")[0].lines.len(), 1);
    assert_eq!(h.fo.tokens_issued(), 2);
}

/// F&O vendors with this account: (legal entity, name).
fn vendors(h: &Harness, account: &str) -> Vec<(String, String)> {
    h.fo.rows("VendorsV2")
        .into_iter()
        .filter(|v| v["VendorAccountNumber"] == account)
        .map(|v| {
            (
                v["dataAreaId"].as_str().unwrap().to_owned(),
                v["VendorOrganizationName"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_new_supplier_becomes_a_vendor_in_every_legal_entity_once_and_its_invoices_follow() {
    let h = Harness::with_sync("suppliers = \"create\"").await;
    let sup = h
        .coupa
        .add_supplier(NewSupplier::new("Northwind Traders", "SUP-777"));
    h.invoice("SUP-777", "INV-NW", &[("8.00", ["DE", "600100", "", ""])]);
    h.run_once().await;
    h.run_once().await;
    assert_eq!(
        vendors(&h, "SUP-777"),
        vec![
            ("demf".to_string(), "Northwind Traders".to_string()),
            ("usmf".to_string(), "Northwind Traders".to_string())
        ]
    );
    // Its invoice, parked while no vendor was mapped, went in on the retry.
    assert_eq!(h.pending("INV-NW").len(), 1);
    assert!(h.parked().await.is_empty(), "{:?}", h.parked().await);
    // Create mode writes every mapped supplier into every legal entity: SUP-002's DE-001 is
    // created in usmf too (it was in demf only).
    assert_eq!(vendors(&h, "DE-001").len(), 2);
    let vendor_posts = |h: &Harness| {
        h.fo_api_requests()
            .iter()
            .filter(|(m, p)| m == "POST" && p == "/data/VendorsV2")
            .count()
    };
    assert_eq!(vendor_posts(&h), 3);
    // Seen again (a new version in Coupa): nothing is created twice.
    h.coupa.touch_supplier(sup);
    h.run_once().await;
    assert_eq!(vendors(&h, "SUP-777").len(), 2);
    assert_eq!(vendor_posts(&h), 3);
}

#[tokio::test]
async fn in_match_mode_a_supplier_is_mapped_to_an_existing_vendor_and_none_is_created() {
    let h = Harness::with_sync("suppliers = \"match\"").await;
    h.fo.add_vendor("usmf", "SUP-555", "Litware (F&O)", "USD");
    h.coupa.add_supplier(NewSupplier::new("Litware", "SUP-555"));
    h.coupa
        .add_supplier(NewSupplier::new("Unknown Co", "SUP-556"));
    h.run_once().await;
    assert_eq!(
        vendors(&h, "SUP-555"),
        vec![("usmf".to_string(), "Litware (F&O)".to_string())]
    );
    assert!(vendors(&h, "SUP-556").is_empty());
    let parked = h.parked().await;
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert!(
        parked[0].reason.contains("unmatched"),
        "{}",
        parked[0].reason
    );
    h.invoice("SUP-555", "INV-LW", &[("3.00", ["US", "600100", "", ""])]);
    h.run_once().await;
    assert_eq!(h.pending("INV-LW").len(), 1);
}

#[tokio::test]
async fn a_purchase_order_is_created_once_and_a_changed_line_is_updated_with_its_entity_tag() {
    let h = Harness::with_sync("purchase_orders = true").await;
    let sup = h.coupa.supplier_id_by_number("SUP-001").unwrap();
    let po = NewPurchaseOrder::issued(sup, "PO-77")
        .line(NewOrderLine::qty(
            "desk",
            "2",
            "150.00",
            &["DE", "600100", "001", ""],
        ))
        .line(NewOrderLine::qty(
            "chair",
            "4",
            "50.00",
            &["DE", "600200", "", ""],
        ));
    let id = h.coupa.add_purchase_order(po);
    h.run_once().await;
    let orders = h.fo.rows("PurchaseOrderHeadersV2");
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(orders[0]["dataAreaId"], "demf");
    assert_eq!(orders[0]["VendorOrderReference"], "PO-77");
    assert_eq!(orders[0]["OrderVendorAccountNumber"], "US-101");
    let quantities = |h: &Harness| -> Vec<String> {
        h.fo.rows("PurchaseOrderLinesV2")
            .iter()
            .map(|l| l["OrderedPurchaseQuantity"].to_string())
            .collect()
    };
    assert_eq!(quantities(&h), vec!["2", "4"]);

    h.coupa.set_purchase_order_line_quantity(id, 2, "5");
    h.run_once().await;
    h.run_once().await;
    assert_eq!(h.fo.rows("PurchaseOrderHeadersV2").len(), 1);
    assert_eq!(quantities(&h), vec!["2", "5"]);
    let patches: Vec<Option<String>> =
        h.fo.requests()
            .into_iter()
            .filter(|r| r.method == "PATCH" && r.path.starts_with("/data/PurchaseOrderLinesV2"))
            .map(|r| r.if_match)
            .collect();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert!(
        patches[0].as_deref().is_some_and(|t| t.starts_with("W/\"")),
        "{patches:?}"
    );
    assert_eq!(
        h.answered("POST", "/data/PurchaseOrderHeadersV2", 201),
        1,
        "no second order"
    );
}

#[tokio::test]
async fn a_signed_coupa_call_out_writes_the_invoice_and_an_unsigned_one_is_refused() {
    use mlc_cli::webhook_server::{Limits, Listener};
    let h = Harness::new().await;
    let app = Listener::new(
        h.pipeline.clone(),
        Arc::new(h.secrets.clone()),
        Limits::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/webhooks/coupa/coupa-fo",
        listener.local_addr().unwrap()
    );
    tokio::spawn(app.serve(listener));
    let id = h.invoice("SUP-001", "INV-HOOK", &[("5.00", ["DE", "600100", "", ""])]);
    let forged = reqwest::Client::new()
        .post(&url)
        .header("X-Coupa-Signature", "sha256=00")
        .body(format!("{{\"id\":{id}}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(h.coupa.send_invoice_webhook(&url, id).await.unwrap(), 202);
    // Only the queue is drained: the call-out, not a poll, brought it.
    h.pipeline.drain(4, Arc::new(|_| {})).await.unwrap();
    let got = h.pending("INV-HOOK");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].company, "demf");
}
