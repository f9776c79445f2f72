//! The scenarios and the pandas reference compiled into the binary, so an
//! installed oomlab works from any directory.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::bad_input;

/// The scenario `compare` runs when no `--scenario` is given.
pub const DEFAULT_SCENARIO: &str = "scenarios/default.toml";

/// The scenarios built into the binary, by name: an installed oomlab runs
/// `--scenario production` (or its default) from any directory, without a
/// checkout of this repository.
pub const BUNDLED: [(&str, &str); 5] = [
    ("default", include_str!("../../scenarios/default.toml")),
    ("ci", include_str!("../../scenarios/ci.toml")),
    (
        "production",
        include_str!("../../scenarios/production.toml"),
    ),
    (
        "similarity",
        include_str!("../../scenarios/similarity.toml"),
    ),
    (
        "similarity-ci",
        include_str!("../../scenarios/similarity-ci.toml"),
    ),
];

/// The pandas reference implementation (`scenarios/pandas/`), built into
/// the binary as (path under `scenarios/`, text): an installed oomlab can
/// write it out (`oomlab scenarios write DIR`) to run the pipeline itself,
/// sweep it as a command, or check the replay's fidelity against it.
pub const REFERENCE: [(&str, &str); 5] = [
    (
        "pandas/ranking_prep.py",
        include_str!("../../scenarios/pandas/ranking_prep.py"),
    ),
    (
        "pandas/similarity.py",
        include_str!("../../scenarios/pandas/similarity.py"),
    ),
    (
        "pandas/requirements.txt",
        include_str!("../../scenarios/pandas/requirements.txt"),
    ),
    (
        "pandas/requirements-pandas3.txt",
        include_str!("../../scenarios/pandas/requirements-pandas3.txt"),
    ),
    (
        "pandas/README.md",
        include_str!("../../scenarios/pandas/README.md"),
    ),
];

/// Writes every bundled scenario (`NAME.toml`) and the pandas reference
/// (`pandas/...`) under `dir`, as the repository's `scenarios/` holds them,
/// so repository paths in the documentation work relative to it. Returns the
/// files written. Refuses (exit 2) to overwrite a file that differs.
pub fn write_bundled(dir: &Path) -> Result<Vec<PathBuf>> {
    let files = BUNDLED
        .iter()
        .map(|(name, text)| (format!("{name}.toml"), *text))
        .chain(REFERENCE.iter().map(|(p, t)| (p.to_string(), *t)));
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = dir.join(rel);
        match std::fs::read(&path) {
            Ok(old) if old == text.as_bytes() => {}
            Ok(_) => {
                return Err(bad_input(format!(
                    "{}: exists and differs from the bundled file; not overwritten (remove it, or write to another directory)",
                    path.display()
                )))
            }
            Err(_) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        bad_input(format!("{}: cannot create directory: {e}", parent.display()))
                    })?;
                }
                std::fs::write(&path, text)
                    .map_err(|e| bad_input(format!("{}: cannot write: {e}", path.display())))?;
            }
        }
        written.push(path);
    }
    Ok(written)
}

/// The text of a bundled scenario named by `spec`: its name (`production`),
/// or the repository path of its file (`scenarios/production.toml`) when no
/// such file is on disk.
pub fn bundled(spec: &Path) -> Option<&'static str> {
    let text = spec.to_str()?;
    let name = text
        .strip_prefix("scenarios/")
        .and_then(|n| n.strip_suffix(".toml"))
        .unwrap_or(text);
    BUNDLED.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}
