//! `oomlab sweep --budget DURATION -- CMD` (issue 27): the sweep picks its
//! own sizes within a time budget and writes a model with 95% prediction
//! intervals, which `check` then judges by their upper end.

mod common;

use common::{cache_dir, oomlab, scratch, text};

/// A stdlib-only Python command whose memory is linear in `{rows}` (200
/// bytes a row) plus up to 24 MiB of noise from run to run, so the interval
/// at the target does not close at once and the budget is what stops it.
const NOISY: &str = "import sys, time, random\n\
n = int(sys.argv[1])\n\
print('INFO [stage] hold', flush=True)\n\
b = bytearray(b'\\x01') * (n * 200 + random.randint(0, 24 << 20))\n\
time.sleep(0.1)\n";

#[test]
fn a_budget_sweep_stops_within_its_budget_and_writes_intervals() {
    let out = scratch("budget-sweep");
    let budget = 6.0;
    let run = oomlab()
        .args([
            "sweep",
            "--quiet",
            "--budget",
            "6s",
            "--production-rows",
            "4000000",
            "--out",
            out.to_str().unwrap(),
            "--",
            "python3",
            "-c",
            NOISY,
            "{rows}",
        ])
        .output()
        .expect("oomlab runs");
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let outcome: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("budget.json")).unwrap()).unwrap();
    let runs = outcome["runs"].as_array().unwrap();
    let longest = runs
        .iter()
        .map(|r| r["secs"].as_f64().unwrap() + r["data_secs"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let spent = outcome["spent_secs"].as_f64().unwrap();
    // Within the budget plus the one run that may start just before it ends.
    assert!(
        spent <= budget + longest + 0.5,
        "spent {spent:.1}s of {budget}s (longest run {longest:.1}s)\n{}",
        text(&run)
    );
    assert!(runs.len() >= 3, "{}", text(&run));
    // One run a size cannot show a spread that comes and goes: the largest
    // size is run again before an interval counts (unless that run would
    // not have fitted in the budget), and the outcome says what one run's
    // own noise is at the target.
    let top = runs
        .iter()
        .map(|r| r["rows"].as_u64().unwrap())
        .max()
        .unwrap();
    let at_top: Vec<_> = runs
        .iter()
        .filter(|r| r["rows"].as_u64() == Some(top))
        .collect();
    let top_secs = at_top[0]["secs"].as_f64().unwrap();
    assert!(
        at_top.len() >= 2 || spent + top_secs > budget,
        "the largest size ({top} rows) ran once with {:.1}s of {budget}s left\n{}",
        budget - spent,
        text(&run)
    );
    if at_top.len() >= 2 {
        assert!(
            outcome["run_noise_half_width"].as_f64().unwrap() > 0.0,
            "{outcome}"
        );
    }
    // Narrow only once a size near the target (the largest or the one
    // below) ran twice: a width that counts no run's own spread is not.
    if outcome["reached_target_width"].as_bool() == Some(true) {
        let mut sizes: Vec<u64> = runs.iter().map(|r| r["rows"].as_u64().unwrap()).collect();
        sizes.sort_unstable();
        sizes.dedup();
        let twice = sizes.iter().rev().take(2).any(|s| {
            runs.iter()
                .filter(|r| r["rows"].as_u64() == Some(*s))
                .count()
                >= 2
        });
        assert!(twice, "narrow without a repeat near the target: {outcome}");
    }
    // The model's fits carry what an interval is made of, and the outcome
    // an interval at the target around the prediction.
    let model: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("model.json")).unwrap()).unwrap();
    for stage in model["variants"][0]["stages"].as_array().unwrap() {
        assert!(stage["fit"]["spread"]["xtx_inv"].is_array(), "{stage}");
    }
    let p = &outcome["prediction"];
    let (lo, mid, hi) = (
        p["interval"]["low_bytes"].as_f64().unwrap(),
        p["peak_bytes"].as_f64().unwrap(),
        p["interval"]["high_bytes"].as_f64().unwrap(),
    );
    assert!(lo <= mid && mid <= hi && hi > lo, "{p}");
    // 200 B/row at 4,000,000 rows is 763 MiB: inside the interval's reach.
    assert!((mid - 800e6).abs() < 0.25 * 800e6, "{p}");
    assert!(text(&run).contains("95% interval"), "{}", text(&run));
    // check judges by the upper end, and says so.
    let check = oomlab()
        .args([
            "check",
            "--model",
            out.join("model.json").to_str().unwrap(),
            "--memory",
            "64GiB",
            "--rows",
            "4000000",
        ])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    assert!(
        text(&check).contains("upper end of the 95% interval"),
        "{}",
        text(&check)
    );
}

#[test]
fn a_budget_is_refused_with_sizes_or_zero() {
    let out = scratch("budget-sweep-refused");
    let with_rows = oomlab()
        .args(["sweep", "--budget", "5s", "--rows", "1,2,3", "--out"])
        .arg(&out)
        .args(["--", "python3", "-c", "pass"])
        .output()
        .unwrap();
    assert_eq!(with_rows.status.code(), Some(2), "{}", text(&with_rows));
    let zero = oomlab()
        .args(["sweep", "--budget", "0s", "--", "python3", "-c", "pass"])
        .output()
        .unwrap();
    assert_eq!(zero.status.code(), Some(2), "{}", text(&zero));
    // A budget sweep chooses each size from the runs before it: no pods.
    for command in [&["--", "python3", "-c", "pass"][..], &[][..]] {
        let emitted = oomlab()
            .args(["sweep", "--budget", "5s", "--emit", "kubernetes"])
            .args(command)
            .output()
            .unwrap();
        assert_eq!(emitted.status.code(), Some(2), "{}", text(&emitted));
        assert!(
            text(&emitted).contains("--budget with --emit"),
            "{}",
            text(&emitted)
        );
    }
}

#[test]
fn a_replay_budget_sweep_stops_within_its_budget_and_writes_intervals() {
    let out = scratch("budget-sweep-replay");
    let model_path = out.join("saved-model.json");
    let budget = 25.0;
    let run = oomlab()
        .args([
            "sweep",
            "--quiet",
            "--scenario",
            "scenarios/ci.toml",
            "--budget",
            "25s",
        ])
        .arg("--cache-dir")
        .arg(cache_dir())
        .arg("--out")
        .arg(&out)
        .arg("--model")
        .arg(&model_path)
        .output()
        .expect("oomlab runs");
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let outcome: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("budget.json")).unwrap()).unwrap();
    let steps = outcome["steps"].as_array().unwrap();
    // Each step is one scale's runs, every strategy; data is outside the budget.
    let longest = steps
        .iter()
        .map(|s| s["secs"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let spent = outcome["spent_secs"].as_f64().unwrap();
    assert!(
        spent <= budget + longest + 0.5,
        "spent {spent:.1}s of {budget}s (longest scale {longest:.1}s)\n{}",
        text(&run)
    );
    assert!(steps.len() >= 3, "{}", text(&run));
    let rows: Vec<u64> = steps.iter().map(|s| s["rows"].as_u64().unwrap()).collect();
    assert!(
        rows.windows(2).all(|w| w[0] < w[1]),
        "smallest first: {rows:?}"
    );
    assert!(!outcome["stopped_because"].as_str().unwrap().is_empty());
    // The model is a replay model with intervals, saved where asked.
    let model: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&model_path).unwrap()).unwrap();
    assert_eq!(model["scales"].as_array().unwrap().len(), steps.len());
    for v in model["variants"].as_array().unwrap() {
        for stage in v["stages"].as_array().unwrap() {
            assert!(stage["fit"]["spread"]["xtx_inv"].is_array(), "{stage}");
        }
    }
    for (name, p) in outcome["predictions"].as_object().unwrap() {
        let (lo, mid, hi) = (
            p["interval"]["low_bytes"].as_f64().unwrap(),
            p["peak_bytes"].as_f64().unwrap(),
            p["interval"]["high_bytes"].as_f64().unwrap(),
        );
        assert!(lo <= mid && mid <= hi && hi > lo, "{name}: {p}");
    }
    assert!(text(&run).contains("95% interval"), "{}", text(&run));
}
