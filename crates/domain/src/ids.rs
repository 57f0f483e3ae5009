//! Time and generated ids: Snowflake ids for `_seq` and `SNOWFLAKE_ID()`, UUIDv7, ULID.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The epoch of Snowflake ids: 2024-01-01T00:00:00Z, in Unix milliseconds.
pub const SNOWFLAKE_EPOCH_MS: u64 = 1_704_067_200_000;
const NODE_BITS: u32 = 10;
const SEQUENCE_BITS: u32 = 12;
const TIME_SHIFT: u32 = NODE_BITS + SEQUENCE_BITS;

/// Hands out strictly increasing Snowflake ids: 41 bits of milliseconds since
/// [`SNOWFLAKE_EPOCH_MS`], 10 bits of node id, 12 bits of sequence.
///
/// Ids never repeat and never go backwards within a process, even if the clock does: when
/// the clock stalls, the id moves on from the last one handed out.
#[derive(Debug)]
pub struct SnowflakeGenerator {
    node: u64,
    last: AtomicU64,
}

impl SnowflakeGenerator {
    /// A generator for `node` (0..1024), that will never hand out ids at or below `floor`
    /// (the highest id a previous run is known to have used).
    pub fn new(node: u16, floor: u64) -> Self {
        Self {
            node: u64::from(node) & ((1 << NODE_BITS) - 1),
            last: AtomicU64::new(floor),
        }
    }

    /// The next id.
    pub fn next_id(&self) -> i64 {
        let now = now_millis().saturating_sub(SNOWFLAKE_EPOCH_MS);
        let candidate = (now << TIME_SHIFT) | (self.node << SEQUENCE_BITS);
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = if candidate > last { candidate } else { last + 1 };
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return next as i64,
                Err(seen) => last = seen,
            }
        }
    }

    /// The last id handed out.
    pub fn last_id(&self) -> u64 {
        self.last.load(Ordering::Acquire)
    }
}

/// The Unix time in milliseconds at which a Snowflake id was made.
pub fn snowflake_millis(id: i64) -> u64 {
    ((id as u64) >> TIME_SHIFT) + SNOWFLAKE_EPOCH_MS
}

/// The smallest Snowflake id made at or after `unix_millis`.
pub fn snowflake_floor_for_millis(unix_millis: u64) -> i64 {
    (unix_millis.saturating_sub(SNOWFLAKE_EPOCH_MS) << TIME_SHIFT) as i64
}

/// A new UUIDv7 in canonical lowercase text.
pub fn new_uuid_v7() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A new ULID in its 26-character text form.
pub fn new_ulid() -> String {
    ulid::Ulid::new().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflake_ids_strictly_increase_and_carry_time() {
        let generator = SnowflakeGenerator::new(1, 0);
        let mut last = 0;
        for _ in 0..10_000 {
            let id = generator.next_id();
            assert!(id > last);
            last = id;
        }
        let age = now_millis() as i64 - snowflake_millis(last) as i64;
        assert!((-2_000..2_000).contains(&age), "{age}");
    }

    #[test]
    fn snowflake_respects_floor() {
        let far = snowflake_floor_for_millis(now_millis() + 3_600_000) as u64;
        let generator = SnowflakeGenerator::new(0, far);
        assert!(generator.next_id() as u64 > far);
    }

    #[test]
    fn uuid_and_ulid_have_their_forms() {
        let u = new_uuid_v7();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "7");
        assert_eq!(new_ulid().len(), 26);
    }
}
