//! `mlc audit` as finance reads it: each document's state now, the history beside it, kinds,
//! vendors in any case, credit notes negative, and a database it may only read.

mod common;

use common::{Deployment, deployment, mlc, text};
use serde_json::Value;

fn audit(d: &Deployment, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit", "-c", "mlc.toml", "--json", "--limit", "100000"];
    all.extend(args);
    let o = mlc(d.dir.path(), &all, None);
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice::<Value>(&o.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn run_once(d: &Deployment) {
    let o = mlc(d.dir.path(), &["run", "--once", "-c", "mlc.toml"], None);
    assert!(o.status.success(), "{}", text(&o));
}

fn ids(items: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = items
        .iter()
        .map(|i| i["source_id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn status_parked_lists_what_is_parked_now_not_what_was_parked_once() {
    let d = deployment().await;
    run_once(&d);
    let parked = audit(&d, &["--status", "parked"]);
    assert!(!parked.is_empty());
    assert!(parked.iter().all(|i| i["error"].is_string()), "{parked:#?}");

    // The Northwind invoices get their vendor and post.
    d.bc.add_vendor("V90000", "Northwind Traders");
    std::fs::write(
        d.dir.path().join("map.csv"),
        "kind,source,target\nsupplier,SUP-009,V90000\n",
    )
    .unwrap();
    let o = mlc(
        d.dir.path(),
        &[
            "map",
            "import",
            "map.csv",
            "--integration",
            "coupa-bc",
            "-c",
            "mlc.toml",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    run_once(&d);

    let now_parked = audit(&d, &["--status", "parked"]);
    let was_parked = audit(&d, &["--history", "--status", "parked"]);
    assert!(now_parked.len() < parked.len(), "{now_parked:#?}");
    assert_eq!(
        ids(&was_parked),
        ids(&parked),
        "the history keeps every event"
    );
    let posted = audit(&d, &["--status", "posted"]);
    for p in &parked {
        let id = &p["source_id"];
        let still = now_parked.iter().any(|i| i["source_id"] == *id);
        let now_posted = posted.iter().any(|i| i["source_id"] == *id);
        assert!(still != now_posted, "{id}: parked now xor posted now");
    }
    // One row per document, with the BC number of what is posted.
    assert_eq!(ids(&posted).len(), {
        let mut u = ids(&posted);
        u.dedup();
        u.len()
    });
    assert!(
        posted
            .iter()
            .all(|i| i["target_document_number"].is_string())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kind_is_a_column_and_a_filter_and_a_credit_note_is_negative_at_every_step() {
    let d = deployment().await;
    run_once(&d);
    let all = audit(&d, &["--history"]);
    let credit: Vec<&Value> = all
        .iter()
        .filter(|i| i["document_kind"] == "credit_note")
        .collect();
    assert!(!credit.is_empty(), "the demo data holds a credit note");
    assert_eq!(
        audit(&d, &["--history", "--kind", "credit_note"]).len(),
        credit.len()
    );
    let amounts: Vec<&str> = credit.iter().filter_map(|i| i["amount"].as_str()).collect();
    assert!(amounts.len() >= 2, "mapped and posted: {credit:#?}");
    assert!(
        amounts.iter().all(|a| a.starts_with('-')),
        "a credit note shown with both signs: {amounts:?}"
    );

    let o = mlc(d.dir.path(), &["audit", "-c", "mlc.toml"], None);
    let out = text(&o);
    let header = out.lines().next().unwrap();
    assert!(header.contains("kind"), "{out}");
    // Amounts right-aligned: every amount cell ends in the same column as its header.
    let end = header.find("amount").unwrap() + "amount".len();
    for l in out
        .lines()
        .skip(2)
        .filter(|l| l.contains(" EUR") || l.contains(" USD"))
    {
        let cell_end = l.find(" EUR").or_else(|| l.find(" USD")).unwrap() + 4;
        assert_eq!(cell_end, end, "not right-aligned:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn vendor_matches_part_of_the_name_or_the_number_in_any_case() {
    let d = deployment().await;
    run_once(&d);
    let posted = audit(&d, &["--status", "posted"]);
    let vendor = posted[0]["vendor"].as_str().unwrap().to_string();
    // "Name (V10000)": a lower-cased part of the name, and the number.
    let name_part = vendor.split(' ').next().unwrap().to_lowercase();
    let number = vendor
        .rsplit_once('(')
        .unwrap()
        .1
        .trim_end_matches(')')
        .to_lowercase();
    for pattern in [name_part.as_str(), number.as_str()] {
        let found = audit(&d, &["--vendor", pattern]);
        assert!(!found.is_empty(), "{pattern}");
        assert!(
            found.iter().all(|i| i["vendor"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains(pattern)),
            "{pattern}: {found:#?}"
        );
    }
    assert!(audit(&d, &["--vendor", "no such vendor"]).is_empty());
}

/// A database file someone else owns and nobody may write (a copy for an auditor): read by a
/// user who may only read it.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn audit_reads_a_database_it_may_not_write() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let d = deployment().await;
    run_once(&d);
    let copy = tempfile::tempdir().unwrap();
    let db = copy.path().join("copy.sqlite");
    std::fs::copy(d.dir.path().join("mlc.sqlite"), &db).unwrap();
    std::fs::set_permissions(copy.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    let before = std::fs::read(&db).unwrap();

    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mlc"));
    cmd.args(["audit", "--db", db.to_str().unwrap(), "--json"])
        .current_dir(copy.path());
    // As root the file's mode would not stop a write: run as nobody, who can only read it.
    if is_root() {
        cmd.uid(65534).gid(65534);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let items: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert!(!items.is_empty());
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "audit changed the file"
    );
}

#[cfg(unix)]
fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// A failed attempt is recorded under the document's source id only; asked for by its number,
/// the document's history still shows it.
#[tokio::test(flavor = "multi_thread")]
async fn a_document_asked_for_by_its_number_shows_the_failures_recorded_under_its_id() {
    use mlc_sandbox::{FaultKind, FaultRule};
    let d = deployment().await;
    // BC fails the first writes with a 500 (answered, so nothing was written): those
    // attempts fail, are audited, and are tried again.
    d.bc.fail_next(FaultRule::new("POST", "$batch", 6, FaultKind::Status(500)));
    let _ = mlc(d.dir.path(), &["run", "--once", "-c", "mlc.toml"], None);
    let failed = audit(&d, &["--history", "--status", "failed"]);
    assert!(!failed.is_empty(), "no attempt failed");
    let id = failed[0]["source_id"].as_str().unwrap().to_string();
    let number = audit(&d, &["--history", "--document", &id])
        .iter()
        .find_map(|i| i["source_document_number"].as_str().map(str::to_string))
        .expect("the document's number in its history");
    let by_number = audit(&d, &["--history", "--document", &number]);
    assert!(
        by_number.iter().any(|i| i["status"] == "failed"),
        "{number}: {by_number:#?}"
    );
}
