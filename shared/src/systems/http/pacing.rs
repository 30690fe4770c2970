use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::Clock as _;
use governor::{DefaultDirectRateLimiter, InsufficientCapacity, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::RetryPolicy;
pub use crate::config::RateBudget;

/// How far apart requests leave after a pause on a client without a budget: with no published
/// rate to go by, ten a second probes the server without stampeding it.
const UNPACED_RESUME_SPACING: Duration = Duration::from_millis(100);

/// Paces requests to a [`RateBudget`] with a GCRA limiter (governor) and a semaphore, and holds
/// every request of the client while the server has asked it to wait.
///
/// A GCRA with burst `b` and rate `r` admits `b + r·window` requests in a window, so the rate is
/// set to `(requests - b) / window`: no sliding window on the server ever sees more than
/// `requests`.
///
/// Clones share the budget and the pause: a client's clones are one app user to the server, and
/// a 429 is about that user, not about the one request that drew it.
#[derive(Clone)]
pub struct Pacer {
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    /// Whose turn it is to wait for the limiter: callers queue here in arrival order and only
    /// the first sleeps until its cells are due. Without it every waiting worker slept to the
    /// same instant, all woke, one won and the rest slept again: waiting for the budget cost
    /// about as much CPU as the work (issue #16 item 4).
    turn: Arc<tokio::sync::Mutex<()>>,
    slots: Option<Arc<Semaphore>>,
    throttle: Arc<Throttle>,
}

/// The client-wide pause a throttle answer starts.
struct Throttle {
    state: Mutex<ThrottleState>,
    /// Releases callers one at a time after a pause (burst 1), at the pacer's own rate: a GCRA
    /// that sat idle through the pause has its whole burst saved up, and waiting workers must
    /// not spend it at once on a server that has just said "too many".
    resume: DefaultDirectRateLimiter,
}

#[derive(Default)]
struct ThrottleState {
    /// No request leaves before this instant.
    until: Option<Instant>,
    /// Throttle answers since the last success: the exponent of the backoff when the server
    /// names no wait, and a sign that the client is still easing back in.
    streak: u32,
}

impl Throttle {
    fn new(spacing: Duration) -> Self {
        let quota = Quota::with_period(spacing.max(Duration::from_millis(1)))
            .expect("spacing is positive")
            .allow_burst(NonZeroU32::MIN);
        Self {
            state: Mutex::default(),
            resume: RateLimiter::direct(quota),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ThrottleState> {
        // The state is two plain values, always consistent: a panic elsewhere cannot spoil it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The end of the pause, while one is running.
    fn paused_until(&self) -> Option<Instant> {
        self.state().until.filter(|u| *u > Instant::now())
    }
}

/// Why [`Pacer::acquire`] did not wait: the client is paused for longer than the caller may wait
/// inside one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paused {
    /// How much of the server's wait is left.
    pub retry_after: Duration,
}

pub struct PacerPermit {
    _slot: Option<OwnedSemaphorePermit>,
}

impl Default for Pacer {
    fn default() -> Self {
        Self::unlimited()
    }
}

impl Pacer {
    /// Whether both pace against one budget and pause together (clones of one pacer).
    pub fn same_as(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.throttle, &other.throttle)
    }

    pub fn unlimited() -> Self {
        Self {
            limiter: None,
            turn: Arc::default(),
            slots: None,
            throttle: Arc::new(Throttle::new(UNPACED_RESUME_SPACING)),
        }
    }

    pub fn new(budget: &RateBudget) -> Self {
        let requests = budget.requests.max(1);
        let burst = (requests / 20).clamp(1, requests.saturating_sub(1).max(1));
        let steady = requests.saturating_sub(burst).max(1);
        let window = Duration::from_secs(budget.window_secs.max(1));
        let period = (window / steady).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)
            .expect("period is positive")
            .allow_burst(NonZeroU32::new(burst).expect("burst >= 1"));
        Self {
            limiter: Some(Arc::new(RateLimiter::direct(quota))),
            turn: Arc::default(),
            slots: budget
                .concurrent
                .map(|n| Arc::new(Semaphore::new(n.max(1)))),
            throttle: Arc::new(Throttle::new(period)),
        }
    }

    /// Waits out any pause, then for a slot under the budget. Hold the permit for the duration
    /// of the request. A pause with more than `max_wait` left is not waited for: the caller gets
    /// [`Paused`] at once and hands the wait to the queue, freeing the worker.
    pub async fn acquire(&self, max_wait: Duration) -> Result<PacerPermit, Paused> {
        self.acquire_n(max_wait, 1).await
    }

    /// As [`Pacer::acquire`] for a request the server counts as `cost` requests against the
    /// budget (a BC `$batch` counts each of its operations): it takes `cost` cells of the
    /// limiter, and one concurrency slot (the server runs the operations one after another).
    pub async fn acquire_n(&self, max_wait: Duration, cost: u32) -> Result<PacerPermit, Paused> {
        let cost = NonZeroU32::new(cost).unwrap_or(NonZeroU32::MIN);
        let mut waited = false;
        loop {
            if let Some(until) = self.throttle.paused_until() {
                let left = until.saturating_duration_since(Instant::now());
                if left > max_wait {
                    return Err(Paused { retry_after: left });
                }
                waited = true;
                // The pause may be extended meanwhile (another 429): the loop looks again.
                tokio::time::sleep_until(until).await;
                continue;
            }
            if waited || self.throttle.state().streak > 0 {
                let _ = until_n_ready(&self.throttle.resume, NonZeroU32::MIN).await;
            }
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
                let _turn = self.turn.lock().await;
                if until_n_ready(l, cost).await.is_err() {
                    // More than the burst at once: take the cells one by one (never faster
                    // than the budget either way).
                    for _ in 0..cost.get() {
                        let _ = until_n_ready(l, NonZeroU32::MIN).await;
                    }
                }
            }
            // A throttle answer may have come in while this caller queued for its slot: it must
            // not leave inside the window the server just announced.
            if self.throttle.paused_until().is_some() {
                waited = true;
                continue;
            }
            return Ok(PacerPermit { _slot: slot });
        }
    }

    /// The server throttled this client: nobody sends until the server's `Retry-After` has
    /// passed, or, when it named none, for an exponential backoff with full jitter that grows
    /// with each throttle since the last success. Returns the wait from now.
    pub fn throttled(&self, retry_after: Option<Duration>, policy: &RetryPolicy) -> Duration {
        let mut s = self.throttle.state();
        let wait = retry_after.unwrap_or_else(|| policy.backoff(s.streak));
        s.streak = s.streak.saturating_add(1);
        let until = Instant::now() + wait;
        // Never shortened: a later answer with a shorter wait does not undo an earlier one.
        s.until = Some(s.until.map_or(until, |u| u.max(until)));
        wait
    }

    /// A server announced a wait without throttling (a 503 with `Retry-After`): the client waits
    /// it out, but the backoff does not grow.
    pub fn pause_for(&self, wait: Duration) {
        let mut s = self.throttle.state();
        let until = Instant::now() + wait;
        s.until = Some(s.until.map_or(until, |u| u.max(until)));
    }

    /// A request went through: the next throttle starts the backoff afresh.
    pub fn succeeded(&self) {
        let mut s = self.throttle.state();
        s.streak = 0;
    }

    /// The end of the latest pause (in the past once it is over); None if never paused.
    pub fn paused_until(&self) -> Option<std::time::Instant> {
        self.throttle.state().until.map(Instant::into_std)
    }
}

/// Waits until `n` cells of `l` are free and takes them. As governor's `until_n_ready`, but on
/// tokio's timer: governor's sleeps on its own timer thread, a thread switch more per wait.
async fn until_n_ready(
    l: &DefaultDirectRateLimiter,
    n: NonZeroU32,
) -> Result<(), InsufficientCapacity> {
    loop {
        match l.check_n(n)? {
            Ok(()) => return Ok(()),
            Err(not_until) => {
                tokio::time::sleep(not_until.wait_time_from(l.clock().now())).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_WAIT: Duration = Duration::ZERO;

    #[tokio::test]
    async fn unlimited_pacer_never_waits() {
        let p = Pacer::unlimited();
        for _ in 0..1000 {
            let _g = p.acquire(NO_WAIT).await.unwrap();
        }
    }

    #[tokio::test]
    async fn pacer_admits_a_burst_then_spreads_the_rest() {
        // 40 per second → burst 2, then one every 1/38 s: 10 permits take well over 100 ms.
        let p = Pacer::new(&RateBudget::per_second(40));
        let start = std::time::Instant::now();
        for _ in 0..10 {
            let _g = p.acquire(NO_WAIT).await.unwrap();
        }
        assert!(
            start.elapsed() >= Duration::from_millis(150),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn a_pause_longer_than_the_caller_may_wait_is_refused_at_once() {
        let p = Pacer::unlimited();
        let clone = p.clone();
        p.throttled(Some(Duration::from_secs(45)), &RetryPolicy::default());
        let e = clone
            .acquire(Duration::from_secs(30))
            .await
            .err()
            .expect("a 45 s pause is not waited inside a call");
        assert!(e.retry_after > Duration::from_secs(44), "{e:?}");
    }

    #[tokio::test]
    async fn a_pause_holds_every_clone_until_it_ends() {
        let p = Pacer::unlimited();
        let clone = p.clone();
        let start = std::time::Instant::now();
        p.throttled(Some(Duration::from_millis(300)), &RetryPolicy::default());
        let _g = clone.acquire(Duration::from_secs(30)).await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(300));
    }

    #[test]
    fn the_backoff_grows_with_each_throttle_and_resets_on_success() {
        let p = Pacer::unlimited();
        let policy = RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(60),
        };
        // Full jitter picks from [0, base·2^n]: the bound, not the pick, shows the streak.
        let waits: Vec<Duration> = (0..5).map(|_| p.throttled(None, &policy)).collect();
        for (n, w) in waits.iter().enumerate() {
            assert!(*w <= Duration::from_millis(100 << n), "{n}: {w:?}");
        }
        assert_eq!(p.throttle.state().streak, 5);
        p.succeeded();
        assert_eq!(p.throttle.state().streak, 0);
    }
}
