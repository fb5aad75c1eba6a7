//! ecrd's notion of "now". Every time rule (token expiry, push and pull
//! times, lifecycle ages) reads this clock, so tests can move time forward
//! through `POST /_ecrd/clock` instead of sleeping.
//!
//! The clock can only be moved within [`EARLIEST`, `LATEST`)
//! (1970-01-01T00:00:00Z to 2200-01-01T00:00:00Z): every timestamp ecrd
//! keeps or derives from "now" (epoch milliseconds in records, token and
//! presigned-URL expiries 12 h ahead, lifecycle ages) stays representable
//! there, with centuries to spare. Outside it an addition could overflow and
//! a request handler panic.

use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

/// The earliest "now" the clock may be moved to: the Unix epoch.
pub const EARLIEST: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

/// The first "now" the clock may not be moved to: 2200-01-01T00:00:00Z.
pub const LATEST: OffsetDateTime = match OffsetDateTime::from_unix_timestamp(7_258_118_400) {
    Ok(t) => t,
    Err(_) => OffsetDateTime::UNIX_EPOCH,
};

/// A move that would put the clock outside [`EARLIEST`, `LATEST`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfRange;

impl std::fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "ecrd's clock must stay at or after 1970-01-01T00:00:00Z and before 2200-01-01T00:00:00Z",
        )
    }
}

impl std::error::Error for OutOfRange {}

fn in_range(at: OffsetDateTime) -> Result<(), OutOfRange> {
    if (EARLIEST..LATEST).contains(&at) {
        Ok(())
    } else {
        Err(OutOfRange)
    }
}

/// System time plus an adjustable offset.
#[derive(Debug, Default)]
pub struct Clock {
    offset: Mutex<Duration>,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        // The offset is kept in range by `try_advance` / `try_set_now`;
        // saturating here means no offset set in-process can make every
        // caller panic.
        OffsetDateTime::now_utc()
            .checked_add(self.offset())
            .unwrap_or(LATEST)
    }

    /// `now` in epoch milliseconds, the form records keep times in.
    pub fn now_ms(&self) -> i64 {
        (self.now().unix_timestamp_nanos() / 1_000_000) as i64
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

    /// [`Clock::advance`], refused when "now" would leave the supported range.
    pub fn try_advance(&self, by: Duration) -> Result<(), OutOfRange> {
        let mut offset = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        let moved = offset.checked_add(by).ok_or(OutOfRange)?;
        in_range(
            OffsetDateTime::now_utc()
                .checked_add(moved)
                .ok_or(OutOfRange)?,
        )?;
        *offset = moved;
        Ok(())
    }

    /// [`Clock::set_now`], refused when `at` is outside the supported range.
    pub fn try_set_now(&self, at: OffsetDateTime) -> Result<(), OutOfRange> {
        in_range(at)?;
        self.set_now(at);
        Ok(())
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

    #[test]
    fn moves_stay_in_range() {
        let clock = Clock::default();
        assert_eq!(LATEST.year(), 2200);
        assert_eq!((LATEST.month() as u8, LATEST.day()), (1, 1));
        let far = OffsetDateTime::parse(
            "9999-12-31T23:59:59Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!(clock.try_set_now(far), Err(OutOfRange));
        assert_eq!(clock.try_set_now(LATEST), Err(OutOfRange));
        assert_eq!(
            clock.try_set_now(EARLIEST - Duration::seconds(1)),
            Err(OutOfRange)
        );
        assert_eq!(
            clock.try_advance(Duration::seconds(1_000_000_000_000)),
            Err(OutOfRange)
        );
        assert_eq!(clock.try_advance(Duration::MAX), Err(OutOfRange));
        assert_eq!(clock.try_advance(Duration::MIN), Err(OutOfRange));
        assert_eq!(clock.offset(), Duration::ZERO);
        clock.try_set_now(LATEST - Duration::days(1)).unwrap();
        clock.try_advance(Duration::hours(1)).unwrap();
        assert_eq!(clock.try_advance(Duration::days(1)), Err(OutOfRange));
        // An offset set in-process beyond the range saturates, never panics.
        clock.advance(Duration::MAX - clock.offset());
        assert_eq!(clock.now(), LATEST);
    }
}
