//! `oomlab sweep -- CMD`: a user's own command at several sizes, fitted in
//! its own bytes (issue 14).

mod common;

use common::{oomlab, scratch, text};

/// A stdlib-only Python command whose memory is linear in `{rows}`: it
/// writes (so the pages are resident) `PER_ROW` bytes per row and holds
/// them a moment inside its `hold` stage.
const PER_ROW: u64 = 2_000;
const LINEAR: &str = "import sys, time\n\
n = int(sys.argv[1])\n\
print('INFO [stage] hold', flush=True)\n\
b = bytearray(b'\\x01') * (n * 2000)\n\
time.sleep(0.2)\n";

fn sweep(out: &std::path::Path, extra: &[&str], command: &[&str]) -> std::process::Output {
    let mut args = vec!["sweep", "--quiet", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(command);
    oomlab()
        .args(&args)
        // pyarrow's own pool adds run-to-run noise to a pandas peak.
        .env("ARROW_DEFAULT_MEMORY_POOL", "system")
        .output()
        .expect("oomlab runs")
}

#[test]
fn a_linear_command_sweep_recovers_its_per_row_cost_within_2_percent() {
    let out = scratch("command-sweep-linear");
    let run = sweep(
        &out,
        &["--rows", "20000,40000,80000,160000"],
        &["python3", "-c", LINEAR, "{rows}"],
    );
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let model: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("model.json")).unwrap()).unwrap();
    assert_eq!(model["source"]["kind"], "command");
    assert_eq!(model["source"]["argv"][3], "{rows}");
    let variant = &model["variants"][0];
    let hold = variant["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "hold")
        .expect("a hold stage");
    let per_row = hold["fit"]["bytes_per_row_in"].as_f64().unwrap();
    let err = (per_row - PER_ROW as f64).abs() / PER_ROW as f64;
    assert!(
        err <= 0.02,
        "per-row cost {per_row:.0} B against {PER_ROW} B ({:.1}% off)\n{}",
        err * 100.0,
        text(&run)
    );
    // The held-out point is predicted, and named as held out.
    let held = model["validation"]["max_abs_error_pct"]["command"]
        .as_f64()
        .unwrap();
    assert!(held <= 10.0, "held-out error {held}%\n{}", text(&run));
    assert!(
        text(&run).contains("predicting 160,000 rows"),
        "{}",
        text(&run)
    );
    // recommend and check take the model unchanged and say whose bytes they are.
    let model_path = out.join("model.json");
    let check = oomlab()
        .args([
            "check",
            "--model",
            model_path.to_str().unwrap(),
            "--memory",
            "64GiB",
            "--rows",
            "1000000",
        ])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    assert!(
        text(&check).contains("command's own bytes"),
        "{}",
        text(&check)
    );
    // `model fit` on the points' reports gives the sweep's model back
    // (issue 19): same variants, fits and held-out check.
    let refit_dir = out.join("refit");
    let refit = oomlab()
        .args(["model", "fit", out.to_str().unwrap(), "--out"])
        .arg(&refit_dir)
        .output()
        .unwrap();
    assert_eq!(refit.status.code(), Some(0), "{}", text(&refit));
    let mut again: serde_json::Value =
        serde_json::from_slice(&std::fs::read(refit_dir.join("model.json")).unwrap()).unwrap();
    let mut model = model;
    for m in [&mut model, &mut again] {
        m["created_at"] = serde_json::Value::Null;
    }
    assert_eq!(model["variants"], again["variants"]);
    assert_eq!(model["validation"], again["validation"]);
    assert_eq!(model["source"], again["source"]);
    assert_eq!(model["scales"], again["scales"]);
}

/// Issue 20: `{columns}` is substituted (and `$OOMLAB_COLUMNS` exported) at
/// every point of a rows x columns grid; a command paying 16 bytes per row
/// per column has that cost recovered, and its held-out point (larger in
/// both) predicted.
#[test]
fn a_column_sweep_substitutes_columns_and_recovers_their_cost() {
    const WIDE: &str = "import os, sys, time\n\
n = int(sys.argv[1])\n\
c = int(sys.argv[2])\n\
assert c == int(os.environ['OOMLAB_COLUMNS']), (c, os.environ['OOMLAB_COLUMNS'])\n\
print('INFO [stage] hold', flush=True)\n\
b = bytearray(b'\\x01') * (n * (500 + 16 * c))\n\
time.sleep(0.2)\n";
    let out = scratch("command-sweep-columns");
    let run = sweep(
        &out,
        &[
            "--scenario",
            "scenarios/ci.toml",
            "--rows",
            "20000,40000,80000,160000",
            "--columns",
            "50,100,150,250",
        ],
        &["python3", "-c", WIDE, "{rows}", "{columns}"],
    );
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert!(
        text(&run).contains("predicting 160,000 rows at 250 columns (larger in both)"),
        "{}",
        text(&run)
    );
    let model: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("model.json")).unwrap()).unwrap();
    assert_eq!(
        model["columns"]["measured"],
        serde_json::json!([50, 100, 150, 250])
    );
    let hold = model["variants"][0]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "hold")
        .expect("a hold stage")["fit"]
        .clone();
    let per_column = hold["bytes_per_row_in_per_column"].as_f64().unwrap();
    assert!(
        (per_column - 16.0).abs() <= 0.05 * 16.0,
        "{per_column} B/row/column\n{}",
        text(&run)
    );
    let held = model["validation"]["max_abs_error_pct"]["command"]
        .as_f64()
        .unwrap();
    assert!(held <= 5.0, "held-out error {held}%\n{}", text(&run));
}

#[test]
fn a_command_whose_peak_ignores_the_size_is_refused() {
    let out = scratch("command-sweep-flat");
    let run = sweep(
        &out,
        &["--rows", "20000,40000,80000"],
        &["python3", "-c", "b = bytearray(b'\\x01') * 20_000_000"],
    );
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    assert!(
        text(&run).contains("did not grow with the size"),
        "{}",
        text(&run)
    );
    assert!(!out.join("model.json").exists());
}

#[test]
fn a_command_failing_at_one_size_names_it_and_writes_no_model() {
    let out = scratch("command-sweep-fails");
    let run = sweep(
        &out,
        &["--rows", "20000,40000,80000"],
        &[
            "python3",
            "-c",
            "import sys\nn = int(sys.argv[1])\nb = bytearray(b'\\x01') * (n * 500)\nif n > 30000:\n    sys.exit('cannot handle ' + str(n) + ' rows')\n",
            "{rows}",
        ],
    );
    assert_eq!(run.status.code(), Some(6), "{}", text(&run));
    let t = text(&run);
    assert!(t.contains("40,000 rows"), "{t}");
    assert!(t.contains("cannot handle 40000 rows"), "{t}");
    assert!(!out.join("model.json").exists());
}

#[test]
fn too_few_sizes_and_bad_rows_are_bad_input() {
    let out = scratch("command-sweep-bad");
    for extra in [
        &["--rows", "1000,2000"][..],
        &["--rows", "1000,lots,3000"][..],
    ] {
        let run = sweep(&out, extra, &["python3", "-c", "pass"]);
        assert_eq!(run.status.code(), Some(2), "{extra:?}: {}", text(&run));
    }
}

/// The pandas reference swept as a user's command under one pandas (the
/// interpreter `.ci/run` exports as `OOMLAB_PANDAS<major>_PYTHON`): the model
/// records that pandas, its held-out check holds, and legacy pays more per
/// row than optimized. Fitted on three sizes and held out at 400,000 rows:
/// two sizes of 50,000 and 100,000 rows, mostly fixed cost, missed by 10% on
/// a loaded machine (the 5% acceptance is at production scales, in
/// docs/command-sweep.md).
fn reference_under(major: u32) {
    let var = format!("OOMLAB_PANDAS{major}_PYTHON");
    let Some(python) = std::env::var_os(&var) else {
        eprintln!(
            "skipped: ${var} is not set (.ci/run creates the virtual environment and sets it)"
        );
        return;
    };
    let python = python.to_string_lossy().into_owned();
    let cache = common::cache();
    let mut per_row = Vec::new();
    for strategy in ["legacy", "optimized"] {
        let out = scratch(&format!("command-sweep-pandas{major}-{strategy}"));
        let run = sweep(
            &out,
            &[
                "--scenario",
                "scenarios/ci.toml",
                "--scales",
                "0.25,0.5,1,2",
                "--cache-dir",
                &cache,
                "--stage-pattern",
                r"^INFO \[stage\] (\S+)$",
            ],
            &[
                &python,
                "scenarios/pandas/ranking_prep.py",
                "--strategy",
                strategy,
                "--data-dir",
                "{data_dir}",
            ],
        );
        assert_eq!(run.status.code(), Some(0), "{}", text(&run));
        let model: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("model.json")).unwrap()).unwrap();
        let pandas = model["source"]["pandas"].as_str().unwrap_or_default();
        assert!(
            pandas.starts_with(&format!("{major}.")),
            "pandas {pandas:?} recorded, expected {major}.x"
        );
        let held = model["validation"]["max_abs_error_pct"]["command"]
            .as_f64()
            .unwrap();
        assert!(
            held <= 10.0,
            "{strategy}: held-out error {held}%\n{}",
            text(&run)
        );
        per_row.push(
            model["variants"][0]["overall"]["bytes_per_row_in"]
                .as_f64()
                .unwrap(),
        );
    }
    assert!(
        per_row[0] > per_row[1],
        "pandas {major}: legacy {:.0} B/row should exceed optimized {:.0} B/row",
        per_row[0],
        per_row[1]
    );
}

#[test]
fn the_pandas_reference_sweeps_under_pandas_2() {
    reference_under(2);
}

#[test]
fn the_pandas_reference_sweeps_under_pandas_3() {
    reference_under(3);
}
