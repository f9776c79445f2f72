//! The stages of one run as its child announces them.
//!
//! A replay child brackets each stage itself (`stage_start`/`stage_end`
//! protocol events carrying its own exact peak); a recorded command only
//! prints lines, and a matching line ends the open stage and starts the next
//! one, with the peaks the parent read from the process tree at that moment.
//! Both feed one [`StageBook`], which keeps the open stage, the finished
//! stages and the log lines, and at the end closes whatever stage was still
//! open and says whether the child died in it.

use serde_json::json;

use super::classify::Ending;
use super::{Marker, FIRST_STAGE};
use crate::journal::Journal;
use crate::probe::Detail;
use crate::progress::Progress;
use crate::protocol::Event;
use crate::report::{LogLine, OutputSummary, StageRecord};
use crate::sampler::{PeakSource, StagePeaks, Timeline};

/// Name a recorded command's only stage gets when no marker ever came.
const NO_MARKER_STAGE: &str = "run";

/// A stage that has started and not yet ended.
#[derive(Debug, Clone, PartialEq)]
struct OpenStage {
    name: String,
    start_s: f64,
    rss_start: u64,
}

/// Keeps a run's stages and log lines while its child runs, so the receive
/// loop only routes messages and the rules for opening and closing stages
/// (and for naming the stage a child died in) live, and are tested, in one
/// place.
#[derive(Debug)]
pub struct StageBook {
    origin_ns: u64,
    /// A recorded command (stages from output markers) rather than a replay
    /// child (stages from protocol events).
    recorded: bool,
    open: Option<OpenStage>,
    stages: Vec<StageRecord>,
    logs: Vec<LogLine>,
    output: Option<OutputSummary>,
    markers: u64,
}

/// What a closed book hands to the run's record.
#[derive(Debug)]
pub struct ClosedBook {
    /// Every stage, the last one closed at the end of the run.
    pub stages: Vec<StageRecord>,
    /// The child's log lines (and, for a recorded command, its marker lines).
    pub logs: Vec<LogLine>,
    /// The prepared output a replay child reported.
    pub output: Option<OutputSummary>,
    /// How many marker lines a recorded command printed.
    pub markers: u64,
    /// The stage the child died (or was stopped) in, if it did not finish.
    pub died_in: Option<String>,
}

impl StageBook {
    /// A book for a replay child: no stage is open until it says so.
    pub fn protocol(origin_ns: u64) -> Self {
        Self {
            origin_ns,
            recorded: false,
            open: None,
            stages: Vec::new(),
            logs: Vec::new(),
            output: None,
            markers: 0,
        }
    }

    /// A book for a recorded command: its first stage ([`FIRST_STAGE`]) runs
    /// from spawn to its first marker.
    pub fn recorded(origin_ns: u64, progress: &mut Progress) -> Self {
        progress.stage_start(FIRST_STAGE, 0.0);
        Self {
            recorded: true,
            open: Some(OpenStage {
                name: FIRST_STAGE.to_string(),
                start_s: 0.0,
                rss_start: 0,
            }),
            ..Self::protocol(origin_ns)
        }
    }

    /// Seconds since spawn of a `CLOCK_MONOTONIC` time.
    pub fn secs(&self, t_ns: u64) -> f64 {
        t_ns.saturating_sub(self.origin_ns) as f64 / 1e9
    }

    /// Takes one protocol event of a replay child.
    pub fn on_event(&mut self, event: Event, progress: &mut Progress, journal: Option<&Journal>) {
        match event {
            Event::StageStart {
                stage,
                t_ns,
                rss_bytes,
            } => {
                let t = self.secs(t_ns);
                if let Some(j) = journal {
                    j.event("stage_start", t, json!({ "stage": stage }));
                }
                progress.stage_start(&stage, t);
                self.open = Some(OpenStage {
                    name: stage,
                    start_s: t,
                    rss_start: rss_bytes,
                });
            }
            Event::StageEnd {
                stage,
                t_ns,
                peak_bytes,
                rss_bytes,
                detail,
            } => {
                let t = self.secs(t_ns);
                if let Some(j) = journal {
                    j.event(
                        "stage_end",
                        t,
                        json!({ "stage": stage, "peak_bytes": peak_bytes }),
                    );
                }
                // An end without its start (a lost line) is a stage of no length.
                let (start_s, rss_start) = match self.open.take() {
                    Some(o) if o.name == stage => (o.start_s, o.rss_start),
                    _ => (t, rss_bytes),
                };
                progress.stage_end(&stage, t - start_s, peak_bytes);
                self.stages.push(stage_record(
                    stage,
                    start_s,
                    t,
                    Some((peak_bytes, PeakSource::Vmhwm)),
                    rss_start,
                    rss_bytes,
                    detail,
                ));
            }
            Event::Log {
                t_ns,
                level,
                message,
            } => {
                let t = self.secs(t_ns);
                if let Some(j) = journal {
                    j.event("log", t, json!({ "level": level, "message": message }));
                }
                progress.log(&level, &message);
                self.logs.push(LogLine {
                    t_s: t,
                    level,
                    message,
                });
            }
            Event::Output(summary) => self.output = Some(summary),
        }
    }

    /// Takes a marker line of a recorded command, seen at `t_ns`: ends the
    /// open stage with the tree's peaks that `boundary` reads at that moment
    /// (called once, with seconds since spawn) and opens the marker's stage.
    pub fn on_marker(
        &mut self,
        t_ns: u64,
        marker: Marker,
        boundary: impl FnOnce(f64) -> StagePeaks,
        progress: &mut Progress,
        journal: Option<&Journal>,
    ) {
        self.markers += 1;
        let t = self.secs(t_ns);
        if let Some(j) = journal {
            j.event(
                "stage_start",
                t,
                json!({ "stage": marker.stage, "message": marker.message }),
            );
        }
        let peaks = boundary(t);
        if let Some(o) = self.open.take() {
            progress.stage_end(&o.name, t - o.start_s, peaks.total_bytes);
            self.stages.push(stage_record(
                o.name,
                o.start_s,
                t,
                Some((peaks.total_bytes, peaks.source)),
                o.rss_start,
                peaks.rss_bytes,
                tree_detail(&peaks),
            ));
        }
        progress.stage_start(&marker.stage, t);
        self.open = Some(OpenStage {
            name: marker.stage,
            start_s: t,
            rss_start: peaks.rss_bytes,
        });
        self.logs.push(LogLine {
            t_s: t,
            level: marker.level,
            message: marker.message,
        });
    }

    /// Ends the book when the child is gone, at `end_s`.
    ///
    /// A stage still open then is, for a replay child, the one it died in;
    /// a recorded command's last stage ends when it exits (with the tree's
    /// `final_peaks`), and is where it died when it was killed or failed.
    /// Every stage gets its sampled peak from `timeline`.
    pub fn close(
        self,
        end_s: f64,
        final_peaks: Option<&StagePeaks>,
        ending: &Ending,
        timeline: &Timeline,
        progress: &mut Progress,
    ) -> ClosedBook {
        let Self {
            recorded,
            open,
            mut stages,
            logs,
            output,
            markers,
            ..
        } = self;
        let ended_early = ending.ended_early();
        let mut died_in = None;
        if let Some(mut o) = open {
            if recorded && markers == 0 {
                o.name = NO_MARKER_STAGE.into();
            }
            let (exact, detail) = match (final_peaks, ended_early) {
                (Some(p), false) => (Some((p.total_bytes, p.source)), tree_detail(p)),
                _ => (None, Detail::new()),
            };
            if !recorded || ending.ended_badly() || ended_early {
                died_in = Some(o.name.clone());
            }
            if let Some((peak, _)) = exact {
                progress.stage_end(&o.name, end_s - o.start_s, peak);
            }
            let rss_end = if recorded || ended_early {
                last_rss(timeline)
            } else {
                timeline.rss_bytes.last().copied().unwrap_or(o.rss_start)
            };
            stages.push(stage_record(
                o.name,
                o.start_s,
                end_s,
                exact,
                o.rss_start,
                rss_end,
                detail,
            ));
        }
        for stage in &mut stages {
            stage.sampled_peak_bytes = timeline.peak_between(stage.start_s, stage.end_s);
        }
        ClosedBook {
            stages,
            logs,
            output,
            markers,
            died_in,
        }
    }
}

/// The last non-zero sampled RSS (0 if none): what a killed or stopped run
/// held when it ended, since the samples after a kill read an empty tree.
pub fn last_rss(timeline: &Timeline) -> u64 {
    timeline
        .rss_bytes
        .iter()
        .rev()
        .copied()
        .find(|r| *r > 0)
        .unwrap_or(0)
}

/// A stage's record; `exact` is its kernel peak and what that figure is.
fn stage_record(
    name: String,
    start_s: f64,
    end_s: f64,
    exact: Option<(u64, PeakSource)>,
    rss_start_bytes: u64,
    rss_end_bytes: u64,
    detail: Detail,
) -> StageRecord {
    StageRecord {
        name,
        start_s,
        end_s,
        exact_peak_bytes: exact.map(|e| e.0),
        peak_source: exact.map(|e| e.1),
        rss_start_bytes,
        rss_end_bytes,
        sampled_peak_bytes: None,
        detail,
    }
}

/// Per-process figures of a tree stage, kept in the stage's details.
fn tree_detail(peaks: &StagePeaks) -> Detail {
    let mut detail = Detail::new();
    let per: serde_json::Map<String, serde_json::Value> = peaks
        .per_process
        .iter()
        .map(|(pid, _, bytes)| (pid.to_string(), json!(bytes)))
        .collect();
    detail.insert("process_peaks".into(), serde_json::Value::Object(per));
    detail.insert("processes".into(), json!(peaks.per_process.len()));
    if peaks.sum_bytes != peaks.total_bytes {
        // Processes that never ran at the same time: their plain sum, for comparison.
        detail.insert("sum_of_process_peaks".into(), json!(peaks.sum_bytes));
    }
    if let Some(c) = peaks.cgroup_bytes {
        // The cgroup's mark over the stage, also when one process made the
        // figure (it counts page cache and kernel memory, VmHWM does not).
        detail.insert("cgroup_peak_bytes".into(), json!(c));
    }
    if let Some(pss) = peaks.pss_bytes {
        // Beside an upper bound: the sampled sum of PSS, shared pages once.
        detail.insert("pss_peak_bytes".into(), json!(pss));
    }
    if !peaks.reset_ok {
        detail.insert("peak_reset_failed".into(), json!(true));
    }
    if peaks.late {
        // The command had ended before this stage's boundary was read: the
        // figure is the last one read, which spans this stage and earlier ones.
        detail.insert("peak_spans_earlier_stages".into(), json!(true));
    }
    detail
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    use super::*;

    const ORIGIN: u64 = 1_000_000_000;

    /// `t` seconds after spawn, in monotonic nanoseconds.
    fn ns(t: f64) -> u64 {
        ORIGIN + (t * 1e9) as u64
    }

    fn ending(raw_status: i32, kill_note: Option<(f64, u64)>) -> Ending {
        Ending {
            status: ExitStatus::from_raw(raw_status),
            kill_note,
            cgroup_kills: 0,
            interrupted: None,
        }
    }

    fn clean() -> Ending {
        ending(0, None)
    }

    fn timeline(samples: &[(f64, u64)]) -> Timeline {
        Timeline {
            interval_ms: 10.0,
            t_s: samples.iter().map(|s| s.0).collect(),
            rss_bytes: samples.iter().map(|s| s.1).collect(),
            several: None,
        }
    }

    fn peaks(total: u64, rss: u64) -> StagePeaks {
        StagePeaks {
            total_bytes: total,
            sum_bytes: total,
            rss_bytes: rss,
            per_process: vec![(42, "tool".into(), total)],
            reset_ok: true,
            ..StagePeaks::default()
        }
    }

    fn marker(stage: &str) -> Marker {
        Marker {
            stage: stage.into(),
            level: "INFO".into(),
            message: format!("{stage} begins"),
        }
    }

    fn start(stage: &str, t: f64, rss: u64) -> Event {
        Event::StageStart {
            stage: stage.into(),
            t_ns: ns(t),
            rss_bytes: rss,
        }
    }

    fn end(stage: &str, t: f64, peak: u64, rss: u64) -> Event {
        Event::StageEnd {
            stage: stage.into(),
            t_ns: ns(t),
            peak_bytes: peak,
            rss_bytes: rss,
            detail: Detail::new(),
        }
    }

    #[test]
    fn protocol_stages_are_bracketed_by_the_child() {
        let mut p = Progress::new(true);
        let mut book = StageBook::protocol(ORIGIN);
        book.on_event(start("load", 0.5, 10), &mut p, None);
        book.on_event(end("load", 1.5, 300, 200), &mut p, None);
        book.on_event(
            Event::Log {
                t_ns: ns(1.6),
                level: "INFO".into(),
                message: "loaded".into(),
            },
            &mut p,
            None,
        );
        let tl = timeline(&[(0.4, 5), (1.0, 250), (2.0, 100)]);
        let closed = book.close(2.0, None, &clean(), &tl, &mut p);
        assert_eq!(closed.died_in, None);
        assert_eq!(closed.stages.len(), 1);
        let s = &closed.stages[0];
        assert_eq!((s.name.as_str(), s.start_s, s.end_s), ("load", 0.5, 1.5));
        assert_eq!(s.exact_peak_bytes, Some(300));
        assert_eq!((s.rss_start_bytes, s.rss_end_bytes), (10, 200));
        assert_eq!(s.sampled_peak_bytes, Some(250));
        assert_eq!(closed.logs.len(), 1);
        assert_eq!(closed.logs[0].t_s, 1.6);
        assert_eq!(closed.markers, 0);
    }

    #[test]
    fn an_end_without_its_start_is_a_stage_of_no_length() {
        let mut p = Progress::new(true);
        let mut book = StageBook::protocol(ORIGIN);
        book.on_event(start("load", 0.5, 10), &mut p, None);
        book.on_event(end("join", 1.0, 300, 200), &mut p, None);
        let closed = book.close(2.0, None, &clean(), &timeline(&[]), &mut p);
        let s = &closed.stages[0];
        assert_eq!((s.name.as_str(), s.start_s, s.end_s), ("join", 1.0, 1.0));
        assert_eq!((s.rss_start_bytes, s.rss_end_bytes), (200, 200));
        // The start that was replaced is gone, not left open.
        assert_eq!(closed.stages.len(), 1);
        assert_eq!(closed.died_in, None);
    }

    #[test]
    fn a_replay_child_that_ends_inside_a_stage_died_in_it() {
        let mut p = Progress::new(true);
        let mut book = StageBook::protocol(ORIGIN);
        book.on_event(start("copy", 0.5, 10), &mut p, None);
        let tl = timeline(&[(0.6, 50), (0.9, 0)]);
        // Even with exit code 0: a replay child must close its stages.
        let closed = book.close(1.0, None, &clean(), &tl, &mut p);
        assert_eq!(closed.died_in.as_deref(), Some("copy"));
        let s = &closed.stages[0];
        assert_eq!(s.exact_peak_bytes, None);
        // Not killed: the very last sample, even an empty one.
        assert_eq!(s.rss_end_bytes, 0);
        assert_eq!(s.end_s, 1.0);
    }

    #[test]
    fn a_killed_replay_child_ends_its_stage_at_its_last_live_sample() {
        let mut p = Progress::new(true);
        let mut book = StageBook::protocol(ORIGIN);
        book.on_event(start("grow", 0.5, 10), &mut p, None);
        let tl = timeline(&[(0.6, 50), (0.7, 900), (0.8, 0)]);
        let killed = ending(libc::SIGKILL, Some((0.7, 900)));
        let closed = book.close(1.0, None, &killed, &tl, &mut p);
        assert_eq!(closed.died_in.as_deref(), Some("grow"));
        assert_eq!(closed.stages[0].rss_end_bytes, 900);
    }

    #[test]
    fn a_replay_child_with_no_samples_ends_its_stage_at_its_start_rss() {
        let mut p = Progress::new(true);
        let mut book = StageBook::protocol(ORIGIN);
        book.on_event(start("copy", 0.5, 77), &mut p, None);
        let closed = book.close(1.0, None, &ending(3 << 8, None), &timeline(&[]), &mut p);
        assert_eq!(closed.stages[0].rss_end_bytes, 77);
        assert_eq!(closed.stages[0].sampled_peak_bytes, None);
    }

    #[test]
    fn a_recorded_command_without_markers_is_one_run_stage() {
        let mut p = Progress::new(true);
        let book = StageBook::recorded(ORIGIN, &mut p);
        let tl = timeline(&[(0.1, 100), (0.2, 0)]);
        let fin = peaks(500, 0);
        let closed = book.close(0.3, Some(&fin), &clean(), &tl, &mut p);
        assert_eq!(closed.died_in, None);
        let s = &closed.stages[0];
        assert_eq!((s.name.as_str(), s.start_s, s.end_s), ("run", 0.0, 0.3));
        assert_eq!(s.exact_peak_bytes, Some(500));
        assert_eq!(s.rss_end_bytes, 100);
        assert_eq!(s.detail["processes"], json!(1));
    }

    #[test]
    fn markers_end_the_open_stage_with_the_tree_peaks() {
        let mut p = Progress::new(true);
        let mut book = StageBook::recorded(ORIGIN, &mut p);
        let mut asked = Vec::new();
        book.on_marker(
            ns(1.0),
            marker("load"),
            |t| {
                asked.push(t);
                peaks(300, 120)
            },
            &mut p,
            None,
        );
        book.on_marker(ns(2.0), marker("train"), |_| peaks(800, 400), &mut p, None);
        assert_eq!(asked, vec![1.0]);
        let tl = timeline(&[(0.5, 100), (1.5, 700), (2.5, 650)]);
        let closed = book.close(3.0, Some(&peaks(900, 0)), &clean(), &tl, &mut p);
        assert_eq!(closed.markers, 2);
        assert_eq!(closed.died_in, None);
        let names: Vec<_> = closed.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec![FIRST_STAGE, "load", "train"]);
        let [first, load, train] = &closed.stages[..] else {
            panic!("three stages")
        };
        assert_eq!((first.start_s, first.end_s), (0.0, 1.0));
        assert_eq!(first.exact_peak_bytes, Some(300));
        assert_eq!((first.rss_start_bytes, first.rss_end_bytes), (0, 120));
        assert_eq!(
            (load.exact_peak_bytes, load.rss_start_bytes),
            (Some(800), 120)
        );
        assert_eq!(load.rss_end_bytes, 400);
        assert_eq!(load.sampled_peak_bytes, Some(700));
        assert_eq!((train.start_s, train.end_s), (2.0, 3.0));
        assert_eq!(train.exact_peak_bytes, Some(900));
        assert_eq!(train.rss_start_bytes, 400);
        let logs: Vec<_> = closed.logs.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(logs, vec!["load begins", "train begins"]);
    }

    #[test]
    fn a_failed_recorded_command_died_in_its_last_stage() {
        let mut p = Progress::new(true);
        let mut book = StageBook::recorded(ORIGIN, &mut p);
        book.on_marker(ns(1.0), marker("load"), |_| peaks(300, 120), &mut p, None);
        let tl = timeline(&[(1.5, 700)]);
        let closed = book.close(
            2.0,
            Some(&peaks(900, 0)),
            &ending(1 << 8, None),
            &tl,
            &mut p,
        );
        assert_eq!(closed.died_in.as_deref(), Some("load"));
        // It ran to its own end: the kernel's figure holds.
        assert_eq!(closed.stages[1].exact_peak_bytes, Some(900));
    }

    #[test]
    fn a_killed_recorded_command_has_no_exact_last_peak() {
        let mut p = Progress::new(true);
        let book = StageBook::recorded(ORIGIN, &mut p);
        let tl = timeline(&[(0.5, 700), (0.6, 0)]);
        let killed = ending(libc::SIGKILL, Some((0.5, 700)));
        let closed = book.close(1.0, Some(&peaks(900, 0)), &killed, &tl, &mut p);
        assert_eq!(closed.died_in.as_deref(), Some("run"));
        let s = &closed.stages[0];
        assert_eq!(s.exact_peak_bytes, None);
        assert!(s.detail.is_empty());
        assert_eq!(s.rss_end_bytes, 700);
    }

    #[test]
    fn an_interrupted_recorded_command_was_stopped_in_its_open_stage() {
        let mut p = Progress::new(true);
        let mut book = StageBook::recorded(ORIGIN, &mut p);
        book.on_marker(ns(1.0), marker("load"), |_| peaks(300, 120), &mut p, None);
        let stopped = Ending {
            interrupted: Some((libc::SIGINT, 1.5)),
            ..ending(libc::SIGKILL, None)
        };
        let closed = book.close(2.0, Some(&peaks(900, 0)), &stopped, &timeline(&[]), &mut p);
        assert_eq!(closed.died_in.as_deref(), Some("load"));
        assert_eq!(closed.stages[1].exact_peak_bytes, None);
    }

    #[test]
    fn tree_details_flag_what_is_not_plain() {
        let mut p = peaks(300, 0);
        assert!(!tree_detail(&p).contains_key("sum_of_process_peaks"));
        p.sum_bytes = 500;
        p.reset_ok = false;
        p.late = true;
        let d = tree_detail(&p);
        assert_eq!(d["sum_of_process_peaks"], json!(500));
        assert_eq!(d["peak_reset_failed"], json!(true));
        assert_eq!(d["peak_spans_earlier_stages"], json!(true));
        assert_eq!(d["process_peaks"], json!({ "42": 300 }));
    }
}
