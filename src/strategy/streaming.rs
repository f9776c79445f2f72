//! Beyond v2: ranking prep whose peak stays near the size of its output.
//!
//! v2 still holds several full-size frames at once (samples, the merged frame,
//! the frame merged again). This strategy never does: it reads the exposure log
//! from Parquet in chunks, plans which rows survive `dropna` and sampling in a
//! first light pass (a few columns), narrows the slim lookup tables to the
//! output's final dtypes, and then streams each chunk through both merges and the
//! downcast, appending the finished chunk to the output (or writing it to the
//! Parquet sink). Its output is the `optimized` strategy's, row for row, dtype for
//! dtype (tested by content hash). Peak ~ output + lookups + one chunk.

use std::fs::File;
use std::path::Path;

use anyhow::{bail, Context, Result};
use polars::prelude::*;
use serde_json::json;

use super::frame_ops::{column_bytes, frame_bytes, merge_left, narrowed_bytes, narrowest_int};
use super::{Job, Strategy};
use crate::data::columns::{DATASET_ID, LABEL, USER_ID};
use crate::data::DataCache;
use crate::probe::Probe;
use crate::sampling::{self, SamplingMode};

/// Rows per chunk when the job does not say.
pub const DEFAULT_CHUNK_ROWS: u64 = 100_000;

/// Chunked ranking prep with output-sized memory.
pub struct Streaming;

impl Strategy for Streaming {
    fn name(&self) -> &'static str {
        "streaming"
    }

    fn description(&self) -> &'static str {
        "beyond v2: chunked samples streamed through narrowed slim lookups into the final columns (or a Parquet sink)"
    }

    fn stages(&self) -> &'static [&'static str] {
        &[
            "load_lookups",
            "plan_rows",
            "narrow_lookups",
            "stream_merge",
        ]
    }

    fn run(&self, job: &Job, probe: &Probe) -> Result<()> {
        let cache = DataCache {
            dir: job.cache_dir.clone(),
        };
        let samples_path = cache.samples_path();
        let chunk = if job.chunk_rows > 0 {
            job.chunk_rows as usize
        } else {
            DEFAULT_CHUNK_ROWS as usize
        };

        let (total_rows, slim, users) = probe.stage("load_lookups", |d| {
            let total = parquet_rows(&samples_path)?;
            probe.info(format!("Ranking samples: {total} rows before optimization"));
            let profile_path = cache.profile_path();
            let head = read_parquet(&profile_path, None, Some((0, 1)))?;
            let keep: Vec<String> = head
                .columns()
                .iter()
                .filter(|c| c.name() == DATASET_ID || c.dtype().is_primitive_numeric())
                .map(|c| c.name().to_string())
                .collect();
            let slim = read_parquet(&profile_path, Some(keep), None)?;
            let users = read_parquet(&cache.users_path(), None, None)?;
            d.insert("rows".into(), json!(total));
            d.insert(
                "bytes".into(),
                json!(frame_bytes(&slim) + frame_bytes(&users)),
            );
            Ok((total, slim, users))
        })?;

        let plan = probe.stage("plan_rows", |d| {
            let plan = plan_rows(&samples_path, total_rows, chunk, job, probe, &slim, &users)?;
            probe.info(format!(
                "Ranking samples optimized: {} rows",
                plan.chosen.len()
            ));
            probe.info(format!(
                "Preparing ranking data (samples: {} rows, datasets: {})",
                plan.chosen.len(),
                slim.height()
            ));
            d.insert("rows_in".into(), json!(plan.valid_rows));
            d.insert("rows".into(), json!(plan.chosen.len()));
            d.insert("max_ranking_samples".into(), json!(job.max_ranking_samples));
            d.insert("sampling".into(), json!(job.sampling.name()));
            Ok(plan)
        })?;

        let (slim, users, lookup_bytes) = probe.stage("narrow_lookups", |d| {
            let slim = narrow_lookup(slim, DATASET_ID, &plan.datasets)?;
            let users = narrow_lookup(users, USER_ID, &plan.users)?;
            let bytes = narrowed_bytes(&slim)? + narrowed_bytes(&users)?;
            d.insert("bytes".into(), json!(bytes));
            Ok((slim, users, bytes))
        })?;

        let sink = job.output.as_deref();
        let streamed = probe.stage("stream_merge", |d| {
            probe.info(format!(
                "Merging with dataset features ({} columns)...",
                slim.width() - 1
            ));
            probe.info(format!(
                "Merging with user features ({} columns)...",
                users.width() - 1
            ));
            let streamed = stream(&samples_path, total_rows, chunk, &plan, &slim, &users, sink)?;
            probe.info(crate::units::memory_optimization_line(
                streamed.wide_bytes,
                streamed.bytes,
            ));
            d.insert("chunks".into(), json!(streamed.chunks));
            d.insert("chunk_rows".into(), json!(chunk));
            d.insert("rows".into(), json!(streamed.rows));
            d.insert("bytes".into(), json!(streamed.bytes));
            Ok(streamed)
        })?;

        match streamed.frame {
            Some(mut df) => {
                let job = Job {
                    output: None,
                    ..job.clone()
                };
                super::output::finish(probe, &job, &mut df, Some(lookup_bytes))
            }
            None => {
                probe.info(format!(
                    "Ranking data prepared: {} rows, {} features",
                    streamed.rows,
                    streamed.columns.saturating_sub(1)
                ));
                probe.output(crate::protocol::OutputSummary {
                    rows: streamed.rows,
                    features: streamed.columns.saturating_sub(1),
                    columns: streamed.columns,
                    bytes: streamed.bytes,
                    floor_bytes: Some(streamed.bytes + lookup_bytes),
                    hash: None,
                    sink: sink.map(|p| p.display().to_string()),
                });
                Ok(())
            }
        }
    }
}

/// Which rows survive, and what the output's dtypes must be.
struct RowPlan {
    valid_rows: usize,
    /// Original row numbers kept, ascending.
    chosen: Vec<u32>,
    /// Final dtype of each sample column.
    sample_dtypes: Vec<(PlSmallStr, DataType)>,
    datasets: IdSet,
    users: IdSet,
}

/// A set of integer ids as a bitmap over `[min, max]` of the lookup's key.
struct IdSet {
    min: i64,
    bits: Vec<u64>,
}

impl IdSet {
    fn for_keys(lookup: &DataFrame, key: &str) -> Result<Self> {
        let ids = lookup.column(key)?.as_materialized_series();
        let (min, max) = match (ids.min::<i64>()?, ids.max::<i64>()?) {
            (Some(lo), Some(hi)) => (lo, hi),
            _ => (0, 0),
        };
        let span = (max - min) as u64 + 1;
        if span > 1 << 34 {
            bail!("`{key}` spans {span} values: too sparse for a bitmap");
        }
        Ok(Self {
            min,
            bits: vec![0; span.div_ceil(64) as usize],
        })
    }

    fn insert(&mut self, id: i64) {
        let i = id - self.min;
        if i >= 0 && (i as usize) < self.bits.len() * 64 {
            self.bits[i as usize / 64] |= 1 << (i % 64);
        }
    }

    fn contains(&self, id: i64) -> bool {
        let i = id - self.min;
        i >= 0
            && (i as usize) < self.bits.len() * 64
            && self.bits[i as usize / 64] & (1 << (i % 64)) != 0
    }
}

fn read_parquet(
    path: &Path,
    columns: Option<Vec<String>>,
    slice: Option<(usize, usize)>,
) -> Result<DataFrame> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    ParquetReader::new(file)
        .with_columns(columns)
        .with_slice(slice)
        .finish()
        .map_err(anyhow::Error::from)
        .with_context(|| format!("reading {}", path.display()))
}

fn parquet_rows(path: &Path) -> Result<usize> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    ParquetReader::new(file)
        .num_rows()
        .map_err(anyhow::Error::from)
        .with_context(|| format!("reading metadata of {}", path.display()))
}

fn chunks(total: usize, chunk: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..total)
        .step_by(chunk.max(1))
        .map(move |offset| (offset, chunk.min(total - offset)))
}

/// Pass over a few columns: dropna, sampling, output dtypes, referenced ids.
fn plan_rows(
    path: &Path,
    total: usize,
    chunk: usize,
    job: &Job,
    probe: &Probe,
    slim: &DataFrame,
    users: &DataFrame,
) -> Result<RowPlan> {
    let capped = job.sampling == SamplingMode::Capped;
    let mut valid: Vec<u32> = Vec::new();
    let mut valid_datasets: Vec<i64> = Vec::new();
    let mut columns = vec![LABEL.to_string()];
    if capped {
        columns.push(DATASET_ID.to_string());
    }
    for (offset, len) in chunks(total, chunk) {
        let df = read_parquet(path, Some(columns.clone()), Some((offset, len)))?;
        let mask = df.column(LABEL)?.is_not_null();
        for (i, keep) in mask.iter().enumerate() {
            if keep == Some(true) {
                valid.push((offset + i) as u32);
            }
        }
        if capped {
            let ids = df.column(DATASET_ID)?.cast(&DataType::Int64)?;
            let kept = ids.filter(&mask)?;
            valid_datasets.extend(kept.i64()?.into_no_null_iter());
        }
    }
    let valid_rows = valid.len();
    let cap = job.max_ranking_samples as usize;
    let chosen: Vec<u32> = if cap > 0 && valid_rows > cap {
        match job.sampling {
            SamplingMode::Uniform => {
                probe.info(format!(
                    "Sampling ranking data: {valid_rows} -> {cap} rows (set MAX_RANKING_SAMPLES=0 to disable)"
                ));
                // The same index draw as `DataFrame::sample_n_literal` on a frame of this height.
                let positions = IdxCa::from_vec("".into(), (0..valid_rows as IdxSize).collect());
                let picked = positions.into_series().sample_n(
                    cap,
                    false,
                    Some(false),
                    Some(crate::settings::SAMPLING_SEED),
                )?;
                picked
                    .idx()?
                    .into_no_null_iter()
                    .map(|p| valid[p as usize])
                    .collect()
            }
            SamplingMode::Capped => {
                let ids = Column::new(DATASET_ID.into(), std::mem::take(&mut valid_datasets));
                let selection = sampling::capped(&ids, cap)?;
                probe.info(format!(
                    "Sampling ranking data: {valid_rows} -> {cap} rows, at most {} per dataset (capped sampling; set MAX_RANKING_SAMPLES=0 to disable)",
                    selection.per_dataset
                ));
                valid
                    .iter()
                    .zip(selection.mask.iter())
                    .filter(|(_, keep)| *keep == Some(true))
                    .map(|(row, _)| *row)
                    .collect()
            }
        }
    } else {
        valid
    };

    // Second light pass: ranges of the kept rows' integer columns, referenced ids.
    let head = read_parquet(path, None, Some((0, 1)))?;
    let int_columns: Vec<String> = head
        .columns()
        .iter()
        .filter(|c| c.dtype().is_integer())
        .map(|c| c.name().to_string())
        .collect();
    let mut ranges: Vec<(i64, i64)> = vec![(i64::MAX, i64::MIN); int_columns.len()];
    let mut datasets = IdSet::for_keys(slim, DATASET_ID)?;
    let mut user_set = IdSet::for_keys(users, USER_ID)?;
    for (offset, len) in chunks(total, chunk) {
        let a = chosen.partition_point(|&r| (r as usize) < offset);
        let b = chosen.partition_point(|&r| (r as usize) < offset + len);
        if a == b {
            continue;
        }
        let df = read_parquet(path, Some(int_columns.clone()), Some((offset, len)))?;
        let local = IdxCa::from_vec(
            "".into(),
            chosen[a..b]
                .iter()
                .map(|&r| (r as usize - offset) as IdxSize)
                .collect(),
        );
        let kept = df.take(&local)?;
        for (k, name) in int_columns.iter().enumerate() {
            let s = kept.column(name)?.cast(&DataType::Int64)?;
            let s = s.i64()?;
            if let (Some(lo), Some(hi)) = (s.min(), s.max()) {
                ranges[k] = (ranges[k].0.min(lo), ranges[k].1.max(hi));
            }
            if name == DATASET_ID {
                s.into_no_null_iter().for_each(|id| datasets.insert(id));
            } else if name == USER_ID {
                s.into_no_null_iter().for_each(|id| user_set.insert(id));
            }
        }
    }
    let sample_dtypes = head
        .columns()
        .iter()
        .map(|c| {
            let target = match c.dtype() {
                DataType::Float64 | DataType::Float32 => DataType::Float32,
                dt if dt.is_integer() => {
                    let k = int_columns.iter().position(|n| n == c.name().as_str());
                    match k.map(|k| ranges[k]) {
                        Some((lo, hi)) if lo <= hi => narrowest_int(lo, hi),
                        _ => dt.clone(),
                    }
                }
                dt => dt.clone(),
            };
            (c.name().clone(), target)
        })
        .collect();
    Ok(RowPlan {
        valid_rows,
        chosen,
        sample_dtypes,
        datasets,
        users: user_set,
    })
}

/// Narrows a lookup to the output's dtypes: floats to float32, each integer
/// feature to the narrowest type holding it over the referenced rows, the key
/// over all rows.
fn narrow_lookup(mut lookup: DataFrame, key: &str, referenced: &IdSet) -> Result<DataFrame> {
    let keys: Vec<Option<i64>> = lookup
        .column(key)?
        .cast(&DataType::Int64)?
        .i64()?
        .iter()
        .collect();
    let mask: BooleanChunked = keys
        .iter()
        .map(|k| Some(k.is_some_and(|k| referenced.contains(k))))
        .collect();
    drop(keys);
    let names = lookup.get_column_names_owned();
    for name in names {
        let column = lookup.column(&name)?;
        let target = match column.dtype() {
            DataType::Float64 => DataType::Float32,
            dt if dt.is_integer() => {
                let s = if name == key {
                    column.as_materialized_series().clone()
                } else {
                    column.as_materialized_series().filter(&mask)?
                };
                match (s.min::<i64>()?, s.max::<i64>()?) {
                    (Some(lo), Some(hi)) => narrowest_int(lo, hi),
                    _ => continue,
                }
            }
            _ => continue,
        };
        if column.dtype() != &target {
            let narrowed = column.cast(&target)?;
            lookup.with_column(narrowed)?;
        }
    }
    Ok(lookup)
}

/// What streaming produced.
struct Streamed {
    frame: Option<DataFrame>,
    rows: u64,
    columns: u64,
    bytes: u64,
    /// Bytes the same output would take with pandas' default 64-bit numbers.
    wide_bytes: u64,
    chunks: u64,
}

#[allow(clippy::too_many_arguments)]
fn stream(
    path: &Path,
    total: usize,
    chunk: usize,
    plan: &RowPlan,
    slim: &DataFrame,
    users: &DataFrame,
    sink: Option<&Path>,
) -> Result<Streamed> {
    let mut frame: Option<DataFrame> = None;
    let mut writer = None;
    let tmp = sink.map(|p| p.with_extension("parquet.tmp"));
    let mut out = Streamed {
        frame: None,
        rows: 0,
        columns: 0,
        bytes: 0,
        wide_bytes: 0,
        chunks: 0,
    };
    for (offset, len) in chunks(total, chunk) {
        let a = plan.chosen.partition_point(|&r| (r as usize) < offset);
        let b = plan
            .chosen
            .partition_point(|&r| (r as usize) < offset + len);
        if a == b {
            continue;
        }
        let df = read_parquet(path, None, Some((offset, len)))?;
        let local = IdxCa::from_vec(
            "".into(),
            plan.chosen[a..b]
                .iter()
                .map(|&r| (r as usize - offset) as IdxSize)
                .collect(),
        );
        let mut part = df.take(&local)?;
        drop(df);
        compact_strings(&mut part)?;
        for (name, dtype) in &plan.sample_dtypes {
            let column = part.column(name)?;
            if column.dtype() != dtype {
                let narrowed = column.cast(dtype)?;
                part.with_column(narrowed)?;
            }
        }
        let part = merge_left(&part, slim, DATASET_ID)?;
        let part = merge_left(&part, users, USER_ID)?;
        out.rows += part.height() as u64;
        out.columns = part.width() as u64;
        out.wide_bytes += wide_bytes(&part);
        out.chunks += 1;
        match (&tmp, &mut writer, &mut frame) {
            (Some(tmp), w, _) => {
                if w.is_none() {
                    let file =
                        File::create(tmp).with_context(|| format!("creating {}", tmp.display()))?;
                    *w = Some(ParquetWriter::new(file).batched(part.schema())?);
                }
                if let Some(w) = w.as_mut() {
                    w.write_batch(&part)?;
                }
                out.bytes += frame_bytes(&part);
            }
            (None, _, Some(f)) => {
                f.vstack_mut_owned(part)?;
            }
            (None, _, f) => *f = Some(part),
        }
    }
    if let (Some(w), Some(tmp), Some(sink)) = (writer, &tmp, sink) {
        w.finish()?;
        std::fs::rename(tmp, sink).with_context(|| format!("renaming to {}", sink.display()))?;
    }
    if let Some(f) = &frame {
        out.bytes = frame_bytes(f);
    }
    out.frame = frame;
    Ok(out)
}

/// Gives the kept rows' strings buffers of their own: a gathered string column
/// still points into the whole decoded chunk's string bytes, which would keep
/// every chunk's dropped and unsampled rows' strings alive in the output.
fn compact_strings(df: &mut DataFrame) -> Result<()> {
    for name in df.get_column_names_owned() {
        let column = df.column(&name)?;
        if let Ok(ca) = column.str() {
            let compact: StringChunked = ca.iter().collect();
            df.with_column(compact.with_name(name).into_column())?;
        }
    }
    Ok(())
}

/// Bytes of a frame were its numbers 64-bit (pandas' defaults), for the log line.
fn wide_bytes(df: &DataFrame) -> u64 {
    df.columns()
        .iter()
        .map(|c| {
            if c.dtype().is_primitive_numeric() {
                8 * c.len() as u64
            } else {
                column_bytes(c, None)
            }
        })
        .sum()
}
