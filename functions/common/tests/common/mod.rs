//! What the handler tests share: the two simulators with the master data the sample events
//! refer to, and a fresh deployment on moto with the simulators' credentials as secrets.
#![allow(dead_code)]

use std::time::Duration;

use mlc_sandbox::bc::{BcConfig, BcSim};
use mlc_sandbox::coupa::{CoupaConfig, CoupaSim, NewSupplier};
use mlc_shared::adapters::aws::AwsSettings;

/// Both simulators without rate limits (BC with `notification_delay`), seeded with vendors
/// V10000/V20000, G/L 6100/6420/6430, DEPARTMENT ADM/OPS, PROJECT P100, and Coupa supplier
/// SUP-001 (Fabrikam).
pub async fn simulators(notification_delay: Duration) -> (CoupaSim, BcSim) {
    let coupa = CoupaSim::start(CoupaConfig {
        rate_per_sec: None,
        ..CoupaConfig::default()
    })
    .await
    .unwrap();
    let bc = BcSim::start(BcConfig {
        rate_limit: None,
        notification_delay,
        ..BcConfig::default()
    })
    .await
    .unwrap();
    for (n, name) in [
        ("V10000", "Fabrikam, Inc."),
        ("V20000", "First Up Consultants"),
    ] {
        bc.add_vendor(n, name);
    }
    for gl in ["6100", "6420", "6430"] {
        bc.add_account(gl, gl);
    }
    bc.add_dimension("DEPARTMENT", &["ADM", "OPS"]);
    bc.add_dimension("PROJECT", &["P100"]);
    coupa.add_supplier(NewSupplier::new("Fabrikam, Inc.", "SUP-001"));
    (coupa, bc)
}

pub async fn sdk() -> aws_config::SdkConfig {
    mlc_lambda::local::emulator_sdk_config(mlc_sandbox::moto::endpoint()).await
}

/// A fresh deployment named `prefix` + a unique suffix (so tests run in parallel), with the
/// simulators' credentials and `extra` secrets stored.
pub async fn deployment(
    sdk: &aws_config::SdkConfig,
    prefix: &str,
    coupa: &CoupaSim,
    bc: &BcSim,
    extra: &[(&str, &str)],
) -> AwsSettings {
    let settings = mlc_lambda::local::stack(
        sdk,
        &format!("{prefix}{}", unique()),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    let mut secrets = vec![
        ("coupa-client-secret", coupa.config().client_secret.clone()),
        ("bc-client-secret", bc.config().client_secret.clone()),
        (
            "coupa-webhook-secret",
            coupa.config().webhook_secret.clone(),
        ),
    ];
    secrets.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    for (name, value) in secrets {
        mlc_lambda::local::put_secret(sdk, &settings, name, &value)
            .await
            .unwrap();
    }
    settings
}

/// The sandbox configuration for these simulators, paced to them, with the sample events'
/// project code P100.
pub fn config_text(coupa: &CoupaSim, bc: &BcSim) -> String {
    mlc_cli::cmd::sandbox::config_toml(coupa, bc, "unused.sqlite", "unused.secrets")
        .replace(
            "api_version = \"R40\"\n",
            "api_version = \"R40\"\nrequests_per_second = 1000\n",
        )
        .replace("P-100", "P100")
}

fn unique() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            ^ (std::process::id() as u128)
    )
}
