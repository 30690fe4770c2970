//! The real `mlc run` process, killed with SIGKILL at seeded random moments and restarted on
//! the same database file; the simulators' final state is the verdict.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlc_shared::adapters::embedded::{SecretFile, SecretKey};
use mlc_shared::config::Config;
use mlc_shared::ports::Audit;
use rand::Rng;

use super::driver::time_passes;
use super::world::{self, STANDARD_POISON};
use crate::common::Harness;

/// The secrets key the child processes get in `MLC_SECRET_KEY`.
const KEY: &str = "9f1c2b3a4d5e6f708192a3b4c5d6e7f80112233445566778899aabbccddeeff0";

/// `target/debug/mlc`, built now: a test of another package cannot use `CARGO_BIN_EXE_mlc`.
fn mlc_binary() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let status = Command::new(env!("CARGO"))
        .args(["build", "-p", "mlc", "--quiet"])
        .current_dir(workspace)
        .status()
        .expect("cargo build -p mlc");
    assert!(status.success(), "cargo build -p mlc failed");
    // CARGO_TARGET_TMPDIR is <target>/tmp, whatever CARGO_TARGET_DIR says.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let bin = target.join("debug").join("mlc");
    assert!(bin.exists(), "{} was not built", bin.display());
    bin
}

fn mlc(bin: &Path, dir: &Path, args: &[&str], log: &str) -> std::process::Child {
    let out = std::fs::File::create(dir.join(format!("{log}.out"))).unwrap();
    let err = std::fs::File::create(dir.join(format!("{log}.err"))).unwrap();
    Command::new(bin)
        .args(args)
        .current_dir(dir)
        .env("MLC_SECRET_KEY", KEY)
        .env_remove("MLC_SECRET_KEY_FILE")
        .env("MLC_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start mlc")
}

pub async fn sigkill_scenario() {
    let name = "mlc_process_killed_with_sigkill";
    let seed = world::scenario_seed(name);
    println!(
        "scenario {name}: seed {seed} (suite seed {}, MLC_FAULT_SEED)",
        world::suite_seed()
    );
    let bin = mlc_binary();
    let started = Instant::now();
    let (coupa, bc) = super::unlimited();
    // The harness brings the simulators with their suppliers, vendors, accounts, dimensions;
    // the process gets its own directory, database and secrets file with a known key.
    let h = Arc::new(Harness::with(coupa, bc, "").await);
    let docs = world::seed_documents(
        &h,
        seed,
        "KILL",
        world::good_docs(super::GOOD),
        STANDARD_POISON,
    );
    let dir = tempfile::tempdir().unwrap();
    let text = mlc_cli::cmd::sandbox::config_toml(&h.coupa, &h.bc, "mlc.sqlite", "mlc.secrets")
        .replace(
            "[runtime]\n",
            "[runtime]\npoll_interval_secs = 1\nretry_base_delay_ms = 20\n",
        )
        .replace(
            "api_version = \"R40\"\n",
            "api_version = \"R40\"\nrequests_per_second = 1000\n",
        )
        .replace(
            "client_secret = \"bc-client-secret\"\n",
            "client_secret = \"bc-client-secret\"\nrate = { requests = 1000000, window_secs = 1, concurrent = 5 }\n",
        );
    let cfg_path = dir.path().join("mlc.toml");
    std::fs::write(&cfg_path, text).unwrap();
    let cfg = Config::load(&cfg_path).unwrap();
    let secrets =
        SecretFile::open(&cfg.runtime.secrets_file, SecretKey::parse(KEY).unwrap()).unwrap();
    mlc_cli::cmd::sandbox::store_secrets(&secrets, &h.coupa, &h.bc).unwrap();

    let mut rng = world::keyed_rng(seed, "kills");
    let kills = 8;
    let mut timeline = Vec::new();
    for k in 0..kills {
        let mut child = mlc(
            &bin,
            dir.path(),
            &["run", "-c", "mlc.toml"],
            &format!("run-{k}"),
        );
        let after = Duration::from_millis(rng.random_range(150..800));
        tokio::time::sleep(after).await;
        if let Ok(Some(status)) = child.try_wait() {
            let err = std::fs::read_to_string(dir.path().join(format!("run-{k}.err"))).unwrap();
            panic!("mlc run exited by itself ({status}) before the kill:\n{err}");
        }
        child.kill().unwrap(); // SIGKILL on unix
        child.wait().unwrap();
        let bc = h.bc.purchase_invoices();
        let open = bc.iter().filter(|i| i.status == "Open").count();
        timeline.push(format!(
            "kill {} after {} ms: BC has {} invoices, {} posted",
            k + 1,
            after.as_millis(),
            bc.len(),
            open
        ));
        // While it is down, the killed process's lease and its in-flight messages' visibility
        // timeout run out (see driver.rs: time passing).
        time_passes(&cfg.runtime.database);
    }
    for line in &timeline {
        println!("{name}: {line}");
    }
    // The last restart runs until idle.
    let status = mlc(
        &bin,
        dir.path(),
        &["run", "-c", "mlc.toml", "--once"],
        "once",
    )
    .wait()
    .unwrap();
    let out = std::fs::read_to_string(dir.path().join("once.out")).unwrap();
    println!("{name}: mlc run --once: {}", out.trim());
    assert!(
        status.success(),
        "mlc run --once: {status}\n{out}\n{}",
        std::fs::read_to_string(dir.path().join("once.err")).unwrap()
    );

    // SAFETY of reading: no child runs any more; open the same file in-process.
    let p = mlc_cli::embedded::pipeline(&cfg, &secrets).await.unwrap();
    let mut row = world::verdict(&h, &p, &docs, name, seed).await;
    row.faults = kills;
    row.secs = world::secs(started.elapsed());
    let failed = p
        .env
        .store
        .query_audit(&mlc_shared::ports::AuditFilter {
            status: Some(mlc_shared::ports::AuditStatus::Failed),
            ..Default::default()
        })
        .await
        .unwrap();
    row.redeliveries = failed.len() as u64;
    world::print_table(std::slice::from_ref(&row));
    world::assert_clean(std::slice::from_ref(&row));
}
