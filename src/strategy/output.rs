//! The end of every ranking-prep strategy: log, optional Parquet sink, hash, report.
//!
//! Shared so that every strategy's output is described the same way, and the
//! equality of two strategies' outputs can be checked by hash.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::*;
use serde_json::json;

use super::frame::{Frame, ObjectStore, Ops};
use super::frame_ops::{feature_count, frame_bytes};
use super::Job;
use crate::data::hash::frames_hash;
use crate::probe::Probe;
use crate::protocol::OutputSummary;

/// Logs the write-up's closing line, writes the sink (as its own stage) if the
/// job names one, and reports the output. `lookup_bytes` is `Some` for
/// strategies producing the v2 output: it makes the floor.
pub fn finish(
    probe: &Probe,
    job: &Job,
    df: &mut DataFrame,
    lookup_bytes: Option<u64>,
) -> Result<()> {
    finish_counted(probe, job, df, lookup_bytes, None)
}

/// [`finish`], with the output's bytes as the memory mode counts them when
/// they are not `df`'s own (pandas mode: handles plus the string objects).
fn finish_counted(
    probe: &Probe,
    job: &Job,
    df: &mut DataFrame,
    lookup_bytes: Option<u64>,
    bytes: Option<u64>,
) -> Result<()> {
    let features = feature_count(df);
    probe.info(format!(
        "Ranking data prepared: {} rows, {features} features",
        df.height()
    ));
    let sink = match &job.output {
        Some(path) => {
            probe.stage("write_output", |d| {
                write_parquet(path, df)?;
                d.insert("rows".into(), json!(df.height()));
                Ok(())
            })?;
            Some(path.display().to_string())
        }
        None => None,
    };
    let bytes = bytes.unwrap_or_else(|| frame_bytes(df));
    probe.output(OutputSummary {
        rows: df.height() as u64,
        features,
        columns: df.width() as u64,
        bytes,
        floor_bytes: lookup_bytes.map(|l| l + bytes),
        hash: job.hash_output.then(|| frames_hash(&[df])),
        sink,
    });
    Ok(())
}

/// [`finish`] for a frame of a memory mode: object handles are decoded to
/// strings only when the job writes or hashes the output (after the last
/// stage, so the measured stages are not affected).
pub fn finish_frame(
    probe: &Probe,
    job: &Job,
    ops: Ops,
    frame: Frame,
    objects: &ObjectStore,
    lookup_bytes: Option<u64>,
) -> Result<()> {
    let bytes = ops.resident_bytes(&frame, objects);
    let mut df = if job.output.is_some() || job.hash_output {
        ops.decoded(frame, objects)?
    } else {
        frame.df
    };
    finish_counted(probe, job, &mut df, lookup_bytes, Some(bytes))
}

/// Writes a frame to Parquet (a temporary name, then renamed into place).
pub fn write_parquet(path: &Path, df: &mut DataFrame) -> Result<()> {
    let tmp = path.with_extension("parquet.tmp");
    let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    ParquetWriter::new(file)
        .finish(df)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}
