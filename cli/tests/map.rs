//! `mlc map` as finance maintains the mappings: an import is all or nothing, conflicts are
//! refused, a vendor Business Central lacks is warned about, and the list shows what an
//! operator maintains.

mod common;

use common::{Deployment, deployment, mlc, text};

fn map(d: &Deployment, args: &[&str]) -> std::process::Output {
    let mut all = vec!["map"];
    all.extend(args);
    all.extend(["-c", "mlc.toml"]);
    mlc(d.dir.path(), &all, None)
}

fn import(d: &Deployment, csv: &str, extra: &[&str]) -> std::process::Output {
    std::fs::write(d.dir.path().join("map.csv"), csv).unwrap();
    let mut args = vec!["import", "map.csv", "--integration", "coupa-bc"];
    args.extend(extra);
    map(d, &args)
}

fn listed(d: &Deployment, extra: &[&str]) -> String {
    let mut args = vec!["list"];
    args.extend(extra);
    let o = map(d, &args);
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_row_imports_nothing_not_even_the_rows_before_it() {
    let d = deployment().await;
    let o = import(
        &d,
        "kind,source,target\nsupplier,SUP-101,V10000\nvendor,SUP-102,V20000\n",
        &[],
    );
    assert!(!o.status.success());
    let out = text(&o);
    assert!(out.contains("map.csv:3: unknown kind 'vendor'"), "{out}");
    assert!(out.contains("nothing imported"), "{out}");
    assert!(!listed(&d, &[]).contains("SUP-101"));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_rows_mapping_one_supplier_to_different_vendors_are_refused() {
    let d = deployment().await;
    let o = import(
        &d,
        "kind,source,target\nsupplier,SUP-101,V10000\nsupplier,SUP-101,V20000\n",
        &[],
    );
    assert!(!o.status.success());
    let out = text(&o);
    assert!(
        out.contains(
            "map.csv:3: supplier SUP-101 is mapped to V10000 on line 2 and to V20000 here"
        ),
        "{out}"
    );
    assert!(!listed(&d, &[]).contains("SUP-101"));
    // The same row twice is no conflict.
    let o = import(
        &d,
        "kind,source,target\nsupplier,SUP-101,V10000\nsupplier,SUP-101,V10000\n",
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("imported 1 mapping(s)"), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn changing_an_existing_mapping_needs_replace_and_is_listed() {
    let d = deployment().await;
    let o = import(&d, "kind,source,target\nsupplier,SUP-101,V10000\n", &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = import(&d, "kind,source,target\nsupplier,SUP-101,V20000\n", &[]);
    assert!(!o.status.success());
    let out = text(&o);
    assert!(
        out.contains("supplier SUP-101 is mapped to V10000; this row maps it to V20000"),
        "{out}"
    );
    assert!(out.contains("--replace"), "{out}");
    assert!(listed(&d, &[]).contains("SUP-101  V10000"));

    let o = import(
        &d,
        "kind,source,target\nsupplier,SUP-101,V20000\n",
        &["--replace"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("changed: "), "{}", text(&o));
    let list = listed(&d, &[]);
    assert!(list.contains("SUP-101  V20000"), "{list}");
    assert!(!list.contains("SUP-101  V10000"), "{list}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vendor_business_central_does_not_have_is_warned_about() {
    let d = deployment().await;
    let o = import(
        &d,
        "kind,source,target\nsupplier,SUP-101,V10000\nsupplier,SUP-102,V99999\n",
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("imported 2 mapping(s)"), "{out}");
    assert!(
        out.contains("warning: vendor V99999 is not in Business Central"),
        "{out}"
    );
    assert!(!out.contains("V10000 is not"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_list_hides_the_connectors_own_tables_unless_all_is_asked() {
    let d = deployment().await;
    let o = mlc(d.dir.path(), &["run", "--once", "-c", "mlc.toml"], None);
    assert!(o.status.success(), "{}", text(&o));
    let list = listed(&d, &[]);
    assert!(!list.contains("posted_invoice"), "{list}");
    assert!(list.contains("not shown; --all shows them"), "{list}");
    assert!(listed(&d, &["--all"]).contains("coupa-bc/posted_invoice"));
}
