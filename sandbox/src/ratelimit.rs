//! Rate limiters: a token bucket (Coupa's "25/s plus a burst queue of 20") and a
//! sliding-window log (BC's "6,000 requests per 5-minute sliding window").

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Token bucket refilled at `rate` tokens/second, holding at most `capacity`.
pub(crate) struct TokenBucket {
    rate: f64,
    capacity: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub(crate) fn new(rate_per_sec: u32, capacity: u32) -> Self {
        TokenBucket {
            rate: rate_per_sec as f64,
            capacity: capacity.max(1) as f64,
            state: Mutex::new((capacity.max(1) as f64, Instant::now())),
        }
    }

    /// Takes one token if available.
    pub(crate) fn try_acquire(&self) -> bool {
        let mut st = self.state.lock().unwrap();
        let now = Instant::now();
        let refill = now.duration_since(st.1).as_secs_f64() * self.rate;
        st.0 = (st.0 + refill).min(self.capacity);
        st.1 = now;
        if st.0 >= 1.0 {
            st.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Sliding-window log: at most `limit` accepted requests in any `window`.
pub(crate) struct SlidingWindow {
    limit: usize,
    window: Duration,
    accepted: Mutex<VecDeque<Instant>>,
}

impl SlidingWindow {
    pub(crate) fn new(limit: u32, window: Duration) -> Self {
        SlidingWindow {
            limit: limit as usize,
            window,
            accepted: Mutex::new(VecDeque::new()),
        }
    }

    /// Records and admits the request if the window has room. Rejected requests are
    /// not recorded (they did no work), so a client that backs off recovers.
    pub(crate) fn try_acquire(&self) -> bool {
        let now = Instant::now();
        let mut log = self.accepted.lock().unwrap();
        while log
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            log.pop_front();
        }
        if log.len() < self.limit {
            log.push_back(now);
            true
        } else {
            false
        }
    }
}

impl SlidingWindow {
    /// Records and admits `n` requests at once if the window has room for all of them (a
    /// `$batch` whose operations each count), else none.
    pub(crate) fn try_acquire_n(&self, n: usize) -> bool {
        let now = Instant::now();
        let mut log = self.accepted.lock().unwrap();
        while log
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            log.pop_front();
        }
        if log.len() + n <= self.limit {
            log.extend(std::iter::repeat_n(now, n));
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window_refuses_past_the_limit() {
        let w = SlidingWindow::new(3, Duration::from_secs(60));
        assert!(w.try_acquire() && w.try_acquire() && w.try_acquire());
        assert!(!w.try_acquire());
    }

    #[test]
    fn token_bucket_allows_capacity_then_refuses() {
        let b = TokenBucket::new(1, 2);
        assert!(b.try_acquire() && b.try_acquire());
        assert!(!b.try_acquire());
    }
}
