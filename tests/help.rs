//! Every command's `--help` against a committed copy (tests/fixtures/help/),
//! so a change to the flags' types or parsing cannot change what a user
//! reads without the change showing in the diff. Regenerate the copies after
//! a deliberate change with `OOMLAB_BLESS_HELP=1 cargo test --release --test
//! help` (docs/CONTRIBUTING.md).

mod common;

use std::path::{Path, PathBuf};

/// `--help` of `path` (`[]` for `oomlab` itself), at a fixed terminal width.
fn help(path: &[String]) -> String {
    let output = common::oomlab()
        .args(path)
        .arg("--help")
        .env("COLUMNS", "100")
        .env_remove("CLICOLOR_FORCE")
        .output()
        .expect("oomlab runs");
    assert!(
        output.status.success(),
        "oomlab {} --help: {:?}",
        path.join(" "),
        output.status
    );
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

/// The subcommands a help text lists under `Commands:` (clap's own `help`
/// left out; hidden commands are not listed).
fn subcommands(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/help")
}

#[test]
fn every_help_matches_its_committed_copy() {
    let bless = std::env::var_os("OOMLAB_BLESS_HELP").is_some_and(|v| v == "1");
    let dir = fixtures();
    let mut queue: Vec<Vec<String>> = vec![Vec::new()];
    let mut seen = Vec::new();
    let mut differ = Vec::new();
    while let Some(path) = queue.pop() {
        let text = help(&path);
        for sub in subcommands(&text) {
            let mut next = path.clone();
            next.push(sub);
            queue.push(next);
        }
        let name = if path.is_empty() {
            "oomlab".to_string()
        } else {
            path.join("-")
        };
        let file = dir.join(format!("{name}.txt"));
        seen.push(format!("{name}.txt"));
        if bless {
            std::fs::create_dir_all(&dir).expect("fixture dir");
            std::fs::write(&file, &text).expect("writing a help copy");
            continue;
        }
        match std::fs::read_to_string(&file) {
            Ok(copy) if copy == text => {}
            Ok(copy) => differ.push(format!(
                "{}: differs from `oomlab {} --help`; first differing line: {:?} (copy) vs {:?} (now)",
                file.display(),
                path.join(" "),
                copy.lines().zip(text.lines()).find(|(a, b)| a != b).map(|(a, _)| a),
                copy.lines().zip(text.lines()).find(|(a, b)| a != b).map(|(_, b)| b),
            )),
            Err(e) => differ.push(format!("{}: {e}", file.display())),
        }
    }
    // The top level, every visible command, and `model fit`.
    assert!(seen.len() >= 14, "too few commands found: {seen:?}");
    let mut stale: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/help exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !seen.contains(n))
        .collect();
    if bless {
        for name in &stale {
            std::fs::remove_file(dir.join(name)).expect("removing a stale help copy");
        }
        stale.clear();
    }
    for name in stale {
        differ.push(format!("{name}: no command prints this help any more"));
    }
    assert!(
        differ.is_empty(),
        "help changed (run `OOMLAB_BLESS_HELP=1 cargo test --release --test help` if deliberate):\n{}",
        differ.join("\n")
    );
}
