//! Issue 29: every memory curve keeps its own name, is set against the
//! kill's time, and of a real multi-series query the killed container's
//! series is chosen and named; the same peak has the same time everywhere.

mod common;

use serde_json::Value;

/// The write-up's killed log: `Task exited with return code -9` at
/// 2026-01-14 02:08:13 UTC.
const LOG: &str = "tests/fixtures/logs/v2_unsampled_killed_150gb.log";
const KILL: u64 = 1_768_356_493;

fn repo(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("oomlab-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A range query result of `series` (container label, [(time, bytes)]).
fn query(series: &[(&str, Vec<(u64, u64)>)]) -> String {
    let result: Vec<Value> = series
        .iter()
        .map(|(c, values)| {
            serde_json::json!({
                "metric": {"__name__": "container_memory_working_set_bytes", "container": c, "pod": "pipeline-8f3k2d1q"},
                "values": values.iter().map(|(t, v)| serde_json::json!([t, v.to_string()])).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": result}})
        .to_string()
}

/// Runs the postmortem; returns the first paragraph (stdout's first line),
/// postmortem.md and postmortem.json.
fn postmortem(name: &str, extra: &[&str]) -> (String, String, Value) {
    let dir = scratch(name);
    let out = common::oomlab()
        .args(["postmortem", "--log", &repo(LOG), "--out"])
        .arg(dir.join("out"))
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let md = std::fs::read_to_string(dir.join("out/postmortem.md")).unwrap();
    let json: Value =
        serde_json::from_slice(&std::fs::read(dir.join("out/postmortem.json")).unwrap()).unwrap();
    (stdout.lines().next().unwrap_or("").to_string(), md, json)
}

fn write(name: &str, text: &str) -> String {
    let path = scratch(name).join("query.json");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn ramp(from: u64, n: u64, step: u64) -> Vec<(u64, u64)> {
    (0..n).map(|i| (from + i * step, (10 + i) << 30)).collect()
}

#[test]
fn a_curve_months_after_the_kill_is_named_said_not_to_cover_it_and_not_used() {
    let months_later = KILL + 270 * 86_400;
    let path = write(
        "pm-curve-late",
        &query(&[("base", ramp(months_later, 3, 20))]),
    );
    let (first, md, j) = postmortem(
        "pm-curve-late-out",
        &["--prometheus", &path, "--memory-limit", "150GiB"],
    );
    assert!(first.contains("The Prometheus curve"), "{first}");
    assert!(first.contains("does not cover the kill"), "{first}");
    assert!(first.contains("starts after the kill"), "{first}");
    assert!(!first.contains("docker stats"), "{first}");
    assert!(!md.contains("docker stats"), "{md}");
    assert_eq!(j["curves"][0]["covers_kill"], false);
    assert_eq!(j["curves"][0]["used"], false);
    assert!(j["memory"]["peak_usage_bytes"].is_null(), "{}", j["memory"]);
    // The advice still stands on the log alone: the bound from the kill.
    assert!(
        !j["log_bound"].is_null(),
        "no log-only bound: {}",
        j["log_bound"]
    );
    assert!(md.contains("No curve covers the kill"), "{md}");
}

#[test]
fn a_curve_that_ends_before_the_kill_is_not_used_one_that_covers_it_is() {
    let ends_before = write(
        "pm-curve-early",
        &query(&[("base", ramp(KILL - 3_600, 10, 15))]),
    );
    let (first, _, j) = postmortem("pm-curve-early-out", &["--prometheus", &ends_before]);
    assert!(first.contains("ends before the kill"), "{first}");
    assert_eq!(j["curves"][0]["covers_kill"], false);
    let covers = repo("tests/fixtures/sources/prometheus-working-set.json");
    let (first, _, j) = postmortem("pm-curve-covers-out", &["--prometheus", &covers]);
    assert_eq!(j["curves"][0]["covers_kill"], true, "{}", j["curves"]);
    assert!(first.contains("Prometheus peaked at"), "{first}");
    assert!(!first.contains("does not cover"), "{first}");
}

#[test]
fn of_a_cadvisor_query_the_killed_container_is_chosen_named_and_never_summed() {
    // The pod's own cgroup (container=""), the pause container (POD), the
    // pipeline (`base`) and a sidecar, sampled every 15 s up to the kill.
    let t0 = KILL - 150;
    let base: Vec<(u64, u64)> = (0..10)
        .map(|i| (t0 + 15 * i, (100 + 5 * i) << 30))
        .collect();
    let sidecar: Vec<(u64, u64)> = (0..10).map(|i| (t0 + 15 * i, (2 + i % 2) << 30)).collect();
    let pod: Vec<(u64, u64)> = base
        .iter()
        .zip(&sidecar)
        .map(|(b, s)| (b.0, b.1 + s.1 + (1 << 20)))
        .collect();
    let pause: Vec<(u64, u64)> = (0..10).map(|i| (t0 + 15 * i, 1 << 20)).collect();
    let path = write(
        "pm-curve-cadvisor",
        &query(&[
            ("", pod),
            ("POD", pause),
            ("base", base.clone()),
            ("sidecar", sidecar),
        ]),
    );
    let (first, md, j) = postmortem("pm-curve-cadvisor-out", &["--prometheus", &path]);
    let base_peak = base.iter().map(|(_, v)| *v).max().unwrap();
    assert_eq!(j["memory"]["container"], "base", "{}", j["memory"]);
    assert_eq!(j["memory"]["peak_usage_bytes"].as_u64(), Some(base_peak));
    let note = j["curves"][0]["series_note"].as_str().unwrap();
    assert!(
        note.contains("series `base` of 4") && note.contains("pod total"),
        "{note}"
    );
    assert!(md.contains("series `base` of 4"), "{md}");
    // One peak, one time: the first paragraph, the memory section and the
    // Prometheus fact print the same moment.
    let t = j["memory"]["peak_t_unix"].as_f64().unwrap();
    let when = {
        let secs = t as u64;
        let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
        format!("{h:02}:{m:02}:{s:02}")
    };
    assert!(first.contains(&when), "{when} not in: {first}");
    let fact = j["sources"][0]["peak"]["what"].as_str().unwrap();
    assert!(
        fact.contains(&when) && fact.contains("`base`"),
        "{when} not in: {fact}"
    );
    let peak_line = md.lines().find(|l| l.starts_with("- Peak:")).unwrap();
    assert!(peak_line.contains(&when), "{when} not in: {peak_line}");
    // --container picks another series, and says so.
    let (_, _, j) = postmortem(
        "pm-curve-cadvisor-sidecar",
        &["--prometheus", &path, "--container", "sidecar"],
    );
    assert_eq!(j["memory"]["container"], "sidecar");
    assert!(j["curves"][0]["series_note"]
        .as_str()
        .unwrap()
        .contains("--container"));
}
