//! Issue 28: answers that must not contradict what is in front of them.

mod common;

use std::path::PathBuf;

use common::text;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `oomlab check` on a committed model with a budget it fits.
fn check(model: &str) -> std::process::Output {
    common::oomlab()
        .current_dir(repo())
        .args(["check", "--model"])
        .arg(repo().join(model))
        .args(["--memory", "64GiB", "--rows", "200000"])
        .output()
        .unwrap()
}

/// A command model swept without `--columns` never reported a column
/// count: `check` must not name one (the scenario's 87 was never measured).
#[test]
fn check_on_a_command_model_without_columns_names_no_column_count() {
    let out = check("reports/model-command-optimized-pandas2.json");
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("growth:"), "no growth line:\n{stdout}");
    assert!(
        !stdout.contains("columns"),
        "a column count named:\n{stdout}"
    );
    // A model that measured columns still answers about them.
    let out = check("reports/model-command-optimized-pandas2-columns.json");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("numeric profile columns"), "{}", text(&out));
}

/// Outside a checkout there is no `reports/model.json`: preflight still
/// predicts from the model `recommend` would use (the bundled production
/// model), not from the pessimistic estimate, and says which model it used.
#[test]
fn preflight_outside_a_checkout_predicts_from_the_bundled_model() {
    let dir = std::env::temp_dir().join(format!("oomlab-preflight-bundled-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = common::oomlab()
        .current_dir(&dir)
        .env_remove("OOMLAB_MODEL")
        .env("OOMLAB_PREFLIGHT_AVAILABLE_BYTES", "1000000000")
        .args([
            "run",
            "--scenario",
            "production",
            "--strategy",
            "optimized",
            "--quiet",
        ])
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bundled:production"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A model without capped runs cannot say what a cap saves, but when the
/// unsampled prediction fits, the answer is `MAX_RANKING_SAMPLES=0`, with why;
/// only when it does not fit is the model refused (exit 2).
#[test]
fn recommend_without_capped_runs_answers_zero_when_unsampled_fits() {
    let recommend = |memory: &str| {
        common::oomlab()
            .current_dir(repo())
            .args(["recommend", "--no-coverage", "--model"])
            .arg(repo().join("reports/model-command-legacy-pandas2.json"))
            .args(["--memory", memory, "--rows", "200000"])
            .output()
            .unwrap()
    };
    let out = recommend("64GiB");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("MAX_RANKING_SAMPLES=0: no cap needed"),
        "{stdout}"
    );
    assert!(stdout.contains("no sampled runs"), "{stdout}");
    let out = recommend("10MiB");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("over the") && err.contains("--max-ranking-samples-fraction"),
        "{err}"
    );
}
