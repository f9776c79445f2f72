//! `oomlab postmortem --log FILE`: write up what a killed pipeline's logs say.

use std::io::Write;

use anyhow::Result;

use super::{default_out_dir, parse_interval};
use crate::cli::PostmortemArgs;
use crate::error::{bad_input, Exit};
use crate::postmortem::{analyze, write, Inputs};
use crate::units::parse_size;

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
        stats_interval_s: parse_interval(&args.stats_interval)?.as_secs_f64(),
        model: args.model.clone(),
        context: args.context.min(10_000),
    };
    let mut pm = analyze(&inputs)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir("postmortem"));
    write(&mut pm, &out)?;
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
