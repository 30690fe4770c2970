//! The Basware client against the running Basware simulator over real HTTP (basware.md §3):
//! the redirect followed without credentials, continuation paging, acknowledge repeats, 429,
//! token lifetime, and the source port's conversion.

use std::time::Duration;

use mlc_sandbox::basware::{BASWARE_SCOPE, BaswareConfig, BaswareSim, NewCodingRow, NewDocument};
use mlc_sandbox::{FaultKind, FaultRule};
use mlc_shared::model::{DocumentKind, InvoiceKind};
use mlc_shared::ports::{SecretString, Source, SourceDocument};
use mlc_shared::systems::basware::{
    ACCOUNTING_DOCUMENTS, Acknowledged, BaswareClient, BaswareSettings, BaswareSource, PaymentSent,
    wire,
};
use mlc_shared::systems::http::HttpSettings;
use rust_decimal::Decimal;

async fn sim() -> BaswareSim {
    sim_with(BaswareConfig::default()).await
}

async fn sim_with(cfg: BaswareConfig) -> BaswareSim {
    BaswareSim::start(cfg).await.unwrap()
}

fn client_paged(sim: &BaswareSim, page_size: u32) -> BaswareClient {
    let cfg = sim.config();
    BaswareClient::new(BaswareSettings {
        base_url: sim.base_url(),
        token_url: sim.token_url(),
        client_id: cfg.client_id.clone(),
        client_secret: SecretString::new(cfg.client_secret.clone()),
        scopes: BASWARE_SCOPE.split_whitespace().map(String::from).collect(),
        page_size,
        requests_per_second: 1000,
        http: HttpSettings::default(),
    })
    .unwrap()
}

fn client(sim: &BaswareSim) -> BaswareClient {
    client_paged(sim, 100)
}

fn invoice(n: &str) -> NewDocument {
    NewDocument::invoice(n, "V10000").coding_row(NewCodingRow::new("6100", "100.00"))
}

async fn all_ids(c: &BaswareClient) -> Vec<String> {
    let mut ids = Vec::new();
    let mut token = None;
    loop {
        let page = c.waiting_page(token.as_deref()).await.unwrap();
        ids.extend(page.documents.into_iter().map(|d| d.unwrap().invoice_id));
        match page.continuation {
            Some(t) => token = Some(t),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn the_list_redirect_is_followed_without_authorization() {
    let sim = sim().await;
    let id = sim.add_document(invoice("INV-1"));
    let page = client(&sim).waiting_page(None).await.unwrap();
    assert_eq!(page.documents.len(), 1);
    assert_eq!(page.documents[0].as_ref().unwrap().invoice_id, id);
    let log = sim.requests();
    let list = log
        .iter()
        .find(|r| r.path == "/v1/accountingDocuments")
        .unwrap();
    assert_eq!((list.status, list.had_bearer), (302, true));
    let object = log
        .iter()
        .find(|r| r.path.starts_with("/_exports/"))
        .unwrap();
    assert_eq!((object.status, object.had_bearer), (200, false));
}

#[tokio::test]
async fn an_empty_list_is_an_empty_page() {
    let sim = sim().await;
    let page = client(&sim).waiting_page(None).await.unwrap();
    assert!(page.documents.is_empty());
    assert_eq!(page.continuation, None);
}

#[tokio::test]
async fn continuation_paging_sees_a_document_added_mid_read_with_the_same_query() {
    let sim = sim().await;
    let mut expected: Vec<String> = (1..=3)
        .map(|i| sim.add_document(invoice(&format!("INV-{i}"))))
        .collect();
    let c = client_paged(&sim, 2);
    let first = c.waiting_page(None).await.unwrap();
    assert_eq!(first.documents.len(), 2);
    expected.push(sim.add_document(invoice("INV-4")));
    let second = c.waiting_page(first.continuation.as_deref()).await.unwrap();
    let mut seen: Vec<String> = first
        .documents
        .into_iter()
        .chain(second.documents)
        .map(|d| d.unwrap().invoice_id)
        .collect();
    assert_eq!(second.continuation, None);
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected);
    let queries: Vec<String> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/accountingDocuments")
        .map(|r| r.query)
        .collect();
    assert_eq!(queries.len(), 2);
    assert_eq!(
        queries[0], queries[1],
        "identical query parameters on every page"
    );
}

#[tokio::test]
async fn a_repeated_acknowledge_is_already_acknowledged_not_an_error() {
    let sim = sim().await;
    let id = sim.add_document(invoice("INV-1"));
    let c = client(&sim);
    assert_eq!(c.acknowledge(&id).await.unwrap(), Acknowledged::Now);
    assert_eq!(c.acknowledge(&id).await.unwrap(), Acknowledged::Already);
    let doc = sim.document(&id).unwrap();
    assert_eq!(
        (doc.processing_status.as_str(), doc.acknowledges),
        ("TransferInProgress", 1)
    );
}

#[tokio::test]
async fn acknowledging_an_unknown_document_is_not_found() {
    let sim = sim().await;
    let e = client(&sim).acknowledge("nope").await.unwrap_err();
    let e: mlc_shared::ports::SystemError = e.into();
    assert!(
        matches!(e, mlc_shared::ports::SystemError::NotFound(_)),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_and_the_read_succeeds() {
    let sim = sim().await;
    sim.add_document(invoice("INV-1"));
    sim.fail_next(FaultRule::new(
        "GET",
        "/v1/accountingDocuments",
        1,
        FaultKind::TooManyRequests {
            retry_after: Some(1),
        },
    ));
    let c = client(&sim);
    let page = c.waiting_page(None).await.unwrap();
    assert_eq!(page.documents.len(), 1);
    let lists: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/accountingDocuments")
        .collect();
    assert_eq!(lists[0].status, 429);
    assert_eq!(lists[1].status, 302);
    assert!(lists[1].at - lists[0].answered_at() >= chrono::Duration::milliseconds(950));
    assert!(
        mlc_sandbox::sent_inside_announced_waits(&sim.requests(), Duration::from_millis(50))
            .is_empty()
    );
}

#[tokio::test]
async fn the_token_is_replaced_before_expires_in_seconds_run_out() {
    let sim = sim_with(BaswareConfig {
        token_ttl_secs: 2,
        ..BaswareConfig::default()
    })
    .await;
    let c = client(&sim);
    c.waiting_page(None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    c.waiting_page(None).await.unwrap();
    assert_eq!(sim.tokens_issued(), 2, "refreshed before expiry");
    assert!(sim.requests().iter().all(|r| r.status != 401));
}

#[tokio::test]
async fn a_repeated_payment_response_is_already_sent() {
    let sim = sim().await;
    let id = sim.add_document(invoice("INV-1"));
    let c = client(&sim);
    c.acknowledge(&id).await.unwrap();
    c.send_transfer_response(
        &id,
        &wire::TransferResponse {
            external_code: "t1".into(),
            success: true,
            response_message: "Posted".into(),
            payment_block: false,
            source_system: Some("BC".into()),
            voucher_number1: Some("PPI-1".into()),
            transfer_date: None,
        },
    )
    .await
    .unwrap();
    let pay = wire::PaymentResponse {
        external_code: "p1".into(),
        success: true,
        payment_block: false,
        response_message: "Paid".into(),
        source_system: "BC".into(),
        payment_date: "2026-12-01T00:00:00Z".into(),
        paid_total: "100.00".parse().unwrap(),
        payment_number: "PAY-1".into(),
    };
    assert_eq!(
        c.send_payment_response(&id, &pay).await.unwrap(),
        PaymentSent::Now
    );
    assert_eq!(
        c.send_payment_response(&id, &pay).await.unwrap(),
        PaymentSent::Already
    );
    let responses = c.responses(&id).await.unwrap();
    assert_eq!(responses.processing_status.as_deref(), Some("Transferred"));
    assert_eq!(
        responses.transfer_responses[0].voucher_number1.as_deref(),
        Some("PPI-1")
    );
}

#[tokio::test]
async fn the_source_feed_lists_every_page_and_fetches_a_credit_note_with_negative_amounts() {
    let sim = sim().await;
    let inv = sim.add_document(invoice("INV-1"));
    let cn = sim.add_document(
        NewDocument::credit_note("CN-1", "V10000")
            .coding_row(NewCodingRow::new("6100", "40.10").cost_center("CC1"))
            .coding_row(NewCodingRow::new("6200", "9.90").cost_center("CC2")),
    );
    let source = BaswareSource {
        client: client_paged(&sim, 1),
        credit_note_types: Vec::new(),
    };
    let first = source
        .page(&ACCOUNTING_DOCUMENTS, None, None)
        .await
        .unwrap();
    let second = source
        .page(&ACCOUNTING_DOCUMENTS, None, first.next.as_deref())
        .await
        .unwrap();
    assert_eq!(first.refs[0].id, inv);
    assert_eq!(second.refs[0].id, cn);
    assert_eq!(second.next, None);
    let SourceDocument::Invoice(doc) = source.fetch(DocumentKind::Invoice, &cn).await.unwrap()
    else {
        panic!("an invoice");
    };
    assert_eq!(doc.kind, InvoiceKind::CreditNote);
    assert_eq!(doc.total.amount, "-50".parse::<Decimal>().unwrap());
    assert_eq!(doc.lines[0].amount, "-40.1".parse::<Decimal>().unwrap());
    assert_eq!(doc.lines[1].coding[0].dimensions[0].1, "CC2");
    source
        .acknowledge(DocumentKind::Invoice, &cn)
        .await
        .unwrap();
    source
        .acknowledge(DocumentKind::Invoice, &cn)
        .await
        .unwrap();
    assert_eq!(sim.document(&cn).unwrap().acknowledges, 1);
    let all = all_ids(&client(&sim)).await;
    assert_eq!(all, vec![inv]);
}

#[tokio::test]
async fn a_token_revoked_early_is_replaced_once_and_the_read_replayed() {
    let sim = sim().await;
    sim.add_document(invoice("INV-1"));
    let c = client(&sim);
    c.waiting_page(None).await.unwrap();
    sim.expire_tokens();
    let page = c.waiting_page(None).await.unwrap();
    assert_eq!(page.documents.len(), 1);
    assert_eq!(sim.tokens_issued(), 2);
    let refused = sim.requests().iter().filter(|r| r.status == 401).count();
    assert_eq!(refused, 1, "one refusal, then the fresh token");
}

#[tokio::test]
async fn the_token_request_uses_basic_auth_and_the_configured_scope() {
    let sim = sim().await;
    let cfg = sim.config();
    // Only the scope this client asks for: reading documents works, acknowledging is refused.
    let narrow = BaswareClient::new(BaswareSettings {
        base_url: sim.base_url(),
        token_url: sim.token_url(),
        client_id: cfg.client_id.clone(),
        client_secret: SecretString::new(cfg.client_secret.clone()),
        scopes: vec!["accountingDocuments.read".into()],
        page_size: 100,
        requests_per_second: 1000,
        http: HttpSettings::default(),
    })
    .unwrap();
    let id = sim.add_document(invoice("INV-1"));
    assert_eq!(narrow.waiting_page(None).await.unwrap().documents.len(), 1);
    let e: mlc_shared::ports::SystemError = narrow.acknowledge(&id).await.unwrap_err().into();
    assert!(
        matches!(e, mlc_shared::ports::SystemError::Unauthorized(_)),
        "403 is a permission a person must grant: {e:?}"
    );
}

#[tokio::test]
async fn a_redirected_single_read_is_followed_without_credentials_too() {
    let sim = sim_with(BaswareConfig {
        redirect_single: true,
        ..BaswareConfig::default()
    })
    .await;
    let id = sim.add_document(invoice("INV-1"));
    let doc = client(&sim).document(&id).await.unwrap();
    assert_eq!(doc.invoice_number.as_deref(), Some("INV-1"));
    let log = sim.requests();
    let single = log
        .iter()
        .find(|r| r.path == format!("/v1/accountingDocuments/{id}"))
        .unwrap();
    assert_eq!(single.status, 302);
    let object = log
        .iter()
        .find(|r| r.path.starts_with("/_exports/"))
        .unwrap();
    assert_eq!((object.status, object.had_bearer), (200, false));
}
