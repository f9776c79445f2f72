//! Issue 2 acceptance: the ranking-prep replay on ci.toml, through the real binary.

mod common;

use common::{cache_dir, completed_with_stages, oomlab, replay, run, run_of, scratch, stage, u};

const LEGACY_STAGES: &[&str] = &[
    "load",
    "copy",
    "dropna",
    "merge_dataset_profile",
    "merge_user_features",
];
const OPTIMIZED_STAGES: &[&str] = &[
    "load",
    "dropna",
    "sample",
    "slim_profile",
    "merge_dataset_profile",
    "free_intermediates",
    "merge_user_features",
    "downcast",
];

#[test]
fn compare_measures_every_stage_and_legacy_peaks_far_higher() {
    let (report, dir) = replay("compare-basic", "compare", &[]);
    assert_eq!(report["schema_version"], 1);
    assert!(report["allocator"].as_str().unwrap().contains("glibc"));
    assert!(u(&report["machine"]["total_memory_bytes"]) > 0);
    assert_eq!(u(&report["scenario"]["production"]["sample_rows"]), 200_000);
    for (strategy, stages) in [("legacy", LEGACY_STAGES), ("optimized", OPTIMIZED_STAGES)] {
        let run = completed_with_stages(&report, strategy, stages);
        for s in run["stages"].as_array().unwrap() {
            assert!(s["end_s"].as_f64().unwrap() >= s["start_s"].as_f64().unwrap());
        }
        assert!(
            run["timeline"]["t_s"].as_array().unwrap().len() >= 2,
            "{strategy} timeline"
        );
    }
    let legacy = u(&run_of(&report, "legacy")["peak_bytes"]);
    let optimized = u(&run_of(&report, "optimized")["peak_bytes"]);
    assert!(
        legacy as f64 > 2.0 * optimized as f64,
        "legacy peak {legacy} should be well above optimized {optimized}"
    );
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.contains("Reduction") && summary.contains("merge_dataset_profile"));
    // The environment is never dumped into reports.
    let text = std::fs::read_to_string(dir.join("report.json")).unwrap();
    assert!(!text.contains("CARGO_MANIFEST_DIR") && !text.contains("\"PATH\""));
}

#[test]
fn legacy_copy_is_a_real_copy() {
    let (report, _) = replay("compare-copy", "run", &["--strategy", "legacy"]);
    let copy = stage(run_of(&report, "legacy"), "copy");
    let copied = u(&copy["detail"]["copied_bytes"]);
    assert!(
        copied > 10_000_000,
        "copy should move the samples' buffers: {copied}"
    );
    // The copy is alive at the stage's end, so the process's anonymous RSS
    // (its heap, not the pages of the memory-mapped input, which the kernel
    // may reclaim under pressure while the stage runs) rose by at least the
    // bytes copied. A polars clone would share the buffers and raise nothing.
    let anon = |k: &str| u(&copy["detail"][k]);
    let rose = anon("rss_anon_end_bytes").saturating_sub(anon("rss_anon_start_bytes"));
    assert!(
        rose >= copied,
        "anonymous RSS rose by {rose} bytes in the copy stage, less than the {copied} bytes copied: the copy shares buffers"
    );
    // And the exact peak shows it on a quiet machine; allow for reclaim.
    let peak_rose = u(&copy["exact_peak_bytes"]) - u(&copy["rss_start_bytes"]);
    assert!(
        peak_rose >= copied / 4,
        "the copy stage's exact peak rose by only {peak_rose} bytes"
    );
}

#[test]
fn sampling_keeps_exactly_the_cap_and_logs_it() {
    let (report, _) = replay(
        "compare-sampling",
        "run",
        &["--strategy", "optimized", "--max-ranking-samples", "50000"],
    );
    let run = run_of(&report, "optimized");
    assert_eq!(u(&run["output"]["rows"]), 50_000);
    assert_eq!(u(&stage(run, "sample")["detail"]["rows"]), 50_000);
    assert_eq!(u(&report["settings"]["max_ranking_samples"]), 50_000);
    let logs: Vec<&str> = run["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert!(
        logs.iter().any(|l| l.starts_with("Sampling ranking data: ")
            && l.ends_with("-> 50000 rows (set MAX_RANKING_SAMPLES=0 to disable)")),
        "{logs:?}"
    );
    assert!(
        logs.contains(&"Ranking data prepared: 50000 rows, 105 features"),
        "{logs:?}"
    );
    assert!(
        logs.contains(&"Merging with dataset features (87 columns)..."),
        "{logs:?}"
    );
}

#[test]
fn environment_sets_the_cap_and_the_flag_wins() {
    let out = scratch("env-cap");
    let cache = cache_dir();
    let base = [
        "run",
        "--strategy",
        "optimized",
        "--scenario",
        "scenarios/ci.toml",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    let read = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
    };
    let status = common::oomlab()
        .args(base)
        .env("MAX_RANKING_SAMPLES", "30000")
        .status()
        .unwrap();
    assert!(status.success());
    let r = read();
    assert_eq!(u(&r["settings"]["max_ranking_samples"]), 30_000);
    assert_eq!(r["settings"]["max_ranking_samples_source"], "env");
    let status = common::oomlab()
        .args(base)
        .args(["--max-ranking-samples", "20000"])
        .env("MAX_RANKING_SAMPLES", "30000")
        .status()
        .unwrap();
    assert!(status.success());
    let r = read();
    assert_eq!(u(&run_of(&r, "optimized")["output"]["rows"]), 20_000);
    assert_eq!(r["settings"]["max_ranking_samples_source"], "flag");
    let bad = common::oomlab()
        .args(base)
        .env("MAX_RANKING_SAMPLES", "lots")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("MAX_RANKING_SAMPLES"));
}

fn data_hash(scenario: &str, cache: &str) -> String {
    let out = run(&["data", "--scenario", scenario, "--cache-dir", cache]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn same_seed_same_data_other_seed_other_data() {
    let a = scratch("hash-a");
    let b = scratch("hash-b");
    let first = data_hash("scenarios/ci.toml", a.to_str().unwrap());
    let second = data_hash("scenarios/ci.toml", b.to_str().unwrap());
    assert_eq!(first.len(), 16);
    assert_eq!(first, second, "two independent generations must hash alike");
    let other = scratch("hash-c");
    let text = std::fs::read_to_string("scenarios/ci.toml")
        .unwrap()
        .replace("seed = 7", "seed = 8");
    let path = other.join("ci-seed8.toml");
    std::fs::write(&path, text).unwrap();
    let third = data_hash(path.to_str().unwrap(), other.to_str().unwrap());
    assert_ne!(first, third, "another seed must give other data");
}

#[test]
fn malformed_scenarios_exit_2_naming_file_and_key() {
    let dir = scratch("bad-scenarios");
    let good = std::fs::read_to_string("scenarios/ci.toml").unwrap();
    let cases = [
        (
            "bad-key.toml",
            good.replace("rows = 200_000", "rowz = 200_000"),
            "rowz",
        ),
        (
            "negative.toml",
            good.replace("rows = 200_000", "rows = -5"),
            "ranking_samples.rows",
        ),
        (
            "kind.toml",
            good.replace("kind = \"float\"", "kind = \"blob\""),
            "blob",
        ),
    ];
    for (file, text, key) in cases {
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        let out = run(&["compare", "--scenario", path.to_str().unwrap(), "--quiet"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        assert!(
            stderr.contains(file) && stderr.contains(key),
            "{file}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let out = run(&["compare", "--scenario", "scenarios/nope.toml", "--quiet"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("scenarios/nope.toml"));
    let out = run(&["compare", "--scale", "-1", "--quiet"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Issue 10's `pandas` memory mode: same prepared data as polars mode (the
/// handles decode to the same strings), object columns at 8 bytes a row, and
/// the before/after relation kept.
#[test]
fn pandas_memory_mode_holds_strings_as_handles_and_keeps_the_output() {
    let both = ["--strategy", "legacy,optimized", "--hash-output"];
    let (polars, _) = replay("mode-polars", "run", &both);
    let mut args = both.to_vec();
    args.extend(["--memory-mode", "pandas"]);
    let (pandas, dir) = replay("mode-pandas", "run", &args);
    assert_eq!(pandas["settings"]["memory_mode"], "pandas");
    let summary = std::fs::read_to_string(dir.join("summary.md")).expect("summary.md");
    assert!(summary.contains("pandas 2.x memory mode"), "{summary}");
    assert_eq!(polars["settings"]["memory_mode"], "polars");
    for strategy in ["legacy", "optimized"] {
        let (p, q) = (run_of(&polars, strategy), run_of(&pandas, strategy));
        assert_eq!(
            p["output"]["hash"], q["output"]["hash"],
            "{strategy}: pandas mode prepared other data"
        );
        assert!(q["output"]["hash"].is_string());
    }
    // The wide merge holds 213 object columns: 8-byte handles, not 16-byte views.
    let merged = |r: &serde_json::Value| {
        u(&stage(run_of(r, "legacy"), "merge_dataset_profile")["detail"]["bytes"])
    };
    assert!(
        merged(&pandas) < merged(&polars),
        "pandas mode {} vs polars mode {}",
        merged(&pandas),
        merged(&polars)
    );
    let peak = |r: &serde_json::Value, s: &str| u(&run_of(r, s)["peak_bytes"]);
    assert!(peak(&pandas, "legacy") > peak(&pandas, "optimized"));
}

#[test]
fn pandas_memory_mode_refuses_what_it_cannot_replay() {
    let cache = cache_dir();
    let cache = cache.to_str().unwrap();
    for (extra, needle) in [
        (vec!["--memory-mode", "numpy"], "'numpy' for '--memory-mode"),
        (
            vec!["--memory-mode", "pandas", "--strategy", "streaming"],
            "streaming",
        ),
    ] {
        let mut args = vec![
            "run",
            "--scenario",
            "scenarios/ci.toml",
            "--cache-dir",
            cache,
        ];
        args.extend(extra);
        let output = run(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// The bundled scenarios work from any directory, by name and by their
/// repository path, and `scenarios` lists and prints them (issue 19).
#[test]
fn bundled_scenarios_run_outside_a_checkout() {
    let dir = common::scratch("bundled-scenarios");
    let cache = common::cache();
    let list = oomlab()
        .arg("scenarios")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(list.status.code(), Some(0));
    let listed = String::from_utf8_lossy(&list.stdout);
    for name in ["default", "ci", "production", "similarity"] {
        assert!(listed.contains(name), "{listed}");
    }
    let show = oomlab()
        .args(["scenarios", "show", "ci"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&show.stdout).contains("name = \"ci\""));
    for spec in ["ci", "scenarios/ci.toml"] {
        let data = oomlab()
            .args(["data", "--scenario", spec, "--cache-dir", &cache])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert_eq!(
            data.status.code(),
            Some(0),
            "{spec}: {}",
            common::text(&data)
        );
    }
    let missing = oomlab()
        .args(["data", "--scenario", "nope", "--cache-dir", &cache])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(common::text(&missing).contains("bundled scenario"));
}

/// Outside a checkout, `recommend` and `check` without a model answer from
/// the bundled production model and say so first; a bundled model is named
/// by `--model NAME`; `scenarios write` gives the pandas reference (issue 19).
#[test]
fn bundled_model_and_reference_outside_a_checkout() {
    let dir = common::scratch("bundled-model");
    let asked = |args: &[&str]| {
        oomlab()
            .args(args)
            .env_remove("OOMLAB_MODEL")
            .current_dir(&dir)
            .output()
            .unwrap()
    };
    let out = asked(&["recommend", "--memory", "64GiB", "--no-coverage"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.contains("bundled model `production`"),
        "first line: {first}"
    );
    assert!(stdout.contains("MAX_RANKING_SAMPLES="), "{stdout}");
    let check = asked(&["check", "--memory", "150GiB"]);
    assert_eq!(check.status.code(), Some(0), "{}", common::text(&check));
    let first = String::from_utf8_lossy(&check.stdout);
    assert!(first
        .lines()
        .next()
        .unwrap_or_default()
        .contains("bundled model"));
    assert!(first.lines().nth(1).unwrap_or_default().starts_with("FITS"));
    // Named: no fallback sentence, the command model's own bytes.
    let named = asked(&[
        "check",
        "--memory",
        "150GiB",
        "--model",
        "command-optimized-pandas2",
    ]);
    assert_eq!(named.status.code(), Some(0), "{}", common::text(&named));
    let named = String::from_utf8_lossy(&named.stdout);
    assert!(named.starts_with("FITS"), "{named}");
    // Asked for a file that is not there: exit 2 naming it, no fallback.
    let missing = asked(&["check", "--memory", "150GiB", "--model", "nope.json"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(common::text(&missing).contains("nope.json"));
    // The pandas reference, written out as the repository holds it.
    let written = asked(&["scenarios", "write", "sc"]);
    assert_eq!(written.status.code(), Some(0), "{}", common::text(&written));
    let reference = std::fs::read_to_string(dir.join("sc/pandas/ranking_prep.py")).unwrap();
    let original = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/pandas/ranking_prep.py"),
    )
    .unwrap();
    assert_eq!(reference, original);
    assert!(dir.join("sc/production.toml").is_file());
    // Again: same files, nothing to refuse; a changed file is not overwritten.
    assert_eq!(asked(&["scenarios", "write", "sc"]).status.code(), Some(0));
    std::fs::write(dir.join("sc/ci.toml"), "edited").unwrap();
    let refused = asked(&["scenarios", "write", "sc"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(common::text(&refused).contains("ci.toml"));
}
