//! The B1 Service Layer client against the simulator, over real HTTP: session handling
//! (cookies, expiry mid-poll, one replay, -5002, licences, logout), change detection on
//! day-granular stamps, conversion, and error mapping.

use std::collections::BTreeMap;

use chrono::{NaiveDateTime, TimeZone, Utc};
use mlc_sandbox::FaultKind;
use mlc_sandbox::FaultRule;
use mlc_sandbox::b1::{B1Config, B1Sim, DocKind, DocLine, NewDocument, NewPartner, Protocol};
use mlc_shared::model::{DocumentKind, LineKind};
use mlc_shared::ports::{DocRef, SecretString, Source, SourceDocument, SystemError, Window};
use mlc_shared::systems::http::HttpSettings;
use mlc_shared::systems::sap_b1::{B1Client, B1Settings, INVOICES, PURCHASE_ORDERS, SUPPLIERS};

fn at(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
}

async fn sim(cfg: B1Config) -> B1Sim {
    let sim = B1Sim::start(cfg).await.unwrap();
    sim.set_now(Some(at("2026-07-01 09:00:00")));
    sim.add_partner(NewPartner::supplier("V10000", "Maxi-Teq"));
    sim
}

fn client_with(sim: &B1Sim, password: &str, page_size: u32) -> B1Client {
    B1Client::new(B1Settings {
        service_root: sim.service_root(Protocol::V2),
        company_db: "SBODEMOUS".into(),
        user_name: "manager".into(),
        password: SecretString::new(password),
        expiry_codes: vec![301, -5002],
        page_size,
        currencies: BTreeMap::from([("$".to_string(), "USD".to_string())]),
        http: HttpSettings::default(),
    })
    .unwrap()
}

fn client(sim: &B1Sim) -> B1Client {
    client_with(sim, "b1-password", 2)
}

fn window() -> Window {
    Window {
        lower: Utc.with_ymd_and_hms(2026, 7, 1, 8, 0, 0).unwrap(),
        upper: Utc.with_ymd_and_hms(2026, 7, 1, 10, 0, 0).unwrap(),
    }
}

fn po(sim: &B1Sim, qty: &str) -> i64 {
    sim.add_document(
        DocKind::PurchaseOrders,
        NewDocument::for_supplier("V10000").line(DocLine::item("A100", "Paper", qty, "10", "0")),
    )
    .unwrap()
}

/// Every page of a feed, following the next links.
async fn poll_all(c: &B1Client, feed: &mlc_shared::ports::Feed) -> Vec<DocRef> {
    let mut refs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = c
            .page(feed, Some(window()), cursor.as_deref())
            .await
            .unwrap();
        refs.extend(page.refs);
        match page.next {
            Some(n) => cursor = Some(n),
            None => return refs,
        }
    }
}

fn ids(refs: &[DocRef]) -> Vec<String> {
    refs.iter().map(|r| r.id.clone()).collect()
}

#[tokio::test]
async fn session_expiry_mid_poll_logs_in_again_replays_once_and_loses_nothing() {
    let sim = sim(B1Config::default()).await;
    for _ in 0..5 {
        po(&sim, "1");
    }
    let c = client(&sim);
    let first = c
        .page(&PURCHASE_ORDERS, Some(window()), None)
        .await
        .unwrap();
    assert_eq!(ids(&first.refs), ["1", "2"]);
    sim.expire_sessions();
    let mut refs = first.refs;
    let mut cursor = first.next;
    while let Some(link) = cursor {
        let page = c
            .page(&PURCHASE_ORDERS, Some(window()), Some(&link))
            .await
            .unwrap();
        refs.extend(page.refs);
        cursor = page.next;
    }
    assert_eq!(ids(&refs), ["1", "2", "3", "4", "5"]);
    assert_eq!((sim.logins(), c.logins()), (2, 2));
    let refused = sim.requests().iter().filter(|r| r.status == 401).count();
    assert_eq!(refused, 1, "one expired call, replayed once");
}

#[tokio::test]
async fn expiry_answered_with_minus_5002_logs_in_again_too() {
    let sim = sim(B1Config {
        expiry_code: -5002,
        ..B1Config::default()
    })
    .await;
    po(&sim, "1");
    let c = client(&sim);
    assert_eq!(poll_all(&c, &PURCHASE_ORDERS).await.len(), 1);
    sim.expire_sessions();
    assert_eq!(poll_all(&c, &PURCHASE_ORDERS).await.len(), 1);
    assert_eq!(sim.logins(), 2);
}

#[tokio::test]
async fn a_session_refused_again_after_the_new_login_is_the_answer_not_a_loop() {
    let sim = sim(B1Config::default()).await;
    let c = client(&sim);
    let body = r#"{"error":{"code":301,"message":{"lang":"en-us","value":"Invalid session or session already timeout."}}}"#;
    sim.fail_next(FaultRule::new(
        "GET",
        "/PurchaseOrders",
        5,
        FaultKind::RawBody {
            status: 401,
            content_type: "application/json".into(),
            body: body.into(),
        },
    ));
    let e = c
        .page(&PURCHASE_ORDERS, Some(window()), None)
        .await
        .unwrap_err();
    assert!(matches!(e, SystemError::Transient { .. }), "{e:?}");
    assert_eq!(
        sim.logins(),
        2,
        "one login, one more after the expiry, no third"
    );
    let gets = sim.requests().iter().filter(|r| r.method == "GET").count();
    assert_eq!(gets, 2, "the call and its one replay");
}

#[tokio::test]
async fn concurrent_calls_share_one_session() {
    let sim = sim(B1Config::default()).await;
    po(&sim, "1");
    let c = client(&sim);
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.fetch(DocumentKind::PurchaseOrder, "1").await })
        })
        .collect();
    for h in calls {
        assert!(matches!(
            h.await.unwrap().unwrap(),
            SourceDocument::PurchaseOrder(_)
        ));
    }
    assert_eq!((sim.logins(), sim.live_sessions()), (1, 1));
}

#[tokio::test]
async fn a_refused_login_is_unauthorized_and_not_retried() {
    let sim = sim(B1Config::default()).await;
    let c = client_with(&sim, "wrong", 2);
    let e = c
        .page(&PURCHASE_ORDERS, Some(window()), None)
        .await
        .unwrap_err();
    match e {
        SystemError::Unauthorized(m) => {
            assert!(m.contains("Login failed"), "{m}");
            assert!(!m.contains("wrong"), "the password never shows: {m}");
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    let logins = sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/Login"))
        .count();
    assert_eq!(logins, 1);
}

#[tokio::test]
async fn logout_frees_the_licence() {
    let sim = sim(B1Config::default()).await;
    let c = client(&sim);
    poll_all(&c, &PURCHASE_ORDERS).await;
    assert_eq!(sim.live_sessions(), 1);
    c.logout().await.unwrap();
    assert_eq!(sim.live_sessions(), 0);
}

#[tokio::test]
async fn two_documents_changed_in_the_same_second_are_both_listed_with_their_own_versions() {
    let sim = sim(B1Config::default()).await;
    sim.set_now(Some(at("2026-07-01 09:30:00")));
    po(&sim, "1");
    po(&sim, "1");
    let refs = poll_all(&client(&sim), &PURCHASE_ORDERS).await;
    assert_eq!(ids(&refs), ["1", "2"]);
    assert_ne!(refs[0].version, refs[1].version);
}

#[tokio::test]
async fn a_document_changed_twice_in_one_day_gets_a_new_version_each_time_and_none_otherwise() {
    let sim = sim(B1Config::default()).await;
    let entry = po(&sim, "1");
    let c = client(&sim);
    let v0 = poll_all(&c, &PURCHASE_ORDERS).await[0].version;
    sim.set_now(Some(at("2026-07-01 10:00:00")));
    sim.change_document(DocKind::PurchaseOrders, entry, |d| {
        d.lines[0].quantity = "2".parse().unwrap()
    });
    let v1 = poll_all(&c, &PURCHASE_ORDERS).await[0].version;
    sim.set_now(Some(at("2026-07-01 11:00:00")));
    sim.change_document(DocKind::PurchaseOrders, entry, |d| {
        d.lines[0].quantity = "3".parse().unwrap()
    });
    let v2 = poll_all(&c, &PURCHASE_ORDERS).await[0].version;
    let again = poll_all(&c, &PURCHASE_ORDERS).await[0].version;
    // The simulator's UpdateTime did not move (unreliable, §4.8.7): only the content did.
    let doc = sim.document(DocKind::PurchaseOrders, entry).unwrap();
    assert_eq!(doc.update_time.to_string(), "09:00:00");
    assert!(v0 != v1 && v1 != v2 && v0 != v2, "{v0:?} {v1:?} {v2:?}");
    assert_eq!(
        v2, again,
        "the same content seen again has the same version"
    );
    match c
        .fetch(DocumentKind::PurchaseOrder, &entry.to_string())
        .await
        .unwrap()
    {
        SourceDocument::PurchaseOrder(p) => assert_eq!(Some(p.version), v2),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn documents_changed_the_day_before_the_window_are_listed_again_and_older_ones_not() {
    let sim = sim(B1Config::default()).await;
    sim.set_now(Some(at("2026-06-29 12:00:00")));
    po(&sim, "1");
    sim.set_now(Some(at("2026-06-30 23:30:00")));
    po(&sim, "1");
    let refs = poll_all(&client(&sim), &PURCHASE_ORDERS).await;
    assert_eq!(ids(&refs), ["2"]);
}

#[tokio::test]
async fn a_foreign_invoice_copied_from_a_po_converts_with_fc_amounts_po_number_and_segments() {
    let sim = sim(B1Config::default()).await;
    let po_entry = po(&sim, "2");
    let inv = sim
        .add_document(
            DocKind::PurchaseInvoices,
            NewDocument::for_supplier("V10000")
                .num_at_card("INV-77")
                .currency("EUR", "1.10")
                .line(
                    DocLine::item("A100", "Paper", "2", "50.00", "19.00")
                        .tax_code("V19")
                        .costing(&["SALES", "", "NORTH"])
                        .from_po(po_entry, 0),
                ),
        )
        .unwrap();
    let c = client(&sim);
    let refs = poll_all(&c, &INVOICES).await;
    assert_eq!(ids(&refs), [inv.to_string()]);
    let SourceDocument::Invoice(i) = c
        .fetch(DocumentKind::Invoice, &inv.to_string())
        .await
        .unwrap()
    else {
        panic!("an invoice")
    };
    let po_num = sim
        .document(DocKind::PurchaseOrders, po_entry)
        .unwrap()
        .doc_num;
    assert_eq!(i.number, "INV-77");
    assert_eq!(i.supplier.number.as_deref(), Some("V10000"));
    assert_eq!(
        (i.total.amount.to_string(), i.total.currency.code()),
        ("119".into(), "EUR")
    );
    let l = &i.lines[0];
    assert_eq!(l.po_number, Some(po_num.to_string()));
    assert_eq!(l.po_line_num, Some(1));
    assert_eq!(l.amount.to_string(), "100");
    assert_eq!(l.tax[0].amount.to_string(), "19");
    assert_eq!(l.tax[0].code.as_deref(), Some("V19"));
    assert_eq!(
        l.account.segments,
        [Some("SALES".to_string()), None, Some("NORTH".to_string())]
    );
    assert!(matches!(&l.kind, LineKind::Item { item_number, .. } if item_number == "A100"));
    assert!(i.readiness.is_ready());
}

#[tokio::test]
async fn a_cancelled_po_converts_as_cancelled_and_a_reversed_invoice_is_not_ready() {
    let sim = sim(B1Config::default()).await;
    let entry = po(&sim, "1");
    sim.document_action(
        DocKind::PurchaseOrders,
        entry,
        "Cancel",
        at("2026-07-01 09:10:00"),
    )
    .unwrap();
    let inv = sim
        .add_document(
            DocKind::PurchaseInvoices,
            NewDocument::for_supplier("V10000")
                .num_at_card("INV-1")
                .line(DocLine::item("A", "x", "1", "5", "0")),
        )
        .unwrap();
    sim.document_action(
        DocKind::PurchaseInvoices,
        inv,
        "CreateCancellationDocument",
        at("2026-07-01 09:20:00"),
    )
    .unwrap();
    let c = client(&sim);
    match c
        .fetch(DocumentKind::PurchaseOrder, &entry.to_string())
        .await
        .unwrap()
    {
        SourceDocument::PurchaseOrder(p) => assert_eq!(p.status, "cancelled"),
        other => panic!("{other:?}"),
    }
    for id in ids(&poll_all(&c, &INVOICES).await) {
        match c.fetch(DocumentKind::Invoice, &id).await.unwrap() {
            SourceDocument::Invoice(i) => assert!(!i.readiness.is_ready(), "{id}"),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn an_invoice_without_the_supplier_invoice_number_is_unreadable_with_why() {
    let sim = sim(B1Config::default()).await;
    let inv = sim
        .add_document(
            DocKind::PurchaseInvoices,
            NewDocument::for_supplier("V10000").line(DocLine::item("A", "x", "1", "5", "0")),
        )
        .unwrap();
    match client(&sim)
        .fetch(DocumentKind::Invoice, &inv.to_string())
        .await
        .unwrap()
    {
        SourceDocument::Unreadable { reason, number } => {
            assert!(reason.contains("NumAtCard"), "{reason}");
            assert!(number.is_some());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_document_is_not_found_with_b1s_message() {
    let sim = sim(B1Config::default()).await;
    match client(&sim)
        .fetch(DocumentKind::PurchaseOrder, "99")
        .await
        .unwrap_err()
    {
        SystemError::NotFound(m) => assert!(m.contains("-2028"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn suppliers_are_the_supplier_business_partners_only() {
    let sim = sim(B1Config::default()).await;
    let c = client(&sim);
    sim.add_partner(NewPartner {
        card_type: "cCustomer".into(),
        ..NewPartner::supplier("C20000", "A customer")
    });
    let refs = poll_all(&c, &SUPPLIERS).await;
    assert_eq!(ids(&refs), ["V10000"]);
    match c.fetch(DocumentKind::Supplier, "V10000").await.unwrap() {
        SourceDocument::Supplier(s) => assert_eq!(
            (s.name.as_str(), s.number.as_deref()),
            ("Maxi-Teq", Some("V10000"))
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_sap_b1_system_is_its_own_root_and_port_with_a_password_secret_and_tls_opt_in_off() {
    let cfg = mlc_shared::config::Config::parse(
        r#"
[systems.b1]
type = "sap_b1"
service_root = "https://b1.example.com:50000/b1s/v2"
company_db = "SBODEMOUS"
user_name = "manager"
password = "b1-password"
"#,
    )
    .unwrap();
    match cfg.systems.get("b1").unwrap() {
        mlc_shared::config::SystemConfig::SapB1(b) => {
            assert_eq!(b.session_expiry_codes, [301, -5002]);
            assert!(!b.accept_self_signed_tls);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_service_root_without_host_and_protocol_root_is_refused() {
    let settings = |root: &str| B1Settings {
        service_root: root.into(),
        company_db: "X".into(),
        user_name: "u".into(),
        password: SecretString::new("p"),
        expiry_codes: vec![301],
        page_size: 20,
        currencies: BTreeMap::new(),
        http: HttpSettings::default(),
    };
    assert!(B1Client::new(settings("b1.example.com:50000")).is_err());
    assert!(B1Client::new(settings("https://b1.example.com:50000/")).is_err());
    assert!(B1Client::new(settings("https://b1.example.com:50000/b1s/v1")).is_ok());
}

#[tokio::test]
async fn a_partner_written_through_the_writer_is_created_once_then_only_its_differences_patched() {
    use mlc_shared::ports::{Change, Writer};
    use mlc_shared::systems::sap_b1::{PartnerToWrite, PartnerWriter};
    let sim = sim(B1Config::default()).await;
    let w = PartnerWriter {
        b1: client(&sim),
        target: "sap_b1:test/SBODEMOUS".into(),
    };
    let p = PartnerToWrite {
        card_code: "V30000".into(),
        card_name: "Contoso Ltd".into(),
        federal_tax_id: Some("GB999".into()),
        unless_changed_from: None,
    };
    assert_eq!(
        w.find(&p, None).await.unwrap(),
        None,
        "a missing partner is none"
    );
    let created = w.create(&p).await.unwrap();
    assert_eq!(created["CardType"], "cSupplier");
    // A second create (a lost answer retried by hand) is a conflict to look up, not a refusal.
    assert!(matches!(
        w.create(&p).await,
        Err(SystemError::Conflict(m)) if m.contains("already assigned")
    ));
    let found = w.find(&p, Some("V30000")).await.unwrap().unwrap();
    let same = w.finish(&p, found, false).await.unwrap();
    assert_eq!(same.change, Change::Unchanged);
    let renamed = PartnerToWrite {
        card_name: "Contoso Group".into(),
        ..p.clone()
    };
    let found = w.find(&renamed, None).await.unwrap().unwrap();
    assert_eq!(
        w.finish(&renamed, found, false).await.unwrap().change,
        Change::Updated
    );
    let bp = sim.partner("V30000").unwrap();
    assert_eq!(
        (bp.card_name.as_str(), bp.federal_tax_id.as_deref()),
        ("Contoso Group", Some("GB999"))
    );
    let patches: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 1, "only the rename was sent");
}

#[tokio::test]
async fn a_customer_with_the_code_is_never_turned_into_a_supplier() {
    use mlc_shared::ports::Writer;
    use mlc_shared::systems::sap_b1::{PartnerToWrite, PartnerWriter};
    let sim = sim(B1Config::default()).await;
    sim.add_partner(NewPartner {
        card_type: "cCustomer".into(),
        ..NewPartner::supplier("C1", "Retail Customer")
    });
    let w = PartnerWriter {
        b1: client(&sim),
        target: "sap_b1:test/SBODEMOUS".into(),
    };
    let p = PartnerToWrite {
        card_code: "C1".into(),
        card_name: "Supplier Name".into(),
        federal_tax_id: None,
        unless_changed_from: None,
    };
    let found = w.find(&p, None).await.unwrap().unwrap();
    assert!(matches!(
        w.finish(&p, found, false).await,
        Err(SystemError::Rejected { message, .. }) if message.contains("customer")
    ));
    assert_eq!(sim.partner("C1").unwrap().card_name, "Retail Customer");
}
