//! Integration 3 end to end: the SAP Concur and BC simulators over real HTTP, a real SQLite
//! file, a real encrypted secrets file, and the pipeline `mlc` runs (`embedded::pipeline`).

use std::sync::Arc;

use mlc_cli::embedded::{self, EmbeddedPipeline};
use mlc_cli::webhook_server::{Limits, Listener};
use mlc_sandbox::bc::{BcConfig, BcSim};
use mlc_sandbox::concur::{
    ConcurConfig, ConcurSim, NewAllocation, NewEntry, NewExpense, NewInvoice, NewJournal,
};
use mlc_sandbox::{FaultKind, FaultRule};
use mlc_shared::adapters::embedded::{SecretFile, SecretKey};
use mlc_shared::config::Config;
use mlc_shared::ports::{Audit, AuditFilter, AuditStatus, Parking, Queue, QueueName, Secrets};
use mlc_shared::steps::post::PostOutcome;
use rust_decimal::Decimal;

struct Harness {
    concur: ConcurSim,
    bc: BcSim,
    dir: tempfile::TempDir,
    cfg: Config,
    secrets: SecretFile,
    pipeline: Arc<EmbeddedPipeline>,
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

const REFRESH_SECRET: &str = "concur-refresh-token";

impl Harness {
    async fn new() -> Self {
        Self::with("").await
    }

    /// `concur_extra`: lines under `[systems.concur]`.
    async fn with(concur_extra: &str) -> Self {
        Self::build(concur_extra, "").await
    }

    /// `sync`: lines of the integration's `[integrations.sync]`.
    async fn build(concur_extra: &str, sync: &str) -> Self {
        Self::build_with(ConcurConfig::default(), concur_extra, sync).await
    }

    async fn build_with(sim: ConcurConfig, concur_extra: &str, sync: &str) -> Self {
        let concur = ConcurSim::start(sim).await.unwrap();
        let bc = BcSim::start(BcConfig {
            rate_limit: None,
            ..BcConfig::default()
        })
        .await
        .unwrap();
        bc.add_vendor("V10000", "Fabrikam, Inc.");
        bc.add_vendor("E1001", "Charles Doe");
        bc.add_vendor("V-CARD", "Corporate Card Bank");
        bc.add_account("6100", "Travel");
        bc.add_account("6200", "Materials");
        bc.add_account("2910", "Card clearing");
        bc.add_dimension("DEPARTMENT", &["ADM", "SALES"]);
        let bcc = bc.config();
        let text = format!(
            r#"[runtime]
database = "mlc.sqlite"
secrets_file = "mlc.secrets"
workers = 4
max_receives = 5
visibility_timeout_secs = 120
retry_base_delay_ms = 20

[systems.concur]
type = "concur"
base_url = "{app}"
client_id = "{client}"
client_secret = "concur-client-secret"
refresh_token_secret = "{REFRESH_SECRET}"
page_size = 2
requests_per_second = 1000
card_vendors = {{ CBCP = "V-CARD" }}
webhook_public_key = "concur-public-key"
{concur_extra}

[systems.business_central]
type = "business_central"
api_url = "{bc_url}"
token_url = "{bc_url}/{tenant}/oauth2/v2.0/token"
tenant = "{tenant}"
environment = "{env}"
company_id = "{company}"
client_id = "{bc_client}"
client_secret = "bc-client-secret"
rate = {{ requests = 1000000, window_secs = 1, concurrent = 5 }}

[[integrations]]
name = "concur-bc"
kind = "concur_to_business_central"

[integrations.sync]
{sync}

[integrations.mapping]
gl_account = {{ segment = 1, translate = true }}
dimensions = [{{ segment = 2, dimension = "DEPARTMENT" }}]

[integrations.mapping.gl_accounts]
"MATER" = "6200"
"TRAVEL" = "6100"
"cbcp180" = "2910"
"#,
            app = concur.app_url(),
            client = concur.config().client_id,
            bc_url = bc.base_url(),
            tenant = bcc.tenant,
            env = bcc.environment,
            company = bc.company_id(),
            bc_client = bcc.client_id,
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mlc.toml");
        std::fs::write(&path, text).unwrap();
        let cfg = Config::load(&path).unwrap();
        let secrets = SecretFile::open(&cfg.runtime.secrets_file, SecretKey::generate()).unwrap();
        secrets
            .set("concur-client-secret", &concur.config().client_secret)
            .unwrap();
        secrets
            .set("bc-client-secret", &bc.config().client_secret)
            .unwrap();
        secrets
            .set("concur-public-key", &concur.event_public_key_pem())
            .unwrap();
        // What the one-time company request-token exchange leaves: a bare refresh token.
        secrets
            .set(REFRESH_SECRET, &concur.issue_refresh_token())
            .unwrap();
        let pipeline = embedded::pipeline(&cfg, &secrets).await.unwrap();
        Self {
            concur,
            bc,
            dir,
            cfg,
            secrets,
            pipeline,
        }
    }

    /// A second process on the same database and secrets file.
    async fn another_process(&self) -> Arc<EmbeddedPipeline> {
        embedded::pipeline(&self.cfg, &self.secrets).await.unwrap()
    }

    async fn run_once(&self) {
        run(&self.pipeline).await;
    }

    /// `mlc run`'s webhook listener; returns the Concur channel's URL.
    async fn listener(&self) -> String {
        let secrets = Arc::new(self.secrets.clone());
        let app = Listener::new(self.pipeline.clone(), secrets, Limits::default());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(app.serve(l));
        format!("http://{addr}/webhooks/concur-bc/concur")
    }

    async fn ingest_depth(&self) -> u64 {
        self.pipeline
            .env
            .queue
            .depth(QueueName::Ingest)
            .await
            .unwrap()
    }

    /// This integration's audit events of one status.
    async fn audit(&self, status: AuditStatus) -> Vec<mlc_shared::ports::AuditItem> {
        self.pipeline
            .env
            .store
            .query_audit(&AuditFilter {
                integration: Some("concur-bc".into()),
                status: Some(status),
                ..AuditFilter::default()
            })
            .await
            .unwrap()
    }

    fn bc_invoice(&self, number: &str) -> mlc_sandbox::bc::BcInvoiceView {
        self.bc
            .purchase_invoices()
            .into_iter()
            .find(|i| i.vendor_invoice_number.eq_ignore_ascii_case(number))
            .unwrap_or_else(|| panic!("{number} not in BC"))
    }
}

async fn run(p: &Arc<EmbeddedPipeline>) {
    p.poll_all().await.unwrap();
    p.drain(4, Arc::new(|_| {})).await.unwrap();
}

fn invoice(number: &str) -> NewInvoice {
    NewInvoice::new(number, "V10000")
        .line("Merchandise", "50.00", "MATER", Some("ADM"))
        .line("Shipping", "12.50", "MATER", None)
}

#[tokio::test]
async fn an_invoice_payment_request_is_acknowledged_posted_at_the_geolocation_and_confirmed() {
    let h = Harness::new().await;
    let id = h.concur.add_invoice(invoice("INV-1"));
    h.run_once().await;
    let inv = h.bc_invoice("INV-1");
    assert_eq!((inv.status.as_str(), inv.post_count), ("Open", 1));
    assert_eq!(inv.vendor_number, "V10000");
    assert_eq!(inv.lines.len(), 2);
    assert_eq!(inv.lines[0].line_object_number, "6200");
    assert_eq!(inv.lines[0].unit_cost, dec("50"));
    assert_eq!(
        inv.lines[0].dimensions,
        vec![("DEPARTMENT".to_string(), "ADM".to_string())]
    );
    let doc = h.concur.document(&id).unwrap();
    assert_eq!(doc.status, "POSTING_CONFIRMED_SUCCESS");
    assert_eq!(doc.acknowledges, 1);
    assert_eq!(doc.posting_confirmations.len(), 1);
    let c = &doc.posting_confirmations[0];
    assert_eq!(c["overallPostingStatusCode"], "success");
    assert_eq!(c["postingDocs"][0]["documentNumber"], inv.number.as_str());
    assert_eq!(
        c["postingDocs"][0]["companyId"],
        h.bc.company_id().to_string().as_str()
    );
    // Every API call went to the geolocation the token response named, none to the app's URL.
    let api: Vec<_> = h
        .concur
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/financialintegration/"))
        .collect();
    assert!(!api.is_empty());
    assert!(api.iter().all(|r| r.path.starts_with("/us2/")), "{api:?}");
    // Nothing waits any more.
    h.run_once().await;
    assert_eq!(h.bc.purchase_invoices().len(), 1);
    assert_eq!(
        h.concur.document(&id).unwrap().posting_confirmations.len(),
        1
    );
}

#[tokio::test]
async fn an_expense_report_with_a_personal_line_and_a_split_allocation_bills_the_employee_only_what_is_owed()
 {
    let h = Harness::new().await;
    let report = NewExpense::new("RPT-100", "E1001")
        // A hotel night split 60/40 over two departments, paid by the employee.
        .entry(
            NewEntry::new("LODNG", "Hotel", "CASH", "200.00")
                .allocation(
                    NewAllocation::new("60")
                        .custom(1, "ADM")
                        .journal(NewJournal::new("COMP", "EMPL", "TRAVEL", "120.00")),
                )
                .allocation(
                    NewAllocation::new("40")
                        .custom(1, "SALES")
                        .journal(NewJournal::new("COMP", "EMPL", "TRAVEL", "80.00")),
                ),
        )
        // A personal taxi on the company card (CBCP, §2.7.1 example 6.2.1): the company pays
        // the issuer, the employee owes it back.
        .entry(
            NewEntry::new("TAXI", "Taxi", "CBCP", "49.00")
                .personal()
                .allocation(
                    NewAllocation::new("100")
                        .journal(NewJournal::new("COMP", "CBCP", "cbcp180", "49"))
                        .journal(NewJournal::new("EMPL", "COMP", "cbcp180", "-49")),
                ),
        )
        // Company paid: owed to nobody here.
        .entry(
            NewEntry::new("AIRFR", "Airfare", "COPD", "300.00").allocation(
                NewAllocation::new("100").journal(NewJournal::new("COMP", "COPD", "TRAVEL", "300")),
            ),
        );
    let id = h.concur.add_expense(report);
    h.run_once().await;
    let emp = h.bc_invoice("RPT-100");
    assert_eq!(emp.vendor_number, "E1001");
    assert_eq!((emp.status.as_str(), emp.post_count), ("Open", 1));
    let amounts: Vec<Decimal> = emp.lines.iter().map(|l| l.unit_cost).collect();
    assert_eq!(amounts, vec![dec("120"), dec("80"), dec("-49")]);
    let total: Decimal = amounts.iter().sum();
    assert_eq!(total, dec("151"));
    let dims: Vec<_> = emp.lines.iter().map(|l| l.dimensions.clone()).collect();
    assert_eq!(dims[0], vec![("DEPARTMENT".to_string(), "ADM".to_string())]);
    assert_eq!(
        dims[1],
        vec![("DEPARTMENT".to_string(), "SALES".to_string())]
    );
    // Never from the employee section.
    assert!(dims[2].is_empty(), "{dims:?}");
    let card = h.bc_invoice("RPT-100-CBCP");
    assert_eq!(card.vendor_number, "V-CARD");
    assert_eq!(card.lines.len(), 1);
    assert_eq!(card.lines[0].unit_cost, dec("49"));
    assert_eq!(card.lines[0].line_object_number, "2910");
    // The company-paid airfare is in neither.
    assert_eq!(h.bc.purchase_invoices().len(), 2);
    let doc = h.concur.document(&id).unwrap();
    assert_eq!(doc.status, "POSTING_CONFIRMED_SUCCESS");
    let c = &doc.posting_confirmations[0];
    let numbers: Vec<&str> = c["postingDocs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["documentNumber"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, vec![emp.number.as_str(), card.number.as_str()]);
}

#[tokio::test]
async fn a_document_read_again_after_its_acknowledgement_is_posted_once() {
    let h = Harness::new().await;
    let id = h.concur.add_invoice(invoice("INV-ACK"));
    // The poll queues it; then a worker acknowledges it and dies before handing it on (the
    // acknowledgement is all that happened).
    h.pipeline.poll_all().await.unwrap();
    assert!(h.concur.acknowledge(&id));
    // Concur no longer lists it (§2.7.3); the queued message reads it by id and goes on.
    h.pipeline.drain(4, Arc::new(|_| {})).await.unwrap();
    let inv = h.bc_invoice("INV-ACK");
    assert_eq!(inv.post_count, 1);
    let doc = h.concur.document(&id).unwrap();
    assert_eq!(doc.status, "POSTING_CONFIRMED_SUCCESS");
    assert_eq!(
        doc.acknowledges, 2,
        "our acknowledge repeated (101), not an error"
    );
    assert_eq!(doc.posting_confirmations.len(), 1);
}

#[tokio::test]
async fn a_recalled_document_is_not_posted() {
    let h = Harness::new().await;
    let id = h.concur.add_invoice(invoice("INV-RECALL"));
    h.pipeline.poll_all().await.unwrap();
    assert!(h.concur.recall(&id));
    h.pipeline.drain(4, Arc::new(|_| {})).await.unwrap();
    assert!(h.bc.purchase_invoices().is_empty());
    let doc = h.concur.document(&id).unwrap();
    assert!(doc.posting_confirmations.is_empty());
    let audit = h.audit(AuditStatus::Rejected).await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert!(
        audit[0].error.as_deref().unwrap().contains("RECALLED"),
        "{audit:?}"
    );
}

#[tokio::test]
async fn a_posting_confirmation_whose_answer_is_lost_is_sent_once() {
    let h = Harness::new().await;
    let id = h.concur.add_invoice(invoice("INV-LOST"));
    h.concur.fail_next(FaultRule::new(
        "POST",
        "postingconfirmations",
        1,
        FaultKind::LoseResponse,
    ));
    h.run_once().await;
    h.run_once().await;
    let doc = h.concur.document(&id).unwrap();
    assert_eq!(doc.status, "POSTING_CONFIRMED_SUCCESS");
    assert_eq!(doc.posting_confirmations.len(), 1, "{doc:?}");
    assert_eq!(h.bc_invoice("INV-LOST").post_count, 1);
}

#[tokio::test]
async fn an_unmappable_document_stays_parked_without_a_confirmation_and_posts_once_mapped() {
    let h = Harness::new().await;
    let id = h
        .concur
        .add_invoice(NewInvoice::new("INV-PARK", "V10000").line("Unknown", "10.00", "NOPE", None));
    h.run_once().await;
    assert!(h.bc.purchase_invoices().is_empty());
    let doc = h.concur.document(&id).unwrap();
    assert_eq!(doc.status, "ACKNOWLEDGED");
    assert!(doc.posting_confirmations.is_empty());
    let parked = h.pipeline.env.store.parked().await.unwrap();
    assert_eq!(parked.len(), 1);
    assert!(parked[0].reason.contains("NOPE"), "{parked:?}");
    // Acknowledged, so Concur no longer lists it: the parked retry reads it by id, and it posts
    // once the mapping exists.
    use mlc_shared::ports::Mappings;
    h.pipeline
        .env
        .store
        .put_mapping("concur-bc/gl_account", "NOPE", "6200")
        .await
        .unwrap();
    h.run_once().await;
    assert_eq!(h.bc_invoice("INV-PARK").post_count, 1);
    assert_eq!(
        h.concur.document(&id).unwrap().status,
        "POSTING_CONFIRMED_SUCCESS"
    );
    assert!(h.pipeline.env.store.parked().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unmappable_document_gets_an_error_confirmation_when_configured() {
    let h = Harness::with("confirm_unmappable = true").await;
    let id = h
        .concur
        .add_invoice(NewInvoice::new("INV-ERR", "V10000").line("Unknown", "10.00", "NOPE", None));
    h.run_once().await;
    h.run_once().await;
    let doc = h.concur.document(&id).unwrap();
    assert_eq!(doc.status, "POSTING_CONFIRMED_FAILURE");
    assert_eq!(doc.posting_confirmations.len(), 1);
    assert_eq!(
        doc.posting_confirmations[0]["overallPostingStatusCode"],
        "error"
    );
}

#[tokio::test]
async fn a_new_process_uses_the_rotated_refresh_token_stored_before_it_died() {
    let h = Harness::new().await;
    h.concur.add_invoice(invoice("INV-P1"));
    h.run_once().await;
    assert_eq!(h.concur.refreshes(), 1);
    // The first refresh token is spent; what is stored is the rotated one and the geolocation.
    let stored = h.secrets.get_versioned(REFRESH_SECRET).await.unwrap().0;
    assert!(stored.expose().contains(&h.concur.geolocation()));
    // The process dies; its access token expires; a new process refreshes with what is stored.
    h.concur.expire_tokens();
    let next = h.another_process().await;
    h.concur.add_invoice(invoice("INV-P2"));
    run(&next).await;
    assert_eq!(h.concur.refreshes(), 2);
    assert_eq!(h.bc_invoice("INV-P2").post_count, 1);
    let _ = &h.dir;
}

#[tokio::test]
async fn two_workers_refreshing_at_once_spend_the_refresh_token_once() {
    let h = Harness::new().await;
    for n in 0..4 {
        h.concur.add_invoice(invoice(&format!("INV-W{n}")));
    }
    let other = h.another_process().await;
    let (a, b) = tokio::join!(h.pipeline.poll_all(), other.poll_all());
    a.unwrap();
    b.unwrap();
    // One refresh: the other worker waited on the lease and used the stored access token; a
    // second spend of the same refresh token would have been refused (and backed off).
    assert_eq!(h.concur.refreshes(), 1);
    let (a, b) = tokio::join!(
        h.pipeline.drain(2, Arc::new(|_| {})),
        other.drain(2, Arc::new(|_| {}))
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(h.bc.purchase_invoices().len(), 4);
    assert!(h.bc.purchase_invoices().iter().all(|i| i.post_count == 1));
}

#[tokio::test]
async fn a_refused_refresh_token_backs_the_integration_off_and_dead_letters_nothing() {
    let h = Harness::new().await;
    h.concur.add_invoice(invoice("INV-REFUSED"));
    h.secrets.set(REFRESH_SECRET, "rt-revoked").unwrap();
    let polled = h.pipeline.poll_all().await.unwrap();
    assert!(
        polled.iter().all(|(name, _)| name != "concur-bc"),
        "backed off, not polled: {polled:?}"
    );
    let q = &h.pipeline.env.queue;
    assert!(q.receive(QueueName::Ingest, 10).await.unwrap().is_empty());
    assert!(h.bc.purchase_invoices().is_empty());
    // The document waits in Concur, READY: nothing lost.
    assert!(h.concur.documents().iter().all(|d| d.status == "READY"));
    // The audit trail says why nothing moves.
    let failed = h.audit(AuditStatus::Failed).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    let why = failed[0].error.as_deref().unwrap();
    assert!(
        why.contains("backs off")
            && why.contains("refresh token refused")
            && !why.contains("rt-revoked"),
        "{why}"
    );
    assert!(
        h.pipeline
            .env
            .queue
            .dead_letters(QueueName::Ingest)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_crash_between_a_refresh_and_its_store_loses_no_document_and_a_new_token_resumes() {
    let h = Harness::new().await;
    h.concur.add_invoice(invoice("INV-CRASH"));
    // A worker spends the stored refresh token, and dies before it stores the rotated one:
    // the store still holds the spent token; the rotated one died with the process.
    let stored = h.secrets.get_versioned(REFRESH_SECRET).await.unwrap().0;
    let c = h.concur.config();
    let spent = reqwest::Client::new()
        .post(format!("{}/oauth2/v0/token", h.concur.app_url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", stored.expose()),
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(spent.status(), 200);
    // The simulator rotates strictly (whether Concur keeps the spent token valid for a while
    // is not documented, concur.md §2.2): the next process is refused and backs off; nothing
    // is read, posted, confirmed or dead-lettered, and the document waits READY.
    let next = h.another_process().await;
    run(&next).await;
    assert!(h.bc.purchase_invoices().is_empty());
    assert!(h.concur.documents().iter().all(|d| d.status == "READY"));
    // An operator authorises the connection again (a new company request-token exchange):
    // the next process posts the document, once.
    h.secrets
        .set(REFRESH_SECRET, &h.concur.issue_refresh_token())
        .unwrap();
    let resumed = h.another_process().await;
    run(&resumed).await;
    assert_eq!(h.bc_invoice("INV-CRASH").post_count, 1);
    assert!(
        h.concur
            .documents()
            .iter()
            .all(|d| d.status == "POSTING_CONFIRMED_SUCCESS")
    );
}

#[tokio::test]
async fn requests_per_document_and_throughput() {
    let h = Harness::new().await;
    let n = 20;
    for i in 0..n {
        h.concur.add_invoice(invoice(&format!("INV-R{i:03}")));
    }
    for i in 0..n {
        h.concur.add_expense(
            NewExpense::new(&format!("RPT-R{i:03}"), "E1001").entry(
                NewEntry::new("LODNG", "Hotel", "CASH", "100.00").allocation(
                    NewAllocation::new("100")
                        .custom(1, "ADM")
                        .journal(NewJournal::new("COMP", "EMPL", "TRAVEL", "100")),
                ),
            ),
        );
    }
    // Authenticated once before measuring.
    h.concur.clear_requests();
    h.bc.clear_requests();
    let started = std::time::Instant::now();
    h.run_once().await;
    let took = started.elapsed();
    assert_eq!(h.bc.purchase_invoices().len(), 2 * n);
    let docs = (2 * n) as f64;
    let concur = h
        .concur
        .requests()
        .iter()
        .filter(|r| r.path.contains("/financialintegration/"))
        .count() as f64;
    let bc = h.bc.requests().len() as f64;
    println!(
        "concur-bc: {docs} documents ({n} invoices with 2 lines, {n} expense reports with 1 row): \
         {:.2} Concur and {:.2} BC requests per document; {:.1} documents/s",
        concur / docs,
        bc / docs,
        docs / took.as_secs_f64()
    );
    // list pages + per document: read by id, acknowledge, status look-up and confirmation.
    assert!(concur / docs <= 5.0, "{concur}");
}

#[tokio::test]
async fn a_payment_confirmation_is_sent_once_over_three_polls() {
    let h = Harness::build("", "payments = true").await;
    let id = h.concur.add_expense(
        NewExpense::new("RPT-PAY", "E1001").entry(
            NewEntry::new("LODNG", "Hotel", "CASH", "100.00").allocation(
                NewAllocation::new("100")
                    .custom(1, "ADM")
                    .journal(NewJournal::new("COMP", "EMPL", "TRAVEL", "100")),
            ),
        ),
    );
    // A payment request too: FIS takes payment confirmations of expense reports only.
    let inv_id = h.concur.add_invoice(invoice("INV-PAY"));
    h.run_once().await;
    let emp = h.bc_invoice("RPT-PAY");
    h.bc.mark_paid(emp.id);
    h.bc.mark_paid(h.bc_invoice("INV-PAY").id);
    for _ in 0..3 {
        h.run_once().await;
    }
    let doc = h.concur.document(&id).unwrap();
    assert_eq!(doc.status, "PAYMENT_CONFIRMED_SUCCESS");
    assert_eq!(doc.payment_confirmations.len(), 1);
    assert_eq!(doc.payment_attempts, 1, "looked up, never sent again");
    let p = &doc.payment_confirmations[0];
    assert_eq!(p["processingStatusCode"], "CP");
    let detail = &p["clearingDetails"][0];
    assert_eq!(detail["clearingAmount"].to_string(), "100");
    assert_eq!(detail["receiver"]["receiverId"], "E1001");
    assert_eq!(
        detail["clearingReference"]["paymentRef"],
        format!("BC/{}", emp.number).as_str()
    );
    assert_eq!(h.concur.document(&inv_id).unwrap().payment_attempts, 0);
}

#[tokio::test]
async fn a_forged_or_missing_concur_signature_gets_401_and_nothing_is_queued() {
    let h = Harness::new().await;
    let url = h.listener().await;
    let id = h.concur.add_invoice(invoice("INV-HOOK-1"));
    let (body, valid) = h.concur.ready_event("invoice", &id);
    let send = |sig: Option<String>| {
        let mut req = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(s) = sig {
            req = req.header("Concur-Signature", s);
        }
        req.send()
    };
    let forged = mlc_sandbox::concur::forged_signature(&body);
    assert_eq!(send(Some(forged)).await.unwrap().status(), 401);
    assert_eq!(send(None).await.unwrap().status(), 401);
    // The valid signature of another body.
    let (_, other) = h
        .concur
        .ready_event("invoice", "0123456789abcdef0123456789abcdef");
    assert_eq!(send(Some(other)).await.unwrap().status(), 401);
    assert_eq!(h.ingest_depth().await, 0);
    assert_eq!(send(Some(valid)).await.unwrap().status(), 200);
    assert_eq!(h.ingest_depth().await, 1);
}

#[tokio::test]
async fn a_signed_event_triggers_a_read_by_id_and_the_document_posts_once() {
    let h = Harness::new().await;
    let url = h.listener().await;
    let id = h.concur.add_expense(
        NewExpense::new("RPT-HOOK", "E1001").entry(
            NewEntry::new("LODNG", "Hotel", "CASH", "80.00").allocation(
                NewAllocation::new("100")
                    .custom(1, "SALES")
                    .journal(NewJournal::new("COMP", "EMPL", "TRAVEL", "80")),
            ),
        ),
    );
    assert_eq!(h.concur.deliver_event(&url, "expense", &id).await, 200);
    // ESS delivers at least once: a repeat is harmless.
    assert_eq!(h.concur.deliver_event(&url, "expense", &id).await, 200);
    h.pipeline.drain(4, Arc::new(|_| {})).await.unwrap();
    assert_eq!(h.bc_invoice("RPT-HOOK").post_count, 1);
    // The poll, the backstop, finds nothing more to do.
    h.run_once().await;
    assert_eq!(h.bc.purchase_invoices().len(), 1);
    let doc = h.concur.document(&id).unwrap();
    assert_eq!(doc.status, "POSTING_CONFIRMED_SUCCESS");
    assert_eq!(doc.posting_confirmations.len(), 1);
}

#[tokio::test]
async fn bc_vendors_reach_concur_keyed_by_number_and_unchanged_ones_are_not_sent_again() {
    let h = Harness::with(
        "[systems.concur.vendors]\ndefault_country = \"US\"\nlocal_currency = \"USD\"",
    )
    .await;
    h.run_once().await;
    let vendors = h.concur.invoice_vendors();
    assert_eq!(vendors.len(), 3, "{vendors:?}");
    let fabrikam = vendors
        .iter()
        .find(|v| v["VendorCode"] == "V10000")
        .unwrap();
    assert_eq!(fabrikam["VendorName"], "Fabrikam, Inc.");
    assert_eq!(
        (
            fabrikam["AddressCode"].as_str(),
            fabrikam["CountryCode"].as_str(),
            fabrikam["CurrencyCode"].as_str()
        ),
        (Some("MAIN"), Some("US"), Some("USD"))
    );
    assert_eq!(h.concur.vendor_writes(), 3);
    h.run_once().await;
    assert_eq!(h.concur.vendor_writes(), 3, "nothing changed: nothing sent");
    h.bc.add_vendor("V20000", "First Up Consultants");
    h.run_once().await;
    assert_eq!(h.concur.vendor_writes(), 4);
    assert_eq!(h.concur.invoice_vendors().len(), 4);
}

#[tokio::test]
async fn with_a_pinned_client_cn_an_event_without_that_verified_certificate_is_refused() {
    let h = Harness::with("webhook_client_cn = \"webhook.api.concursolutions.com\"").await;
    let id = h.concur.add_invoice(invoice("INV-MTLS"));
    let (body, sig) = h.concur.ready_event("invoice", &id);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("concur-signature", sig.parse().unwrap());
    let send = |subject: Option<&'static str>| {
        let req = mlc_shared::flows::WebhookRequest {
            channel: "concur",
            method: "POST",
            headers: &headers,
            query: &[],
            body: &body,
            client_cert_subject: subject,
        };
        h.pipeline.webhook("concur-bc", &h.secrets, req)
    };
    assert_eq!(send(None).await.status, 401);
    assert_eq!(
        send(Some("CN=someone.else.example, O=Concur Technologies, Inc."))
            .await
            .status,
        401
    );
    assert_eq!(h.ingest_depth().await, 0);
    let concur = "CN=webhook.api.concursolutions.com, O=Concur Technologies, Inc., L=Bellevue, ST=Washington, C=US";
    assert_eq!(send(Some(concur)).await.status, 200);
    assert_eq!(h.ingest_depth().await, 1);
}

/// `mlc run`'s listener over TLS, client certificates verified against the test CA.
async fn tls_listener(h: &Harness) -> String {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mtls");
    let tls = mlc_cli::webhook_server::tls_config(&mlc_shared::config::WebhookTls {
        cert_file: fixtures.join("server.pem"),
        key_file: fixtures.join("server.key"),
        client_ca_file: Some(fixtures.join("ca.pem")),
    })
    .unwrap();
    let secrets = Arc::new(h.secrets.clone());
    let app = Listener::new(h.pipeline.clone(), secrets, Limits::default());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(app.serve_tls(l, tls));
    format!("https://localhost:{port}/webhooks/concur-bc/concur")
}

fn mtls_client(identity: Option<&str>) -> reqwest::Client {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mtls");
    let ca = std::fs::read(fixtures.join("ca.pem")).unwrap();
    let mut b = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .resolve("localhost", "127.0.0.1:0".parse().unwrap());
    if let Some(name) = identity {
        let mut pem = std::fs::read(fixtures.join(format!("{name}.pem"))).unwrap();
        pem.extend(std::fs::read(fixtures.join(format!("{name}.key"))).unwrap());
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

#[tokio::test]
async fn over_mutual_tls_only_concurs_verified_certificate_gets_an_event_queued() {
    let h = Harness::with("webhook_client_cn = \"webhook.api.concursolutions.com\"").await;
    let url = tls_listener(&h).await;
    let id = h.concur.add_invoice(invoice("INV-TLS"));
    let (body, sig) = h.concur.ready_event("invoice", &id);
    let send = |client: reqwest::Client| {
        client
            .post(&url)
            .header("content-type", "application/json")
            .header("Concur-Signature", sig.clone())
            .body(body.clone())
            .send()
    };
    // No certificate: served (other webhooks have none), refused by the pinned CN.
    assert_eq!(send(mtls_client(None)).await.unwrap().status(), 401);
    // A certificate of the right CA with another CN.
    assert_eq!(
        send(mtls_client(Some("stranger"))).await.unwrap().status(),
        401
    );
    // Concur's CN issued by a CA the listener does not trust: refused at the handshake.
    assert!(send(mtls_client(Some("forged"))).await.is_err());
    assert_eq!(h.ingest_depth().await, 0);
    assert_eq!(
        send(mtls_client(Some("concur"))).await.unwrap().status(),
        200
    );
    assert_eq!(h.ingest_depth().await, 1);
}

#[tokio::test]
async fn a_report_with_a_value_bc_lacks_on_its_card_part_posts_nothing_and_says_which() {
    let h = Harness::new().await;
    let id = h.concur.add_expense(
        NewExpense::new("RPT-HALF", "E1001")
            .entry(
                NewEntry::new("LODNG", "Hotel", "CASH", "100.00").allocation(
                    NewAllocation::new("100")
                        .custom(1, "ADM")
                        .journal(NewJournal::new("COMP", "EMPL", "TRAVEL", "100")),
                ),
            )
            .entry(
                NewEntry::new("AIRFR", "Airfare", "CBCP", "300.00").allocation(
                    NewAllocation::new("100")
                        .custom(1, "MARKETING")
                        .journal(NewJournal::new("COMP", "CBCP", "TRAVEL", "300")),
                ),
            ),
    );
    h.run_once().await;
    // All or nothing (§2.7.2): the employee's part is not posted without the card's.
    assert!(h.bc.purchase_invoices().is_empty());
    assert!(
        h.concur
            .document(&id)
            .unwrap()
            .posting_confirmations
            .is_empty()
    );
    let parked = h.pipeline.env.store.parked().await.unwrap();
    assert_eq!(parked.len(), 1);
    assert!(
        parked[0].reason.contains("CBCP document") && parked[0].reason.contains("MARKETING"),
        "{}",
        parked[0].reason
    );
}

impl Harness {
    /// Polls and maps (the pre-check against BC included), then lets `meanwhile` change BC, then
    /// posts: what a person changing BC between the two steps causes.
    async fn map_then_post(&self, meanwhile: impl FnOnce()) {
        let p = &self.pipeline;
        p.poll_all().await.unwrap();
        let q = &p.env.queue;
        for m in q.receive(QueueName::Ingest, 10).await.unwrap() {
            p.handle_ingest(&m.body).await.unwrap();
            q.ack(QueueName::Ingest, &m.receipt).await.unwrap();
        }
        meanwhile();
        p.drain(4, Arc::new(|_| {})).await.unwrap();
    }
}

/// A report of two BC documents: the employee's (100, ADM) and the CBCP card issuer's (300).
fn report_of_two(number: &str) -> NewExpense {
    NewExpense::new(number, "E1001")
        .entry(
            NewEntry::new("LODNG", "Hotel", "CASH", "100.00").allocation(
                NewAllocation::new("100")
                    .custom(1, "ADM")
                    .journal(NewJournal::new("COMP", "EMPL", "TRAVEL", "100")),
            ),
        )
        .entry(
            NewEntry::new("AIRFR", "Airfare", "CBCP", "300.00").allocation(
                NewAllocation::new("100").journal(NewJournal::new("COMP", "CBCP", "TRAVEL", "300")),
            ),
        )
}

#[tokio::test]
async fn a_report_bc_refuses_half_way_is_backed_out_by_an_applied_credit_memo_and_confirmed_as_failed()
 {
    let h = Harness::build("", "payments = true").await;
    let id = h.concur.add_expense(report_of_two("RPT-BACK"));
    // Blocked after the pre-check saw it open (a person in BC): the employee's invoice posts,
    // the card issuer's is refused at posting.
    h.map_then_post(|| h.bc.block_vendor("V-CARD", "All")).await;

    let emp = h.bc_invoice("RPT-BACK");
    assert_eq!(emp.post_count, 1);
    let memos = h.bc.purchase_credit_memos();
    assert_eq!(memos.len(), 1, "{memos:?}");
    let memo = &memos[0];
    assert_eq!(memo.vendor_number, "E1001");
    assert_eq!(memo.vendor_credit_memo_number, "RPT-BACK-REV");
    assert_eq!(
        memo.applies_to_invoice.as_deref(),
        Some(emp.number.as_str())
    );
    assert_eq!((memo.post_count, memo.total), (1, emp.total));
    assert_eq!(
        memo.lines[0].dimensions,
        vec![("DEPARTMENT".to_string(), "ADM".to_string())]
    );
    // Closed by the memo (BC shows it "Paid"); the refused draft is not left behind.
    assert_eq!(h.bc_invoice("RPT-BACK").status, "Paid");
    assert_eq!(h.bc.purchase_invoices().len(), 1);

    let doc = h.concur.document(&id).unwrap();
    assert_eq!(doc.status, "POSTING_CONFIRMED_FAILURE");
    assert_eq!(doc.posting_confirmations.len(), 1);
    let c = &doc.posting_confirmations[0];
    assert_eq!(c["overallPostingStatusCode"], "error");
    let said = c.to_string();
    assert!(
        said.contains("blocked") && said.contains(&emp.number),
        "{said}"
    );

    let parked = h.pipeline.env.store.parked().await.unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0].source_id, id);
    assert!(
        parked[0].reason.contains("CBCP document was refused")
            && parked[0].reason.contains("reversed by credit memo"),
        "{}",
        parked[0].reason
    );
    let backed_out = h.audit(AuditStatus::BackedOut).await;
    assert_eq!(backed_out.len(), 1, "{backed_out:?}");
}

#[tokio::test]
async fn a_backed_out_report_read_again_reverses_nothing_twice_and_is_never_paid() {
    let h = Harness::build("", "payments = true").await;
    let id = h.concur.add_expense(report_of_two("RPT-BACK2"));
    h.map_then_post(|| h.bc.block_vendor("V-CARD", "All")).await;
    // The vendor put right meanwhile: a backed-out report still never posts again by itself
    // (its numbers are taken by the reversed invoice).
    h.bc.block_vendor("V-CARD", " ");
    for _ in 0..3 {
        h.run_once().await;
    }
    assert_eq!(h.bc.purchase_credit_memos().len(), 1);
    assert_eq!(h.bc.purchase_invoices().len(), 1);
    assert_eq!(h.bc_invoice("RPT-BACK2").post_count, 1);
    let doc = h.concur.document(&id).unwrap();
    assert_eq!(doc.posting_confirmations.len(), 1);
    // Closed by its credit memo, not paid: no payment confirmation.
    assert_eq!(doc.payment_attempts, 0);
    assert!(doc.payment_confirmations.is_empty());
}

#[tokio::test]
async fn a_backed_out_report_submitted_again_posts_whole_under_new_numbers_and_is_paid_once() {
    let h = Harness::build("", "payments = true").await;
    let id = h.concur.add_expense(report_of_two("RPT-AGAIN"));
    h.map_then_post(|| h.bc.block_vendor("V-CARD", "All")).await;
    assert_eq!(
        h.concur.document(&id).unwrap().status,
        "POSTING_CONFIRMED_FAILURE"
    );
    // Put right in BC, sent back and submitted again in Concur (same FIS id, later date).
    h.bc.block_vendor("V-CARD", " ");
    assert!(h.concur.resubmit(&id));
    h.run_once().await;
    h.run_once().await;

    // BC keeps the reversed invoice under the old number: the new submission takes new ones.
    let emp = h.bc_invoice("RPT-AGAIN-2");
    assert_eq!((emp.vendor_number.as_str(), emp.post_count), ("E1001", 1));
    assert_eq!(h.bc_invoice("RPT-AGAIN-CBCP-2").post_count, 1);
    assert_eq!(
        h.bc_invoice("RPT-AGAIN").status,
        "Paid",
        "closed by its memo"
    );
    assert_eq!(h.bc.purchase_invoices().len(), 3);
    assert_eq!(h.bc.purchase_credit_memos().len(), 1);
    let doc = h.concur.document(&id).unwrap();
    assert_eq!(doc.status, "POSTING_CONFIRMED_SUCCESS");
    let last = doc.posting_confirmations.last().unwrap();
    assert!(last.to_string().contains(&emp.number), "{last}");
    assert!(h.pipeline.env.store.parked().await.unwrap().is_empty());

    // The new invoice paid: one payment confirmation, for it, not for the reversed one.
    h.bc.mark_paid(emp.id);
    for _ in 0..2 {
        h.run_once().await;
    }
    let doc = h.concur.document(&id).unwrap();
    assert_eq!(doc.payment_confirmations.len(), 1);
    assert_eq!(
        doc.payment_confirmations[0]["clearingDetails"][0]["clearingReference"]["paymentRef"],
        format!("BC/{}", emp.number).as_str()
    );
}

#[tokio::test]
async fn a_report_whose_card_issuer_is_blocked_in_bc_posts_nothing_and_says_which() {
    let h = Harness::new().await;
    h.bc.block_vendor("V-CARD", "All");
    let id = h.concur.add_expense(report_of_two("RPT-BLOCKED"));
    h.run_once().await;
    // Seen before anything posts: nothing to back out.
    assert!(h.bc.purchase_invoices().is_empty());
    assert!(h.bc.purchase_credit_memos().is_empty());
    assert!(
        h.concur
            .document(&id)
            .unwrap()
            .posting_confirmations
            .is_empty()
    );
    let parked = h.pipeline.env.store.parked().await.unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert!(
        parked[0].reason.contains("'V-CARD' is blocked"),
        "{}",
        parked[0].reason
    );
}

#[tokio::test]
async fn a_report_whose_first_document_bc_refuses_is_parked_whole_for_a_retry() {
    let h = Harness::new().await;
    let id = h.concur.add_expense(report_of_two("RPT-FIRST"));
    h.map_then_post(|| h.bc.block_vendor("E1001", "All")).await;
    // Nothing posted, so nothing to back out: parked (under the Concur document) until BC is
    // put right, then posted whole.
    assert!(h.bc.purchase_credit_memos().is_empty());
    let parked = h.pipeline.env.store.parked().await.unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0].source_id, id);
    assert!(
        h.concur
            .document(&id)
            .unwrap()
            .posting_confirmations
            .is_empty()
    );
    h.bc.block_vendor("E1001", " ");
    h.run_once().await;
    assert_eq!(h.bc_invoice("RPT-FIRST").post_count, 1);
    assert_eq!(h.bc_invoice("RPT-FIRST-CBCP").post_count, 1);
    assert_eq!(
        h.concur.document(&id).unwrap().status,
        "POSTING_CONFIRMED_SUCCESS"
    );
}

#[tokio::test]
async fn a_report_whose_worker_dies_at_any_step_is_posted_and_confirmed_once() {
    use mlc_shared::steps::post::CrashPoint;
    let h = Harness::new().await;
    let q = &h.pipeline.env.queue;
    for (n, crash) in [
        CrashPoint::AfterClaim,
        CrashPoint::AfterDraft,
        CrashPoint::AfterPost,
        CrashPoint::AfterLedger,
    ]
    .into_iter()
    .enumerate()
    {
        let report = format!("RPT-CRASH-{n}");
        let id = h.concur.add_expense(
            NewExpense::new(&report, "E1001")
                .entry(
                    NewEntry::new("LODNG", "Hotel", "CASH", "100.00").allocation(
                        NewAllocation::new("100")
                            .custom(1, "ADM")
                            .journal(NewJournal::new("COMP", "EMPL", "TRAVEL", "100")),
                    ),
                )
                .entry(
                    NewEntry::new("AIRFR", "Airfare", "CBCP", "300.00").allocation(
                        NewAllocation::new("100")
                            .journal(NewJournal::new("COMP", "CBCP", "TRAVEL", "300")),
                    ),
                ),
        );
        h.pipeline.poll_all().await.unwrap();
        for m in q.receive(QueueName::Ingest, 10).await.unwrap() {
            h.pipeline.handle_ingest(&m.body).await.unwrap();
            q.ack(QueueName::Ingest, &m.receipt).await.unwrap();
        }
        let post = q.receive(QueueName::Post, 10).await.unwrap();
        assert_eq!(post.len(), 1, "{crash:?}");
        for m in &post {
            q.ack(QueueName::Post, &m.receipt).await.unwrap();
        }
        let body = &post[0].body;
        // The worker dies at `crash` (in the first BC document it writes).
        assert!(
            h.pipeline
                .handle_post_crashing(body, "w1", Some(crash))
                .await
                .is_err(),
            "{crash:?}"
        );
        // Delivered again, to another worker once the first one's claim ran out, or to the
        // same: done once, whatever the point.
        let mut outcome = h.pipeline.handle_post_crashing(body, "w1", None).await;
        for _ in 0..3 {
            if matches!(
                outcome,
                Ok(PostOutcome::Posted { .. } | PostOutcome::AlreadyPosted { .. })
            ) {
                break;
            }
            outcome = h.pipeline.handle_post_crashing(body, "w1", None).await;
        }
        assert!(
            matches!(
                outcome,
                Ok(PostOutcome::Posted { .. } | PostOutcome::AlreadyPosted { .. })
            ),
            "{crash:?}: {outcome:?}"
        );
        let again = h
            .pipeline
            .handle_post_crashing(body, "w2", None)
            .await
            .unwrap();
        assert!(
            matches!(again, PostOutcome::AlreadyPosted { .. }),
            "{crash:?}: {again:?}"
        );
        for number in [report.clone(), format!("{report}-CBCP")] {
            let mine: Vec<_> =
                h.bc.purchase_invoices()
                    .into_iter()
                    .filter(|i| i.vendor_invoice_number.eq_ignore_ascii_case(&number))
                    .collect();
            assert_eq!(mine.len(), 1, "{crash:?} {number}");
            assert_eq!(mine[0].post_count, 1, "{crash:?} {number}");
        }
        let doc = h.concur.document(&id).unwrap();
        assert_eq!(doc.status, "POSTING_CONFIRMED_SUCCESS", "{crash:?}");
        assert_eq!(doc.posting_confirmations.len(), 1, "{crash:?}");
    }
}

#[tokio::test]
async fn documents_sent_as_text_are_read_like_json_ones() {
    let h = Harness::build_with(
        ConcurConfig {
            force_text: true,
            ..ConcurConfig::default()
        },
        "",
        "",
    )
    .await;
    let id = h.concur.add_invoice(invoice("INV-TEXT"));
    h.run_once().await;
    assert_eq!(h.bc_invoice("INV-TEXT").post_count, 1);
    assert_eq!(
        h.concur.document(&id).unwrap().status,
        "POSTING_CONFIRMED_SUCCESS"
    );
}

#[tokio::test]
async fn a_company_moved_to_another_geolocation_is_followed_after_the_next_refresh() {
    let h = Harness::new().await;
    h.concur.add_invoice(invoice("INV-GEO-1"));
    h.run_once().await;
    // Concur moves the company: the API answers 401 at the old host; the refresh names the new.
    h.concur.move_geolocation("eu2");
    h.concur.clear_requests();
    let id = h.concur.add_invoice(invoice("INV-GEO-2"));
    h.run_once().await;
    assert_eq!(h.bc_invoice("INV-GEO-2").post_count, 1);
    assert_eq!(
        h.concur.document(&id).unwrap().status,
        "POSTING_CONFIRMED_SUCCESS"
    );
    let api: Vec<_> = h
        .concur
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/financialintegration/") && r.status == 200)
        .collect();
    assert!(
        !api.is_empty() && api.iter().all(|r| r.path.starts_with("/eu2/")),
        "{api:?}"
    );
    let stored = h.secrets.get_versioned(REFRESH_SECRET).await.unwrap().0;
    assert!(
        stored.expose().contains("/eu2"),
        "the new geolocation is stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_throttling_lost_answers_and_server_errors_every_document_is_posted_and_confirmed_once()
 {
    let h = Harness::new().await;
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push((h.concur.add_invoice(invoice(&format!("INV-F{i:02}"))), 1));
    }
    for i in 0..8 {
        let report = NewExpense::new(&format!("RPT-F{i:02}"), "E1001")
            .entry(
                NewEntry::new("LODNG", "Hotel", "CASH", "90.00").allocation(
                    NewAllocation::new("100")
                        .custom(1, "SALES")
                        .journal(NewJournal::new("COMP", "EMPL", "TRAVEL", "90")),
                ),
            )
            .entry(
                NewEntry::new("AIRFR", "Airfare", "CBCP", "310.00").allocation(
                    NewAllocation::new("100")
                        .journal(NewJournal::new("COMP", "CBCP", "TRAVEL", "310")),
                ),
            );
        ids.push((h.concur.add_expense(report), 2));
    }
    let concur = [
        (
            "GET",
            "/transactions",
            3,
            FaultKind::TooManyRequests {
                retry_after: Some(1),
            },
        ),
        ("GET", "/transactions", 3, FaultKind::Status(503)),
        ("POST", "acknowledgements", 4, FaultKind::LoseResponse),
        ("POST", "postingconfirmations", 4, FaultKind::LoseResponse),
    ];
    for (method, path, count, kind) in concur {
        h.concur
            .fail_next(FaultRule::new(method, path, count, kind));
    }
    let bc = [
        ("POST", "/purchaseInvoices", 3, FaultKind::LoseResponse),
        ("GET", "/purchaseInvoices", 3, FaultKind::Status(502)),
        ("POST", "Microsoft.NAV.post", 2, FaultKind::LoseResponse),
    ];
    for (method, path, count, kind) in bc {
        h.bc.fail_next(FaultRule::new(method, path, count, kind));
    }
    for _ in 0..8 {
        // A poll that meets the 503s fails as a whole (the next cycle polls again).
        let _ = h.pipeline.poll_all().await;
        h.pipeline.drain(4, Arc::new(|_| {})).await.unwrap();
        let done = ids.iter().all(|(id, _)| {
            h.concur.document(id).map(|d| d.status) == Some("POSTING_CONFIRMED_SUCCESS".into())
        });
        if done {
            break;
        }
    }
    let invoices = h.bc.purchase_invoices();
    assert_eq!(invoices.len(), 12 + 8 * 2, "no duplicate, none lost");
    assert!(
        invoices
            .iter()
            .all(|i| i.status == "Open" && i.post_count == 1)
    );
    for (id, bc_docs) in &ids {
        let doc = h.concur.document(id).unwrap();
        assert_eq!(doc.status, "POSTING_CONFIRMED_SUCCESS", "{doc:?}");
        assert_eq!(doc.posting_confirmations.len(), 1, "{doc:?}");
        assert_eq!(
            doc.posting_confirmations[0]["postingDocs"]
                .as_array()
                .unwrap()
                .len(),
            *bc_docs
        );
    }
    let injected = h
        .concur
        .requests()
        .iter()
        .filter(|r| r.status >= 429)
        .count()
        + h.bc.requests().iter().filter(|r| r.status >= 429).count();
    assert!(injected >= 10, "faults were injected: {injected}");
}
