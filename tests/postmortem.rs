//! Issue 7: `oomlab postmortem` on the fixture logs, through the real binary.
//!
//! The fixtures (tests/fixtures/logs/, written by make_fixtures.py) are the
//! shapes a killed pipeline leaves: an Airflow task log of the pre-v2 code
//! killed mid-merge, docker-compose output of v2 killed by the kernel, the
//! write-up's own v2 log that completes, two runs, a kill then a retry, a kill
//! before any pipeline line, `docker stats` output, and inputs that must not
//! break it (empty, binary, Latin-1, nothing recognizable). Each test checks
//! what the write-up asks for when an OOM happens again: the rows of
//! `ranking_samples`, the columns and rows of `dataset_profile`, the
//! `MAX_RANKING_SAMPLES` in force, and the 50 log lines before and after the
//! kill, plus the stage it died in and the sizes.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{cache_dir, oomlab, run, scratch, u};
use serde_json::Value;

const EXIT_BAD_INPUT: i32 = 2;
const GIB: f64 = (1u64 << 30) as f64;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn fixture(name: &str) -> String {
    format!("tests/fixtures/logs/{name}")
}

/// What one `oomlab postmortem` left behind.
struct Postmortem {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    dir: PathBuf,
}

impl Postmortem {
    fn json(&self) -> Value {
        let text = std::fs::read_to_string(self.dir.join("postmortem.json")).unwrap_or_else(|e| {
            panic!(
                "postmortem.json: {e}\nexit {:?}\n{}\n{}",
                self.code, self.stdout, self.stderr
            )
        });
        serde_json::from_str(&text).expect("postmortem.json is JSON")
    }

    fn md(&self) -> String {
        std::fs::read_to_string(self.dir.join("postmortem.md")).expect("postmortem.md")
    }

    fn verdict(&self) -> String {
        self.json()["verdict"].as_str().unwrap().to_string()
    }

    fn assert_ok(&self) {
        assert_eq!(
            self.code,
            Some(0),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        assert_eq!(
            self.stdout.lines().next().unwrap_or(""),
            self.verdict(),
            "the verdict is printed"
        );
    }
}

/// Runs `oomlab postmortem --log LOG <extra> --out DIR` into a fresh directory.
fn postmortem(name: &str, log: &str, extra: &[&str]) -> Postmortem {
    let dir = scratch(name);
    let mut args = vec!["postmortem", "--log", log, "--out", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = run(&args);
    Postmortem {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        dir,
    }
}

fn lines_of(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| u(&l["line"]))
        .collect()
}

#[test]
fn legacy_killed_mid_merge_names_the_stage_the_sizes_and_the_four_facts() {
    let pm = postmortem("pm-legacy", &fixture("legacy_killed_mid_merge.log"), &[]);
    pm.assert_ok();
    let j = pm.json();
    assert_eq!(j["schema_version"], 1);

    // The kill, and the stage it interrupted.
    assert_eq!(u(&j["kill"]["line"]), 80);
    assert_eq!(j["kill"]["kind"], "sigkill");
    assert!(j["kill"]["text"]
        .as_str()
        .unwrap()
        .ends_with("Task exited with return code -9"));
    assert_eq!(u(&j["kill_lines"]), 1);
    assert_eq!(j["last_stage"]["stage"], "merge_dataset_profile");
    assert_eq!(u(&j["last_stage"]["line"]), 74);
    assert_eq!(u(&j["runs_seen"]), 1);
    assert!(j["pipeline_version_hint"]
        .as_str()
        .unwrap()
        .starts_with("unknown"));

    // The four facts.
    let facts = &j["facts"];
    assert_eq!(u(&facts["ranking_samples_rows"]), 8_532_146);
    assert_eq!(u(&facts["dataset_profile_rows"]), 123_456);
    assert_eq!(u(&facts["dataset_profile_columns"]), 312);
    assert!(facts["max_ranking_samples"].is_null(), "not in the log");
    assert!(facts["max_ranking_samples_source"]
        .as_str()
        .unwrap()
        .starts_with("no sampling line"));
    let before = lines_of(&facts["log_lines_before_kill"]);
    let after = lines_of(&facts["log_lines_after_kill"]);
    assert_eq!(before, (30..=79).collect::<Vec<_>>(), "the 50 lines before");
    assert_eq!(after, (81..=130).collect::<Vec<_>>(), "the 50 lines after");
    assert!(facts["log_lines_before_kill"][49]["text"]
        .as_str()
        .unwrap()
        .contains("Heartbeat 4"));

    // Sizes as logged.
    let sizes = &j["sizes"];
    assert_eq!(u(&sizes["preparing_samples"]), 8_532_146);
    assert!(sizes["sampling"].is_null());
    assert!(sizes["prepared_rows"].is_null());

    // Times are read as UTC.
    assert_eq!(f(&j["kill"]["t_unix"]), 1_766_650_769.0);

    let md = pm.md();
    for row in [
        "| 1. `ranking_samples` rows | 8,532,146 |",
        "| 2. `dataset_profile` columns x rows | 312 feature columns x 123,456 rows |",
        "| 3. `MAX_RANKING_SAMPLES` in force | unknown (no sampling line",
        "| 4. log lines around the kill | 50 before, 50 after (below) |",
        "## 50 lines before and after the kill (line 80)",
        "      80> [2025-12-25, 08:19:29 UTC] {local_task_job_runner.py:234} INFO - Task exited with return code -9",
        "     130  [2025-12-25, 08:20:19 UTC]",
        "| 74 | 2025-12-25 08:16:10 UTC | merge_dataset_profile | merging dataset features (312 columns) |",
    ] {
        assert!(md.contains(row), "postmortem.md lacks {row:?}:\n{md}");
    }
    assert!(!md.contains("      29  "), "only 50 lines before");

    let verdict = pm.verdict();
    assert!(
        verdict.contains("on line 80 at 2025-12-25 08:19:29 UTC"),
        "{verdict}"
    );
    assert!(verdict.contains("`merge_dataset_profile`"), "{verdict}");
    assert!(
        verdict
            .contains("8,532,146 ranking samples against 123,456 datasets x 312 feature columns"),
        "{verdict}"
    );

    // No stats, no picture.
    assert_eq!(j["pictures"].as_array().unwrap().len(), 0);
    assert!(!pm.dir.join("postmortem.svg").exists());
}

#[test]
fn v2_killed_by_the_kernel_in_the_user_merge() {
    let pm = postmortem("pm-v2-kernel", &fixture("v2_killed_user_merge.log"), &[]);
    pm.assert_ok();
    let j = pm.json();
    assert_eq!(u(&j["kill"]["line"]), 39, "the first kill line");
    assert_eq!(j["kill"]["kind"], "oom_killer");
    assert_eq!(u(&j["kill_lines"]), 3, "oom-killer, cgroup kill, exit 137");
    assert_eq!(j["last_stage"]["stage"], "merge_user_features");
    assert!(j["pipeline_version_hint"]
        .as_str()
        .unwrap()
        .starts_with("v2"));
    let facts = &j["facts"];
    assert_eq!(
        u(&facts["ranking_samples_rows"]),
        52_000_000,
        "8,532,146-style commas"
    );
    assert_eq!(u(&facts["dataset_profile_rows"]), 123_456);
    assert_eq!(u(&facts["dataset_profile_columns"]), 87);
    assert_eq!(u(&facts["max_ranking_samples"]), 2_000_000);
    assert!(facts["max_ranking_samples_source"]
        .as_str()
        .unwrap()
        .contains("sampling line"));
    // Fewer than 50 lines on either side: all of them.
    assert_eq!(
        lines_of(&facts["log_lines_before_kill"]),
        (1..=38).collect::<Vec<_>>()
    );
    assert_eq!(lines_of(&facts["log_lines_after_kill"]), [40, 41]);
    let sizes = &j["sizes"];
    assert_eq!(
        sizes["sampling"],
        serde_json::json!([52_000_000, 2_000_000])
    );
    assert_eq!(u(&sizes["user_feature_columns"]), 12);
    // The kill line has no time: the last time before it stands in.
    assert_eq!(
        f(&j["kill"]["t_unix"]),
        f(&j["last_stage"]["t_unix"]),
        "06:15:00 of the user-merge line"
    );
    assert!(pm.verdict().contains("MAX_RANKING_SAMPLES=2,000,000"));
}

#[test]
fn a_completed_v2_log_has_no_kill_and_reaches_prepared() {
    let pm = postmortem("pm-v2-done", &fixture("v2_sampled_completed.log"), &[]);
    pm.assert_ok();
    let j = pm.json();
    assert!(j["kill"].is_null());
    assert_eq!(j["last_stage"]["stage"], "prepared");
    assert_eq!(u(&j["facts"]["max_ranking_samples"]), 5_000_000);
    assert_eq!(f(&j["sizes"]["memory_before_mb"]), 3456.78);
    assert_eq!(u(&j["sizes"]["prepared_features"]), 105);
    assert!(j["facts"]["log_lines_before_kill"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(pm.verdict().starts_with("No kill"), "{}", pm.verdict());
    // Every stage line of the write-up is on the timeline, in order.
    let stages: Vec<&str> = j["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["stage"].as_str())
        .collect();
    assert_eq!(
        stages,
        [
            "optimize_samples",
            "sample",
            "samples_ready",
            "prepare",
            "merge_dataset_profile",
            "merge_user_features",
            "downcast",
            "downcast_done",
            "prepared"
        ]
    );
}

#[test]
fn of_several_runs_the_killed_one_is_reported_and_a_retry_is_told_apart() {
    let pm = postmortem("pm-two-runs", &fixture("two_runs.log"), &[]);
    pm.assert_ok();
    let j = pm.json();
    assert_eq!(u(&j["runs_seen"]), 2);
    assert_eq!(
        u(&j["facts"]["ranking_samples_rows"]),
        9_100_000,
        "the second, killed run"
    );
    assert_eq!(j["last_stage"]["stage"], "merge_dataset_profile");
    assert_eq!(u(&j["last_stage"]["line"]), 8);
    assert_eq!(j["kill"]["kind"], "killed");
    assert!(j["after_kill"].is_null());

    let pm = postmortem("pm-retried", &fixture("killed_then_retried.log"), &[]);
    pm.assert_ok();
    let j = pm.json();
    assert_eq!(u(&j["kill"]["line"]), 7);
    assert_eq!(j["kill"]["kind"], "sigkill", "Negsignal.SIGKILL");
    assert_eq!(j["last_stage"]["stage"], "merge_user_features");
    assert_eq!(u(&j["facts"]["ranking_samples_rows"]), 20_000_000);
    assert_eq!(
        u(&j["facts"]["max_ranking_samples"]),
        0,
        "MAX_RANKING_SAMPLES=0 printed"
    );
    assert!(
        j["sizes"]["sampling"].is_null(),
        "the killed run did not sample"
    );
    let retry = &j["after_kill"];
    assert_eq!(u(&retry["first_line"]), 10);
    assert_eq!(
        retry["sampling"],
        serde_json::json!([20_000_000, 5_000_000])
    );
    assert_eq!(retry["last_stage"]["stage"], "prepared");
    let verdict = pm.verdict();
    assert!(
        verdict.contains("A later run started on line 10, sampled 20,000,000 -> 5,000,000 rows, and completed ranking prep."),
        "{verdict}"
    );
}

#[test]
fn a_kill_before_any_pipeline_line_says_so() {
    let pm = postmortem(
        "pm-early-kill",
        &fixture("killed_before_any_stage.log"),
        &[],
    );
    pm.assert_ok();
    let j = pm.json();
    assert_eq!(u(&j["kill"]["line"]), 3);
    assert!(j["last_stage"].is_null());
    assert!(j["facts"]["ranking_samples_rows"].is_null());
    assert!(pm
        .verdict()
        .contains("No pipeline stage line came before it."));
    assert!(pm
        .md()
        .contains("| 1. `ranking_samples` rows | not in the log |"));
}

#[test]
fn docker_stats_give_the_limit_the_peak_and_a_picture() {
    let pm = postmortem(
        "pm-stats",
        &fixture("legacy_killed_mid_merge.log"),
        &["--docker-stats", &fixture("docker_stats.txt")],
    );
    pm.assert_ok();
    let j = pm.json();
    let m = &j["memory"];
    assert_eq!(u(&m["limit_bytes"]), 150 << 30);
    assert_eq!(m["limit_source"], "docker stats");
    assert_eq!(
        m["container"], "airflow-scheduler",
        "the container that used the most"
    );
    assert_eq!(u(&m["stats_rows"]), 26, "both containers' rows read");
    assert!((f(&m["peak_usage_bytes"]) / GIB - 149.9).abs() < 0.01);
    assert!((f(&m["peak_pct_of_limit"]) - 99.93).abs() < 0.01);
    assert_eq!(
        u(&m["last_usage_before_kill_bytes"]),
        u(&m["peak_usage_bytes"])
    );
    // The series is the scheduler's, in time order, rising to the peak.
    let stats = j["stats"].as_array().unwrap();
    assert_eq!(stats.len(), 13);
    assert!(stats.iter().all(|p| p["name"] == "airflow-scheduler"));
    assert!(stats
        .windows(2)
        .all(|w| f(&w[0]["t_unix"]) < f(&w[1]["t_unix"])));
    assert_eq!(
        j["docker_stats_source"]["recognized"], 39,
        "13 x (date, header, 2 rows)"
    );

    // The picture.
    let pictures: Vec<&str> = j["pictures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(pictures.contains(&"postmortem.svg"), "{pictures:?}");
    let svg = std::fs::read_to_string(pm.dir.join("postmortem.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.len() > 1000);
    for p in &pictures {
        assert!(std::fs::metadata(pm.dir.join(p)).unwrap().len() > 0, "{p}");
    }
    let md = pm.md();
    assert!(md.contains("![memory](postmortem.svg)"), "{md}");
    assert!(
        md.contains("docker stats, `airflow-scheduler`, peaked at 149.90 GiB"),
        "{md}"
    );
    assert!(pm.verdict().contains("(99.9% of the 150.00 GiB limit)"));

    // --memory-limit wins over what docker stats show.
    let pm = postmortem(
        "pm-stats-flag",
        &fixture("legacy_killed_mid_merge.log"),
        &[
            "--docker-stats",
            &fixture("docker_stats.txt"),
            "--memory-limit",
            "200GB",
        ],
    );
    pm.assert_ok();
    let m = &pm.json()["memory"];
    assert_eq!(u(&m["limit_bytes"]), 200_000_000_000);
    assert_eq!(m["limit_source"], "flag");
}

/// A model fitted by `oomlab sweep` on ci.toml, once for the whole test run.
fn model() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = scratch("pm-sweep");
        let model = dir.join("model.json");
        let cache = cache_dir();
        let out = run(&[
            "sweep",
            "--scenario",
            "scenarios/ci.toml",
            "--scales",
            "0.25,0.5,0.75,1",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--quiet",
        ]);
        assert!(
            out.status.success(),
            "sweep failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        model
    })
}

#[test]
fn a_model_gives_the_predicted_peak_and_the_setting_that_would_have_fitted() {
    let model = model().to_str().unwrap();
    let log = fixture("legacy_killed_mid_merge.log");

    // Killed at 150 GB: the prediction at the logged size, and what fits.
    let pm = postmortem(
        "pm-model",
        &log,
        &["--model", model, "--memory-limit", "150GB"],
    );
    pm.assert_ok();
    let mf = pm.json()["model"].clone();
    assert_eq!(u(&mf["rows_in"]), 8_532_146);
    assert_eq!(u(&mf["max_ranking_samples_in_force"]), 0);
    let legacy = u(&mf["predicted"]["legacy"]["peak_bytes"]);
    let optimized = u(&mf["predicted"]["optimized"]["peak_bytes"]);
    assert!(legacy > optimized && optimized > 1 << 30, "{mf}");
    assert!(mf["model"].as_str().unwrap().contains("`ci`"));
    assert!(mf["fitting"].is_object(), "{mf}");
    // Whatever it prints, never the killed setting (0: no limit).
    assert!(!mf["env_snippet"]
        .as_str()
        .unwrap_or("")
        .contains("MAX_RANKING_SAMPLES=0 "));
    assert_eq!(
        mf["kill_observation"],
        "8532146:0>=150000000000@merge_dataset_profile"
    );
    // The ci model was measured with 300 profile columns; the log merged 312.
    let notes: Vec<&str> = mf["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("312 dataset feature columns")),
        "{notes:?}"
    );
    // Whether the model could explain the kill follows from its own figures
    // before the kill calibrated it; after, it reaches the limit.
    let explains = u(&mf["largest_before_kill_bytes"]) >= 150_000_000_000;
    assert!(legacy.max(optimized) >= 150_000_000_000 - 1, "{mf}");
    assert_eq!(mf["under_predicts"], !explains, "{mf}");
    assert_eq!(
        notes.iter().any(|n| n.contains("under-predicts")),
        !explains
    );
    let md = pm.md();
    assert!(
        md.contains("| legacy |") && md.contains("| optimized |"),
        "{md}"
    );
    assert!(
        pm.verdict()
            .contains("Calibrated with the kill, the model predicts"),
        "{}",
        pm.verdict()
    );

    // No kill, and a limit the v2 prediction overshoots: a cap fits, within
    // the headroom, and nothing calls it an upper bound.
    let completed = fixture("v2_sampled_completed.log");
    let pm = postmortem("pm-model-completed", &completed, &["--model", model]);
    pm.assert_ok();
    let limit = u(&pm.json()["model"]["predicted"]["optimized"]["peak_bytes"]);
    let pm = postmortem(
        "pm-model-cap",
        &completed,
        &["--model", model, "--memory-limit", &limit.to_string()],
    );
    pm.assert_ok();
    let mf = pm.json()["model"].clone();
    let fitting = &mf["fitting"];
    assert_eq!(fitting["kind"], "cap", "{mf}");
    let cap = u(&fitting["cap"]);
    assert!(cap > 0 && cap < 8_532_146, "{fitting}");
    let headroom = f(&mf["headroom"]);
    assert!(u(&fitting["peak"]["peak_bytes"]) as f64 <= limit as f64 * (1.0 - headroom) * 1.001);
    assert!(mf["env_snippet"]
        .as_str()
        .unwrap()
        .contains(&format!("MAX_RANKING_SAMPLES={cap}")));
    assert!(pm
        .verdict()
        .contains(&format!("MAX_RANKING_SAMPLES={cap} would have fitted")));

    assert_eq!(mf["cap_is_upper_bound"], false);
    assert!(mf["kill_observation"].is_null());

    // Without any limit, the prediction but no setting, and why.
    let pm = postmortem("pm-model-nolimit", &log, &["--model", model]);
    pm.assert_ok();
    let mf = pm.json()["model"].clone();
    assert!(mf["fitting"].is_null());
    assert!(mf["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("no memory limit known")));
}

/// Runs a command line the postmortem printed (`oomlab check ...`) through
/// a shell, with the binary under test in place of `oomlab`.
fn run_printed(line: &str) -> std::process::Output {
    let bin = common::bin();
    let line = line.replacen("oomlab", &format!("'{}'", bin.display()), 1);
    std::process::Command::new("sh")
        .arg("-c")
        .arg(&line)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("MAX_RANKING_SAMPLES")
        .output()
        .expect("sh runs")
}

/// Issue 16: the kill is an observation. On the write-up's lines of a v2 run
/// with MAX_RANKING_SAMPLES=0 killed at 150 GB, the printed cap is below the
/// killed rows, and `oomlab check` with the same calibration agrees: exit 0
/// with that cap, exit 1 with the killed setting.
#[test]
fn the_kill_calibrates_the_model_and_check_agrees() {
    let model = model().to_str().unwrap();
    let log = fixture("v2_unsampled_killed_150gb.log");
    let pm = postmortem(
        "pm-kill-observed",
        &log,
        &["--model", model, "--memory-limit", "150GB"],
    );
    pm.assert_ok();
    let j = pm.json();
    assert_eq!(u(&j["kill_evidence"]["killed_rows"]), 11_873_402);
    assert_eq!(j["kill_evidence"]["stage"], "merge_user_features");
    let mf = &j["model"];
    assert_eq!(
        mf["kill_observation"], "11873402:0>=150000000000@merge_user_features",
        "{mf}"
    );
    assert_eq!(mf["fitting"]["kind"], "cap", "{mf}");
    let cap = u(&mf["fitting"]["cap"]);
    assert!(cap > 0 && cap < 11_873_402, "{cap}");
    assert_eq!(mf["cap_is_upper_bound"], true);
    let env = mf["env_snippet"].as_str().unwrap();
    assert!(
        env.contains(&format!("MAX_RANKING_SAMPLES={cap} ")),
        "{env}"
    );
    assert!(!env.contains("MAX_RANKING_SAMPLES=0 "), "{env}");
    // The calibrated model reaches the limit at the killed setting.
    assert!(u(&mf["predicted"]["optimized"]["peak_bytes"]) >= 150_000_000_000 - 1);
    let verdict = pm.verdict();
    assert!(
        verdict.contains(&format!(
            "MAX_RANKING_SAMPLES={cap} is the largest setting that can fit, an upper bound"
        )),
        "{verdict}"
    );
    let md = pm.md();
    let check = mf["check_command"].as_str().unwrap();
    let killed = mf["check_killed_command"].as_str().unwrap();
    assert!(md.contains(check) && md.contains(killed), "{md}");
    assert!(md.contains("## The kill as a measurement"), "{md}");
    assert!(
        check.contains("--observed '11873402:0>=150000000000@merge_user_features'"),
        "{check}"
    );

    // The printed lines, as a user would paste them.
    let out = run_printed(check);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{check}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("FITS"));
    let out = run_printed(killed);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{killed}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("DOES NOT FIT") && text.contains("killed"),
        "{text}"
    );

    // A peak observed elsewhere joins the kill, and check still agrees.
    let pm = postmortem(
        "pm-kill-observed-more",
        &log,
        &[
            "--model",
            model,
            "--memory-limit",
            "150GB",
            "--observed",
            "5000000:2000000=20GB",
        ],
    );
    pm.assert_ok();
    let mf = pm.json()["model"].clone();
    if let Some(check) = mf["check_command"].as_str() {
        assert!(
            check.contains("--observed 5000000:2000000=20GB --observed"),
            "{check}"
        );
        assert!(u(&mf["fitting"]["cap"]) < 11_873_402);
        assert_eq!(run_printed(check).status.code(), Some(0), "{check}");
    }
    let killed = mf["check_killed_command"].as_str().unwrap();
    assert_eq!(run_printed(killed).status.code(), Some(1), "{killed}");
}

/// A kill at a limit even one row cannot fit under: no cap is shown safe,
/// and the write-up says what to measure instead.
#[test]
fn when_no_cap_is_safe_it_says_what_to_measure() {
    let pm = postmortem(
        "pm-no-safe-cap",
        &fixture("v2_unsampled_killed_150gb.log"),
        &[
            "--model",
            model().to_str().unwrap(),
            "--memory-limit",
            "50MB",
        ],
    );
    pm.assert_ok();
    let mf = pm.json()["model"].clone();
    assert!(
        mf["env_snippet"].is_null() && mf["check_command"].is_null(),
        "{mf}"
    );
    assert!(mf["no_safe_cap"].is_string(), "{mf}");
    let cmd = mf["measure_command"].as_str().unwrap();
    assert!(
        cmd.starts_with("oomlab sweep --rows 290000,590000,1100000 ")
            && cmd.contains(" -- <the pipeline's command"),
        "{cmd}"
    );
    let verdict = pm.verdict();
    assert!(
        verdict.contains("no setting can be shown safe"),
        "{verdict}"
    );
    assert!(
        verdict.contains("--model reports/model-pipeline.json"),
        "{verdict}"
    );
    // The killed setting still fails check under the same calibration.
    let killed = mf["check_killed_command"].as_str().unwrap();
    assert_eq!(run_printed(killed).status.code(), Some(1), "{killed}");
}

/// Without a model the log alone bounds the bytes per row from below, and so
/// the cap from above; labelled as such, and below the killed rows.
#[test]
fn without_a_model_the_log_alone_bounds_the_cap() {
    let pm = postmortem(
        "pm-log-bound",
        &fixture("v2_unsampled_killed_150gb.log"),
        &["--memory-limit", "150GB"],
    );
    pm.assert_ok();
    let j = pm.json();
    let b = &j["log_bound"];
    assert_eq!(u(&b["killed_rows"]), 11_873_402);
    assert_eq!(u(&b["cap_at_most"]), 9_400_000);
    assert!((f(&b["bytes_per_row_at_least"]) - 150e9 / 11_873_402.0).abs() < 1e-3);
    let verdict = pm.verdict();
    assert!(verdict.contains("A bound from the log alone"), "{verdict}");
    assert!(
        verdict.contains("no MAX_RANKING_SAMPLES above 9,400,000"),
        "{verdict}"
    );
    let md = pm.md();
    assert!(md.contains("MAX_RANKING_SAMPLES=9400000"), "{md}");
    assert!(
        !md.lines().any(|l| l.starts_with("MAX_RANKING_SAMPLES=0 ")),
        "{md}"
    );

    // No limit: the kill measures nothing, and the write-up says why.
    let pm = postmortem(
        "pm-log-bound-nolimit",
        &fixture("v2_unsampled_killed_150gb.log"),
        &[],
    );
    pm.assert_ok();
    let j = pm.json();
    assert!(j["log_bound"].is_null());
    assert!(j["kill_not_used"]
        .as_str()
        .unwrap()
        .contains("no memory limit"));
}

/// A killed run and then a retry with a cap that completed: both summarized,
/// and the setting printed stays below what was killed.
#[test]
fn a_kill_then_a_successful_retry_are_both_summarized() {
    let pm = postmortem(
        "pm-retried-model",
        &fixture("killed_then_retried.log"),
        &[
            "--model",
            model().to_str().unwrap(),
            "--memory-limit",
            "150GB",
        ],
    );
    pm.assert_ok();
    let j = pm.json();
    assert_eq!(u(&j["kill_evidence"]["killed_rows"]), 20_000_000);
    assert_eq!(
        j["after_kill"]["sampling"],
        serde_json::json!([20_000_000, 5_000_000])
    );
    assert_eq!(j["after_kill"]["last_stage"]["stage"], "prepared");
    let verdict = pm.verdict();
    assert!(verdict.contains("A later run started on line 10, sampled 20,000,000 -> 5,000,000 rows, and completed ranking prep."), "{verdict}");
    let mf = &j["model"];
    assert_eq!(
        mf["kill_observation"],
        "20000000:0>=150000000000@merge_user_features"
    );
    if let Some(cap) = mf["fitting"]["cap"].as_u64() {
        assert!(cap < 20_000_000);
    }
    assert!(!mf["env_snippet"]
        .as_str()
        .unwrap_or("")
        .contains("MAX_RANKING_SAMPLES=0 "));
    let md = pm.md();
    assert!(md.contains("## After the kill"), "{md}");
    assert!(
        md.contains("- So MAX_RANKING_SAMPLES=5000000 held through ranking prep in this log"),
        "{md}"
    );
    // The retry is checked against the kill-calibrated model.
    assert!(
        mf["notes"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap()
            .contains("a later run (line 10) completed ranking prep with 20,000,000 rows and MAX_RANKING_SAMPLES=5,000,000")),
        "{mf}"
    );
}

#[test]
fn odd_inputs_never_panic_and_say_what_they_were() {
    // Empty.
    let pm = postmortem("pm-empty", &fixture("empty.log"), &[]);
    pm.assert_ok();
    assert!(
        pm.verdict().contains("is empty (0 bytes)"),
        "{}",
        pm.verdict()
    );
    assert_eq!(u(&pm.json()["log"]["bytes"]), 0);

    // Binary.
    let pm = postmortem("pm-garbage", &fixture("garbage.bin"), &[]);
    pm.assert_ok();
    let j = pm.json();
    assert_eq!(u(&j["log"]["bytes"]), 16_384, "every byte counted, no more");
    assert!(u(&j["log"]["binary"]) > 0 && u(&j["log"]["non_utf8"]) > 0);
    assert!(j["kill"].is_null());
    let v = pm.verdict();
    assert!(
        v.starts_with("Nothing in") && v.contains("was recognized"),
        "{v}"
    );
    assert!(
        v.contains("not valid UTF-8") && v.contains("binary bytes"),
        "{v}"
    );

    // Latin-1 and a NUL line around real lines: read anyway, and said.
    let pm = postmortem("pm-latin1", &fixture("latin1.log"), &[]);
    pm.assert_ok();
    let j = pm.json();
    assert_eq!(u(&j["log"]["non_utf8"]), 2);
    assert_eq!(u(&j["log"]["binary"]), 1);
    assert_eq!(u(&j["kill"]["line"]), 6);
    assert_eq!(j["last_stage"]["stage"], "merge_dataset_profile");
    assert_eq!(u(&j["facts"]["ranking_samples_rows"]), 1_200);
    assert_eq!(u(&j["facts"]["dataset_profile_columns"]), 42);
    assert!(
        pm.verdict().contains("2 not valid UTF-8"),
        "{}",
        pm.verdict()
    );
    assert!(
        pm.md().contains("caf\u{fffd} cr\u{fffd}me"),
        "lossily decoded context"
    );

    // Text, but not the pipeline's.
    let pm = postmortem("pm-nothing", &fixture("nothing_recognized.log"), &[]);
    pm.assert_ok();
    let v = pm.verdict();
    assert!(v.contains("was recognized (100 lines, 100 skipped)"), "{v}");
    assert!(!v.contains("UTF-8"), "{v}");
    assert!(pm.md().contains("Nothing recognized."));
}

#[test]
fn unreadable_inputs_are_bad_input_naming_the_file() {
    let pm = postmortem("pm-missing", "tests/fixtures/logs/no-such.log", &[]);
    assert_eq!(pm.code, Some(EXIT_BAD_INPUT), "{}", pm.stderr);
    assert!(
        pm.stderr
            .contains("tests/fixtures/logs/no-such.log: cannot read the log"),
        "{}",
        pm.stderr
    );
    assert!(!pm.dir.join("postmortem.json").exists());

    let pm = postmortem("pm-dir", "tests/fixtures/logs", &[]);
    assert_eq!(pm.code, Some(EXIT_BAD_INPUT), "{}", pm.stderr);
    assert!(
        pm.stderr
            .contains("tests/fixtures/logs: is a directory, expected the log file"),
        "{}",
        pm.stderr
    );

    let log = fixture("two_runs.log");
    let pm = postmortem(
        "pm-missing-stats",
        &log,
        &["--docker-stats", "nope/stats.txt"],
    );
    assert_eq!(pm.code, Some(EXIT_BAD_INPUT), "{}", pm.stderr);
    assert!(
        pm.stderr
            .contains("nope/stats.txt: cannot read the docker stats file"),
        "{}",
        pm.stderr
    );

    let pm = postmortem("pm-missing-model", &log, &["--model", "nope/model.json"]);
    assert_eq!(pm.code, Some(EXIT_BAD_INPUT), "{}", pm.stderr);
    assert!(pm.stderr.contains("nope/model.json"), "{}", pm.stderr);

    let pm = postmortem("pm-bad-model", &log, &["--model", &fixture("two_runs.log")]);
    assert_eq!(pm.code, Some(EXIT_BAD_INPUT), "{}", pm.stderr);
    assert!(pm.stderr.contains("two_runs.log"), "{}", pm.stderr);

    let pm = postmortem("pm-bad-limit", &log, &["--memory-limit", "lots"]);
    assert_eq!(pm.code, Some(EXIT_BAD_INPUT), "{}", pm.stderr);
    assert!(pm.stderr.contains("--memory-limit lots"), "{}", pm.stderr);

    let pm = postmortem("pm-bad-interval", &log, &["--stats-interval", "often"]);
    assert_eq!(pm.code, Some(EXIT_BAD_INPUT), "{}", pm.stderr);
    assert!(
        pm.stderr.contains("--stats-interval often"),
        "{}",
        pm.stderr
    );
}

#[test]
fn stats_collected_every_few_minutes_are_fine() {
    // `watch -n 300 docker stats --no-stream >> memory_monitor.log`: rows
    // without times, five minutes apart.
    let pm = postmortem(
        "pm-stats-5m",
        &fixture("two_runs.log"),
        &["--stats-interval", "5m"],
    );
    pm.assert_ok();
    assert_eq!(f(&pm.json()["stats_interval_s"]), 300.0);
}

#[test]
fn a_large_log_is_streamed_in_flat_memory() {
    // 128 MiB of scheduler noise with the pipeline's lines, one 100 KiB line
    // and the kill at the very end. `oomlab record` measures the postmortem's
    // own peak (kernel high-water mark): far below the log's size.
    let dir = scratch("pm-large");
    let log = dir.join("scheduler.log");
    let noise = "[2025-12-25, 08:11:27 UTC] {train_models.py:228} INFO - Loaded batch 28 of exposure logs (1476 files)\n";
    let target: u64 = 128 << 20;
    let mut lines = 0u64;
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
        w.write_all(b"INFO Ranking samples: 8532146 rows before optimization\n")
            .unwrap();
        w.write_all(b"INFO Preparing ranking data (samples: 8532146 rows, datasets: 123456)\n")
            .unwrap();
        lines += 2;
        let mut written = 0u64;
        while written < target {
            w.write_all(noise.as_bytes()).unwrap();
            written += noise.len() as u64;
            lines += 1;
            if lines == 500_000 {
                w.write_all(&vec![b'z'; 100 * 1024]).unwrap();
                w.write_all(b"\n").unwrap();
                lines += 1;
            }
        }
        w.write_all(b"INFO Merging with dataset features (312 columns)...\n")
            .unwrap();
        w.write_all(b"Task exited with return code -9\n").unwrap();
        lines += 2;
    }
    let size = std::fs::metadata(&log).unwrap().len();

    let pm_dir = dir.join("pm");
    let rec_dir = dir.join("record");
    let out = oomlab()
        .args(["record", "--quiet", "--out"])
        .arg(&rec_dir)
        .arg("--")
        .arg(common::bin())
        .args(["postmortem", "--log"])
        .arg(&log)
        .arg("--out")
        .arg(&pm_dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(rec_dir.join("report.json")).unwrap())
            .unwrap();
    let peak = u(&report["runs"][0]["peak_bytes"]);
    assert!(
        peak < 64 << 20 && peak < size / 2,
        "postmortem peak {peak} for a {size}-byte log"
    );

    let j: Value =
        serde_json::from_str(&std::fs::read_to_string(pm_dir.join("postmortem.json")).unwrap())
            .unwrap();
    assert_eq!(u(&j["log"]["bytes"]), size);
    assert_eq!(u(&j["log"]["lines"]), lines);
    assert_eq!(u(&j["log"]["truncated"]), 1, "the 100 KiB line");
    assert_eq!(u(&j["kill"]["line"]), lines);
    assert_eq!(j["last_stage"]["stage"], "merge_dataset_profile");
    assert_eq!(u(&j["facts"]["ranking_samples_rows"]), 8_532_146);
    assert_eq!(
        j["facts"]["log_lines_before_kill"]
            .as_array()
            .unwrap()
            .len(),
        50
    );
}

fn source(name: &str) -> String {
    format!("tests/fixtures/sources/{name}")
}

/// The facts of one source in postmortem.json.
fn source_of(j: &Value, kind: &str) -> Value {
    j["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == kind)
        .unwrap_or_else(|| panic!("no {kind} source in {}", j["sources"]))
        .clone()
}

/// The first 7 lines of the issue's log: the run, without its kill line.
fn log_without_kill(name: &str) -> String {
    let text = std::fs::read_to_string(fixture("v2_unsampled_killed_150gb.log")).unwrap();
    let path = scratch(name).join("scheduler.log");
    let head: Vec<&str> = text.lines().take(7).collect();
    std::fs::write(&path, head.join("\n") + "\n").unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn the_kernel_oom_report_gives_the_kill_and_the_limit() {
    let log = fixture("v2_unsampled_killed_150gb.log");
    for (file, kill_line, limit_line) in [("dmesg.txt", 23, 14), ("journalctl-k.txt", 4, 2)] {
        let path = source(file);
        let pm = postmortem("pm-kernel", &log, &["--kernel-log", &path]);
        pm.assert_ok();
        let j = pm.json();
        let k = source_of(&j, "kernel log");
        assert_eq!(u(&k["kill"]["at"]["line"]), kill_line, "{file}: {k}");
        assert!(k["kill"]["what"]
            .as_str()
            .unwrap()
            .contains("process 4242 (python3)"));
        assert_eq!(u(&k["limit"]["bytes"]), 150_000_000_000, "{file}");
        assert_eq!(u(&k["limit"]["at"]["line"]), limit_line);
        assert!(k["facts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["what"].as_str().unwrap().contains("CONSTRAINT_MEMCG")));
        // The kernel's limit is the one the kill is measured against.
        assert_eq!(u(&j["memory"]["limit_bytes"]), 150_000_000_000);
        let cite = format!("`{path}` line {limit_line}");
        assert!(j["memory"]["limit_source"]
            .as_str()
            .unwrap()
            .contains(&cite));
        assert_eq!(u(&j["log_bound"]["cap_at_most"]), 9_400_000);
        let md = pm.md();
        assert!(md.contains("## Other sources"), "{md}");
        assert!(md.contains(&format!("`{path}` line {kill_line}")), "{md}");
    }

    // The log lost its kill line: the kernel's report still names the kill.
    let log = log_without_kill("pm-kernel-only");
    let path = source("dmesg.txt");
    let pm = postmortem("pm-kernel-only-out", &log, &["--kernel-log", &path]);
    pm.assert_ok();
    let j = pm.json();
    assert!(j["kill"].is_null());
    let ev = &j["kill_evidence"];
    assert_eq!(u(&ev["killed_rows"]), 11_873_402);
    assert!(ev["kill_source"]
        .as_str()
        .unwrap()
        .contains(&format!("`{path}` line 23")));
    assert!(
        pm.verdict()
            .contains(&format!("No kill (exit code -9, Killed, OOM) was found in the log, but the kernel log recorded one (`{path}` line 23).")),
        "{}",
        pm.verdict()
    );
}

#[test]
fn cgroup_files_give_the_kill_the_limit_and_the_peak() {
    let log = fixture("v2_unsampled_killed_150gb.log");
    for (dir, kill_file, kill_line, limit_file) in [
        ("cgroup_v2", "memory.events", 5, "memory.max"),
        (
            "cgroup_v1",
            "memory.oom_control",
            3,
            "memory.limit_in_bytes",
        ),
    ] {
        let pm = postmortem("pm-cgroup", &log, &["--cgroup-dir", &source(dir)]);
        pm.assert_ok();
        let j = pm.json();
        let c = source_of(&j, "cgroup");
        assert!(
            c["kill"]["at"]["path"]
                .as_str()
                .unwrap()
                .ends_with(kill_file),
            "{c}"
        );
        assert_eq!(u(&c["kill"]["at"]["line"]), kill_line);
        assert!(c["limit"]["at"]["path"]
            .as_str()
            .unwrap()
            .ends_with(limit_file));
        assert_eq!(u(&c["limit"]["bytes"]), 150_000_000_000);
        assert_eq!(u(&c["peak"]["bytes"]), 149_999_996_928);
        assert_eq!(u(&j["memory"]["limit_bytes"]), 150_000_000_000);
        assert!(pm.md().contains(&format!("{kill_file}` line {kill_line}")));
    }

    // A file that is not what the cgroup writes: exit 2, naming file and line.
    let bad = scratch("pm-cgroup-bad");
    std::fs::write(bad.join("memory.max"), "a lot\n").unwrap();
    let pm = postmortem(
        "pm-cgroup-bad-out",
        &log,
        &["--cgroup-dir", bad.to_str().unwrap()],
    );
    assert_eq!(pm.code, Some(EXIT_BAD_INPUT), "{}", pm.stderr);
    assert!(pm.stderr.contains("memory.max: line 1"), "{}", pm.stderr);
    let pm = postmortem("pm-cgroup-missing", &log, &["--cgroup-dir", "nope/cgroup"]);
    assert_eq!(pm.code, Some(EXIT_BAD_INPUT), "{}", pm.stderr);
    assert!(pm.stderr.contains("nope/cgroup"), "{}", pm.stderr);
}

#[test]
fn kubernetes_pod_json_and_describe_give_oomkilled_and_the_limit() {
    let log = log_without_kill("pm-k8s-log");
    for (file, kill_line, limit_line) in [("pod.json", 62, 33), ("describe-pod.txt", 23, 31)] {
        let path = source(file);
        let pm = postmortem("pm-k8s", &log, &["--kubernetes", &path]);
        pm.assert_ok();
        let j = pm.json();
        let k = source_of(&j, "kubernetes pod");
        assert_eq!(u(&k["kill"]["at"]["line"]), kill_line, "{file}: {k}");
        assert!(k["kill"]["what"].as_str().unwrap().contains("OOMKilled"));
        assert_eq!(u(&k["limit"]["bytes"]), 150 << 30, "{file}");
        assert_eq!(u(&k["limit"]["at"]["line"]), limit_line, "{file}");
        assert_eq!(u(&j["memory"]["limit_bytes"]), 150 << 30);
        // The log has no kill; the pod's status does.
        assert_eq!(u(&j["kill_evidence"]["limit_bytes"]), 150 << 30);
        assert!(j["kill_evidence"]["kill_source"]
            .as_str()
            .unwrap()
            .contains(&format!("`{path}` line {kill_line}")));
        let facts = k["facts"].to_string();
        if file == "describe-pod.txt" {
            assert!(
                facts.contains("exit code 137 (128 + 9: SIGKILL)"),
                "{facts}"
            );
        }
    }

    // Not JSON after all: exit 2 with the file and the line.
    let bad = scratch("pm-k8s-bad").join("pod.json");
    std::fs::write(&bad, "{\n  \"kind\": \"Pod\",\n  \"spec\": {\n").unwrap();
    let pm = postmortem(
        "pm-k8s-bad-out",
        &log,
        &["--kubernetes", bad.to_str().unwrap()],
    );
    assert_eq!(pm.code, Some(EXIT_BAD_INPUT), "{}", pm.stderr);
    assert!(pm.stderr.contains("pod.json: line 4"), "{}", pm.stderr);
}

#[test]
fn a_prometheus_range_query_is_the_memory_curve() {
    let log = fixture("v2_unsampled_killed_150gb.log");
    let path = source("prometheus-working-set.json");
    let pm = postmortem(
        "pm-prometheus",
        &log,
        &["--prometheus", &path, "--memory-limit", "150GiB"],
    );
    pm.assert_ok();
    let j = pm.json();
    let m = &j["memory"];
    // The container's series only (the pod's cgroup series double-counts it).
    assert_eq!(m["container"], "base");
    assert_eq!(u(&m["peak_usage_bytes"]), (150u64 << 30) - 4096);
    assert!(u(&m["stats_rows"]) >= 30);
    let p = source_of(&j, "prometheus");
    assert_eq!(u(&p["peak"]["at"]["line"]), 3);
    assert!(pm.md().contains(&format!("`{path}` line 3")));
    assert!(
        !j["pictures"].as_array().unwrap().is_empty(),
        "{}",
        j["pictures"]
    );

    let bad = scratch("pm-prom-bad").join("q.json");
    std::fs::write(&bad, r#"{"status":"error","errorType":"bad_data","error":"1:10: parse error: unexpected \"}\""}"#).unwrap();
    let pm = postmortem(
        "pm-prom-bad-out",
        &log,
        &["--prometheus", bad.to_str().unwrap()],
    );
    assert_eq!(pm.code, Some(EXIT_BAD_INPUT), "{}", pm.stderr);
    assert!(
        pm.stderr.contains("q.json: line 1") && pm.stderr.contains("parse error"),
        "{}",
        pm.stderr
    );
}

#[test]
fn airflow_2_and_3_task_logs_name_the_kill() {
    for (file, text) in [
        (
            "airflow2_task_killed.log",
            "Task exited with return code -9",
        ),
        ("airflow3_task_killed.log", "\"exit_code\":-9"),
    ] {
        let pm = postmortem("pm-airflow", &fixture(file), &["--memory-limit", "150GB"]);
        pm.assert_ok();
        let j = pm.json();
        assert_eq!(u(&j["kill"]["line"]), 9, "{file}");
        assert_eq!(j["kill"]["kind"], "sigkill", "{file}");
        assert!(j["kill"]["text"].as_str().unwrap().contains(text), "{file}");
        assert_eq!(j["last_stage"]["stage"], "merge_user_features", "{file}");
        assert_eq!(u(&j["facts"]["ranking_samples_rows"]), 11_873_402, "{file}");
        assert_eq!(u(&j["log_bound"]["cap_at_most"]), 9_400_000, "{file}");
    }
    // Airflow's other ways of saying it.
    let dir = scratch("pm-airflow-lines");
    for line in [
        "[2026-01-14, 02:08:13 UTC] {local_task_job_runner.py:234} INFO - Task exited with return code Negsignal.SIGKILL",
        "[2026-01-14T02:08:13.000+0000] {taskinstance.py:1400} ERROR - Task received SIGKILL",
    ] {
        let path = dir.join("task.log");
        std::fs::write(
            &path,
            format!("INFO - Ranking samples: 1000 rows before optimization\n{line}\n"),
        )
        .unwrap();
        let pm = postmortem("pm-airflow-line", path.to_str().unwrap(), &[]);
        pm.assert_ok();
        assert_eq!(pm.json()["kill"]["kind"], "sigkill", "{line}");
    }
}

/// With a model, a limit from the pod spec and the kill from its status:
/// the check lines printed still agree with `oomlab check`.
#[test]
fn a_pod_limit_and_kill_calibrate_the_model_like_the_log_does() {
    let log = log_without_kill("pm-k8s-model-log");
    let pm = postmortem(
        "pm-k8s-model",
        &log,
        &[
            "--model",
            model().to_str().unwrap(),
            "--kubernetes",
            &source("pod.json"),
        ],
    );
    pm.assert_ok();
    let mf = pm.json()["model"].clone();
    assert_eq!(
        mf["kill_observation"],
        format!("11873402:0>={}@merge_user_features", 150u64 << 30)
    );
    let cap = u(&mf["fitting"]["cap"]);
    assert!(cap > 0 && cap < 11_873_402, "{mf}");
    let check = mf["check_command"].as_str().unwrap();
    assert_eq!(run_printed(check).status.code(), Some(0), "{check}");
    let killed = mf["check_killed_command"].as_str().unwrap();
    assert_eq!(run_printed(killed).status.code(), Some(1), "{killed}");
}

/// Issue 20: a log that merged 94 dataset feature columns, read with a model
/// swept over columns, is predicted at 94 (not the model's 87) and says so;
/// the printed `check` lines carry `--columns 94` and still agree.
#[test]
fn a_logged_column_count_is_where_the_model_predicts() {
    let dir = scratch("pm-sweep-columns");
    let model = dir.join("model.json");
    let cache = cache_dir();
    let out = run(&[
        "sweep",
        "--scenario",
        "scenarios/ci.toml",
        "--scales",
        "0.1,0.2,0.4,0.8",
        "--columns",
        "87,137,187,287",
        "--max-ranking-samples-fraction",
        "0.5",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "sweep failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let model = model.to_str().unwrap();
    let pm = postmortem(
        "pm-columns-94",
        &fixture("v2_unsampled_killed_150gb.log"),
        &["--model", model, "--memory-limit", "150GB"],
    );
    pm.assert_ok();
    let mf = pm.json()["model"].clone();
    assert_eq!(u(&mf["columns"]), 94, "{mf}");
    let notes = mf["notes"].to_string();
    assert!(
        notes.contains("every figure is at 94 numeric profile columns")
            && notes.contains("94 is inside the measured range"),
        "{notes}"
    );
    assert!(!notes.contains("off by about the ratio"), "{notes}");
    let verdict = pm.verdict();
    assert!(
        verdict.contains("94 numeric profile columns, as logged"),
        "{verdict}"
    );
    // The figure before the kill is `check`'s at 94 columns, above its 87.
    let at = |columns: &str| {
        let out = run(&[
            "check",
            "--model",
            model,
            "--strategy",
            "legacy",
            "--rows",
            "11873402",
            "--columns",
            columns,
            "--memory",
            "1TiB",
            "--json",
        ]);
        let j: Value = serde_json::from_slice(&out.stdout).unwrap();
        f(&j["prediction"]["peak_bytes"])
    };
    let before = f(&mf["largest_before_kill_bytes"]);
    assert!((before - at("94")).abs() <= 1.0, "{before} vs {}", at("94"));
    assert!(at("94") > at("87"));
    // The printed check lines reproduce the answer at 94.
    let killed = mf["check_killed_command"].as_str().unwrap();
    assert!(killed.contains("--columns 94"), "{killed}");
    assert_eq!(run_printed(killed).status.code(), Some(1), "{killed}");
    if let Some(check) = mf["check_command"].as_str() {
        assert_eq!(run_printed(check).status.code(), Some(0), "{check}");
    }
}
