//! Item-item similarity: the computation behind the write-up's first OOM.
//!
//! The recommendation pipeline scores every item against every other by cosine
//! similarity of dense feature vectors and keeps the top K neighbours per item.
//! At 500,000 items the full N x N matrix took the process to 200 GB and a kill;
//! the fix (commit 261674c in the write-up) scores micro-batches of
//! `SIMILARITY_MICRO_BATCH_SIZE` items against all N and reduces each batch to
//! its top `SIMILARITY_TOP_K` at once, so only N x K pairs are ever kept.
//!
//! This module holds what both replays share: the knobs and where they come
//! from, the seeded item vectors (generated once into the data cache, like the
//! ranking inputs, so generation is measured on its own), loading and
//! normalising them, and the per-item top-K selection. The two strategies
//! ([`legacy`], [`optimized`]) differ only in how much of the score matrix they
//! hold at once, which is exactly the difference the write-up's table shows.

pub mod legacy;
pub mod optimized;

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::time::Instant;

use anyhow::{Context, Result};
use ndarray::{Array2, ArrayView1, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use xxhash_rust::xxh3::Xxh3;

use super::Job;
use crate::data::cache::{DataCache, DataMeta, GENERATOR_VERSION};
use crate::error::bad_input;
use crate::probe::{Detail, Probe};
use crate::protocol::OutputSummary;
use crate::scenario::SimilaritySpec;
use crate::settings::SettingSource;

/// Environment variable the pipeline reads its micro-batch size from.
pub const MICRO_BATCH_ENV: &str = "SIMILARITY_MICRO_BATCH_SIZE";
/// Environment variable the pipeline reads its neighbours-per-item count from.
pub const TOP_K_ENV: &str = "SIMILARITY_TOP_K";

/// File of the item vectors in a cache slot: row-major little-endian f32.
const ITEMS_FILE: &str = "items.f32le";
const META_FILE: &str = "meta.json";

/// Latent topics the synthetic items cluster around, so that neighbours are
/// meaningful (and scores rarely tie) as with learned item embeddings.
const TOPICS: usize = 256;
/// Items per generator block: each block has its own ChaCha stream, so the
/// vectors are the same whatever the thread count.
const GEN_BLOCK: usize = 4096;

/// The two similarity knobs the pipeline reads from its `.env`.
///
/// Carried in the child's job because they change what a strategy does but not
/// the data, so they must not enter the data cache's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Knobs {
    /// `SIMILARITY_MICRO_BATCH_SIZE`: items scored against all N per product.
    pub micro_batch_size: u64,
    /// `SIMILARITY_TOP_K`: neighbours kept per item.
    pub top_k: u64,
}

/// The knobs in force and where each came from (`flag`, `env` or `scenario`),
/// so a report says why a run used the values it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedKnobs {
    /// The values the children run with.
    pub knobs: Knobs,
    /// Source of the micro-batch size.
    pub micro_batch_size_source: SettingSource,
    /// Source of the top K.
    pub top_k_source: SettingSource,
}

impl Knobs {
    /// The scenario's defaults (the write-up's 50 and 200 unless it says otherwise).
    pub fn from_spec(spec: &SimilaritySpec) -> Self {
        Self {
            micro_batch_size: spec.micro_batch_size.max(1) as u64,
            top_k: spec.top_k.max(1) as u64,
        }
    }
}

/// Resolves one knob: the flag wins over the environment, which wins over the scenario.
fn resolve_one(flag: Option<u64>, env: &str, default: u64) -> Result<(u64, SettingSource)> {
    if let Some(v) = flag {
        if v == 0 {
            return Err(bad_input(format!(
                "--{}: expected a positive whole number, got 0",
                env.to_ascii_lowercase().replace('_', "-")
            )));
        }
        return Ok((v, SettingSource::Flag));
    }
    match std::env::var(env) {
        Ok(text) if !text.trim().is_empty() => {
            let v = text
                .trim()
                .replace('_', "")
                .parse::<u64>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| {
                    bad_input(format!(
                        "environment variable {env}={text:?}: expected a positive whole number"
                    ))
                })?;
            Ok((v, SettingSource::Env))
        }
        _ => Ok((default, SettingSource::Scenario)),
    }
}

/// Resolves `SIMILARITY_MICRO_BATCH_SIZE` and `SIMILARITY_TOP_K` for a
/// similarity scenario (flag, else environment, else the scenario's default);
/// `None` for other workloads, so their reports carry no similarity settings.
pub fn resolve_knobs(
    spec: Option<&SimilaritySpec>,
    micro_batch_flag: Option<u64>,
    top_k_flag: Option<u64>,
) -> Result<Option<ResolvedKnobs>> {
    let Some(spec) = spec else {
        return Ok(None);
    };
    let defaults = Knobs::from_spec(spec);
    let (micro_batch_size, micro_batch_size_source) =
        resolve_one(micro_batch_flag, MICRO_BATCH_ENV, defaults.micro_batch_size)?;
    let (top_k, top_k_source) = resolve_one(top_k_flag, TOP_K_ENV, defaults.top_k)?;
    Ok(Some(ResolvedKnobs {
        knobs: Knobs {
            micro_batch_size,
            top_k,
        },
        micro_batch_size_source,
        top_k_source,
    }))
}

/// The knobs a child runs with: the job's, else the scenario's defaults.
pub fn job_knobs(job: &Job) -> Result<Knobs> {
    if let Some(k) = job.similarity {
        return Ok(k);
    }
    let spec = job
        .scenario
        .similarity
        .as_ref()
        .context("a similarity strategy needs a scenario with a [similarity] section")?;
    Ok(Knobs::from_spec(spec))
}

/// Bytes of one (index, score) pair as kept: u32 item index + f32 score.
pub const PAIR_BYTES: u64 = 8;

/// The top-K neighbours of every item: N x K indices and scores, row-major,
/// best first (ties broken by the lower index, so results are deterministic).
pub struct TopK {
    /// Neighbours kept per item (K, clamped to N - 1).
    pub k: usize,
    /// `indices[i * k + j]`: the j-th best neighbour of item i.
    pub indices: Vec<u32>,
    /// `scores[i * k + j]`: its cosine similarity.
    pub scores: Vec<f32>,
}

impl TopK {
    /// Room for `items` rows of `k` pairs, filled by [`TopK::fill_rows`].
    pub fn new(items: usize, k: usize) -> Self {
        Self {
            k,
            indices: vec![0; items * k],
            scores: vec![0.0; items * k],
        }
    }

    /// Bytes the kept pairs occupy.
    pub fn bytes(&self) -> u64 {
        (self.indices.len() as u64) * PAIR_BYTES
    }

    /// Reduces a block of score rows (items `first..first + rows`, each scored
    /// against all N) to their top K, in parallel over rows.
    pub fn fill_rows(&mut self, first: usize, scores: ArrayView2<'_, f32>) {
        let k = self.k;
        if k == 0 {
            return;
        }
        let (rows, n) = scores.dim();
        if rows == 0 || n == 0 {
            return;
        }
        // Products made here are row-major already; anything else is copied once.
        let scores = scores.as_standard_layout();
        let Some(flat) = scores.as_slice() else {
            return;
        };
        let idx = &mut self.indices[first * k..(first + rows) * k];
        let val = &mut self.scores[first * k..(first + rows) * k];
        idx.par_chunks_mut(k)
            .zip(val.par_chunks_mut(k))
            .zip(flat.par_chunks(n))
            .enumerate()
            .for_each_init(Vec::new, |scratch, (r, ((idx, val), row))| {
                top_k_of_row(row, first + r, scratch, idx, val)
            });
    }
}

/// The best `idx.len()` entries of one score row, excluding the item itself.
///
/// `select_nth_unstable_by` is numpy's `argpartition`: linear in N, then only
/// the K survivors are sorted. `scratch` is the row's candidate list, reused.
fn top_k_of_row(row: &[f32], own: usize, scratch: &mut Vec<u32>, idx: &mut [u32], val: &mut [f32]) {
    let k = idx.len();
    scratch.clear();
    scratch.extend((0..row.len() as u32).filter(|&j| j as usize != own));
    // Best first: higher score, then lower index; NaN (a zero vector) last.
    let better = |a: &u32, b: &u32| {
        let (sa, sb) = (row[*a as usize], row[*b as usize]);
        sb.partial_cmp(&sa)
            .unwrap_or_else(|| sa.is_nan().cmp(&sb.is_nan()))
            .then(a.cmp(b))
    };
    if k < scratch.len() {
        scratch.select_nth_unstable_by(k - 1, better);
        scratch.truncate(k);
    }
    scratch.sort_unstable_by(better);
    for (j, &c) in scratch.iter().take(k).enumerate() {
        idx[j] = c;
        val[j] = row[c as usize];
    }
}

/// K as a run uses it: at most N - 1 neighbours exist.
pub fn effective_k(items: usize, top_k: u64) -> usize {
    (top_k as usize).min(items.saturating_sub(1))
}

/// L2-normalises every row into a new matrix, as `sklearn.preprocessing.normalize`
/// does (the caller's raw vectors stay alive beside it). Zero rows stay zero.
pub fn normalized(items: &Array2<f32>) -> Array2<f32> {
    let mut out = items.as_standard_layout().into_owned();
    let dim = out.ncols().max(1);
    if let Some(flat) = out.as_slice_mut() {
        flat.par_chunks_mut(dim).for_each(|row| {
            let norm = ArrayView1::from(&*row).dot(&ArrayView1::from(&*row)).sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|v| *v /= norm);
            }
        });
    }
    out
}

/// The `load` and `normalize` stages both strategies start with.
pub fn load_and_normalize(job: &Job, probe: &Probe) -> Result<(Array2<f32>, Array2<f32>)> {
    let cache = DataCache {
        dir: job.cache_dir.clone(),
    };
    let items = probe.stage("load", |d| {
        let items = load_items(
            &cache,
            job.sizes.items as usize,
            job.sizes.dimension as usize,
        )?;
        probe.info(format!(
            "Item vectors: {} items x {} dimensions ({:.2} MB)",
            items.nrows(),
            items.ncols(),
            matrix_bytes(&items) as f64 / 1e6
        ));
        d.insert("rows".into(), json!(items.nrows()));
        d.insert("dimension".into(), json!(items.ncols()));
        d.insert("bytes".into(), json!(matrix_bytes(&items)));
        Ok(items)
    })?;
    let unit = probe.stage("normalize", |d| {
        let unit = normalized(&items);
        d.insert("rows".into(), json!(unit.nrows()));
        d.insert("bytes".into(), json!(matrix_bytes(&unit)));
        Ok(unit)
    })?;
    Ok((items, unit))
}

/// Bytes of an f32 matrix's buffer.
pub fn matrix_bytes(m: &Array2<f32>) -> u64 {
    (m.len() * std::mem::size_of::<f32>()) as u64
}

/// Records what every similarity scoring stage reports: items, K, pairs kept,
/// throughput (items per second of scoring), and logs the closing line.
pub fn finish(probe: &Probe, d: &mut Detail, top: &TopK, items: usize, started: Instant) {
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let per_s = items as f64 / secs;
    d.insert("rows".into(), json!(items));
    d.insert("top_k".into(), json!(top.k));
    d.insert("pairs".into(), json!(top.indices.len()));
    d.insert("pairs_bytes".into(), json!(top.bytes()));
    d.insert("items_per_s".into(), json!(per_s));
    probe.info(format!(
        "Similarity computed: {items} items, top {} neighbours each ({} pairs, {:.2} MB), {per_s:.0} items/s",
        top.k,
        top.indices.len(),
        top.bytes() as f64 / 1e6
    ));
}

/// Content hash of the neighbour lists (indices only: which items, in which
/// order), 16 hex digits; equal for two strategies that found the same top K.
pub fn neighbours_hash(top: &TopK) -> String {
    let mut h = Xxh3::new();
    h.update(&(top.k as u64).to_le_bytes());
    for i in &top.indices {
        h.update(&i.to_le_bytes());
    }
    format!("{:016x}", h.digest())
}

/// Reports the neighbour lists as the strategy's output (rows = items,
/// features = K neighbours, columns = index and score per neighbour), with
/// their hash when the job asks for it (`--hash-output`).
pub fn output(probe: &Probe, job: &Job, top: &TopK, items: usize) {
    probe.output(OutputSummary {
        rows: items as u64,
        features: top.k as u64,
        columns: 2 * top.k as u64,
        bytes: top.bytes(),
        floor_bytes: None,
        hash: job.hash_output.then(|| neighbours_hash(top)),
        sink: None,
    });
}

fn rng_for(seed: u64, stream: u64, block: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    rng.set_stream(stream);
    rng.set_word_pos(u128::from(block) << 40);
    rng
}

/// Seeded item vectors: each item sits near one of [`TOPICS`] topic centres
/// (centre + uniform noise), as learned embeddings cluster by category.
/// The same seed, item count and dimension give the same values on any machine.
pub fn generate_items(seed: u64, items: usize, dimension: usize) -> Array2<f32> {
    let mut centres_rng = rng_for(seed, 1, 0);
    let centres: Vec<f32> = (0..TOPICS * dimension)
        .map(|_| centres_rng.gen_range(-1.0f32..1.0))
        .collect();
    let mut out = Array2::<f32>::zeros((items, dimension));
    if let Some(data) = out.as_slice_mut() {
        data.par_chunks_mut(GEN_BLOCK * dimension.max(1))
            .enumerate()
            .for_each(|(block, chunk)| {
                let mut rng = rng_for(seed, 2, block as u64);
                for row in chunk.chunks_mut(dimension.max(1)) {
                    let t = rng.gen_range(0..TOPICS);
                    let centre = &centres[t * dimension..(t + 1) * dimension];
                    for (v, c) in row.iter_mut().zip(centre) {
                        *v = c + rng.gen_range(-0.6f32..0.6);
                    }
                }
            });
    }
    out
}

/// The GENERATE job of a similarity scenario: seeded item vectors into the cache.
pub fn generate_data(job: &Job, probe: &Probe) -> Result<()> {
    let cache = DataCache {
        dir: job.cache_dir.clone(),
    };
    probe.stage(super::GENERATE, |d| {
        let (n, dim) = (job.sizes.items as usize, job.sizes.dimension as usize);
        probe.info(format!(
            "Generating synthetic item vectors: {n} items x {dim} dimensions (seed {})",
            job.scenario.seed
        ));
        let items = generate_items(job.scenario.seed, n, dim);
        let data_hash = store_items(&cache, &items, job)?;
        probe.info(format!(
            "Data cached at {} (hash {data_hash})",
            cache.dir.display()
        ));
        d.insert("data_hash".into(), json!(data_hash));
        d.insert("rows".into(), json!(n));
        d.insert("bytes".into(), json!(matrix_bytes(&items)));
        Ok(())
    })
}

/// Content hash of item vectors (shape and values), 16 hex digits.
pub fn items_hash(items: &Array2<f32>) -> String {
    let mut h = Xxh3::new();
    h.update(b"similarity-items");
    h.update(&(items.nrows() as u64).to_le_bytes());
    h.update(&(items.ncols() as u64).to_le_bytes());
    for v in items.iter() {
        h.update(&v.to_bits().to_le_bytes());
    }
    format!("{:016x}", h.digest())
}

/// Writes the vectors and `meta.json` into a temporary directory and renames
/// it into the slot, as the ranking cache does, so readers never see half a file.
fn store_items(cache: &DataCache, items: &Array2<f32>, job: &Job) -> Result<String> {
    let data_hash = items_hash(items);
    let parent = cache
        .dir
        .parent()
        .context("cache directory has no parent")?;
    std::fs::create_dir_all(parent)
        .with_context(|| format!("creating cache directory {}", parent.display()))?;
    let name = cache
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let path = tmp.join(ITEMS_FILE);
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    for v in items.iter() {
        w.write_all(&v.to_le_bytes())?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    let meta = DataMeta {
        generator_version: GENERATOR_VERSION,
        sizes: job.sizes,
        seed: job.scenario.seed,
        data_hash: data_hash.clone(),
    };
    std::fs::write(tmp.join(META_FILE), serde_json::to_vec_pretty(&meta)?)?;
    if cache.meta().is_none() {
        let _ = std::fs::remove_dir_all(&cache.dir);
    }
    match std::fs::rename(&tmp, &cache.dir) {
        Ok(()) => Ok(data_hash),
        // Another process stored the same data first: theirs is identical.
        Err(_) if cache.meta().is_some() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(data_hash)
        }
        Err(e) => Err(anyhow::Error::from(e).context(format!(
            "moving {} into place at {}",
            tmp.display(),
            cache.dir.display()
        ))),
    }
}

/// Reads the cached vectors into one N x D buffer (read in 1 MiB pieces, so
/// loading never holds a second copy of the file).
pub fn load_items(cache: &DataCache, items: usize, dimension: usize) -> Result<Array2<f32>> {
    let path = cache.dir.join(ITEMS_FILE);
    let mut file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let expected = (items * dimension * 4) as u64;
    let len = file.metadata()?.len();
    if len != expected {
        anyhow::bail!(
            "{}: {len} bytes, expected {expected} ({items} items x {dimension} f32)",
            path.display()
        );
    }
    let mut data = Vec::with_capacity(items * dimension);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = expected as usize;
    while left > 0 {
        let n = left.min(buf.len());
        file.read_exact(&mut buf[..n])
            .with_context(|| format!("reading {}", path.display()))?;
        data.extend(
            buf[..n]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        left -= n;
    }
    Array2::from_shape_vec((items, dimension), data).context("shaping the item vectors")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_of_a_row_excludes_self_and_orders_best_first() {
        let row = [0.1f32, 0.9, 0.5, 0.9, -0.2];
        let (mut idx, mut val) = ([0u32; 3], [0f32; 3]);
        top_k_of_row(&row, 1, &mut Vec::new(), &mut idx, &mut val);
        assert_eq!(idx, [3, 2, 0]);
        assert_eq!(val, [0.9, 0.5, 0.1]);
        // Ties go to the lower index.
        top_k_of_row(&row, 4, &mut Vec::new(), &mut idx, &mut val);
        assert_eq!(idx, [1, 3, 2]);
    }

    /// Legacy's full matrix and optimized's micro-batches give the same top K
    /// (ties aside: a neighbour may differ only where scores tie).
    #[test]
    fn full_matrix_and_micro_batches_agree() {
        use ndarray::s;
        let items = generate_items(3, 700, 24);
        let unit = normalized(&items);
        let n = unit.nrows();
        let k = effective_k(n, 25);
        let mut full = TopK::new(n, k);
        full.fill_rows(0, unit.dot(&unit.t()).view());
        for b in [1, 7, 50, 700] {
            let mut batched = TopK::new(n, k);
            for start in (0..n).step_by(b) {
                let end = (start + b).min(n);
                let block = unit.slice(s![start..end, ..]).dot(&unit.t());
                batched.fill_rows(start, block.view());
            }
            for i in 0..n * k {
                if full.indices[i] != batched.indices[i] {
                    assert!(
                        (full.scores[i] - batched.scores[i]).abs() < 1e-6,
                        "B={b}: entry {i} differs beyond a tie"
                    );
                }
                assert!((full.scores[i] - batched.scores[i]).abs() < 1e-5);
            }
            // No item is its own neighbour; scores are best first.
            for row in 0..n {
                let r = &batched.indices[row * k..(row + 1) * k];
                assert!(!r.contains(&(row as u32)));
                let sc = &batched.scores[row * k..(row + 1) * k];
                assert!(sc.windows(2).all(|w| w[0] >= w[1]));
            }
        }
        // K larger than N - 1 keeps every other item.
        assert_eq!(effective_k(10, 200), 9);
    }

    #[test]
    fn generation_is_seeded() {
        let a = generate_items(7, 5000, 16);
        assert_eq!(items_hash(&a), items_hash(&generate_items(7, 5000, 16)));
        assert_ne!(items_hash(&a), items_hash(&generate_items(8, 5000, 16)));
        let unit = normalized(&a);
        let n = unit.row(17).dot(&unit.row(17));
        assert!((n - 1.0).abs() < 1e-5, "{n}");
    }

    #[test]
    fn knobs_flag_wins_and_zero_is_refused() {
        let spec = SimilaritySpec {
            items: 10,
            dimension: 4,
            micro_batch_size: 50,
            top_k: 200,
        };
        let r = resolve_knobs(Some(&spec), Some(20), None).unwrap().unwrap();
        assert_eq!(r.knobs.micro_batch_size, 20);
        assert_eq!(r.micro_batch_size_source, SettingSource::Flag);
        assert!(resolve_knobs(Some(&spec), Some(0), None).is_err());
        assert!(resolve_knobs(None, Some(20), None).unwrap().is_none());
    }
}
