//! The page of a `postmortem.json`: the memory curve up to the kill (the
//! `docker stats` readings, with the stage log lines and the kill placed on
//! it when they carry times), the write-up's facts each with the log line it
//! was read from, the kill and the lines around it, and the cap with the
//! `.env` lines to paste.

use serde::Serialize;

use super::{fact, Fact, Kind, Page};
use crate::model::advice::env_snippet;
use crate::postmortem::model::FittingSetting;
use crate::postmortem::parse::LogEvent;
use crate::postmortem::scan::ContextLine;
use crate::postmortem::Postmortem;
use crate::units::{format_bytes, format_count};

#[derive(Debug, Clone, Serialize)]
struct Curve {
    /// Seconds since the first reading (or row number x the stats interval).
    t_s: Vec<f64>,
    usage_bytes: Vec<u64>,
    /// Whether the readings carried their own times.
    timed: bool,
    container: String,
    /// The curve's own name (`docker stats`, `Prometheus`) and file.
    source: String,
    path: Option<String>,
    /// Stage log lines placed on the curve: (seconds, stage).
    stages: Vec<(f64, String)>,
    kill_t_s: Option<f64>,
    /// The log carries times, but none falls within the readings (a stats
    /// file of another run or day): nothing of the log is placed.
    unplaced: bool,
}

/// One fact with the log line it came from.
#[derive(Debug, Clone, Serialize)]
struct FactRow {
    what: String,
    value: String,
    /// `log line N`, a file and line of another source, or `-`.
    from: String,
    /// The line as it was read, when the timeline holds it.
    text: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct Cap {
    /// `MAX_RANKING_SAMPLES` to set (0: no limit), when one is shown safe.
    setting: Option<u64>,
    /// Why it is what it is (the model's fit, a bound from the log alone).
    basis: String,
    env: Option<String>,
    /// Why no setting is shown, when none is.
    none_because: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct PostmortemBody {
    verdict: String,
    curve: Option<Curve>,
    limit_bytes: Option<u64>,
    limit_source: String,
    peak_usage_bytes: Option<u64>,
    kill: Option<FactRow>,
    facts: Vec<FactRow>,
    before_kill: Vec<ContextLine>,
    after_kill: Vec<ContextLine>,
    cap: Cap,
    notes: Vec<String>,
}

/// The last line of the reported run, up to the kill, that `pick` picks.
fn cite(pm: &Postmortem, pick: impl Fn(&LogEvent) -> bool) -> (String, Option<String>) {
    let from = pm.sizes.first_line;
    let to = pm.kill.as_ref().map_or(u64::MAX, |k| k.line);
    pm.timeline
        .iter()
        .rfind(|e| e.line >= from && e.line <= to && pick(&e.event))
        .map_or(("-".into(), None), |e| {
            (format!("log line {}", e.line), Some(e.text.clone()))
        })
}

fn count(v: Option<u64>) -> String {
    v.map(format_count)
        .unwrap_or_else(|| "not in the log".into())
}

fn facts(pm: &Postmortem) -> Vec<FactRow> {
    let f = &pm.facts;
    let row = |what: &str, value: String, (from, text): (String, Option<String>)| FactRow {
        what: what.into(),
        value,
        from,
        text,
    };
    let mut rows = vec![
        row(
            "1. ranking_samples rows",
            count(f.ranking_samples_rows),
            match cite(pm, |e| matches!(e, LogEvent::RankingSamples { .. })) {
                (c, _) if c == "-" => cite(pm, |e| matches!(e, LogEvent::Preparing { .. })),
                c => c,
            },
        ),
        row(
            "2. dataset_profile feature columns",
            count(f.dataset_profile_columns),
            cite(pm, |e| matches!(e, LogEvent::MergeDatasetFeatures { .. })),
        ),
        row(
            "2. dataset_profile rows (datasets)",
            count(f.dataset_profile_rows),
            cite(pm, |e| {
                matches!(
                    e,
                    LogEvent::Preparing {
                        datasets: Some(_),
                        ..
                    }
                )
            }),
        ),
        row(
            "3. MAX_RANKING_SAMPLES in force",
            format!(
                "{} ({})",
                f.max_ranking_samples
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "unknown".into()),
                f.max_ranking_samples_source
            ),
            match cite(pm, |e| matches!(e, LogEvent::Sampling { .. })) {
                (c, _) if c == "-" => cite(pm, |e| matches!(e, LogEvent::MaxRankingSamples { .. })),
                c => c,
            },
        ),
    ];
    if let Some(stage) = &pm.last_stage {
        rows.push(FactRow {
            what: "last stage reached".into(),
            value: stage.stage.clone().unwrap_or_else(|| "-".into()),
            from: format!("log line {}", stage.line),
            text: Some(stage.text.clone()),
        });
    }
    for s in &pm.sources {
        for (what, f) in [("kill", &s.kill), ("limit", &s.limit), ("peak", &s.peak)] {
            if let Some(f) = f {
                rows.push(FactRow {
                    what: format!("{} ({what})", s.source),
                    value: f.what.clone(),
                    from: f.at.cite(),
                    text: Some(f.at.text.clone()),
                });
            }
        }
    }
    rows
}

fn curve(pm: &Postmortem) -> Option<Curve> {
    if pm.stats.len() < 2 {
        return None;
    }
    let timed = pm.stats.iter().all(|p| p.t_unix.is_some());
    let t0 = pm
        .stats
        .iter()
        .filter_map(|p| p.t_unix)
        .fold(f64::INFINITY, f64::min);
    // Log times are placed on the curve only when they fall within the
    // readings (give or take half their span): a stats file of another day
    // would otherwise squash the curve against one edge.
    let t_last = pm
        .stats
        .iter()
        .filter_map(|p| p.t_unix)
        .fold(f64::NEG_INFINITY, f64::max);
    let slack = ((t_last - t0) * 0.5).max(60.0);
    let within = |t: f64| timed && t >= t0 - slack && t <= t_last + slack;
    let kill_t = pm
        .kill
        .as_ref()
        .and_then(|k| k.t_unix)
        .filter(|&t| within(t));
    let mut t_s = Vec::new();
    let mut usage = Vec::new();
    for p in &pm.stats {
        let t = match p.t_unix {
            Some(t) if timed => t - t0,
            _ => p.index as f64 * pm.stats_interval_s,
        };
        // Up to the kill: readings after it are of whatever ran next.
        if kill_t.is_some_and(|k| t > k - t0 + pm.stats_interval_s) {
            break;
        }
        t_s.push(t);
        usage.push(p.usage_bytes);
    }
    let stages: Vec<(f64, String)> = pm
        .timeline
        .iter()
        .filter_map(|e| Some((e.t_unix?, e.stage.clone()?)))
        .filter(|(t, _)| within(*t))
        .map(|(t, s)| ((t - t0).max(0.0), s))
        .collect();
    let log_times = pm.timeline.iter().filter(|e| e.t_unix.is_some()).count();
    let unplaced = timed && log_times > 0 && stages.is_empty() && kill_t.is_none();
    Some(Curve {
        t_s,
        usage_bytes: usage,
        timed,
        container: pm
            .memory
            .container
            .clone()
            .unwrap_or_else(|| "container".into()),
        source: pm
            .memory
            .curve
            .clone()
            .unwrap_or_else(|| "docker stats".into()),
        path: pm.memory.curve_path.clone(),
        stages,
        kill_t_s: kill_t.map(|k| (k - t0).max(0.0)),
        unplaced,
    })
}

fn cap(pm: &Postmortem) -> Cap {
    if let Some(m) = &pm.model {
        let setting = m.fitting.as_ref().and_then(|f| match f {
            FittingSetting::NoSampling { .. } => Some(0),
            FittingSetting::Cap { cap, .. } => Some(*cap),
            FittingSetting::NoFit { .. } => None,
        });
        return Cap {
            setting,
            basis: format!(
                "the model {} at the killed run's sizes (headroom {:.0}%){}",
                m.model,
                m.headroom * 100.0,
                if m.cap_is_upper_bound {
                    "; an upper bound: the kill says the peak was at least the limit"
                } else {
                    ""
                }
            ),
            env: m.env_snippet.clone(),
            none_because: m.no_safe_cap.clone(),
        };
    }
    match &pm.log_bound {
        Some(b) if b.cap_at_most > 0 => Cap {
            setting: Some(b.cap_at_most),
            basis: b.describe(),
            env: Some(env_snippet(
                b.cap_at_most,
                "a bound from the log alone: at most this, maybe less",
            )),
            none_because: None,
        },
        Some(b) => Cap {
            setting: None,
            basis: b.describe(),
            env: None,
            none_because: Some("the log alone bounds no cap; pass --model model.json".into()),
        },
        None => Cap {
            setting: None,
            basis: "no kill with sizes to bound a cap".into(),
            env: None,
            none_because: Some(
                pm.kill_not_used
                    .clone()
                    .unwrap_or_else(|| "the log names no kill and no sizes".into()),
            ),
        },
    }
}

fn provenance(pm: &Postmortem, source: &str) -> Vec<Fact> {
    let mut facts = vec![
        fact(
            "command",
            format!(
                "oomlab postmortem --log {}{}{}",
                pm.log.path,
                pm.docker_stats_source
                    .as_ref()
                    .map(|s| format!(" --docker-stats {}", s.path))
                    .unwrap_or_default(),
                pm.model
                    .as_ref()
                    .map(|m| format!(" --model {}", m.model))
                    .unwrap_or_default()
            ),
        ),
        fact(
            "replay mode",
            "none: read from the logs of the killed run (nothing re-run)",
        ),
        fact(
            "log",
            format!(
                "{}: {} lines, {} recognized",
                pm.log.path,
                format_count(pm.log.lines),
                format_count(pm.log.recognized)
            ),
        ),
        fact("pipeline", pm.pipeline_version_hint.clone()),
    ];
    if let Some(m) = &pm.model {
        facts.push(fact("model", m.model.clone()));
    }
    for s in &pm.sources {
        facts.push(fact(&s.source, s.path.clone()));
    }
    facts.push(fact(
        "written",
        format!(
            "{} by oomlab {} from {source}",
            pm.created_at, pm.oomlab_version
        ),
    ));
    facts
}

/// The page of a postmortem; `source` names the `postmortem.json` it shows.
pub fn page(pm: &Postmortem, source: &str) -> Page {
    let mut notes = Vec::new();
    if pm.stats.len() < 2 {
        notes.push(
            "No memory curve reaching the kill: pass --docker-stats or --prometheus readings of the killed run.".into(),
        );
    }
    if let Some(why) = &pm.kill_not_used {
        notes.push(format!("The kill was not used as a measurement: {why}."));
    }
    let body = PostmortemBody {
        verdict: pm.verdict.clone(),
        curve: curve(pm),
        limit_bytes: pm.memory.limit_bytes,
        limit_source: pm.memory.limit_source.clone(),
        peak_usage_bytes: pm.memory.peak_usage_bytes,
        kill: pm.kill.as_ref().map(|k| FactRow {
            what: "kill".into(),
            value: format!("{:?}", k.kind).to_lowercase(),
            from: format!("log line {}", k.line),
            text: Some(k.text.clone()),
        }),
        facts: facts(pm),
        before_kill: pm.facts.log_lines_before_kill.clone(),
        after_kill: pm.facts.log_lines_after_kill.clone(),
        cap: cap(pm),
        notes,
    };
    let mut subtitle = match (pm.memory.peak_usage_bytes, pm.memory.limit_bytes) {
        (Some(p), Some(l)) => format!("peak {} of a {} limit", format_bytes(p), format_bytes(l)),
        (Some(p), None) => format!("peak {}", format_bytes(p)),
        (None, Some(l)) => format!("limit {}", format_bytes(l)),
        (None, None) => String::new(),
    };
    if let Some(k) = &pm.kill {
        if !subtitle.is_empty() {
            subtitle += " · ";
        }
        subtitle += &format!("killed on log line {}", k.line);
    }
    Page {
        kind: Kind::Postmortem,
        title: format!("Postmortem: {}", pm.log.path),
        subtitle,
        provenance: provenance(pm, source),
        body: serde_json::to_value(body).unwrap_or_default(),
    }
}
