//! Issue 15 acceptance: the command gate on a pandas pipeline's own code,
//! through the real binary.
//!
//! The pipeline is `tests/fixtures/gate_pipeline.py`, the optimized
//! ranking prep's shape on data built in memory from `{rows}` (a second a
//! run), so the whole file stays within a couple of minutes on two cores.
//! The heavy tests take a lock: run side by side they would measure each
//! other's CPU contention, not the pipeline.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use common::{path_str, scratch, text};

static HEAVY: Mutex<()> = Mutex::new(());

const PIPELINE: &str = "tests/fixtures/gate_pipeline.py";
const STAGES: &str = r"^INFO \[stage\] (\S+)$";
const PRODUCTION_ROWS: &str = "8532146";

/// The original line the regressions replace.
const DROPNA: &str =
    "    working = samples.dropna(subset=[\"label\"])  # no copy first\n    del samples\n";

/// The pre-v2 code: a copy first, and `samples` held through the merges.
const COPY: &str =
    "    working = samples.copy()\n    working = working.dropna(subset=[\"label\"])\n";

fn oomlab(dir: &Path) -> Command {
    let mut cmd = common::oomlab();
    cmd.current_dir(dir);
    cmd.env_remove("GITHUB_STEP_SUMMARY");
    // pyarrow's own pool moves stage peaks by 10-35 MiB from run to run;
    // the system allocator's by about 1 MiB (docs/gate.md).
    cmd.env("ARROW_DEFAULT_MEMORY_POOL", "system");
    cmd
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn pipeline_source() -> String {
    std::fs::read_to_string(repo().join(PIPELINE)).expect("the test pipeline")
}

/// A patched copy of the pipeline in `dir`, returned as a path argument.
fn patched(dir: &Path, name: &str, from: &str, to: &str) -> String {
    let source = pipeline_source();
    assert!(source.contains(from), "the pipeline no longer has {from:?}");
    let path = dir.join(name);
    std::fs::write(&path, source.replace(from, to)).unwrap();
    path_str(&path).to_string()
}

/// Blesses `script` at three sizes into a fresh baseline.
fn bless(dir: &Path, script: &str) -> PathBuf {
    let baseline = dir.join("baseline.json");
    let out = oomlab(&repo())
        .args([
            "gate",
            "--baseline",
            path_str(&baseline),
            "--update",
            "--quiet",
            "--rows",
            "20000,40000,80000",
            "--production-rows",
            PRODUCTION_ROWS,
            "--stage-pattern",
            STAGES,
            "--",
            "python3",
            script,
            "{rows}",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "bless failed:\n{}", text(&out));
    baseline
}

/// Judges the baseline with `extra` flags; returns the output and the JSON result.
fn gate(dir: &Path, baseline: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let json = dir.join("result.json");
    let _ = std::fs::remove_file(&json);
    let mut args = vec![
        "gate",
        "--baseline",
        path_str(baseline),
        "--quiet",
        "--json",
        path_str(&json),
    ];
    args.extend_from_slice(extra);
    let out = oomlab(&repo()).args(&args).output().unwrap();
    let value = std::fs::read(&json)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    (out, value)
}

/// Points the baseline's only command entry at another script (same sizes
/// and figures): the regressed pipeline is judged against the blessed one.
fn retarget(baseline: &Path, script: &str, to: &Path) {
    let mut b: serde_json::Value =
        serde_json::from_slice(&std::fs::read(baseline).unwrap()).unwrap();
    b["commands"][0]["argv"][1] = serde_json::Value::from(script);
    std::fs::write(to, serde_json::to_vec_pretty(&b).unwrap()).unwrap();
}

/// Each stage's peak and slope with their spreads, as the gate measured them.
fn spreads(result: &serde_json::Value) -> String {
    let mut out = String::new();
    for s in result["commands"][0]["stages"]
        .as_array()
        .into_iter()
        .flatten()
    {
        out += &format!(
            "  {:<22} peak {:>5.1} MiB (spread {:>5.2} MiB)  slope {:>6.0} B/row (was {:>6.0}, spread {:>5.0})  {}\n",
            s["stage"].as_str().unwrap_or(""),
            s["peak"]["now"].as_f64().unwrap_or(0.0) / 1048576.0,
            s["peak_spread_bytes"].as_f64().unwrap_or(0.0) / 1048576.0,
            s["slope"]["now_bytes_per_row"].as_f64().unwrap_or(0.0),
            s["slope"]["baseline_bytes_per_row"].as_f64().unwrap_or(0.0),
            s["slope"]["spread_bytes_per_row"].as_f64().unwrap_or(0.0),
            s["verdict"].as_str().unwrap_or("")
        );
    }
    out
}

#[test]
fn unchanged_code_passes_and_regressed_code_fails_naming_the_stages() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("gate-command-pipeline");
    let baseline = bless(&dir, PIPELINE);
    let blessed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&baseline).unwrap()).unwrap();
    let entry = &blessed["commands"][0];
    assert_eq!(entry["argv"][2], "{rows}");
    assert_eq!(entry["rows"], serde_json::json!([20000, 40000, 80000]));
    let merge = entry["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "merge_dataset_profile")
        .expect("a merge_dataset_profile stage");
    assert!(merge["bytes_per_row"].as_f64().unwrap() > 300.0, "{merge}");

    // Unchanged code passes, run after run.
    for i in 1..=2 {
        let (out, result) = gate(&dir, &baseline, &[]);
        eprintln!("unchanged run {i}:\n{}", spreads(&result));
        assert_eq!(
            out.status.code(),
            Some(0),
            "unchanged run {i}:\n{}",
            text(&out)
        );
        assert_eq!(result["passed"], true);
    }

    // samples.copy() re-added before the merges: the merges' per-row cost rises.
    let copied = patched(&dir, "with_copy.py", DROPNA, COPY);
    let copy_baseline = dir.join("copy-baseline.json");
    retarget(&baseline, &copied, &copy_baseline);
    let (out, result) = gate(&dir, &copy_baseline, &["--runs", "2"]);
    eprintln!("copy re-added:\n{}", spreads(&result));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("merge_dataset_profile:") && stdout.contains("B/row (+"),
        "the verdict names the stage and its per-row rise:\n{stdout}"
    );
    assert!(stdout.contains("at 8,532,146 rows"), "{stdout}");
    let regressed: Vec<&str> = result["regressed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["stage"].as_str().unwrap())
        .collect();
    assert!(
        regressed.contains(&"merge_dataset_profile"),
        "{regressed:?}"
    );

    // Every profile column merged instead of the numeric ones.
    let all_columns = patched(
        &dir,
        "all_columns.py",
        "    profile_slim = profile[[\"dataset_id\"] + numeric_cols]\n",
        "    profile_slim = profile\n",
    );
    let all_baseline = dir.join("all-columns-baseline.json");
    retarget(&baseline, &all_columns, &all_baseline);
    let (out, result) = gate(&dir, &all_baseline, &["--runs", "2"]);
    eprintln!("all profile columns:\n{}", spreads(&result));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("merge_dataset_profile:"),
        "{}",
        text(&out)
    );
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", text(&out));
}

fn against(dir: &Path) -> Output {
    oomlab(dir)
        .args([
            "gate",
            "--against",
            "HEAD~1",
            "--quiet",
            "--runs",
            "2",
            "--rows",
            "20000,80000",
            "--production-rows",
            PRODUCTION_ROWS,
            "--stage-pattern",
            STAGES,
            "--",
            "python3",
            "pipeline.py",
            "{rows}",
        ])
        .output()
        .unwrap()
}

fn worktrees_left(dir: &Path) -> usize {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["worktree", "list", "--porcelain"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("worktree "))
        .count()
}

#[test]
fn against_the_previous_commit_catches_a_copy_and_passes_a_comment() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("gate-command-against");
    git(&dir, &["init", "--quiet"]);
    std::fs::write(dir.join("pipeline.py"), pipeline_source()).unwrap();
    git(&dir, &["add", "pipeline.py"]);
    git(&dir, &["commit", "--quiet", "-m", "pipeline"]);
    std::fs::write(
        dir.join("pipeline.py"),
        pipeline_source().replace(DROPNA, COPY),
    )
    .unwrap();
    git(&dir, &["commit", "--quiet", "-am", "re-add samples.copy()"]);

    let out = against(&dir);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("merge_dataset_profile:"), "{stdout}");
    assert!(stdout.contains("HEAD~1"), "{stdout}");
    assert_eq!(worktrees_left(&dir), 1, "the base worktree was not removed");

    let source = std::fs::read_to_string(dir.join("pipeline.py")).unwrap();
    std::fs::write(
        dir.join("pipeline.py"),
        source.replace("def main()", "# Entry point.\ndef main()"),
    )
    .unwrap();
    git(&dir, &["commit", "--quiet", "-am", "a comment"]);
    let out = against(&dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(worktrees_left(&dir), 1, "the base worktree was not removed");

    // An unknown revision is bad input, and leaves nothing behind.
    let out = oomlab(&dir)
        .args(["gate", "--against", "no-such-rev", "--production-rows", "1"])
        .args(["--", "python3", "pipeline.py", "{rows}"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(worktrees_left(&dir), 1);
}

/// A valid baseline with one command entry, written without running anything.
fn hand_written() -> serde_json::Value {
    serde_json::json!({
        "schema_version": 1,
        "kind": "oomlab-gate-baseline",
        "oomlab_version": "0.1.0",
        "created_at": "2026-11-27T00:00:00Z",
        "machine": {"cpus": 2, "total_memory_bytes": 1, "kernel": "k"},
        "allocator": "a",
        "scenarios": [],
        "commands": [{
            "argv": ["python3", PIPELINE, "{rows}"],
            "rows": [20000, 80000],
            "scales": [1.0, 1.0],
            "stage_pattern": STAGES,
            "production_rows": 8532146,
            "runs": 3,
            "stages": [{
                "name": "merge_dataset_profile",
                "peak_bytes": 200000000u64,
                "peak_runs_bytes": [200000000u64],
                "bytes_per_row": 1100.0,
                "fixed_bytes": 120000000.0
            }]
        }]
    })
}

#[test]
fn a_corrupt_or_hand_edited_command_entry_exits_2_naming_the_key() {
    let dir = scratch("gate-command-corrupt");
    let path = dir.join("baseline.json");
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit, &str); 5] = [
        (
            "typo",
            |b| {
                let s = &mut b["commands"][0]["stages"][0];
                s["slope_tolerance"] = serde_json::json!(20);
            },
            "slope_tolerance",
        ),
        (
            "missing",
            |b| {
                b["commands"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("production_rows");
            },
            "production_rows",
        ),
        (
            "one size",
            |b| b["commands"][0]["rows"] = serde_json::json!([80000]),
            "rows",
        ),
        (
            "wrong type",
            |b| b["commands"][0]["stages"][0]["bytes_per_row"] = serde_json::json!("many"),
            "bytes_per_row",
        ),
        (
            "bad tolerance",
            |b| b["commands"][0]["stages"][0]["peak_tolerance_pct"] = serde_json::json!(-3),
            "peak_tolerance_pct",
        ),
    ];
    for (what, edit, key) in cases {
        let mut b = hand_written();
        edit(&mut b);
        std::fs::write(&path, serde_json::to_vec_pretty(&b).unwrap()).unwrap();
        let out = oomlab(&repo())
            .args(["gate", "--baseline", path_str(&path)])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{what}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{what}: {key} not named:\n{stderr}");
        assert!(stderr.contains("commands[0]"), "{what}:\n{stderr}");
    }
    // Truncated JSON.
    std::fs::write(&path, b"{\"commands\": [").unwrap();
    let out = oomlab(&repo())
        .args(["gate", "--baseline", path_str(&path)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // A command without --update or --against is refused, not ignored.
    let out = oomlab(&repo())
        .args([
            "gate",
            "--baseline",
            path_str(&path),
            "--",
            "python3",
            "x.py",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn a_failed_point_under_gate_says_what_failed_not_that_a_sweep_stopped() {
    let dir = scratch("gate-command-failed-point");
    let path = dir.join("baseline.json");
    let mut b = hand_written();
    b["commands"][0]["argv"] = serde_json::json!(["sh", "-c", "echo boom >&2; exit 3", "{rows}"]);
    std::fs::write(&path, serde_json::to_vec_pretty(&b).unwrap()).unwrap();
    let out = oomlab(&repo())
        .args(["gate", "--baseline", path_str(&path), "--quiet"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("sweep stopped"), "{stderr}");
    assert!(!stderr.contains("no model written"), "{stderr}");
    assert!(
        stderr.contains("point failed: the command did not complete at 20,000 rows"),
        "{stderr}"
    );
    assert!(
        stderr.contains("boom"),
        "its stderr is not shown:\n{stderr}"
    );
}

/// A baseline's command run by an interpreter without pandas is bad input
/// (exit 2) naming the interpreter, the module and the README line that
/// installs it, not a failed pipeline with a traceback (exit 6).
#[test]
fn an_interpreter_without_pandas_exits_2_naming_it_and_the_install_line() {
    let dir = scratch("gate-command-no-pandas");
    let venv = dir.join("venv");
    let made = std::process::Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    let python = venv.join("bin/python");
    let path = dir.join("baseline.json");
    let mut b = hand_written();
    b["commands"][0]["argv"] = serde_json::json!([path_str(&python), PIPELINE, "{rows}"]);
    std::fs::write(&path, serde_json::to_vec_pretty(&b).unwrap()).unwrap();
    let out = oomlab(&repo())
        .args(["gate", "--baseline", path_str(&path), "--quiet"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(path_str(&python)), "{stderr}");
    // The fixture imports numpy first, then pandas: whichever is missing first.
    assert!(
        stderr.contains("cannot import `numpy`") || stderr.contains("cannot import `pandas`"),
        "{stderr}"
    );
    assert!(stderr.contains("README.md:"), "{stderr}");
    assert!(!stderr.contains("Traceback"), "{stderr}");
}
