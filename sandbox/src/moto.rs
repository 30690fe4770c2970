//! A local AWS emulator for tests: moto's server (`pip install 'moto[server]==5.2.5'`), one per
//! test process, on a free port of 127.0.0.1, stopped when the process ends however it ends: it
//! runs under a small `sh` that kills it when its stdin (a pipe from this process) closes.
//!
//! moto is faithful where the connector relies on it (FIFO dedup ids, group order, visibility
//! timeout, redrive to a DLQ, conditional writes, GSI queries, Secrets Manager) and not in
//! three known places: a dedup id is forgotten once its message is deleted (real SQS remembers
//! it for five minutes); DynamoDB numbers keep trailing zeros; and its threaded server checks a
//! `ConditionExpression` and writes without a lock, so two racing conditional writes can both
//! win. Tests rely on none of it, and the last is patched at start-up (`SITECUSTOMIZE`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

struct Server {
    url: String,
    /// Kept so the pipe to the watchdog shell stays open for the life of the process.
    _child: Mutex<Child>,
}

static SERVER: OnceLock<Server> = OnceLock::new();

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("no free port on 127.0.0.1")
        .port()
}

/// Whether `GET /moto-api/` answers 200.
fn answers(port: u16) -> bool {
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if conn.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    conn.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

/// Loaded by moto's Python at start-up (`sitecustomize`): makes each DynamoDB write atomic,
/// then touches the file named by `MLC_MOTO_PATCHED` to say so.
const SITECUSTOMIZE: &str = r#"
import os, threading
try:
    from moto.dynamodb.models import DynamoDBBackend
    _lock = threading.RLock()
    def _atomic(f):
        def wrapped(self, *args, **kwargs):
            with _lock:
                return f(self, *args, **kwargs)
        return wrapped
    for _name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        setattr(DynamoDBBackend, _name, _atomic(getattr(DynamoDBBackend, _name)))
    _marker = os.environ.get("MLC_MOTO_PATCHED")
    if _marker:
        open(_marker, "w").close()
except Exception as e:
    import sys
    print("mlc sitecustomize: could not patch moto:", e, file=sys.stderr)
"#;

/// A directory holding `sitecustomize.py`, written atomically (test binaries run in parallel).
fn site_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join("mlc-moto-site");
    std::fs::create_dir_all(&dir).expect("creating the moto sitecustomize directory");
    let tmp = dir.join(format!("sitecustomize.py.{}", std::process::id()));
    std::fs::write(&tmp, SITECUSTOMIZE).expect("writing sitecustomize.py");
    std::fs::rename(&tmp, dir.join("sitecustomize.py")).expect("writing sitecustomize.py");
    dir
}

fn start() -> Server {
    assert!(
        on_path("moto_server"),
        "moto_server is not on PATH: the AWS adapter tests need the moto AWS emulator. \
         Install it with: pip install 'moto[server]==5.2.5'"
    );
    let port = free_port();
    // `sh` starts moto, then blocks reading its stdin (kept on fd 3: an asynchronous list's
    // stdin would be /dev/null); when this process ends the pipe closes and moto is killed.
    // If moto exits by itself, `wait` returns and the shell exits too.
    let script = format!(
        "exec 3<&0; moto_server -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
         {{ cat <&3 >/dev/null; kill $m 2>/dev/null; }} & wait $m"
    );
    let site = site_dir();
    let marker = site.join(format!("patched-{}-{port}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let python_path = match std::env::var_os("PYTHONPATH") {
        Some(p) if !p.is_empty() => {
            std::env::join_paths(std::iter::once(site.clone()).chain(std::env::split_paths(&p)))
                .expect("PYTHONPATH")
        }
        _ => site.clone().into_os_string(),
    };
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("PYTHONPATH", python_path)
        .env("MLC_MOTO_PATCHED", &marker)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("could not start moto_server");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !answers(port) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("moto_server on port {port} exited at start ({status})");
        }
        assert!(
            Instant::now() < deadline,
            "moto_server on port {port} did not answer GET /moto-api/ within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        marker.exists(),
        "moto_server started without the sitecustomize.py that makes its DynamoDB writes \
         atomic (is PYTHONPATH honoured by the Python that runs moto_server?)"
    );
    let _ = std::fs::remove_file(&marker);
    Server {
        url: format!("http://127.0.0.1:{port}"),
        _child: Mutex::new(child),
    }
}

/// The moto server's URL (`http://127.0.0.1:PORT`), started on first use, once per process.
pub fn endpoint() -> &'static str {
    &SERVER.get_or_init(start).url
}
