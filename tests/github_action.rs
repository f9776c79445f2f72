//! Issue 26: the GitHub Actions composite action (.github/actions/oomlab-gate/).
//!
//! Its step is gate.sh; these tests run it as the runner would, with
//! `$GITHUB_STEP_SUMMARY` and `$GITHUB_OUTPUT` set to temporary files, and
//! check the Markdown verdict and the outputs it leaves: blessing a pipeline,
//! a planted `samples.copy()` failing naming its stage and bytes per row, and
//! a missing baseline reported in the summary instead of silently.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{bin, path_str, scratch, text};

const ACTION: &str = ".github/actions/oomlab-gate";
const DROPNA: &str =
    "    working = samples.dropna(subset=[\"label\"])  # no copy first\n    del samples\n";
const COPY: &str =
    "    working = samples.copy()\n    working = working.dropna(subset=[\"label\"])\n";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs gate.sh in `dir` with the action's inputs, as the composite step does.
fn step(dir: &Path, inputs: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(repo().join(ACTION).join("gate.sh"))
        .current_dir(dir)
        .env("OOMLAB_BIN", bin())
        .env("GITHUB_STEP_SUMMARY", dir.join("summary.md"))
        .env("GITHUB_OUTPUT", dir.join("output.txt"))
        .env("ARROW_DEFAULT_MEMORY_POOL", "system")
        .env_remove("MAX_RANKING_SAMPLES");
    for (k, v) in inputs {
        cmd.env(format!("INPUT_{k}"), v);
    }
    cmd.output().expect("bash runs gate.sh")
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const PIPELINE_INPUTS: [(&str, &str); 6] = [
    ("BASELINE", "memory-baseline.json"),
    ("COMMAND", "python3 pipeline.py {rows}"),
    ("ROWS", "40000,80000,160000"),
    ("PRODUCTION_ROWS", "8532146"),
    ("STAGE_PATTERN", r"^INFO \[stage\] (\S+)$"),
    // Medians of two runs: one run's slope moved by up to 60 B/row here; the
    // planted copy moves merge_dataset_profile by about 150 B/row (+12%; two
    // runs' slopes 2 B/row apart) and dropna by about 140 (+33%).
    ("RUNS", "2"),
];

#[test]
fn the_step_blesses_then_fails_a_planted_copy_in_the_job_summary() {
    let dir = scratch("github-action-gate");
    let source = read(repo().join("tests/fixtures/gate_pipeline.py"));
    assert!(source.contains(DROPNA), "the test pipeline changed");
    std::fs::write(dir.join("pipeline.py"), &source).unwrap();

    let mut bless = PIPELINE_INPUTS.to_vec();
    bless.push(("UPDATE", "true"));
    let out = step(&dir, &bless);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let outputs = read(dir.join("output.txt"));
    assert!(outputs.contains("verdict=updated\n"), "{outputs}");
    assert!(outputs.contains("exit-code=0\n"), "{outputs}");
    let summary = read(dir.join("summary.md"));
    assert!(
        summary.starts_with("## oomlab memory gate: baseline updated"),
        "{summary}"
    );

    // The same command line, now with the copy the write-up removed.
    std::fs::write(dir.join("pipeline.py"), source.replace(DROPNA, COPY)).unwrap();
    std::fs::remove_file(dir.join("summary.md")).unwrap();
    std::fs::remove_file(dir.join("output.txt")).unwrap();
    let out = step(&dir, &PIPELINE_INPUTS);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let outputs = read(dir.join("output.txt"));
    assert!(outputs.contains("verdict=regression\n"), "{outputs}");
    assert!(
        outputs.contains("json=oomlab-gate-result.json\n"),
        "{outputs}"
    );
    let result: serde_json::Value =
        serde_json::from_str(&read(dir.join("oomlab-gate-result.json"))).unwrap();
    assert_eq!(result["passed"], false);

    let md = read(dir.join("summary.md"));
    assert!(
        md.starts_with("## oomlab memory gate: ❌ regression"),
        "{md}"
    );
    assert!(
        md.contains("### `python3 pipeline.py {rows}` against memory-baseline.json"),
        "{md}"
    );
    assert!(
        md.contains("per-row cost priced at 8,532,146 production rows"),
        "{md}"
    );
    // A Markdown table whose regressed row names the stage.
    let row = md
        .lines()
        .find(|l| l.starts_with("| merge_dataset_profile |"))
        .unwrap_or_else(|| panic!("no merge_dataset_profile row:\n{md}"));
    assert!(row.contains("REGRESSED"), "{row}");
    assert!(
        md.lines()
            .any(|l| l.starts_with("- merge_dataset_profile: ") && l.contains(" B/row (+")),
        "the verdict names the stage and its bytes per row:\n{md}"
    );

    // A command the baseline has no entry for is bad input, named, not a pass.
    let mut other = PIPELINE_INPUTS.to_vec();
    other[1] = ("COMMAND", "python3 other.py {rows}");
    let out = step(&dir, &other);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("memory-baseline.json has no entry for `python3 other.py {rows}`"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_missing_baseline_is_reported_in_the_summary_with_exit_2() {
    let dir = scratch("github-action-bad");
    let out = step(&dir, &[("BASELINE", "nowhere.json"), ("RUNS", "1")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let outputs = read(dir.join("output.txt"));
    assert!(outputs.contains("verdict=bad-input\n"), "{outputs}");
    let md = read(dir.join("summary.md"));
    assert!(
        md.starts_with("## oomlab memory gate: ⚠️ could not judge (exit 2, bad-input)"),
        "{md}"
    );
    assert!(
        md.contains("nowhere.json"),
        "the error names the file:\n{md}"
    );
}

#[test]
fn action_yml_passes_every_input_gate_sh_reads() {
    let yml = read(repo().join(ACTION).join("action.yml"));
    let script = read(repo().join(ACTION).join("gate.sh"));
    assert!(yml.contains("using: composite"), "{yml}");
    assert!(yml.contains("run: bash \"$GITHUB_ACTION_PATH/gate.sh\""));
    let mut read_vars: Vec<&str> = script
        .match_indices("INPUT_")
        .map(|(i, _)| {
            let rest = &script[i..];
            let end = rest
                .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();
    read_vars.sort_unstable();
    read_vars.dedup();
    read_vars.retain(|v| v.len() > "INPUT_".len());
    assert!(read_vars.len() >= 9, "{read_vars:?}");
    for var in read_vars {
        assert!(
            yml.contains(&format!("{var}: ${{{{ inputs.")),
            "action.yml does not set {var}"
        );
    }
    assert!(path_str(Path::new(ACTION)).ends_with("oomlab-gate"));
}
