//! v2, as deployed after the second OOM (oom-fix-v2.md).
//!
//! ```python
//! samples = optimize_dataframe_memory(load())        # downcast on load
//! working = samples.dropna(...)                       # no copy
//! if MAX_RANKING_SAMPLES: working = working.sample(n=MAX_RANKING_SAMPLES, random_state=42)
//! slim = dataset_profile[["dataset_id"] + numeric_cols]
//! enriched = working.merge(slim, ...)
//! del working, slim; gc.collect()
//! enriched = enriched.merge(user_features, ...)
//! enriched = optimize_dataframe_memory(enriched)
//! ```

use anyhow::Result;
use polars::prelude::*;
use serde_json::json;

use super::frame::{Loaded, Ops};
use super::frame_ops::{fixed_bytes, frame_bytes, narrowed_bytes};
use super::{Job, Strategy};
use crate::data::columns::{DATASET_ID, LABEL, USER_ID};
use crate::data::DataCache;
use crate::probe::Probe;
use crate::sampling;

/// v2: no copy, slim merge, free at once, downcast, optional sampling.
pub struct Optimized;

impl Strategy for Optimized {
    fn name(&self) -> &'static str {
        "optimized"
    }

    fn description(&self) -> &'static str {
        "v2: downcast on load, dropna without copy, optional sampling, numeric-only profile merge, free intermediates, downcast"
    }

    fn stages(&self) -> &'static [&'static str] {
        &[
            "load",
            "dropna",
            "sample",
            "slim_profile",
            "merge_dataset_profile",
            "free_intermediates",
            "merge_user_features",
            "downcast",
        ]
    }

    fn run(&self, job: &Job, probe: &Probe) -> Result<()> {
        let cache = DataCache {
            dir: job.cache_dir.clone(),
        };
        let ops = Ops::new(job.memory_mode);
        let (samples, profile, users, objects) = probe.stage("load", |d| {
            let Loaded {
                mut samples,
                profile,
                users,
                objects,
            } = ops.load(&cache)?;
            let rows = samples.height();
            probe.info(format!("Ranking samples: {rows} rows before optimization"));
            let before = frame_bytes(&samples.df);
            ops.optimize_memory(&mut samples)?;
            d.insert("rows".into(), json!(rows));
            d.insert("bytes_before".into(), json!(before));
            d.insert("bytes".into(), json!(frame_bytes(&samples.df)));
            d.insert("arrow_pool_bytes".into(), json!(objects.arrow_pool_bytes()));
            d.insert("object_bytes".into(), json!(objects.bytes()));
            Ok((samples, profile, users, objects))
        })?;
        let working = probe.stage("dropna", |d| {
            let kept = ops.drop_nulls(&samples, LABEL)?;
            d.insert("rows_in".into(), json!(samples.height()));
            d.insert("rows".into(), json!(kept.height()));
            Ok(kept)
        })?;
        drop(samples);
        let working = probe.stage("sample", |d| {
            let cap = job.max_ranking_samples as usize;
            let rows = working.height();
            d.insert("rows_in".into(), json!(rows));
            d.insert("max_ranking_samples".into(), json!(cap));
            d.insert("sampling".into(), json!(job.sampling.name()));
            let kept = if cap > 0 && rows > cap {
                let (sampled, per_dataset) =
                    sampling::sample(&working.df, cap, job.sampling, DATASET_ID)?;
                match per_dataset {
                    None => probe.info(format!(
                        "Sampling ranking data: {rows} -> {cap} rows (set MAX_RANKING_SAMPLES=0 to disable)"
                    )),
                    Some(m) => {
                        d.insert("per_dataset_cap".into(), json!(m));
                        probe.info(format!(
                            "Sampling ranking data: {rows} -> {cap} rows, at most {m} per dataset (capped sampling; set MAX_RANKING_SAMPLES=0 to disable)"
                        ))
                    }
                }
                let sampled = working.with_rows(sampled);
                drop(working);
                sampled
            } else {
                working
            };
            probe.info(format!("Ranking samples optimized: {} rows", kept.height()));
            d.insert("rows".into(), json!(kept.height()));
            Ok(kept)
        })?;
        let (slim, lookup_bytes) = probe.stage("slim_profile", |d| {
            probe.info(format!(
                "Preparing ranking data (samples: {} rows, datasets: {})",
                working.height(),
                profile.height()
            ));
            let mut keep = vec![PlSmallStr::from(DATASET_ID)];
            keep.extend(
                ops.numeric_columns(&profile)
                    .into_iter()
                    .filter(|c| c != DATASET_ID),
            );
            // `df[[cols]]` in pandas copies the selected columns.
            let slim = ops.select_copy(&profile, &keep)?;
            d.insert("columns".into(), json!(slim.width() - 1));
            d.insert("bytes".into(), json!(fixed_bytes(&slim.df)));
            let lookups = narrowed_bytes(&slim.df)? + narrowed_bytes(&users.df)?;
            Ok((slim, lookups))
        })?;
        let enriched = probe.stage("merge_dataset_profile", |d| {
            probe.info(format!(
                "Merging with dataset features ({} columns)...",
                slim.width() - 1
            ));
            let enriched = ops.merge_left(&working, &slim, DATASET_ID)?;
            d.insert("rows".into(), json!(enriched.height()));
            d.insert("columns".into(), json!(enriched.width()));
            d.insert("bytes".into(), json!(fixed_bytes(&enriched.df)));
            Ok(enriched)
        })?;
        probe.stage("free_intermediates", |d| {
            d.insert(
                "freed_bytes".into(),
                json!(fixed_bytes(&working.df) + fixed_bytes(&slim.df)),
            );
            drop(working);
            drop(slim);
            Ok(())
        })?;
        let mut enriched = probe.stage("merge_user_features", |d| {
            probe.info(format!(
                "Merging with user features ({} columns)...",
                users.width() - 1
            ));
            let next = ops.merge_left(&enriched, &users, USER_ID)?;
            drop(enriched);
            d.insert("rows".into(), json!(next.height()));
            d.insert("columns".into(), json!(next.width()));
            d.insert("bytes".into(), json!(fixed_bytes(&next.df)));
            Ok(next)
        })?;
        probe.stage("downcast", |d| {
            probe.info("Optimizing enriched DataFrame memory usage...");
            let before = frame_bytes(&enriched.df);
            ops.optimize_memory(&mut enriched)?;
            let after = frame_bytes(&enriched.df);
            probe.info(crate::units::memory_optimization_line(before, after));
            d.insert("bytes_before".into(), json!(before));
            d.insert("bytes".into(), json!(after));
            Ok(())
        })?;
        super::output::finish_frame(probe, job, ops, enriched, &objects, Some(lookup_bytes))?;
        Ok(())
    }
}
