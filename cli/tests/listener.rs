//! The webhook listener of `mlc run` under attack (issue 17, item 2): slow headers, stalled
//! bodies and idle sockets are cut after their time-outs, the memory and descriptors they held
//! are given back, a signed webhook still gets through, and an unknown integration name is
//! answered exactly like a bad signature.
//!
//! The listener runs in this process, so its memory (`VmRSS`) and descriptors (`/proc/self/fd`)
//! can be read; the attackers' own sockets are counted out. The measuring tests run one at a
//! time. `soak_figures` (ignored) prints the figures of the README's benchmark:
//! `cargo test -p mlc --release --test listener -- --ignored --nocapture soak_figures`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlc_cli::webhook_server::{Gauges, Limits, Listener};
use mlc_sandbox::bc::{BcConfig, BcSim};
use mlc_sandbox::coupa::{CoupaConfig, CoupaSim};
use mlc_shared::adapters::embedded::{SecretFile, SecretKey};
use mlc_shared::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The measuring tests share this process's memory and descriptors: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CLIENT_STATE: &str = "listener-test-client-state";
const MIB: usize = 1024 * 1024;

struct World {
    coupa: CoupaSim,
    _bc: BcSim,
    _dir: tempfile::TempDir,
    addr: SocketAddr,
    gauges: Gauges,
}

impl World {
    async fn start(limits: Limits) -> Self {
        let coupa = CoupaSim::start(CoupaConfig::default()).await.unwrap();
        let bc = BcSim::start(BcConfig::default()).await.unwrap();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let text = mlc_cli::cmd::sandbox::config_toml(&coupa, &bc, "mlc.sqlite", "mlc.secrets")
            .replace(
                "[integrations.mapping]\n",
                &format!(
                    "[integrations.sync]\nnotifications = {{ url = \"http://{addr}/webhooks/coupa-bc/bc\", client_state_secret = \"bc-client-state\" }}\n\n[integrations.mapping]\n"
                ),
            );
        let path = dir.path().join("mlc.toml");
        std::fs::write(&path, text).unwrap();
        let cfg = Config::load(&path).unwrap();
        let secrets = SecretFile::open(&cfg.runtime.secrets_file, SecretKey::generate()).unwrap();
        mlc_cli::cmd::sandbox::store_secrets(&secrets, &coupa, &bc).unwrap();
        secrets.set("bc-client-state", CLIENT_STATE).unwrap();
        let pipeline = mlc_cli::embedded::pipeline(&cfg, &secrets).await.unwrap();
        let listener = Listener::new(pipeline, Arc::new(secrets), limits);
        let gauges = listener.gauges();
        tokio::spawn(listener.serve(tcp));
        Self {
            coupa,
            _bc: bc,
            _dir: dir,
            addr,
            gauges,
        }
    }

    /// A Coupa call-out signed with the integration's key, as Coupa sends it.
    fn signed_webhook(&self, invoice: i64) -> Vec<u8> {
        let body = format!("{{\"id\":{invoice},\"updated-at\":\"2030-01-01T00:00:00Z\"}}");
        let sig = mlc_sandbox::coupa::webhook_signature(
            &self.coupa.config().webhook_secret,
            body.as_bytes(),
        );
        request(
            "POST",
            "/webhooks/coupa-bc/coupa",
            &[("X-Coupa-Signature", &sig)],
            body.as_bytes(),
        )
    }

    /// Waits (up to `within`) until the listener holds no connection and no body byte.
    async fn settled(&self, within: Duration) -> bool {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if self.gauges.open_connections() == 0 && self.gauges.buffered_bytes() == 0 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: mlc\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }
}

fn parse(raw: &[u8]) -> Option<Answer> {
    let raw = String::from_utf8_lossy(raw);
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.lines().next()?.split(' ').nth(1)?.parse().ok()?;
    Some(Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    })
}

/// Sends `raw` on a new connection and reads the answer to the end.
async fn exchange(addr: SocketAddr, raw: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    parse(&out).unwrap_or_else(|| panic!("no answer: {:?}", String::from_utf8_lossy(&out)))
}

/// What the peer did with a connection we keep writing slowly to or keep silent on: the bytes
/// it answered and when it closed, or `None` if still open after `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<(Duration, Vec<u8>)> {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.checked_sub(start.elapsed())?;
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some((start.elapsed(), out)),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Resident memory of this process, in bytes.
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// Open descriptors of this process.
fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn quick() -> Limits {
    Limits {
        header_read: Duration::from_secs(1),
        body_read: Duration::from_secs(2),
        ..Limits::default()
    }
}

#[test]
fn the_default_limits_are_the_documented_ones() {
    let l = Limits::default();
    assert_eq!(l.header_read, Duration::from_secs(10));
    assert_eq!(l.body_read, Duration::from_secs(30));
    assert_eq!(l.max_connections, 256);
    assert_eq!(l.max_buffered_bytes, 16 * MIB);
    // Never more connections than descriptors to hold them.
    let here = Limits::for_this_process();
    if let Some(fds) = mlc_cli::webhook_server::open_file_limit() {
        assert!(
            here.max_connections as u64 <= fds.max(65),
            "{here:?} with {fds} fds"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_idle_sockets_are_closed_after_the_header_timeout() {
    let _one = SERIAL.lock().await;
    let w = World::start(quick()).await;
    let before = fds();

    // 40 that dribble a header byte every 200 ms, 40 that say nothing, and one kept alive
    // after an answer, then silent.
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut s = TcpStream::connect(w.addr).await.unwrap();
        s.write_all(b"POST /webhooks/coupa-bc/coupa HTTP/1.1\r\nHost: mlc\r\n")
            .await
            .unwrap();
        slow.push(tokio::spawn(async move {
            let start = Instant::now();
            for _ in 0..100 {
                if s.write_all(b"X").await.is_err() {
                    return Some(start.elapsed());
                }
                let mut b = [0u8; 256];
                match tokio::time::timeout(Duration::from_millis(200), s.read(&mut b)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
                    _ => {}
                }
            }
            None
        }));
    }
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(TcpStream::connect(w.addr).await.unwrap());
    }
    let mut kept = TcpStream::connect(w.addr).await.unwrap();
    let ping = String::from_utf8(request(
        "GET",
        "/webhooks/coupa-bc/bc?validationToken=t",
        &[],
        b"",
    ))
    .unwrap()
    .replace("Connection: close\r\n", "");
    kept.write_all(ping.as_bytes()).await.unwrap();

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        w.gauges.open_connections() >= 80,
        "{}",
        w.gauges.open_connections()
    );

    for t in slow {
        let cut = t.await.unwrap().expect("a slow header was never cut");
        assert!(cut < Duration::from_secs(8), "cut after {cut:?}");
    }
    for mut s in idle {
        let (after, said) = closed_within(&mut s, Duration::from_secs(8))
            .await
            .expect("an idle socket was left open");
        assert!(
            said.is_empty() || said.starts_with(b"HTTP/1.1 408"),
            "{said:?}"
        );
        assert!(after < Duration::from_secs(8));
    }
    let (_, said) = closed_within(&mut kept, Duration::from_secs(8))
        .await
        .expect("an idle kept-alive connection was left open");
    let a = parse(&said).unwrap();
    assert_eq!(
        (a.status, a.body.as_str()),
        (200, "t"),
        "answered, then closed when idle"
    );
    drop(kept);

    assert!(
        w.settled(Duration::from_secs(5)).await,
        "connections still held"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = fds();
    assert!(
        after <= before + 2,
        "descriptors: {before} before, {after} after"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_are_cut_after_the_body_timeout_within_a_bounded_buffer() {
    let _one = SERIAL.lock().await;
    let w = World::start(quick()).await;
    let before_rss = rss();
    let before_fds = fds();

    // 200 bodies that declare 1 MiB, send all but the last byte, and stall: 200 MiB if all
    // were held.
    const N: usize = 200;
    let body: Arc<Vec<u8>> = Arc::new(vec![b' '; MIB - 1]);
    let mut tasks = Vec::new();
    for _ in 0..N {
        let body = body.clone();
        let addr = w.addr;
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "POST /webhooks/coupa-bc/coupa HTTP/1.1\r\nHost: mlc\r\nContent-Length: {MIB}\r\nX-Coupa-Signature: sha256=00\r\n\r\n"
            );
            let start = Instant::now();
            if s.write_all(head.as_bytes()).await.is_ok() {
                let _ = s.write_all(&body).await;
            }
            let end = closed_within(&mut s, Duration::from_secs(20)).await;
            end.map(|(_, said)| (start.elapsed(), parse(&said).map(|a| a.status)))
        }));
    }
    let mut peak_rss = 0;
    let mut peak_buffered = 0;
    let mut peak_open = 0;
    // Once the stalled bodies hold the shared buffer, a small signed webhook still gets in.
    let full = Instant::now();
    while w.gauges.buffered_bytes() + MIB / 2 < 16 * MIB {
        assert!(
            full.elapsed() < Duration::from_secs(10),
            "the buffer never filled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let meanwhile = exchange(w.addr, &w.signed_webhook(6)).await;
    assert_eq!(meanwhile.status, 202, "{meanwhile:?}");
    while !tasks.iter().all(|t| t.is_finished()) {
        peak_rss = peak_rss.max(rss());
        peak_buffered = peak_buffered.max(w.gauges.buffered_bytes());
        peak_open = peak_open.max(w.gauges.open_connections());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut statuses = std::collections::BTreeMap::new();
    for t in tasks {
        let (took, status) = t.await.unwrap().expect("a stalled body was never cut");
        assert!(took < Duration::from_secs(15), "cut after {took:?}");
        *statuses.entry(status).or_insert(0) += 1;
    }
    eprintln!(
        "stalled bodies: {statuses:?}; peak buffered {} KiB, peak open {peak_open}, RSS {} -> peak {} MiB",
        peak_buffered / 1024,
        before_rss / MIB,
        peak_rss / MIB
    );
    // Each was answered 408 (timed out) or 503 (the shared buffer was full), none queued.
    assert!(
        statuses
            .keys()
            .all(|s| matches!(s, Some(408) | Some(503) | None)),
        "{statuses:?}"
    );
    assert!(statuses.contains_key(&Some(408)), "{statuses:?}");
    assert!(peak_buffered <= 16 * MIB, "{peak_buffered}");
    assert!(peak_open <= N, "{peak_open}");
    assert!(
        peak_rss < before_rss + 96 * MIB,
        "RSS {} MiB before, {} MiB at the peak",
        before_rss / MIB,
        peak_rss / MIB
    );

    assert!(
        w.settled(Duration::from_secs(5)).await,
        "bytes or connections still held"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after_fds = fds();
    assert!(
        after_fds <= before_fds + 2,
        "descriptors: {before_fds} before, {after_fds} after"
    );
    // A signed webhook is served as before.
    let ok = exchange(w.addr, &w.signed_webhook(7)).await;
    assert_eq!(ok.status, 202, "{ok:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_connection_taken_more_are_refused_at_once_and_a_signed_webhook_gets_through_after()
 {
    let _one = SERIAL.lock().await;
    let limits = Limits {
        max_connections: 32,
        ..quick()
    };
    let w = World::start(limits).await;
    let before = fds();
    let mut idle = Vec::new();
    for _ in 0..32 {
        idle.push(TcpStream::connect(w.addr).await.unwrap());
    }
    let start = Instant::now();
    while w.gauges.open_connections() < 32 && start.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(w.gauges.open_connections(), 32);
    // Ours (32 clients) and theirs (at most 32): not one more.
    let during = fds();
    assert!(
        during <= before + 64 + 2,
        "descriptors: {before} before, {during} during"
    );

    // One more: 503 and closed, well before the attackers' sockets time out.
    let mut extra = TcpStream::connect(w.addr).await.unwrap();
    let (after, said) = closed_within(&mut extra, Duration::from_millis(900))
        .await
        .expect("a connection over the cap was kept waiting");
    let busy = parse(&said).expect("an answer");
    assert_eq!(busy.status, 503, "{busy:?}");
    assert!(busy.header("retry-after").is_some(), "{busy:?}");
    assert!(after < Duration::from_millis(900));
    assert!(w.gauges.refused_connections() >= 1);

    // A sender that retries (as Coupa and BC do) gets through once the idle ones are cut.
    let start = Instant::now();
    let ok = loop {
        let mut s = TcpStream::connect(w.addr).await.unwrap();
        let _ = s.write_all(&w.signed_webhook(8)).await;
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        match parse(&out) {
            Some(a) if a.status != 503 => break a,
            _ => {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "never got through"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(ok.status, 202, "{ok:?}");
    drop(idle);
    assert!(w.settled(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_integration_is_answered_exactly_like_a_bad_signature() {
    let w = World::start(quick()).await;
    let body = br#"{"id":1}"#;
    let bad = [(
        "X-Coupa-Signature",
        "sha256=0000000000000000000000000000000000000000000000000000000000000000",
    )];
    let refused = exchange(
        w.addr,
        &request("POST", "/webhooks/coupa-bc/coupa", &bad, body),
    )
    .await;
    assert_eq!(refused.status, 401, "{refused:?}");
    let unsigned = exchange(
        w.addr,
        &request("POST", "/webhooks/coupa-bc/coupa", &[], body),
    )
    .await;
    let foreign = exchange(
        w.addr,
        &request(
            "POST",
            "/webhooks/coupa-bc/bc",
            &[],
            br#"{"value":[{"subscriptionId":"x","clientState":"guess","resource":"r","changeType":"updated"}]}"#,
        ),
    )
    .await;
    for (what, target, method) in [
        (
            "an unknown integration",
            "/webhooks/acme-probe/coupa",
            "POST",
        ),
        (
            "an unknown integration, old route",
            "/webhooks/coupa/acme-probe",
            "POST",
        ),
        (
            "an unknown integration, BC",
            "/webhooks/acme-probe/bc",
            "GET",
        ),
        (
            "an unknown channel",
            "/webhooks/coupa-bc/acme-probe",
            "POST",
        ),
        (
            "a markup name",
            "/webhooks/%3Cscript%3Eacme-probe%3C%2Fscript%3E/coupa",
            "POST",
        ),
        ("an unsigned GET", "/webhooks/coupa-bc/coupa", "GET"),
    ] {
        let a = exchange(w.addr, &request(method, target, &bad, body)).await;
        assert_eq!(
            (a.status, a.body.as_str()),
            (refused.status, refused.body.as_str()),
            "{what}: {a:?}"
        );
        assert!(
            !a.body.contains("acme-probe") && !a.body.contains("script"),
            "{what}"
        );
    }
    for a in [&unsigned, &foreign] {
        assert_eq!(
            (a.status, a.body.as_str()),
            (401, refused.body.as_str()),
            "{a:?}"
        );
    }
    assert_eq!(refused.header("x-content-type-options"), Some("nosniff"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_echo_is_plain_text_that_browsers_may_not_sniff() {
    let w = World::start(quick()).await;
    let a = exchange(
        w.addr,
        &request(
            "GET",
            "/webhooks/coupa-bc/bc?validationToken=%3Chtml%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            &[],
            b"",
        ),
    )
    .await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (200, "<html><script>alert(1)</script>")
    );
    assert_eq!(a.header("x-content-type-options"), Some("nosniff"), "{a:?}");
    assert!(
        a.header("content-type").unwrap().starts_with("text/plain"),
        "{a:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_refused_before_it_is_read_whatever_the_name() {
    let w = World::start(quick()).await;
    for target in ["/webhooks/coupa-bc/coupa", "/webhooks/acme-probe/coupa"] {
        let mut s = TcpStream::connect(w.addr).await.unwrap();
        let head = format!(
            "POST {target} HTTP/1.1\r\nHost: mlc\r\nContent-Length: {}\r\n\r\n",
            MIB + 1
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let (_, said) = closed_within(&mut s, Duration::from_secs(5))
            .await
            .expect("answered without the body");
        let a = parse(&said).unwrap();
        assert_eq!(a.status, 413, "{target}: {a:?}");
        assert!(!a.body.contains("acme-probe"));
    }
}

/// Figures for the README (run with `--release --ignored --nocapture`): the default limits,
/// 300 slow-header connections, 200 stalled 1 MiB bodies and 300 idle sockets at once, then a
/// signed webhook sent (retrying on 503) while they are open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 40-second soak that prints figures"]
async fn soak_figures() {
    let _one = SERIAL.lock().await;
    let w = World::start(Limits::for_this_process()).await;
    let limits = w.gauges.limits().clone();
    let before_rss = rss();
    let before_fds = fds();
    let started = Instant::now();
    let body: Arc<Vec<u8>> = Arc::new(vec![b' '; MIB - 1]);
    let mut tasks = Vec::new();
    for i in 0..800 {
        let addr = w.addr;
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(mut s) = TcpStream::connect(addr).await else {
                return Duration::ZERO;
            };
            let start = Instant::now();
            match i % 8 {
                // slow headers
                0..=2 => {
                    let _ = s.write_all(b"POST /webhooks/coupa-bc/coupa HTTP/1.1\r\n").await;
                    loop {
                        if s.write_all(b"X-a: b\r\n").await.is_err() {
                            break;
                        }
                        let mut b = [0u8; 512];
                        match tokio::time::timeout(Duration::from_secs(1), s.read(&mut b)).await {
                            Ok(Ok(0)) | Ok(Err(_)) => break,
                            _ => {}
                        }
                        if start.elapsed() > Duration::from_secs(120) {
                            break;
                        }
                    }
                }
                // stalled bodies
                3 | 4 => {
                    let head = format!(
                        "POST /webhooks/coupa-bc/coupa HTTP/1.1\r\nHost: mlc\r\nContent-Length: {MIB}\r\n\r\n"
                    );
                    let _ = s.write_all(head.as_bytes()).await;
                    let _ = s.write_all(&body).await;
                    let _ = closed_within(&mut s, Duration::from_secs(120)).await;
                }
                // idle sockets
                _ => {
                    let _ = closed_within(&mut s, Duration::from_secs(120)).await;
                }
            }
            start.elapsed()
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during_rss = rss();
    let during_fds = fds();
    let during_open = w.gauges.open_connections();
    let during_buffered = w.gauges.buffered_bytes();

    // A signed webhook, retried every 250 ms while refused.
    let sent = Instant::now();
    let mut tries = 0;
    let status = loop {
        tries += 1;
        let Ok(mut s) = TcpStream::connect(w.addr).await else {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        };
        let _ = s.write_all(&w.signed_webhook(9)).await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut out)).await;
        match parse(&out) {
            Some(a) if a.status != 503 => break a.status,
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    };
    let legit = sent.elapsed();
    let mut peak_rss = during_rss;
    while !tasks.iter().all(|t| t.is_finished()) {
        peak_rss = peak_rss.max(rss());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut longest = Duration::ZERO;
    for t in tasks {
        longest = longest.max(t.await.unwrap());
    }
    let settled = w.settled(Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_rss = rss();
    let after_fds = fds();
    println!("listener soak, limits {limits:?}");
    println!(
        "  RSS: {} MiB before, {} MiB 1 s into the attack, {} MiB at the peak, {} MiB after",
        before_rss / MIB,
        during_rss / MIB,
        peak_rss / MIB,
        after_rss / MIB
    );
    println!(
        "  fds: {before_fds} before, {during_fds} during (the attackers' own sockets included), {after_fds} after"
    );
    println!(
        "  listener during: {during_open} connections, {} KiB of bodies; {} refused at once in all",
        during_buffered / 1024,
        w.gauges.refused_connections()
    );
    println!("  signed webhook under attack: {status} after {legit:?} ({tries} tries)");
    println!(
        "  every attacker cut after at most {longest:?}; all {:?} after the start; settled: {settled}",
        started.elapsed()
    );
    assert_eq!(status, 202);
    assert!(settled);
}
