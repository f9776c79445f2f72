//! Which sites hold memory at each stage's peak of a traced run.
//!
//! A stage is the time between two marker lines, as `record` cuts it, each
//! marker timed when the traced process wrote it ([`super::capture`]). memray
//! stamps a memory snapshot every millisecond (the bundled launcher's
//! setting; later on a loaded machine) and records, per allocation
//! site, the bytes it held at the heap's high-water mark of each interval
//! between snapshots. A stage's peak is its interval with the highest mark;
//! the sites at that mark are what the stage's peak is made of. Bytes
//! allocated before the first marker (the interpreter, imports, argument
//! parsing) are the process's baseline, which the kernel's figure of the
//! stage before the first marker also holds: they are counted apart, so the
//! sites add up to the stage's peak *above* that baseline.

use serde::{Deserialize, Serialize};

use super::capture::{Capture, Traced};
use crate::runner::FIRST_STAGE;

/// A line of the user's code that allocates.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Site {
    /// The source file, as the interpreter saw it.
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// The function the line is in.
    pub function: String,
    /// The line's text, stripped (empty when the file could not be read).
    pub code: String,
}

impl Site {
    /// `prep.py:57`.
    pub fn location(&self) -> String {
        let name = std::path::Path::new(&self.file)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.file.clone());
        format!("{name}:{}", self.line)
    }

    /// What identifies the same line in another copy of the code (a patched
    /// file, a base worktree, lines shifted by an insertion): its function
    /// and text; a line whose text is unknown falls back on its place.
    pub fn key(&self) -> String {
        if self.code.is_empty() {
            format!("{}:{}:{}", self.file, self.line, self.function)
        } else {
            format!("{}\u{1f}{}", self.function, self.code)
        }
    }
}

/// A site's bytes at a stage's peak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteBytes {
    pub site: Site,
    pub bytes: u64,
}

/// One stage of a traced run, at its peak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageLines {
    /// The stage's name, from its marker line.
    pub stage: String,
    /// memray's heap high-water mark at the stage's peak, bytes.
    pub heap_peak_bytes: u64,
    /// Of that, bytes allocated before the first stage and still held.
    pub baseline_bytes: u64,
    /// Bytes allocated since the first stage with no frame in the user's
    /// code (threads started by libraries), still held; also listed in
    /// `sites` as one [`threads_site`] per stage they were allocated in.
    pub outside_bytes: u64,
    /// Resident memory no live allocation holds: how much the traced run's
    /// RSS rose above the process baseline to the stage's RSS high, less how
    /// much memray's heap rose to the stage's peak (both as memray sampled
    /// them): freed memory the C allocator keeps, pages of shared libraries
    /// touched for the first time. Also listed in `sites` as
    /// [`unheld_site`] when not zero, so the sites add up to the traced
    /// run's RSS rise, which the kernel's figure from the untraced run checks.
    #[serde(default)]
    pub unheld_bytes: u64,
    /// Sites holding memory allocated since the first stage, largest first.
    pub sites: Vec<SiteBytes>,
}

impl StageLines {
    /// The sites' bytes together (with the library threads' and what no
    /// allocation holds: what the kernel's peak above the baseline is made of).
    pub fn sites_bytes(&self) -> u64 {
        self.sites.iter().map(|s| s.bytes).sum()
    }
}

/// The stage windows of a traced run: `(name, start ms, end ms)`, the first
/// (before any marker) named as `record` names it.
fn windows(traced: &Traced) -> Vec<(String, u64, u64)> {
    let mut starts = vec![(FIRST_STAGE.to_string(), traced.started_ms)];
    starts.extend(traced.markers.iter().cloned());
    let mut out = Vec::new();
    for (i, (name, at)) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map_or(u64::MAX, |(_, t)| *t);
        out.push((name.clone(), *at, end));
    }
    out
}

/// The pseudo-site of bytes allocated with no Python frame at all while
/// `stage` ran: a library's own threads (pyarrow reads and converts Parquet
/// in its thread pool), whose memory the user's line asked for.
pub fn threads_site(stage: &str) -> Site {
    Site {
        file: String::new(),
        line: 0,
        function: THREADS.to_string(),
        code: format!("{THREADS} during {stage}"),
    }
}

/// The function name of [`threads_site`]s.
pub const THREADS: &str = "(library threads, no Python frame)";

/// The pseudo-site of resident memory no live allocation holds: what the
/// kernel counts in a stage's peak and memray's heap does not, measured by
/// memray's own snapshots (RSS less heap) so the sites add up to the
/// kernel's figure and the report says what the rest is.
pub fn unheld_site() -> Site {
    Site {
        file: String::new(),
        line: 0,
        function: UNHELD.to_string(),
        code: "(resident, no allocation: malloc-kept frees, library pages)".to_string(),
    }
}

/// The function name of the [`unheld_site`].
pub const UNHELD: &str = "(resident, held by no allocation)";

/// The `(rss, heap)` memray sampled at snapshot `k`.
fn sampled(capture: &Capture, k: usize) -> (u64, u64) {
    capture
        .snapshots
        .get(k)
        .map_or((0, 0), |&(_, rss, heap)| (rss, heap))
}

/// Bytes of every site at snapshot `k`'s high-water mark, split into those
/// allocated before snapshot `first` (the baseline) and after; bytes with no
/// frame in the user's code go to the stage they were allocated in
/// (`stage_of` a snapshot index).
fn at_snapshot(
    capture: &Capture,
    k: u64,
    first: u64,
    stage_of: &dyn Fn(u64) -> String,
) -> StageLines {
    let mut stage = StageLines {
        stage: String::new(),
        heap_peak_bytes: capture.hwm.get(k as usize).copied().unwrap_or(0),
        baseline_bytes: 0,
        outside_bytes: 0,
        unheld_bytes: 0,
        sites: Vec::new(),
    };
    let mut threads: Vec<SiteBytes> = Vec::new();
    for site in &capture.sites {
        let mut mine = 0u64;
        for &(allocated, freed, bytes) in &site.intervals {
            if allocated <= k && freed.is_none_or(|f| k < f) {
                if allocated < first {
                    stage.baseline_bytes += bytes;
                } else if site.user {
                    mine += bytes;
                } else {
                    let pseudo = threads_site(&stage_of(allocated));
                    match threads.iter_mut().find(|t| t.site == pseudo) {
                        Some(t) => t.bytes += bytes,
                        None => threads.push(SiteBytes {
                            site: pseudo,
                            bytes,
                        }),
                    }
                }
            }
        }
        if mine == 0 {
            continue;
        }
        if site.user {
            stage.sites.push(SiteBytes {
                site: Site {
                    file: site.file.clone(),
                    line: site.line,
                    function: site.function.clone(),
                    code: site.code.clone(),
                },
                bytes: mine,
            });
        } else {
            stage.outside_bytes += mine;
        }
    }
    stage.outside_bytes = threads.iter().map(|t| t.bytes).sum();
    stage.sites.extend(threads);
    stage
        .sites
        .sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.site.cmp(&b.site)));
    stage
}

/// Each stage of a traced run at its peak, in the order stages started; a
/// stage logged twice keeps its higher peak, a stage shorter than one
/// snapshot interval takes the mark of the interval it falls in (a stage
/// missing at some sizes would fit its lines on the others only).
pub fn attribute(traced: &Traced) -> Vec<StageLines> {
    let capture = &traced.capture;
    let times: Vec<u64> = capture.snapshots.iter().map(|s| s.0).collect();
    // The interval holding the first marker counts as the pipeline's, and
    // so does the one before it: memray reads the clock for a snapshot, then
    // writes it, and an allocation made in between (after the marker, when
    // that thread is descheduled on a loaded machine) lands before a
    // snapshot whose time is before the marker. Only one snapshot can
    // straddle the marker so (the next one's clock is read after this one is
    // written), so one interval earlier is enough; what it costs is the
    // baseline's last millisecond or so counted as the first stage's.
    let first = traced
        .markers
        .first()
        .map(|(_, at)| {
            times
                .iter()
                .position(|t| *t >= *at)
                .unwrap_or(times.len())
                .saturating_sub(1) as u64
        })
        .unwrap_or(0);
    let windows = windows(traced);
    // The stage a snapshot interval's allocations belong to: the one it
    // begins in, as for the peaks.
    let stage_of = |k: u64| -> String {
        let t = times
            .get((k as usize).saturating_sub(1))
            .copied()
            .unwrap_or(u64::MAX);
        windows
            .iter()
            .rev()
            .find(|(_, start, _)| *start <= t)
            .or(windows.first())
            .map(|w| w.0.clone())
            .unwrap_or_default()
    };
    // The intervals that begin in a stage (a snapshot a millisecond,
    // src/lines/launch.py): the one the stage's marker falls in holds the
    // end of the stage before, whose peak is not this stage's.
    let inside = |start: u64, end: u64| {
        let times = &times;
        (0..times.len()).filter(move |&k| {
            let begun = times[k.saturating_sub(1)];
            begun >= start && begun < end
        })
    };
    // The process baseline as the kernel's is: the RSS high point before
    // the first marker, and the heap there.
    let (rss_base, heap_base) = windows
        .first()
        .and_then(|w| inside(w.1, w.2).max_by_key(|&k| (capture.snapshots[k].1, k)))
        .map_or((0, 0), |k| sampled(capture, k));
    // A stage shorter than a snapshot interval (a few milliseconds, or more
    // when a loaded machine delays memray's thread) has no interval of its
    // own: the one it falls in holds it, and that interval's mark is its peak.
    let within = |start: u64, end: u64| -> Vec<usize> {
        let own: Vec<usize> = inside(start, end).collect();
        if !own.is_empty() {
            return own;
        }
        times
            .iter()
            .position(|t| *t >= start)
            .filter(|&k| k > 0)
            .into_iter()
            .collect()
    };
    let mut out: Vec<StageLines> = Vec::new();
    for (name, start, end) in &windows {
        let ks = within(*start, *end);
        let peak = ks
            .iter()
            .map(|&k| (capture.hwm[k], k))
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let Some((_, k)) = peak else { continue };
        let mut stage = at_snapshot(capture, k as u64, first, &stage_of);
        // The kernel's stage peak is the RSS high point. It can trail the
        // heap's peak (pages are touched after malloc returns) and outlast it
        // (freed pages malloc keeps): what the RSS rose by beyond what the
        // heap rose by, each to its own high, is what no allocation holds.
        let rss_high = ks
            .iter()
            .map(|&j| (capture.snapshots[j].1, j))
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
            .map_or(k, |(_, j)| j);
        let rss_rise = sampled(capture, rss_high).0.saturating_sub(rss_base);
        let heap_rise = capture.hwm[k].saturating_sub(heap_base);
        stage.unheld_bytes = rss_rise.saturating_sub(heap_rise);
        if stage.unheld_bytes > 0 {
            stage.sites.push(SiteBytes {
                site: unheld_site(),
                bytes: stage.unheld_bytes,
            });
            stage
                .sites
                .sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.site.cmp(&b.site)));
        }
        let name = name.clone();
        stage.stage = name.clone();
        match out.iter_mut().find(|s| s.stage == name) {
            Some(seen) if seen.heap_peak_bytes < stage.heap_peak_bytes => *seen = stage,
            Some(_) => {}
            None => out.push(stage),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lines::capture::CaptureSite;

    fn site(line: u64, user: bool, intervals: Vec<(u64, Option<u64>, u64)>) -> CaptureSite {
        CaptureSite {
            file: "/w/prep.py".into(),
            line,
            function: "main".into(),
            user,
            code: format!("x{line} = f()"),
            intervals,
        }
    }

    /// Snapshots at 0, 10, ... 90 ms; markers `a` at 25 ms and `b` at 55 ms.
    fn traced() -> Traced {
        Traced {
            capture: Capture {
                memray: "1".into(),
                python: "3".into(),
                peak_memory: 0,
                // RSS 3 bytes above the heap, but 13 at the stage `a`'s RSS high.
                snapshots: [5, 5, 5, 105, 105, 105, 85, 85, 65, 65]
                    .iter()
                    .enumerate()
                    .map(|(i, &heap)| {
                        let rss = heap + if i == 4 { 13 } else { 3 };
                        (1000 + i as u64 * 10, rss, heap)
                    })
                    .collect(),
                hwm: vec![5, 5, 5, 105, 105, 105, 85, 85, 65, 65],
                sites: vec![
                    site(1, true, vec![(0, None, 5)]),
                    site(3, true, vec![(3, Some(6), 100)]),
                    site(7, true, vec![(6, None, 50)]),
                    site(8, true, vec![(6, Some(8), 20)]),
                    site(0, false, vec![(7, None, 10)]),
                ],
            },
            markers: vec![("a".into(), 1025), ("b".into(), 1055)],
            markers_stamped: 2,
            started_ms: 995,
            wall_s: 0.1,
            capture_path: "x".into(),
        }
    }

    #[test]
    fn each_stage_is_cut_at_its_peak_and_the_baseline_is_apart() {
        let stages = attribute(&traced());
        let names: Vec<&str> = stages.iter().map(|s| s.stage.as_str()).collect();
        assert_eq!(names, ["start", "a", "b"]);
        let a = &stages[1];
        assert_eq!(a.heap_peak_bytes, 105);
        assert_eq!(a.baseline_bytes, 5);
        assert_eq!((a.sites[0].site.line, a.sites[0].bytes), (3, 100));
        // What no allocation holds at its RSS high, above the baseline's.
        assert_eq!(a.unheld_bytes, 10);
        assert_eq!(a.sites[1].site, unheld_site());
        assert_eq!(a.sites.len(), 2);
        let b = &stages[2];
        assert_eq!(b.heap_peak_bytes, 85);
        assert_eq!(b.outside_bytes, 10);
        let lines: Vec<(u64, u64)> = b.sites.iter().map(|s| (s.site.line, s.bytes)).collect();
        assert_eq!(lines, [(7, 50), (8, 20), (0, 10)]);
        assert_eq!(b.sites[2].site, threads_site("b"));
        assert_eq!(b.sites_bytes() + b.baseline_bytes, 85);
    }

    #[test]
    fn a_stage_shorter_than_a_snapshot_interval_takes_the_interval_it_falls_in() {
        let mut t = traced();
        // `c` starts at 1062 and `d` at 1064: no snapshot between them.
        t.markers.push(("c".into(), 1062));
        t.markers.push(("d".into(), 1064));
        let stages = attribute(&t);
        let c = stages.iter().find(|s| s.stage == "c").expect("stage c");
        assert_eq!(c.heap_peak_bytes, 85);
    }

    #[test]
    fn a_site_is_the_same_line_by_function_and_text_wherever_it_moved() {
        let a = Site {
            file: "/a/prep.py".into(),
            line: 10,
            function: "main".into(),
            code: "w = s.copy()".into(),
        };
        let b = Site {
            file: "/b/with_copy.py".into(),
            line: 12,
            ..a.clone()
        };
        assert_eq!(a.key(), b.key());
        assert_eq!(b.location(), "with_copy.py:12");
    }
}
