use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use crate::config::RateBudget;

/// Paces requests to a [`RateBudget`] with a GCRA limiter (governor) and a semaphore.
///
/// A GCRA with burst `b` and rate `r` admits `b + r·window` requests in a window, so the rate is
/// set to `(requests - b) / window`: no sliding window on the server ever sees more than
/// `requests`.
#[derive(Clone, Default)]
pub struct Pacer {
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    slots: Option<Arc<Semaphore>>,
}

pub struct PacerPermit {
    _slot: Option<OwnedSemaphorePermit>,
}

impl Pacer {
    /// Whether both pace against one budget (clones of one pacer).
    pub fn same_as(&self, other: &Self) -> bool {
        match (&self.limiter, &other.limiter) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }

    pub fn unlimited() -> Self {
        Self::default()
    }

    pub fn new(budget: &RateBudget) -> Self {
        let requests = budget.requests.max(1);
        let burst = (requests / 20).clamp(1, requests.saturating_sub(1).max(1));
        let steady = requests.saturating_sub(burst).max(1);
        let window = Duration::from_secs(budget.window_secs.max(1));
        let period = window / steady;
        let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
            .expect("period is positive")
            .allow_burst(NonZeroU32::new(burst).expect("burst >= 1"));
        Self {
            limiter: Some(Arc::new(RateLimiter::direct(quota))),
            slots: budget
                .concurrent
                .map(|n| Arc::new(Semaphore::new(n.max(1)))),
        }
    }

    /// Waits for a slot under the budget. Hold the permit for the duration of the request.
    pub async fn acquire(&self) -> PacerPermit {
        let slot = match &self.slots {
            Some(s) => Some(
                s.clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore never closed"),
            ),
            None => None,
        };
        if let Some(l) = &self.limiter {
            l.until_ready().await;
        }
        PacerPermit { _slot: slot }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unlimited_pacer_never_waits() {
        let p = Pacer::unlimited();
        for _ in 0..1000 {
            let _g = p.acquire().await;
        }
    }

    #[tokio::test]
    async fn pacer_admits_a_burst_then_spreads_the_rest() {
        // 40 per second → burst 2, then one every 1/38 s: 10 permits take well over 100 ms.
        let p = Pacer::new(&RateBudget::per_second(40));
        let start = std::time::Instant::now();
        for _ in 0..10 {
            let _g = p.acquire().await;
        }
        assert!(
            start.elapsed() >= Duration::from_millis(150),
            "{:?}",
            start.elapsed()
        );
    }
}
