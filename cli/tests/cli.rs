//! The `mlc` binary as a user runs it: real process, real files, simulators over HTTP.

mod common;

use common::{deployment, mlc, text};

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_listed_by_name_and_never_printed_or_stored_in_clear() {
    let d = deployment().await;
    let o = mlc(d.dir.path(), &["secrets", "list", "-c", "mlc.toml"], None);
    assert!(o.status.success());
    let out = text(&o);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec![
            "bc-client-secret",
            "coupa-client-secret",
            "coupa-webhook-secret"
        ]
    );
    let bytes = std::fs::read(d.dir.path().join("mlc.secrets")).unwrap();
    let secret = d.bc.config().client_secret.as_bytes().to_vec();
    assert!(
        !bytes.windows(secret.len()).any(|w| w == secret.as_slice()),
        "the secret is in the file in clear"
    );
    let o = mlc(
        d.dir.path(),
        &["secrets", "rm", "bc-client-secret", "-c", "mlc.toml"],
        None,
    );
    assert!(o.status.success());
    let o = mlc(d.dir.path(), &["secrets", "list", "-c", "mlc.toml"], None);
    assert!(!text(&o).contains("bc-client-secret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_each_system_ok_or_its_exact_failure() {
    let d = deployment().await;
    let o = mlc(d.dir.path(), &["check", "-c", "mlc.toml"], None);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("coupa: ok"), "{out}");
    assert!(out.contains("business_central: ok"), "{out}");

    let o = mlc(
        d.dir.path(),
        &["secrets", "set", "bc-client-secret", "-c", "mlc.toml"],
        Some("wrong-secret"),
    );
    assert!(o.status.success());
    let o = mlc(d.dir.path(), &["check", "-c", "mlc.toml"], None);
    let out = text(&o);
    assert!(!o.status.success());
    assert!(out.contains("coupa: ok"), "{out}");
    assert!(out.contains("business_central: FAILED"), "{out}");
    assert!(out.contains("AADSTS7000215"), "{out}");
    assert!(!out.contains("wrong-secret"), "a secret was printed: {out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn run_once_posts_what_is_approved_and_audit_shows_it() {
    let d = deployment().await;
    let o = mlc(d.dir.path(), &["run", "--once", "-c", "mlc.toml"], None);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("posted "), "{out}");
    // Output is a pipe here, as under cron: the poll line is still there.
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("coupa-bc: polled 1 page(s), queued "),
        "{out}"
    );
    let posted_invoices =
        d.bc.purchase_invoices()
            .into_iter()
            .filter(|i| i.status == "Open")
            .count();
    assert!(posted_invoices > 0);
    // Credit notes post as credit memos.
    let posted = posted_invoices
        + d.bc
            .purchase_credit_memos()
            .into_iter()
            .filter(|m| m.status == "Open")
            .count();

    let o = mlc(
        d.dir.path(),
        &["audit", "-c", "mlc.toml", "--status", "posted", "--json"],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    let items: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(items.as_array().unwrap().len(), posted);
    assert!(items[0]["target_document_number"].is_string());

    let o = mlc(
        d.dir.path(),
        &["audit", "-c", "mlc.toml", "--status", "parked"],
        None,
    );
    assert!(
        text(&o).contains("no Business Central vendor mapped"),
        "{}",
        text(&o)
    );
    let o = mlc(
        d.dir.path(),
        &["audit", "-c", "mlc.toml", "--status", "nonsense"],
        None,
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("unknown status 'nonsense'"));
}

/// How many token requests (POST to an OAuth token endpoint) a simulator's log holds.
fn token_requests(log: &[mlc_sandbox::RequestLog]) -> usize {
    log.iter()
        .filter(|r| r.method == "POST" && r.path.contains("/oauth2/"))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_once_reuses_the_tokens_of_the_first_from_the_secrets_file() {
    use mlc_sandbox::coupa::{NewInvoice, NewInvoiceLine};
    use mlc_shared::adapters::embedded::{SecretFile, SecretKey};

    let d = deployment().await;
    let first = mlc(d.dir.path(), &["run", "--once", "-c", "mlc.toml"], None);
    assert!(first.status.success(), "{}", text(&first));
    let (coupa_first, bc_first) = (
        token_requests(&d.coupa.requests()),
        token_requests(&d.bc.requests()),
    );
    assert_eq!(
        (coupa_first, bc_first),
        (1, 1),
        "token requests of the first run"
    );

    // Something to do on the second run, at both systems.
    d.coupa.clear_requests();
    d.bc.clear_requests();
    let supplier = d.coupa.supplier_id_by_number("SUP-001").unwrap();
    d.coupa.add_invoice(
        NewInvoice::approved(supplier, "TOKEN-REUSE-1").line(NewInvoiceLine::qty(
            "Cloud hosting, monthly",
            "1",
            "1200.00",
            &["6200", "SALES", "P-200"],
        )),
    );
    let second = mlc(d.dir.path(), &["run", "--once", "-c", "mlc.toml"], None);
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        d.bc.purchase_invoices()
            .iter()
            .any(|i| i.vendor_invoice_number == "TOKEN-REUSE-1"),
        "the second run did not post"
    );
    let authorised = |log: &[mlc_sandbox::RequestLog]| {
        log.iter()
            .filter(|r| r.had_bearer && r.status < 400)
            .count()
    };
    let (coupa_log, bc_log) = (d.coupa.requests(), d.bc.requests());
    assert!(authorised(&coupa_log) > 0 && authorised(&bc_log) > 0);
    assert_eq!(
        (token_requests(&coupa_log), token_requests(&bc_log)),
        (0, 0),
        "token requests of the second run (Coupa, BC)"
    );

    // The tokens are in the secrets file, encrypted: never in clear, never printed.
    let path = d.dir.path().join("mlc.secrets");
    let file = SecretFile::open(&path, SecretKey::parse(common::KEY).unwrap()).unwrap();
    let cached: Vec<String> = file
        .names()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with("token-cache/"))
        .collect();
    assert_eq!(
        cached,
        ["token-cache/business_central", "token-cache/coupa"],
        "{cached:?}"
    );
    let bytes = std::fs::read(&path).unwrap();
    let printed = format!("{}{}", text(&first), text(&second));
    for name in &cached {
        let entry: serde_json::Value =
            serde_json::from_str(file.read(name).unwrap().expose()).unwrap();
        let token = entry["access_token"].as_str().unwrap().to_string();
        assert!(token.len() >= 16, "{name}: an unexpectedly short token");
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "{name}: the token is in the secrets file in clear"
        );
        assert!(!printed.contains(&token), "{name}: the token was printed");
    }
    // An operator listing the secrets sees what the cache entries are.
    let o = mlc(d.dir.path(), &["secrets", "list", "-c", "mlc.toml"], None);
    assert!(
        text(&o).contains("token-cache/coupa  (cached access token, kept by mlc)"),
        "{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn map_import_adds_the_missing_vendor_and_the_parked_invoice_posts() {
    let d = deployment().await;
    mlc(d.dir.path(), &["run", "--once", "-c", "mlc.toml"], None);
    let before = d.bc.purchase_invoices().len();
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
    let o = mlc(d.dir.path(), &["run", "--once", "-c", "mlc.toml"], None);
    assert!(o.status.success(), "{}", text(&o));
    let northwind =
        d.bc.purchase_invoices()
            .into_iter()
            .filter(|i| i.vendor_number == "V90000")
            .count();
    assert!(
        northwind > 0,
        "the parked Northwind invoices were not posted"
    );
    assert_eq!(d.bc.purchase_invoices().len(), before + northwind);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_mapping_file_is_refused_with_file_and_line() {
    let d = deployment().await;
    std::fs::write(
        d.dir.path().join("bad.csv"),
        "kind,source,target\nvendor,SUP-1,V1\n",
    )
    .unwrap();
    let o = mlc(
        d.dir.path(),
        &[
            "map",
            "import",
            "bad.csv",
            "--integration",
            "coupa-bc",
            "-c",
            "mlc.toml",
        ],
        None,
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("bad.csv:2: unknown kind 'vendor'"),
        "{}",
        text(&o)
    );
}

/// The table rows (after the `---` rule) of the section whose heading starts with `heading`.
fn section<'a>(out: &'a str, heading: &str) -> Vec<&'a str> {
    let mut lines = out.lines().skip_while(|l| !l.starts_with(heading));
    assert!(lines.next().is_some(), "no section '{heading}' in:\n{out}");
    lines
        .skip_while(|l| !l.starts_with("---"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect()
}

#[test]
fn demo_prints_what_moved_and_what_was_parked() {
    let dir = tempfile::tempdir().unwrap();
    let o = mlc(dir.path(), &["demo", "--invoices", "8"], None);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("Moved to Business Central"), "{out}");
    assert!(
        out.contains("no Business Central vendor mapped for Coupa supplier 'Northwind Traders'"),
        "{out}"
    );
    assert!(out.contains("and 1 purchase credit memo(s)"), "{out}");

    // Purchase orders created in BC, with their vendor and lines.
    let orders = section(&out, "Purchase orders created in Business Central (3)");
    assert_eq!(orders.len(), 3, "{out}");
    let po = orders
        .iter()
        .find(|l| l.starts_with("PO-1001"))
        .expect("PO-1001");
    assert!(po.contains("→  1060"), "no BC order number: {po}");
    assert!(po.contains("Fabrikam, Inc. (V10000)"), "{po}");
    assert!(po.contains("4956.00"), "{po}");
    assert!(po.contains("6200 4 × 1050.00; 6200 4 × 189.00"), "{po}");

    // The invoice against PO-1001 takes the order's G/L account, not its own coding.
    let matched = section(&out, "Invoice matched to its purchase order");
    assert_eq!(matched.len(), 2, "{out}");
    for (n, l) in matched.iter().enumerate() {
        assert!(l.starts_with("INV-8001"), "{l}");
        assert!(l.contains(&format!("PO-1001 line {}", n + 1)), "{l}");
        assert!(l.contains("6100-SALES-P-100  →  108"), "{l}");
        assert!(l.contains("Fabrikam, Inc. (V10000)  6200"), "{l}");
    }

    // SUP-009 had no vendor: one is created and its parked invoices post on the next cycle.
    let vendors = section(&out, "Vendors created in Business Central");
    assert_eq!(vendors.len(), 1, "{out}");
    assert!(
        vendors[0].starts_with("SUP-009         Northwind Traders  →  SUP-009"),
        "{}",
        vendors[0]
    );
    assert_eq!(vendors[0].matches(" → 108").count(), 2, "{}", vendors[0]);

    // Only the line with a department BC lacks stays parked, naming the value.
    let parked = section(&out, "Parked after the retries");
    assert_eq!(parked.len(), 1, "{out}");
    assert!(parked[0].starts_with("INV-8002"), "{}", parked[0]);
    assert!(
        parked[0]
            .contains("line 2: dimension DEPARTMENT has no value 'MARKETING' in Business Central"),
        "{}",
        parked[0]
    );

    // The invoice marked paid in BC carries the payment in Coupa.
    let payments = section(&out, "Payments returned to Coupa");
    assert_eq!(payments.len(), 1, "{out}");
    assert!(payments[0].starts_with("INV-8001"), "{}", payments[0]);
    assert!(payments[0].contains("4956.00"), "{}", payments[0]);
    assert!(
        payments[0].contains("Business Central payment of invoice "),
        "{}",
        payments[0]
    );
    assert!(out.contains("Dead-lettered: 0."), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sandbox_configuration_resolves_and_mlc_config_prints_an_equivalent_new_form() {
    let d = deployment().await;
    let legacy = std::fs::read_to_string(d.dir.path().join("mlc.toml")).unwrap();
    let cfg = mlc_shared::config::Config::parse(&legacy).unwrap();
    let r = cfg.resolved("coupa-bc").unwrap();
    assert_eq!(
        (r.source.name.as_str(), r.target.name.as_str()),
        ("coupa", "business_central")
    );
    assert_eq!(r.company, Some(d.bc.company_id().to_string()));

    let o = mlc(d.dir.path(), &["config", "-c", "mlc.toml"], None);
    assert!(o.status.success(), "{}", text(&o));
    let new = String::from_utf8(o.stdout).unwrap();
    assert!(new.contains("type = \"business_central\""), "{new}");
    let again = mlc_shared::config::Config::parse(&new).unwrap();
    assert_eq!(again.to_new_form(), new);

    // The new form runs as the old one did.
    std::fs::write(d.dir.path().join("mlc-new.toml"), &new).unwrap();
    let o = mlc(d.dir.path(), &["check", "-c", "mlc-new.toml"], None);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("coupa: ok") && out.contains("business_central: ok"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_runs_started_together_on_a_new_database_both_finish() {
    let d = deployment().await;
    for round in 0..5 {
        let db = d.dir.path().join("mlc.sqlite");
        let _ = std::fs::remove_file(&db);
        let _ = std::fs::remove_file(d.dir.path().join("mlc.sqlite-wal"));
        let _ = std::fs::remove_file(d.dir.path().join("mlc.sqlite-shm"));
        let spawn = || {
            std::process::Command::new(env!("CARGO_BIN_EXE_mlc"))
                .args(["run", "--once", "-c", "mlc.toml"])
                .current_dir(d.dir.path())
                .env("MLC_SECRET_KEY", common::KEY)
                .env_remove("MLC_SECRET_KEY_FILE")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        for o in [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()] {
            let out = text(&o);
            assert!(o.status.success(), "round {round}: {out}");
            assert!(!out.contains("locked"), "round {round}: {out}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_is_named_once_with_the_command_that_fixes_it() {
    let d = deployment().await;
    let o = mlc(
        d.dir.path(),
        &["secrets", "rm", "bc-client-secret", "-c", "mlc.toml"],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = mlc(d.dir.path(), &["run", "--once", "-c", "mlc.toml"], None);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "{err}");
    assert_eq!(
        err.matches("secret 'bc-client-secret' does not exist")
            .count(),
        1,
        "{err}"
    );
    assert!(
        err.contains("fix: store it with `mlc secrets set bc-client-secret"),
        "{err}"
    );
}

#[test]
fn mlc_sandbox_prints_a_configuration_and_secret_commands_that_work_as_pasted() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mlc"))
        .args([
            "sandbox",
            "--coupa",
            "127.0.0.1:0",
            "--bc",
            "127.0.0.1:0",
            "--coupa-fo",
            "127.0.0.1:0",
            "--fo",
            "127.0.0.1:0",
            "--basware",
            "127.0.0.1:0",
            "--bc-basware",
            "127.0.0.1:0",
            "--b1",
            "127.0.0.1:0",
            "--coupa-b1",
            "127.0.0.1:0",
            "--concur",
            "127.0.0.1:0",
            "--bc-concur",
            "127.0.0.1:0",
            "--invoices",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let end = line.starts_with("(These are simulator credentials");
        lines.push(line);
        if end {
            break;
        }
    }
    let out = lines.join("\n");
    let config = out
        .split_once("`mlc secrets set` each secret it names):\n")
        .and_then(|(_, rest)| rest.split_once("Then store the secrets"))
        .map(|(config, _)| config)
        .unwrap_or_else(|| panic!("no configuration in: {out}"));
    assert!(config.contains("# webhook_listen = "), "{config}");
    std::fs::write(dir.path().join("mlc.toml"), config).unwrap();
    let commands: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("printf '%s' "))
        .collect();
    // Three secrets per scenario (Coupa → BC, Coupa → F&O, Basware → BC, SAP B1 → Coupa), four
    // for SAP Concur → BC (its refresh token and its public key besides the client secrets).
    assert_eq!(commands.len(), 16, "{out}");
    for c in &commands {
        let c = c.replace("| mlc ", &format!("| {} ", env!("CARGO_BIN_EXE_mlc")));
        let o = std::process::Command::new("sh")
            .args(["-c", &c])
            .current_dir(dir.path())
            .env("MLC_SECRET_KEY", common::KEY)
            .env_remove("MLC_SECRET_KEY_FILE")
            .output()
            .unwrap();
        assert!(o.status.success(), "{c}: {}", text(&o));
    }
    let o = mlc(dir.path(), &["check", "-c", "mlc.toml"], None);
    let _ = child.kill();
    let _ = child.wait();
    assert!(o.status.success(), "{}", text(&o));
    // The F&O simulator answers `mlc check` as F&O would: a token for its scope, its legal
    // entities.
    assert!(
        text(&o).contains("fo: ok") && text(&o).contains("legal entities: DEMF, USMF"),
        "{}",
        text(&o)
    );
    // The B1 simulator answers it with a Service Layer login.
    assert!(text(&o).contains("b1: ok"), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn run_once_leaves_a_retry_due_in_minutes_for_the_next_run_and_says_so() {
    let d = deployment().await;
    d.bc.fail_next(mlc_sandbox::FaultRule::new(
        "POST",
        "/purchaseInvoices",
        1,
        mlc_sandbox::FaultKind::Status(500),
    ));
    // The default schedule retries a failed delivery after 4 minutes: --once does not sit out.
    let o = mlc(d.dir.path(), &["run", "--once", "-c", "mlc.toml"], None);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("failed attempts 1"), "{out}");
    assert!(out.contains("1 message(s) wait for a later retry"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_says_how_many_items_its_limit_leaves_out() {
    let d = deployment().await;
    let o = mlc(d.dir.path(), &["run", "--once", "-c", "mlc.toml"], None);
    assert!(o.status.success(), "{}", text(&o));
    let o = mlc(d.dir.path(), &["audit", "-c", "mlc.toml", "--json"], None);
    let all = serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap();
    let total = all.as_array().unwrap().len();
    assert!(total > 3, "{total}");

    let o = mlc(
        d.dir.path(),
        &["audit", "-c", "mlc.toml", "--limit", "3"],
        None,
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains(&format!("3 of {total} shown (the newest, newest last)")),
        "{out}"
    );
    let o = mlc(d.dir.path(), &["audit", "-c", "mlc.toml"], None);
    assert!(
        !text(&o).contains(" shown ("),
        "nothing left out, nothing said"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_refuses_what_run_would_refuse_or_lose() {
    let d = deployment().await;
    let path = d.dir.path().join("mlc.toml");
    let cfg = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        cfg.replacen(
            "[runtime]\n",
            "[runtime]\nwebhook_listen = \"not-an-address\"\n",
            1,
        ),
    )
    .unwrap();
    let o = mlc(
        d.dir.path(),
        &["secrets", "rm", "coupa-webhook-secret", "-c", "mlc.toml"],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));

    let o = mlc(d.dir.path(), &["check", "-c", "mlc.toml"], None);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("coupa: ok"), "{out}");
    assert!(
        out.contains("FAILED: runtime.webhook_listen = \"not-an-address\" is not an address"),
        "{out}"
    );
    assert!(
        out.contains("FAILED: systems.coupa.webhook_secret names secret 'coupa-webhook-secret', which is not stored"),
        "{out}"
    );
}

#[test]
fn demo_dir_keeps_the_secrets_key_beside_the_secrets_and_runs_again_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("kept");
    let kept_s = kept.to_str().unwrap();
    let o = mlc(
        dir.path(),
        &["demo", "--invoices", "2", "--dir", kept_s],
        None,
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let key = kept.join("mlc.key");
    assert!(
        out.contains(&format!("the secrets' key is {}", key.display())),
        "{out}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }

    // The kept secrets open with the kept key, as the output says.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_mlc"))
        .args([
            "secrets",
            "list",
            "-c",
            kept.join("mlc.toml").to_str().unwrap(),
        ])
        .env_remove("MLC_SECRET_KEY")
        .env("MLC_SECRET_KEY_FILE", &key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("coupa-client-secret"), "{}", text(&o));

    // A second demo in the same directory reuses the key.
    let o = mlc(
        dir.path(),
        &["demo", "--invoices", "2", "--dir", kept_s],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));

    // Secrets whose key is gone are not replaced silently.
    std::fs::remove_file(&key).unwrap();
    let o = mlc(
        dir.path(),
        &["demo", "--invoices", "2", "--dir", kept_s],
        None,
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("exists but its key"), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_running_run_prints_a_periodic_summary_of_what_moved() {
    use std::io::{BufRead, BufReader};
    let d = deployment().await;
    let path = d.dir.path().join("mlc.toml");
    let cfg = std::fs::read_to_string(&path).unwrap().replacen(
        "[runtime]\n",
        "[runtime]\nsummary_interval_secs = 1\npoll_interval_secs = 1\n",
        1,
    );
    std::fs::write(&path, cfg).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mlc"))
        .args(["run", "-c", "mlc.toml"])
        .current_dir(d.dir.path())
        .env("MLC_SECRET_KEY", common::KEY)
        .env_remove("MLC_LOG")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in stderr.lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    // Summaries come every second; the first that counts posts shows the demo's invoices.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut seen = Vec::new();
    let line = loop {
        let l = rx
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .unwrap_or_else(|_| panic!("no summary with posts: {seen:#?}"));
        if l.starts_with("last 1 s: posted ") && !l.starts_with("last 1 s: posted 0,") {
            break l;
        }
        seen.push(l);
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(line.contains("; now: "), "{line}");
    assert!(line.contains(" parked"), "{line}");
}
