//! Clocks and calendar dates, in one place.
//!
//! Reports stamp when they were made, postmortems turn log times into
//! seconds and back, and parent and child agree on stage times through a
//! shared monotonic clock. The calendar arithmetic is `chrono`'s (UTC only:
//! logs are read as UTC, reports written in it), so no copy of a date
//! algorithm lives in the code.

use chrono::{DateTime, NaiveDate, Utc};

/// Nanoseconds on `CLOCK_MONOTONIC`: the clock parent and child share, so a
/// child's stage marks line up with the parent's RSS samples without
/// guessing pipe latency (`std::time::Instant` hides its raw value).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The current UTC time as RFC 3339 to the second (`2026-11-25T06:10:00Z`):
/// when a report or postmortem was written.
pub fn utc_now_rfc3339() -> String {
    DateTime::<Utc>::from(std::time::SystemTime::now())
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Seconds since the Unix epoch as `2025-12-25 08:29:29 UTC` (whole seconds),
/// or `?` for what is no time after the epoch: how write-ups show log times.
pub fn format_unix(t: f64) -> String {
    if !t.is_finite() || t < 0.0 {
        return "?".into();
    }
    DateTime::from_timestamp(t as i64, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "?".into())
}

/// Seconds since the Unix epoch of `secs_of_day` into a UTC calendar day, as
/// log lines give times; `None` for a day that does not exist or a year
/// outside 1970..=9999 (no log line is dated there: such digits are no date).
pub fn unix_seconds(year: i64, month: i64, day: i64, secs_of_day: f64) -> Option<f64> {
    if !(1970..=9999).contains(&year) {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(year).ok()?,
        u32::try_from(month).ok()?,
        u32::try_from(day).ok()?,
    )?;
    let midnight = date.and_hms_opt(0, 0, 0)?.and_utc().timestamp();
    Some(midnight as f64 + secs_of_day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_seconds_agree() {
        let christmas = 20_447.0 * 86_400.0;
        assert_eq!(unix_seconds(1970, 1, 1, 0.0), Some(0.0));
        assert_eq!(
            unix_seconds(2025, 12, 25, 30_569.5),
            Some(christmas + 30_569.5)
        );
        assert_eq!(unix_seconds(2024, 2, 29, 0.0), Some(19_782.0 * 86_400.0));
        for (y, m, d) in [(2025, 2, 29), (2025, 13, 1), (2025, 0, 1), (1969, 12, 31)] {
            assert_eq!(unix_seconds(y, m, d, 0.0), None, "{y}-{m}-{d}");
        }
        assert_eq!(format_unix(christmas + 30_569.0), "2025-12-25 08:29:29 UTC");
        assert_eq!(format_unix(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_unix(f64::NAN), "?");
        assert_eq!(format_unix(-1.0), "?");
    }

    #[test]
    fn now_is_rfc3339_to_the_second() {
        let now = utc_now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z') && now.as_bytes()[10] == b'T');
        assert!(DateTime::parse_from_rfc3339(&now).is_ok(), "{now}");
    }

    #[test]
    fn the_monotonic_clock_does_not_go_back() {
        let a = monotonic_ns();
        assert!(monotonic_ns() >= a);
    }
}
