use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// How a client retries: exponential backoff with full jitter, capped, unless the server said
/// how long to wait (`Retry-After`), which is honoured in full: waking a server early only draws
/// more refusals. Whether a long wait is spent inside the call or handed to the queue is the
/// client's choice ([`super::HttpSettings::max_inline_wait`]).
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"): a uniform pick in
    /// [0, min(cap, base * 2^attempt)], so many clients that failed together don't retry together.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.min(20)))
            .min(self.max_delay);
        let millis = exp.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }

    /// The wait before redelivering a message that failed `attempt` times (1 on the first
    /// failure): `min(cap, base * 2^(attempt-1))` plus up to a quarter more. Never less than the
    /// exponential value, so the schedule's total is a guaranteed span (an outage it rides out),
    /// and spread so documents that failed together do not come back together.
    pub fn spaced(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(20)))
            .min(self.max_delay);
        let spread = exp.as_millis() as u64 / 4;
        exp + Duration::from_millis(rand::rng().random_range(0..=spread))
    }

    /// The wait before the next attempt: the server's `Retry-After` when it sent one, in full
    /// (a worker is not stalled by a long one: the client hands waits above its inline maximum
    /// to the queue), else the jittered backoff.
    pub fn delay(&self, attempt: u32, headers: Option<&HeaderMap>) -> Duration {
        headers
            .and_then(retry_after)
            .unwrap_or_else(|| self.backoff(attempt))
    }
}

/// `Retry-After` as delta-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&Utc) - Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_seconds_are_read() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
    }

    #[test]
    fn retry_after_http_date_in_the_past_means_now() {
        let mut h = HeaderMap::new();
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }

    #[test]
    fn backoff_never_exceeds_the_cap() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for attempt in 0..30 {
            assert!(p.backoff(attempt) <= Duration::from_secs(1));
        }
    }

    #[test]
    fn server_retry_after_wins_over_backoff() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        let p = RetryPolicy::default();
        assert_eq!(p.delay(0, Some(&h)), Duration::from_secs(2));
    }

    #[test]
    fn server_retry_after_is_not_cut_to_the_backoff_cap() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("45"));
        let p = RetryPolicy::default();
        assert_eq!(p.delay(0, Some(&h)), Duration::from_secs(45));
    }
}
