//! The model file: `model.json` read (another schema version refused with a
//! clear message, older spreads back-filled), parsed and written atomically.

use std::path::Path;

use anyhow::{Context, Result};

use super::{backfill, Model, BUNDLED_MODELS};
use crate::error::bad_input;
use crate::report::write_atomically;

/// Bumped whenever a reader of an older model would misread a newer one.
pub const MODEL_SCHEMA_VERSION: u32 = 1;
impl Model {
    /// Reads a model, refusing other schema versions with a clear message (exit 2).
    pub fn read(path: &Path) -> Result<Model> {
        let bytes = std::fs::read(path).map_err(|e| {
            bad_input(format!(
                "{}: cannot read the model: {e} (run `oomlab sweep` first, pass --model, or name a bundled model: {})",
                path.display(),
                BUNDLED_MODELS.map(|(n, _, _)| n).join(", ")
            ))
        })?;
        Self::parse(&bytes, path)
    }

    /// Parses a model's bytes; `path` names it in errors (exit 2).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Model> {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            bad_input(format!(
                "{}: not a valid oomlab model (JSON error: {e})",
                path.display()
            ))
        })?;
        let version = value.get("schema_version").and_then(|v| v.as_u64());
        if version != Some(MODEL_SCHEMA_VERSION as u64) {
            return Err(bad_input(format!(
                "{}: model schema_version is {}, this oomlab reads version {MODEL_SCHEMA_VERSION} (rerun `oomlab sweep`)",
                path.display(),
                version.map_or("missing".to_string(), |v| v.to_string())
            )));
        }
        let mut model: Model = serde_json::from_value(value)
            .map_err(|e| bad_input(format!("{}: not a valid oomlab model: {e}", path.display())))?;
        backfill::fill_spreads(&mut model);
        Ok(model)
    }

    /// Writes the model atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).context("serializing the model")?;
        write_atomically(path, &json)
    }
}
