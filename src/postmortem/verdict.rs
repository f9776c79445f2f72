//! The verdict: the few sentences at the top of a postmortem that say what killed the run, and the small phrasing helpers the write-up shares.

use super::*;

pub(super) fn at_time(t: Option<f64>) -> String {
    t.map(|t| format!(" at {}", format_unix(t)))
        .unwrap_or_default()
}

/// What was odd about a log's bytes, as a sentence (empty when nothing was):
/// lines that were not UTF-8 or held binary data were read anyway, lossily.
pub(super) fn encoding_note(log: &SourceStats) -> String {
    let mut odd = Vec::new();
    if log.non_utf8 > 0 {
        odd.push(format!(
            "{} not valid UTF-8 (read with replacement characters)",
            log.non_utf8
        ));
    }
    if log.binary > 0 {
        odd.push(format!("{} with binary bytes (NUL or control)", log.binary));
    }
    if log.truncated > 0 {
        odd.push(format!(
            "{} longer than 64 KiB (only the first 64 KiB read)",
            log.truncated
        ));
    }
    if odd.is_empty() {
        String::new()
    } else {
        format!(" Of its {} lines, {}.", log.lines, odd.join("; "))
    }
}

pub(super) fn verdict(pm: &Postmortem) -> String {
    let mut v = String::new();
    if pm.log.bytes == 0 && pm.memory.stats_rows == 0 {
        return format!(
            "{} is empty (0 bytes): no kill, stage or size can be named from it.",
            pm.log.path
        );
    }
    if pm.log.recognized == 0 && pm.memory.stats_rows == 0 {
        return format!(
            "Nothing in {} was recognized ({} lines, {} skipped): not the pipeline's log, or its INFO lines were not captured. No kill, stage or size can be named from it.{}",
            pm.log.path,
            pm.log.lines,
            pm.log.unknown,
            encoding_note(&pm.log)
        );
    }
    let stage = pm.last_stage.as_ref();
    match &pm.kill {
        Some(k) => {
            let _ = write!(
                v,
                "The pipeline was killed ({}) on line {}{}: `{}`. ",
                kill_label(k.kind),
                k.line,
                at_time(k.t_unix),
                k.text.trim()
            );
            match stage {
                Some(s) if s.stage.as_deref() == Some("prepared") => {
                    let _ = write!(
                        v,
                        "Ranking data had already been prepared (line {}), so the kill came after ranking prep. ",
                        s.line
                    );
                }
                Some(s) => {
                    let _ = write!(
                        v,
                        "The last stage reached was `{}` (line {}: \"{}\"). ",
                        s.stage.as_deref().unwrap_or("?"),
                        s.line,
                        s.event.describe()
                    );
                }
                None => v.push_str("No pipeline stage line came before it. "),
            }
            if let Some(retry) = &pm.after_kill {
                let _ = write!(v, "A later run started on line {}", retry.first_line);
                if let Some((from, to)) = retry.sampling {
                    let _ = write!(
                        v,
                        ", sampled {} -> {} rows",
                        format_count(from),
                        format_count(to)
                    );
                }
                match retry.last_stage.as_ref().and_then(|s| s.stage.as_deref()) {
                    Some("prepared") => v.push_str(", and completed ranking prep. "),
                    Some(stage) => {
                        let _ = write!(v, ", and its last stage line was `{stage}`. ");
                    }
                    None => v.push_str(". "),
                }
            }
        }
        None => {
            v.push_str("No kill (exit code -9, Killed, OOM) was found in the log");
            match pm
                .sources
                .iter()
                .find_map(|s| s.kill.as_ref().map(|f| (s, f)))
            {
                Some((s, f)) => {
                    let _ = write!(v, ", but the {} recorded one ({}). ", s.source, f.at.cite());
                }
                None => v.push_str(". "),
            }
            if let Some(s) = stage {
                let _ = write!(
                    v,
                    "The last stage reached was `{}` (line {}). ",
                    s.stage.as_deref().unwrap_or("?"),
                    s.line
                );
            }
        }
    }
    let f = &pm.facts;
    if let Some(rows) = f.ranking_samples_rows {
        let _ = write!(v, "It was preparing {} ranking samples", format_count(rows));
        if let (Some(d), Some(c)) = (f.dataset_profile_rows, f.dataset_profile_columns) {
            let _ = write!(
                v,
                " against {} datasets x {} feature columns",
                format_count(d),
                c
            );
        } else if let Some(c) = f.dataset_profile_columns {
            let _ = write!(v, " with {c} dataset feature columns");
        }
        match f.max_ranking_samples {
            Some(0) => v.push_str(", MAX_RANKING_SAMPLES=0 (no limit). "),
            Some(m) => {
                let _ = write!(v, ", MAX_RANKING_SAMPLES={}. ", format_count(m));
            }
            None => v.push_str(", with no sampling line (no MAX_RANKING_SAMPLES in force). "),
        }
    }
    let m = &pm.memory;
    if let Some(peak) = m.peak_usage_bytes {
        let _ = write!(
            v,
            "{} peaked at {}{}{}",
            m.curve.as_deref().unwrap_or("memory"),
            format_bytes(peak),
            m.container
                .as_deref()
                .map(|c| format!(" in `{c}`"))
                .unwrap_or_default(),
            at_time(m.peak_t_unix)
        );
        if let (Some(l), Some(p)) = (m.limit_bytes, m.peak_pct_of_limit) {
            let _ = write!(v, " ({p:.1}% of the {} limit)", format_bytes(l));
        }
        v.push_str(". ");
    }
    for c in pm.curves.iter().filter(|c| c.covers_kill == Some(false)) {
        let _ = write!(
            v,
            "The {} curve (`{}`) {}, so its peak is not the pipeline's at death and is not used. ",
            c.source,
            c.path,
            c.note.as_deref().unwrap_or("does not cover the kill")
        );
    }
    if let Some(model) = &pm.model {
        if let (Some(limit), Some(p)) = (model.limit_bytes, model.predicted.get("optimized")) {
            let sizes = match model.columns {
                Some(c) => format!("these sizes ({c} numeric profile columns, as logged)"),
                None => "these sizes".into(),
            };
            if model.under_predicts {
                let _ = write!(
                    v,
                    "The model predicted at most {} at {sizes}, yet the run was killed: it under-predicted this workload. ",
                    format_bytes(model.largest_before_kill_bytes.unwrap_or(0))
                );
            }
            let sizes = if model.under_predicts {
                "these sizes".to_string()
            } else {
                sizes
            };
            let _ = write!(
                v,
                "{} predicts {} for v2 at {sizes} against the {} limit",
                if model.kill_observation.is_some() {
                    "Calibrated with the kill, the model"
                } else {
                    "The model"
                },
                format_bytes(p.peak_bytes),
                format_bytes(limit)
            );
            match (&model.fitting, &model.no_safe_cap) {
                (_, Some(why)) => {
                    let _ = write!(v, "; no setting can be shown safe: {why}.");
                    if let (Some(cmd), Some(ev)) = (&model.measure_command, &pm.kill_evidence) {
                        let _ = write!(v, " Measure one: `{cmd}`, {}.", kill::measure_then(ev));
                    }
                }
                (Some(FittingSetting::NoSampling { .. }), None) => {
                    v.push_str("; it fits without sampling.")
                }
                (Some(FittingSetting::Cap { cap, .. }), None) if model.cap_is_upper_bound => {
                    let _ = write!(
                        v,
                        "; MAX_RANKING_SAMPLES={cap} is the largest setting that can fit, an upper bound: the kill shows the peak was at least the limit, and it may have been above it, so the safe cap may be lower."
                    );
                }
                (Some(FittingSetting::Cap { cap, .. }), None) => {
                    let _ = write!(v, "; MAX_RANKING_SAMPLES={cap} would have fitted.");
                }
                (Some(FittingSetting::NoFit { floor }), None) => {
                    let _ = write!(
                        v,
                        "; no setting fits (v2 needs at least {}).",
                        format_bytes(floor.peak_bytes)
                    );
                }
                (None, None) => v.push('.'),
            }
        }
    } else if let Some(b) = &pm.log_bound {
        v.push_str(&b.describe());
    }
    let mut v = v.trim_end().to_string();
    v.push_str(&sources_sentence(pm));
    v.push_str(&encoding_note(&pm.log));
    v
}

/// What the other sources add, one clause each, every one citing its file
/// and line (empty without sources).
pub(super) fn sources_sentence(pm: &Postmortem) -> String {
    let mut parts = Vec::new();
    for s in &pm.sources {
        for f in [&s.kill, &s.limit, &s.peak].into_iter().flatten() {
            parts.push(format!("{} ({})", f.what, f.at.cite()));
        }
    }
    if parts.is_empty() {
        return String::new();
    }
    let lead = " Other sources";
    format!("{lead}: {}.", parts.join("; "))
}

pub(super) fn kill_label(kind: parse::KillKind) -> &'static str {
    match kind {
        parse::KillKind::Sigkill => "exit code -9 / SIGKILL",
        parse::KillKind::OomKiller => "the kernel's OOM killer",
        parse::KillKind::Killed => "`Killed`",
        parse::KillKind::MemoryError => "Python MemoryError",
    }
}

pub(super) fn opt_count(v: Option<u64>) -> String {
    v.map(format_count)
        .unwrap_or_else(|| "not in the log".into())
}

/// Where in the log the reported run said what `pick` picks: the last such
/// line of that run (the one its figure was read from), as `log line N`, or
/// `-` when the timeline (its first 10,000 events) does not hold it.
pub(super) fn cite_log(pm: &Postmortem, pick: impl Fn(&LogEvent) -> bool) -> String {
    let from = pm.sizes.first_line;
    let to = pm.kill.as_ref().map_or(u64::MAX, |k| k.line);
    pm.timeline
        .iter()
        .filter(|e| e.line >= from && e.line <= to && pick(&e.event))
        .map(|e| e.line)
        .next_back()
        .map_or_else(|| "-".into(), |l| format!("log line {l}"))
}
