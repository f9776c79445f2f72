//! Which memory curve may describe the kill, and which series of it.
//!
//! A postmortem is read by someone who was not there, so a figure must come
//! from the source it names and a source that cannot describe the moment of
//! death must say so rather than be quietly used. Each curve (`docker stats`
//! rows, a Prometheus range query, ...) keeps its own name; its window is
//! set against the kill's time (a curve that ends before the kill or starts
//! after it is reported and not used for the peak at death, and a curve whose
//! clock looks shifted by whole hours is said to be so); and of the several
//! series a real query returns (one per container, the pod's own cgroup
//! `container=""`, the pause container `POD`), one is chosen and named, and
//! the pod total is never added to its containers.

use serde::{Deserialize, Serialize};

use super::scan::StatsPoint;
use crate::clock::format_unix;

/// A memory curve as a source gave it (possibly several series, told apart
/// by [`StatsPoint::name`]).
#[derive(Debug, Clone)]
pub struct Curve {
    /// The source's name as every sentence prints it (`docker stats`, `Prometheus`).
    pub source: String,
    /// The file it was read from.
    pub path: String,
    /// Every point, every series.
    pub points: Vec<StatsPoint>,
}

/// What was decided about one curve, kept in `postmortem.json` so a reader
/// can see why a curve was or was not used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CurveCheck {
    /// The source's name (`docker stats`, `Prometheus`).
    pub source: String,
    /// The file it was read from.
    pub path: String,
    /// The series the figures are of (a container), when the curve names one.
    pub series: Option<String>,
    /// How that series was chosen, when there were several.
    pub series_note: Option<String>,
    /// Points of the chosen series.
    pub rows: u64,
    /// The chosen series' first and last sample times.
    pub first_t_unix: Option<f64>,
    /// See `first_t_unix`.
    pub last_t_unix: Option<f64>,
    /// `Some(true)`: the window reaches the kill; `Some(false)`: it does not;
    /// `None`: cannot be told (no kill time, or rows without times).
    pub covers_kill: Option<bool>,
    /// Why it does not cover the kill (window and kill time), or why that
    /// cannot be checked, and a clock that looks shifted.
    pub note: Option<String>,
    /// Whether the peak at death may be read from it.
    pub used: bool,
    /// The chosen series' points.
    #[serde(skip)]
    pub points: Vec<StatsPoint>,
}

impl CurveCheck {
    /// The chosen series' peak: the first point at the highest usage, so
    /// every place that prints it prints the same time.
    pub fn peak(&self) -> Option<&StatsPoint> {
        first_max(&self.points)
    }
}

/// The first point at the highest usage (not the last, as `max_by_key` gives).
pub fn first_max(points: &[StatsPoint]) -> Option<&StatsPoint> {
    points
        .iter()
        .fold(None, |best: Option<&StatsPoint>, p| match best {
            Some(b) if b.usage_bytes >= p.usage_bytes => Some(b),
            _ => Some(p),
        })
}

/// Whether a series is the pod's own cgroup or the pause container: never a
/// container of the pipeline's, and never added to one.
fn is_pod_level(name: &str) -> bool {
    name.is_empty() || name == "POD"
}

/// Chooses the series of `curve` the figures are of: `wanted`
/// (`--container`), else the container another source names as killed,
/// else the largest that is not the pod total. Returns the name and, when
/// there were several series, a sentence saying which and why.
fn choose_series(
    points: &[StatsPoint],
    wanted: Option<&str>,
    killed: Option<&str>,
) -> (Option<String>, Option<String>) {
    let mut names: Vec<(String, u64)> = Vec::new();
    for p in points {
        match names.iter_mut().find(|(n, _)| *n == p.name) {
            Some((_, peak)) => *peak = (*peak).max(p.usage_bytes),
            None => names.push((p.name.clone(), p.usage_bytes)),
        }
    }
    if names.len() <= 1 {
        return (names.pop().map(|(n, _)| n), None);
    }
    let containers: Vec<&(String, u64)> = names.iter().filter(|(n, _)| !is_pod_level(n)).collect();
    let pool: Vec<&(String, u64)> = if containers.is_empty() {
        names.iter().collect()
    } else {
        containers
    };
    let has = |n: &str| pool.iter().any(|(m, _)| m == n);
    let (chosen, why) = match (wanted.filter(|w| has(w)), killed.filter(|k| has(k))) {
        (Some(w), _) => (w.to_string(), "named by --container".to_string()),
        (None, Some(k)) => (k.to_string(), "the container the kill names".to_string()),
        (None, None) => {
            let largest = pool
                .iter()
                .fold(None, |best: Option<&&(String, u64)>, s| match best {
                    Some(b) if b.1 >= s.1 => Some(b),
                    _ => Some(s),
                })
                .map(|(n, _)| n.clone())
                .unwrap_or_default();
            let why = match wanted {
                Some(w) => format!("--container {w} is not among them, so the largest"),
                None => "the largest".to_string(),
            };
            (largest, format!("{why} that is not the pod total"))
        }
    };
    let list = names
        .iter()
        .map(|(n, _)| match n.as_str() {
            "" => "the pod total (container=\"\")".to_string(),
            "POD" => "the pause container (POD)".to_string(),
            n => format!("`{n}`"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let note = format!(
        "series `{chosen}` of {} ({list}): {why}; the pod total is never added to its containers",
        names.len()
    );
    (Some(chosen), Some(note))
}

/// Sets a series' window against the kill's time: covered when its samples
/// reach to within three sample intervals (at least 5 s) of the kill.
fn judge_window(points: &[StatsPoint], kill_t: Option<f64>) -> (Option<bool>, Option<String>) {
    let mut times: Vec<f64> = points.iter().filter_map(|p| p.t_unix).collect();
    times.sort_by(f64::total_cmp);
    let (Some(&first), Some(&last)) = (times.first(), times.last()) else {
        return (
            None,
            kill_t.map(|_| {
                "its rows carry no time, so whether it covers the kill cannot be checked".into()
            }),
        );
    };
    let Some(kill) = kill_t else {
        return (
            None,
            Some("the kill line carries no time, so whether this curve covers the kill cannot be checked".into()),
        );
    };
    let mut steps: Vec<f64> = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0.0)
        .collect();
    steps.sort_by(f64::total_cmp);
    let step = steps.get(steps.len() / 2).copied().unwrap_or(5.0);
    let tolerance = (3.0 * step).max(5.0);
    let side = if last < kill - tolerance {
        "ends before the kill"
    } else if first > kill + tolerance {
        "starts after the kill"
    } else {
        return (Some(true), None);
    };
    let offset = kill - last;
    let hours = (offset / 3600.0).round();
    let shifted = if hours != 0.0
        && hours.abs() <= 14.0
        && (offset - hours * 3600.0).abs() <= tolerance
    {
        format!(
            "; its clock looks shifted by {hours:+.0} h (a timezone?): moved by that, its last sample meets the kill, but it is not used on that guess"
        )
    } else {
        String::new()
    };
    (
        Some(false),
        Some(format!(
            "does not cover the kill: it {side} (window {} – {}, kill at {}){shifted}",
            format_unix(first),
            format_unix(last),
            format_unix(kill)
        )),
    )
}

/// Checks every curve: its series, its window against the kill. `wanted` is
/// `--container`, `killed` the container another source names as killed.
pub fn check(
    curves: Vec<Curve>,
    wanted: Option<&str>,
    killed: Option<&str>,
    kill_t: Option<f64>,
) -> Vec<CurveCheck> {
    curves
        .into_iter()
        .map(|c| {
            let (series, series_note) = choose_series(&c.points, wanted, killed);
            let points: Vec<StatsPoint> = c
                .points
                .into_iter()
                .filter(|p| series.as_ref().is_none_or(|s| *s == p.name))
                .enumerate()
                .map(|(i, mut p)| {
                    p.index = i as u64;
                    p
                })
                .collect();
            let (covers_kill, note) = judge_window(&points, kill_t);
            let times = || points.iter().filter_map(|p| p.t_unix);
            CurveCheck {
                source: c.source,
                path: c.path,
                series: series.filter(|s| !s.is_empty()),
                series_note,
                rows: points.len() as u64,
                first_t_unix: times().reduce(f64::min),
                last_t_unix: times().reduce(f64::max),
                covers_kill,
                note,
                used: covers_kill != Some(false),
                points,
            }
        })
        .collect()
}

/// The curve the peak at death is read from: of those that may be used, the
/// one whose chosen series peaks highest (the first such, on a tie).
pub fn chosen(checks: &[CurveCheck]) -> Option<&CurveCheck> {
    checks
        .iter()
        .filter(|c| c.used && !c.points.is_empty())
        .fold(None, |best: Option<&CurveCheck>, c| {
            let peak = |c: &CurveCheck| c.peak().map_or(0, |p| p.usage_bytes);
            match best {
                Some(b) if peak(b) >= peak(c) => Some(b),
                _ => Some(c),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(name: &str, t: f64, bytes: u64) -> StatsPoint {
        StatsPoint {
            index: 0,
            t_unix: Some(t),
            name: name.into(),
            usage_bytes: bytes,
            limit_bytes: 0,
            mem_pct: None,
        }
    }

    fn curve(points: Vec<StatsPoint>) -> Curve {
        Curve {
            source: "Prometheus".into(),
            path: "q.json".into(),
            points,
        }
    }

    const KILL: f64 = 1_766_651_369.0;

    #[test]
    fn a_curve_that_ends_before_starts_after_or_covers_the_kill() {
        let series = |from: f64| {
            (0..10)
                .map(|i| point("app", from + 15.0 * i as f64, 100 + i))
                .collect()
        };
        // Ends nine months before the kill.
        let before = &check(
            vec![curve(series(KILL - 270.0 * 86_400.0))],
            None,
            None,
            Some(KILL),
        )[0];
        assert_eq!(before.covers_kill, Some(false));
        assert!(!before.used);
        let note = before.note.as_deref().unwrap();
        assert!(
            note.contains("ends before the kill") && note.contains("kill at"),
            "{note}"
        );
        // Starts after it.
        let after = &check(vec![curve(series(KILL + 600.0))], None, None, Some(KILL))[0];
        assert_eq!(after.covers_kill, Some(false));
        assert!(after
            .note
            .as_deref()
            .unwrap()
            .contains("starts after the kill"));
        // Covers it: the last sample 5 s before the kill.
        let covers = &check(vec![curve(series(KILL - 140.0))], None, None, Some(KILL))[0];
        assert_eq!(covers.covers_kill, Some(true));
        assert!(covers.used && covers.note.is_none());
        assert_eq!(chosen(std::slice::from_ref(covers)).unwrap().rows, 10);
        // No kill time: cannot be told, used, said.
        let unknown = &check(vec![curve(series(KILL))], None, None, None)[0];
        assert_eq!(unknown.covers_kill, None);
        assert!(unknown.used);
    }

    #[test]
    fn a_clock_shifted_by_whole_hours_is_said_to_be() {
        let shifted: Vec<StatsPoint> = (0..10)
            .map(|i| point("app", KILL - 8.0 * 3600.0 - 135.0 + 15.0 * i as f64, 1))
            .collect();
        let c = &check(vec![curve(shifted)], None, None, Some(KILL))[0];
        assert_eq!(c.covers_kill, Some(false));
        assert!(
            c.note.as_deref().unwrap().contains("shifted by +8 h"),
            "{:?}",
            c.note
        );
    }

    #[test]
    fn the_killed_container_is_chosen_and_the_pod_total_never_added() {
        let points = vec![
            point("", KILL - 15.0, 9_000),
            point("POD", KILL - 15.0, 1),
            point("sidecar", KILL - 15.0, 3_000),
            point("scheduler", KILL - 15.0, 5_000),
            point("", KILL, 9_500),
            point("sidecar", KILL, 3_100),
            point("scheduler", KILL, 5_500),
        ];
        let c = &check(vec![curve(points.clone())], None, None, Some(KILL))[0];
        assert_eq!(c.series.as_deref(), Some("scheduler"));
        assert_eq!(c.peak().unwrap().usage_bytes, 5_500);
        let note = c.series_note.as_deref().unwrap();
        assert!(
            note.contains("the pod total") && note.contains("of 4"),
            "{note}"
        );
        let c = &check(
            vec![curve(points.clone())],
            Some("sidecar"),
            None,
            Some(KILL),
        )[0];
        assert_eq!(c.series.as_deref(), Some("sidecar"));
        assert!(c.series_note.as_deref().unwrap().contains("--container"));
        let c = &check(vec![curve(points)], None, Some("sidecar"), Some(KILL))[0];
        assert_eq!(c.series.as_deref(), Some("sidecar"));
        assert_eq!(c.rows, 2);
    }

    #[test]
    fn the_peak_is_the_first_at_the_highest_usage() {
        let points = vec![point("a", 1.0, 5), point("a", 2.0, 7), point("a", 3.0, 7)];
        assert_eq!(first_max(&points).unwrap().t_unix, Some(2.0));
    }
}
