//! Runs one measured child process and turns what it said into a `RunRecord`.
//!
//! The child is a separate process so that nothing the harness allocates (the
//! sampler, the progress display, JSON) is ever counted in a figure. The parent
//! samples the child's RSS, reads its stage markers and logs from a pipe, and
//! keeps the last lines of its stderr in case it dies.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::probe::Detail;
use crate::progress::Progress;
use crate::protocol::{monotonic_ns, Event};
use crate::report::{LogLine, OutputSummary, RunRecord, RunStatus, StageRecord};
use crate::sampler::Sampler;

/// How many stderr lines a failed run keeps.
const STDERR_TAIL_LINES: usize = 40;

/// The command to measure and how to label it.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// Label in reports and displays (the strategy name).
    pub label: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Environment variables to set for the child (the pipeline's documented knobs).
    pub env: Vec<(String, String)>,
}

impl ChildSpec {
    /// A child that re-executes this binary's hidden `__child` subcommand.
    pub fn oomlab_child(label: &str, job_json: String) -> Result<Self> {
        let program = std::env::current_exe().context("locating the oomlab binary")?;
        Ok(Self {
            label: label.to_string(),
            program,
            args: vec!["__child".into(), "--job".into(), job_json.into()],
            env: Vec::new(),
        })
    }
}

/// Sampling settings for a run.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    pub interval: Duration,
}

enum Message {
    Event(Event),
    Output(String),
}

struct OpenStage {
    name: String,
    start_s: f64,
    rss_start: u64,
}

/// Spawns the child, samples it until it exits, and records everything it said.
pub fn run_child(
    spec: &ChildSpec,
    options: RunOptions,
    progress: &mut Progress,
) -> Result<RunRecord> {
    progress.begin(&spec.label);
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in &spec.env {
        command.env(k, v);
    }
    let origin_ns = monotonic_ns();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", spec.program.display()))?;
    let pid = child.id() as i32;
    let sampler = Sampler::start(pid, options.interval, origin_ns, Box::new(|_, _| false));

    let (tx, rx) = mpsc::channel::<Message>();
    let stdout = child.stdout.take().context("child stdout")?;
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let msg = match Event::parse_line(&line) {
                Some(Ok(event)) => Message::Event(event),
                _ => Message::Output(line),
            };
            if tx.send(msg).is_err() {
                break;
            }
        }
    });
    let stderr_tail = Arc::new(Mutex::new(VecDeque::<String>::new()));
    let stderr = child.stderr.take().context("child stderr")?;
    let err_reader = {
        let tail = stderr_tail.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut t) = tail.lock() {
                    if t.len() == STDERR_TAIL_LINES {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            }
        })
    };

    let secs = |t_ns: u64| t_ns.saturating_sub(origin_ns) as f64 / 1e9;
    let mut stages = Vec::new();
    let mut logs = Vec::new();
    let mut output = None;
    let mut open: Option<OpenStage> = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Message::Event(event)) => match event {
                Event::StageStart {
                    stage,
                    t_ns,
                    rss_bytes,
                } => {
                    progress.stage_start(&stage, secs(t_ns));
                    open = Some(OpenStage {
                        name: stage,
                        start_s: secs(t_ns),
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
                    let (start_s, rss_start) = match open.take() {
                        Some(o) if o.name == stage => (o.start_s, o.rss_start),
                        _ => (secs(t_ns), rss_bytes),
                    };
                    progress.stage_end(&stage, secs(t_ns) - start_s, peak_bytes);
                    stages.push(stage_record(
                        stage,
                        start_s,
                        secs(t_ns),
                        Some(peak_bytes),
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
                    progress.log(&level, &message);
                    logs.push(LogLine {
                        t_s: secs(t_ns),
                        level,
                        message,
                    });
                }
                Event::Output {
                    rows,
                    features,
                    columns,
                    bytes,
                } => {
                    output = Some(OutputSummary {
                        rows,
                        features,
                        columns,
                        bytes,
                    })
                }
            },
            Ok(Message::Output(line)) => progress.log("OUT", &line),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                progress.tick(secs(monotonic_ns()), sampler.latest())
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child.wait().context("waiting for the child")?;
    let end_s = secs(monotonic_ns());
    let _ = reader.join();
    let _ = err_reader.join();
    let mut timeline = sampler.finish();
    progress.finish();
    let stderr_tail: Vec<String> = stderr_tail
        .lock()
        .map(|t| t.iter().cloned().collect())
        .unwrap_or_default();

    // A stage still open when the child died ends where the child ended.
    let died_in = open.as_ref().map(|o| o.name.clone());
    if let Some(o) = open {
        let last_rss = timeline.rss_bytes.last().copied().unwrap_or(o.rss_start);
        stages.push(stage_record(
            o.name,
            o.start_s,
            end_s,
            None,
            o.rss_start,
            last_rss,
            Detail::new(),
        ));
    }
    for stage in &mut stages {
        stage.sampled_peak_bytes = timeline.peak_between(stage.start_s, stage.end_s);
    }
    if timeline.t_s.is_empty() {
        timeline.t_s.push(0.0);
        timeline.rss_bytes.push(0);
    }

    use std::os::unix::process::ExitStatusExt;
    let run_status = match (status.code(), status.signal()) {
        (Some(0), _) if died_in.is_none() => RunStatus::Completed,
        (_, Some(signal)) if signal == libc::SIGKILL => RunStatus::Killed {
            signal,
            stage: died_in,
            t_s: end_s,
            rss_bytes: timeline.rss_bytes.last().copied().unwrap_or(0),
            by: "unknown".into(),
        },
        (code, signal) => RunStatus::Failed {
            exit_code: code,
            signal,
            stage: died_in,
            message: stderr_tail
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .cloned()
                .unwrap_or_else(|| "no message on stderr".into()),
        },
    };
    if run_status != RunStatus::Completed {
        progress.warn(&format!("{} did not complete: {run_status:?}", spec.label));
    }
    Ok(RunRecord {
        strategy: spec.label.clone(),
        peak_bytes: stages.iter().filter_map(|s| s.exact_peak_bytes).max(),
        sampled_peak_bytes: timeline.peak(),
        wall_s: end_s,
        status: run_status,
        stages,
        logs,
        output,
        stderr_tail,
        timeline,
    })
}

fn stage_record(
    name: String,
    start_s: f64,
    end_s: f64,
    exact_peak_bytes: Option<u64>,
    rss_start_bytes: u64,
    rss_end_bytes: u64,
    detail: Detail,
) -> StageRecord {
    StageRecord {
        name,
        start_s,
        end_s,
        exact_peak_bytes,
        rss_start_bytes,
        rss_end_bytes,
        sampled_peak_bytes: None,
        detail,
    }
}
