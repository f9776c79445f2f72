//! Writing a postmortem out: the Markdown write-up and the JSON beside it.

use super::verdict::*;
use super::*;

/// Renders `postmortem.md`.
pub fn render_markdown(pm: &Postmortem) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Postmortem: {}\n", pm.log.path);
    let _ = writeln!(md, "{}\n", pm.verdict);
    for pic in &pm.pictures {
        if pic.ends_with(".svg") {
            let _ = writeln!(md, "![memory]({pic})\n");
        }
    }
    let f = &pm.facts;
    let _ = writeln!(md, "## The four facts (write-up: 如果再次出现 OOM)\n");
    let _ = writeln!(md, "| | | from |\n|---|---|---|");
    let rows_from = match cite_log(pm, |e| matches!(e, LogEvent::RankingSamples { .. })) {
        c if c == "-" => cite_log(pm, |e| matches!(e, LogEvent::Preparing { .. })),
        c => c,
    };
    let _ = writeln!(
        md,
        "| 1. `ranking_samples` rows | {} | {rows_from} |",
        opt_count(f.ranking_samples_rows)
    );
    let _ = writeln!(
        md,
        "| 2. `dataset_profile` columns x rows | {} feature columns x {} rows | {}, {} |",
        opt_count(f.dataset_profile_columns),
        opt_count(f.dataset_profile_rows),
        cite_log(pm, |e| matches!(e, LogEvent::MergeDatasetFeatures { .. })),
        cite_log(pm, |e| matches!(
            e,
            LogEvent::Preparing {
                datasets: Some(_),
                ..
            }
        ))
    );
    let _ = writeln!(
        md,
        "| 3. `MAX_RANKING_SAMPLES` in force | {} ({}) | {} |",
        f.max_ranking_samples
            .map(|v| v.to_string())
            .unwrap_or_else(|| "unknown".into()),
        f.max_ranking_samples_source,
        if pm.sizes.sampling.is_some() {
            cite_log(pm, |e| matches!(e, LogEvent::Sampling { .. }))
        } else if f.max_ranking_samples.is_some() {
            "the line named".into()
        } else {
            "-".into()
        }
    );
    let _ = writeln!(
        md,
        "| 4. log lines around the kill | {} before, {} after (below) | {} |\n",
        f.log_lines_before_kill.len(),
        f.log_lines_after_kill.len(),
        pm.kill
            .as_ref()
            .map_or_else(|| "-".into(), |k| format!("kill on log line {}", k.line))
    );

    let s = &pm.sizes;
    let _ = writeln!(md, "## Data sizes from the log\n");
    let _ = writeln!(md, "| | | from |\n|---|---|---|");
    type Pick = fn(&LogEvent) -> bool;
    let picks: [Pick; 10] = [
        |e| matches!(e, LogEvent::RankingSamples { .. }),
        |e| matches!(e, LogEvent::Sampling { .. }),
        |e| matches!(e, LogEvent::SamplesOptimized { .. }),
        |e| matches!(e, LogEvent::Preparing { .. }),
        |e| {
            matches!(
                e,
                LogEvent::Preparing {
                    datasets: Some(_),
                    ..
                }
            )
        },
        |e| matches!(e, LogEvent::MergeDatasetFeatures { .. }),
        |e| matches!(e, LogEvent::MergeUserFeatures { .. }),
        |e| matches!(e, LogEvent::MemoryOptimization { .. }),
        |e| matches!(e, LogEvent::Prepared { .. }),
        |e| {
            matches!(
                e,
                LogEvent::Prepared {
                    features: Some(_),
                    ..
                }
            )
        },
    ];
    let rows: [(&str, String); 10] = [
        (
            "ranking samples before optimization",
            opt_count(s.ranking_samples_rows),
        ),
        (
            "sampling",
            s.sampling
                .map(|(a, b)| format!("{} -> {}", format_count(a), format_count(b)))
                .unwrap_or_else(|| "no sampling line".into()),
        ),
        ("samples optimized", opt_count(s.samples_optimized_rows)),
        (
            "samples prepared (merge input)",
            opt_count(s.preparing_samples),
        ),
        ("datasets", opt_count(s.datasets)),
        (
            "dataset feature columns merged",
            opt_count(s.dataset_feature_columns),
        ),
        (
            "user feature columns merged",
            opt_count(s.user_feature_columns),
        ),
        (
            "memory optimization",
            match (s.memory_before_mb, s.memory_after_mb) {
                (Some(a), Some(b)) => format!("{a:.2} MB -> {b:.2} MB"),
                _ => "not reached".into(),
            },
        ),
        ("prepared rows", opt_count(s.prepared_rows)),
        ("prepared features", opt_count(s.prepared_features)),
    ];
    for ((k, v), pick) in rows.into_iter().zip(picks) {
        let _ = writeln!(md, "| {k} | {v} | {} |", cite_log(pm, pick));
    }
    let _ = writeln!(
        md,
        "\nPipeline version: {}. Pipeline runs in the log: {}.\n",
        pm.pipeline_version_hint, pm.runs_seen
    );

    if let Some(r) = &pm.after_kill {
        let _ = writeln!(md, "## After the kill: a later run\n");
        let _ = writeln!(
            md,
            "- Started on line {}: {} ranking samples loaded, {}.",
            r.first_line,
            opt_count(r.ranking_samples_rows.or(r.preparing_samples)),
            r.sampling
                .map(|(a, b)| format!("sampled {} -> {} rows", format_count(a), format_count(b)))
                .unwrap_or_else(|| "no sampling line".into())
        );
        match r.last_stage.as_ref() {
            Some(s) if s.stage.as_deref() == Some("prepared") => {
                let _ = writeln!(md, "- Completed ranking prep (line {}).", s.line);
                if let Some((_, to)) = r.sampling {
                    let _ = writeln!(
                        md,
                        "- So MAX_RANKING_SAMPLES={to} held through ranking prep in this log{}.",
                        pm.memory
                            .limit_bytes
                            .map(|l| format!(" (limit {})", format_bytes(l)))
                            .unwrap_or_default()
                    );
                }
            }
            Some(s) => {
                let _ = writeln!(
                    md,
                    "- Its last stage line was `{}` (line {}).",
                    s.stage.as_deref().unwrap_or("?"),
                    s.line
                );
            }
            None => {}
        }
        let _ = writeln!(md);
    }

    let m = &pm.memory;
    let _ = writeln!(md, "## Memory\n");
    match m.limit_bytes {
        Some(l) => {
            let _ = writeln!(
                md,
                "- Limit: {} (from {}).",
                format_bytes(l),
                match m.limit_source.as_str() {
                    "flag" => "`--memory-limit`".to_string(),
                    "docker stats" => format!(
                        "`docker stats` rows in `{}`",
                        pm.docker_stats_source
                            .as_ref()
                            .map_or(pm.log.path.as_str(), |s| s.path.as_str())
                    ),
                    other => other.to_string(),
                }
            );
        }
        None => {
            let _ = writeln!(
                md,
                "- Limit: unknown (give `--memory-limit` or `--docker-stats`)."
            );
        }
    }
    if pm.curves.is_empty() {
        let _ = writeln!(
            md,
            "- No memory curve was given or found (`docker stats` rows, `--prometheus`)."
        );
    }
    for c in &pm.curves {
        let _ = writeln!(
            md,
            "- {} (`{}`): {} rows{}{}.",
            c.source,
            c.path,
            c.rows,
            c.series
                .as_deref()
                .map(|s| format!(" of `{s}`"))
                .unwrap_or_default(),
            match (c.covers_kill, c.used) {
                (Some(true), _) => ", covering the kill".to_string(),
                (Some(false), _) | (_, false) => {
                    format!("; {}", c.note.as_deref().unwrap_or("not used"))
                }
                (None, true) => c
                    .note
                    .as_deref()
                    .map(|n| format!("; {n}"))
                    .unwrap_or_default(),
            }
        );
        if let Some(note) = &c.series_note {
            let _ = writeln!(md, "  - {note}.");
        }
    }
    if let (Some(curve), Some(peak)) = (&m.curve, m.peak_usage_bytes) {
        let _ = writeln!(
            md,
            "- Peak: {curve}{} peaked at {}{}{}.",
            m.container
                .as_deref()
                .map(|c| format!(", `{c}`,"))
                .unwrap_or_default(),
            format_bytes(peak),
            at_time(m.peak_t_unix),
            m.peak_pct_of_limit
                .map(|p| format!(" ({p:.1}% of the limit)"))
                .unwrap_or_default()
        );
        if let Some(b) = m.last_usage_before_kill_bytes {
            let _ = writeln!(
                md,
                "- Last {curve} reading before the kill: {}.",
                format_bytes(b)
            );
        }
    } else if !pm.curves.is_empty() {
        let _ = writeln!(
            md,
            "- No curve covers the kill: no peak at death is given; the advice rests on the log and the limit."
        );
    }
    let _ = writeln!(md);

    if !pm.sources.is_empty() {
        let _ = writeln!(md, "## Other sources\n");
        let _ = writeln!(
            md,
            "| source | fact | where | line as read |\n|---|---|---|---|"
        );
        for s in &pm.sources {
            for f in s.all_facts() {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | `{}` |",
                    s.source,
                    f.what.replace('|', "\\|"),
                    f.at.cite(),
                    f.at.text.replace('|', "\\|").replace('`', "'")
                );
            }
        }
        let _ = writeln!(md);
        for s in &pm.sources {
            let _ = writeln!(
                md,
                "- {} `{}`: {} lines, {} recognized.",
                s.source, s.path, s.lines, s.recognized
            );
        }
        let _ = writeln!(md);
    }

    let _ = writeln!(md, "## The kill as a measurement\n");
    match (&pm.kill_evidence, &pm.kill_not_used) {
        (Some(e), _) => {
            let _ = writeln!(
                md,
                "- Killed ({}) holding {} rows ({} loaded, MAX_RANKING_SAMPLES={}){}, at the {} limit (from {}): the peak was at least the limit.",
                e.kill_source,
                format_count(e.killed_rows),
                format_count(e.rows_in),
                e.max_ranking_samples,
                e.stage
                    .as_deref()
                    .map(|s| format!(" in `{s}` (line {})", e.stage_line.unwrap_or(0)))
                    .unwrap_or_default(),
                format_bytes(e.limit_bytes),
                e.limit_source
            );
        }
        (None, Some(why)) => {
            let _ = writeln!(md, "- Not used: {why}.");
        }
        (None, None) => {
            let _ = writeln!(md, "- No kill.");
        }
    }
    if let Some(b) = &pm.log_bound {
        let _ = writeln!(md, "- {}", b.describe());
        if pm.model.is_none() && b.cap_at_most > 0 {
            let _ = writeln!(
                md,
                "\n```bash\n{}```",
                crate::model::advice::env_snippet(
                    b.cap_at_most,
                    "a bound from the log alone: at most this, maybe less"
                )
            );
        }
    }
    let _ = writeln!(md);

    let _ = writeln!(md, "## Model\n");
    match &pm.model {
        None => {
            let _ = writeln!(
                md,
                "No model given (`--model model.json` from `oomlab sweep` adds the predicted peak and the settings that fit).\n"
            );
        }
        Some(mf) => {
            let _ = writeln!(md, "{}.\n", mf.model);
            if !mf.predicted.is_empty() {
                let _ = writeln!(
                    md,
                    "Predicted peaks at {} rows loaded, MAX_RANKING_SAMPLES={}:\n",
                    format_count(mf.rows_in),
                    mf.max_ranking_samples_in_force
                );
                let _ = writeln!(
                    md,
                    "| strategy | predicted peak | stage | vs limit |\n|---|---|---|---|"
                );
                for (name, p) in &mf.predicted {
                    let vs = mf
                        .limit_bytes
                        .map(|l| {
                            if p.peak_bytes > l {
                                format!("over by {}", format_bytes(p.peak_bytes - l))
                            } else {
                                format!(
                                    "fits ({:.0}% of it)",
                                    p.peak_bytes as f64 / l as f64 * 100.0
                                )
                            }
                        })
                        .unwrap_or_else(|| "-".into());
                    let _ = writeln!(
                        md,
                        "| {name} | {} | {} | {vs} |",
                        format_bytes(p.peak_bytes),
                        p.stage
                    );
                }
                let _ = writeln!(md);
            }
            match &mf.fitting {
                Some(FittingSetting::NoSampling { peak }) => {
                    let _ = writeln!(
                        md,
                        "With {:.0}% headroom, v2 fits without sampling (predicted {}).\n",
                        mf.headroom * 100.0,
                        format_bytes(peak.peak_bytes)
                    );
                }
                Some(FittingSetting::Cap { cap, peak }) => {
                    let _ = writeln!(
                        md,
                        "With {:.0}% headroom, the setting that fits: MAX_RANKING_SAMPLES={} (predicted {}, stage {}).\n",
                        mf.headroom * 100.0,
                        format_count(*cap),
                        format_bytes(peak.peak_bytes),
                        peak.stage
                    );
                }
                Some(FittingSetting::NoFit { floor }) => {
                    let _ = writeln!(
                        md,
                        "No setting fits: v2 needs at least {} (stage {}).\n",
                        format_bytes(floor.peak_bytes),
                        floor.stage
                    );
                }
                None => {}
            }
            if let Some(why) = &mf.no_safe_cap {
                let _ = writeln!(md, "No setting can be shown safe: {why}.\n");
            }
            if let Some(env) = &mf.env_snippet {
                if mf.cap_is_upper_bound {
                    let _ = writeln!(
                        md,
                        "An upper bound: the kill says the peak was at least the limit, not how far above it went, so the safe cap may be lower.\n"
                    );
                }
                let _ = writeln!(md, "```bash\n{}```\n", env);
            }
            if let Some(cmd) = &mf.check_command {
                let _ = writeln!(
                    md,
                    "The same calibration in `oomlab check` (exit 0: fits):\n\n```sh\n{cmd}\n```\n"
                );
            }
            if let Some(cmd) = &mf.check_killed_command {
                let _ = writeln!(
                    md,
                    "and with the killed setting (exit 1: does not fit):\n\n```sh\n{cmd}\n```\n"
                );
            }
            if let Some(cmd) = &mf.measure_command {
                let _ = writeln!(
                    md,
                    "To measure what is missing, one run at a smaller cap:\n\n```sh\n{cmd}\n```\n\n{}.\n",
                    pm.kill_evidence
                        .as_ref()
                        .map(kill::measure_then)
                        .unwrap_or_default()
                );
            }
            for n in &mf.notes {
                let _ = writeln!(md, "- {n}");
            }
            if !mf.notes.is_empty() {
                let _ = writeln!(md);
            }
        }
    }

    let _ = writeln!(md, "## Timeline of recognized lines\n");
    if pm.timeline.is_empty() {
        let _ = writeln!(md, "Nothing recognized.\n");
    } else {
        let _ = writeln!(md, "| line | time | stage | event |\n|---|---|---|---|");
        let shown = 200;
        for e in pm
            .timeline
            .iter()
            .filter(|e| !matches!(e.event, LogEvent::Stats(_)))
            .take(shown)
        {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                e.line,
                e.t_unix.map(format_unix).unwrap_or_default(),
                e.stage.as_deref().unwrap_or(""),
                e.event.describe().replace('|', "\\|")
            );
        }
        let total = pm.timeline.len() as u64 + pm.timeline_dropped;
        if total > shown as u64 {
            let _ = writeln!(
                md,
                "\n({} events in all; postmortem.json has the first 10,000.)",
                total
            );
        }
        let _ = writeln!(md);
    }

    if let Some(k) = &pm.kill {
        let _ = writeln!(
            md,
            "## {} lines before and after the kill (line {})\n",
            f.log_lines_before_kill
                .len()
                .max(f.log_lines_after_kill.len()),
            k.line
        );
        let _ = writeln!(md, "```");
        for l in &f.log_lines_before_kill {
            let _ = writeln!(md, "{:>8}  {}", l.line, l.text.replace("```", "'''"));
        }
        let _ = writeln!(md, "{:>8}> {}", k.line, k.text.replace("```", "'''"));
        for l in &f.log_lines_after_kill {
            let _ = writeln!(md, "{:>8}  {}", l.line, l.text.replace("```", "'''"));
        }
        let _ = writeln!(md, "```\n");
    }

    let l = &pm.log;
    let _ = writeln!(md, "## What was read\n");
    let _ = writeln!(
        md,
        "`{}`: {} bytes, {} lines: {} recognized, {} unknown (skipped), {} empty, {} not UTF-8, {} binary, {} longer than 64 KiB (cut).",
        l.path, l.bytes, l.lines, l.recognized, l.unknown, l.empty, l.non_utf8, l.binary, l.truncated
    );
    if let Some(s) = &pm.docker_stats_source {
        let _ = writeln!(
            md,
            "\n`{}`: {} lines, {} recognized, {} unknown.",
            s.path, s.lines, s.recognized, s.unknown
        );
    }
    md
}

/// Writes `postmortem.json` and `postmortem.md` into `dir` (the picture is
/// drawn first by `plot::postmortem::draw`, which names it in `pm.pictures`).
pub fn write(pm: &Postmortem, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    let json = serde_json::to_vec_pretty(pm)?;
    write_atomically(&dir.join("postmortem.json"), &json)?;
    write_atomically(&dir.join("postmortem.md"), render_markdown(pm).as_bytes())?;
    Ok(())
}
