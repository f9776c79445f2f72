//! `summary.md`: the report as a person reads it on a code host.

use std::fmt::Write;

use std::path::Path;

use anyhow::{Context, Result};

use crate::report::{self, Report, RunStatus};
use crate::sampler::PeakSource;
use crate::table;
use crate::units::{format_bytes, format_count};

/// The sizes a recorded command logged (`record`: oomlab generated no data,
/// so there is no seed, hash or production shape to show); nothing when it
/// logged none.
fn logged_sizes(md: &mut String, report: &Report) {
    let s = &report.scenario.scaled;
    let rows: Vec<(&str, u64)> = [
        ("ranking_samples rows", s.sample_rows),
        ("dataset_profile rows", s.datasets),
        ("dataset_profile feature columns", s.profile_columns),
        ("user_features rows", s.users),
    ]
    .into_iter()
    .filter(|(_, v)| *v > 0)
    .collect();
    if rows.is_empty() && report.settings.max_ranking_samples == 0 {
        return;
    }
    let _ = writeln!(md, "## Sizes the command logged\n");
    if !rows.is_empty() {
        let _ = writeln!(md, "| | logged |\n|---|---|");
        for (label, v) in rows {
            let _ = writeln!(md, "| {label} | {} |", format_count(v));
        }
    }
    if report.settings.max_ranking_samples > 0 {
        let _ = writeln!(
            md,
            "\nMAX_RANKING_SAMPLES={} ({}).",
            report.settings.max_ranking_samples, report.settings.max_ranking_samples_source
        );
    }
    let _ = writeln!(md);
}

/// Says which figure a run's peak is (exact, or an upper bound for a tree),
/// with the figures measured beside it.
fn peak_kinds(md: &mut String, run: &crate::report::RunRecord) {
    let Some(source) = run.peak_source else {
        return;
    };
    let mut line = format!("Peak figure: {}.", source.describe());
    if let Some(pss) = run.pss_peak_bytes {
        let _ = write!(
            line,
            " Summed proportional set size (shared pages counted once, sampled): {}.",
            format_bytes(pss)
        );
    }
    if let Some(cg) = run.cgroup_peak_bytes {
        let _ = write!(
            line,
            " The run's cgroup high-water mark (page cache included): {}.",
            format_bytes(cg)
        );
    }
    let _ = writeln!(md, "{line}\n");
}

/// Writes the report directory: `report.json`, the pictures, `summary.md`,
/// `report.html`.
pub fn write_report_dir(report: &Report, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    report.write_json(&dir.join("report.json"))?;
    // A picture that cannot be drawn must not cost the run its report or exit code.
    let opts = crate::plot::PlotOptions::for_report(report);
    if let Err(err) = crate::plot::draw_report(report, dir, &opts) {
        eprintln!("warning: pictures not drawn: {err:#}");
    }
    report::write_atomically(&dir.join("summary.md"), render(report).as_bytes())?;
    // Nor can the page: it is made from report.json, and `oomlab html` remakes it.
    if let Err(err) = crate::html::write_report_page(report, dir) {
        eprintln!("warning: report.html not written: {err:#}");
    }
    Ok(())
}

/// Renders the markdown summary of a report.
pub fn render(report: &Report) -> String {
    let mut md = String::new();
    let s = &report.scenario;
    let _ = writeln!(md, "# oomlab {}: {}\n", report.command, s.name);
    if !s.description.is_empty() {
        let _ = writeln!(md, "{}\n", s.description);
    }
    if let Some(i) = &report.interrupted {
        let _ = write!(
            md,
            "**Interrupted by {}**: a partial report, with what was measured until then.",
            i.signal_name
        );
        if !i.not_run.is_empty() {
            let _ = write!(md, " Not run: {}.", i.not_run.join(", "));
        }
        let _ = writeln!(md, "\n");
    }
    let _ = writeln!(
        md,
        "## Before / after\n\n{}",
        table::before_after(report).to_markdown()
    );
    // The PNG shows as drawn on any host; a click opens the SVG.
    for pic in crate::plot::report_charts(report) {
        let _ = writeln!(md, "[![{pic}]({pic}.png)]({pic}.svg)\n");
    }
    if s.data_hash.is_empty() {
        // A recorded command's data is its own: only what it logged is known.
        logged_sizes(&mut md, report);
    } else {
        let _ = writeln!(md, "## Data\n");
        let _ = writeln!(
            md,
            "| | production | this run (scale {}) |\n|---|---|---|",
            s.scale
        );
        for (label, p, r) in [
            (
                "ranking_samples rows",
                s.production.sample_rows,
                s.scaled.sample_rows,
            ),
            (
                "dataset_profile rows",
                s.production.datasets,
                s.scaled.datasets,
            ),
            (
                "dataset_profile feature columns",
                s.production.profile_columns,
                s.scaled.profile_columns,
            ),
            (
                "of which numeric",
                s.production.profile_numeric_columns,
                s.scaled.profile_numeric_columns,
            ),
            ("user_features rows", s.production.users, s.scaled.users),
        ] {
            let _ = writeln!(
                md,
                "| {label} | {} | {} |",
                format_count(p),
                format_count(r)
            );
        }
        let _ = writeln!(
            md,
            "\nSeed {}, data hash `{}`. MAX_RANKING_SAMPLES={} ({}).\n",
            s.seed,
            s.data_hash,
            report.settings.max_ranking_samples,
            report.settings.max_ranking_samples_source
        );
    }
    for run in &report.runs {
        let _ = writeln!(md, "## {}\n", run.strategy);
        let workload = if report.scenario.scaled.items > 0 {
            crate::scenario::Workload::Similarity
        } else {
            crate::scenario::Workload::RankingPrep
        };
        if let Some(s) = crate::strategy::by_name_for(workload, &run.strategy) {
            let _ = writeln!(md, "_{}_\n", s.description());
        }
        match &run.status {
            RunStatus::Completed => {}
            RunStatus::Killed {
                signal,
                stage,
                t_s,
                rss_bytes,
                by,
            } => {
                let _ = writeln!(
                    md,
                    "**Killed (-{signal})** by {by} in stage `{}` at {t_s:.2} s, RSS {}.\n",
                    stage.as_deref().unwrap_or("?"),
                    format_bytes(*rss_bytes)
                );
            }
            RunStatus::Interrupted {
                signal,
                stage,
                t_s,
                rss_bytes,
            } => {
                let _ = writeln!(
                    md,
                    "**Interrupted** ({}): oomlab was stopped and killed the process in stage `{}` at {t_s:.2} s, RSS {}. The figures below end there.\n",
                    crate::interrupt::signal_name(*signal),
                    stage.as_deref().unwrap_or("?"),
                    format_bytes(*rss_bytes)
                );
            }
            RunStatus::Failed {
                exit_code,
                signal,
                stage,
                message,
            } => {
                let how = crate::report::exit_description(*exit_code, *signal);
                let _ = writeln!(
                    md,
                    "**Failed** ({how}) in stage `{}`: {message}\n",
                    stage.as_deref().unwrap_or("?")
                );
            }
        }
        let _ = writeln!(md, "{}", table::stages(run).to_markdown());
        if let Some(gap) = run.sampling_gap_pct() {
            let which = match run.peak_source {
                Some(PeakSource::SumVmhwmUpperBound) => "Peak (upper bound)",
                _ => "Exact peak",
            };
            let _ = writeln!(
                md,
                "{which} {}, sampled peak {} ({gap:.1}% below, {} samples at {} ms). Wall time {:.2} s.\n",
                run.peak_bytes.map(format_bytes).unwrap_or_default(),
                format_bytes(run.sampled_peak_bytes),
                run.timeline.t_s.len(),
                run.timeline.interval_ms,
                run.wall_s
            );
        }
        peak_kinds(&mut md, run);
        if let Some(several) = run.timeline.several {
            let _ = writeln!(md, "Timeline: {}.\n", several.describe());
        }
        if let Some(s) = &run.sampler {
            let _ = writeln!(
                md,
                "Sampler: {} samples, every {:.2} ms on average (asked {} ms, worst jitter {:.2} ms), {:.3} s of CPU ({:.2}% of one core); oomlab in all {:.3} s of CPU.\n",
                s.samples,
                s.achieved_interval_ms,
                s.interval_ms,
                s.worst_jitter_ms,
                s.cpu_s,
                s.cpu_pct_of_core(),
                s.oomlab_cpu_s
            );
        }
        if !run.logs.is_empty() {
            let _ = writeln!(md, "```");
            for l in &run.logs {
                let _ = writeln!(md, "{} {}", l.level, l.message);
            }
            let _ = writeln!(md, "```\n");
        }
        if !run.stderr_tail.is_empty() && run.status != RunStatus::Completed {
            let _ = writeln!(
                md,
                "stderr (last lines):\n```\n{}\n```\n",
                run.stderr_tail.join("\n")
            );
        }
    }
    let m = &report.machine;
    let _ = writeln!(
        md,
        "## Machine\n\n{} CPUs, {} total / {} available memory, kernel {}, {}. Allocator: {}.",
        m.cpus,
        format_bytes(m.total_memory_bytes),
        format_bytes(m.available_memory_bytes),
        m.kernel,
        m.os,
        report.allocator
    );
    md
}
