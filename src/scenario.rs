//! Scenario files: the shape of production data, as a human writes it down.
//!
//! A scenario names row counts, column mixes and skew, never data: the same
//! scenario, scale and seed always generate the same bytes (see `data`). Files are
//! validated on load, and every complaint names the file, the key and what was
//! expected, because the person fixing it is looking at that file.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error::bad_input;

/// The scenario `compare` runs when no `--scenario` is given.
pub const DEFAULT_SCENARIO: &str = "scenarios/default.toml";

/// The scenarios built into the binary, by name: an installed oomlab runs
/// `--scenario production` (or its default) from any directory, without a
/// checkout of this repository.
pub const BUNDLED: [(&str, &str); 5] = [
    ("default", include_str!("../scenarios/default.toml")),
    ("ci", include_str!("../scenarios/ci.toml")),
    ("production", include_str!("../scenarios/production.toml")),
    ("similarity", include_str!("../scenarios/similarity.toml")),
    (
        "similarity-ci",
        include_str!("../scenarios/similarity-ci.toml"),
    ),
];

/// The pandas reference implementation (`scenarios/pandas/`), built into
/// the binary as (path under `scenarios/`, text): an installed oomlab can
/// write it out (`oomlab scenarios write DIR`) to run the pipeline itself,
/// sweep it as a command, or check the replay's fidelity against it.
pub const REFERENCE: [(&str, &str); 4] = [
    (
        "pandas/ranking_prep.py",
        include_str!("../scenarios/pandas/ranking_prep.py"),
    ),
    (
        "pandas/requirements.txt",
        include_str!("../scenarios/pandas/requirements.txt"),
    ),
    (
        "pandas/requirements-pandas3.txt",
        include_str!("../scenarios/pandas/requirements-pandas3.txt"),
    ),
    (
        "pandas/README.md",
        include_str!("../scenarios/pandas/README.md"),
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

/// A validated scenario, as loaded from its TOML file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name used in report directories and tables.
    pub name: String,
    /// One line for humans; printed in summaries.
    #[serde(default)]
    pub description: String,
    /// Seed of every random draw in data generation.
    pub seed: u64,
    /// Ranking-prep workload (the default): these three sections.
    #[serde(default)]
    pub ranking_samples: RankingSamples,
    #[serde(default)]
    pub dataset_profile: DatasetProfile,
    #[serde(default)]
    pub user_features: UserFeatures,
    /// Item-item similarity workload: present instead of the ranking sections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity: Option<SimilaritySpec>,
    #[serde(default)]
    pub scaling: Scaling,
}

/// Which computation a scenario describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// `_prepare_request_ranking_data()`: samples, profile and user merges.
    RankingPrep,
    /// Item-item cosine similarity with top-K per item.
    Similarity,
}

/// Item-item similarity: N items with dense feature vectors.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimilaritySpec {
    /// Items at production size (the write-up: 500,000).
    pub items: i64,
    /// Dimension of each item's feature vector.
    pub dimension: i64,
    /// `SIMILARITY_MICRO_BATCH_SIZE` default for this scenario.
    #[serde(default = "default_micro_batch")]
    pub micro_batch_size: i64,
    /// `SIMILARITY_TOP_K` default for this scenario.
    #[serde(default = "default_top_k")]
    pub top_k: i64,
}

fn default_micro_batch() -> i64 {
    50
}
fn default_top_k() -> i64 {
    200
}

/// The exposure log: one row per (request, user, dataset) impression.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RankingSamples {
    /// Rows at production size (before `--scale`).
    pub rows: i64,
    /// Share of rows whose label is null, so `dropna` really drops rows.
    #[serde(default = "default_null_share")]
    pub label_null_share: f64,
    /// Zipf exponent of dataset popularity: a few datasets get most impressions.
    #[serde(default = "default_dataset_zipf")]
    pub dataset_zipf_exponent: f64,
    /// Zipf exponent of user activity (0 = uniform over the pool).
    #[serde(default = "default_user_zipf")]
    pub user_zipf_exponent: f64,
    /// Length of the string request id.
    #[serde(default = "default_request_id_length")]
    pub request_id_length: i64,
}

/// One row per dataset, several hundred feature columns.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatasetProfile {
    /// Datasets in the profile (and the pool samples draw from).
    pub rows: i64,
    /// Groups of feature columns, besides `dataset_id`.
    pub columns: Vec<ColumnGroup>,
}

/// A run of `count` feature columns of one kind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ColumnGroup {
    pub kind: ColumnKind,
    pub count: i64,
    /// Min and max length of values (string kinds only).
    #[serde(default)]
    pub length: Option<[i64; 2]>,
    /// Distinct values per column (string kinds only).
    #[serde(default)]
    pub distinct: Option<i64>,
}

/// The column kinds a profile can hold; numeric kinds survive v2's slimming.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// float64, as pandas loads any real-valued feature.
    Float,
    /// int64, as pandas loads counts.
    Integer,
    /// Free text of realistic length (titles, tags), held as strings.
    String,
    /// Low-cardinality labels (category, license), held as strings as pandas loads them.
    Categorical,
}

impl ColumnKind {
    /// Numeric columns are the ones v2 keeps in its slim profile.
    pub fn is_numeric(self) -> bool {
        matches!(self, ColumnKind::Float | ColumnKind::Integer)
    }
}

/// One row per user in the pool, a dozen numeric features.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserFeatures {
    /// Users in the pool (samples draw their user ids from it).
    pub rows: i64,
    /// Numeric feature columns besides `user_id`.
    pub columns: i64,
}

/// How `--scale` applies.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scaling {
    /// Also multiply the dataset and user pools (not only the samples).
    #[serde(default)]
    pub scale_pools: bool,
}

fn default_null_share() -> f64 {
    0.02
}
fn default_dataset_zipf() -> f64 {
    1.1
}
fn default_user_zipf() -> f64 {
    0.6
}
fn default_request_id_length() -> i64 {
    24
}

/// A scenario together with where it came from.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    pub path: PathBuf,
    pub scenario: Scenario,
}

/// Row and column counts a run actually uses, after `--scale`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sizes {
    pub sample_rows: u64,
    pub datasets: u64,
    pub users: u64,
    /// Feature columns of the profile (besides dataset_id).
    pub profile_columns: u64,
    /// Of which numeric.
    pub profile_numeric_columns: u64,
    /// Numeric feature columns of user_features (besides user_id).
    pub user_columns: u64,
    /// Similarity items (0 for ranking prep).
    #[serde(default)]
    pub items: u64,
    /// Similarity feature dimension (0 for ranking prep).
    #[serde(default)]
    pub dimension: u64,
}

impl Scenario {
    /// Loads and validates a scenario file.
    pub fn load(path: &Path) -> Result<LoadedScenario> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(_) if !path.exists() && bundled(path).is_some() => {
                bundled(path).unwrap_or_default().to_string()
            }
            Err(e) => {
                return Err(bad_input(format!(
                    "{}: cannot read scenario file: {e} (expected a TOML file such as {DEFAULT_SCENARIO}, or a bundled scenario's name: {})",
                    path.display(),
                    BUNDLED.map(|(n, _)| n).join(", ")
                )))
            }
        };
        let scenario = Self::parse(&text, &path.display().to_string())?;
        Ok(LoadedScenario {
            path: path.to_path_buf(),
            scenario,
        })
    }

    /// Parses and validates scenario text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Scenario> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| {
            let key = e
                .message()
                .split('`')
                .nth(1)
                .map(|k| format!(" key `{k}`:"))
                .unwrap_or_default();
            bad_input(format!("{origin}:{} {}", key, e.to_string().trim_end()))
        })?;
        scenario.validate(origin)?;
        Ok(scenario)
    }

    fn validate(&self, origin: &str) -> Result<()> {
        let err = |key: &str, expected: &str, got: String| {
            bad_input(format!(
                "{origin}: key `{key}`: expected {expected}, got {got}"
            ))
        };
        if self.name.trim().is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(err(
                "name",
                "a non-empty name of letters, digits, '-' or '_'",
                format!("{:?}", self.name),
            ));
        }
        let positive = |key: &str, v: i64, max: i64| {
            if v < 1 || v > max {
                Err(err(
                    key,
                    &format!("a positive integer no larger than {max}"),
                    v.to_string(),
                ))
            } else {
                Ok(())
            }
        };
        if let Some(sim) = &self.similarity {
            if self.ranking_samples != RankingSamples::default()
                || self.dataset_profile != DatasetProfile::default()
                || self.user_features != UserFeatures::default()
            {
                return Err(err(
                    "similarity",
                    "either a [similarity] section or the ranking sections, not both",
                    "both".into(),
                ));
            }
            positive("similarity.items", sim.items, 100_000_000)?;
            positive("similarity.dimension", sim.dimension, 100_000)?;
            positive(
                "similarity.micro_batch_size",
                sim.micro_batch_size,
                1_000_000,
            )?;
            positive("similarity.top_k", sim.top_k, 1_000_000)?;
            return Ok(());
        }
        positive(
            "ranking_samples.rows",
            self.ranking_samples.rows,
            4_000_000_000,
        )?;
        positive(
            "dataset_profile.rows",
            self.dataset_profile.rows,
            1_000_000_000,
        )?;
        positive("user_features.rows", self.user_features.rows, 1_000_000_000)?;
        positive("user_features.columns", self.user_features.columns, 10_000)?;
        positive(
            "ranking_samples.request_id_length",
            self.ranking_samples.request_id_length,
            256,
        )?;
        let share = self.ranking_samples.label_null_share;
        if !(0.0..0.95).contains(&share) {
            return Err(err(
                "ranking_samples.label_null_share",
                "a share in [0, 0.95)",
                share.to_string(),
            ));
        }
        for (key, v) in [
            (
                "ranking_samples.dataset_zipf_exponent",
                self.ranking_samples.dataset_zipf_exponent,
            ),
            (
                "ranking_samples.user_zipf_exponent",
                self.ranking_samples.user_zipf_exponent,
            ),
        ] {
            if !(0.0..=5.0).contains(&v) {
                return Err(err(key, "an exponent in [0, 5]", v.to_string()));
            }
        }
        if self.dataset_profile.columns.is_empty() {
            return Err(err(
                "dataset_profile.columns",
                "at least one column group",
                "none".into(),
            ));
        }
        for (i, group) in self.dataset_profile.columns.iter().enumerate() {
            let key = |k: &str| format!("dataset_profile.columns[{i}].{k}");
            positive(&key("count"), group.count, 10_000)?;
            if group.kind.is_numeric() {
                if group.length.is_some() || group.distinct.is_some() {
                    return Err(err(
                        &key("length"),
                        "no `length`/`distinct` on a numeric column group",
                        format!("{:?}", group.kind),
                    ));
                }
                continue;
            }
            let [lo, hi] = group.length.unwrap_or([8, 32]);
            if lo < 1 || hi < lo || hi > 4096 {
                return Err(err(
                    &key("length"),
                    "[min, max] with 1 <= min <= max <= 4096",
                    format!("[{lo}, {hi}]"),
                ));
            }
            positive(&key("distinct"), group.distinct.unwrap_or(100), 100_000_000)?;
        }
        Ok(())
    }

    /// The workload this scenario describes.
    pub fn workload(&self) -> Workload {
        if self.similarity.is_some() {
            Workload::Similarity
        } else {
            Workload::RankingPrep
        }
    }

    /// Production sizes (scale 1).
    pub fn production_sizes(&self) -> Sizes {
        self.sizes(1.0)
    }

    /// Sizes at `scale`: samples always scale, pools only when `scaling.scale_pools`.
    pub fn sizes(&self, scale: f64) -> Sizes {
        let scaled = |n: i64| ((n as f64 * scale).round() as u64).max(1);
        let ranking = self.similarity.is_none();
        let pools = |n: i64| {
            if self.scaling.scale_pools {
                scaled(n)
            } else {
                n as u64
            }
        };
        let groups = &self.dataset_profile.columns;
        if !ranking {
            let sim = self.similarity.as_ref();
            return Sizes {
                sample_rows: 0,
                datasets: 0,
                users: 0,
                profile_columns: 0,
                profile_numeric_columns: 0,
                user_columns: 0,
                items: sim.map_or(0, |s| scaled(s.items)),
                dimension: sim.map_or(0, |s| s.dimension as u64),
            };
        }
        Sizes {
            sample_rows: scaled(self.ranking_samples.rows),
            datasets: pools(self.dataset_profile.rows),
            users: pools(self.user_features.rows),
            profile_columns: groups.iter().map(|g| g.count as u64).sum(),
            profile_numeric_columns: groups
                .iter()
                .filter(|g| g.kind.is_numeric())
                .map(|g| g.count as u64)
                .sum(),
            user_columns: self.user_features.columns as u64,
            items: 0,
            dimension: 0,
        }
    }
}

impl Scenario {
    /// The same scenario with `count` numeric profile columns: the numeric
    /// groups scaled in proportion (the last one takes the rounding), the
    /// other columns as they are. The write-up's second growth risk is "a
    /// hundred more features"; `sweep --columns` measures it by generating
    /// data this wide. A scenario without numeric groups gets one float group.
    pub fn with_numeric_profile_columns(&self, count: u64) -> Result<Scenario> {
        if count == 0 || count > 10_000 {
            return Err(bad_input(format!(
                "--columns {count}: expected a number of numeric profile columns in [1, 10000]"
            )));
        }
        let mut out = self.clone();
        let total: u64 = self.sizes(1.0).profile_numeric_columns;
        let groups = &mut out.dataset_profile.columns;
        if total == 0 {
            groups.push(ColumnGroup {
                kind: ColumnKind::Float,
                count: count as i64,
                length: None,
                distinct: None,
            });
            return Ok(out);
        }
        let numeric: Vec<usize> = (0..groups.len())
            .filter(|&i| groups[i].kind.is_numeric())
            .collect();
        let mut left = count;
        for (k, &i) in numeric.iter().enumerate() {
            let share = if k + 1 == numeric.len() {
                left
            } else {
                (groups[i].count as u64 * count / total).min(left)
            };
            groups[i].count = share as i64;
            left -= share;
        }
        groups.retain(|g| g.count > 0);
        Ok(out)
    }
}

/// Checks a `--scale` value: a positive finite factor.
pub fn validate_scale(scale: f64) -> Result<f64> {
    if scale.is_finite() && scale > 0.0 && scale <= 100.0 {
        Ok(scale)
    } else {
        Err(bad_input(format!(
            "--scale {scale}: expected a factor in (0, 100], e.g. 0.01 for 1% of production rows"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "t"
seed = 1
[ranking_samples]
rows = 1000
[dataset_profile]
rows = 50
columns = [{ kind = "float", count = 3 }, { kind = "string", count = 2, length = [4, 20], distinct = 10 }]
[user_features]
rows = 20
columns = 12
"#;

    #[test]
    fn parses_and_scales() {
        let s = Scenario::parse(GOOD, "t.toml").unwrap();
        let sizes = s.sizes(0.5);
        assert_eq!(sizes.sample_rows, 500);
        assert_eq!(sizes.datasets, 50);
        assert_eq!(sizes.profile_columns, 5);
        assert_eq!(sizes.profile_numeric_columns, 3);
    }

    #[test]
    fn numeric_columns_scale_in_proportion() {
        let s = Scenario::parse(include_str!("../scenarios/production.toml"), "p.toml").unwrap();
        for n in [1u64, 20, 87, 150, 410] {
            let wide = s.with_numeric_profile_columns(n).unwrap();
            let sizes = wide.sizes(1.0);
            assert_eq!(sizes.profile_numeric_columns, n);
            assert_eq!(sizes.profile_columns, n + 213, "{n}");
            assert!(wide.validate("w").is_ok());
        }
        assert_eq!(s.with_numeric_profile_columns(87).unwrap(), s);
        assert!(s.with_numeric_profile_columns(0).is_err());
    }

    fn error_of(text: &str) -> String {
        let e = Scenario::parse(text, "bad.toml").unwrap_err();
        assert_eq!(crate::error::exit_code_of(&e), crate::error::Exit::BadInput);
        e.to_string()
    }

    #[test]
    fn similarity_scenarios_stand_alone() {
        let s = Scenario::parse(
            "name = \"sim\"\nseed = 1\n[similarity]\nitems = 500000\ndimension = 64\n",
            "sim.toml",
        )
        .unwrap();
        assert_eq!(s.workload(), Workload::Similarity);
        assert_eq!(s.sizes(0.01).items, 5000);
        assert_eq!(s.sizes(0.01).sample_rows, 0);
        let e = error_of("name = \"sim\"\nseed = 1\n[similarity]\nitems = -1\ndimension = 64\n");
        assert!(e.contains("similarity.items"), "{e}");
    }

    #[test]
    fn names_file_and_key() {
        let e = error_of(&GOOD.replace("rows = 1000", "rows = -5"));
        assert!(
            e.contains("bad.toml") && e.contains("ranking_samples.rows") && e.contains("-5"),
            "{e}"
        );
        let e = error_of(&GOOD.replace("rows = 1000", "rowz = 1000"));
        assert!(e.contains("bad.toml") && e.contains("rowz"), "{e}");
        let e = error_of(&GOOD.replace("\"float\"", "\"blob\""));
        assert!(e.contains("bad.toml") && e.contains("blob"), "{e}");
        let e = error_of(&GOOD.replace(
            "[user_features]",
            "[similarity]\nitems = 5\ndimension = 3\n[user_features]",
        ));
        assert!(e.contains("not both"), "{e}");
        let e = error_of(&GOOD.replace("length = [4, 20]", "length = [20, 4]"));
        assert!(e.contains("dataset_profile.columns[1].length"), "{e}");
    }

    /// What every answer of the parser must look like: a scenario whose sizes
    /// and preflight estimate can be computed at any valid scale, or a
    /// bad-input error (exit 2) that names the file.
    fn check_answer(text: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        match Scenario::parse(text, "fuzz.toml") {
            Ok(s) => {
                for scale in [1e-9, 0.001, 1.0, 100.0] {
                    let sizes = s.sizes(scale);
                    for strategy in [
                        "legacy",
                        "optimized",
                        "streaming",
                        crate::strategy::GENERATE,
                    ] {
                        let _ = crate::preflight::conservative(&s, &sizes, strategy, 0, None);
                        let _ = crate::preflight::conservative(&s, &sizes, strategy, 7, None);
                    }
                }
            }
            Err(e) => {
                proptest::prop_assert_eq!(
                    crate::error::exit_code_of(&e),
                    crate::error::Exit::BadInput,
                    "{}",
                    e
                );
                proptest::prop_assert!(e.to_string().starts_with("fuzz.toml"), "{e}");
            }
        }
        Ok(())
    }

    /// A TOML value of any type a scenario key might be given, hostile ones included.
    fn value() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let scalar = prop_oneof![
            any::<i64>().prop_map(|v| v.to_string()),
            (-5i64..300_000).prop_map(|v| v.to_string()),
            any::<f64>().prop_map(|v| format!("{v:?}")),
            prop::sample::select(vec![
                "nan",
                "-nan",
                "inf",
                "-inf",
                "0.0",
                "-0.0",
                "1e308",
                "true",
                "false",
                "1_000_000",
                "0x10",
                "\"\"",
                "\"a b\"",
                "\"float\"",
                "\"string\"",
                "\"categorical\"",
                "\"integer\"",
                "\"blob\"",
                "1979-05-27",
                "[]",
                "{}",
                "9223372036854775808",
                "-9223372036854775809",
            ])
            .prop_map(str::to_string),
            "\"[ -~]{0,12}\"".prop_map(|s| s.replace('\\', "")),
        ];
        let group = (
            prop::sample::select(vec!["float", "integer", "string", "categorical", "x"]),
            scalar.clone(),
            proptest::option::of((scalar.clone(), scalar.clone())),
            proptest::option::of(scalar.clone()),
        )
            .prop_map(|(kind, count, length, distinct)| {
                let mut g = format!("{{ kind = \"{kind}\", count = {count}");
                if let Some((lo, hi)) = length {
                    g += &format!(", length = [{lo}, {hi}]");
                }
                if let Some(d) = distinct {
                    g += &format!(", distinct = {d}");
                }
                g + " }"
            });
        prop_oneof![
            4 => scalar,
            2 => prop::collection::vec(group, 0..4).prop_map(|g| format!("[{}]", g.join(", "))),
        ]
    }

    /// One line of a TOML-ish scenario: a known or unknown section, a known or
    /// unknown key with any value, or junk.
    fn line() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let section = prop::sample::select(vec![
            "[ranking_samples]",
            "[dataset_profile]",
            "[user_features]",
            "[similarity]",
            "[scaling]",
            "[bogus]",
            "[[dataset_profile.columns]]",
            "[ranking_samples",
        ]);
        let key = prop::sample::select(vec![
            "name",
            "seed",
            "description",
            "rows",
            "columns",
            "label_null_share",
            "dataset_zipf_exponent",
            "user_zipf_exponent",
            "request_id_length",
            "items",
            "dimension",
            "micro_batch_size",
            "top_k",
            "scale_pools",
            "kind",
            "count",
            "length",
            "distinct",
            "rowz",
        ]);
        prop_oneof![
            2 => section.prop_map(str::to_string),
            6 => (key, value()).prop_map(|(k, v)| format!("{k} = {v}")),
            1 => "[ -~]{0,30}",
        ]
    }

    // Case counts follow PROPTEST_CASES (README, "Property tests").
    proptest::proptest! {
        #[test]
        fn scenario_any_text_is_ok_or_bad_input(text in "(?s).{0,400}") {
            check_answer(&text)?;
        }

        #[test]
        fn scenario_toml_ish_lines_are_ok_or_bad_input(
            name in proptest::sample::select(vec!["t", "", "a b", "ü", "x-1_2"]),
            seed in proptest::sample::select(vec!["1", "-1", "18446744073709551615", "1.5", "\"7\""]),
            lines in proptest::collection::vec(line(), 0..24),
        ) {
            let text = format!("name = \"{name}\"\nseed = {seed}\n{}\n", lines.join("\n"));
            check_answer(&text)?;
        }

        #[test]
        fn scenario_edited_bundled_files_are_ok_or_bad_input(
            file in 0usize..3,
            edits in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), value()), 1..4),
        ) {
            let text = [GOOD, include_str!("../scenarios/ci.toml"), include_str!("../scenarios/similarity.toml")][file];
            // Replace the value of a few `key = value` lines (or parts of
            // inline tables) with hostile values.
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            for (at, v) in edits {
                let candidates: Vec<usize> = (0..lines.len()).filter(|i| lines[*i].contains('=')).collect();
                if candidates.is_empty() {
                    break;
                }
                let i = candidates[at.index(candidates.len())];
                let eq = lines[i].find('=').unwrap_or(0);
                let end = lines[i][eq..].find([',', '}']).map_or(lines[i].len(), |e| eq + e);
                lines[i] = format!("{}= {v}{}", &lines[i][..eq], &lines[i][end..]);
            }
            check_answer(&lines.join("\n"))?;
        }
    }
}
