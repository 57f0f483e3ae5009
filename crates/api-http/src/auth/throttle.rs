//! Slowing down repeated failed logins, per user and per address.
//!
//! After `max_failures` failures within the window, every further attempt for the same
//! user or from the same address waits before it is checked, twice as long per failure,
//! up to [`MAX_DELAY`]. A success clears the user's count; the address's count fades when
//! the window passes without failures.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The longest an attempt is held back.
pub const MAX_DELAY: Duration = Duration::from_secs(5);
/// The first delay once the free failures are used up.
const BASE_DELAY: Duration = Duration::from_millis(250);
/// Failures older than this are forgotten.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Entries kept at most; the oldest go first.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Failed-login counts.
#[derive(Debug)]
pub struct LoginThrottle {
    max_failures: u32,
    failures: Mutex<HashMap<Key, Failures>>,
}

impl LoginThrottle {
    /// A throttle that lets `max_failures` failures through undelayed.
    pub fn new(max_failures: u32) -> Self {
        Self {
            max_failures,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// How long an attempt for `user` from `address` must wait before it is checked.
    pub fn delay(&self, user: &str, address: IpAddr) -> Duration {
        let now = Instant::now();
        let failures = self.failures.lock();
        let count = [Key::User(user.to_owned()), Key::Address(address)]
            .iter()
            .filter_map(|key| failures.get(key))
            .filter(|f| now.duration_since(f.last) < WINDOW)
            .map(|f| f.count)
            .max()
            .unwrap_or(0);
        match count.checked_sub(self.max_failures) {
            None => Duration::ZERO,
            Some(over) => BASE_DELAY.saturating_mul(1u32 << over.min(16)).min(MAX_DELAY),
        }
    }

    /// Counts a failed attempt.
    pub fn record_failure(&self, user: &str, address: IpAddr) {
        let now = Instant::now();
        let mut failures = self.failures.lock();
        if failures.len() >= MAX_ENTRIES {
            failures.retain(|_, f| now.duration_since(f.last) < WINDOW);
            if failures.len() >= MAX_ENTRIES {
                failures.clear();
            }
        }
        for key in [Key::User(user.to_owned()), Key::Address(address)] {
            let entry = failures.entry(key).or_insert(Failures { count: 0, last: now });
            if now.duration_since(entry.last) >= WINDOW {
                entry.count = 0;
            }
            entry.count = entry.count.saturating_add(1);
            entry.last = now;
        }
    }

    /// Clears `user`'s failures after a successful login.
    pub fn record_success(&self, user: &str) {
        self.failures.lock().remove(&Key::User(user.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const HOME: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const AWAY: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9));

    #[test]
    fn delays_grow_after_the_free_failures_and_reset_on_success() {
        let throttle = LoginThrottle::new(2);
        assert_eq!(throttle.delay("alice", HOME), Duration::ZERO);
        throttle.record_failure("alice", HOME);
        throttle.record_failure("alice", HOME);
        assert_eq!(throttle.delay("alice", HOME), BASE_DELAY);
        throttle.record_failure("alice", HOME);
        assert_eq!(throttle.delay("alice", HOME), BASE_DELAY * 2);
        // The user is slowed from anywhere; the address for any user.
        assert_eq!(throttle.delay("alice", AWAY), BASE_DELAY * 2);
        assert_eq!(throttle.delay("bob", HOME), BASE_DELAY * 2);
        assert_eq!(throttle.delay("bob", AWAY), Duration::ZERO);
        for _ in 0..40 {
            throttle.record_failure("alice", HOME);
        }
        assert_eq!(throttle.delay("alice", AWAY), MAX_DELAY);
        throttle.record_success("alice");
        assert_eq!(throttle.delay("alice", AWAY), Duration::ZERO);
    }
}
