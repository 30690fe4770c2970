//! The Coupa client against the running Coupa simulator over real HTTP: keyset paging of
//! purchase orders and suppliers, reads, and recording a payment (coupa.md §1.3, §1.7–§1.9).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use mlc_sandbox::coupa::{
    CoupaConfig, CoupaSim, NewInvoice, NewInvoiceLine, NewOrderLine, NewPurchaseOrder, NewSupplier,
};
use mlc_shared::ports::SecretString;
use mlc_shared::systems::coupa::{
    self, CoupaClient, CoupaError, CoupaSettings, DocRef, PAGE_SIZE, PaymentRecord, PollWindow,
};
use mlc_shared::systems::http::HttpSettings;

async fn sim() -> CoupaSim {
    CoupaSim::start(CoupaConfig {
        rate_per_sec: None,
        ..CoupaConfig::default()
    })
    .await
    .unwrap()
}

fn client(sim: &CoupaSim) -> CoupaClient {
    let cfg = sim.config();
    CoupaClient::new(CoupaSettings {
        base_url: sim.base_url(),
        token_url: None,
        client_id: cfg.client_id.clone(),
        client_secret: SecretString::new(cfg.client_secret.clone()),
        scopes: [
            "core.common.read",
            "core.invoice.read",
            "core.invoice.write",
            "core.supplier.read",
            "core.purchase_order.read",
        ]
        .map(String::from)
        .to_vec(),
        api_version: "R40".into(),
        requests_per_second: 1000,
        http: HttpSettings::default(),
    })
    .unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn window(lower: &str, upper: &str) -> PollWindow {
    PollWindow {
        lower: t(lower),
        upper: t(upper),
    }
}

fn supplier(sim: &CoupaSim) -> i64 {
    sim.add_supplier(NewSupplier::new("Fabrikam, Inc.", "SUP-001"))
}

fn po(sim: &CoupaSim, s: i64, n: usize, updated_at: &str) -> i64 {
    let id = sim.add_purchase_order(
        NewPurchaseOrder::issued(s, &format!("PO-{n}")).line(NewOrderLine::qty(
            "Paper",
            "5",
            "12.3456",
            &["6100", "ADM"],
        )),
    );
    sim.set_purchase_order_updated_at(id, DateTime::parse_from_rfc3339(updated_at).unwrap());
    id
}

/// Pages a whole window the way the poll step does: by `id[gt]`, until a short page.
async fn all_purchase_orders(c: &CoupaClient, w: PollWindow) -> (Vec<i64>, usize) {
    let (mut ids, mut pages, mut after) = (Vec::new(), 0, 0);
    loop {
        let (refs, bad) = c.purchase_orders_page(w, after).await.unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        pages += 1;
        ids.extend(refs.iter().map(|r| r.id));
        match refs.last() {
            Some(r) if refs.len() == PAGE_SIZE => after = r.id,
            _ => return (ids, pages),
        }
    }
}

#[tokio::test]
async fn purchase_orders_page_by_key_across_more_than_50_and_skip_drafts() {
    let sim = sim().await;
    let s = supplier(&sim);
    let mut expected: Vec<i64> = (0..120)
        .map(|n| po(&sim, s, n, "2025-01-01T10:00:00Z"))
        .collect();
    sim.set_purchase_order_status(expected[7], "draft");
    sim.set_purchase_order_updated_at(
        expected[7],
        DateTime::parse_from_rfc3339("2025-01-01T10:00:00Z").unwrap(),
    );
    let draft = expected.remove(7);
    let c = client(&sim);
    let (ids, pages) =
        all_purchase_orders(&c, window("2025-01-01T10:00:00Z", "2025-01-01T11:00:00Z")).await;
    assert_eq!(
        ids, expected,
        "every non-draft PO exactly once, in id order"
    );
    assert!(!ids.contains(&draft));
    assert_eq!(pages, 3);
    let lists: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/purchase_orders")
        .collect();
    assert_eq!(lists.len(), 3);
    assert!(
        lists
            .iter()
            .all(|r| r.query.contains("status%5Bnot_eq%5D=draft")
                && r.query.contains("limit=50")
                && !r.query.contains("offset"))
    );
}

#[tokio::test]
async fn purchase_order_cancelled_mid_poll_is_seen_by_the_next_window() {
    let sim = sim().await;
    let s = supplier(&sim);
    let ids: Vec<i64> = (0..60)
        .map(|n| po(&sim, s, n, "2025-01-01T10:00:00Z"))
        .collect();
    let (seen, unseen) = (ids[4], ids[54]);
    // Right after the first page (ids[0..50]) is served, both are cancelled "later".
    sim.after_purchase_order_list_page(
        1,
        Box::new(move |sim| {
            for id in [seen, unseen] {
                sim.set_purchase_order_status(id, "cancelled");
                sim.set_purchase_order_updated_at(
                    id,
                    DateTime::parse_from_rfc3339("2025-01-01T12:00:00Z").unwrap(),
                );
            }
        }),
    );
    let c = client(&sim);
    let (first, _) =
        all_purchase_orders(&c, window("2025-01-01T09:00:00Z", "2025-01-01T11:00:00Z")).await;
    assert!(first.contains(&seen));
    assert!(!first.contains(&unseen), "it left the fixed window");
    // The next poll's window starts at (or overlaps) the previous upper bound.
    let (next, _) =
        all_purchase_orders(&c, window("2025-01-01T11:00:00Z", "2025-01-01T13:00:00Z")).await;
    assert_eq!(next, vec![seen, unseen]);
    for id in next {
        let w = c.purchase_order(id).await.unwrap();
        let po = coupa::purchase_order_from_wire(&w).unwrap();
        assert_eq!(po.status, "cancelled");
        assert_eq!(po.revision, Some(2));
        assert_eq!(po.version, t("2025-01-01T12:00:00Z"));
    }
}

#[tokio::test]
async fn purchase_order_reads_and_converts_with_its_lines() {
    let sim = sim().await;
    let s = supplier(&sim);
    let id = sim.add_purchase_order(
        NewPurchaseOrder::issued(s, "PO-1001")
            .currency("EUR")
            .line(NewOrderLine::qty("Paper", "5", "12.3456", &["6100", "ADM"]))
            .line(NewOrderLine::qty("Consulting", "2.5", "100", &["6200"]).uom("HR")),
    );
    let c = client(&sim);
    let po = coupa::purchase_order_from_wire(&c.purchase_order(id).await.unwrap()).unwrap();
    assert_eq!(po.number, "PO-1001");
    assert_eq!(po.currency.code(), "EUR");
    assert_eq!(po.supplier.source_id, s.to_string());
    assert_eq!(
        po.order_date,
        Some(
            Utc::now()
                .with_timezone(&chrono::FixedOffset::west_opt(7 * 3600).unwrap())
                .date_naive()
        )
    );
    assert_eq!(po.lines.len(), 2);
    assert_eq!(po.lines[0].unit_price.to_string(), "12.3456");
    assert_eq!(po.lines[0].amount.to_string(), "61.73");
    assert_eq!(po.lines[1].uom.as_deref(), Some("HR"));
}

#[tokio::test]
async fn malformed_purchase_order_is_named_in_the_error() {
    let sim = sim().await;
    let s = supplier(&sim);
    let id = po(&sim, s, 1, "2025-01-01T10:00:00Z");
    let c = client(&sim);

    // Unreadable as a PO at all: named by kind and id.
    sim.override_purchase_order_field(id, "version", serde_json::json!("v3"));
    let e = c.purchase_order(id).await.unwrap_err();
    assert!(matches!(
        e,
        CoupaError::Malformed {
            kind: "purchase order",
            ..
        }
    ));
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("Coupa purchase order {id} cannot be read: ")),
        "{msg}"
    );

    // Readable but missing a field the canonical PO needs: the field is named.
    sim.override_purchase_order_field(id, "version", serde_json::json!(3));
    sim.override_purchase_order_field(id, "po-number", serde_json::Value::Null);
    let w = c.purchase_order(id).await.unwrap();
    assert_eq!(
        coupa::purchase_order_from_wire(&w).unwrap_err().to_string(),
        format!("Coupa purchase order {id}: field 'po-number' is missing")
    );

    // In a list page, an unreadable element is reported by id and the rest still come.
    let ok = po(&sim, s, 2, "2025-01-01T10:00:00Z");
    sim.override_purchase_order_field(id, "updated-at", serde_json::json!(5));
    let (refs, bad) = c
        .purchase_orders_page(window("2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"), 0)
        .await
        .unwrap();
    assert_eq!(refs.iter().map(|r| r.id).collect::<Vec<_>>(), vec![ok]);
    assert_eq!(bad.len(), 1);
    assert!(
        bad[0]
            .to_string()
            .starts_with(&format!("Coupa purchase order {id} cannot be read: ")),
        "{}",
        bad[0]
    );
}

#[tokio::test]
async fn suppliers_page_lists_suppliers_updated_in_the_window() {
    let sim = sim().await;
    let ids: Vec<i64> = (0..3)
        .map(|i| sim.add_supplier(NewSupplier::new(&format!("S{i}"), &format!("SUP-{i}"))))
        .collect();
    for (id, at) in ids.iter().zip([
        "2025-01-01T10:00:00Z",
        "2025-01-01T10:00:00Z",
        "2025-01-03T10:00:00Z",
    ]) {
        sim.set_supplier_updated_at(*id, DateTime::parse_from_rfc3339(at).unwrap());
    }
    sim.set_supplier_tax_id(ids[1], Some("DE123456789"));
    sim.set_supplier_updated_at(
        ids[1],
        DateTime::parse_from_rfc3339("2025-01-01T10:00:00Z").unwrap(),
    );
    let c = client(&sim);
    let w = window("2025-01-01T10:00:00Z", "2025-01-02T00:00:00Z");
    let (refs, bad) = c.suppliers_page(w, 0).await.unwrap();
    assert!(bad.is_empty());
    assert_eq!(
        refs,
        vec![
            DocRef {
                id: ids[0],
                updated_at: Some(t("2025-01-01T10:00:00Z"))
            },
            DocRef {
                id: ids[1],
                updated_at: Some(t("2025-01-01T10:00:00Z"))
            },
        ]
    );
    let (after_first, _) = c.suppliers_page(w, ids[0]).await.unwrap();
    assert_eq!(
        after_first.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[1]]
    );
    let s = coupa::supplier_from_wire(&c.supplier(ids[1]).await.unwrap()).unwrap();
    assert_eq!(s.number.as_deref(), Some("SUP-1"));
    assert_eq!(s.tax_id.as_deref(), Some("DE123456789"));
}

#[tokio::test]
async fn record_payment_appends_one_payment_that_has_payment_reference_sees() {
    let sim = sim().await;
    let s = supplier(&sim);
    let id = sim.add_invoice(NewInvoice::approved(s, "INV-1").line(NewInvoiceLine::qty(
        "Paper",
        "3",
        "12.3456",
        &["6100"],
    )));
    let c = client(&sim);
    let before = c.invoice(id).await.unwrap();
    assert!(!before.has_payment_reference("BC-PAY-1"));
    let p = PaymentRecord {
        reference: "BC-PAY-1".into(),
        amount: "37.04".parse().unwrap(),
        date: NaiveDate::from_ymd_opt(2025, 1, 20).unwrap(),
    };
    let after = c.record_payment(id, &p).await.unwrap();
    assert_eq!(after.paid, Some(true));
    assert_eq!(after.payment_date.as_deref(), Some("2025-01-20"));
    let payments = after.payments.clone().unwrap();
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0].amount_paid.unwrap().to_string(), "37.04");
    assert_eq!(payments[0].payment_date.as_deref(), Some("2025-01-20"));
    assert!(after.has_payment_reference("BC-PAY-1"));
    let reread = c.invoice(id).await.unwrap();
    assert!(reread.has_payment_reference("BC-PAY-1"));
    assert!(!reread.has_payment_reference("BC-PAY-2"));
    // Amounts travel as decimal strings (§1.4), never JSON numbers.
    let raw = sim.invoice_json(id).unwrap();
    assert_eq!(raw["payments"][0]["amount-paid"], "37.04");
    let puts = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .count();
    assert_eq!(puts, 1);
}

#[tokio::test]
async fn invoice_line_against_a_po_line_converts_with_po_number_and_line() {
    let sim = sim().await;
    let s = supplier(&sim);
    po(&sim, s, 1001, "2025-01-01T10:00:00Z");
    let id = sim
        .add_invoice(NewInvoice::approved(s, "INV-1").line(
            NewInvoiceLine::qty("Paper", "5", "12.3456", &["6100"]).against_po("PO-1001", 1),
        ));
    let inv = coupa::invoice_from_wire(&client(&sim).invoice(id).await.unwrap()).unwrap();
    assert_eq!(inv.lines[0].po_number.as_deref(), Some("PO-1001"));
    assert_eq!(inv.lines[0].po_line_num, Some(1));
}

#[tokio::test]
async fn credit_note_from_the_simulator_converts_with_negative_amounts() {
    let sim = sim().await;
    let s = supplier(&sim);
    let id = sim.add_invoice(NewInvoice::credit_note(s, "CN-1").line(NewInvoiceLine::qty(
        "Return",
        "3",
        "12.3456",
        &["6100"],
    )));
    let inv = coupa::invoice_from_wire(&client(&sim).invoice(id).await.unwrap()).unwrap();
    assert_eq!(inv.kind, mlc_shared::model::InvoiceKind::CreditNote);
    assert_eq!(inv.total.amount.to_string(), "-37.04");
    assert_eq!(inv.lines[0].amount.to_string(), "-37.04");
    assert_eq!(inv.lines[0].unit_price.to_string(), "-12.3456");
}

#[tokio::test]
async fn approved_invoices_page_keeps_its_behaviour() {
    let sim = sim().await;
    let s = supplier(&sim);
    let a = sim.add_invoice(NewInvoice::approved(s, "A").line(NewInvoiceLine::amount(
        "x",
        "10",
        &["6100"],
    )));
    let b = sim.add_invoice(NewInvoice::approved(s, "B").line(NewInvoiceLine::amount(
        "x",
        "10",
        &["6100"],
    )));
    sim.set_invoice_status(b, "pending_approval");
    let now = Utc::now();
    let w = PollWindow {
        lower: now - Duration::hours(1),
        upper: now + Duration::hours(1),
    };
    let (refs, bad) = client(&sim).approved_invoices_page(w, 0).await.unwrap();
    assert!(bad.is_empty());
    assert_eq!(refs.iter().map(|r| r.id).collect::<Vec<_>>(), vec![a]);
    let list = sim
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/invoices")
        .unwrap();
    let q = &list.query;
    assert!(
        q.starts_with("status=approved&updated-at%5Bgt_or_eq%5D="),
        "{q}"
    );
}
