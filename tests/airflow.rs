//! Issue 26: `oomlab postmortem` on logs a real Airflow wrote.
//!
//! tests/fixtures/airflow/make_fixtures.sh ran dags/train_models.py under
//! apache-airflow 2.11 and 3.3 (VERSIONS in each directory): a scheduler and
//! its executor inside a memory cgroup of 1.5 GiB, the standard file task
//! handler, one task killed with SIGKILL (`train_models_kill9`) and one
//! killed by the kernel's OOM killer at the cgroup's limit (`train_models`).
//! These tests read what it committed: each task's log, the scheduler's
//! output and a copy of the cgroup's memory files. CI does not run Airflow.

mod common;

use std::path::PathBuf;

use common::{oomlab, scratch, text, u};
use serde_json::Value;

const ROWS: u64 = 11_873_402;

fn dir(major: u32) -> String {
    format!("tests/fixtures/airflow/airflow{major}")
}

/// `oomlab postmortem --log FILE [extra]`, its exit code and postmortem.json.
fn postmortem(name: &str, log: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    let out_dir: PathBuf = scratch(name);
    let mut args = vec![
        "postmortem",
        "--log",
        log,
        "--out",
        out_dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = oomlab().args(&args).output().expect("oomlab runs");
    let json = std::fs::read_to_string(out_dir.join("postmortem.json"))
        .unwrap_or_else(|e| panic!("postmortem.json for {log}: {e}\n{}", text(&out)));
    (
        out.status.code(),
        serde_json::from_str(&json).expect("postmortem.json is JSON"),
        text(&out),
    )
}

/// The four facts the write-up asks for, as the dags/train_models.py task logs them.
fn assert_write_up_facts(pm: &Value, what: &str) {
    let facts = &pm["facts"];
    assert_eq!(u(&facts["ranking_samples_rows"]), ROWS, "{what}: {facts}");
    assert_eq!(u(&facts["dataset_profile_rows"]), 140_221, "{what}");
    assert_eq!(u(&facts["dataset_profile_columns"]), 94, "{what}");
    assert_eq!(u(&facts["max_ranking_samples"]), 0, "{what}");
    let before = facts["log_lines_before_kill"]
        .as_array()
        .expect("lines before the kill");
    assert!(
        before.iter().any(|l| l["text"]
            .as_str()
            .is_some_and(|t| t.contains("Merging with dataset features (94 columns)"))),
        "{what}: the context before the kill holds the merge line"
    );
    assert_eq!(pm["last_stage"]["stage"], "merge_user_features", "{what}");
}

#[test]
fn the_fixtures_come_from_airflow_2_and_3() {
    for major in [2, 3] {
        let versions = std::fs::read_to_string(format!("{}/VERSIONS", dir(major))).unwrap();
        assert!(
            versions.starts_with(&format!("apache-airflow {major}.")),
            "{versions}"
        );
    }
    // Each version's own way of writing a task log: 2.x's text handler, 3.x's JSON lines.
    let v2 = std::fs::read_to_string(format!("{}/train_models.log", dir(2))).unwrap();
    assert!(
        v2.contains("{local_task_job_runner.py:"),
        "Airflow 2 text task log"
    );
    let v3 = std::fs::read_to_string(format!("{}/train_models.log", dir(3))).unwrap();
    assert!(
        v3.lines().all(|l| l.starts_with('{')),
        "Airflow 3 task log is JSON lines"
    );
}

#[test]
fn a_task_killed_at_the_memory_limit_is_named_with_the_limit_and_a_bound() {
    for major in [2, 3] {
        let cgroup = format!("{}/cgroup", dir(major));
        let limit: u64 = std::fs::read_to_string(format!("{cgroup}/memory.limit_in_bytes"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let (code, pm, out) = postmortem(
            &format!("airflow{major}-limit"),
            &format!("{}/train_models.log", dir(major)),
            &["--cgroup-dir", &cgroup],
        );
        let what = format!("Airflow {major}, killed at the limit");
        assert_eq!(code, Some(0), "{what}: {out}");
        assert_eq!(pm["kill"]["kind"], "sigkill", "{what}");
        let kill_text = pm["kill"]["text"].as_str().unwrap();
        match major {
            2 => assert!(
                kill_text.contains("Task exited with return code -9"),
                "{kill_text}"
            ),
            _ => assert!(
                kill_text.contains("\"signal_name\":\"SIGKILL\"")
                    && kill_text.contains("Process terminated by signal"),
                "{kill_text}"
            ),
        }
        assert_write_up_facts(&pm, &what);
        // The cgroup says the kernel killed it, at which limit; the bound follows.
        let source = &pm["sources"][0];
        assert_eq!(source["source"], "cgroup", "{what}: {source}");
        assert!(
            source["kill"]["what"]
                .as_str()
                .unwrap()
                .contains("oom_kill 1"),
            "{what}: {source}"
        );
        assert_eq!(u(&pm["kill_evidence"]["limit_bytes"]), limit, "{what}");
        assert_eq!(u(&pm["log_bound"]["killed_rows"]), ROWS, "{what}");
        let per_row = pm["log_bound"]["bytes_per_row_at_least"].as_f64().unwrap();
        assert!(
            (per_row - limit as f64 / ROWS as f64).abs() < 1.0,
            "{what}: {per_row} B/row"
        );
        // The setting it prints is below the rows that were killed.
        assert!(u(&pm["log_bound"]["cap_at_most"]) < ROWS, "{what}");
    }
}

#[test]
fn a_task_killed_by_sigkill_is_named_in_its_stage() {
    for major in [2, 3] {
        let (code, pm, out) = postmortem(
            &format!("airflow{major}-kill9"),
            &format!("{}/train_models_kill9.log", dir(major)),
            &["--memory-limit", "1536MiB"],
        );
        let what = format!("Airflow {major}, SIGKILL");
        assert_eq!(code, Some(0), "{what}: {out}");
        assert_eq!(pm["kill"]["kind"], "sigkill", "{what}");
        assert_eq!(pm["runs_seen"], 1, "{what}");
        assert_write_up_facts(&pm, &what);
        assert!(
            u(&pm["kill"]["line"]) > u(&pm["last_stage"]["line"]),
            "{what}: the kill comes after the last stage line"
        );
    }
}

#[test]
fn the_schedulers_logs_say_what_each_version_records() {
    // Airflow 2's scheduler logs only that the tasks failed (`state=failed`,
    // a zombie): no kill and no pipeline line, and the postmortem says so
    // instead of inventing one. The task log is where 2.x records the kill.
    let (code, pm, out) = postmortem(
        "airflow2-scheduler",
        &format!("{}/scheduler.log", dir(2)),
        &[],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(pm["kill"].is_null(), "{}", pm["kill"]);
    assert!(
        pm["verdict"].as_str().unwrap().starts_with("Nothing in"),
        "{}",
        pm["verdict"]
    );

    // Airflow 3's LocalExecutor writes the tasks' lines into the scheduler's
    // output, and the supervisor's `exit_code=<Negsignal.SIGKILL: -9>`.
    let (code, pm, out) = postmortem(
        "airflow3-scheduler",
        &format!("{}/scheduler.log", dir(3)),
        &[],
    );
    assert_eq!(code, Some(0), "{out}");
    let kill_text = pm["kill"]["text"].as_str().unwrap();
    assert!(
        kill_text.contains("Workload finished") && kill_text.contains("Negsignal.SIGKILL"),
        "{kill_text}"
    );
    assert_eq!(pm["kill_lines"], 2, "both tasks' ends are kills");
    assert_eq!(pm["runs_seen"], 2, "two task runs, one after the other");
    assert_write_up_facts(&pm, "Airflow 3 scheduler");
    assert_eq!(u(&pm["after_kill"]["ranking_samples_rows"]), ROWS);
}
