//! How a run ended, decided from what the runner saw once the child was reaped.
//!
//! The same exit can mean different things: a SIGKILL is the cgroup's OOM
//! killer, the watchdog, oomlab stopping the child on Ctrl-C, or someone
//! else; a clean exit code can hide a cgroup kill of a descendant. The rules
//! are pure functions of the facts, kept apart from the process plumbing so
//! each distinction is tested on its own.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use crate::report::RunStatus;

/// Who killed a child, as the report's `by` says it: the cgroup's OOM killer,
const BY_CGROUP: &str = "cgroup";
/// the parent's RSS watchdog (see `limit`),
const BY_WATCHDOG: &str = "watchdog";
/// or a SIGKILL that neither oomlab nor its limit sent.
const BY_UNKNOWN: &str = "unknown";

/// The facts about a run's end that decide its status, gathered in one
/// place so that the classification and the closing of the last stage read
/// the same ones.
#[derive(Debug, Clone, Copy)]
pub struct Ending {
    /// The root process's wait status.
    pub status: ExitStatus,
    /// Where the limit's enforcement killed the tree, if it did:
    /// `(seconds since spawn, sampled RSS of the tree)`.
    pub kill_note: Option<(f64, u64)>,
    /// OOM kills the child's cgroup counted (0 without a cgroup).
    pub cgroup_kills: u64,
    /// `(signal, seconds since spawn)` once oomlab was interrupted and
    /// stopped the child.
    pub interrupted: Option<(i32, f64)>,
}

impl Ending {
    /// What killed the child, if a kill ended it: the cgroup's OOM killer
    /// (even when the root's exit looks clean: it may have killed a
    /// descendant), the watchdog, or a SIGKILL from someone else. oomlab's
    /// own stop on an interrupt is not a kill.
    pub fn killed_by(&self) -> Option<&'static str> {
        if self.cgroup_kills > 0 {
            Some(BY_CGROUP)
        } else if self.kill_note.is_some() {
            Some(BY_WATCHDOG)
        } else if self.interrupted.is_some() {
            None
        } else if self.status.signal() == Some(libc::SIGKILL) {
            Some(BY_UNKNOWN)
        } else {
            None
        }
    }

    /// `(signal, seconds since spawn)` when oomlab stopped the child on
    /// Ctrl-C/SIGTERM (unless a limit killed it first).
    pub fn stopped(&self) -> Option<(i32, f64)> {
        self.interrupted.filter(|_| self.killed_by().is_none())
    }

    /// The child did not run to its own end: killed or stopped, so figures
    /// read after the end (kernel peaks) do not describe its last stage.
    pub fn ended_early(&self) -> bool {
        self.killed_by().is_some() || self.stopped().is_some()
    }

    /// The child was killed or did not exit cleanly.
    pub fn ended_badly(&self) -> bool {
        self.killed_by().is_some() || !self.status.success()
    }
}

/// The status of a run: `died_in` is the stage the child did not finish
/// (see `StageBook::close`), `end_s` and `last_rss` the end of the run and
/// its last live sample (where a kill is placed when nothing noted it), and
/// `stderr_tail` what a failure is explained with.
pub fn classify(
    ending: &Ending,
    died_in: Option<String>,
    end_s: f64,
    last_rss: u64,
    stderr_tail: &[String],
) -> RunStatus {
    if let Some(by) = ending.killed_by() {
        let (t_s, rss_bytes) = ending.kill_note.unwrap_or((end_s, last_rss));
        return RunStatus::Killed {
            signal: libc::SIGKILL,
            stage: died_in,
            t_s,
            rss_bytes,
            by: by.into(),
        };
    }
    if let Some((signal, t_s)) = ending.stopped() {
        return RunStatus::Interrupted {
            signal,
            stage: died_in,
            t_s,
            rss_bytes: last_rss,
        };
    }
    match ending.status.code() {
        Some(0) if died_in.is_none() => RunStatus::Completed,
        code => RunStatus::Failed {
            exit_code: code,
            signal: ending.status.signal(),
            stage: died_in,
            message: failure_message(stderr_tail),
        },
    }
}

/// The line of a failed child's stderr that says why: a Rust panic's
/// location and message, else the last non-empty line that is not a hint
/// about backtraces.
fn failure_message(stderr_tail: &[String]) -> String {
    if let Some(i) = stderr_tail
        .iter()
        .rposition(|l| l.contains(" panicked at "))
    {
        let next = stderr_tail
            .get(i + 1)
            .map(|l| l.trim())
            .filter(|l| !l.is_empty() && !l.starts_with("note: "));
        return match next {
            Some(message) => format!("{} {message}", stderr_tail[i].trim()),
            None => stderr_tail[i].trim().to_string(),
        };
    }
    stderr_tail
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
        .map(str::to_string)
        .unwrap_or_else(|| "no message on stderr".into())
}

/// How a run ended, as a sentence for terminals (not Rust's debug form).
pub fn status_sentence(label: &str, status: &RunStatus) -> String {
    match status {
        RunStatus::Completed => format!("{label} completed"),
        RunStatus::Killed {
            signal,
            stage,
            t_s,
            rss_bytes,
            by,
        } => format!(
            "{label} was killed (-{signal}) by {by} in stage {} at {t_s:.2} s, RSS {}",
            stage.as_deref().unwrap_or("?"),
            crate::units::format_bytes(*rss_bytes)
        ),
        RunStatus::Failed {
            exit_code,
            signal,
            stage,
            message,
        } => {
            let how = crate::report::exit_description(*exit_code, *signal);
            format!(
                "{label} failed ({how}) in stage {}: {message}",
                stage.as_deref().unwrap_or("?")
            )
        }
        RunStatus::Interrupted {
            signal, stage, t_s, ..
        } => format!(
            "{label} was stopped by oomlab ({}) in stage {} at {t_s:.2} s",
            crate::interrupt::signal_name(*signal),
            stage.as_deref().unwrap_or("?")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXIT_0: i32 = 0;
    const EXIT_3: i32 = 3 << 8;
    const SIGKILLED: i32 = libc::SIGKILL;
    const SIGTERMED: i32 = libc::SIGTERM;
    const SIGSEGVED: i32 = libc::SIGSEGV;
    const END_S: f64 = 9.0;
    const LAST_RSS: u64 = 700;

    struct Case {
        name: &'static str,
        /// Raw wait status of the root.
        raw: i32,
        kill_note: Option<(f64, u64)>,
        cgroup_kills: u64,
        interrupted: Option<(i32, f64)>,
        died_in: Option<&'static str>,
        want: RunStatus,
    }

    fn killed(by: &str, stage: Option<&str>, t_s: f64, rss_bytes: u64) -> RunStatus {
        RunStatus::Killed {
            signal: libc::SIGKILL,
            stage: stage.map(Into::into),
            t_s,
            rss_bytes,
            by: by.into(),
        }
    }

    fn failed(exit_code: Option<i32>, signal: Option<i32>, stage: Option<&str>) -> RunStatus {
        RunStatus::Failed {
            exit_code,
            signal,
            stage: stage.map(Into::into),
            message: "MemoryError: boom".into(),
        }
    }

    fn interrupted(signal: i32, stage: Option<&str>, t_s: f64) -> RunStatus {
        RunStatus::Interrupted {
            signal,
            stage: stage.map(Into::into),
            t_s,
            rss_bytes: LAST_RSS,
        }
    }

    fn case(name: &'static str, raw: i32, want: RunStatus) -> Case {
        Case {
            name,
            raw,
            kill_note: None,
            cgroup_kills: 0,
            interrupted: None,
            died_in: None,
            want,
        }
    }

    #[test]
    fn every_way_a_run_can_end() {
        let note = Some((1.5, 900));
        let cases = [
            case("clean exit", EXIT_0, RunStatus::Completed),
            Case {
                died_in: Some("copy"),
                ..case(
                    "clean exit with a stage left open (replay child)",
                    EXIT_0,
                    failed(Some(0), None, Some("copy")),
                )
            },
            Case {
                died_in: Some("load"),
                ..case("non-zero exit", EXIT_3, failed(Some(3), None, Some("load")))
            },
            case(
                "non-zero exit outside any stage",
                EXIT_3,
                failed(Some(3), None, None),
            ),
            Case {
                kill_note: note,
                cgroup_kills: 1,
                died_in: Some("grow"),
                ..case(
                    "SIGKILL by the cgroup, seen by the sampler",
                    SIGKILLED,
                    killed(BY_CGROUP, Some("grow"), 1.5, 900),
                )
            },
            Case {
                cgroup_kills: 1,
                died_in: Some("grow"),
                ..case(
                    "SIGKILL by the cgroup between samples: placed at the end",
                    SIGKILLED,
                    killed(BY_CGROUP, Some("grow"), END_S, LAST_RSS),
                )
            },
            Case {
                cgroup_kills: 2,
                died_in: Some("grow"),
                ..case(
                    "cgroup oom_kill count with a clean-looking exit",
                    EXIT_0,
                    killed(BY_CGROUP, Some("grow"), END_S, LAST_RSS),
                )
            },
            Case {
                cgroup_kills: 1,
                ..case(
                    "cgroup oom_kill count with a failed exit",
                    EXIT_3,
                    killed(BY_CGROUP, None, END_S, LAST_RSS),
                )
            },
            Case {
                kill_note: note,
                died_in: Some("grow"),
                ..case(
                    "SIGKILL by the watchdog",
                    SIGKILLED,
                    killed(BY_WATCHDOG, Some("grow"), 1.5, 900),
                )
            },
            Case {
                died_in: Some("grow"),
                ..case(
                    "SIGKILL from outside",
                    SIGKILLED,
                    killed(BY_UNKNOWN, Some("grow"), END_S, LAST_RSS),
                )
            },
            Case {
                died_in: Some("grow"),
                ..case(
                    "another signal from outside",
                    SIGTERMED,
                    failed(None, Some(libc::SIGTERM), Some("grow")),
                )
            },
            case(
                "a crash",
                SIGSEGVED,
                failed(None, Some(libc::SIGSEGV), None),
            ),
            Case {
                interrupted: Some((libc::SIGINT, 2.5)),
                died_in: Some("join"),
                ..case(
                    "interrupted by the user in an open stage",
                    SIGKILLED,
                    interrupted(libc::SIGINT, Some("join"), 2.5),
                )
            },
            Case {
                interrupted: Some((libc::SIGTERM, 2.5)),
                ..case(
                    "interrupted, and the child exited cleanly before the stop",
                    EXIT_0,
                    interrupted(libc::SIGTERM, None, 2.5),
                )
            },
            Case {
                interrupted: Some((libc::SIGINT, 2.5)),
                kill_note: note,
                died_in: Some("grow"),
                ..case(
                    "interrupted after the watchdog killed it",
                    SIGKILLED,
                    killed(BY_WATCHDOG, Some("grow"), 1.5, 900),
                )
            },
            Case {
                interrupted: Some((libc::SIGINT, 2.5)),
                cgroup_kills: 1,
                died_in: Some("grow"),
                ..case(
                    "interrupted after the cgroup killed it",
                    SIGKILLED,
                    killed(BY_CGROUP, Some("grow"), END_S, LAST_RSS),
                )
            },
        ];
        let tail = vec!["Traceback".to_string(), "MemoryError: boom".to_string()];
        for c in cases {
            let ending = Ending {
                status: ExitStatus::from_raw(c.raw),
                kill_note: c.kill_note,
                cgroup_kills: c.cgroup_kills,
                interrupted: c.interrupted,
            };
            let got = classify(&ending, c.died_in.map(Into::into), END_S, LAST_RSS, &tail);
            assert_eq!(got, c.want, "{}", c.name);
            let early = matches!(
                got,
                RunStatus::Killed { .. } | RunStatus::Interrupted { .. }
            );
            assert_eq!(ending.ended_early(), early, "{}: ended early", c.name);
            let bad = matches!(got, RunStatus::Killed { .. }) || c.raw != EXIT_0;
            assert_eq!(ending.ended_badly(), bad, "{}: ended badly", c.name);
        }
    }

    #[test]
    fn statuses_read_as_sentences() {
        let failed = RunStatus::Failed {
            exit_code: Some(3),
            signal: None,
            stage: Some("work".into()),
            message: "ValueError: disk on fire".into(),
        };
        assert_eq!(
            status_sentence("prep", &failed),
            "prep failed (exit code 3) in stage work: ValueError: disk on fire"
        );
        let killed = RunStatus::Killed {
            signal: 9,
            stage: Some("grow".into()),
            t_s: 1.5,
            rss_bytes: 300 << 20,
            by: "watchdog".into(),
        };
        let text = status_sentence("prep", &killed);
        assert!(
            text.starts_with("prep was killed (-9) by watchdog in stage grow at 1.50 s, RSS 300"),
            "{text}"
        );
        assert!(!text.contains("Some("));
    }

    #[test]
    fn failure_messages_say_why() {
        let tail = |lines: &[&str]| lines.iter().map(|l| l.to_string()).collect::<Vec<_>>();
        assert_eq!(
            failure_message(&tail(&[
                "",
                "thread 'main' (4242) panicked at src/probe.rs:80:13:",
                "OOMLAB_TEST_PANIC_IN_STAGE=copy",
                "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
            ])),
            "thread 'main' (4242) panicked at src/probe.rs:80:13: OOMLAB_TEST_PANIC_IN_STAGE=copy"
        );
        assert_eq!(
            failure_message(&tail(&["Traceback", "MemoryError: boom", "  "])),
            "MemoryError: boom"
        );
        assert_eq!(failure_message(&[]), "no message on stderr");
    }
}
