//! Issue 9: oomlab is never the cause of an OOM and never loses a sample.
//!
//! Preflight refusals, streamed samples that outlive a SIGKILL of the harness,
//! Ctrl-C/SIGTERM that stop the child's whole tree and keep a partial report,
//! crashing children, hostile inputs of every kind, and reports that never
//! carry the environment. Processes are found through an environment tag that
//! every child inherits, so "no orphan" is checked against the real process
//! table.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{cache, path_str, run_of, scratch, text};

/// Documented exit codes (README, "Exit codes").
const EXIT_BAD_INPUT: i32 = 2;
const EXIT_REFUSED: i32 = 3;
const EXIT_CHILD_FAILED: i32 = 6;
const EXIT_SIGINT: i32 = 130;
const EXIT_SIGTERM: i32 = 143;

/// How long a test waits for something that takes well under a second on
/// an idle machine: a guard against hanging, not a measurement.
const PATIENCE: Duration = Duration::from_secs(180);

/// The variable that marks every process a test starts (children inherit it).
const TAG_VAR: &str = "OOMLAB_SAFETY_TEST_TAG";

/// A tag unique to this test process and test.
fn tag(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

/// oomlab with the test's tag in its environment.
fn tagged(tag: &str) -> Command {
    let mut cmd = common::oomlab();
    cmd.env(TAG_VAR, tag)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Live processes (zombies hold no memory and do not count) whose
/// environment carries `tag`, with their command lines.
fn live_tagged(tag: &str) -> Vec<(i32, String)> {
    let needle = format!("{TAG_VAR}={tag}");
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if !env.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .unwrap_or("");
        if state == "Z" || state == "X" || state.is_empty() {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        found.push((pid, String::from_utf8_lossy(&cmd).replace('\0', " ")));
    }
    found
}

/// Waits until `ready` holds, failing the test (and killing `child`) after [`PATIENCE`].
fn wait_until(child: &mut Child, what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        if let Ok(Some(status)) = child.try_wait() {
            let out = read_all(child);
            panic!("oomlab ended ({status}) before {what}:\n{out}");
        }
        if start.elapsed() > PATIENCE {
            let _ = child.kill();
            panic!("gave up waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_all(child: &mut Child) -> String {
    use std::io::Read;
    let mut text = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut text);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut text);
    }
    text
}

/// Waits for `child` to exit (killing it after [`PATIENCE`]); returns its
/// status and everything it printed.
fn finish(mut child: Child) -> (ExitStatus, String) {
    let start = Instant::now();
    // Drain the pipes on threads so a chatty child cannot block on them.
    let out = child.stdout.take();
    let err = child.stderr.take();
    let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut text);
            }
            text
        })
    };
    let out = drain(out.map(|o| Box::new(o) as Box<dyn std::io::Read + Send>));
    let err = drain(err.map(|e| Box::new(e) as Box<dyn std::io::Read + Send>));
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for oomlab") {
            break status;
        }
        if start.elapsed() > PATIENCE {
            let _ = child.kill();
            panic!("oomlab did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = format!(
        "{}\n{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    (status, text)
}

fn signal(child: &Child, signo: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    let r = unsafe { libc::kill(child.id() as i32, signo) };
    assert_eq!(r, 0, "sending signal {signo}");
}

/// Waits until no live process carries `tag` (the kernel needs a moment to
/// tear a killed process down); fails naming the survivors.
fn assert_no_orphans(tag: &str) {
    let start = Instant::now();
    loop {
        let alive = live_tagged(tag);
        if alive.is_empty() {
            return;
        }
        if start.elapsed() > Duration::from_secs(30) {
            for (pid, _) in &alive {
                // SAFETY: cleaning up what the test started.
                unsafe { libc::kill(*pid, libc::SIGKILL) };
            }
            panic!("processes of the run survived oomlab: {alive:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The complete lines of a run's sample journal, parsed.
fn journal(dir: &Path, run: &str) -> Vec<serde_json::Value> {
    let text =
        std::fs::read_to_string(dir.join(format!("samples.{run}.jsonl"))).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("journal line {l:?}: {e}")))
        .collect()
}

fn has_stage_start(lines: &[serde_json::Value], stage: &str) -> bool {
    lines
        .iter()
        .any(|l| l["event"] == "stage_start" && l["stage"] == stage)
}

fn samples(lines: &[serde_json::Value]) -> Vec<f64> {
    lines
        .iter()
        .filter(|l| l["event"] == "sample")
        .map(|l| l["t_s"].as_f64().expect("t_s"))
        .collect()
}

fn read_report(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json written");
    serde_json::from_str(&text).expect("report is JSON")
}

/// `compare` on ci.toml into `out` (extra args appended).
fn compare_args(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "compare",
        "--scenario",
        "scenarios/ci.toml",
        "--cache-dir",
        &cache(),
        "--out",
        path_str(out),
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Makes sure ci.toml's data is cached, so a test's child starts at once.
fn warm_cache() {
    let out = common::run(&[
        "data",
        "--scenario",
        "scenarios/ci.toml",
        "--cache-dir",
        &cache(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
}

// ---------------------------------------------------------------- preflight

#[test]
fn preflight_refuses_with_the_figures_writes_nothing_and_force_overrides() {
    warm_cache();
    let out_dir = scratch("safety-preflight").join("report");
    let out = common::oomlab()
        .args(compare_args(&out_dir, &[]))
        .env("OOMLAB_PREFLIGHT_AVAILABLE_BYTES", "50000000")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(EXIT_REFUSED), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    // The figures: the prediction, what the machine offers and the margin.
    assert!(
        err.contains("preflight: `legacy` is predicted to peak at"),
        "{err}"
    );
    assert!(
        err.contains("47.7 MiB of OOMLAB_PREFLIGHT_AVAILABLE_BYTES"),
        "{err}"
    );
    assert!(err.contains("10% margin = 42.9 MiB"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert!(
        !out_dir.exists(),
        "a refused run writes nothing: {:?}",
        std::fs::read_dir(&out_dir).map(|d| d.count())
    );

    let out = common::oomlab()
        .args(compare_args(&out_dir, &["--force"]))
        .env("OOMLAB_PREFLIGHT_AVAILABLE_BYTES", "50000000")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = read_report(&out_dir);
    assert_eq!(run_of(&report, "legacy")["status"]["kind"], "completed");

    // A typo in the override is bad input, not a silent fallback.
    let out = common::oomlab()
        .args(compare_args(&out_dir, &[]))
        .env("OOMLAB_PREFLIGHT_AVAILABLE_BYTES", "50MB")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(EXIT_BAD_INPUT), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("OOMLAB_PREFLIGHT_AVAILABLE_BYTES=\"50MB\"")
    );
}

#[test]
fn sweep_refuses_a_scale_that_does_not_fit_and_writes_no_model() {
    // The first scale: nothing measured yet, so the conservative estimate from
    // the scenario's sizes judges it (ci.toml's legacy: about 385 MiB at 0.01).
    let out_dir = scratch("safety-sweep").join("sweep");
    let sweep = |scales: &str, available: u64| {
        common::oomlab()
            .args([
                "sweep",
                "--scenario",
                "scenarios/ci.toml",
                "--scales",
                scales,
                "--max-ranking-samples-fraction",
                "none",
                "--cache-dir",
                &cache(),
                "--out",
                path_str(&out_dir),
                "--model",
                path_str(&out_dir.join("model.json")),
                "--quiet",
            ])
            .env("OOMLAB_PREFLIGHT_AVAILABLE_BYTES", available.to_string())
            .output()
            .unwrap()
    };
    let out = sweep("0.01,0.02,0.3", 200 << 20);
    assert_eq!(out.status.code(), Some(EXIT_REFUSED), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("preflight: `legacy`"), "{err}");
    assert!(!out_dir.exists(), "nothing ran, nothing was written");

    // A later scale: judged by the line through the scales already measured
    // (legacy at the whole of ci.toml needs about 1.6 GiB; 1 GiB is offered).
    let out = sweep("0.01,0.02,1", 1 << 30);
    assert_eq!(out.status.code(), Some(EXIT_REFUSED), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("preflight: `legacy`"), "{err}");
    assert!(
        !out_dir.join("model.json").exists(),
        "a refused sweep saves no model"
    );
}

// ------------------------------------------------------------- interruption

#[test]
fn ctrl_c_stops_the_child_keeps_a_partial_report_and_exits_130() {
    warm_cache();
    let tag = tag("sigint");
    let dir = scratch("safety-sigint").join("report");
    let mut child = tagged(&tag)
        .args(compare_args(&dir, &[]))
        .env("OOMLAB_TEST_PAUSE_IN_STAGE", "merge_dataset_profile")
        .spawn()
        .unwrap();
    wait_until(&mut child, "legacy reaches merge_dataset_profile", || {
        has_stage_start(&journal(&dir, "legacy"), "merge_dataset_profile")
    });
    assert!(
        live_tagged(&tag).iter().any(|(_, c)| c.contains("__child")),
        "the replay child runs"
    );
    signal(&child, libc::SIGINT);
    let (status, out) = finish(child);
    assert_eq!(status.code(), Some(EXIT_SIGINT), "{out}");
    assert_no_orphans(&tag);

    let report = read_report(&dir);
    assert_eq!(
        report["interrupted"]["signal"], 2,
        "{}",
        report["interrupted"]
    );
    assert_eq!(report["interrupted"]["signal_name"], "SIGINT");
    assert_eq!(
        report["interrupted"]["not_run"],
        serde_json::json!(["optimized"])
    );
    let legacy = run_of(&report, "legacy");
    let status = &legacy["status"];
    assert_eq!(status["kind"], "interrupted", "{status}");
    assert_eq!(status["signal"], 2);
    assert_eq!(status["stage"], "merge_dataset_profile");
    let stages = legacy["stages"].as_array().unwrap();
    let last = stages.last().unwrap();
    assert_eq!(last["name"], "merge_dataset_profile");
    assert!(
        last["exact_peak_bytes"].is_null(),
        "the stage never finished"
    );
    assert!(stages[..stages.len() - 1]
        .iter()
        .all(|s| s["exact_peak_bytes"].as_u64().is_some()));
    assert!(legacy["timeline"]["t_s"].as_array().unwrap().len() >= 2);

    // Every reader handles it: table, summary, pictures, the journal's end.
    assert!(
        out.contains("interrupted at merge_dataset_profile"),
        "{out}"
    );
    assert!(
        out.contains("interrupted by SIGINT: partial report"),
        "{out}"
    );
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.contains("**Interrupted by SIGINT**"), "{summary}");
    assert!(summary.contains("Not run: optimized."), "{summary}");
    for pic in ["timeline.png", "timeline.svg", "peaks.png", "peaks.svg"] {
        assert!(dir.join(pic).is_file(), "{pic} drawn");
    }
    let svg = std::fs::read_to_string(dir.join("timeline.svg")).unwrap();
    assert!(svg.contains("interrupted (SIGINT)"), "timeline legend");
    let lines = journal(&dir, "legacy");
    let end = lines.last().unwrap();
    assert_eq!(end["event"], "end");
    assert_eq!(end["status"]["kind"], "interrupted");
    // `oomlab plot` re-draws the partial report.
    let out = common::run(&["plot", path_str(&dir.join("report.json"))]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn sigterm_stops_a_recorded_command_and_every_process_it_started() {
    let tag = tag("sigterm");
    let dir = scratch("safety-sigterm").join("report");
    // A tree that tries to escape: a child in its own session (setsid), an
    // orphaned grandchild (reparented away from the tree) and a plain child.
    let script = "sleep 300 & setsid sleep 301 & (sleep 302 &); sleep 0.2; echo INFO ready; wait";
    let mut child = tagged(&tag)
        .args([
            "record",
            "--out",
            path_str(&dir),
            "--quiet",
            "--",
            "sh",
            "-c",
            script,
        ])
        .spawn()
        .unwrap();
    wait_until(&mut child, "the recorded tree is up", || {
        has_stage_start(&journal(&dir, "sh"), "ready")
            && live_tagged(&tag)
                .iter()
                .filter(|(_, c)| c.starts_with("sleep 30"))
                .count()
                == 3
    });
    signal(&child, libc::SIGTERM);
    let (status, out) = finish(child);
    assert_eq!(status.code(), Some(EXIT_SIGTERM), "{out}");
    assert_no_orphans(&tag);

    let report = read_report(&dir);
    assert_eq!(report["interrupted"]["signal_name"], "SIGTERM");
    let run = &report["runs"][0];
    assert_eq!(run["status"]["kind"], "interrupted", "{}", run["status"]);
    assert_eq!(run["status"]["signal"], 15);
    assert_eq!(run["status"]["stage"], "ready");
    assert!(out.contains("interrupted by SIGTERM"), "{out}");
}

#[test]
fn a_sigkill_of_oomlab_leaves_the_samples_on_disk_and_no_child() {
    warm_cache();
    let tag = tag("sigkill");
    let dir = scratch("safety-sigkill").join("report");
    let mut child = tagged(&tag)
        .args(compare_args(&dir, &[]))
        .env("OOMLAB_TEST_PAUSE_IN_STAGE", "merge_dataset_profile")
        .spawn()
        .unwrap();
    // Streamed while it runs: samples keep arriving in the paused stage.
    let mut stage_t = f64::NAN;
    wait_until(
        &mut child,
        "a second of samples in the paused stage",
        || {
            let lines = journal(&dir, "legacy");
            if let Some(l) = lines
                .iter()
                .find(|l| l["event"] == "stage_start" && l["stage"] == "merge_dataset_profile")
            {
                stage_t = l["t_s"].as_f64().unwrap();
            }
            samples(&lines).last().is_some_and(|t| *t > stage_t + 1.0)
        },
    );
    let seen = samples(&journal(&dir, "legacy")).len();
    signal(&child, libc::SIGKILL);
    let (status, _) = finish(child);
    assert_eq!(status.code(), None, "killed by a signal");
    // The kernel ends the child with oomlab (PR_SET_PDEATHSIG).
    assert_no_orphans(&tag);

    let lines = journal(&dir, "legacy");
    assert_eq!(lines[0]["event"], "start");
    assert_eq!(lines[0]["run"], "legacy");
    assert!(has_stage_start(&lines, "merge_dataset_profile"));
    let t = samples(&lines);
    assert!(
        t.len() >= seen,
        "{} samples on disk, {seen} seen before the kill",
        t.len()
    );
    assert!(t.windows(2).all(|w| w[0] <= w[1]), "samples in time order");
    assert!(
        !dir.join("report.json").exists(),
        "no report: oomlab was killed before it could write one"
    );
}

// -------------------------------------------------------- crashing children

#[test]
fn a_child_that_panics_yields_a_report_with_its_stderr_tail_and_exit_6() {
    warm_cache();
    let dir = scratch("safety-panic").join("report");
    let out = common::oomlab()
        .args(compare_args(&dir, &[]))
        .env("OOMLAB_TEST_PANIC_IN_STAGE", "copy")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(EXIT_CHILD_FAILED), "{}", text(&out));
    let report = read_report(&dir);
    let legacy = run_of(&report, "legacy");
    let status = &legacy["status"];
    assert_eq!(status["kind"], "failed", "{status}");
    assert_eq!(status["exit_code"], 101, "Rust's panic exit code");
    assert_eq!(status["stage"], "copy");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.contains("panicked at") && message.contains("OOMLAB_TEST_PANIC_IN_STAGE=copy"),
        "{message}"
    );
    let tail = legacy["stderr_tail"].as_array().unwrap();
    assert!(tail
        .iter()
        .any(|l| l.as_str().unwrap().contains("panicked at")));
    // The other strategy has no copy stage and completes.
    assert_eq!(run_of(&report, "optimized")["status"]["kind"], "completed");
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        summary.contains("**Failed** (exit code 101) in stage `copy`"),
        "{summary}"
    );
    assert!(summary.contains("stderr (last lines):"), "{summary}");
    assert!(text(&out).contains("failed at copy"), "{}", text(&out));
}

#[test]
fn a_recorded_command_that_exits_non_zero_yields_a_report_and_exit_6() {
    let dir = scratch("safety-nonzero").join("report");
    let out = common::run(&[
        "record",
        "--out",
        path_str(&dir),
        "--quiet",
        "--",
        "sh",
        "-c",
        "echo INFO working; echo 'MemoryError: out of patience' >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(EXIT_CHILD_FAILED), "{}", text(&out));
    let report = read_report(&dir);
    let status = &report["runs"][0]["status"];
    assert_eq!(status["kind"], "failed", "{status}");
    assert_eq!(status["exit_code"], 3);
    assert_eq!(status["message"], "MemoryError: out of patience");
}

// ------------------------------------------------------------- environment

#[test]
fn reports_never_carry_the_environment() {
    warm_cache();
    let dir = scratch("safety-env").join("report");
    let secrets = [
        ("FOO_SECRET", "hunter2"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY",
        ),
        ("DATABASE_URL", "postgres://admin:sw0rdfish@db/prod"),
    ];
    let mut cmd = common::oomlab();
    cmd.args(compare_args(&dir, &[]))
        .env("MAX_RANKING_SAMPLES", "60000");
    for (k, v) in secrets {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = read_report(&dir);
    // The documented knob is recorded, by value and source...
    assert_eq!(report["settings"]["max_ranking_samples"], 60000);
    assert_eq!(report["settings"]["max_ranking_samples_source"], "env");
    // ...and nothing else of the environment, in any file of the directory.
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for (k, v) in secrets {
            assert!(
                !text.contains(v),
                "{} holds {k}'s value",
                entry.path().display()
            );
            assert!(!text.contains(k), "{} names {k}", entry.path().display());
        }
        files += 1;
    }
    assert!(files >= 6, "report, summary, pictures and journals checked");
    let text = std::fs::read_to_string(dir.join("report.json")).unwrap();
    for (k, _) in std::env::vars() {
        let env_like = k
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if env_like && k.len() >= 4 && k != "MAX_RANKING_SAMPLES" && !k.starts_with("SIMILARITY_") {
            assert!(
                !text.contains(&format!("\"{k}\"")) && !text.contains(&format!("{k}=")),
                "report.json names the environment variable {k}"
            );
        }
    }
}

// ----------------------------------------------------------- hostile input

/// Runs oomlab and checks it exits 2 with a message holding every `expected`
/// piece, and never panics.
fn bad_input(args: &[&str], env: &[(&str, &str)], expected: &[&str]) {
    let mut cmd = common::oomlab();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(EXIT_BAD_INPUT), "{args:?}: {all}");
    assert!(!all.contains("panicked"), "{args:?}: {all}");
    for piece in expected {
        assert!(
            all.contains(piece),
            "{args:?}: expected {piece:?} in:\n{all}"
        );
    }
}

#[test]
fn hostile_scenario_files_and_flags_exit_2_naming_them() {
    let dir = scratch("safety-hostile-scenarios");
    let write = |name: &str, bytes: &[u8]| -> String {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        path_str(&p).to_string()
    };
    let good = std::fs::read_to_string("scenarios/ci.toml").unwrap();
    // (file, its bytes, what the error must name besides the file)
    let cases: [(&str, Vec<u8>, &[&str]); 6] = [
        ("empty.toml", Vec::new(), &["`name`"]),
        (
            "binary.toml",
            vec![0xff, 0xfe, 0x00, 0x9c, 0x80, 0x01],
            &["UTF-8"],
        ),
        (
            "huge.toml",
            good.replace("rows = 200_000", "rows = 99999999999999999999")
                .into_bytes(),
            &[],
        ),
        (
            "big.toml",
            good.replace("rows = 200_000", "rows = 5_000_000_000")
                .into_bytes(),
            &["ranking_samples.rows", "5000000000"],
        ),
        (
            "nan.toml",
            good.replace("label_null_share = 0.05", "label_null_share = nan")
                .into_bytes(),
            &["label_null_share", "NaN"],
        ),
        (
            "both.toml",
            format!("{good}\n[similarity]\nitems = 10\ndimension = 4\n").into_bytes(),
            &["not both"],
        ),
    ];
    for (name, bytes, pieces) in cases {
        let path = write(name, &bytes);
        let mut expected = vec![name];
        expected.extend_from_slice(pieces);
        bad_input(&["compare", "--scenario", &path], &[], &expected);
    }
    bad_input(
        &["compare", "--scenario", path_str(&dir)],
        &[],
        &["cannot read scenario file"],
    );

    for scale in ["0", "nan", "inf", "1000"] {
        bad_input(
            &["compare", "--scale", scale],
            &[],
            &["--scale", "expected a factor in (0, 100]"],
        );
    }
    let ci = ["--scenario", "scenarios/ci.toml", "--cache-dir", &cache()];
    let with = |extra: &[&'static str]| -> Vec<String> {
        let mut a = vec!["compare".to_string()];
        a.extend(ci.iter().map(|s| s.to_string()));
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let cases: [(&[&str], &[&str]); 8] = [
        (&["--interval", "fast"], &["--interval fast", "10ms"]),
        (
            &["--interval", "0ms"],
            &["--interval 0ms", "between 0.1ms and 60s"],
        ),
        (
            &["--memory-limit", "800XB"],
            &["--memory-limit 800XB", "unknown unit"],
        ),
        (
            &["--memory-limit", "0"],
            &["--memory-limit 0", "at least one byte"],
        ),
        (&["--sampling", "bogus"], &["bogus", "uniform, capped"]),
        (&["--max-ranking-samples", "-5"], &["-5"]),
        (&["--max-ranking-samples", "lots"], &["lots"]),
        (&["--limit-by", "magic"], &["magic"]),
    ];
    for (extra, expected) in cases {
        let args = with(extra);
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        bad_input(&args, &[], expected);
    }
    let mut run = vec!["run"];
    run.extend_from_slice(&ci);
    bad_input(
        &[&run[..], &["--strategy", "nope"]].concat(),
        &[],
        &["unknown strategy `nope`", "legacy, optimized"],
    );
    bad_input(
        &[&run[..], &["--strategy", "legacy,,optimized"]].concat(),
        &[],
        &["unknown strategy ``"],
    );
    let compare: Vec<&str> = [&["compare"][..], &ci[..]].concat();
    bad_input(
        &compare,
        &[("MAX_RANKING_SAMPLES", "-3")],
        &["MAX_RANKING_SAMPLES", "\"-3\""],
    );
}

#[test]
fn an_unwritable_report_directory_exits_2_before_anything_runs() {
    warm_cache();
    let dir = scratch("safety-unwritable");
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out_dir = file.join("report");
    let args = compare_args(&out_dir, &[]);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    bad_input(
        &args,
        &[],
        &["a-file/report", "cannot write the report directory"],
    );
}

#[test]
fn hostile_reports_for_plot_exit_2_or_draw() {
    let dir = scratch("safety-hostile-reports");
    let write = |name: &str, bytes: &[u8]| -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    bad_input(
        &["plot", path_str(&dir.join("missing.json"))],
        &[],
        &["missing.json", "cannot read report"],
    );
    let garbage = write("garbage.json", &[0x00, 0xff, b'{', 0x80]);
    bad_input(
        &["plot", path_str(&garbage)],
        &[],
        &["garbage.json", "not a valid oomlab report"],
    );
    let truncated = write("truncated.json", br#"{"schema_version": 1, "runs": ["#);
    bad_input(
        &["plot", path_str(&truncated)],
        &[],
        &["truncated.json", "JSON error"],
    );
    let future = write("future.json", br#"{"schema_version": 99}"#);
    bad_input(
        &["plot", path_str(&future)],
        &[],
        &["future.json", "schema_version is 99"],
    );
    let shape = write("shape.json", br#"{"schema_version": 1, "runs": 3}"#);
    bad_input(
        &["plot", path_str(&shape)],
        &[],
        &["shape.json", "not a valid oomlab report"],
    );
    let deep = write(
        "deep.json",
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).as_bytes(),
    );
    bad_input(
        &["plot", path_str(&deep)],
        &[],
        &["deep.json", "recursion limit"],
    );
    bad_input(
        &["plot", path_str(&truncated), "--budget", "lots"],
        &[],
        &["--budget lots"],
    );

    // A real report with absurd figures draws (the fuzzers' two crashers).
    let (mut report, _) =
        common::replay("safety-absurd-source", "run", &["--strategy", "optimized"]);
    report["runs"][0]["stages"][1]["start_s"] = serde_json::json!(5.958030845605301e31);
    report["runs"][0]["stages"][2]["name"] = serde_json::json!("");
    report["runs"][0]["timeline"]["t_s"][3] = serde_json::json!(-1e300);
    report["runs"][0]["timeline"]["rss_bytes"][3] = serde_json::json!(u64::MAX);
    let absurd = write("absurd.json", &serde_json::to_vec(&report).unwrap());
    let out = common::run(&[
        "plot",
        path_str(&absurd),
        "--out",
        path_str(&dir.join("pics")),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(dir.join("pics/timeline.png").is_file() && dir.join("pics/peaks.svg").is_file());
}

#[test]
fn a_chatty_recorded_command_gets_its_report_without_pictures() {
    // 600 INFO lines are 600 stages: more than the pictures show (their
    // layout would take minutes and the peaks picture hundreds of MB).
    let dir = scratch("safety-chatty").join("report");
    let out = common::run(&[
        "record",
        "--out",
        path_str(&dir),
        "--quiet",
        "--",
        "sh",
        "-c",
        "i=0; while [ $i -lt 600 ]; do i=$((i+1)); echo \"INFO step $i\"; done",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("pictures not drawn: 601 stages are too many to draw (at most 500)"),
        "{all}"
    );
    let report = read_report(&dir);
    assert_eq!(report["runs"][0]["stages"].as_array().unwrap().len(), 601);
    assert!(!dir.join("timeline.png").exists() && !dir.join("peaks.png").exists());
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        !summary.contains(".png"),
        "no link to a picture that was not drawn"
    );
    bad_input(
        &["plot", path_str(&dir.join("report.json"))],
        &[],
        &["601 stages are too many to draw"],
    );
}

#[test]
fn hostile_logs_and_commands_exit_2_or_are_described() {
    let dir = scratch("safety-hostile-logs");
    bad_input(
        &[
            "postmortem",
            "--log",
            path_str(&dir.join("missing.log")),
            "--out",
            path_str(&dir.join("pm")),
        ],
        &[],
        &["missing.log"],
    );
    bad_input(
        &[
            "postmortem",
            "--log",
            path_str(&dir),
            "--out",
            path_str(&dir.join("pm")),
        ],
        &[],
        &["safety-hostile-logs"],
    );
    bad_input(
        &[
            "postmortem",
            "--log",
            "tests/fixtures/logs/two_runs.log",
            "--memory-limit",
            "150 gigs",
            "--out",
            path_str(&dir.join("pm")),
        ],
        &[],
        &["--memory-limit 150 gigs"],
    );
    bad_input(
        &[
            "postmortem",
            "--log",
            "tests/fixtures/logs/two_runs.log",
            "--docker-stats",
            path_str(&dir.join("nope.txt")),
            "--out",
            path_str(&dir.join("pm")),
        ],
        &[],
        &["nope.txt"],
    );
    // Binary garbage, an empty log and a Latin-1 one are described, exit 0.
    for log in ["garbage.bin", "empty.log", "latin1.log"] {
        let out = common::run(&[
            "postmortem",
            "--log",
            &format!("tests/fixtures/logs/{log}"),
            "--out",
            path_str(&dir.join(log)),
        ]);
        assert_eq!(out.status.code(), Some(0), "{log}: {}", text(&out));
        assert!(dir.join(log).join("postmortem.md").is_file());
    }

    bad_input(
        &[
            "record",
            "--out",
            path_str(&dir.join("r1")),
            "--",
            "/nonexistent/oomlab-no-such-command",
        ],
        &[],
        &["cannot run `/nonexistent/oomlab-no-such-command`"],
    );
    let not_exec = dir.join("not-executable.sh");
    std::fs::write(&not_exec, "#!/bin/sh\necho hi\n").unwrap();
    bad_input(
        &[
            "record",
            "--out",
            path_str(&dir.join("r2")),
            "--",
            path_str(&not_exec),
        ],
        &[],
        &["not-executable.sh", "ermission denied"],
    );
    bad_input(
        &["record", "--out", path_str(&dir.join("r3"))],
        &[],
        &["CMD"],
    );
    bad_input(
        &[
            "record",
            "--stage-pattern",
            "(unclosed",
            "--out",
            path_str(&dir.join("r4")),
            "--",
            "true",
        ],
        &[],
        &["--stage-pattern \"(unclosed\""],
    );
    bad_input(
        &[
            "record",
            "--interval",
            "-1s",
            "--out",
            path_str(&dir.join("r5")),
            "--",
            "true",
        ],
        &[],
        &["-1"],
    );
}

#[test]
fn hostile_models_and_budget_flags_exit_2() {
    let dir = scratch("safety-hostile-models");
    let model = dir.join("model.json");
    let m = path_str(&model);
    bad_input(
        &["check", "--memory", "150GB", "--model", m],
        &[],
        &["model.json", "cannot read the model", "oomlab sweep"],
    );
    std::fs::write(&model, b"{\"schema_version\": 1,").unwrap();
    bad_input(
        &[
            "recommend",
            "--memory",
            "150GB",
            "--model",
            m,
            "--no-coverage",
        ],
        &[],
        &["model.json", "not a valid oomlab model"],
    );
    bad_input(
        &["check", "--headroom", "2", "--model", m],
        &[],
        &["--headroom 2", "[0, 0.9]"],
    );
    bad_input(
        &["check", "--strategy", "nope", "--model", m],
        &[],
        &["--strategy nope", "legacy, optimized"],
    );
    bad_input(
        &["recommend", "--sampling", "odd", "--model", m],
        &[],
        &["odd", "uniform, capped"],
    );
    bad_input(
        &["recommend", "--memory", "-1GiB", "--model", m],
        &[],
        &["-1"],
    );
}
