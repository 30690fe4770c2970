//! The SAP Concur client against the running Concur simulator over real HTTP (concur.md §2):
//! the source port's paging by `next` link across a state queue, one token for many calls,
//! a 401 answered by one refresh, acknowledge codes, reading by id after an acknowledge, and
//! the conversion of both document types (US dates, `0E-8`, padded codes, journal rows).

use std::sync::Arc;

use mlc_sandbox::concur::{
    ConcurConfig, ConcurSim, NewAllocation, NewEntry, NewExpense, NewInvoice, NewJournal,
};
use mlc_shared::adapters::embedded::{SecretFile, SecretKey};
use mlc_shared::model::{DocumentKind, PaidBy};
use mlc_shared::ports::{SecretString, Source, SourceDocument};
use mlc_shared::systems::concur::{
    AckOutcome, ConcurClient, ConcurSettings, ConcurSource, EXPENSES, INVOICES,
};
use mlc_shared::systems::http::{HttpSettings, TokenStore};
use rust_decimal::Decimal;

struct Fixture {
    sim: ConcurSim,
    source: ConcurSource,
    _dir: tempfile::TempDir,
}

async fn fixture(page_size: u32) -> Fixture {
    let sim = ConcurSim::start(ConcurConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secrets = SecretFile::open(dir.path().join("s"), SecretKey::generate()).unwrap();
    secrets.set("rt", &sim.issue_refresh_token()).unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(secrets);
    let c = sim.config();
    let client = ConcurClient::new(
        ConcurSettings {
            base_url: sim.app_url(),
            client_id: c.client_id.clone(),
            client_secret: SecretString::new(c.client_secret.clone()),
            refresh_token_secret: "rt".into(),
            scope: None,
            system_id: String::new(),
            page_size,
            requests_per_second: 1000,
            http: HttpSettings::default(),
        },
        store,
    )
    .unwrap();
    Fixture {
        sim,
        source: ConcurSource { client },
        _dir: dir,
    }
}

fn invoice(n: &str) -> NewInvoice {
    NewInvoice::new(n, "V10000").line("Merchandise", "50.00", "MATER", Some("ADM"))
}

#[tokio::test]
async fn the_state_queue_is_read_to_its_end_by_next_links_with_one_token() {
    let f = fixture(2).await;
    for i in 0..5 {
        f.sim.add_invoice(invoice(&format!("INV-{i}")));
    }
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = f
            .source
            .page(&INVOICES, None, cursor.as_deref())
            .await
            .unwrap();
        pages += 1;
        ids.extend(page.refs.into_iter().map(|r| r.id));
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    assert_eq!((ids.len(), pages), (5, 3));
    assert_eq!(f.sim.refreshes(), 1, "one refresh for every page");
    // Nothing of the other feed.
    let expenses = f.source.page(&EXPENSES, None, None).await.unwrap();
    assert!(expenses.refs.is_empty());
}

#[tokio::test]
async fn a_refused_access_token_is_refreshed_once_and_the_call_replayed() {
    let f = fixture(25).await;
    let id = f.sim.add_invoice(invoice("INV-401"));
    f.source.page(&INVOICES, None, None).await.unwrap();
    f.sim.expire_tokens();
    let doc = f.source.fetch(DocumentKind::Invoice, &id).await.unwrap();
    assert!(matches!(doc, SourceDocument::Invoice(_)));
    assert_eq!(f.sim.refreshes(), 2);
}

#[tokio::test]
async fn an_acknowledged_document_is_read_by_id_and_a_recalled_one_is_told_apart() {
    let f = fixture(25).await;
    let id = f.sim.add_invoice(invoice("INV-A"));
    assert_eq!(
        f.source.take(DocumentKind::Invoice, &id).await.unwrap(),
        AckOutcome::Taken
    );
    // 101 on the repeat: taken.
    assert_eq!(
        f.source.take(DocumentKind::Invoice, &id).await.unwrap(),
        AckOutcome::Taken
    );
    assert!(
        f.source
            .page(&INVOICES, None, None)
            .await
            .unwrap()
            .refs
            .is_empty()
    );
    let SourceDocument::Invoice(inv) = f.source.fetch(DocumentKind::Invoice, &id).await.unwrap()
    else {
        panic!("an invoice")
    };
    assert!(
        inv.readiness.is_ready(),
        "ACKNOWLEDGED by us is still to post"
    );
    let recalled = f.sim.add_invoice(invoice("INV-R"));
    f.sim.recall(&recalled);
    assert_eq!(
        f.source
            .take(DocumentKind::Invoice, &recalled)
            .await
            .unwrap(),
        AckOutcome::Recalled
    );
    let unknown = f
        .source
        .take(DocumentKind::Invoice, "0123456789abcdef0123456789abcdef")
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, mlc_shared::ports::SystemError::NotFound(_)),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn both_document_types_convert_with_concurs_formats() {
    let f = fixture(25).await;
    let inv_id = f.sim.add_invoice(invoice("INV-C"));
    let SourceDocument::Invoice(inv) = f
        .source
        .fetch(DocumentKind::Invoice, &inv_id)
        .await
        .unwrap()
    else {
        panic!("an invoice")
    };
    assert_eq!(inv.number, "INV-C");
    assert_eq!(
        inv.invoice_date.to_string(),
        "2026-11-20",
        "from 11/20/2026"
    );
    assert_eq!(inv.total.amount, Decimal::new(50, 0));
    assert_eq!(
        inv.lines[0].account.code.as_deref(),
        Some("2000"),
        "trimmed"
    );
    let row = &inv.lines[0].coding[0];
    assert_eq!(row.account.segment(1), Some("MATER"));
    assert_eq!(row.account.segment(2), Some("ADM"), "allocationCustom1Code");
    let rep_id = f.sim.add_expense(
        NewExpense::new("RPT-C", "E1").entry(
            NewEntry::new("TAXI", "Taxi", "CBCP", "49")
                .personal()
                .allocation(
                    NewAllocation::new("100")
                        .journal(NewJournal::new("COMP", "CBCP", "cbcp180", "49"))
                        .journal(NewJournal::new("EMPL", "COMP", "cbcp180", "-49")),
                ),
        ),
    );
    let SourceDocument::ExpenseReport(r) = f
        .source
        .fetch(DocumentKind::ExpenseReport, &rep_id)
        .await
        .unwrap()
    else {
        panic!("an expense report")
    };
    assert_eq!(r.report_id, "RPT-C");
    assert_eq!(r.employee.number.as_deref(), Some("E1"));
    let e = &r.entries[0];
    assert!(e.personal);
    assert_eq!(e.payment_type.paid_by, PaidBy::CompanyCard);
    let rows: Vec<(&str, &str, Option<Decimal>)> = e
        .journal
        .iter()
        .map(|j| (j.payer.as_str(), j.payee.as_str(), j.coding.amount))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("COMP", "CBCP", Some(Decimal::new(49, 0))),
            ("EMPL", "COMP", Some(Decimal::new(-49, 0)))
        ]
    );
}
