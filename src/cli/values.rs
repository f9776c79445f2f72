//! The value parsers of the flags: sizes, intervals, tolerances and comma
//! lists, read by the library's own readers so their checks and messages are
//! the ones a settings file gets, and turned into clap usage errors (exit 2,
//! README "Exit codes") naming the flag and the value.

use std::time::Duration;

/// `--interval` (the RSS sampling interval: `10ms`, `0.5s`, `250us`; a bare
/// number is seconds), from 0.1 ms, below which sampling costs more than it
/// tells, to 60 s. A bad value is a usage error (exit 2) naming the flag.
pub(super) fn parse_interval(text: &str) -> Result<Duration, String> {
    oomlab::units::parse_duration("--interval", text, "0.1ms", "60s").map_err(|e| e.to_string())
}

/// `sweep --budget` (`2m`, `90s`; a bare number is seconds), from 1 s to a
/// day: the wall time a sweep may spend choosing and measuring its sizes.
pub(super) fn parse_budget(text: &str) -> Result<Duration, String> {
    oomlab::units::parse_duration("--budget", text, "1s", "24h").map_err(|e| e.to_string())
}

/// `--stats-interval` (`5s`, `500ms`, `5m`, `1h`; a bare number is seconds),
/// from 1 ms to a day: `docker stats` rows are often collected by
/// `watch -n 300` or cron, so minutes and hours are as usual as seconds.
pub(super) fn parse_stats_interval(text: &str) -> Result<Duration, String> {
    oomlab::units::parse_duration("--stats-interval", text, "1ms", "24h").map_err(|e| e.to_string())
}

/// A byte-size flag (`2GiB`, `800MiB`, `150GB`) parsed by clap with
/// [`oomlab::units::parse_size`], so a command never sees the text; the
/// message names the flag and the value.
pub(super) fn size(
    flag: &'static str,
) -> impl Fn(&str) -> Result<u64, String> + Clone + Send + Sync {
    move |text| oomlab::units::parse_size(text).map_err(|e| format!("{flag} {text}: {e}"))
}

/// A tolerance flag (`2%`, `10%`) parsed by clap with
/// [`oomlab::gate::baseline::parse_tolerance`], as the baseline reads it.
pub(super) fn percent(
    flag: &'static str,
) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync {
    move |text| oomlab::gate::baseline::parse_tolerance(flag, text).map_err(|e| e.to_string())
}

/// A comma-separated flag (`--rows 25000,50000`), parsed by clap with the
/// library's own reader of that list, so its checks (count, order, range)
/// and messages are the ones a settings file gets.
#[derive(Debug, Clone, PartialEq)]
pub struct List<T>(pub Vec<T>);

/// The clap value parser of a [`List`] read by `parse`.
pub(super) fn list<T: Clone + Send + Sync + 'static>(
    parse: fn(&str) -> anyhow::Result<Vec<T>>,
) -> impl Fn(&str) -> Result<List<T>, String> + Clone + Send + Sync {
    move |text| parse(text).map(List).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use proptest::prelude::*;

    #[test]
    fn intervals_people_write() {
        assert_eq!(parse_interval("10ms").unwrap(), Duration::from_millis(10));
        assert_eq!(parse_interval("0.5s").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_interval("250us").unwrap(), Duration::from_micros(250));
        for bad in ["", "fast", "0ms", "-5ms", "61s", "nan", "infs", "10 min"] {
            let err = parse_interval(bad).unwrap_err();
            assert!(err.contains("--interval"), "{err}");
        }
    }

    #[test]
    fn stats_intervals_take_seconds_to_hours() {
        for (text, secs) in [
            ("5s", 5.0),
            ("500ms", 0.5),
            ("5m", 300.0),
            ("2min", 120.0),
            ("1h", 3600.0),
            ("30", 30.0),
            (" 1.5s ", 1.5),
        ] {
            assert_eq!(
                parse_stats_interval(text).unwrap().as_secs_f64(),
                secs,
                "{text}"
            );
        }
        for bad in ["", "fast", "0s", "-5s", "25h", "NaNs", "infs"] {
            let err = parse_stats_interval(bad).unwrap_err();
            assert!(err.contains("--stats-interval"), "{bad}: {err}");
        }
    }

    /// A bad flag value is clap's usage error: exit 2 (README "Exit codes"),
    /// with the flag and the value in the message.
    #[test]
    fn bad_values_are_usage_errors_naming_flag_and_value() {
        for argv in [
            &["oomlab", "record", "--interval", "fast", "--", "true"][..],
            &["oomlab", "compare", "--memory-limit", "800XB"],
            &["oomlab", "plot", "r.json", "--budget", "lots"],
            &[
                "oomlab",
                "postmortem",
                "--log",
                "l",
                "--stats-interval",
                "often",
            ],
            &["oomlab", "gate", "--rss-tolerance", "ten"],
            &["oomlab", "sweep", "--pod-memory", "big"],
            &["oomlab", "gate", "--rows", "1,x"],
            &["oomlab", "sweep", "--columns", "8,many,12"],
        ] {
            let err = Cli::try_parse_from(argv).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{argv:?}");
            let text = err.to_string();
            assert!(
                text.contains(argv[argv.len() - 1]) || text.contains(argv[3]),
                "{text}"
            );
            assert!(text.contains(argv[2]) || text.contains(argv[3]), "{text}");
        }
        let ok = Cli::try_parse_from(["oomlab", "compare", "--memory-limit", "2GiB"]).unwrap();
        let Command::Compare(args) = ok.command else {
            panic!("compare parses as compare")
        };
        assert_eq!(args.limit.memory_limit().map(|l| l.bytes), Some(2 << 30));
        assert_eq!(args.interval, Duration::from_millis(10));
        let ok = Cli::try_parse_from(["oomlab", "gate", "--rows", "25_000,50000"]).unwrap();
        let Command::Gate(args) = ok.command else {
            panic!("gate parses as gate")
        };
        assert_eq!(args.rows, Some(List(vec![25_000, 50_000])));
    }

    // Case counts follow PROPTEST_CASES (README, "Property tests").
    proptest! {
        #[test]
        fn parse_interval_is_in_range_or_names_the_value(
            text in ".{0,24}|[0-9.eE+-]{0,12}(ms|us|s|m|h|)",
        ) {
            match parse_interval(&text) {
                Ok(d) => prop_assert!(
                    d >= Duration::from_micros(99) && d <= Duration::from_secs(60),
                    "{text:?} -> {d:?}"
                ),
                Err(e) => prop_assert!(e.contains(text.as_str()), "{}", e),
            }
        }
    }
}
