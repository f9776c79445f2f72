//! The Parquet cache of generated inputs.
//!
//! Keyed by everything that shapes the data (scenario content, sizes, generator
//! version), written to a temporary directory and renamed into place, so a
//! crashed or concurrent generation never leaves a half-written cache behind.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use super::Inputs;
use crate::scenario::{Scenario, Sizes};

/// Bump when the generator changes what it produces for the same scenario.
pub const GENERATOR_VERSION: u32 = 2;

/// Parquet row-group size: small enough that a chunked reader decodes little
/// beyond the slice it asks for.
const ROW_GROUP_ROWS: usize = 65_536;

const SAMPLES_FILE: &str = "ranking_samples.parquet";
const PROFILE_FILE: &str = "dataset_profile.parquet";
const USERS_FILE: &str = "user_features.parquet";
const META_FILE: &str = "meta.json";

/// What the cache knows about a generated data set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataMeta {
    pub generator_version: u32,
    pub sizes: Sizes,
    pub seed: u64,
    pub data_hash: String,
}

/// One scenario-at-a-scale's slot in the cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataCache {
    pub dir: PathBuf,
}

/// The default cache root: `$OOMLAB_CACHE_DIR`, else `$XDG_CACHE_HOME/oomlab`,
/// else `~/.cache/oomlab`.
pub fn default_cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("OOMLAB_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("oomlab");
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache").join("oomlab"))
        .unwrap_or_else(|| std::env::temp_dir().join("oomlab-cache"))
}

impl DataCache {
    /// The slot for `scenario` at `sizes` under `root`.
    pub fn locate(root: &Path, scenario: &Scenario, sizes: &Sizes) -> Self {
        let mut shape = scenario.clone();
        shape.name.clear();
        shape.description.clear();
        let key = serde_json::to_string(&(GENERATOR_VERSION, &shape, sizes)).unwrap_or_default();
        let dir = root.join(format!(
            "{}-{:016x}",
            scenario.name,
            xxh3_64(key.as_bytes())
        ));
        Self { dir }
    }

    /// The metadata of a complete cached data set, if there is one.
    pub fn meta(&self) -> Option<DataMeta> {
        let text = std::fs::read_to_string(self.dir.join(META_FILE)).ok()?;
        let meta: DataMeta = serde_json::from_str(&text).ok()?;
        (meta.generator_version == GENERATOR_VERSION).then_some(meta)
    }

    /// Writes the inputs and their metadata atomically into the slot.
    pub fn store(&self, inputs: &mut Inputs, meta: &DataMeta) -> Result<()> {
        let parent = self.dir.parent().context("cache directory has no parent")?;
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating cache directory {}", parent.display()))?;
        let tmp = parent.join(format!(
            ".{}.tmp-{}",
            self.dir
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        for (file, df) in [
            (SAMPLES_FILE, &mut inputs.samples),
            (PROFILE_FILE, &mut inputs.profile),
            (USERS_FILE, &mut inputs.users),
        ] {
            let path = tmp.join(file);
            let f = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            ParquetWriter::new(f)
                .with_compression(ParquetCompression::Lz4Raw)
                .with_statistics(StatisticsOptions::empty())
                .with_row_group_size(Some(ROW_GROUP_ROWS))
                .finish(df)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        std::fs::write(tmp.join(META_FILE), serde_json::to_vec_pretty(meta)?)?;
        if self.meta().is_none() {
            // A directory without metadata is debris of an interrupted older writer.
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        match std::fs::rename(&tmp, &self.dir) {
            Ok(()) => Ok(()),
            // Another process finished the same data first: theirs is identical.
            Err(_) if self.meta().is_some() => {
                let _ = std::fs::remove_dir_all(&tmp);
                Ok(())
            }
            Err(e) => Err(anyhow::Error::from(e).context(format!(
                "moving {} into place at {}",
                tmp.display(),
                self.dir.display()
            ))),
        }
    }

    /// Reads the three inputs back, as stored (pandas' default dtypes).
    pub fn load(&self) -> Result<Inputs> {
        let read = |file: &str| -> Result<DataFrame> {
            let path = self.dir.join(file);
            let f = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
            ParquetReader::new(f)
                .finish()
                .map_err(anyhow::Error::from)
                .with_context(|| format!("reading {}", path.display()))
        };
        Ok(Inputs {
            samples: read(SAMPLES_FILE)?,
            profile: read(PROFILE_FILE)?,
            users: read(USERS_FILE)?,
        })
    }

    /// Path of the ranking samples file (chunked readers, pandas).
    pub fn samples_path(&self) -> PathBuf {
        self.dir.join(SAMPLES_FILE)
    }

    /// Path of the dataset profile file.
    pub fn profile_path(&self) -> PathBuf {
        self.dir.join(PROFILE_FILE)
    }

    /// Path of the user features file.
    pub fn users_path(&self) -> PathBuf {
        self.dir.join(USERS_FILE)
    }
}
