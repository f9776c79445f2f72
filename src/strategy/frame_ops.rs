//! DataFrame operations with pandas' memory semantics.
//!
//! The pipeline being replayed is pandas. polars shares buffers where pandas
//! allocates: `clone()`, `rechunk()` and a 1:1 left join all reuse the input's
//! memory. These helpers allocate exactly where pandas does, so the replayed RSS
//! has pandas' shape; a strategy that wants polars' shortcuts must say so.

use std::collections::{HashMap, HashSet};

use anyhow::{bail, Context, Result};
use polars::prelude::*;
use rayon::prelude::*;

/// `DataFrame.copy()` (deep): new buffers for every column.
///
/// Fixed-width data and string views are copied; the bytes of long strings stay
/// shared, as a pandas object column's copy duplicates the pointers, not the
/// Python string objects they point to.
pub fn deep_copy(df: &DataFrame) -> Result<DataFrame> {
    let identity = IdxCa::from_vec("".into(), (0..df.height() as IdxSize).collect());
    df.take(&identity)
        .map_err(anyhow::Error::from)
        .context("copying the frame")
}

/// `left.merge(right, on=key, how="left")` with a many-to-one right side.
///
/// Like pandas, the result materializes every column, the left side's included
/// (polars would reuse the left buffers of a 1:1 left join).
pub fn merge_left(left: &DataFrame, right: &DataFrame, key: &str) -> Result<DataFrame> {
    let gather = right_positions(left, right, key)?;
    let left_part = deep_copy(left)?;
    let right_part = right.drop(key)?.take(&gather)?;
    drop(gather);
    left_part
        .hstack(right_part.columns())
        .map_err(anyhow::Error::from)
        .context("joining merge halves")
}

/// For each left row, the position of its key in `right` (null when absent):
/// the gather of a many-to-one left merge (exit with an error on a duplicate
/// right key).
pub fn right_positions(left: &DataFrame, right: &DataFrame, key: &str) -> Result<IdxCa> {
    let right_keys = right.column(key)?.cast(&DataType::Int64)?;
    let right_keys = right_keys.i64()?;
    let mut positions: HashMap<i64, IdxSize> = HashMap::with_capacity(right.height());
    for (i, k) in right_keys.iter().enumerate() {
        if let Some(k) = k {
            if positions.insert(k, i as IdxSize).is_some() {
                bail!("merge on `{key}`: right side has duplicate key {k} (expected many-to-one)");
            }
        }
    }
    let left_keys = left.column(key)?.cast(&DataType::Int64)?;
    let left_keys: Vec<Option<i64>> = left_keys.i64()?.iter().collect();
    let gather: Vec<Option<IdxSize>> = left_keys
        .par_iter()
        .map(|k| k.and_then(|k| positions.get(&k).copied()))
        .collect();
    drop(left_keys);
    Ok(gather.into_iter().collect())
}

/// The narrowest integer dtype that holds `[min, max]`.
pub fn narrowest_int(min: i64, max: i64) -> DataType {
    if min >= i8::MIN as i64 && max <= i8::MAX as i64 {
        DataType::Int8
    } else if min >= i16::MIN as i64 && max <= i16::MAX as i64 {
        DataType::Int16
    } else if min >= i32::MIN as i64 && max <= i32::MAX as i64 {
        DataType::Int32
    } else {
        DataType::Int64
    }
}

/// The pipeline's `optimize_dataframe_memory()`: integers to the narrowest type
/// that holds their range, floats to float32, strings as they are.
///
/// Columns are replaced one at a time, as pandas assigns `df[col] = ...`, so the
/// transient cost is one column, not a second frame.
pub fn optimize_memory(df: &mut DataFrame) -> Result<()> {
    let names: Vec<PlSmallStr> = df.get_column_names_owned();
    for name in names {
        let column = df.column(&name)?;
        let Some(target) = narrowed_dtype(column)? else {
            continue;
        };
        let narrowed = column.cast(&target)?;
        df.with_column(narrowed)?;
    }
    Ok(())
}

/// The dtype `optimize_dataframe_memory()` gives a column, or `None` when it
/// leaves it as it is (strings, already narrow, all null).
pub fn narrowed_dtype(column: &Column) -> Result<Option<DataType>> {
    let target = match column.dtype() {
        DataType::Float64 => DataType::Float32,
        DataType::Int64 | DataType::Int32 | DataType::Int16 => {
            let s = column.as_materialized_series().cast(&DataType::Int64)?;
            let ca = s.i64()?;
            match (ca.min(), ca.max()) {
                (Some(lo), Some(hi)) => narrowest_int(lo, hi),
                _ => return Ok(None),
            }
        }
        _ => return Ok(None),
    };
    Ok((column.dtype() != &target).then_some(target))
}

/// Bytes a frame really holds: every buffer counted once, shared string data
/// included once (unlike `estimated_size()`, which counts a shared buffer per user).
pub fn frame_bytes(df: &DataFrame) -> u64 {
    let mut seen = HashSet::new();
    df.columns()
        .iter()
        .map(|c| column_bytes(c, Some(&mut seen)))
        .sum()
}

/// Bytes of a frame's fixed-width buffers (values, string views, validity):
/// what a pandas-style copy or gather newly allocates.
pub fn fixed_bytes(df: &DataFrame) -> u64 {
    df.columns().iter().map(|c| column_bytes(c, None)).sum()
}

/// Bytes of one column (see [`frame_bytes`] and [`fixed_bytes`]); `seen`
/// counts shared string buffers once across calls.
pub fn column_bytes(column: &Column, seen: Option<&mut HashSet<usize>>) -> u64 {
    let s = column.as_materialized_series();
    let Ok(ca) = s.str() else {
        return s.estimated_size() as u64;
    };
    let mut total = 0u64;
    let mut seen = seen;
    if ca.null_count() > 0 {
        total += ca.len().div_ceil(8) as u64;
    }
    for arr in ca.downcast_iter() {
        total += (arr.views().len() * 16) as u64;
        if let Some(seen) = seen.as_deref_mut() {
            for buffer in arr.data_buffers().iter() {
                if seen.insert(buffer.as_ptr() as usize) {
                    total += buffer.len() as u64;
                }
            }
        }
    }
    total
}

/// Bytes a frame would hold after [`optimize_memory`], computed from column
/// ranges without allocating (so it can run inside a measured stage).
pub fn narrowed_bytes(df: &DataFrame) -> Result<u64> {
    let mut total = 0u64;
    for column in df.columns() {
        let n = column.len() as u64;
        let validity = if column.null_count() > 0 {
            n.div_ceil(8)
        } else {
            0
        };
        let width = match column.dtype() {
            DataType::Float64 | DataType::Float32 => 4,
            dt if dt.is_integer() => {
                let s = column.as_materialized_series();
                let (lo, hi) = match (s.min::<i64>()?, s.max::<i64>()?) {
                    (Some(lo), Some(hi)) => (lo, hi),
                    _ => (0, 0),
                };
                match narrowest_int(lo, hi) {
                    DataType::Int8 => 1,
                    DataType::Int16 => 2,
                    DataType::Int32 => 4,
                    _ => 8,
                }
            }
            _ => {
                total += column_bytes(column, None);
                continue;
            }
        };
        total += width * n + validity;
    }
    Ok(total)
}

/// Features of a prepared frame: every column except the label.
pub fn feature_count(df: &DataFrame) -> u64 {
    df.width().saturating_sub(1) as u64
}
