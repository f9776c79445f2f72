//! Issue 5 acceptance: the similarity replay on similarity-ci.toml, through the real binary.

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::{cache_dir, completed_with_stages, oomlab, run_of, scratch, stage, u};

const SCENARIO: &str = "scenarios/similarity-ci.toml";
const LEGACY_STAGES: &[&str] = &["load", "normalize", "similarity_matrix", "top_k"];
const OPTIMIZED_STAGES: &[&str] = &["load", "normalize", "micro_batches"];

/// Runs oomlab on the similarity CI scenario with `env` set (and no other
/// similarity knob in the environment), into a fresh directory.
fn sim(name: &str, args: &[&str], env: &[(&str, &str)]) -> (Output, PathBuf) {
    let out = scratch(name);
    let cache = cache_dir();
    let mut cmd = oomlab();
    cmd.env_remove("SIMILARITY_MICRO_BATCH_SIZE")
        .env_remove("SIMILARITY_TOP_K");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).args([
        "--scenario",
        SCENARIO,
        "--cache-dir",
        cache.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    (cmd.output().expect("oomlab runs"), out)
}

fn report_of(name: &str, args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let (output, out) = sim(name, args, env);
    assert!(
        output.status.success(),
        "oomlab {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(out.join("report.json")).expect("report.json written");
    serde_json::from_str(&text).expect("report is JSON")
}

#[test]
fn compare_measures_every_stage_and_the_full_matrix_peaks_higher() {
    let report = report_of("sim-compare", &["compare", "--hash-output"], &[]);
    assert_eq!(u(&report["scenario"]["production"]["items"]), 6_000);
    assert_eq!(u(&report["scenario"]["scaled"]["dimension"]), 128);
    assert_eq!(u(&report["settings"]["similarity_micro_batch_size"]), 50);
    assert_eq!(
        report["settings"]["similarity_micro_batch_size_source"],
        "scenario"
    );
    assert_eq!(u(&report["settings"]["similarity_top_k"]), 200);
    for (strategy, stages) in [("legacy", LEGACY_STAGES), ("optimized", OPTIMIZED_STAGES)] {
        let run = completed_with_stages(&report, strategy, stages);
        assert_eq!(u(&run["output"]["rows"]), 6_000, "{strategy}");
        assert_eq!(u(&run["output"]["features"]), 200, "{strategy}");
        let logs: Vec<&str> = run["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["message"].as_str().unwrap())
            .collect();
        assert!(
            logs.iter()
                .any(|l| l.starts_with("Similarity computed: 6000 items, top 200 neighbours")),
            "{strategy}: {logs:?}"
        );
    }
    let legacy = run_of(&report, "legacy");
    let optimized = run_of(&report, "optimized");
    // The matrix stage really holds N x N f32.
    let matrix = stage(legacy, "similarity_matrix");
    let rose = u(&matrix["exact_peak_bytes"]) - u(&matrix["rss_start_bytes"]);
    assert!(
        rose >= 6_000 * 6_000 * 4,
        "RSS rose by only {rose} bytes while computing a 6000 x 6000 f32 matrix"
    );
    let (lp, op) = (u(&legacy["peak_bytes"]), u(&optimized["peak_bytes"]));
    assert!(
        lp as f64 > 1.5 * op as f64,
        "legacy peak {lp} should be well above optimized {op}"
    );
    // Same neighbours, in the same order (scores are continuous: no ties).
    let (lh, oh) = (&legacy["output"]["hash"], &optimized["output"]["hash"]);
    assert!(lh.is_string(), "no output hash: {lh}");
    assert_eq!(lh, oh, "legacy and optimized found different top-K lists");
    let block = u(&stage(optimized, "micro_batches")["detail"]["block_bytes"]);
    assert_eq!(block, 50 * 6_000 * 4);
}

#[test]
fn knobs_come_from_flag_then_env_then_scenario() {
    let report = report_of(
        "sim-knobs-env",
        &["run", "--strategy", "optimized"],
        &[
            ("SIMILARITY_MICRO_BATCH_SIZE", "20"),
            ("SIMILARITY_TOP_K", "30"),
        ],
    );
    assert_eq!(u(&report["settings"]["similarity_micro_batch_size"]), 20);
    assert_eq!(
        report["settings"]["similarity_micro_batch_size_source"],
        "env"
    );
    assert_eq!(u(&report["settings"]["similarity_top_k"]), 30);
    let run = run_of(&report, "optimized");
    assert_eq!(
        u(&stage(run, "micro_batches")["detail"]["micro_batch_size"]),
        20
    );
    assert_eq!(u(&run["output"]["features"]), 30);

    let report = report_of(
        "sim-knobs-flag",
        &[
            "run",
            "--strategy",
            "optimized",
            "--similarity-micro-batch-size",
            "100",
        ],
        &[("SIMILARITY_MICRO_BATCH_SIZE", "20")],
    );
    assert_eq!(u(&report["settings"]["similarity_micro_batch_size"]), 100);
    assert_eq!(
        report["settings"]["similarity_micro_batch_size_source"],
        "flag"
    );
    assert_eq!(report["settings"]["similarity_top_k_source"], "scenario");
    // The environment is never dumped into reports.
    assert!(!report
        .to_string()
        .contains("SIMILARITY_MICRO_BATCH_SIZE\":"));
}

#[test]
fn bad_knobs_and_foreign_strategies_exit_2() {
    let (output, _) = sim(
        "sim-bad-env",
        &["run", "--strategy", "optimized"],
        &[("SIMILARITY_TOP_K", "many")],
    );
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("SIMILARITY_TOP_K"), "{err}");

    let (output, _) = sim("sim-bad-strategy", &["run", "--strategy", "streaming"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("legacy, optimized"), "{err}");
}

/// Sweeps similarity-ci.toml (1,500 to 6,000 items), then asks `recommend
/// --items` for several budgets from the saved similarity model.
#[test]
fn sweep_fits_quadratic_legacy_linear_optimized_and_recommend_answers_the_knobs() {
    let out = scratch("sim-sweep");
    let model_path = out.join("similarity-model.saved.json");
    let cache = cache_dir();
    let output = oomlab()
        .env_remove("SIMILARITY_MICRO_BATCH_SIZE")
        .env_remove("SIMILARITY_TOP_K")
        .args([
            "sweep",
            "--scenario",
            SCENARIO,
            "--scales",
            "0.25,0.5,0.75,1",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--model",
            model_path.to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .expect("oomlab runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "sweep failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("200 GB -> 8 GB"), "{stdout}");
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&model_path).expect("model saved"))
            .expect("model is JSON");
    let strategy = |name: &str| {
        model["strategies"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["strategy"] == name))
            .unwrap_or_else(|| panic!("no {name} in the model"))
            .clone()
    };
    let exponent = |name: &str| strategy(name)["exponent"].as_f64().expect("exponent");
    // The full matrix grows quadratically, micro-batches linearly.
    assert!(
        exponent("legacy") > 1.6,
        "legacy exponent {}",
        exponent("legacy")
    );
    assert!(
        exponent("optimized") < 1.3,
        "optimized exponent {}",
        exponent("optimized")
    );
    for name in ["legacy", "optimized"] {
        let err = strategy(name)["holdout_error"].as_f64().expect("error");
        assert!(err.abs() < 0.25, "{name}: held-out error {err}");
    }
    assert_eq!(model["throughput"].as_array().map(Vec::len), Some(4));

    let recommend = |memory: &str| {
        oomlab()
            .args([
                "recommend",
                "--memory",
                memory,
                "--items",
                "500000",
                "--model",
                model_path.to_str().unwrap(),
            ])
            .output()
            .expect("oomlab runs")
    };
    let knob = |text: &str, name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    let mut last: Option<(u64, u64)> = None;
    for memory in ["64GiB", "16GiB", "4GiB"] {
        let out = recommend(memory);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{memory}: {text}");
        assert!(text.contains("cat >> .env << EOF"), "{text}");
        let (b, k) = (
            knob(&text, "SIMILARITY_MICRO_BATCH_SIZE"),
            knob(&text, "SIMILARITY_TOP_K"),
        );
        // A smaller budget never gets a larger top K, nor at the same K a larger batch.
        if let Some((lb, lk)) = last {
            assert!(
                k < lk || (k == lk && b <= lb),
                "{memory}: {b}/{k} after {lb}/{lk}"
            );
        }
        last = Some((b, k));
    }
    let none = recommend("64MiB");
    assert_eq!(none.status.code(), Some(4), "no setting fits -> exit 4");
    assert!(String::from_utf8_lossy(&none.stderr).contains("needs at least"));
    let bad = oomlab()
        .args(["recommend", "--items", "lots", "--model"])
        .arg(&model_path)
        .output()
        .expect("oomlab runs");
    assert_eq!(bad.status.code(), Some(2));
}
