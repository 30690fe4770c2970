//! A local AWS emulator for tests: moto's server (`pip install 'moto[server]==5.2.5'`), started
//! on a free loopback port as a child process and stopped with it.
//!
//! moto is faithful where the connector relies on it (FIFO dedup ids, group order, visibility
//! timeout, redrive to a DLQ, conditional writes, GSI queries, Secrets Manager) and not in two
//! known places: a dedup id is forgotten once its message is deleted (real SQS remembers it for
//! five minutes), and DynamoDB numbers keep trailing zeros. Tests must rely on neither.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    /// Starts `moto_server` and waits until it answers. Panics with the install command when
    /// moto is missing: a test that needs it must not pass silently without it.
    pub fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto_server ({e}); install it with: pip install 'moto[server]==5.2.5'"));
        let endpoint = format!("http://127.0.0.1:{port}");
        let moto = Moto { child, endpoint };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not start on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// The environment the AWS SDK reads: fake credentials, a region, and this endpoint.
    pub fn sdk_env(&self) -> [(&'static str, String); 4] {
        [
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
