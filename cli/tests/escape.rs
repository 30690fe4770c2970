//! Text from elsewhere reaches the operator as data, never as instructions (issue 17, item 3):
//! an escape sequence or a line break in a source document's number cannot drive the terminal
//! or forge a row of `mlc audit`, a supplier named like a formula reaches the spreadsheet of
//! `mlc audit --csv` as text, `--json` keeps the exact text, and a proxy's HTML error page is
//! one short line in `mlc check` and in the audit trail.

mod common;

use common::{Deployment, deployment, mlc, text};

use mlc_sandbox::coupa::{NewInvoice, NewInvoiceLine, NewSupplier};
use mlc_sandbox::{FaultKind, FaultRule};

impl Deployment {
    fn mlc(&self, args: &[&str]) -> std::process::Output {
        let mut all = args.to_vec();
        all.extend(["-c", "mlc.toml"]);
        mlc(self.dir.path(), &all, None)
    }

    fn audit_json(&self, extra: &[&str]) -> Vec<serde_json::Value> {
        let mut args = vec!["audit", "--history", "--json", "--limit", "100000"];
        args.extend(extra);
        let o = self.mlc(&args);
        assert!(o.status.success(), "{}", text(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }
}

/// An OSC 8 hyperlink (the terminal shows "x", the link goes elsewhere) and a line break that
/// would start a forged row; 35 characters, the most Business Central takes.
const NUMBER: &str = "E1\u{1b}]8;;http://e.vil/\u{7}x\u{1b}]8;;\u{7}\nforged";
const SUPPLIER: &str = "=HYPERLINK(\"http://evil.example/\",\"Acme\")";

fn line() -> NewInvoiceLine {
    NewInvoiceLine::qty(
        "Cloud hosting, monthly",
        "1",
        "1200.00",
        &["6200", "SALES", "P-200"],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_escape_sequence_and_a_formula_in_source_data_reach_nobody_as_such() {
    let d = deployment().await;
    let evil = d.coupa.add_supplier(NewSupplier::new(SUPPLIER, "SUP-EVIL"));
    d.coupa
        .add_invoice(NewInvoice::approved(evil, NUMBER).line(line()));
    // Mapped to a Business Central vendor, so the name reaches the vendor column.
    std::fs::write(
        d.dir.path().join("map.csv"),
        "kind,source,target\nsupplier,SUP-EVIL,V10000\n",
    )
    .unwrap();
    let o = d.mlc(&["map", "import", "map.csv", "--integration", "coupa-bc"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = d.mlc(&["run", "--once"]);
    assert!(
        !o.stdout.contains(&0x1b) && !o.stderr.contains(&0x1b),
        "{}",
        text(&o)
    );

    // JSON: the exact text, escaped as JSON escapes it.
    let items = d.audit_json(&[]);
    let ours: Vec<&serde_json::Value> = items
        .iter()
        .filter(|i| i["source_document_number"] == NUMBER)
        .collect();
    assert!(ours.len() >= 2, "{items:#?}");
    assert!(
        items.iter().any(|i| i["vendor"]
            .as_str()
            .is_some_and(|v| v.starts_with(SUPPLIER))),
        "{items:#?}"
    );

    // The table: no control character, one line per audit item.
    let o = d.mlc(&["audit", "--history", "--limit", "100000"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        !out.contains(['\u{1b}', '\u{7}', '\r']),
        "raw control characters reach the terminal:\n{out}"
    );
    assert_eq!(out.lines().count(), items.len() + 2, "a forged row:\n{out}");
    assert!(
        out.contains("E1\\u{1b}]8;;http://e.vil/\\u{7}x\\u{1b}]8;;\\u{7}\\nforged"),
        "{out}"
    );
    for l in out.lines().skip(2) {
        assert!(
            l.len() > 20
                && chrono::NaiveDateTime::parse_from_str(&l[..19], "%Y-%m-%d %H:%M:%S").is_ok(),
            "not an audit row: {l:?}"
        );
    }

    // CSV: the formula is text, the exact invoice number is there (quoted), every row has all
    // its cells, and amounts are still numbers.
    let o = d.mlc(&["audit", "--history", "--csv", "--limit", "100000"]);
    assert!(o.status.success(), "{}", text(&o));
    let mut reader = csv::Reader::from_reader(o.stdout.as_slice());
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (number, vendor, amount) = (col("number"), col("vendor"), col("amount"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), items.len());
    assert!(rows.iter().all(|r| r.len() == headers.len()));
    assert!(
        rows.iter().filter(|r| &r[number] == NUMBER).count() >= 2,
        "{rows:#?}"
    );
    let vendors: Vec<&str> = rows.iter().map(|r| &r[vendor]).collect();
    assert!(
        vendors
            .iter()
            .any(|v| v.starts_with(&format!("'{SUPPLIER}"))),
        "{vendors:#?}"
    );
    assert!(
        !rows
            .iter()
            .flat_map(|r| r.iter())
            .any(|c| c.starts_with(['=', '+', '@'])),
        "a formula cell: {rows:#?}"
    );
    assert!(
        rows.iter().any(|r| r[amount].starts_with('-')),
        "the seeded credit note's negative amount: {rows:#?}"
    );
    for r in &rows {
        let a = &r[amount];
        assert!(
            a.is_empty() || a.parse::<rust_decimal::Decimal>().is_ok(),
            "amount {a:?} is not a number"
        );
    }
}

/// What a proxy or firewall in front of Business Central answers: an HTML page.
const PAGE: &str = "<!DOCTYPE html>\n<html>\n<head><title>403 Forbidden</title>\n\
    <style>body { font-family: sans-serif }</style></head>\n<body>\n<h1>Request blocked</h1>\n\
    <p>Reference #18.\u{1b}[2J5f3c2e17</p>\n<script>location='http://evil.example/'</script>\n\
    </body>\n</html>\n";

fn html(status: u16) -> FaultKind {
    FaultKind::RawBody {
        status,
        content_type: "text/html; charset=utf-8".into(),
        body: PAGE.into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_html_error_page_is_one_short_line_in_check_and_in_the_audit_trail() {
    let d = deployment().await;
    d.bc.fail_next(FaultRule::new("GET", "companies", 1, html(403)));
    let o = d.mlc(&["check"]);
    assert!(!o.status.success());
    let out = text(&o);
    let failed: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("business_central: FAILED"))
        .collect();
    assert_eq!(failed.len(), 1, "{out}");
    assert!(
        failed[0].ends_with(&format!(
            "HTTP 403: HTML page ({} bytes): 403 Forbidden",
            PAGE.len()
        )),
        "{out}"
    );
    assert!(
        !out.contains(['<', '\u{1b}']) && !out.contains("Request blocked"),
        "the page reached the terminal:\n{out}"
    );
    assert!(out.contains("coupa: ok"), "{out}");

    // The first invoice written (whichever it is) meets the page.
    d.bc.fail_next(FaultRule::new("POST", "purchaseInvoices", 1, html(400)));
    let o = d.mlc(&["run", "--once"]);
    assert!(!text(&o).contains(['<', '\u{1b}']), "{}", text(&o));
    let items = d.audit_json(&[]);
    let errors: Vec<&str> = items.iter().filter_map(|i| i["error"].as_str()).collect();
    assert!(
        errors.iter().any(|e| e.contains(&format!(
            "HTTP 400: HTML page ({} bytes): 403 Forbidden",
            PAGE.len()
        ))),
        "{items:#?}"
    );
    assert!(
        errors
            .iter()
            .all(|e| !e.contains(['\n', '<', '\u{1b}']) && e.chars().count() < 600),
        "{errors:#?}"
    );
}
