//! Shared helpers for integration tests: run the real binary, read its report.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The oomlab binary under test: the one cargo built for these tests, or
/// `$OOMLAB_BIN` when set (a copy of a build, where several checkouts share
/// one target directory and overwrite each other's binary).
pub fn bin() -> PathBuf {
    std::env::var_os("OOMLAB_BIN")
        .filter(|b| !b.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_oomlab")))
}

/// The oomlab binary under test ([`bin`]), run from the repository root.
pub fn oomlab() -> Command {
    let mut cmd = Command::new(bin());
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd.env_remove("MAX_RANKING_SAMPLES");
    cmd
}

/// A data cache shared by all tests of a run (generation happens once per scenario).
pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("oomlab-test-cache")
}

/// Runs oomlab with `args`, returning its output.
pub fn run(args: &[&str]) -> Output {
    oomlab().args(args).output().expect("oomlab runs")
}

/// A fresh directory under the target's tmp dir.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Runs `command` (`compare`, `run`) on ci.toml into a fresh directory and
/// returns the report JSON and the directory.
pub fn replay(name: &str, command: &str, extra: &[&str]) -> (serde_json::Value, PathBuf) {
    let out = scratch(name);
    let cache = cache_dir();
    let mut args = vec![
        command,
        "--scenario",
        "scenarios/ci.toml",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let output = run(&args);
    assert!(
        output.status.success(),
        "oomlab {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(out.join("report.json")).expect("report.json written");
    (serde_json::from_str(&text).expect("report is JSON"), out)
}

/// The run of `strategy` in a report.
pub fn run_of<'a>(report: &'a serde_json::Value, strategy: &str) -> &'a serde_json::Value {
    report["runs"]
        .as_array()
        .and_then(|runs| runs.iter().find(|r| r["strategy"] == strategy))
        .unwrap_or_else(|| panic!("no run of {strategy}"))
}

/// The stage `name` of a run.
pub fn stage<'a>(run: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    run["stages"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no stage {name}"))
}

/// Runs `oomlab fidelity` on ci.toml at scales 0.25, 0.5 and 1 with the pandas
/// reference run `repeat` times per point, into a fresh directory; returns
/// the directory and stdout (panics, with both streams, when it fails).
pub fn fidelity_ci(name: &str, repeat: u32) -> (PathBuf, String) {
    let out = scratch(name);
    let cache = cache_dir();
    let repeat = repeat.to_string();
    let output = run(&[
        "fidelity",
        "--scenario",
        "scenarios/ci.toml",
        "--scales",
        "0.25,0.5,1",
        "--repeat",
        &repeat,
        "--cache-dir",
        cache.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "fidelity failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (out, stdout)
}

/// A command's stdout and stderr together, for assertions and failure messages.
pub fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// [`cache_dir`] as a command-line argument.
pub fn cache() -> String {
    cache_dir().display().to_string()
}

/// A path as a command-line argument (test paths are UTF-8).
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A report figure that must be a whole number.
pub fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The run of `strategy` in a report, checked to have completed with exactly
/// `stages`, each with an exact (kernel) peak.
pub fn completed_with_stages<'a>(
    report: &'a serde_json::Value,
    strategy: &str,
    stages: &[&str],
) -> &'a serde_json::Value {
    let run = run_of(report, strategy);
    assert_eq!(run["status"]["kind"], "completed", "{strategy}");
    let names: Vec<&str> = run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, stages, "{strategy} stages");
    for s in run["stages"].as_array().unwrap() {
        assert!(
            u(&s["exact_peak_bytes"]) > 0,
            "{strategy}/{} has no exact peak",
            s["name"]
        );
    }
    run
}
