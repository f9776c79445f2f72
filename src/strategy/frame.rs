//! Frames as a memory mode holds them, and the operations ranking prep needs.
//!
//! The strategies are written once against [`Ops`]; the [`MemoryMode`] decides
//! what each operation allocates. In `polars` mode the operations are
//! [`super::frame_ops`]' (polars buffers, pandas' allocation points). In
//! `pandas` mode they follow pandas 2.3, step by step where memory is concerned
//! (checked against pandas with `oomlab fidelity`):
//!
//! - **Object columns.** `pd.read_parquet` (pyarrow's `to_pandas`, which
//!   deduplicates objects per column) gives every string column an array of
//!   8-byte pointers to `str` objects, one object per distinct value. Here a
//!   string column becomes an 8-byte handle column (`UInt64`) into a per-column
//!   [`StringPool`] whose resident size is what CPython's objects take
//!   (`49 + len` bytes rounded up to pymalloc's 16). Copies, takes and merges
//!   copy handles, never strings, as pandas copies pointers.
//! - **Blocks.** pandas keeps columns of one dtype in 2-D blocks. Which columns
//!   share a block decides two costs the replay has to reproduce: a deep copy
//!   consolidates a frame with several blocks of one dtype (`np.vstack` of the
//!   group, then a reordering copy of it), and `df[col] = df[col].astype(t)`
//!   leaves the old block alive (as views of the remaining columns) until its
//!   last column is replaced. Each [`Frame`] carries its block layout.
//! - **merge** (`how="left"`, unique right key): join indexers from
//!   `left_outer_join`, a take of the right side, then `concat(copy=True)`,
//!   which deep-copies (and so consolidates) both halves; the left side is not
//!   taken since its indexer is a range. The take is freed once the copy exists,
//!   so the step peaks near twice its result.
//! - **pyarrow's pool.** The decoded Arrow tables stay for the whole run, as
//!   pyarrow's mimalloc pool keeps their memory (see [`ObjectStore`]).

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result};
use polars::prelude::*;

use super::frame_ops::{self, deep_copy};
use crate::data::{DataCache, Inputs};
use crate::settings::MemoryMode;

/// Where a column lives in pandas' block layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    /// Columns with the same id share one 2-D block.
    block: u32,
    /// An object column (8-byte handles into a [`StringPool`]).
    object: bool,
}

/// A frame of the replay: its data and, for `pandas` mode, its block layout.
pub struct Frame {
    /// The columns (string columns as handles in `pandas` mode).
    pub df: DataFrame,
    slots: Vec<Slot>,
    /// Old column buffers pandas would still hold: blocks an `astype` swap
    /// left partly replaced stay alive as long as the frame does.
    retained: Vec<Column>,
}

impl Frame {
    /// A frame as loaded: one block per dtype (consolidated).
    fn consolidated(df: DataFrame, objects: &[bool]) -> Self {
        let slots = consolidated_slots(&df, objects);
        Self {
            df,
            slots,
            retained: Vec::new(),
        }
    }

    /// Rows.
    pub fn height(&self) -> usize {
        self.df.height()
    }

    /// Columns.
    pub fn width(&self) -> usize {
        self.df.width()
    }

    /// A frame of the same columns after a row selection (filter, take,
    /// sample): pandas keeps the block layout through a take.
    pub fn with_rows(&self, df: DataFrame) -> Self {
        Self {
            df,
            slots: self.slots.clone(),
            retained: Vec::new(),
        }
    }

    /// A frame without object columns, one block per dtype: how `polars`
    /// mode holds every frame (its layout is never consulted).
    fn plain(df: DataFrame) -> Self {
        let objects = vec![false; df.width()];
        Self::consolidated(df, &objects)
    }

    fn class(&self, i: usize) -> (bool, DataType) {
        class_of(&self.df.columns()[i], self.slots[i].object)
    }

    /// Column indices of every dtype held in more than one block: what a deep
    /// copy's consolidation stacks, group by group.
    fn split_groups(&self) -> Vec<Vec<usize>> {
        let mut groups: Vec<((bool, DataType), Vec<usize>)> = Vec::new();
        for i in 0..self.width() {
            let class = self.class(i);
            match groups.iter_mut().find(|(c, _)| *c == class) {
                Some((_, cols)) => cols.push(i),
                None => groups.push((class, vec![i])),
            }
        }
        groups
            .into_iter()
            .filter(|(_, cols)| {
                let first = self.slots[cols[0]].block;
                cols.iter().any(|&i| self.slots[i].block != first)
            })
            .map(|(_, cols)| cols)
            .collect()
    }

    fn objects(&self) -> Vec<bool> {
        self.slots.iter().map(|s| s.object).collect()
    }

    /// Block ids are unique within a frame; a new one is past the largest.
    fn fresh_block(&self) -> u32 {
        self.slots.iter().map(|s| s.block + 1).max().unwrap_or(0)
    }
}

/// What decides which columns can share a block: object columns share one
/// kind of block whatever their handles' dtype, the others one per dtype.
fn class_of(column: &Column, object: bool) -> (bool, DataType) {
    let dtype = if object {
        DataType::String
    } else {
        column.dtype().clone()
    };
    (object, dtype)
}

fn consolidated_slots(df: &DataFrame, objects: &[bool]) -> Vec<Slot> {
    let mut classes: Vec<(bool, DataType)> = Vec::new();
    df.columns()
        .iter()
        .zip(objects)
        .map(|(c, &object)| {
            let class = class_of(c, object);
            let block = match classes.iter().position(|k| *k == class) {
                Some(b) => b,
                None => {
                    classes.push(class);
                    classes.len() - 1
                }
            };
            Slot {
                block: block as u32,
                object,
            }
        })
        .collect()
}

/// The distinct strings of one object column, at the size CPython holds them.
pub struct StringPool {
    /// The distinct values, in handle order (kept to decode output).
    dictionary: StringChunked,
    /// Makes the pool's resident size what the `str` objects take: CPython's
    /// size minus what the dictionary itself holds. Written, so it is resident.
    _python_objects: Vec<u8>,
    /// Resident bytes of the objects (what `sys.getsizeof` and pymalloc give).
    pub python_bytes: u64,
}

/// Bytes CPython holds for a compact ASCII `str` of `len` characters:
/// `sys.getsizeof` (49 + len on 64-bit CPython 3.11) rounded up to pymalloc's
/// 16-byte size classes, or malloc's 16-byte header above pymalloc's 512.
pub fn python_str_bytes(len: usize) -> u64 {
    let size = 49 + len as u64;
    if size <= 512 {
        size.div_ceil(16) * 16
    } else {
        size + 16
    }
}

/// What a pandas process holds outside its frames' buffers for as long as it
/// runs: the object columns' string pools, by column name (names are unique
/// across the three inputs, and merges keep them), and what pyarrow's memory
/// pool keeps of reading the Parquet files.
///
/// pyarrow allocates through mimalloc, which keeps what the decoding freed:
/// measured with pandas 2.3.3 / pyarrow 21 on 682,572 production rows,
/// `pd.read_parquet` of the samples leaves RSS 334 bytes a row higher while
/// the frame itself holds 136 (8-byte pointers, the `str` objects, six
/// numbers), and none of it is returned within 12 s. The decoded Arrow
/// tables (here, the frames polars read) are kept as a lower bound of that.
#[derive(Default)]
pub struct ObjectStore {
    pools: BTreeMap<String, StringPool>,
    /// The decoded tables, kept as pyarrow's pool keeps their memory.
    arrow_pool: Vec<DataFrame>,
}

impl ObjectStore {
    /// Resident bytes of every pool.
    pub fn bytes(&self) -> u64 {
        self.pools.values().map(|p| p.python_bytes).sum()
    }

    /// Bytes of the decoded tables kept as pyarrow's pool keeps them.
    pub fn arrow_pool_bytes(&self) -> u64 {
        self.arrow_pool.iter().map(frame_ops::frame_bytes).sum()
    }

    /// Converts a string column to handles, storing its distinct values once.
    fn intern(&mut self, column: &Column) -> Result<Column> {
        let ca = column.as_materialized_series().str()?.clone();
        let mut ids: HashMap<&str, u64> = HashMap::new();
        let mut values: Vec<&str> = Vec::new();
        let handles: UInt64Chunked = ca
            .iter()
            .map(|v| {
                v.map(|s| {
                    *ids.entry(s).or_insert_with(|| {
                        values.push(s);
                        values.len() as u64 - 1
                    })
                })
            })
            .collect_ca(column.name().clone());
        drop(ids);
        let python_bytes: u64 = values.iter().map(|s| python_str_bytes(s.len())).sum();
        let dictionary = StringChunked::from_iter_values(column.name().clone(), values.into_iter());
        let held = frame_ops::column_bytes(
            &dictionary.clone().into_column(),
            Some(&mut Default::default()),
        );
        let padding = python_bytes.saturating_sub(held) as usize;
        self.pools.insert(
            column.name().to_string(),
            StringPool {
                dictionary,
                _python_objects: vec![1u8; padding],
                python_bytes,
            },
        );
        Ok(handles.into_column())
    }

    /// Turns a handle column back into strings (for output and hashing).
    fn decode(&self, column: &Column) -> Result<Column> {
        let pool = self
            .pools
            .get(column.name().as_str())
            .with_context(|| format!("no string pool for column `{}`", column.name()))?;
        let idx = column.cast(&IDX_DTYPE)?;
        let idx = idx.as_materialized_series().idx()?.clone();
        Ok(pool.dictionary.take(&idx)?.into_column())
    }
}

/// The three inputs of ranking prep, as the mode holds them.
pub struct Loaded {
    pub samples: Frame,
    pub profile: Frame,
    pub users: Frame,
    /// The string objects the object columns point to and the decoded tables
    /// pyarrow's pool keeps (empty in `polars` mode).
    pub objects: ObjectStore,
}

/// The operations of ranking prep, allocating as the memory mode says.
#[derive(Debug, Clone, Copy)]
pub struct Ops {
    pub mode: MemoryMode,
}

impl Ops {
    /// Ops of a job's mode.
    pub fn new(mode: MemoryMode) -> Self {
        Self { mode }
    }

    /// `pd.read_parquet` of the three inputs.
    ///
    /// In `pandas` mode the Arrow data polars reads stands in for pyarrow's
    /// table: it is converted column by column (strings to handles and pooled
    /// objects, numbers into consolidated blocks), and then kept, as
    /// pyarrow's memory pool keeps it (see [`ObjectStore`]).
    pub fn load(&self, cache: &DataCache) -> Result<Loaded> {
        let Inputs {
            samples,
            profile,
            users,
        } = cache.load()?;
        let mut objects = ObjectStore::default();
        let mut convert = |df: DataFrame| -> Result<Frame> {
            match self.mode {
                MemoryMode::Polars => Ok(Frame::plain(df)),
                MemoryMode::Pandas => {
                    let mut columns = Vec::with_capacity(df.width());
                    let mut is_object = Vec::with_capacity(df.width());
                    for column in df.columns() {
                        if column.dtype() == &DataType::String {
                            columns.push(objects.intern(column)?);
                            is_object.push(true);
                        } else {
                            columns.push(deep_copy_column(column)?);
                            is_object.push(false);
                        }
                    }
                    let height = df.height();
                    objects.arrow_pool.push(df);
                    Ok(Frame::consolidated(
                        DataFrame::new(height, columns)?,
                        &is_object,
                    ))
                }
            }
        };
        Ok(Loaded {
            samples: convert(samples)?,
            profile: convert(profile)?,
            users: convert(users)?,
            objects,
        })
    }

    /// `df.copy()`: new buffers for every column; in `pandas` mode a frame with
    /// several blocks of one dtype is consolidated on the way, as
    /// `BlockManager.copy(deep=True)` does.
    pub fn copy(&self, f: &Frame) -> Result<Frame> {
        let copied = deep_copy(&f.df)?;
        if self.mode == MemoryMode::Polars {
            return Ok(f.with_rows(copied));
        }
        let groups = f.split_groups();
        if groups.is_empty() {
            return Ok(f.with_rows(copied));
        }
        // `_consolidate_inplace`: per dtype group, `np.vstack` of its blocks
        // and `new_values[argsort]`, a second copy that replaces the first;
        // the copied blocks are released once every group is done.
        let mut stacked: BTreeMap<usize, Column> = BTreeMap::new();
        for group in &groups {
            let cols: Vec<Column> = group.iter().map(|&i| copied.columns()[i].clone()).collect();
            let vstack = DataFrame::new(copied.height(), cols)?;
            let vstack = deep_copy(&vstack)?;
            let reordered = deep_copy(&vstack)?;
            drop(vstack);
            for (&i, c) in group.iter().zip(reordered.columns()) {
                stacked.insert(i, c.clone());
            }
        }
        let columns: Vec<Column> = copied
            .columns()
            .iter()
            .enumerate()
            .map(|(i, c)| stacked.remove(&i).unwrap_or_else(|| c.clone()))
            .collect();
        let height = copied.height();
        drop(copied);
        Ok(Frame::consolidated(
            DataFrame::new(height, columns)?,
            &f.objects(),
        ))
    }

    /// `df.dropna(subset=[column])`: a take of the kept rows (new buffers, the
    /// block layout kept).
    pub fn drop_nulls(&self, f: &Frame, column: &str) -> Result<Frame> {
        Ok(f.with_rows(f.df.drop_nulls(Some(&[column]))?))
    }

    /// The numeric columns (`select_dtypes(include="number")`); object columns
    /// are not numeric even though their handles are integers.
    pub fn numeric_columns(&self, f: &Frame) -> Vec<PlSmallStr> {
        f.df.columns()
            .iter()
            .zip(&f.slots)
            .filter(|(c, s)| !s.object && c.dtype().is_primitive_numeric())
            .map(|(c, _)| c.name().clone())
            .collect()
    }

    /// `df[[names]]`: a copy of the selected columns, block by block.
    pub fn select_copy(&self, f: &Frame, names: &[PlSmallStr]) -> Result<Frame> {
        let idx: Vec<usize> = names
            .iter()
            .map(|n| {
                f.df.get_column_index(n)
                    .with_context(|| format!("no column `{n}`"))
            })
            .collect::<Result<_>>()?;
        let df = deep_copy(&f.df.select(names.iter().cloned())?)?;
        Ok(Frame {
            df,
            slots: idx.iter().map(|&i| f.slots[i]).collect(),
            retained: Vec::new(),
        })
    }

    /// `left.merge(right, on=key, how="left")` with a many-to-one right side.
    pub fn merge_left(&self, left: &Frame, right: &Frame, key: &str) -> Result<Frame> {
        if self.mode == MemoryMode::Polars {
            return Ok(Frame::plain(frame_ops::merge_left(
                &left.df, &right.df, key,
            )?));
        }
        let gather = frame_ops::right_positions(&left.df, &right.df, key)?;
        // `_get_join_info`: the factorizer's hash table and the intp arrays of
        // `left_outer_join` (codes, sorter, both indexers, the reordering and
        // its copies); the two indexers outlive it until the merge returns.
        let cast_left_key = left.df.column(key)?.dtype() != right.df.column(key)?.dtype();
        let indexers = JoinIndexers::build(&gather, right.height(), cast_left_key);
        let right_rest = right_without(right, key)?;
        let taken = right_rest.with_rows(right_rest.df.take(&gather)?);
        drop(gather);
        // `concat([left, right], axis=1, copy=True)`: both halves deep-copied
        // (consolidating), the left first; then the take is released.
        let left_part = self.copy(left)?;
        let right_part = self.copy(&taken)?;
        drop(taken);
        drop(indexers);
        let offset = left_part.fresh_block();
        let mut slots = left_part.slots.clone();
        slots.extend(right_part.slots.iter().map(|s| Slot {
            block: s.block + offset,
            object: s.object,
        }));
        let df = left_part
            .df
            .hstack(right_part.df.columns())
            .map_err(anyhow::Error::from)
            .context("joining merge halves")?;
        Ok(Frame {
            df,
            slots,
            retained: Vec::new(),
        })
    }

    /// The pipeline's `optimize_dataframe_memory()`. In `pandas` mode each
    /// replaced column's old buffer stays alive while any column of its block
    /// remains (the block's other columns are views of it).
    pub fn optimize_memory(&self, f: &mut Frame) -> Result<()> {
        if self.mode == MemoryMode::Polars {
            return frame_ops::optimize_memory(&mut f.df);
        }
        let mut left_in_block: HashMap<u32, usize> = HashMap::new();
        for s in &f.slots {
            *left_in_block.entry(s.block).or_default() += 1;
        }
        let mut held: HashMap<u32, Vec<Column>> = HashMap::new();
        for i in 0..f.width() {
            if f.slots[i].object {
                continue;
            }
            let column = f.df.columns()[i].clone();
            let Some(target) = frame_ops::narrowed_dtype(&column)? else {
                continue;
            };
            let narrowed = column.cast(&target)?;
            f.df.with_column(narrowed)?;
            let block = f.slots[i].block;
            f.slots[i].block = f.fresh_block();
            held.entry(block).or_default().push(column);
            let left = left_in_block.entry(block).or_default();
            *left -= 1;
            if *left == 0 {
                held.remove(&block);
            }
        }
        f.retained.extend(held.into_values().flatten());
        Ok(())
    }

    /// Bytes the frame holds in this mode: its buffers, and in `pandas` mode
    /// the string objects its object columns point to (the output's share of
    /// the floor).
    pub fn resident_bytes(&self, f: &Frame, objects: &ObjectStore) -> u64 {
        let own = frame_ops::frame_bytes(&f.df);
        if self.mode == MemoryMode::Polars {
            return own;
        }
        own + f
            .df
            .columns()
            .iter()
            .zip(&f.slots)
            .filter(|(_, s)| s.object)
            .filter_map(|(c, _)| objects.pools.get(c.name().as_str()))
            .map(|p| p.python_bytes)
            .sum::<u64>()
    }

    /// The frame as polars columns (handles decoded), for output and hashing.
    pub fn decoded(self, f: Frame, objects: &ObjectStore) -> Result<DataFrame> {
        if self.mode == MemoryMode::Polars {
            return Ok(f.df);
        }
        let columns: Vec<Column> =
            f.df.columns()
                .iter()
                .zip(&f.slots)
                .map(|(c, s)| {
                    if s.object {
                        objects.decode(c)
                    } else {
                        Ok(c.clone())
                    }
                })
                .collect::<Result<_>>()?;
        Ok(DataFrame::new(f.df.height(), columns)?)
    }
}

/// A copy of one column's values in new buffers.
fn deep_copy_column(column: &Column) -> Result<Column> {
    let df = DataFrame::new(column.len(), vec![column.clone()])?;
    let copied = deep_copy(&df)?;
    Ok(copied.columns()[0].clone())
}

/// The right side without its key (pandas drops it before the take).
fn right_without(right: &Frame, key: &str) -> Result<Frame> {
    let at = right
        .df
        .get_column_index(key)
        .with_context(|| format!("merge: no column `{key}` on the right"))?;
    let mut slots = right.slots.clone();
    slots.remove(at);
    Ok(Frame {
        df: right.df.drop(key)?,
        slots,
        retained: Vec::new(),
    })
}

/// What pandas' join machinery holds while a left merge runs (pandas 2.3,
/// `_factorize_keys` and `libjoin.left_outer_join` with `sort=False`),
/// allocated and written so it is resident: the left keys cast to int64 when
/// the sides' key dtypes differ; the `Int64Factorizer` hash table (sized to
/// the larger side, a power of two at load factor 0.77, 16 bytes a bucket);
/// and the intp arrays of the left's length alive when the join returns:
/// the left codes, the group sort order, both indexers, the reordering `rev`
/// and the two reordered indexers. Only the reordered indexers outlive it,
/// until the merge returns.
struct JoinIndexers {
    _left_indexer: Vec<i64>,
    _right_indexer: Vec<i64>,
}

impl JoinIndexers {
    fn build(gather: &IdxCa, right_rows: usize, cast_left_key: bool) -> Self {
        let n = gather.len();
        let buckets = ((n.max(right_rows) as f64 / 0.77).ceil() as usize).next_power_of_two();
        let fill = |len: usize| -> Vec<i64> { (0..len as i64).collect() };
        let key_copy = if cast_left_key { fill(n) } else { Vec::new() };
        let table = fill(2 * buckets);
        // codes, sorter, left/right indexer, rev
        let scratch: Vec<Vec<i64>> = (0..5).map(|_| fill(n)).collect();
        let left_indexer = fill(n);
        let right_indexer: Vec<i64> = gather
            .iter()
            .map(|g| g.map(|g| g as i64).unwrap_or(-1))
            .collect();
        std::hint::black_box((&key_copy, &table, &scratch, &left_indexer, &right_indexer));
        drop(scratch);
        drop(table);
        drop(key_copy);
        Self {
            _left_indexer: left_indexer,
            _right_indexer: right_indexer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(columns: Vec<Column>, objects: &[bool]) -> Frame {
        let height = columns[0].len();
        Frame::consolidated(DataFrame::new(height, columns).unwrap(), objects)
    }

    #[test]
    fn python_strings_take_cpython_sizes() {
        // sys.getsizeof("x" * 24) == 73 on CPython 3.11; pymalloc gives 80.
        assert_eq!(python_str_bytes(24), 80);
        assert_eq!(python_str_bytes(0), 64);
        assert_eq!(python_str_bytes(1000), 1065);
    }

    #[test]
    fn a_merge_result_is_unconsolidated_until_copied() {
        let ops = Ops::new(MemoryMode::Pandas);
        let left = frame(
            vec![
                Column::new("k".into(), vec![1i64, 2, 3]),
                Column::new("a".into(), vec![0.5f64, 1.5, 2.5]),
            ],
            &[false, false],
        );
        let right = frame(
            vec![
                Column::new("k".into(), vec![1i64, 2]),
                Column::new("b".into(), vec![7.0f64, 8.0]),
            ],
            &[false, false],
        );
        let merged = ops.merge_left(&left, &right, "k").unwrap();
        assert_eq!(merged.height(), 3);
        // Two float64 blocks (one per side): a copy must consolidate them.
        assert_eq!(merged.split_groups(), vec![vec![1, 2]]);
        let copied = ops.copy(&merged).unwrap();
        assert!(copied.split_groups().is_empty());
        assert!(copied.df.equals_missing(&merged.df));
    }

    #[test]
    fn astype_keeps_a_block_until_its_last_column_is_replaced() {
        let ops = Ops::new(MemoryMode::Pandas);
        let mut f = frame(
            vec![
                Column::new("x".into(), vec![1.0f64, 2.0]),
                Column::new("y".into(), vec![3.0f64, 4.0]),
                Column::new("s".into(), vec![1u64, 2]),
            ],
            &[false, false, true],
        );
        ops.optimize_memory(&mut f).unwrap();
        assert_eq!(f.df.column("x").unwrap().dtype(), &DataType::Float32);
        // The float64 block was fully replaced: nothing of it stays; the
        // object column is not touched.
        assert!(f.retained.is_empty());
        assert_eq!(f.df.column("s").unwrap().dtype(), &DataType::UInt64);
        let mut partial = frame(
            vec![
                Column::new("i".into(), vec![1i64, 2]),
                Column::new("j".into(), vec![i64::MAX, 0]),
            ],
            &[false, false],
        );
        ops.optimize_memory(&mut partial).unwrap();
        // `j` keeps int64, so the block (and `i`'s old buffer) lives on.
        assert_eq!(partial.retained.len(), 1);
    }

    #[test]
    fn handles_decode_to_the_strings() {
        let mut store = ObjectStore::default();
        let col = StringChunked::from_iter_options(
            "s".into(),
            [Some("ab"), None, Some("ab"), Some("a much longer string")].into_iter(),
        )
        .into_column();
        let handles = store.intern(&col).unwrap();
        assert_eq!(handles.dtype(), &DataType::UInt64);
        assert_eq!(store.bytes(), python_str_bytes(2) + python_str_bytes(20));
        let back = store.decode(&handles).unwrap();
        assert!(back
            .as_materialized_series()
            .equals_missing(col.as_materialized_series()));
    }
}
