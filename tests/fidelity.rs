//! Issue 10: the pandas reference and the replay, side by side, through the
//! real binary. Needs pandas (scenarios/pandas/requirements.txt), which the
//! README's test command installs.

mod common;

use common::{fidelity_ci, oomlab, scratch};

#[test]
fn fidelity_fits_both_sides_and_writes_its_result() {
    let (out, stdout) = fidelity_ci("fidelity-ci", 2);
    let f: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("fidelity.json")).expect("fidelity.json written"),
    )
    .expect("JSON");
    let strategies = f["strategies"].as_array().expect("strategies");
    assert_eq!(strategies.len(), 2);
    // The replay side ran in the mode meant to track pandas, and says so.
    assert_eq!(f["memory_mode"], "pandas");
    let per_row = |s: &serde_json::Value, side: &str| {
        s["per_row"][format!("{side}_bytes_per_row")]
            .as_f64()
            .expect("per-row cost")
    };
    for s in strategies {
        let name = s["strategy"].as_str().unwrap_or("?");
        assert_eq!(s["points"].as_array().map(Vec::len), Some(3), "{name}");
        // Each pandas figure is the median of --repeat runs, all kept.
        for p in s["points"].as_array().unwrap() {
            let runs = p["pandas_repeats"].as_array().expect("pandas_repeats");
            assert_eq!(runs.len(), 2, "{name}");
            let median = p["pandas_peak_bytes"].as_u64().unwrap();
            assert!(runs.iter().any(|r| r.as_u64() == Some(median)), "{name}");
        }
        // Both sides pay per row, and the replay's cost is of pandas' order.
        let ratio = s["per_row"]["ratio"].as_f64().expect("ratio");
        assert!(per_row(s, "pandas") > 0.0 && per_row(s, "oomlab") > 0.0);
        assert!((0.5..2.0).contains(&ratio), "{name}: per-row ratio {ratio}");
        // The pandas stages were cut at the reference's own stage lines.
        let stages: Vec<&str> = s["stages"]
            .as_array()
            .expect("stages")
            .iter()
            .filter_map(|st| st["stage"].as_str())
            .collect();
        assert!(
            stages.contains(&"merge_user_features"),
            "{name}: {stages:?}"
        );
        assert!(
            s["holdout"]["error"].is_number(),
            "{name}: no held-out check"
        );
        assert!(
            s["calibrated_holdout"]["predicted_bytes"].as_f64() > Some(0.0),
            "{name}: no calibrated held-out check"
        );
    }
    // legacy costs several times optimized per row, on both sides.
    let (l, o) = (&strategies[0], &strategies[1]);
    assert!(per_row(l, "pandas") > 2.0 * per_row(o, "pandas"));
    assert!(per_row(l, "oomlab") > 2.0 * per_row(o, "oomlab"));
    for file in ["fidelity.md", "fidelity.png", "fidelity.svg"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    assert!(stdout.contains("Per-row ratio oomlab/pandas"), "{stdout}");
    assert!(stdout.contains("Per-row cost of the peak"), "{stdout}");
    assert!(stdout.contains("oomlab (pandas mode)"), "{stdout}");
}

#[test]
fn a_python_without_pandas_or_a_missing_one_is_bad_input() {
    let out = scratch("fidelity-bad");
    let output = oomlab()
        .args([
            "fidelity",
            "--scenario",
            "scenarios/ci.toml",
            "--python",
            "/nonexistent/python3",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .expect("oomlab runs");
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("--python /nonexistent/python3"), "{err}");
    let output = oomlab()
        .args(["fidelity", "--scenario", "scenarios/similarity-ci.toml"])
        .output()
        .expect("oomlab runs");
    assert_eq!(output.status.code(), Some(2));
}
