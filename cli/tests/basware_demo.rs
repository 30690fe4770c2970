//! `mlc demo` shows integration 5 (Basware → Business Central): documents posted and answered,
//! a failure response, master data imported, a payment response.

mod common;

use common::{mlc, text};

#[test]
fn demo_shows_basware_documents_responses_master_data_and_a_payment() {
    let dir = tempfile::tempdir().unwrap();
    let o = mlc(dir.path(), &["demo", "--invoices", "4"], None);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let section = |heading: &str| -> Vec<String> {
        let mut lines = out.lines().skip_while(|l| !l.starts_with(heading));
        assert!(lines.next().is_some(), "no section '{heading}' in:\n{out}");
        lines
            .skip_while(|l| !l.starts_with("---"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    };
    // Four invoices and a credit note posted, each answered with its BC number.
    let posted = section("Posted in Business Central and answered to Basware (5)");
    assert_eq!(posted.len(), 5, "{out}");
    assert!(
        posted.iter().all(|l| l.contains("Transferred")),
        "{posted:?}"
    );
    let credit = posted.iter().find(|l| l.starts_with("BW-CN-9001")).unwrap();
    assert!(credit.contains("(credit memo)"), "{credit}");
    // The first invoice is split across two cost centres: two BC lines.
    let split = posted.iter().find(|l| l.starts_with("BW-5001")).unwrap();
    assert!(split.contains("V10000  2 "), "{split}");
    let failed = section("Answered to Basware with a failure (1)");
    assert!(
        failed[0].contains("no Business Central G/L account mapped for accountCode '4999'"),
        "{failed:?}"
    );
    let imports = section("BC master data imported into Basware (4 requests");
    assert_eq!(imports.len(), 4, "{out}");
    assert!(
        imports.iter().all(|l| l.ends_with("AcknowledgedSuccess")),
        "{imports:?}"
    );
    let payments = section("Payment responses sent to Basware");
    assert_eq!(payments.len(), 1, "{out}");
    assert!(payments[0].starts_with("BW-5001"), "{payments:?}");
}
