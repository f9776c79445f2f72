//! Synthetic, production-shaped inputs: generated once, cached as Parquet.
//!
//! The three frames of ranking prep (`ranking_samples`, `dataset_profile`,
//! `user_features`) are drawn from a scenario with a seeded generator, so the same
//! scenario, scale and seed give the same bytes everywhere (checked by a content
//! hash). They are written to a Parquet cache and every strategy *loads* them from
//! there, as the real pipeline loads its inputs: generation is its own measured
//! run and never mixes into a strategy's figures.

pub mod cache;
pub mod generate;
pub mod hash;

use polars::prelude::DataFrame;

pub use cache::DataCache;

/// The inputs of ranking prep, in the dtypes pandas would load them with.
pub struct Inputs {
    pub samples: DataFrame,
    pub profile: DataFrame,
    pub users: DataFrame,
}

/// Column names shared by the generator and the strategies.
pub mod columns {
    pub const REQUEST_ID: &str = "request_id";
    pub const USER_ID: &str = "user_id";
    pub const DATASET_ID: &str = "dataset_id";
    pub const LABEL: &str = "label";
    pub const POSITION: &str = "position";
    pub const SCORE: &str = "score";
    pub const TIMESTAMP: &str = "timestamp";
}
