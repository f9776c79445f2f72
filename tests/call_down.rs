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
