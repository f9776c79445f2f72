//! Issue 7: `--memory-limit` kills a strategy as a container's OOM killer does.
//!
//! On ci.toml the legacy strategy peaks near 1.6 GiB (its dataset merge alone
//! passes 800 MiB) and the optimized one near 340 MiB, so under 800 MiB legacy
//! is killed in a merge and optimized completes. A killed strategy makes the
//! harness exit with code 5 (`Exit::OomKilled`), with the report complete.

mod common;

use std::path::Path;

use common::{cache_dir, run, run_of, scratch, u};

const LIMIT: &str = "800MiB";
const LIMIT_BYTES: u64 = 800 << 20;
/// Documented exit code when a strategy was killed for crossing its limit.
const EXIT_OOM_KILLED: i32 = 5;

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Runs `oomlab <args> --scenario ci.toml ...` into a fresh directory; returns
/// the exit code, stdout, stderr and the report (when one was written).
fn replay(name: &str, args: &[&str]) -> (Option<i32>, String, String, Option<serde_json::Value>) {
    let out = scratch(name);
    let cache = cache_dir();
    let mut all: Vec<&str> = args.to_vec();
    all.extend_from_slice(&[
        "--scenario",
        "scenarios/ci.toml",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let output = run(&all);
    let report = std::fs::read_to_string(out.join("report.json"))
        .ok()
        .map(|t| serde_json::from_str(&t).expect("report is JSON"));
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        report,
    )
}

/// Checks a killed legacy run: -9, a merge stage, time and RSS, and a timeline
/// that runs up to the kill with every finished stage measured.
fn assert_killed_in_a_merge(legacy: &serde_json::Value, by: &str) {
    let status = &legacy["status"];
    assert_eq!(status["kind"], "killed", "{status}");
    assert_eq!(status["signal"], 9);
    assert_eq!(status["by"], by, "{status}");
    let stage = status["stage"].as_str().expect("the stage is named");
    assert!(
        stage.starts_with("merge"),
        "killed in {stage}, expected a merge"
    );
    let t_kill = f(&status["t_s"]);
    assert!(t_kill > 0.0);
    assert!(u(&status["rss_bytes"]) > 100 << 20, "{status}");

    let stages = legacy["stages"].as_array().unwrap();
    let last = stages.last().unwrap();
    assert_eq!(last["name"], stage, "the killed stage closes the list");
    assert!(
        last["exact_peak_bytes"].is_null(),
        "a killed stage has no exact peak"
    );
    for s in &stages[..stages.len() - 1] {
        assert!(u(&s["exact_peak_bytes"]) > 0, "{} measured", s["name"]);
    }
    let names: Vec<&str> = stages.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(
        &names[..3],
        ["load", "copy", "dropna"],
        "stages before the kill"
    );

    let t = legacy["timeline"]["t_s"].as_array().unwrap();
    assert!(t.len() > 10, "the timeline was sampled up to the kill");
    let last_t = f(t.last().unwrap());
    assert!(
        last_t <= t_kill + 0.5,
        "timeline ends at the kill ({last_t} vs {t_kill})"
    );
    assert!(
        last_t >= f(&last["start_s"]),
        "timeline reaches into the killed stage"
    );

    let limit = &legacy["memory_limit"];
    assert_eq!(u(&limit["limit_bytes"]), LIMIT_BYTES);
}

#[test]
fn legacy_is_killed_in_a_merge_and_optimized_completes_under_the_same_limit() {
    let (code, stdout, stderr, report) =
        replay("limit-compare", &["compare", "--memory-limit", LIMIT]);
    assert_eq!(code, Some(EXIT_OOM_KILLED), "{stdout}\n{stderr}");
    let report = report.expect("the report is written even when a strategy was killed");

    let legacy = run_of(&report, "legacy");
    let by = legacy["memory_limit"]["enforced_by"].as_str().unwrap();
    let expected_by = if by.starts_with("cgroup") {
        "cgroup"
    } else {
        "watchdog"
    };
    assert_killed_in_a_merge(legacy, expected_by);

    let optimized = run_of(&report, "optimized");
    assert_eq!(
        optimized["status"]["kind"], "completed",
        "{}",
        optimized["status"]
    );
    assert!(u(&optimized["peak_bytes"]) < LIMIT_BYTES);
    assert_eq!(optimized["memory_limit"]["enforced_by"], by);

    assert!(stdout.contains("OOM-killed at merge"), "table: {stdout}");
    assert!(stdout.contains("legacy was killed (-9)"), "{stdout}");
}

#[test]
fn the_watchdog_kills_at_the_first_sample_over_the_limit() {
    let (code, stdout, stderr, report) = replay(
        "limit-watchdog",
        &[
            "run",
            "--strategy",
            "legacy",
            "--memory-limit",
            LIMIT,
            "--limit-by",
            "watchdog",
        ],
    );
    assert_eq!(code, Some(EXIT_OOM_KILLED), "{stdout}\n{stderr}");
    let report = report.unwrap();
    let legacy = run_of(&report, "legacy");
    assert_killed_in_a_merge(legacy, "watchdog");
    assert_eq!(legacy["memory_limit"]["enforced_by"], "watchdog");
    // The watchdog kills on the sample that crossed the limit.
    assert!(u(&legacy["status"]["rss_bytes"]) >= LIMIT_BYTES);
    let rss = legacy["timeline"]["rss_bytes"].as_array().unwrap();
    let over = rss.iter().filter(|r| u(r) >= LIMIT_BYTES).count();
    assert_eq!(
        over, 1,
        "exactly one sample over the limit: the one that killed it"
    );
}

/// Whether this machine lets oomlab make a memory cgroup (v2 or v1).
fn cgroup_usable() -> bool {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    own.lines().any(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, c, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        c.split(',').any(|x| x == "memory")
            && Path::new(&format!(
                "/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"
            ))
            .exists()
    }) || Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

#[test]
fn a_cgroup_gives_a_kernel_kill_or_a_clear_refusal() {
    let (code, stdout, stderr, report) = replay(
        "limit-cgroup",
        &[
            "run",
            "--strategy",
            "legacy",
            "--memory-limit",
            LIMIT,
            "--limit-by",
            "cgroup",
        ],
    );
    if code == Some(2) {
        // No cgroup can be made here: the refusal says so and names the way out.
        assert!(stderr.contains("no memory cgroup"), "{stderr}");
        assert!(!cgroup_usable() || stderr.contains("cgroup"), "{stderr}");
        return;
    }
    assert_eq!(code, Some(EXIT_OOM_KILLED), "{stdout}\n{stderr}");
    let report = report.unwrap();
    let legacy = run_of(&report, "legacy");
    assert_killed_in_a_merge(legacy, "cgroup");
    let limit = &legacy["memory_limit"];
    assert!(limit["enforced_by"].as_str().unwrap().starts_with("cgroup"));
    assert!(u(&limit["oom_kills"]) >= 1);
    // The kernel held the cgroup at its limit (it counts page cache too).
    let peak = u(&limit["cgroup_peak_bytes"]);
    assert!(
        peak <= LIMIT_BYTES && peak > LIMIT_BYTES / 2,
        "cgroup peak {peak}"
    );
}

#[test]
fn a_bad_limit_is_bad_input_and_no_limit_changes_nothing() {
    let (code, _, stderr, _) = replay("limit-bad", &["compare", "--memory-limit", "800XB"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("800XB"), "{stderr}");

    let (code, stdout, stderr, report) = replay("limit-none", &["run", "--strategy", "optimized"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let report = report.unwrap();
    let optimized = run_of(&report, "optimized");
    assert!(
        optimized.get("memory_limit").is_none(),
        "no limit, no limit record"
    );
}
