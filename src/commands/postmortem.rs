//! `oomlab postmortem --log FILE`: write up what a killed pipeline's logs say.

use std::io::Write;

use anyhow::Result;

use crate::cli::PostmortemArgs;
use oomlab::error::{bad_input, Exit};
use oomlab::postmortem::{analyze, write, Inputs};
use oomlab::units::parse_size;

/// `oomlab postmortem`: exit 0 whenever the write-up was written (whatever the
/// log held, even nothing recognizable), 2 when an input cannot be read.
pub fn postmortem(args: PostmortemArgs) -> Result<Exit> {
    let memory_limit = args
        .memory_limit
        .as_deref()
        .map(|t| parse_size(t).map_err(|e| bad_input(format!("--memory-limit {t}: {e}"))))
        .transpose()?;
    let inputs = Inputs {
        log: args.log.clone(),
        memory_limit,
        docker_stats: args.docker_stats.clone(),
        stats_interval_s: parse_stats_interval(&args.stats_interval)?,
        model: args.model.clone(),
        fidelity: args.fidelity.clone(),
        observed: args.observed.clone(),
        context: args.context.min(10_000),
        kernel_log: args.kernel_log.clone(),
        cgroup_dir: args.cgroup_dir.clone(),
        kubernetes: args.kubernetes.clone(),
        prometheus: args.prometheus.clone(),
    };
    let mut pm = analyze(&inputs)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| oomlab::report::default_out_dir("postmortem"));
    pm.pictures = oomlab::plot::postmortem::draw(&pm, &out);
    write(&pm, &out)?;
    // The files are written: a closed stdout (`| head -1`) is no failure.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", pm.verdict);
    let _ = writeln!(
        stdout,
        "postmortem: {}",
        out.join("postmortem.md").display()
    );
    Ok(Exit::Ok)
}

/// Parses `--stats-interval` (`5s`, `500ms`, `5m`, `1h`; a bare number is
/// seconds) into seconds with [`crate::units::parse_duration`], from 1 ms to
/// a day. `docker stats` rows are often collected by `watch -n 300` or cron,
/// so minutes and hours are as usual as seconds here.
fn parse_stats_interval(text: &str) -> Result<f64> {
    oomlab::units::parse_duration("--stats-interval", text, "1ms", "24h").map(|d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(parse_stats_interval(text).unwrap(), secs, "{text}");
        }
        for bad in ["", "fast", "0s", "-5s", "25h", "NaNs", "infs"] {
            let err = parse_stats_interval(bad).unwrap_err().to_string();
            assert!(err.contains("--stats-interval"), "{bad}: {err}");
        }
    }
}
