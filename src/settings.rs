//! Settings that travel from the command line to a child and into a report:
//! typed once, where clap parses them, and never parsed again.
//!
//! A leaf: it imports only `error` (another leaf), so every layer may name a
//! mode or resolve a setting without climbing up.

use std::path::PathBuf;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use crate::error::bad_input;

/// How a replay child holds its frames (`--memory-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MemoryMode {
    /// polars' own representation, with pandas' allocation points.
    #[default]
    Polars,
    /// pandas 2.x's representation and merge/copy/astype behaviour (2.3's
    /// `concat(copy=True)` merges, no copy-on-write): pandas 3 merges do not
    /// deep-copy, so its figures are not pandas 3's (see `describe`).
    Pandas,
}

impl MemoryMode {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            MemoryMode::Polars => "polars",
            MemoryMode::Pandas => "pandas",
        }
    }

    /// What the mode is named where a figure's origin is printed: the pandas
    /// mode says which pandas it models, since pandas 3 pays differently.
    pub fn label(self) -> &'static str {
        match self {
            MemoryMode::Polars => "polars",
            MemoryMode::Pandas => "pandas 2.x",
        }
    }

    /// One line on what the mode's figures are made of, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            MemoryMode::Polars => {
                "polars: strings as 16-byte views plus their bytes; copies and merges allocate where pandas does"
            }
            MemoryMode::Pandas => {
                "pandas 2.x (2.3's merges and copies; pandas 3's copy-on-write merges do not deep-copy, so sweep a pandas 3 pipeline itself with `oomlab sweep -- CMD`): object columns as 8-byte handles to string objects stored once (CPython sizes); merge = join indexers + take + consolidating copy; astype keeps the old block until all its columns are replaced; the decoded Arrow tables stay, as pyarrow's pool keeps them"
            }
        }
    }
}

/// How `MAX_RANKING_SAMPLES` chooses the rows it keeps.
///
/// A child job carries it (serde default `uniform`, the write-up's behaviour),
/// so old jobs and reports read the same.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SamplingMode {
    /// `sample(n=cap, random_state=42)`: every row equally likely.
    #[default]
    Uniform,
    /// At most `m` rows per dataset, `m` as large as the cap allows, ties broken
    /// by a seeded shuffle: the head is cut, the tail is kept.
    Capped,
}

impl SamplingMode {
    /// The name used on the command line, in jobs and in reports.
    pub fn name(self) -> &'static str {
        match self {
            SamplingMode::Uniform => "uniform",
            SamplingMode::Capped => "capped",
        }
    }
}

/// The seed of every random choice the replay makes (`sample(n,
/// random_state=42)` in the write-up's fix), so that the optimized and the
/// streaming strategies keep the same rows and a rerun keeps the same rows.
pub const SAMPLING_SEED: u64 = 42;

/// What happens to the prepared data (`--output`, `--hash-output`,
/// `--chunk-rows`): a replay plan hands it to every child.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutputSettings {
    /// Write the prepared data to this Parquet file (with several strategies,
    /// the strategy's name is added before the extension).
    pub path: Option<PathBuf>,
    /// Hash the prepared frame (names, dtypes, values) into the report.
    pub hash_output: bool,
    /// Rows per chunk for the `streaming` strategy.
    pub chunk_rows: u64,
}

/// `MAX_RANKING_SAMPLES`, as the pipeline names it in its environment and `.env`.
pub const MAX_RANKING_SAMPLES_ENV: &str = "MAX_RANKING_SAMPLES";

/// Where a pipeline setting's value came from. A report read after an OOM must
/// tell a cap someone chose (a flag, the container's environment, the `.env`
/// the deploy ships) from one nobody set; a string would let every command
/// spell that differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SettingSource {
    /// The command-line flag.
    Flag,
    /// The process environment (`MAX_RANKING_SAMPLES=...`).
    Env,
    /// A `.env` file in the working directory, as Docker's `env_file` reads it.
    #[serde(rename = ".env")]
    DotEnv,
    /// Nobody set it: the pipeline's default (0, no limit).
    Default,
    /// The scenario file's value (similarity knobs).
    Scenario,
    /// What the command's own log said (`record`, `postmortem`).
    Log,
    /// Chosen by oomlab for the run (a sweep sets each point's cap).
    #[serde(rename = "oomlab")]
    Harness,
    /// Not known (a command that never logged it; an older report's value).
    #[serde(other)]
    #[default]
    Unknown,
}

impl SettingSource {
    /// The word reports and tables print (`flag`, `env`, `.env`, ...).
    pub fn name(self) -> &'static str {
        match self {
            SettingSource::Flag => "flag",
            SettingSource::Env => "env",
            SettingSource::DotEnv => ".env",
            SettingSource::Default => "default",
            SettingSource::Scenario => "scenario",
            SettingSource::Log => "log",
            SettingSource::Harness => "oomlab",
            SettingSource::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for SettingSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Resolves `MAX_RANKING_SAMPLES` as the deployed pipeline would see it: the
/// flag wins, then the environment, then `./.env` (the file Docker's
/// `env_file` hands the container), else 0 (no limit). A value that is not a
/// whole number is refused (exit 2) naming where it was read.
pub fn resolve_max_ranking_samples(flag: Option<u64>) -> anyhow::Result<(u64, SettingSource)> {
    resolve_max_ranking_samples_in(flag, std::env::var(MAX_RANKING_SAMPLES_ENV).ok(), ".env")
}

/// [`resolve_max_ranking_samples`] with its environment value and `.env` path given.
fn resolve_max_ranking_samples_in(
    flag: Option<u64>,
    env: Option<String>,
    dotenv: &str,
) -> anyhow::Result<(u64, SettingSource)> {
    if let Some(v) = flag {
        return Ok((v, SettingSource::Flag));
    }
    let parse = |text: &str, place: String| {
        text.trim().replace('_', "").parse::<u64>().map_err(|_| {
            bad_input(format!(
                "{place}: {MAX_RANKING_SAMPLES_ENV}={text:?}: expected a non-negative whole number of rows (0 = no limit)"
            ))
        })
    };
    if let Some(text) = env.filter(|t| !t.trim().is_empty()) {
        return Ok((
            parse(&text, "environment variable".into())?,
            SettingSource::Env,
        ));
    }
    if let Ok(file) = std::fs::read_to_string(dotenv) {
        if let Some((line, value)) = dotenv_value(&file, MAX_RANKING_SAMPLES_ENV) {
            return Ok((
                parse(&value, format!("{dotenv}:{line}"))?,
                SettingSource::DotEnv,
            ));
        }
    }
    Ok((0, SettingSource::Default))
}

/// The last `KEY=value` of `key` in a `.env` file's text, with its line
/// number: `export KEY=...`, quotes and trailing `# comments` as Docker
/// Compose and python-dotenv accept them.
fn dotenv_value(text: &str, key: &str) -> Option<(usize, String)> {
    let mut found = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k.trim() != key {
            continue;
        }
        let v = v.trim();
        let v = match v.chars().next() {
            Some(q @ ('"' | '\'')) => v[1..].split(q).next().unwrap_or(""),
            _ => v.split(" #").next().unwrap_or(v).trim(),
        };
        found = Some((i + 1, v.to_string()));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_ranking_samples_comes_from_flag_env_dotenv_then_default() {
        let dir = tempfile::tempdir().unwrap();
        let dotenv = dir.path().join(".env");
        let path = dotenv.to_str().unwrap();
        std::fs::write(
            &dotenv,
            "# ranking\nexport MAX_RANKING_SAMPLES=\"2_000_000\" # v2\n",
        )
        .unwrap();
        let r = |flag, env: Option<&str>| {
            resolve_max_ranking_samples_in(flag, env.map(String::from), path).unwrap()
        };
        assert_eq!(r(Some(5), Some("7")), (5, SettingSource::Flag));
        assert_eq!(r(None, Some("7")), (7, SettingSource::Env));
        assert_eq!(r(None, Some("  ")), (2_000_000, SettingSource::DotEnv));
        std::fs::write(&dotenv, "OTHER=1\n").unwrap();
        assert_eq!(r(None, None), (0, SettingSource::Default));
        std::fs::write(&dotenv, "A=1\nMAX_RANKING_SAMPLES=lots\n").unwrap();
        let e = resolve_max_ranking_samples_in(None, None, path)
            .unwrap_err()
            .to_string();
        assert!(e.contains(".env:2") && e.contains("lots"), "{e}");
    }

    #[test]
    fn sources_keep_their_report_spelling() {
        for s in [
            SettingSource::Flag,
            SettingSource::DotEnv,
            SettingSource::Harness,
        ] {
            let j = serde_json::to_string(&s).unwrap();
            assert_eq!(j, format!("\"{}\"", s.name()));
            assert_eq!(serde_json::from_str::<SettingSource>(&j).unwrap(), s);
        }
        let old: SettingSource = serde_json::from_str("\"sweep\"").unwrap();
        assert_eq!(old, SettingSource::Unknown);
    }
}
