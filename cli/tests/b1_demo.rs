//! `mlc demo` shows integration 4 (SAP Business One → Coupa): a B1 partner created as a Coupa
//! supplier, B1 purchase orders as Coupa external orders, B1 A/P invoices in Coupa (one against
//! its order), a B1 payment recorded on its Coupa invoice, and an invoice parked with its reason.

mod common;

use common::{mlc, text};

#[test]
fn demo_shows_b1_documents_that_reached_coupa_and_the_parked_one() {
    let dir = tempfile::tempdir().unwrap();
    let o = mlc(dir.path(), &["demo", "--invoices", "2"], None);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let b1 = out
        .split_once("== SAP Business One → Coupa (b1-coupa)")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no B1 → Coupa part in:\n{out}"));
    let section = |heading: &str| -> Vec<String> {
        let mut lines = b1.lines().skip_while(|l| !l.starts_with(heading));
        assert!(lines.next().is_some(), "no section '{heading}' in:\n{out}");
        lines
            .skip_while(|l| !l.starts_with("---"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    };
    let suppliers = section("Suppliers created in Coupa from B1 business partners (1)");
    assert!(
        suppliers[0].starts_with("V20000") && suppliers[0].contains("Northwind GmbH"),
        "{suppliers:?}"
    );
    let orders = section("B1 purchase orders in Coupa as external orders (2)");
    assert_eq!(orders.len(), 2, "{out}");
    assert!(
        orders.iter().all(|l| l.contains("ExternalOrderHeader")),
        "{orders:?}"
    );
    // 40 × 4.25 + 2 × 89.90.
    assert!(
        orders[0].contains("B1-1001") && orders[0].contains("349.80"),
        "{orders:?}"
    );
    let invoices = section("B1 A/P invoices in Coupa (2)");
    assert_eq!(invoices.len(), 2, "{out}");
    // Copied from purchase order 1001: against its Coupa order, 170.00 + 17.00 tax.
    let copied = invoices.iter().find(|l| l.contains("MT-7001")).unwrap();
    assert!(
        copied.contains("187.00") && copied.trim_end().ends_with("B1-1001"),
        "{copied}"
    );
    let payments = section("B1 payments recorded on Coupa invoices (1)");
    assert!(
        payments[0].starts_with("MT-7001") && payments[0].contains("187.00"),
        "{payments:?}"
    );
    assert!(payments[0].contains("B1-VP-"), "{payments:?}");
    let parked = section("Parked, with the reason (1)");
    assert!(
        parked[0].starts_with("invoice")
            && parked[0].contains("no supplier invoice number (NumAtCard)"),
        "{parked:?}"
    );
}
