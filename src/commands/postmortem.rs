//! `oomlab postmortem --log FILE`: write up what a killed pipeline's logs say.

use std::io::Write;

use anyhow::Result;

use crate::cli::PostmortemArgs;
use oomlab::error::Exit;
use oomlab::postmortem::{analyze, write, Inputs};

/// `oomlab postmortem`: exit 0 whenever the write-up was written (whatever the
/// log held, even nothing recognizable), 2 when an input cannot be read.
pub fn postmortem(args: PostmortemArgs) -> Result<Exit> {
    let inputs = Inputs {
        log: args.log.clone(),
        memory_limit: args.memory_limit,
        docker_stats: args.docker_stats.clone(),
        stats_interval_s: args.stats_interval.as_secs_f64(),
        model: args.model.clone(),
        fidelity: args.fidelity.clone(),
        observed: args.observed.clone(),
        context: args.context.min(10_000),
        kernel_log: args.kernel_log.clone(),
        cgroup_dir: args.cgroup_dir.clone(),
        kubernetes: args.kubernetes.clone(),
        prometheus: args.prometheus.clone(),
        container: args.container.clone(),
    };
    let mut pm = analyze(&inputs)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| oomlab::report::default_out_dir("postmortem"));
    pm.pictures = oomlab::plot::postmortem::draw(&pm, &out);
    write(&pm, &out)?;
    let page = out.join("postmortem.html");
    let source = out.join("postmortem.json").display().to_string();
    if let Err(err) = oomlab::html::postmortem::page(&pm, &source).write(&page) {
        eprintln!("warning: {} not written: {err:#}", page.display());
    }
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
