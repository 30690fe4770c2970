//! Fault knobs both fault suites (embedded, AWS) turn: seeded storms of HTTP faults on the
//! simulators, and token expiry on a timer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mlc_sandbox::{FaultKind, FaultRule};
use rand::Rng;
use rand::rngs::StdRng;

use crate::common::Harness;

/// `n` seeded fault rules of the given kinds on the given (method, path) pairs.
pub fn storm(
    rng: &mut StdRng,
    n: usize,
    targets: &[(&str, &str)],
    kinds: &[FaultKind],
    max_count: u32,
) -> Vec<FaultRule> {
    (0..n)
        .map(|_| {
            let (m, p) = targets[rng.random_range(0..targets.len())];
            FaultRule::new(
                m,
                p,
                rng.random_range(1..=max_count),
                kinds[rng.random_range(0..kinds.len())].clone(),
            )
        })
        .collect()
}

pub const BC_TARGETS: &[(&str, &str)] = &[
    ("GET", "/purchaseInvoices"),
    ("POST", "/purchaseInvoices"),
    ("POST", "Microsoft.NAV.post"),
    ("GET", "/purchaseInvoiceLines"),
    ("POST", "/dimensionSetLines"),
];
pub const COUPA_TARGETS: &[(&str, &str)] = &[("GET", "/api/invoices"), ("GET", "/api/suppliers")];

/// Pushes rules to the simulators; returns how many faulty answers they hold.
pub fn push(h: &Harness, bc: Vec<FaultRule>, coupa: Vec<FaultRule>) -> u64 {
    let mut n = 0;
    for r in bc {
        n += r.count as u64;
        h.bc.fail_next(r);
    }
    for r in coupa {
        n += r.count as u64;
        h.coupa.fail_next(r);
    }
    n
}

/// Expires every token of both systems every few hundred milliseconds while the documents
/// move; returns the ticker and how many times it fired.
pub fn token_ticker(
    h: &Arc<Harness>,
    every: Duration,
) -> (tokio::task::JoinHandle<()>, Arc<AtomicU64>) {
    let fired = Arc::new(AtomicU64::new(0));
    let (h, n) = (h.clone(), fired.clone());
    let task = tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            h.coupa.expire_tokens();
            h.bc.expire_tokens();
            n.fetch_add(1, Ordering::Relaxed);
        }
    });
    (task, fired)
}
