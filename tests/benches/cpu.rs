//! The connector's own CPU per invoice (issue #16 item 4), figures never assertions: the
//! simulators run in THIS process and the connector is a separate `mlc` process (the release
//! binary), so their cost is not counted. Prints "connector CPU ms per invoice and peak RSS
//! (simulators out of process)" for:
//!
//! 0. `mlc run --once` with nothing to do: the start-up, also subtracted in a second figure;
//! 1. `mlc run --once` over N sandbox invoices (N = BENCH_INVOICES, default 500; seeded as
//!    `mlc sandbox --invoices N` seeds them: a few unapproved, two of a supplier without a BC
//!    vendor, which park) with no rate limit anywhere;
//! 2. the same paced to BC's budget (the simulators' defaults, as `mlc sandbox` runs them: BC
//!    6,000 requests per 5 minutes, Coupa 25 a second; the connector's default budget), so what
//!    waiting costs shows (skip with BENCH_PACED=0);
//! 3. `mlc run` (the long-running loop) with nothing to do for BENCH_IDLE_SECS (default 20;
//!    0 skips): CPU per idle minute, its scheduled polls included.
//!
//! CPU and peak RSS are the child's own, from `wait4` (user + system time, `ru_maxrss`). The
//! binary is `$MLC_BIN`, else `mlc` beside this bench's executable (`target/release/mlc`),
//! built first with `cargo build --release -p mlc` unless MLC_BIN is set.
//!
//! `cargo bench -p mlc-e2e --bench cpu`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mlc_sandbox::bc::{BcConfig, BcSim};
use mlc_sandbox::coupa::{CoupaConfig, CoupaSim};
use mlc_sandbox::demo;
use mlc_sandbox::scenarios::api_requests;
use mlc_shared::adapters::embedded::{SecretFile, SecretKey};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `mlc` binary to measure.
fn mlc_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MLC_BIN") {
        return PathBuf::from(p);
    }
    // The bench runs as target/release/deps/cpu-<hash>: the binary is target/release/mlc.
    let exe = std::env::current_exe().expect("the bench's own path");
    let release = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/release")
        .to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "mlc", "--bin", "mlc"])
        .status()
        .expect("running cargo build");
    assert!(status.success(), "cargo build --release -p mlc failed");
    release.join("mlc")
}

/// What one finished child cost: user + system CPU seconds, peak RSS in MiB, exit code.
struct Usage {
    cpu_secs: f64,
    peak_rss_mib: f64,
    wall_secs: f64,
    code: i32,
}

/// Waits for `child` and returns its own resource use (not this process's, nor any other
/// child's: `wait4` reports the one child waited for). `std`'s `wait` would not say it.
fn wait_usage(child: std::process::Child, started: Instant) -> Usage {
    let pid = child.id();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not waited for elsewhere (its `Child` is dropped
    // unwaited, which neither waits nor kills); both pointers are valid for the call.
    let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut ru) };
    assert_eq!(
        r,
        pid as libc::pid_t,
        "wait4: {}",
        std::io::Error::last_os_error()
    );
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage {
        cpu_secs: secs(ru.ru_utime) + secs(ru.ru_stime),
        // Linux reports ru_maxrss in KiB.
        peak_rss_mib: ru.ru_maxrss as f64 / 1024.0,
        wall_secs: started.elapsed().as_secs_f64(),
        code: if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        },
    }
}

/// A running child's user + system CPU seconds so far, from /proc/<pid>/stat.
fn proc_cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime, stime: fields 14 and 15 of stat(5), indexes 11 and 12 after the ')'.
    let hz = clock_ticks();
    (ticks(11) + ticks(12)) / hz
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

/// The simulators, a configuration pointing at them and the secrets, in a temporary directory.
struct Setup {
    coupa: CoupaSim,
    bc: BcSim,
    dir: tempfile::TempDir,
    key: String,
}

impl Setup {
    async fn start(n: usize, paced: bool) -> Setup {
        let (coupa_cfg, bc_cfg) = if paced {
            (CoupaConfig::default(), BcConfig::default())
        } else {
            (
                CoupaConfig {
                    rate_per_sec: None,
                    ..CoupaConfig::default()
                },
                BcConfig {
                    rate_limit: None,
                    ..BcConfig::default()
                },
            )
        };
        let coupa = CoupaSim::start(coupa_cfg).await.unwrap();
        let bc = BcSim::start(bc_cfg).await.unwrap();
        // As `mlc sandbox --invoices N` seeds the Coupa → BC scenario.
        demo::seed_bc(&bc);
        demo::seed_coupa(&coupa, n, 7);
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("mlc.sqlite");
        let secrets_path = dir.path().join("mlc.secrets");
        let mut text = mlc_cli::cmd::sandbox::config_toml(
            &coupa,
            &bc,
            &db.to_string_lossy(),
            &secrets_path.to_string_lossy(),
        );
        if !paced {
            // No budget on the connector's side either: nothing waits.
            text = text
                .replace(
                    "api_version = \"R40\"\n",
                    "api_version = \"R40\"\nrequests_per_second = 100000\n",
                )
                .replace(
                    "client_secret = \"bc-client-secret\"\n",
                    "client_secret = \"bc-client-secret\"\nrate = { requests = 1000000, window_secs = 1, concurrent = 5 }\n",
                );
        }
        std::fs::write(dir.path().join("mlc.toml"), text).unwrap();
        let key_bytes: [u8; 32] = rand::random();
        let secrets = SecretFile::open(&secrets_path, SecretKey::from_bytes(key_bytes)).unwrap();
        mlc_cli::cmd::sandbox::store_secrets(&secrets, &coupa, &bc).unwrap();
        let key = key_bytes.iter().map(|b| format!("{b:02x}")).collect();
        Setup {
            coupa,
            bc,
            dir,
            key,
        }
    }

    fn command(&self, bin: &Path, once: bool) -> Command {
        let mut c = Command::new(bin);
        c.arg("run")
            .arg("--config")
            .arg(self.dir.path().join("mlc.toml"))
            .env("MLC_SECRET_KEY", &self.key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if once {
            c.arg("--once");
        }
        c
    }

    /// Invoices BC holds posted, and BC API requests served (token requests included).
    fn outcome(&self) -> (usize, usize, usize) {
        let posted = self
            .bc
            .purchase_invoices()
            .into_iter()
            .filter(|i| i.status != "Draft")
            .count();
        let bc_requests = api_requests(&self.bc.requests());
        let coupa_requests = api_requests(&self.coupa.requests());
        (posted, bc_requests, coupa_requests)
    }
}

/// Runs `mlc run --once` to the end and prints what it cost. `startup`: the CPU seconds of a
/// run with nothing to do (the configuration, the database, the clients, one empty poll), so
/// the cost per invoice is also shown without it.
async fn once(bin: &Path, n: usize, paced: bool, startup: f64) -> Setup {
    let s = Setup::start(n, paced).await;
    let mut child = s.command(bin, true).spawn().expect("starting mlc");
    let started = Instant::now();
    // The summary lines, read while it runs so a full pipe never blocks it.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut out).ok();
        out
    });
    let u = tokio::task::spawn_blocking(move || wait_usage(child, started))
        .await
        .unwrap();
    let out = reader.join().unwrap();
    let (posted, bc_requests, coupa_requests) = s.outcome();
    let requests = bc_requests + coupa_requests;
    let title = if paced {
        "paced to BC's budget (6,000 per 5 min; Coupa 25/s)"
    } else {
        "no rate limit"
    };
    println!(
        "== mlc run --once, {n} sandbox invoices, {title}: connector CPU ms per invoice and peak RSS (simulators out of process)"
    );
    for line in out.lines() {
        println!("  mlc: {line}");
    }
    println!("exit code:               {}", u.code);
    println!("BC invoices posted:      {posted}");
    println!("wall time:               {:.1} s", u.wall_secs);
    println!("connector CPU:           {:.2} s", u.cpu_secs);
    println!(
        "CPU ms per invoice:      {:.3}",
        u.cpu_secs * 1000.0 / n as f64
    );
    println!(
        "  without start-up:      {:.3} (start-up: {:.0} ms of CPU, from a run with nothing to do)",
        (u.cpu_secs - startup).max(0.0) * 1000.0 / n as f64,
        startup * 1000.0
    );
    println!(
        "CPU ms per request:      {:.3} ({bc_requests} BC + {coupa_requests} Coupa requests served)",
        u.cpu_secs * 1000.0 / requests.max(1) as f64
    );
    println!("peak RSS:                {:.1} MiB", u.peak_rss_mib);
    s
}

/// CPU seconds of `mlc run --once` with no invoice to move (the lowest of three runs).
async fn startup_cpu(bin: &Path) -> f64 {
    let s = Setup::start(0, false).await;
    let mut lowest = f64::MAX;
    for _ in 0..3 {
        let mut cmd = s.command(bin, true);
        cmd.stdout(Stdio::null());
        let child = cmd.spawn().expect("starting mlc");
        let started = Instant::now();
        let u = tokio::task::spawn_blocking(move || wait_usage(child, started))
            .await
            .unwrap();
        lowest = lowest.min(u.cpu_secs);
    }
    lowest
}

/// `mlc run` with nothing new to do: CPU per idle minute after its start-up.
async fn idle(bin: &Path, s: &Setup, secs: u64) {
    let mut cmd = s.command(bin, false);
    cmd.stdout(Stdio::null());
    let child = cmd.spawn().expect("starting mlc run");
    let pid = child.id();
    let started = Instant::now();
    // Start-up (configuration, first poll) is not idling.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu0 = proc_cpu_secs(pid);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let cpu1 = proc_cpu_secs(pid);
    // SAFETY: kill has no memory preconditions; `pid` is our own child, not yet waited for.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    let u = tokio::task::spawn_blocking(move || wait_usage(child, started))
        .await
        .unwrap();
    println!(
        "== mlc run (long-running), nothing new to do for {secs} s (queues drained, polls every poll_interval_secs)"
    );
    println!(
        "idle CPU:                {:.1} ms per idle minute ({:.0} ms in {secs} s; clock tick {:.0} ms)",
        (cpu1 - cpu0) * 1000.0 * 60.0 / secs as f64,
        (cpu1 - cpu0) * 1000.0,
        1000.0 / clock_ticks()
    );
    println!("peak RSS:                {:.1} MiB", u.peak_rss_mib);
}

#[tokio::main]
async fn main() {
    let n = env_num("BENCH_INVOICES", 500) as usize;
    let paced = env_num("BENCH_PACED", 1) != 0;
    let idle_secs = env_num("BENCH_IDLE_SECS", 20);
    let bin = mlc_bin();
    println!("binary: {}", bin.display());

    let startup = startup_cpu(&bin).await;
    let s = once(&bin, n, false, startup).await;
    if idle_secs > 0 {
        idle(&bin, &s, idle_secs).await;
    }
    drop(s);
    if paced {
        once(&bin, n, true, startup).await;
    }
}
