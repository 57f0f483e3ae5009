//! Per-user request rate limits: a token bucket per user, refilled at the configured rate,
//! holding at most one second's worth of requests. A request finding the bucket empty is
//! refused with `429 RATE_LIMIT_EXCEEDED` and runs nothing.

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;

/// Buckets kept at most; full buckets are forgotten first when there are more.
const MAX_BUCKETS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// The limiter of every user.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter letting each user make `per_second` requests a second (bursts up to as many).
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second: f64::from(per_second.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `user`; `false` when the user is over the limit.
    pub fn try_acquire(&self, user: &str) -> bool {
        self.try_acquire_at(user, Instant::now())
    }

    fn try_acquire_at(&self, user: &str, now: Instant) -> bool {
        let mut buckets = self.buckets.lock();
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(user) {
            let per_second = self.per_second;
            buckets.retain(|_, b| b.tokens + now.duration_since(b.refilled).as_secs_f64() * per_second < per_second);
        }
        let bucket = buckets.entry(user.to_owned()).or_insert(Bucket {
            tokens: self.per_second,
            refilled: now,
        });
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.per_second);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn each_user_gets_the_rate_and_tokens_come_back_with_time() {
        let limiter = RateLimiter::new(3);
        let start = Instant::now();
        let taken: Vec<bool> = (0..5).map(|_| limiter.try_acquire_at("alice", start)).collect();
        assert_eq!(taken, vec![true, true, true, false, false]);
        assert!(limiter.try_acquire_at("bob", start), "users have their own buckets");
        let later = start + Duration::from_millis(340);
        assert!(limiter.try_acquire_at("alice", later));
        assert!(!limiter.try_acquire_at("alice", later));
    }
}
