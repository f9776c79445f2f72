//! Running a Python command a second time under memray, and reading the
//! capture back through memray's own Python API.
//!
//! The kernel figures come from an untraced run; tracing slows a run and
//! adds memray's own bookkeeping, so it is always a separate run. Its stage
//! markers are timestamped inside the traced process when the program writes
//! them (the bundled [`LAUNCHER`] notes each line's time beside the capture),
//! on the clock memray stamps its memory snapshots with, so allocations map
//! to oomlab's stages by time. Reading the pipe is late by however long a
//! loaded machine takes to schedule oomlab: a marker stamped on reading would
//! put the allocations made just after it before it. A line written past
//! `sys.stdout` (straight to the file descriptor, by a subprocess) has no
//! such stamp and falls back on the time it was read. The capture is read by a small bundled Python
//! program ([`READER`]) that prints JSON: oomlab never parses memray's
//! binary format, whose layout is memray's to change.

use std::collections::{HashMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::error::{bad_input, exit_with, Exit};
use crate::record::marker_for;
use crate::record::pattern::Pattern;

/// The bundled reader of a capture, compiled in so an installed oomlab
/// needs nothing but memray in the command's interpreter.
pub const READER: &str = include_str!("reader.py");

/// The bundled launcher: `memray run` with a snapshot every millisecond.
pub const LAUNCHER: &str = include_str!("launch.py");

/// The pip package that provides the tracer.
pub const PACKAGE: &str = "memray";

/// A Python command split into its interpreter and what the launcher (as
/// `memray run`) takes after the capture (`script.py ARGS`, `-m module ARGS`, `-c CODE ARGS`).
#[derive(Debug, Clone, PartialEq)]
pub struct PythonCommand {
    /// The interpreter as the command names it (`python3`, a venv's path).
    pub interpreter: OsString,
    /// The program and its arguments.
    pub program: Vec<OsString>,
}

/// Whether a program name is a Python interpreter (`python`, `python3`,
/// `python3.11`, any path to one).
fn is_python(program: &OsStr) -> bool {
    let name = Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(rest) = name.strip_prefix("python") else {
        return false;
    };
    rest.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// Splits a command for tracing, refusing (exit 2) what memray cannot run:
/// a command that is not a Python interpreter, interpreter options before
/// the program, no program at all.
pub fn python_command(command: &[OsString]) -> Result<PythonCommand> {
    let Some((first, rest)) = command.split_first() else {
        return Err(bad_input("--lines: no command given"));
    };
    if !is_python(first) {
        return Err(bad_input(format!(
            "--lines traces Python commands under memray; {:?} is not a Python interpreter (expected `python`, `python3`, `python3.11` or a path to one, e.g. --lines -- python3 prep.py ...)",
            first.to_string_lossy()
        )));
    }
    let Some(next) = rest.first() else {
        return Err(bad_input(format!(
            "--lines: {:?} is given no script (expected SCRIPT.py, -m MODULE or -c CODE)",
            first.to_string_lossy()
        )));
    };
    let text = next.to_string_lossy();
    if text.starts_with('-') && text != "-m" && text != "-c" {
        return Err(bad_input(format!(
            "--lines: interpreter option {text:?} before the program cannot be passed through memray (the traced run takes SCRIPT.py, -m MODULE or -c CODE); drop it or set it in the environment (e.g. PYTHONUNBUFFERED=1 for -u)"
        )));
    }
    if (text == "-m" || text == "-c") && rest.len() < 2 {
        return Err(bad_input(format!("--lines: {text} needs an argument")));
    }
    Ok(PythonCommand {
        interpreter: first.clone(),
        program: rest.to_vec(),
    })
}

/// The memray version the interpreter imports; exit 2 naming the
/// interpreter, the package and the pip command when it cannot.
pub fn memray_version(interpreter: &OsStr) -> Result<String> {
    let shown = interpreter.to_string_lossy();
    let out = Command::new(interpreter)
        .args(["-c", "import memray; print(memray.__version__)"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            bad_input(format!(
                "--lines: cannot run the interpreter {shown:?}: {e}"
            ))
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("").trim().to_string();
        return Err(bad_input(format!(
            "--lines needs the `{PACKAGE}` package in the interpreter {shown} ({last}); install it with: {shown} -m pip install {PACKAGE}"
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// One site of a capture as the reader prints it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct CaptureSite {
    /// Source file of the innermost user frame (empty: no user frame).
    pub file: String,
    /// Its line.
    pub line: u64,
    /// Its function.
    pub function: String,
    /// False for the one group of allocations made outside the user's code.
    pub user: bool,
    /// The source line's text (stripped), when the file could be read.
    #[serde(default)]
    pub code: String,
    /// `[allocated before snapshot, freed before snapshot (null: never), bytes]`:
    /// bytes the site held at the high-water mark of every snapshot interval
    /// `k` with `allocated <= k < freed` (memray's temporal high-water marks).
    pub intervals: Vec<(u64, Option<u64>, u64)>,
}

/// A capture as the reader prints it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Capture {
    /// memray's version.
    pub memray: String,
    /// The interpreter's version.
    pub python: String,
    /// memray's own peak heap figure for the whole run.
    pub peak_memory: u64,
    /// `[time (ms since the epoch), rss, heap]` of each memory snapshot.
    pub snapshots: Vec<(u64, u64, u64)>,
    /// The heap's high-water mark within each snapshot interval (the
    /// interval ending at the snapshot of the same index).
    pub hwm: Vec<u64>,
    /// Every site.
    pub sites: Vec<CaptureSite>,
}

/// Parses the reader's JSON (exit 2 naming the file when it is not that).
pub fn parse_capture(text: &str, source: &Path) -> Result<Capture> {
    let capture: Capture = serde_json::from_str(text).map_err(|e| {
        bad_input(format!(
            "cannot read the memray capture's JSON {}: {e}",
            source.display()
        ))
    })?;
    if capture.hwm.len() != capture.snapshots.len() {
        return Err(bad_input(format!(
            "memray capture {}: {} high-water marks for {} snapshots (expected one per snapshot)",
            source.display(),
            capture.hwm.len(),
            capture.snapshots.len()
        )));
    }
    Ok(capture)
}

/// What to trace: the substituted command, its extra environment, the stage
/// markers, and the directory the capture and its logs go to.
#[derive(Debug, Clone)]
pub struct TracePlan<'a> {
    pub command: &'a [OsString],
    pub env: &'a [(String, String)],
    pub pattern: &'a Pattern,
    pub dir: &'a Path,
    /// Echo the command's output as it comes.
    pub passthrough: bool,
}

/// A traced run: the capture, and when each stage started.
#[derive(Debug, Clone)]
pub struct Traced {
    pub capture: Capture,
    /// `(stage, ms since the epoch)` of each marker line, in order.
    pub markers: Vec<(String, u64)>,
    /// How many of `markers` carry the time the traced process wrote them
    /// (the rest, the time oomlab read them).
    pub markers_stamped: usize,
    /// When the traced process was started, ms since the epoch.
    pub started_ms: u64,
    /// Wall time of the traced run, seconds (the cost of tracing).
    pub wall_s: f64,
    /// The capture file.
    pub capture_path: PathBuf,
}

/// The file beside the capture where the launcher notes each output line's time.
pub const STAMPS: &str = "traced-lines.tsv";

/// Parses the launcher's `ms<TAB>line` notes (a line that is not one, as a
/// write cut short by a crash, is skipped: its marker falls back on the time
/// it was read).
pub fn parse_stamps(text: &str) -> Vec<(u64, String)> {
    text.lines()
        .filter_map(|l| {
            let (ms, line) = l.split_once('\t')?;
            Some((ms.parse().ok()?, line.trim_end_matches('\r').to_string()))
        })
        .collect()
}

/// Each marker's time: the time the traced process wrote its line when the
/// launcher noted it (lines matched in order by text, so a line logged twice
/// takes its notes in turn), else the time it was read. Returns the markers
/// and how many were stamped in-process.
pub fn stamp_markers(
    read: Vec<(String, String, u64)>,
    stamps: &[(u64, String)],
) -> (Vec<(String, u64)>, usize) {
    let mut by_text: HashMap<&str, VecDeque<u64>> = HashMap::new();
    for (ms, text) in stamps {
        by_text.entry(text.as_str()).or_default().push_back(*ms);
    }
    let mut stamped = 0;
    let markers = read
        .into_iter()
        .map(|(stage, line, read_ms)| {
            match by_text
                .get_mut(line.trim_end_matches('\r'))
                .and_then(VecDeque::pop_front)
            {
                Some(ms) => {
                    stamped += 1;
                    (stage, ms)
                }
                None => (stage, read_ms),
            }
        })
        .collect();
    (markers, stamped)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs the command under memray (the bundled [`LAUNCHER`], `memray run`
/// with a snapshot every millisecond), then the bundled reader on its
/// capture. Exit 2 for a command memray cannot trace or a capture that
/// cannot be read, 6 when the traced command fails.
pub fn trace(plan: &TracePlan<'_>) -> Result<Traced> {
    let python = python_command(plan.command)?;
    memray_version(&python.interpreter)?;
    std::fs::create_dir_all(plan.dir)
        .with_context(|| format!("creating {}", plan.dir.display()))?;
    let capture_path = plan.dir.join("memray.bin");
    let _ = std::fs::remove_file(&capture_path);
    let launcher = plan.dir.join("oomlab_memray_launch.py");
    std::fs::write(&launcher, LAUNCHER)
        .with_context(|| format!("writing {}", launcher.display()))?;
    let stamps_path = plan.dir.join(STAMPS);
    let _ = std::fs::remove_file(&stamps_path);
    let mut cmd = Command::new(&python.interpreter);
    cmd.arg(&launcher)
        .arg(&capture_path)
        .arg(&stamps_path)
        .args(&python.program)
        .envs(plan.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // pyarrow's default pool (jemalloc/mimalloc) keeps freed chunks and maps
    // them once, so memray would charge them to whoever grew the pool first;
    // the system pool shows memray each buffer with its own stack.
    if std::env::var_os("ARROW_DEFAULT_MEMORY_POOL").is_none()
        && !plan
            .env
            .iter()
            .any(|(k, _)| k == "ARROW_DEFAULT_MEMORY_POOL")
    {
        cmd.env("ARROW_DEFAULT_MEMORY_POOL", "system");
    }
    let started = Instant::now();
    let started_ms = now_ms();
    let mut child = cmd.spawn().map_err(|e| {
        bad_input(format!(
            "--lines: cannot start {:?} under memray: {e}",
            python.interpreter.to_string_lossy()
        ))
    })?;
    let (tx, rx) = mpsc::channel::<(bool, String, u64)>();
    let mut pumps = Vec::new();
    for (is_err, stream) in [
        (
            false,
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ),
        (
            true,
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ),
    ] {
        let Some(stream) = stream else { continue };
        let tx = tx.clone();
        pumps.push(std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if tx.send((is_err, line, now_ms())).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let marker = marker_for(plan.pattern.clone());
    let mut read = Vec::new();
    let (mut out_log, mut err_log) = (String::new(), String::new());
    for (is_err, line, at) in rx {
        if let Some(m) = marker(&line) {
            read.push((m.stage, line.clone(), at));
        }
        if plan.passthrough {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
        let log = if is_err { &mut err_log } else { &mut out_log };
        log.push_str(&line);
        log.push('\n');
    }
    for p in pumps {
        let _ = p.join();
    }
    let status = child.wait().context("waiting for the traced command")?;
    let wall_s = started.elapsed().as_secs_f64();
    std::fs::write(plan.dir.join("traced-stdout.log"), &out_log)?;
    std::fs::write(plan.dir.join("traced-stderr.log"), &err_log)?;
    if !status.success() {
        let tail: Vec<&str> = err_log.lines().rev().take(8).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(exit_with(
            Exit::ChildFailed,
            format!(
                "--lines: the traced run (under memray) did not complete ({status}); its stderr ended with:\n{}",
                tail.join("\n")
            ),
        ));
    }
    let stamps = std::fs::read(&stamps_path)
        .map(|b| parse_stamps(&String::from_utf8_lossy(&b)))
        .unwrap_or_default();
    let (markers, markers_stamped) = stamp_markers(read, &stamps);
    let capture = read_capture(&python.interpreter, &capture_path, plan.dir)?;
    Ok(Traced {
        capture,
        markers,
        markers_stamped,
        started_ms,
        wall_s,
        capture_path,
    })
}

/// Reads a capture with the bundled reader run by `interpreter` (exit 2
/// naming the capture when memray cannot read it).
pub fn read_capture(interpreter: &OsStr, capture: &Path, scratch: &Path) -> Result<Capture> {
    let reader = scratch.join("oomlab_memray_reader.py");
    std::fs::write(&reader, READER).with_context(|| format!("writing {}", reader.display()))?;
    let out = Command::new(interpreter)
        .arg(&reader)
        .arg(capture)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running the capture reader {}", reader.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("").trim().to_string();
        return Err(bad_input(format!(
            "cannot read the memray capture {}: {last}",
            capture.display()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let json = scratch.join("memray-capture.json");
    std::fs::write(&json, text.as_bytes())?;
    parse_capture(&text, capture)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn python_commands_split_and_others_are_refused() {
        let c = python_command(&os(&["/v/bin/python3.11", "prep.py", "--x"])).unwrap();
        assert_eq!(c.interpreter, OsString::from("/v/bin/python3.11"));
        assert_eq!(c.program, os(&["prep.py", "--x"]));
        assert!(python_command(&os(&["python", "-m", "prep"])).is_ok());
        for bad in [
            &["Rscript", "prep.R"][..],
            &["python3"][..],
            &["python3", "-u", "prep.py"][..],
            &["python3", "-c"][..],
            &["pythonista", "x.py"][..],
        ] {
            let e = python_command(&os(bad)).unwrap_err();
            assert_eq!(crate::error::exit_code_of(&e), Exit::BadInput, "{bad:?}");
        }
    }

    #[test]
    fn markers_take_the_time_the_process_wrote_them_else_the_time_read() {
        let stamps =
            parse_stamps("100\tINFO [stage] a\r\nbad line\n120\tnoise\n130\tINFO [stage] a\n");
        assert_eq!(stamps.len(), 3);
        let read = vec![
            ("a".to_string(), "INFO [stage] a".to_string(), 150),
            ("a".to_string(), "INFO [stage] a".to_string(), 160),
            ("b".to_string(), "INFO [stage] b".to_string(), 170),
        ];
        let (markers, stamped) = stamp_markers(read, &stamps);
        assert_eq!(
            markers,
            [("a".into(), 100), ("a".into(), 130), ("b".into(), 170)]
        );
        assert_eq!(stamped, 2);
    }

    #[test]
    fn a_capture_that_is_not_the_readers_json_is_bad_input() {
        let e = parse_capture("{\"memray\": 1}", Path::new("x.json")).unwrap_err();
        assert_eq!(crate::error::exit_code_of(&e), Exit::BadInput);
        assert!(e.to_string().contains("x.json"), "{e}");
    }
}
