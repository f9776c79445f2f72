//! Byte sizes and durations as people write and read them.
//!
//! Budgets arrive as `64GiB`, `150GB`, `1.5TiB` or plain bytes; figures leave as
//! `3.42 GiB`. Intervals arrive as `10ms`, `0.5s` or `5m`. One parser each and
//! one formatter so every command agrees.

use std::time::Duration;

use anyhow::Result;

use crate::error::bad_input;

const KIB: f64 = 1024.0;

/// Parses a size such as `64GiB`, `64G`, `150GB`, `1.5TiB`, `512MiB`, `2048` (bytes).
///
/// Binary suffixes (`KiB`, `MiB`, `GiB`, `TiB`) and single letters (`K`, `M`, `G`, `T`)
/// are powers of 1024; decimal suffixes (`kB`, `MB`, `GB`, `TB`) are powers of 1000,
/// as `docker stats` and cloud consoles print them.
pub fn parse_size(text: &str) -> Result<u64> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let unit = unit.trim();
    let value: f64 = number.parse().map_err(|_| {
        bad_input(format!(
            "invalid size `{text}`: expected a number followed by a unit such as 64GiB, 150GB, 1.5TiB or plain bytes"
        ))
    })?;
    let multiplier = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => KIB,
        "m" | "mib" => KIB * KIB,
        "g" | "gib" => KIB * KIB * KIB,
        "t" | "tib" => KIB * KIB * KIB * KIB,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => {
            return Err(bad_input(format!(
                "invalid size `{text}`: unknown unit `{unit}` (expected B, KiB, MiB, GiB, TiB, K, M, G, T, kB, MB, GB or TB)"
            )))
        }
    };
    let bytes = value * multiplier;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 / 2.0 {
        return Err(bad_input(format!(
            "invalid size `{text}`: expected a positive size of at least one byte"
        )));
    }
    Ok(bytes.round() as u64)
}

/// Parses the duration `flag` was given as `text`, between `min` and `max`
/// (both written as a user would, such as `0.1ms` and `60s`).
///
/// Units: `us`, `ms`, `s`, `m` or `min`, `h`. A bare number is seconds, as
/// for `sleep` and `watch -n`: one meaning for every flag, stated in the error.
/// Errors are bad input (exit 2) quoting the flag and the text.
pub fn parse_duration(flag: &str, text: &str, min: &str, max: &str) -> Result<Duration> {
    let bad = |what: &str| bad_input(format!("{flag} {text}: {what}"));
    let secs = duration_secs(text).ok_or_else(|| {
        bad("expected a duration such as 10ms, 0.5s or 250us (also 5m, 5min, 1h; a bare number is seconds)")
    })?;
    let (lo, hi) = (duration_secs(min), duration_secs(max));
    if lo.is_none_or(|lo| secs < lo) || hi.is_none_or(|hi| secs > hi) {
        return Err(bad(&format!("expected between {min} and {max}")));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| bad(&e.to_string()))
}

/// Seconds in a duration's text, `None` when it is none.
fn duration_secs(text: &str) -> Option<f64> {
    let t = text.trim();
    let (number, unit_s) = [
        ("us", 1e-6),
        ("ms", 1e-3),
        ("min", 60.0),
        ("s", 1.0),
        ("m", 60.0),
        ("h", 3600.0),
    ]
    .iter()
    .find_map(|(unit, secs)| Some((t.strip_suffix(unit)?, *secs)))
    .unwrap_or((t, 1.0));
    let value: f64 = number.trim().parse().ok()?;
    let secs = value * unit_s;
    secs.is_finite().then_some(secs)
}

/// Formats bytes in binary units with two decimals (`3.42 GiB`).
pub fn format_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= KIB * KIB * KIB * KIB {
        format!("{:.2} TiB", b / (KIB * KIB * KIB * KIB))
    } else if b >= KIB * KIB * KIB {
        format!("{:.2} GiB", b / (KIB * KIB * KIB))
    } else if b >= KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else if b >= KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{bytes} B")
    }
}

/// Megabytes (10^6) with two decimals, as the pipeline's own log lines print them.
pub fn format_mb(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

/// The pipeline's `Memory optimization: X MB -> Y MB (Z% reduction)` line,
/// word for word, so postmortems parse a replay's logs like production's.
pub fn memory_optimization_line(before: u64, after: u64) -> String {
    let reduction = if before > 0 {
        (before - after.min(before)) as f64 / before as f64 * 100.0
    } else {
        0.0
    };
    format!(
        "Memory optimization: {} -> {} ({reduction:.1}% reduction)",
        format_mb(before),
        format_mb(after)
    )
}

/// Formats a row count with thousands separators (`8,532,146`).
pub fn format_count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_people_write() {
        assert_eq!(parse_size("64GiB").unwrap(), 64 << 30);
        assert_eq!(parse_size("64G").unwrap(), 64 << 30);
        assert_eq!(parse_size("150GB").unwrap(), 150_000_000_000);
        assert_eq!(parse_size("1.5TiB").unwrap(), 3 << 39);
        assert_eq!(parse_size("2048").unwrap(), 2048);
        assert_eq!(parse_size(" 512 MiB ").unwrap(), 512 << 20);
        assert_eq!(parse_size("10kB").unwrap(), 10_000);
    }

    #[test]
    fn rejects_wrong_units_and_values() {
        for bad in ["", "GiB", "64XB", "-5GiB", "0", "1..5G", "64 gigs", "0.1"] {
            let err = parse_size(bad).unwrap_err();
            assert_eq!(
                crate::error::exit_code_of(&err),
                crate::error::Exit::BadInput,
                "{bad}"
            );
            assert!(err.to_string().contains(bad.trim()), "{err}");
        }
    }

    #[test]
    fn formats_human_units() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(3 << 30), "3.00 GiB");
        assert_eq!(format_count(8_532_146), "8,532,146");
        assert_eq!(format_count(42), "42");
        assert_eq!(format_mb(3_456_780_000), "3456.78 MB");
    }

    #[test]
    fn durations_people_write() {
        let d = |t: &str| parse_duration("--x", t, "0.1ms", "24h").unwrap();
        assert_eq!(d("10ms"), Duration::from_millis(10));
        assert_eq!(d("0.5s"), Duration::from_millis(500));
        assert_eq!(d("250us"), Duration::from_micros(250));
        assert_eq!(d("5m"), Duration::from_secs(300));
        assert_eq!(d("2min"), Duration::from_secs(120));
        assert_eq!(d("1h"), Duration::from_secs(3600));
        assert_eq!(d(" 1.5 s "), Duration::from_millis(1500));
        // A bare number is seconds, and the error says so.
        assert_eq!(d("30"), Duration::from_secs(30));
        let err = parse_duration("--x", "soon", "0.1ms", "24h").unwrap_err();
        assert!(
            err.to_string().contains("a bare number is seconds"),
            "{err}"
        );
        for bad in [
            "", "fast", "0ms", "-5ms", "25h", "nan", "infs", "1e400s", "10 min s",
        ] {
            let err = parse_duration("--x", bad, "0.1ms", "24h").unwrap_err();
            assert_eq!(
                crate::error::exit_code_of(&err),
                crate::error::Exit::BadInput,
                "{bad}"
            );
            assert!(err.to_string().starts_with(&format!("--x {bad}:")), "{err}");
        }
        let err = parse_duration("--x", "61s", "0.1ms", "60s").unwrap_err();
        assert!(err.to_string().contains("between 0.1ms and 60s"), "{err}");
    }

    /// What every answer of the parser must look like: a size of at least one
    /// byte, or a bad-input error (exit 2) that quotes what was given.
    fn check_answer(text: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        match parse_size(text) {
            Ok(bytes) => proptest::prop_assert!(bytes >= 1, "{text:?} -> {bytes}"),
            Err(e) => {
                proptest::prop_assert_eq!(
                    crate::error::exit_code_of(&e),
                    crate::error::Exit::BadInput,
                    "{:?}: {}",
                    text,
                    e
                );
                proptest::prop_assert!(e.to_string().contains(text), "{text:?}: {e}");
            }
        }
        Ok(())
    }

    // Case counts follow PROPTEST_CASES (README, "Property tests").
    proptest::proptest! {
        #[test]
        fn parse_size_any_text_is_a_size_or_bad_input(text in ".{0,40}") {
            check_answer(&text)?;
        }

        #[test]
        fn parse_size_numbers_and_units_are_a_size_or_bad_input(
            number in "[0-9]{0,25}(\\.[0-9]{0,25})?|[0-9.eE+-]{0,12}|[0-9]{300,330}",
            space in " {0,2}",
            unit in proptest::sample::select(vec![
                "", "b", "B", "k", "K", "KiB", "kib", "kB", "KB", "M", "MiB", "MB", "mb", "G",
                "GiB", "GB", "gb", "T", "TiB", "TB", "tb", "PiB", "XB", "i", " GiB", "G G",
            ]),
        ) {
            check_answer(&format!("{number}{space}{unit}"))?;
        }

        #[test]
        fn parse_size_reads_back_whole_units(n in 1u64..(1 << 40), unit in 0usize..5) {
            let (suffix, mult) = [("", 1u64), ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("kB", 1000)][unit];
            let expected = n.saturating_mul(mult);
            if expected < u64::MAX / 4 {
                let got = parse_size(&format!("{n}{suffix}")).map_err(|e| {
                    proptest::test_runner::TestCaseError::fail(e.to_string())
                })?;
                // f64 arithmetic: exact up to 2^53, within one part in 2^52 above.
                let tolerance = expected / (1u64 << 52) + 1;
                proptest::prop_assert!(got.abs_diff(expected) <= tolerance, "{n}{suffix}: {got} vs {expected}");
            }
        }
    }
}
