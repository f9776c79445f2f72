//! Issue 4: sweep, recommend and check through the real binary on ci.toml.
//!
//! One sweep (four scales, every strategy, sampled and not) is shared by every
//! test through a `OnceLock`; the rest of the file asks the saved model
//! questions, which takes milliseconds each, and runs the binary once more at
//! a recommended setting to hold the model to its word.

mod common;

use std::path::PathBuf;
use std::process::Output;
use std::sync::OnceLock;

use common::{cache_dir, oomlab, run_of, scratch, text};
use serde_json::Value;

/// Headroom `recommend` and `check` keep by default.
const HEADROOM: f64 = 0.2;

/// How far a measured peak may sit above the model's prediction in these
/// tests: the acceptance bound on the held-out error. Exact peaks of the same
/// run repeat to within a percent or two here, and the sweep's own held-out
/// errors on ci.toml stay within a few percent.
const MODEL_MARGIN: f64 = 0.10;

/// The held-out error below which a miss is noise, whatever its percentage:
/// ci.toml's capped streaming runs peak at about 48 MiB, where thread stacks
/// and malloc arenas that depend on scheduling move a peak by 2 to 5 MiB
/// under load (seen as 11% on a loaded 2-core machine, 3% on a quiet one,
/// and once 8.0 MiB, 14.3%, at load 6).
const HELD_OUT_FLOOR_BYTES: f64 = 12.0 * 1024.0 * 1024.0;

struct Sweep {
    dir: PathBuf,
    model: PathBuf,
    stdout: String,
    json: Value,
}

/// The shared sweep: ci.toml at four scales, the largest held out. Streaming
/// runs in chunks of 10,000 rows so that even the smallest scale (50,000 rows)
/// spans several chunks (see the sweep's note on chunked peaks).
fn sweep() -> &'static Sweep {
    static SWEEP: OnceLock<Sweep> = OnceLock::new();
    SWEEP.get_or_init(|| {
        let dir = scratch("model-sweep");
        let model = dir.join("saved-model.json");
        let out = run_sweep(
            &dir,
            &model,
            &["--scales", "0.25,0.5,0.75,1", "--chunk-rows", "10000"],
        );
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "sweep failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json = serde_json::from_str(
            &std::fs::read_to_string(dir.join("model.json")).expect("model.json written"),
        )
        .expect("model.json is JSON");
        Sweep {
            dir,
            model,
            stdout,
            json,
        }
    })
}

/// Runs `oomlab sweep` on ci.toml into `dir`, saving the model at `model`,
/// with `extra` flags (scales and the like).
fn run_sweep(dir: &std::path::Path, model: &std::path::Path, extra: &[&str]) -> Output {
    let cache = cache_dir();
    let mut args = vec![
        "sweep",
        "--scenario",
        "scenarios/ci.toml",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    oomlab().args(&args).output().expect("oomlab runs")
}

/// Runs `oomlab <command> --model <the sweep's> args...`.
fn ask(command: &str, args: &[&str]) -> Output {
    let s = sweep();
    oomlab()
        .arg(command)
        .arg("--model")
        .arg(&s.model)
        .args(args)
        .output()
        .expect("oomlab runs")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

const GIB: f64 = (1u64 << 30) as f64;
const MIB: f64 = (1u64 << 20) as f64;

#[test]
fn sweep_writes_the_model_the_tables_and_the_picture() {
    let s = sweep();
    for file in ["model.json", "sweep.md", "sweep.png", "sweep.svg"] {
        assert!(s.dir.join(file).is_file(), "{file} missing");
    }
    assert!(s.model.is_file(), "--model copy missing");
    let names: Vec<&str> = s.json["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    for v in [
        "legacy",
        "optimized",
        "optimized-capped",
        "streaming",
        "streaming-capped",
    ] {
        assert!(names.contains(&v), "variant {v} missing from {names:?}");
    }
    assert_eq!(s.json["streaming_chunk_rows"], 10_000);

    // The held-out check: fitted on 0.25/0.5/0.75, judged on 1.
    let validation = &s.json["validation"];
    assert_eq!(f(&validation["holdout_scale"]), 1.0);
    assert_eq!(validation["fitted_scales"].as_array().unwrap().len(), 3);
    let errors = validation["max_abs_error_pct"].as_object().unwrap();
    assert_eq!(errors.len(), names.len());
    for point in validation["points"].as_array().unwrap() {
        let measured = f(&point["measured_bytes"]);
        let off = (f(&point["predicted_bytes"]) - measured).abs();
        assert!(
            off <= (MODEL_MARGIN * measured).max(HELD_OUT_FLOOR_BYTES),
            "{}: held-out error {:.1}% ({:.1} MiB) on ci.toml\n{}",
            point["variant"],
            f(&point["error_pct"]),
            off / (1u64 << 20) as f64,
            s.stdout
        );
    }
    // Every stage fit carries R² and residuals, one per measured point.
    for v in s.json["variants"].as_array().unwrap() {
        let points = v["points"].as_array().unwrap().len();
        assert!(points >= 4, "{}: {points} points", v["name"]);
        for stage in v["stages"].as_array().unwrap() {
            assert_eq!(stage["fit"]["residuals"].as_array().unwrap().len(), points);
            assert!(f(&stage["fit"]["r2"]) <= 1.0 + 1e-9);
        }
    }
    // The printed tables: held-out check and the write-up's production table,
    // measured here since scale 1 is ci.toml's production size.
    for needle in [
        "Held-out check: fitted on scales 0.25, 0.5, 0.75, predicting scale 1",
        "largest held-out error",
        "legacy peak",
        "optimized (v2) peak",
        "streaming peak",
        "ranking prep (no sampling)",
        "(measured)",
    ] {
        assert!(
            s.stdout.contains(needle),
            "`{needle}` not in:\n{}",
            s.stdout
        );
    }
    let md = std::fs::read_to_string(s.dir.join("sweep.md")).unwrap();
    for needle in ["## Held-out check", "## At production size", "## Fits"] {
        assert!(md.contains(needle), "`{needle}` not in sweep.md");
    }
    // Legacy needs more than v2, v2 more than streaming, at every measured scale.
    for point in s.json["variants"][0]["points"].as_array().unwrap() {
        let scale = f(&point["scale"]);
        let peak_of = |variant: &str| {
            s.json["variants"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == variant)
                .and_then(|v| {
                    v["points"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|p| f(&p["scale"]) == scale && p["max_ranking_samples"] == 0)
                })
                .map(|p| f(&p["peak_bytes"]))
                .unwrap()
        };
        assert!(peak_of("legacy") > peak_of("optimized"), "scale {scale}");
        assert!(peak_of("optimized") > peak_of("streaming"), "scale {scale}");
    }
}

/// Rows a recommendation keeps: everything after dropna for "no sampling",
/// the cap otherwise, none when nothing fits.
fn kept(answer: &Value) -> Option<u64> {
    match answer["answer"]["kind"].as_str().unwrap() {
        "no_sampling" => Some(answer["rows_after_dropna"].as_u64().unwrap()),
        "cap" => Some(answer["max_ranking_samples"].as_u64().unwrap()),
        "no_fit" => None,
        other => panic!("unknown answer {other}"),
    }
}

#[test]
fn recommend_is_monotone_in_the_budget_and_never_over_the_limit() {
    let mut last: Option<u64> = None;
    let mut kinds = std::collections::BTreeSet::new();
    for mib in [16, 64, 112, 160, 200, 256, 320, 400, 512, 2048] {
        let memory = format!("{mib}MiB");
        let out = ask(
            "recommend",
            &[
                "--memory",
                &memory,
                "--rows",
                "200000",
                "--json",
                "--no-coverage",
            ],
        );
        let answer = json_of(&out);
        let now = kept(&answer);
        kinds.insert(answer["answer"]["kind"].as_str().unwrap().to_string());
        assert_eq!(
            code(&out),
            if now.is_some() { 0 } else { 4 },
            "{}",
            text(&out)
        );
        assert!(now >= last, "{memory}: keeps {now:?} after {last:?}");
        last = now;
        let limit = f(&answer["limit_bytes"]);
        assert!((limit - mib as f64 * MIB * (1.0 - HEADROOM)).abs() < 1.0);
        if now.is_some() {
            let peak = f(&answer["answer"]["prediction"]["peak_bytes"]);
            assert!(
                peak <= limit,
                "{memory}: predicted {peak} over limit {limit}"
            );
            assert!(f(&answer["margin_bytes"]) >= 0.0);
        }
        // The budget table answers the same question for fixed budgets.
        for row in answer["table"].as_array().unwrap() {
            if row["max_ranking_samples"].is_u64() {
                assert!(f(&row["predicted_bytes"]) <= f(&row["limit_bytes"]));
            }
        }
    }
    // The budgets span every kind of answer.
    let kinds: Vec<_> = kinds.into_iter().collect();
    assert_eq!(kinds, ["cap", "no_fit", "no_sampling"]);
}

#[test]
fn a_run_at_the_recommended_value_stays_within_its_prediction() {
    // 150,000 rows is ci.toml at scale 0.75; ask for a budget that needs sampling.
    let out = ask(
        "recommend",
        &[
            "--memory",
            "240MiB",
            "--rows",
            "150000",
            "--json",
            "--no-coverage",
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let answer = json_of(&out);
    assert_eq!(answer["answer"]["kind"], "cap", "{answer}");
    let cap = answer["max_ranking_samples"].as_u64().unwrap();
    let predicted = f(&answer["answer"]["prediction"]["peak_bytes"]);
    assert!(predicted <= f(&answer["limit_bytes"]));

    let dir = scratch("model-recommended-run");
    let cache = cache_dir();
    let cap_text = cap.to_string();
    let run = oomlab()
        .args([
            "run",
            "--strategy",
            "optimized",
            "--scenario",
            "scenarios/ci.toml",
            "--scale",
            "0.75",
            "--max-ranking-samples",
            &cap_text,
            "--cache-dir",
            cache.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .expect("oomlab runs");
    assert!(run.status.success(), "{}", text(&run));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let optimized = run_of(&report, "optimized");
    assert_eq!(optimized["output"]["rows"].as_u64(), Some(cap));
    let measured = f(&optimized["peak_bytes"]);
    assert!(
        measured <= predicted * (1.0 + MODEL_MARGIN),
        "measured {measured} over the prediction {predicted} + {}%",
        MODEL_MARGIN * 100.0
    );
    assert!(
        measured >= predicted * (1.0 - MODEL_MARGIN),
        "measured {measured} far under the prediction {predicted}: the model is too pessimistic"
    );
    // What matters in production: the run fits the budget it was planned for.
    assert!(measured < 240.0 * MIB);
}

#[test]
fn no_fit_exits_4_and_names_a_budget_that_fits() {
    let out = ask(
        "recommend",
        &["--memory", "8MiB", "--rows", "200000", "--no-coverage"],
    );
    assert_eq!(code(&out), 4, "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs at least"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("no setting fits"));
    // The figure it names is enough, and a little less is not.
    let json = json_of(&ask(
        "recommend",
        &[
            "--memory",
            "8MiB",
            "--rows",
            "200000",
            "--no-coverage",
            "--json",
        ],
    ));
    let needs = json["needs_at_least_bytes"].as_u64().unwrap();
    let fits = ask(
        "recommend",
        &[
            "--memory",
            &needs.to_string(),
            "--rows",
            "200000",
            "--no-coverage",
            "--json",
        ],
    );
    assert_eq!(code(&fits), 0, "{}", text(&fits));
    let short = ask(
        "recommend",
        &[
            "--memory",
            &(needs as f64 * 0.97).to_string(),
            "--rows",
            "200000",
            "--no-coverage",
        ],
    );
    assert_eq!(code(&short), 4, "{}", text(&short));
}

#[test]
fn check_exits_0_and_1_on_either_side_of_the_prediction() {
    let probe = json_of(&ask(
        "check",
        &["--memory", "64GiB", "--rows", "200000", "--json"],
    ));
    assert_eq!(probe["fits"], true);
    let peak = f(&probe["prediction"]["peak_bytes"]);
    let budget = |factor: f64| format!("{}", (peak / (1.0 - HEADROOM) * factor).round() as u64);

    let fits = ask("check", &["--memory", &budget(1.05), "--rows", "200000"]);
    assert_eq!(code(&fits), 0, "{}", text(&fits));
    assert!(String::from_utf8_lossy(&fits.stdout).starts_with("FITS"));

    let over = ask("check", &["--memory", &budget(0.95), "--rows", "200000"]);
    assert_eq!(code(&over), 1, "{}", text(&over));
    let stdout = String::from_utf8_lossy(&over.stdout);
    assert!(stdout.starts_with("DOES NOT FIT"), "{stdout}");
    assert!(stdout.contains("would fit: strategy optimized, MAX_RANKING_SAMPLES="));

    // The setting it names fits the same budget.
    let advice = json_of(&ask(
        "check",
        &["--memory", &budget(0.95), "--rows", "200000", "--json"],
    ));
    let cap = advice["would_fit"]["cap"].as_u64().unwrap();
    let sampled = ask(
        "check",
        &[
            "--memory",
            &budget(0.95),
            "--rows",
            "200000",
            "--max-ranking-samples",
            &cap.to_string(),
        ],
    );
    assert_eq!(code(&sampled), 0, "{}", text(&sampled));

    // Legacy ignores the cap and needs several times more.
    let legacy = ask(
        "check",
        &[
            "--memory",
            &budget(1.05),
            "--rows",
            "200000",
            "--strategy",
            "legacy",
            "--max-ranking-samples",
            "1000",
        ],
    );
    assert_eq!(code(&legacy), 1, "{}", text(&legacy));

    // $MAX_RANKING_SAMPLES is read as the pipeline reads it.
    let env = sweep();
    let from_env = oomlab()
        .args(["check", "--model"])
        .arg(&env.model)
        .args(["--memory", &budget(0.95), "--rows", "200000", "--json"])
        .env("MAX_RANKING_SAMPLES", cap.to_string())
        .output()
        .unwrap();
    assert_eq!(code(&from_env), 0, "{}", text(&from_env));
    let j = json_of(&from_env);
    assert_eq!(j["max_ranking_samples_source"], "env");
}

#[test]
fn streaming_needs_no_sampling_up_to_the_rows_recommend_names() {
    let answer = json_of(&ask(
        "recommend",
        &[
            "--memory",
            "256MiB",
            "--rows",
            "200000",
            "--json",
            "--no-coverage",
        ],
    ));
    let rows = answer["streaming_no_sampling_max_rows"].as_u64().unwrap();
    assert!(
        rows > 200_000,
        "streaming should hold all of ci.toml: {rows}"
    );
    let at = |n: u64| {
        ask(
            "check",
            &[
                "--memory",
                "256MiB",
                "--rows",
                &n.to_string(),
                "--strategy",
                "streaming",
                "--max-ranking-samples",
                "0",
            ],
        )
    };
    assert_eq!(code(&at(rows)), 0, "{}", text(&at(rows)));
    // Rounded down to two digits, so 20% more rows is over the limit.
    assert_eq!(code(&at(rows * 6 / 5)), 1, "{}", text(&at(rows * 6 / 5)));
    let printed = ask(
        "recommend",
        &["--memory", "256MiB", "--rows", "200000", "--no-coverage"],
    );
    assert!(String::from_utf8_lossy(&printed.stdout)
        .contains("With streaming, no sampling needed up to"));
}

#[test]
fn observed_peaks_calibrate_every_prediction() {
    let plain = json_of(&ask(
        "check",
        &["--memory", "64GiB", "--rows", "200000", "--json"],
    ));
    let peak = f(&plain["prediction"]["peak_bytes"]);
    // Production paid twice the replay's peak at the same size.
    let observed = format!("200000={}", (2.0 * peak).round() as u64);
    let calibrated = json_of(&ask(
        "check",
        &[
            "--memory",
            "64GiB",
            "--rows",
            "200000",
            "--json",
            "--observed",
            &observed,
        ],
    ));
    let twice = f(&calibrated["prediction"]["peak_bytes"]);
    assert!((twice / peak - 2.0).abs() < 1e-6, "{twice} vs {peak}");
    // Recommend under the same budget then keeps fewer rows.
    let keep = |extra: &[&str]| {
        let mut args = vec![
            "--memory",
            "240MiB",
            "--rows",
            "200000",
            "--json",
            "--no-coverage",
        ];
        args.extend_from_slice(extra);
        kept(&json_of(&ask("recommend", &args)))
    };
    assert!(keep(&["--observed", &observed]) < keep(&[]));
    let out = ask(
        "recommend",
        &[
            "--memory",
            "1GiB",
            "--rows",
            "200000",
            "--no-coverage",
            "--observed",
            &observed,
        ],
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("Calibration: x2.00 on every prediction (from --observed"));
}

#[test]
fn sizes_and_values_are_parsed_through_the_cli() {
    // Valid forms: exit 0 (fits) or 4 (nothing fits), never 2.
    for memory in [
        "64GiB",
        "64 GiB",
        "150GB",
        "512MiB",
        "1.5GiB",
        "0.5T",
        "2000000000",
        "64g",
    ] {
        let out = ask(
            "recommend",
            &["--memory", memory, "--rows", "200000", "--no-coverage"],
        );
        assert!(
            matches!(code(&out), 0 | 4),
            "--memory {memory}: {}",
            text(&out)
        );
        let out = ask("check", &["--memory", memory, "--rows", "200000"]);
        assert!(
            matches!(code(&out), 0 | 1),
            "--memory {memory}: {}",
            text(&out)
        );
    }
    // Invalid: exit 2, and the message names the value and what was expected.
    for memory in ["abc", "", "64XB", "0GiB", "1.2.3GiB", "GiB", "64 Gibibytes"] {
        for command in ["recommend", "check"] {
            let mut args = vec!["--memory", memory, "--rows", "200000"];
            if command == "recommend" {
                args.push("--no-coverage");
            }
            let out = ask(command, &args);
            assert_eq!(
                code(&out),
                2,
                "{command} --memory {memory:?}: {}",
                text(&out)
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(&format!("--memory {memory}")) && stderr.contains("expected"),
                "{command} --memory {memory:?}: {stderr}"
            );
        }
    }
    for (flag, value, needle) in [
        ("--rows", "many", "expected a whole number of rows"),
        ("--rows", "0", "expected at least one row"),
        ("--headroom", "1.5", "expected a share of the budget"),
        ("--observed", "200000", "expected ROWS=PEAK"),
        ("--observed", "200000=lots", "PEAK"),
        (
            "--sampling",
            "stratified",
            "possible values: uniform, capped",
        ),
    ] {
        let out = ask(
            "recommend",
            &["--memory", "1GiB", "--no-coverage", flag, value],
        );
        assert_eq!(code(&out), 2, "{flag} {value}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{flag} {value}: {stderr}");
    }
    let out = ask("check", &["--memory", "1GiB", "--strategy", "pandas"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    let missing = oomlab()
        .args([
            "recommend",
            "--model",
            "/nonexistent/model.json",
            "--memory",
            "1GiB",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&missing), 2);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/model.json"));
    let bad_scales = oomlab()
        .args([
            "sweep",
            "--scenario",
            "scenarios/ci.toml",
            "--scales",
            "0.5,abc,1",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&bad_scales), 2);
    assert!(String::from_utf8_lossy(&bad_scales.stderr).contains("`abc` is not a number"));
}

#[test]
fn coverage_figures_on_the_tiny_scenario_are_sane() {
    let out = ask(
        "recommend",
        &["--memory", "240MiB", "--rows", "200000", "--json"],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let answer = json_of(&out);
    let coverage = &answer["coverage"];
    assert_eq!(coverage["datasets"], 5000);
    let candidates = coverage["candidates"].as_array().unwrap();
    assert!(!candidates.is_empty());
    // The recommended cap is among the candidates.
    let cap = answer["max_ranking_samples"].as_u64().unwrap();
    assert!(candidates.iter().any(|c| c["max_ranking_samples"] == cap));
    for c in candidates {
        for source in ["expected", "measured"] {
            let row = &c[source];
            let share = |mode: &str, k: &str| f(&row[mode][format!("share_at_least_{k}")]);
            for mode in ["none", "uniform", "capped"] {
                assert!((0.0..=1.0).contains(&share(mode, "1")), "{source} {mode}");
                assert!(
                    share(mode, "10") <= share(mode, "1") + 1e-12,
                    "{source} {mode}"
                );
                // Sampling never adds a dataset.
                assert!(
                    share(mode, "1") <= share("none", "1") + 1e-12,
                    "{source} {mode}"
                );
            }
            // Capping per dataset keeps at least as much of the tail as uniform.
            assert!(
                share("capped", "1") >= share("uniform", "1") - 1e-12,
                "{source} cap {}: capped {} < uniform {}",
                c["max_ranking_samples"],
                share("capped", "1"),
                share("uniform", "1")
            );
            assert_eq!(f(&row["capped"]["rows"]), f(&row["uniform"]["rows"]));
        }
    }
    let printed = ask("recommend", &["--memory", "240MiB", "--rows", "200000"]);
    let stdout = String::from_utf8_lossy(&printed.stdout);
    assert!(
        stdout.contains("What sampling costs the long tail"),
        "{stdout}"
    );
    assert!(stdout.contains("MAX_RANKING_SAMPLES="), "{stdout}");
    assert!(stdout.contains("cat >> .env << EOF"), "{stdout}");
    assert!(stdout.contains("By budget"), "{stdout}");
    assert!(stdout.contains("Rule of thumb (Q2)"), "{stdout}");
}

#[test]
fn gib_budgets_of_the_table_are_the_write_ups() {
    let answer = json_of(&ask(
        "recommend",
        &[
            "--memory",
            "64GiB",
            "--rows",
            "8532146",
            "--json",
            "--no-coverage",
        ],
    ));
    let budgets: Vec<u64> = answer["table"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["budget_gib"].as_u64().unwrap())
        .collect();
    assert_eq!(budgets, [16, 32, 50, 64, 100, 150]);
    let rules: Vec<u64> = answer["table"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule_of_thumb"].as_u64().unwrap())
        .collect();
    assert_eq!(
        rules,
        [2_000_000, 2_000_000, 5_000_000, 5_000_000, 5_000_000, 0]
    );
    assert!(f(&answer["limit_bytes"]) < 64.0 * GIB);
}

/// Issue 10: a fidelity result calibrates `recommend`, `check` and
/// `postmortem` (offset + factor, in pandas bytes), and only a model of its
/// own scenario.
#[test]
fn a_fidelity_result_calibrates_recommend_check_and_postmortem() {
    let s = sweep();
    let (dir, _) = common::fidelity_ci("model-fidelity", 1);
    let fidelity = dir.join("fidelity.json");
    let fidelity = fidelity.to_str().unwrap();
    let out = ask(
        "recommend",
        &["--memory", "64GiB", "--no-coverage", "--fidelity", fidelity],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(stdout.contains("Calibration: x"), "{stdout}");
    assert!(stdout.contains("from the pandas runs in"), "{stdout}");
    let log = dir.join("pipeline.log");
    std::fs::write(
        &log,
        "INFO Ranking samples: 200000 rows before optimization\nINFO Merging with dataset features (87 columns)...\nKilled\n",
    )
    .unwrap();
    let pm = dir.join("pm");
    let out = oomlab()
        .args([
            "postmortem",
            "--log",
            log.to_str().unwrap(),
            "--model",
            s.model.to_str().unwrap(),
            "--fidelity",
            fidelity,
            "--out",
            pm.to_str().unwrap(),
        ])
        .output()
        .expect("oomlab runs");
    assert_eq!(code(&out), 0, "{}", text(&out));
    let md = std::fs::read_to_string(pm.join("postmortem.md")).unwrap();
    assert!(md.contains("to peaks from the pandas runs in"), "{md}");
    // The committed production model is of another scenario: refused, naming both.
    let out = oomlab()
        .args([
            "check",
            "--model",
            "reports/model.json",
            "--fidelity",
            fidelity,
            "--memory",
            "64GiB",
        ])
        .output()
        .expect("oomlab runs");
    assert_eq!(code(&out), 2, "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`ci`") && err.contains("`production`"),
        "{err}"
    );
}

/// `sweep --memory-mode pandas`: a model in the pandas representation's bytes,
/// without `streaming` (no pandas counterpart), that `recommend` names as such.
#[test]
fn a_pandas_mode_sweep_fits_legacy_and_optimized_only() {
    let dir = scratch("model-sweep-pandas");
    let model = dir.join("model.json");
    let out = run_sweep(
        &dir,
        &model,
        &[
            "--scales",
            "0.25,0.5,1",
            "--max-ranking-samples-fraction",
            "0.5",
            "--memory-mode",
            "pandas",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    assert_eq!(json["memory_mode"], "pandas");
    let names: Vec<&str> = json["variants"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert!(
        names.contains(&"legacy") && names.contains(&"optimized"),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("streaming")),
        "{names:?}"
    );
    let out = oomlab()
        .args([
            "recommend",
            "--model",
            model.to_str().unwrap(),
            "--memory",
            "1GiB",
            "--no-coverage",
        ])
        .output()
        .expect("oomlab runs");
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("pandas 2.x memory mode"));
}

/// Compares two JSON documents field for field, floats to a relative 1e-9
/// (round-off), and returns every difference by its path.
fn differences(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => differences(p, q, &format!("{path}/{k}"), out),
                    _ => out.push(format!("{path}/{k}: only in one")),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                differences(p, q, &format!("{path}[{i}]"), out);
            }
        }
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            if (x - y).abs() > 1e-9 * x.abs().max(y.abs()).max(1.0) {
                out.push(format!("{path}: {x} != {y}"));
            }
        }
        _ if a != b => out.push(format!("{path}: {a} != {b}")),
        _ => {}
    }
}

/// `oomlab model fit` on the reports the sweep wrote gives the sweep's own
/// model, field for field up to float round-off (only the time it was
/// fitted differs) (issue 19).
#[test]
fn model_fit_on_a_sweeps_reports_is_the_sweeps_model() {
    let s = sweep();
    let out = scratch("model-fit-refit");
    let cache = cache_dir();
    let fit = oomlab()
        .args(["model", "fit"])
        .arg(&s.dir)
        .args(["--cache-dir", cache.to_str().unwrap(), "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(code(&fit), 0, "{}", text(&fit));
    let refit: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("model.json")).unwrap()).unwrap();
    let mut diffs = Vec::new();
    differences(&s.json, &refit, "", &mut diffs);
    diffs.retain(|d| !d.starts_with("/created_at"));
    assert!(
        diffs.is_empty(),
        "model fit differs from the sweep: {diffs:#?}"
    );
    assert!(out.join("sweep.md").is_file() && out.join("sweep.png").is_file());
    assert!(String::from_utf8_lossy(&fit.stdout).contains("Held-out check"));
}

/// Reports from two machines of different sizes fit one model, which says
/// so; reports of another scenario are refused naming the files (issue 19).
#[test]
fn model_fit_pools_machines_and_refuses_mixtures() {
    let s = sweep();
    let copy = scratch("model-fit-machines");
    let mut n = 0;
    for scale in ["scale-0.25", "scale-0.5", "scale-0.75", "scale-1"] {
        let from = s.dir.join(scale).join("no-sampling/report.json");
        let dir = copy.join(scale);
        std::fs::create_dir_all(&dir).unwrap();
        let mut report: Value =
            serde_json::from_str(&std::fs::read_to_string(&from).unwrap()).unwrap();
        if scale.ends_with('1') || scale.ends_with("0.5") {
            // Measured on a bigger machine.
            report["machine"]["total_memory_bytes"] = (256u64 << 30).into();
            report["machine"]["cpus"] = 32.into();
            n += 1;
        }
        std::fs::write(dir.join("report.json"), report.to_string()).unwrap();
    }
    assert_eq!(n, 2);
    let out = copy.join("fit");
    let fit = oomlab()
        .args(["model", "fit"])
        .arg(&copy)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(code(&fit), 0, "{}", text(&fit));
    let stdout = String::from_utf8_lossy(&fit.stdout);
    assert!(stdout.contains("reports of 2 machines"), "{stdout}");
    assert!(stdout.contains("32 CPUs"), "{stdout}");
    let model: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("model.json")).unwrap()).unwrap();
    assert_eq!(model["machines"].as_array().map(Vec::len), Some(2));
    assert_eq!(model["scales"].as_array().map(Vec::len), Some(4));

    // Another scenario's replay among them: refused, exit 2, naming both.
    let other = copy.join("other/report.json");
    std::fs::create_dir_all(other.parent().unwrap()).unwrap();
    let mut report: Value = serde_json::from_str(
        &std::fs::read_to_string(s.dir.join("scale-1/no-sampling/report.json")).unwrap(),
    )
    .unwrap();
    report["scenario"]["name"] = "default".into();
    std::fs::write(&other, report.to_string()).unwrap();
    let refused = oomlab().args(["model", "fit"]).arg(&copy).output().unwrap();
    assert_eq!(code(&refused), 2, "{}", text(&refused));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("other/report.json"), "{err}");
    assert!(err.contains("scale-0.25/report.json"), "{err}");
    assert!(err.contains("`default`") && err.contains("`ci`"), "{err}");
    // Nothing there: exit 2 naming it.
    let missing = oomlab()
        .args(["model", "fit", "no/such/dir"])
        .output()
        .unwrap();
    assert_eq!(code(&missing), 2);
    assert!(text(&missing).contains("no/such/dir"));
}

/// Issue 20: a sweep over rows and numeric profile columns on ci.toml (3 x 3
/// plus the held-out point larger in both), and the growth headroom `check`
/// prints from it, held to the model's own predictions at the boundary.
#[test]
fn a_column_sweep_predicts_the_held_out_point_and_check_marks_the_boundary() {
    let dir = scratch("model-sweep-columns");
    let model = dir.join("saved-model.json");
    let out = run_sweep(
        &dir,
        &model,
        &[
            "--scales",
            "0.1,0.2,0.4,0.8",
            "--columns",
            "87,137,187,287",
            "--max-ranking-samples-fraction",
            "none",
            "--chunk-rows",
            "5000",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout.contains("predicting scale 0.8 at 287 columns (larger in both)"),
        "{stdout}"
    );
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("model.json")).unwrap()).unwrap();
    assert_eq!(
        json["columns"]["measured"],
        serde_json::json!([87, 137, 187, 287])
    );
    for variant in ["legacy", "optimized"] {
        let err = f(&json["validation"]["max_abs_error_pct"][variant]);
        assert!(err < MODEL_MARGIN * 100.0, "{variant}: {err}%\n{stdout}");
    }

    let ask = |args: &[&str]| {
        oomlab()
            .arg("check")
            .arg("--model")
            .arg(&model)
            .args(["--memory", "1GiB", "--rows", "200000"])
            .args(args)
            .output()
            .expect("oomlab runs")
    };
    let plain = ask(&[]);
    let said = String::from_utf8_lossy(&plain.stdout).into_owned();
    let j = json_of(&ask(&["--json"]));
    let growth = &j["growth"];
    // Columns alone: the largest count fits, one more does not.
    let max = growth["columns"]["max_columns"].as_u64().expect("bounded");
    assert!(max > 87, "{growth}");
    assert!(
        said.contains(&format!(
            "numeric profile columns can grow from 87 to {max}"
        )),
        "{said}"
    );
    assert_eq!(code(&ask(&["--columns", &max.to_string()])), 0);
    assert_eq!(code(&ask(&["--columns", &(max + 1).to_string()])), 1);
    // Rows alone, likewise.
    let rows = growth["rows"]["max_rows"].as_u64().expect("bounded");
    let at_rows = |r: u64| {
        oomlab()
            .args(["check", "--model"])
            .arg(&model)
            .args(["--memory", "1GiB", "--rows", &r.to_string()])
            .output()
            .unwrap()
    };
    assert_eq!(code(&at_rows(rows)), 0);
    assert_eq!(code(&at_rows(rows + 1)), 1);
    // The two-way table: every cell is what `check` says at its sizes.
    let cells = growth["table"]["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4);
    for row in cells {
        let row = row.as_array().unwrap();
        assert_eq!(row.len(), 4);
        for cell in row {
            let verdict = oomlab()
                .args(["check", "--model"])
                .arg(&model)
                .args([
                    "--memory",
                    "1GiB",
                    "--rows",
                    &cell["rows_in"].to_string(),
                    "--columns",
                    &cell["columns"].to_string(),
                ])
                .output()
                .unwrap();
            let fits = cell["fits"].as_bool().unwrap();
            assert_eq!(code(&verdict), if fits { 0 } else { 1 }, "{cell}");
        }
    }
    assert!(said.contains("287 (+200)"), "{said}");
    assert!(said.contains("x10 2,000,000"), "{said}");
}
