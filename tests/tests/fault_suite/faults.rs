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

/// Throttle answers that announce their wait: bursts (one to three in a row) of 429 with
/// `Retry-After: 1` or `2` on BC's endpoints, and 429 or 503 with `Retry-After: 1` on Coupa's
/// invoice reads (Coupa's throttle may answer 503). Returns how many faulty answers the simulators hold.
pub fn announced_throttles(h: &Harness, rng: &mut StdRng) -> u64 {
    let bc = [1, 2].map(|s| FaultKind::TooManyRequests {
        retry_after: Some(s),
    });
    let coupa = [
        FaultKind::TooManyRequests {
            retry_after: Some(1),
        },
        FaultKind::Unavailable {
            retry_after: Some(1),
        },
    ];
    // Coupa's on the invoice reads (the poll's list, the map step's reads): supplier reads are
    // rare enough that a storm there may never fire.
    push(
        h,
        storm(rng, 5, BC_TARGETS, &bc, 3),
        storm(rng, 2, &[("GET", "/api/invoices")], &coupa, 2),
    )
}

/// Slower than a scenario's visibility timeout, faster than its HTTP timeout.
pub const SLOW: Duration = Duration::from_millis(2_500);
/// Slower than a scenario's HTTP timeout: the client gives up, the server goes on.
pub const TOO_SLOW: Duration = Duration::from_millis(4_000);
/// The queue's visibility timeout in the slow-answer scenarios: shorter than [`SLOW`].
pub const SLOW_VISIBILITY: Duration = Duration::from_secs(2);
/// BC's HTTP timeout in the slow-answer scenarios: between [`SLOW`] and [`TOO_SLOW`].
pub const SLOW_HTTP_TIMEOUT: Duration = Duration::from_secs(3);

/// Answers that come late (`Hang`: the server works on after the delay, whether the client
/// still waits or not), in a seeded order: BC creates, post actions and reads, and Coupa
/// invoice reads [`SLOW`]; a few BC creates and post actions [`TOO_SLOW`]. Returns how many.
pub fn slow_answers(h: &Harness, rng: &mut StdRng) -> u64 {
    let hang = |d: Duration| FaultKind::Hang {
        millis: d.as_millis() as u64,
    };
    let mut bc: Vec<FaultRule> = [
        (4, "POST", "/purchaseInvoices", SLOW),
        (3, "POST", "Microsoft.NAV.post", SLOW),
        (3, "GET", "/purchaseInvoices", SLOW),
        (2, "POST", "/purchaseInvoices", TOO_SLOW),
        (2, "POST", "Microsoft.NAV.post", TOO_SLOW),
    ]
    .into_iter()
    .flat_map(|(n, m, p, d)| (0..n).map(move |_| FaultRule::new(m, p, 1, hang(d))))
    .collect();
    // Seeded order: which document meets which delay.
    for i in (1..bc.len()).rev() {
        bc.swap(i, rng.random_range(0..=i));
    }
    let coupa = (0..2)
        .map(|_| FaultRule::new("GET", "/api/invoices/", 1, hang(SLOW)))
        .collect();
    push(h, bc, coupa)
}

/// Waits the simulators announced (429 or 503 with `Retry-After`) to any client.
pub fn announced_waits(h: &Harness) -> usize {
    h.coupa
        .requests()
        .iter()
        .chain(h.bc.requests().iter())
        .filter(|r| matches!(r.status, 429 | 503) && r.retry_after.is_some())
        .count()
}

/// BC creates (`POST …/purchaseInvoices`) and post actions whose client gave up waiting for
/// the answer (the simulator went on with them): (creates, post actions).
pub fn given_up(h: &Harness) -> (usize, usize) {
    let gone: Vec<_> =
        h.bc.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.status == mlc_sandbox::CLIENT_GONE)
            .collect();
    let creates = gone
        .iter()
        .filter(|r| r.path.ends_with("/purchaseInvoices"))
        .count();
    let posts = gone
        .iter()
        .filter(|r| r.path.ends_with("Microsoft.NAV.post"))
        .count();
    // Creates and post actions travel in `$batch` requests (issue #16): a hang on one of them
    // holds its whole batch, and one held past the client's timeout was given up on.
    let late: Vec<_> =
        h.bc.batch_operations()
            .into_iter()
            .filter(|o| o.delayed_ms >= SLOW_HTTP_TIMEOUT.as_millis() as u64)
            .collect();
    let batched_creates = late
        .iter()
        .filter(|o| o.method == "POST" && o.url.ends_with("/purchaseInvoices"))
        .count();
    let batched_posts = late
        .iter()
        .filter(|o| o.url.ends_with("Microsoft.NAV.post"))
        .count();
    (creates + batched_creates, posts + batched_posts)
}
