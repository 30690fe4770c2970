//! `mlc demo` shows integration 3 (SAP Concur → Business Central): invoice payment requests and
//! an expense report posted in BC and confirmed to Concur, the report split into the employee's
//! invoice (personal card charge netted) and the card issuer's, and an unmappable one parked.

mod common;

use common::{mlc, text};

#[test]
fn demo_shows_concur_documents_posted_in_bc_and_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let o = mlc(dir.path(), &["demo", "--invoices", "2"], None);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let concur = out
        .split_once("== SAP Concur → Business Central (concur-bc)")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no Concur → BC part in:\n{out}"));
    let section = |heading: &str| -> Vec<String> {
        let mut lines = concur.lines().skip_while(|l| !l.starts_with(heading));
        assert!(lines.next().is_some(), "no section '{heading}' in:\n{out}");
        lines
            .skip_while(|l| !l.starts_with("---"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    };
    let posted = section("Posted in Business Central and confirmed to Concur (4 BC invoices");
    assert_eq!(posted.len(), 4, "{posted:?}");
    assert!(
        posted
            .iter()
            .all(|l| l.contains("POSTING_CONFIRMED_SUCCESS") && l.trim_end().ends_with("success")),
        "{posted:?}"
    );
    let employee = posted.iter().find(|l| l.contains("E1001")).unwrap();
    assert!(
        employee.contains(" 251 "),
        "300 owed less the 49 personal: {employee}"
    );
    let card = posted.iter().find(|l| l.contains("V-CARD")).unwrap();
    assert!(card.contains(" 459 "), "{card}");
    let parked = section("Acknowledged, parked here (no mapping), no confirmation sent (1)");
    assert!(parked[0].starts_with("CI-9002"), "{parked:?}");
    let paid = section(
        "Payment confirmations sent to Concur after the employee's BC invoice was marked paid (1",
    );
    assert!(
        paid[0].starts_with("RPT-2026-0042") && paid[0].contains("CP") && paid[0].contains("251"),
        "{paid:?}"
    );
    assert!(paid[0].contains("PAYMENT_CONFIRMED_SUCCESS"), "{paid:?}");
}
