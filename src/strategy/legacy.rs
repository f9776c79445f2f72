//! The pre-v2 ranking prep that was OOM-killed at 150 GB.
//!
//! ```python
//! working = samples.copy()                          # full deep copy
//! working = working.dropna(...)
//! enriched = working.merge(dataset_profile, ...)     # every profile column
//! enriched = enriched.merge(user_features, ...)
//! ```
//! The caller still holds `samples`, and `working` lives until the function
//! returns, so each step stacks on the previous one.

use anyhow::Result;
use serde_json::json;

use super::frame::Ops;
use super::frame_ops::{fixed_bytes, frame_bytes};
use super::{Job, Strategy};
use crate::data::columns::{DATASET_ID, LABEL, USER_ID};
use crate::data::DataCache;
use crate::probe::Probe;

/// Copy, then merge everything.
pub struct Legacy;

impl Strategy for Legacy {
    fn name(&self) -> &'static str {
        "legacy"
    }

    fn description(&self) -> &'static str {
        "pre-v2: samples.copy(), dropna, merge the whole dataset profile, merge user features"
    }

    fn stages(&self) -> &'static [&'static str] {
        &[
            "load",
            "copy",
            "dropna",
            "merge_dataset_profile",
            "merge_user_features",
        ]
    }

    fn run(&self, job: &Job, probe: &Probe) -> Result<()> {
        let cache = DataCache {
            dir: job.cache_dir.clone(),
        };
        let ops = Ops::new(job.memory_mode);
        let inputs = probe.stage("load", |d| {
            let inputs = ops.load(&cache)?;
            let rows = inputs.samples.height();
            probe.info(format!("Ranking samples: {rows} rows before optimization"));
            d.insert("rows".into(), json!(rows));
            d.insert("bytes".into(), json!(frame_bytes(&inputs.samples.df)));
            d.insert(
                "arrow_pool_bytes".into(),
                json!(inputs.objects.arrow_pool_bytes()),
            );
            d.insert("object_bytes".into(), json!(inputs.objects.bytes()));
            Ok(inputs)
        })?;
        let samples = &inputs.samples;
        probe.info(format!(
            "Preparing ranking data (samples: {} rows, datasets: {})",
            samples.height(),
            inputs.profile.height()
        ));
        let working = probe.stage("copy", |d| {
            let working = ops.copy(samples)?;
            d.insert("rows".into(), json!(working.height()));
            d.insert("copied_bytes".into(), json!(fixed_bytes(&working.df)));
            Ok(working)
        })?;
        // `working = working.dropna(...)` rebinds the name: the copy is freed
        // once the filtered frame exists.
        let working = probe.stage("dropna", |d| {
            let kept = ops.drop_nulls(&working, LABEL)?;
            d.insert("rows_in".into(), json!(working.height()));
            d.insert("rows".into(), json!(kept.height()));
            drop(working);
            Ok(kept)
        })?;
        let enriched = probe.stage("merge_dataset_profile", |d| {
            probe.info(format!(
                "Merging with dataset features ({} columns)...",
                inputs.profile.width() - 1
            ));
            let enriched = ops.merge_left(&working, &inputs.profile, DATASET_ID)?;
            d.insert("rows".into(), json!(enriched.height()));
            d.insert("columns".into(), json!(enriched.width()));
            d.insert("bytes".into(), json!(fixed_bytes(&enriched.df)));
            Ok(enriched)
        })?;
        let enriched = probe.stage("merge_user_features", |d| {
            probe.info(format!(
                "Merging with user features ({} columns)...",
                inputs.users.width() - 1
            ));
            let next = ops.merge_left(&enriched, &inputs.users, USER_ID)?;
            drop(enriched);
            d.insert("rows".into(), json!(next.height()));
            d.insert("columns".into(), json!(next.width()));
            d.insert("bytes".into(), json!(fixed_bytes(&next.df)));
            Ok(next)
        })?;
        super::output::finish_frame(probe, job, ops, enriched, &inputs.objects, None)?;
        // `working` and `samples` were alive until here, as in the original function.
        drop(working);
        Ok(())
    }
}
