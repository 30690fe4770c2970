//! Keeping a lease while work runs: the queue's hold on a message, the ledger's claim on a
//! document. Both renew the same way, every third of the lease.

use std::future::Future;
use std::time::Duration;

/// Runs `work`, calling `renew` every third of `lease` until it finishes; a renewal's failure
/// is `renew`'s to report.
pub async fn renewing<T, R: Future<Output = ()>>(
    lease: Duration,
    work: impl Future<Output = T>,
    mut renew: impl FnMut() -> R,
) -> T {
    let every = (lease / 3).max(Duration::from_millis(100));
    tokio::pin!(work);
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = beat.tick() => renew().await,
        }
    }
}
