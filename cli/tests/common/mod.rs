//! Running the `mlc` binary as a user does, for the CLI's integration tests.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// The secrets-file key the tests give `mlc` (through `MLC_SECRET_KEY`).
pub const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Runs `mlc ARGS` in `dir`, feeding `stdin` if given; logs at their default level.
pub fn mlc(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlc"))
        .args(args)
        .current_dir(dir)
        .env("MLC_SECRET_KEY", KEY)
        .env_remove("MLC_SECRET_KEY_FILE")
        .env_remove("MLC_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// Standard output and standard error together.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Stores the simulators' secrets as an operator does: `mlc secrets set NAME` in `dir`, the
/// value on standard input.
pub fn store_secrets(
    dir: &std::path::Path,
    coupa: &mlc_sandbox::coupa::CoupaSim,
    bc: &mlc_sandbox::bc::BcSim,
) {
    for (name, value) in [
        ("coupa-client-secret", coupa.config().client_secret.clone()),
        ("bc-client-secret", bc.config().client_secret.clone()),
        (
            "coupa-webhook-secret",
            coupa.config().webhook_secret.clone(),
        ),
    ] {
        let o = mlc(
            dir,
            &["secrets", "set", name, "-c", "mlc.toml"],
            Some(&value),
        );
        assert!(o.status.success(), "{}", text(&o));
    }
}

/// Both simulators with the demo's data (6 approved invoices, 3 of them unmappable), the
/// sandbox configuration as `mlc.toml` and its secrets stored.
pub struct Deployment {
    pub dir: tempfile::TempDir,
    pub coupa: mlc_sandbox::coupa::CoupaSim,
    pub bc: mlc_sandbox::bc::BcSim,
}

pub async fn deployment() -> Deployment {
    use mlc_sandbox::bc::{BcConfig, BcSim};
    use mlc_sandbox::coupa::{CoupaConfig, CoupaSim};
    let coupa = CoupaSim::start(CoupaConfig::default()).await.unwrap();
    let bc = BcSim::start(BcConfig::default()).await.unwrap();
    mlc_sandbox::demo::seed_bc(&bc);
    mlc_sandbox::demo::seed_coupa(&coupa, 6, 3);
    let dir = tempfile::tempdir().unwrap();
    let cfg = mlc_cli::cmd::sandbox::config_toml(&coupa, &bc, "mlc.sqlite", "mlc.secrets");
    std::fs::write(dir.path().join("mlc.toml"), cfg).unwrap();
    store_secrets(dir.path(), &coupa, &bc);
    Deployment { dir, coupa, bc }
}
