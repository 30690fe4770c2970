//! What the crash drivers (`driver.rs` embedded, `aws.rs` on moto) need of a scenario's
//! systems, whatever the integration: its configuration, its secrets, and the simulators'
//! base URLs, so that every worker (a new process, for the ledger) reaches every simulator
//! through a relay of its own and the simulators can tell the clients apart.
#![allow(dead_code)]

use mlc_shared::adapters::embedded::SecretFile;
use mlc_shared::config::{Config, SystemConfig};

use crate::common::Harness;

/// A scenario's systems, as the drivers see them.
pub trait Rig: Send + Sync {
    /// The configuration a worker starts from (its own addresses are put in by
    /// [`own_addresses`]).
    fn config(&self) -> &Config;
    /// The secrets the configuration names (copied to Secrets Manager for the AWS runtime).
    fn secrets(&self) -> &SecretFile;
    /// Every simulator's base URL ("http://127.0.0.1:port").
    fn base_urls(&self) -> Vec<String>;
    /// The drivers made time pass (leases and visibility timeouts ran out): what the
    /// simulators hold that times out meanwhile, such as the sessions of workers that died,
    /// has timed out too.
    fn time_passed(&self) {}
}

impl Rig for Harness {
    fn config(&self) -> &Config {
        &self.cfg
    }

    fn secrets(&self) -> &SecretFile {
        &self.secrets
    }

    fn base_urls(&self) -> Vec<String> {
        vec![self.coupa.base_url(), self.bc.base_url()]
    }
}

/// Secrets a deployment holds, from the rig's file: what `mlc secrets set` stored, without
/// the token cache the connector keeps there.
pub fn deployment_secrets(rig: &dyn Rig) -> Vec<(String, String)> {
    let file = rig.secrets();
    file.names()
        .unwrap()
        .into_iter()
        .filter(|n| !n.starts_with("token-cache/"))
        .map(|n| {
            let v = file.read(&n).unwrap().expose().to_string();
            (n, v)
        })
        .collect()
}

/// A TCP relay to `target` ("http://host:port") on a fresh loopback port; returns its base URL.
/// A client reaching a simulator through its own relay sends its own `Host`, so the
/// simulator's request log tells its requests apart from other clients'.
async fn relay(target: &str) -> String {
    let to = target
        .strip_prefix("http://")
        .expect("a simulator's http URL")
        .to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let to = to.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    format!("http://{addr}")
}

/// Rewrites every string field of every system (URLs: base, API, token) that starts with one
/// of `moves`' simulator URLs, through the configuration's own serialized form, so it holds
/// for any system type without naming its fields.
fn rewrite_systems(cfg: &mut Config, edit: impl Fn(&str, &mut serde_json::Value)) {
    let names: Vec<String> = cfg.systems.iter().map(|(n, _)| n.to_string()).collect();
    for name in names {
        let system = cfg.systems.get(&name).unwrap();
        let mut json = serde_json::to_value(system).unwrap();
        edit(&name, &mut json);
        let system: SystemConfig = serde_json::from_value(json).unwrap();
        cfg.systems.insert(name, system);
    }
}

fn replace_prefixes(v: &mut serde_json::Value, moves: &[(String, String)]) {
    match v {
        serde_json::Value::String(s) => {
            if let Some((from, to)) = moves.iter().find(|(from, _)| s.starts_with(from.as_str())) {
                *s = format!("{to}{}", &s[from.len()..]);
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| replace_prefixes(x, moves)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|x| replace_prefixes(x, moves)),
        _ => {}
    }
}

/// Points a worker's configuration at the simulators through relays of its own: one HTTP client
/// per system and worker process, each known to the simulators by the address it dialled.
pub async fn own_addresses(rig: &dyn Rig, cfg: &mut Config) {
    let mut moves = Vec::new();
    for url in rig.base_urls() {
        let to = relay(&url).await;
        moves.push((url, to));
    }
    rewrite_systems(cfg, |_, json| replace_prefixes(json, &moves));
}

/// Gives the integrations' target systems a shorter HTTP timeout than the product's 60 s, so
/// a response lost to a timeout can be tested in seconds.
pub fn shorten_target_timeout(cfg: &mut Config, timeout: std::time::Duration) {
    let targets: Vec<String> = cfg
        .integrations
        .iter()
        .filter_map(|i| i.target.clone())
        .collect();
    rewrite_systems(cfg, |name, json| {
        if targets.iter().any(|t| t == name) {
            json["http_timeout_secs"] = timeout.as_secs().max(1).into();
        }
    });
}
