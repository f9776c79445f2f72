//! Scenario files: the shape of production data, as a human writes it down.
//!
//! A scenario names row counts, column mixes and skew, never data: the same
//! scenario, scale and seed always generate the same bytes (see `data`). Files are
//! validated on load, and every complaint names the file, the key and what was
//! expected, because the person fixing it is looking at that file.//!
//! This file holds what a scenario says; the scenarios compiled into the
//! binary are in `bundled.rs`, reading and checking a file in `load.rs`, the
//! row and column counts a run uses in `sizes.rs`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

mod bundled;
mod load;
mod sizes;

pub use bundled::{bundled, write_bundled, BUNDLED, DEFAULT_SCENARIO, REFERENCE};
pub use load::validate_scale;

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
