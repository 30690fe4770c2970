//! Secrets never leave their store in clear. The real `mlc` binary runs the pipeline, with debug
//! logs, against simulators whose credentials are distinctive known values ("canaries"),
//! through the happy path and the failing ones (a refreshed token after a 401, a wrong secret at
//! the token endpoint, a parked and a dead-lettered invoice, a refused and an accepted webhook, a
//! replay). Then every line it printed, the audit trail, every row of every table of the SQLite
//! file and the raw bytes of the database and its WAL are searched for the canaries and for the
//! access tokens the simulators issued (captured by a proxy in front of the token endpoints).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use mlc_sandbox::bc::{BcConfig, BcSim};
use mlc_sandbox::coupa::{CoupaConfig, CoupaSim, NewInvoice, NewInvoiceLine};
use mlc_sandbox::demo;
use mlc_sandbox::faults::{FaultKind, FaultRule};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const COUPA_SECRET: &str = "leak-canary-coupa-7f3a9c2e5b";
const HOOK_SECRET: &str = "leak-canary-hook-51d2e8a4c6";
const BC_SECRET: &str = "leak-canary-bc-a94b07d13f";
const WRONG_BC_SECRET: &str = "leak-canary-wrong-bc-0c11e9";

/// Everything the runs printed and every database snapshot, searched at the end.
#[derive(Default)]
struct Evidence {
    /// (what, text)
    texts: Vec<(String, String)>,
    /// (what, bytes)
    blobs: Vec<(String, Vec<u8>)>,
}

struct Deployment {
    dir: tempfile::TempDir,
    key: String,
    coupa: CoupaSim,
    bc: BcSim,
    evidence: Evidence,
}

impl Deployment {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mlc"));
        c.args(args)
            .args(["-c", "mlc.toml"])
            .current_dir(self.dir.path())
            .env("MLC_SECRET_KEY", &self.key)
            .env_remove("MLC_SECRET_KEY_FILE")
            .env(
                "MLC_LOG",
                std::env::var("LEAK_LOG").unwrap_or("debug".into()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Runs `mlc ARGS -c mlc.toml` with debug logs, keeps what it printed and a snapshot of the
    /// database files as evidence.
    fn mlc(&mut self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = self.command(args).spawn().unwrap();
        if let Some(s) = stdin {
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        let o = child.wait_with_output().unwrap();
        self.keep(args, &o);
        o
    }

    fn keep(&mut self, args: &[&str], o: &Output) {
        let what = format!("`mlc {}`", args.join(" "));
        self.evidence.texts.push((
            format!("stdout of {what}"),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        ));
        self.evidence.texts.push((
            format!("stderr of {what}"),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ));
        self.snapshot_files(&format!("after {what}"));
    }

    fn snapshot_files(&mut self, when: &str) {
        for name in ["mlc.sqlite", "mlc.sqlite-wal", "mlc.sqlite-journal"] {
            if let Ok(bytes) = std::fs::read(self.dir.path().join(name)) {
                self.evidence.blobs.push((format!("{name} {when}"), bytes));
            }
        }
    }

    fn set_secret(&mut self, name: &str, value: &str) {
        let o = self.mlc(&["secrets", "set", name], Some(value));
        assert!(o.status.success(), "{}", text(&o));
    }

    fn invoice(&self, supplier_number: &str, number: &str) -> i64 {
        let sid = self.coupa.supplier_id_by_number(supplier_number).unwrap();
        self.coupa
            .add_invoice(NewInvoice::approved(sid, number).line(NewInvoiceLine::qty(
                "Cloud hosting, monthly",
                "1",
                "1200.00",
                &["6200", "SALES", "P-200"],
            )))
    }

    fn posted(&self, number: &str) -> usize {
        self.bc
            .purchase_invoices()
            .into_iter()
            .filter(|i| i.vendor_invoice_number == number && i.status == "Open")
            .count()
    }

    fn db_path(&self) -> PathBuf {
        self.dir.path().join("mlc.sqlite")
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A TCP proxy in front of a token endpoint that keeps every byte the server answered, so the
/// test knows the access tokens that were issued.
async fn token_proxy(upstream: String, seen: Arc<Mutex<Vec<u8>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let upstream = upstream.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                    let _ = sw.shutdown().await;
                });
                let mut buf = [0u8; 8192];
                loop {
                    match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            seen.lock().unwrap().extend_from_slice(&buf[..n]);
                            if cw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = cw.shutdown().await;
                up.abort();
            });
        }
    });
    format!("http://{addr}")
}

/// Every `"access_token":"…"` value in what the token endpoints answered.
fn access_tokens(answers: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(answers);
    let mut out = Vec::new();
    for part in text.split("\"access_token\":").skip(1) {
        let v = part.trim_start().trim_start_matches('"');
        if let Some(end) = v.find('"') {
            out.push(v[..end].to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

async fn http_post(addr: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += "\r\n";
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

/// Every value of every row of every table, as text (blobs lossily, and as hex).
fn all_rows(db: &Path) -> Vec<(String, String)> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(tables.iter().any(|t| t == "audit"), "{tables:?}");
    let mut out = Vec::new();
    for t in &tables {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{}\"", t.replace('"', "\"\"")))
            .unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        let mut i = 0;
        while let Some(row) = rows.next().unwrap() {
            let mut cells = Vec::new();
            for c in 0..n {
                use rusqlite::types::ValueRef;
                cells.push(match row.get_ref(c).unwrap() {
                    ValueRef::Null => "NULL".to_string(),
                    ValueRef::Integer(v) => v.to_string(),
                    ValueRef::Real(v) => v.to_string(),
                    ValueRef::Text(v) => String::from_utf8_lossy(v).into_owned(),
                    ValueRef::Blob(v) => {
                        format!("{} {}", String::from_utf8_lossy(v), hex_lower(v))
                    }
                });
            }
            out.push((format!("table {t} row {i}"), cells.join(" | ")));
            i += 1;
        }
    }
    out
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_or_token_appears_in_logs_output_audit_queues_or_database() {
    let coupa = CoupaSim::start(CoupaConfig {
        client_secret: COUPA_SECRET.into(),
        webhook_secret: HOOK_SECRET.into(),
        ..CoupaConfig::default()
    })
    .await
    .unwrap();
    let bc = BcSim::start(BcConfig {
        client_secret: BC_SECRET.into(),
        ..BcConfig::default()
    })
    .await
    .unwrap();
    demo::seed_bc(&bc);
    // Six approved invoices (two from a supplier without a BC vendor: parked), a credit note
    // (parked), five not approved (never polled).
    demo::seed_coupa(&coupa, 6, 11);

    let answers = Arc::new(Mutex::new(Vec::new()));
    let coupa_tokens = token_proxy(
        coupa.base_url().trim_start_matches("http://").to_string(),
        answers.clone(),
    )
    .await;
    let bc_tokens = token_proxy(
        bc.base_url().trim_start_matches("http://").to_string(),
        answers.clone(),
    )
    .await;
    let webhook_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };

    let dir = tempfile::tempdir().unwrap();
    let tenant = bc.config().tenant.clone();
    let cfg = mlc_cli::cmd::sandbox::config_toml(&coupa, &bc, "mlc.sqlite", "mlc.secrets")
        .replace(
            "max_receives = 5\n",
            &format!(
                "max_receives = 2\nretry_base_delay_ms = 10\npoll_interval_secs = 3600\nwebhook_listen = \"{webhook_addr}\"\n"
            ),
        )
        .replace(
            "[systems.coupa]\n",
            &format!("[systems.coupa]\ntoken_url = \"{coupa_tokens}/oauth2/token\"\n"),
        )
        .replace(
            &format!("token_url = \"{}/{tenant}/oauth2/v2.0/token\"", bc.base_url()),
            &format!("token_url = \"{bc_tokens}/{tenant}/oauth2/v2.0/token\""),
        );
    assert!(
        cfg.contains(&bc_tokens) && cfg.contains(&coupa_tokens),
        "{cfg}"
    );
    std::fs::write(dir.path().join("mlc.toml"), cfg).unwrap();

    let mut d = Deployment {
        dir,
        key: format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ),
        coupa,
        bc,
        evidence: Evidence::default(),
    };
    d.set_secret("coupa-client-secret", COUPA_SECRET);
    d.set_secret("bc-client-secret", BC_SECRET);
    d.set_secret("coupa-webhook-secret", HOOK_SECRET);
    let o = d.mlc(&["secrets", "list"], None);
    assert!(o.status.success(), "{}", text(&o));
    let o = d.mlc(&["check"], None);
    assert!(o.status.success(), "{}", text(&o));

    // 1. The happy path, with a 401 on a live token at both systems (refresh once, retry),
    //    parked invoices and rejected ones.
    d.coupa.fail_next(FaultRule::new(
        "GET",
        "/api/invoices",
        1,
        FaultKind::Status(401),
    ));
    d.bc.fail_next(FaultRule::new(
        "GET",
        "/purchaseInvoices",
        1,
        FaultKind::Status(401),
    ));
    let o = d.mlc(&["run", "--once"], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(d.bc.purchase_invoices().len() >= 3);

    // 2. Expired tokens between runs, and a wrong BC secret: the token endpoint answers 401,
    //    the integration backs off (nothing dead-lettered, the document stays queued) and
    //    `run --once` says so with exit status 3.
    d.coupa.expire_tokens();
    d.bc.expire_tokens();
    d.invoice("SUP-001", "LEAK-1");
    d.set_secret("bc-client-secret", WRONG_BC_SECRET);
    let o = d.mlc(&["check"], None);
    assert!(!o.status.success(), "{}", text(&o));
    let o = d.mlc(&["run", "--once"], None);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("backed off"), "{}", text(&o));
    assert_eq!(d.posted("LEAK-1"), 0);
    // The failures, with the server's words, are events (the documents are posted or still
    // queued: no document's state is "failed" for long).
    let o = d.mlc(&["audit", "--history", "--status", "failed"], None);
    assert!(text(&o).contains("AADSTS7000215"), "{}", text(&o));

    // 3. The right secret again; the document still queued posts on the next run.
    d.set_secret("bc-client-secret", BC_SECRET);
    let o = d.mlc(&["run", "--once"], None);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(d.posted("LEAK-1"), 1);

    // 4. Webhooks into a running `mlc run`: one signed with a wrong key (401, nothing queued),
    //    one signed right, which gets posted.
    let id = d.invoice("SUP-002", "LEAK-2");
    let body = serde_json::to_vec(&d.coupa.invoice_json(id).unwrap()).unwrap();
    let mut child = d.command(&["run"]).spawn().unwrap();
    let bad = mlc_shared::systems::signature::sign_hmac_sha256(b"not-the-secret", &body);
    let good = mlc_shared::systems::signature::sign_hmac_sha256(HOOK_SECRET.as_bytes(), &body);
    let path = "/webhooks/coupa/coupa-bc";
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        if let Ok(mut s) = tokio::net::TcpStream::connect(&webhook_addr).await {
            let _ = s.shutdown().await;
            break http_post(&webhook_addr, path, &[("X-Coupa-Signature", &bad)], &body).await;
        }
        assert!(
            Instant::now() < deadline,
            "the webhook listener never came up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let accepted = http_post(&webhook_addr, path, &[("X-Coupa-Signature", &good)], &body).await;
    assert!(accepted.starts_with("HTTP/1.1 202"), "{accepted}");
    while d.posted("LEAK-2") == 0 {
        assert!(
            Instant::now() < deadline,
            "the webhook's invoice was not posted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    let o = child.wait_with_output().unwrap();
    d.keep(&["run"], &o);
    d.evidence
        .texts
        .push(("webhook answers".into(), format!("{refused}\n{accepted}")));

    // 5. What an operator reads.
    for args in [
        vec!["audit", "--history", "--json", "--limit", "100000"],
        vec!["audit", "--history", "--csv", "--limit", "100000"],
        vec!["audit", "--history", "--limit", "100000"],
        vec!["audit", "--json", "--limit", "100000"],
        vec!["audit", "--limit", "100000"],
        vec!["map", "list", "--all"],
    ] {
        let o = d.mlc(&args, None);
        assert!(o.status.success(), "{}", text(&o));
    }
    let audit = d
        .evidence
        .texts
        .iter()
        .find(|(w, _)| w.starts_with("stdout of `mlc audit --history --json"))
        .map(|(_, t)| t.clone())
        .unwrap();
    let statuses: Vec<String> = serde_json::from_str::<Vec<serde_json::Value>>(&audit)
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap().to_string())
        .collect();
    // A refused secret backs the integration off (failed), it no longer dead-letters.
    for s in ["received", "posted", "parked", "failed"] {
        assert!(
            statuses.iter().any(|x| x == s),
            "no '{s}' item: {statuses:?}"
        );
    }

    // The evidence: database rows and raw files (the database, its WAL), and the secrets file.
    for (what, row) in all_rows(&d.db_path()) {
        d.evidence.texts.push((what, row));
    }
    d.snapshot_files("at the end");
    let logged: usize = d
        .evidence
        .texts
        .iter()
        .filter(|(w, _)| w.starts_with("stderr"))
        .map(|(_, t)| t.lines().count())
        .sum();
    assert!(logged > 50, "debug logging seems off: {logged} lines");

    let tokens = access_tokens(&answers.lock().unwrap());
    assert!(
        tokens.len() >= 4,
        "the proxy saw too few tokens: {}",
        tokens.len()
    );
    let basic = |id: &str, secret: &str| {
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    };
    let mut canaries: Vec<(String, String)> = vec![
        ("the Coupa client secret".into(), COUPA_SECRET.into()),
        ("the Coupa webhook secret".into(), HOOK_SECRET.into()),
        ("the BC client secret".into(), BC_SECRET.into()),
        ("the wrong BC client secret".into(), WRONG_BC_SECRET.into()),
        ("the secrets file key".into(), d.key.clone()),
        (
            "a shared prefix of the canaries".into(),
            "leak-canary".into(),
        ),
        (
            "Basic credentials for Coupa".into(),
            basic(&d.coupa.config().client_id, COUPA_SECRET),
        ),
        (
            "Basic credentials for BC".into(),
            basic(&d.bc.config().client_id, BC_SECRET),
        ),
    ];
    canaries.extend(
        tokens
            .iter()
            .map(|t| (format!("access token {}…", &t[..6.min(t.len())]), t.clone())),
    );

    let mut found = Vec::new();
    for (name, value) in &canaries {
        for (what, t) in &d.evidence.texts {
            if t.contains(value.as_str()) {
                found.push(format!("{name} in {what}"));
            }
        }
        for (what, bytes) in &d.evidence.blobs {
            if contains(bytes, value.as_bytes()) {
                found.push(format!("{name} in the raw bytes of {what}"));
            }
        }
    }
    // The secrets file holds them, but never in clear.
    let secrets_file = std::fs::read(d.dir.path().join("mlc.secrets")).unwrap();
    for (name, value) in &canaries[..5] {
        if contains(&secrets_file, value.as_bytes()) {
            found.push(format!("{name} in clear in the secrets file"));
        }
    }
    found.dedup();
    assert!(found.is_empty(), "leaked:\n{}", found.join("\n"));
}
