//! ecrd's notion of "now". Every time rule (token expiry, push and pull
//! times, lifecycle ages) reads this clock, so tests can move time forward
//! through `POST /_ecrd/clock` instead of sleeping.

use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

/// System time plus an adjustable offset.
#[derive(Debug, Default)]
pub struct Clock {
    offset: Mutex<Duration>,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.offset()
    }

    pub fn offset(&self) -> Duration {
        *self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the clock by `by` relative to where it stands now.
    pub fn advance(&self, by: Duration) {
        let mut offset = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        *offset += by;
    }

    /// Makes "now" read `at` from this moment on (time keeps flowing).
    pub fn set_now(&self, at: OffsetDateTime) {
        let mut offset = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        *offset = at - OffsetDateTime::now_utc();
    }

    pub fn reset(&self) {
        *self.offset.lock().unwrap_or_else(|e| e.into_inner()) = Duration::ZERO;
    }
}

/// Seconds since the epoch with millisecond precision, as the wire carries it.
pub fn epoch_seconds(at: OffsetDateTime) -> f64 {
    (at.unix_timestamp_nanos() / 1_000_000) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_and_set() {
        let clock = Clock::default();
        let before = clock.now();
        clock.advance(Duration::days(2));
        assert!(clock.now() - before >= Duration::days(2));
        let target = OffsetDateTime::from_unix_timestamp(2_000_000_000).unwrap();
        clock.set_now(target);
        assert!((clock.now() - target).abs() < Duration::seconds(5));
        clock.reset();
        assert!((clock.now() - OffsetDateTime::now_utc()).abs() < Duration::seconds(5));
    }
}
