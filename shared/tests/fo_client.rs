//! The F&O client against the F&O simulator over real HTTP (d365-fo.md B1–B9): the token's
//! scope and its refresh, 429 storms, F&O's error shape as typed errors, paging, and two legal
//! entities kept apart; the invoice writer's find/finish.

use std::time::Duration;

use mlc_sandbox::fo::{FoConfig, FoSim, seed};
use mlc_sandbox::{FaultKind, FaultRule, sent_inside_announced_waits};
use mlc_shared::model::{Currency, InvoiceKind, Money, ResolvedInvoice, ResolvedLine};
use mlc_shared::ports::{Change, SecretString, SystemError, Writer};
use mlc_shared::systems::dynamics_fo::wire::{NewInvoiceHeader, NewInvoiceLine, Vendor};
use mlc_shared::systems::dynamics_fo::{
    DimensionFormat, FoClient, FoError, FoInvoice, FoInvoiceRecord, FoSettings, InvoiceWriter,
};
use mlc_shared::systems::http::HttpSettings;
use rust_decimal::Decimal;

async fn sim_with(cfg: FoConfig) -> FoSim {
    let sim = FoSim::start(cfg).await.unwrap();
    seed::seed(&sim);
    sim
}

async fn sim() -> FoSim {
    sim_with(FoConfig::default()).await
}

fn client(sim: &FoSim) -> FoClient {
    let cfg = sim.config();
    FoClient::new(FoSettings {
        environment_url: format!("https://{}", cfg.environment_host),
        api_url: Some(sim.base_url()),
        token_url: Some(sim.token_url()),
        tenant: cfg.tenant.clone(),
        client_id: cfg.client_id.clone(),
        client_secret: SecretString::new(cfg.client_secret.clone()),
        budget: FoSettings::default_budget(),
        http: HttpSettings::default(),
    })
    .unwrap()
}

fn header(company: &str, reference: &str, number: &str) -> NewInvoiceHeader {
    NewInvoiceHeader {
        data_area_id: company.into(),
        header_reference: reference.into(),
        invoice_number: number.into(),
        vendor_account: "US-101".into(),
        invoice_account: "US-101".into(),
        invoice_date: "2026-11-30T12:00:00Z".into(),
        currency: if company == "demf" { "EUR" } else { "USD" }.into(),
        description: "test".into(),
    }
}

fn line(company: &str, reference: &str, n: i64, display: &str) -> NewInvoiceLine {
    NewInvoiceLine {
        data_area_id: company.into(),
        header_reference: reference.into(),
        invoice_line_number: n,
        currency: if company == "demf" { "EUR" } else { "USD" }.into(),
        description: format!("line {n}"),
        main_account_display_value: display.into(),
        net_amount: Decimal::new(12345, 2),
    }
}

#[tokio::test]
async fn the_token_is_asked_for_the_environment_scope_once_and_reused() {
    let sim = sim().await;
    let fo = client(&sim);
    let checked = fo.check().await.unwrap();
    assert_eq!(checked, "token ok; legal entities: DEMF, USMF");
    fo.vendor("usmf", "US-101").await.unwrap().unwrap();
    fo.vendor("demf", "DE-001").await.unwrap().unwrap();
    assert_eq!(sim.tokens_issued(), 1);
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_the_call_replayed() {
    let sim = sim().await;
    let fo = client(&sim);
    fo.vendor("usmf", "US-101").await.unwrap().unwrap();
    sim.expire_tokens();
    let v = fo.vendor("usmf", "US-101").await.unwrap().unwrap();
    assert_eq!(v.name, "Fabrikam US");
    assert_eq!(sim.tokens_issued(), 2);
    let statuses: Vec<u16> = sim
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/data/"))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![200, 401, 200]);
}

#[tokio::test]
async fn a_429_storm_is_waited_out_as_the_server_asks() {
    let sim = sim().await;
    let fo = client(&sim);
    fo.check().await.unwrap();
    sim.fail_next(FaultRule::new(
        "GET",
        "/data/VendorsV2",
        3,
        FaultKind::TooManyRequests {
            retry_after: Some(1),
        },
    ));
    let v = fo.vendor("demf", "DE-001").await.unwrap().unwrap();
    assert_eq!(v.name, "Contoso GmbH");
    assert_eq!(sim.throttled_count(), 3);
    let log = sim.requests();
    assert!(
        sent_inside_announced_waits(&log, Duration::from_millis(50)).is_empty(),
        "{log:#?}"
    );
}

#[tokio::test]
async fn a_refused_write_is_a_rejection_in_f_and_o_words() {
    let sim = sim().await;
    let fo = client(&sim);
    fo.create_invoice_header(&header("usmf", "H1", "INV-1"))
        .await
        .unwrap();
    let e = fo
        .create_invoice_line(&line("usmf", "H1", 1, "999999"))
        .await
        .unwrap_err();
    let FoError::WriteRefused { message, duplicate } = &e else {
        panic!("{e:?}");
    };
    assert!(!duplicate);
    assert!(
        message.contains("Main account '999999' does not exist"),
        "{message}"
    );
    match SystemError::from(e) {
        SystemError::Rejected { status, message } => {
            assert_eq!(status, Some(500));
            assert!(
                message.starts_with("Write failed for table row"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_lost_answer_may_have_succeeded_and_is_no_rejection() {
    let sim = sim().await;
    let fo = client(&sim);
    sim.fail_next(FaultRule::new(
        "POST",
        "/data/VendorInvoiceHeaders",
        1,
        FaultKind::LoseResponse,
    ));
    let e = fo
        .create_invoice_header(&header("usmf", "H1", "INV-1"))
        .await
        .unwrap_err();
    assert!(matches!(e, FoError::Http(_)), "{e:?}");
    assert!(SystemError::from(e).may_have_succeeded());
    assert!(fo.invoice_header("usmf", "H1").await.unwrap().is_some());
}

#[tokio::test]
async fn a_taken_key_is_a_conflict() {
    let sim = sim().await;
    let fo = client(&sim);
    fo.create_invoice_header(&header("usmf", "H1", "INV-1"))
        .await
        .unwrap();
    let e = fo
        .create_invoice_header(&header("usmf", "H1", "INV-2"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            FoError::WriteRefused {
                duplicate: true,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(matches!(SystemError::from(e), SystemError::Conflict(_)));
}

#[tokio::test]
async fn a_bad_request_is_a_rejection_naming_the_property() {
    let sim = sim().await;
    let fo = client(&sim);
    let e = fo
        .create::<_, serde_json::Value>(
            "VendorsV2",
            &serde_json::json!({"dataAreaId":"usmf","vendorAccountNumber":"X"}),
        )
        .await
        .unwrap_err();
    let FoError::BadRequest { message } = &e else {
        panic!("{e:?}")
    };
    assert!(message.contains("'vendorAccountNumber'"), "{message}");
}

#[tokio::test]
async fn a_row_without_data_area_id_is_refused_before_it_is_sent() {
    let sim = sim().await;
    let fo = client(&sim);
    let e = fo
        .create_invoice_header(&header("", "H1", "INV-1"))
        .await
        .unwrap_err();
    assert!(matches!(e, FoError::Invalid(_)), "{e:?}");
    assert!(sim.requests().iter().all(|r| r.method != "POST"));
}

#[tokio::test]
async fn paging_follows_next_links_to_the_end() {
    let sim = sim_with(FoConfig {
        max_page_size: 2,
        ..FoConfig::default()
    })
    .await;
    for i in 0..5 {
        sim.add_vendor("demf", &format!("P-{i}"), "v", "EUR");
    }
    let fo = client(&sim);
    let all: Vec<Vendor> = fo
        .list("VendorsV2", "demf", "VendorAccountNumber eq 'P-*'")
        .await
        .unwrap();
    let accounts: Vec<&str> = all
        .iter()
        .map(|v| v.vendor_account_number.as_str())
        .collect();
    assert_eq!(accounts, vec!["P-0", "P-1", "P-2", "P-3", "P-4"]);
    let gets = sim.requests().iter().filter(|r| r.method == "GET").count();
    assert_eq!(gets, 3);
}

#[tokio::test]
async fn two_legal_entities_are_read_and_written_apart() {
    let sim = sim().await;
    let fo = client(&sim);
    // demf is not the integration user's default company (usmf): still found by key and list.
    fo.create_invoice_header(&header("demf", "H1", "INV-1"))
        .await
        .unwrap();
    fo.create_invoice_header(&header("usmf", "H1", "INV-1"))
        .await
        .unwrap();
    let de = fo.invoice_header("demf", "H1").await.unwrap().unwrap();
    assert_eq!(
        (de.data_area_id.as_str(), de.currency.as_str()),
        ("demf", "EUR")
    );
    let us = fo
        .pending_invoices_by_number("usmf", "US-101", "INV-1")
        .await
        .unwrap();
    assert_eq!(us.len(), 1);
    assert_eq!(us[0].data_area_id, "usmf");
    assert!(fo.vendor("usmf", "DE-001").await.unwrap().is_none());
    assert!(fo.vendor("demf", "DE-001").await.unwrap().is_some());
}

fn resolved(lines: usize) -> ResolvedInvoice {
    ResolvedInvoice {
        source_id: "4711".into(),
        version: chrono::Utc::now(),
        kind: InvoiceKind::Invoice,
        vendor_number: "US-101".into(),
        vendor_invoice_number: "INV-4711".into(),
        supplier_name: "Fabrikam".into(),
        invoice_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
        total: Money {
            amount: Decimal::new(100 * lines as i64, 0),
            currency: Currency::new("USD").unwrap(),
        },
        lines: (0..lines)
            .map(|i| ResolvedLine {
                description: format!("line {i}"),
                gl_account: "600100".into(),
                quantity: Decimal::ONE,
                unit_cost: Decimal::new(100, 0),
                dimensions: vec![("CostCenter".into(), "OU_1".into())],
            })
            .collect(),
    }
}

fn format() -> DimensionFormat {
    DimensionFormat {
        delimiter: '-',
        ledger: seed::LEDGER_FORMAT.iter().map(|s| s.to_string()).collect(),
    }
}

#[tokio::test]
async fn the_writer_finishes_a_half_written_invoice_by_adding_only_missing_lines() {
    let sim = sim().await;
    let fo = client(&sim);
    let inv = FoInvoice::from_resolved(&resolved(3), "CPA", "usmf", &format()).unwrap();
    let writer = InvoiceWriter::new(fo.clone(), "USMF");
    let record = writer.create(&inv).await.unwrap();
    // An earlier attempt got one line in before it stopped.
    fo.create_invoice_line(&line("usmf", &inv.header_reference, 1, "600100--OU_1"))
        .await
        .unwrap();
    let found = writer.find(&inv, None).await.unwrap().unwrap();
    assert_eq!(found, record);
    let written = writer.finish(&inv, found, false).await.unwrap();
    assert_eq!(written.change, Change::Created);
    let pending = sim.pending_invoices();
    assert_eq!(pending.len(), 1);
    let numbers: Vec<i64> = pending[0].lines.iter().map(|l| l.number).collect();
    assert_eq!(numbers, vec![1, 2, 3]);
    // Line 1 is the earlier attempt's (123.45), never replaced.
    assert_eq!(pending[0].lines[0].net_amount, Decimal::new(12345, 2));
    // F&O fills the missing trailing segment (B5).
    assert_eq!(pending[0].lines[1].main_account_display, "600100--OU_1-");
    let again = writer.finish(&inv, writer.find(&inv, None).await.unwrap().unwrap(), false);
    assert_eq!(again.await.unwrap().change, Change::Unchanged);
}

#[tokio::test]
async fn the_writer_finds_a_posted_invoice_and_leaves_it_alone() {
    let sim = sim().await;
    let fo = client(&sim);
    let inv = FoInvoice::from_resolved(&resolved(1), "CPA", "usmf", &format()).unwrap();
    let writer = InvoiceWriter::new(fo, "usmf");
    let record = writer.create(&inv).await.unwrap();
    writer.finish(&inv, record, true).await.unwrap();
    let voucher = sim.post_invoice("usmf", &inv.header_reference).unwrap();
    let found = writer
        .find(&inv, Some(&inv.header_reference))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(found, FoInvoiceRecord::Posted(_)), "{found:?}");
    let written = writer.finish(&inv, found, false).await.unwrap();
    assert_eq!(written.change, Change::AlreadyDone);
    assert_eq!(written.number, voucher);
    assert_eq!(sim.posted_invoices().len(), 1);
}

#[tokio::test]
async fn the_writer_targets_one_legal_entity_of_one_environment() {
    let sim = sim().await;
    let writer = InvoiceWriter::new(client(&sim), "DEMF");
    assert_eq!(
        writer.target(),
        "dynamics_fo:mlc-sandbox.operations.dynamics.com/demf"
    );
}

#[tokio::test]
async fn the_vendor_writer_renames_with_the_entity_tag_and_a_stale_tag_is_a_conflict() {
    use mlc_shared::systems::dynamics_fo::{FoVendor, VendorWriter};
    let sim = sim().await;
    let fo = client(&sim);
    let writer = VendorWriter::new(fo.clone(), "demf");
    let v = FoVendor {
        supplier_source_id: "9".into(),
        mapping_key: "SUP-9".into(),
        legal_entity: "demf".into(),
        account: "DE-001".into(),
        name: "Contoso GmbH & Co. KG".into(),
    };
    let found = writer.find(&v, None).await.unwrap().unwrap();
    // Someone edits the vendor in F&O after it was read: the tag read is stale now.
    fo.rename_vendor("demf", "DE-001", "Contoso (edited)", None)
        .await
        .unwrap();
    let e = writer.finish(&v, found, false).await.unwrap_err();
    assert!(matches!(e, SystemError::Conflict(_)), "{e:?}");
    // Read again and decide again: the rename goes through with the current tag.
    let again = writer.find(&v, None).await.unwrap().unwrap();
    let written = writer.finish(&v, again, false).await.unwrap();
    assert_eq!(written.change, Change::Updated);
    let now = fo.vendor("demf", "DE-001").await.unwrap().unwrap();
    assert_eq!(now.name, "Contoso GmbH & Co. KG");
    let if_match: Vec<String> = sim
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .filter_map(|r| r.if_match.clone())
        .collect();
    assert_eq!(if_match.len(), 3, "{if_match:?}");
    assert_eq!(if_match[0], "*");
    assert!(if_match[1].starts_with("W/\""), "{if_match:?}");
}

#[tokio::test]
async fn the_writer_refuses_a_header_reference_taken_by_another_invoice() {
    let sim = sim().await;
    let fo = client(&sim);
    let inv = FoInvoice::from_resolved(&resolved(1), "CPA", "usmf", &format()).unwrap();
    fo.create_invoice_header(&header("usmf", &inv.header_reference, "OTHER-1"))
        .await
        .unwrap();
    let writer = InvoiceWriter::new(fo, "usmf");
    let e = writer.find(&inv, None).await.unwrap_err();
    let SystemError::Rejected { message, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(message.contains("is taken by invoice OTHER-1"), "{message}");
}
