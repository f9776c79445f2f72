//! The seeded generator behind every synthetic input.
//!
//! Work is split into fixed blocks, each with its own ChaCha stream derived from
//! (seed, table, block), so generation runs on all cores and still yields the
//! same values whatever the thread count.

use anyhow::Result;
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::columns::*;
use super::Inputs;
use crate::scenario::{ColumnKind, Scenario, Sizes};

const BLOCK: usize = 1 << 16;
/// 2025-12-01T00:00:00Z, the start of the synthetic exposure log.
const LOG_START_EPOCH_S: i64 = 1_764_547_200;

fn rng_for(seed: u64, stream: u64, block: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    rng.set_stream(stream);
    rng.set_word_pos(u128::from(block) << 40);
    rng
}

/// Cumulative Zipf weights over ranks `1..=n`; rank 1 is the most popular.
fn zipf_cdf(n: u64, exponent: f64) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = (1..=n)
        .map(|k| {
            acc += (k as f64).powf(-exponent);
            acc
        })
        .collect();
    let total = acc;
    cdf.iter_mut().for_each(|c| *c /= total);
    cdf
}

fn draw(cdf: &[f64], rng: &mut ChaCha8Rng) -> i64 {
    let u: f64 = rng.gen();
    (cdf.partition_point(|c| *c < u).min(cdf.len() - 1) + 1) as i64
}

/// Generates one value per row in parallel blocks; `make` gets (rng, row).
fn par_rows<T: Send>(
    rows: usize,
    seed: u64,
    stream: u64,
    make: impl Fn(&mut ChaCha8Rng, usize) -> T + Sync,
) -> Vec<T> {
    let blocks: Vec<Vec<T>> = (0..rows.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let mut rng = rng_for(seed, stream, b as u64);
            (b * BLOCK..((b + 1) * BLOCK).min(rows))
                .map(|row| make(&mut rng, row))
                .collect()
        })
        .collect();
    let mut out = Vec::with_capacity(rows);
    blocks.into_iter().for_each(|b| out.extend(b));
    out
}

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz abcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &[u8] = b"0123456789abcdef";

fn random_text(rng: &mut ChaCha8Rng, len: usize, alphabet: &[u8]) -> String {
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

/// Generates all three inputs of a scenario at the given sizes.
pub fn generate(scenario: &Scenario, sizes: &Sizes) -> Result<Inputs> {
    let seed = scenario.seed;
    let (samples, (profile, users)) = rayon::join(
        || samples(scenario, sizes, seed),
        || rayon::join(|| profile(scenario, sizes, seed), || users(sizes, seed)),
    );
    Ok(Inputs {
        samples: samples?,
        profile: profile?,
        users: users?,
    })
}

fn samples(scenario: &Scenario, sizes: &Sizes, seed: u64) -> Result<DataFrame> {
    let spec = &scenario.ranking_samples;
    let n = sizes.sample_rows as usize;
    let dataset_cdf = zipf_cdf(sizes.datasets, spec.dataset_zipf_exponent);
    let user_cdf = zipf_cdf(sizes.users, spec.user_zipf_exponent);
    let id_len = spec.request_id_length as usize;
    let null_share = spec.label_null_share;

    let request_id = par_rows(n, seed, 1, |rng, _| random_text(rng, id_len, HEX));
    let user_id = par_rows(n, seed, 2, |rng, _| draw(&user_cdf, rng));
    let dataset_id = par_rows(n, seed, 3, |rng, _| draw(&dataset_cdf, rng));
    let label = par_rows(n, seed, 4, |rng, _| {
        if rng.gen::<f64>() < null_share {
            None
        } else {
            Some(f64::from(rng.gen_bool(0.08)))
        }
    });
    let position = par_rows(n, seed, 5, |rng, _| rng.gen_range(0..50i64));
    let score = par_rows(n, seed, 6, |rng, _| rng.gen::<f64>());
    let timestamp = par_rows(n, seed, 7, |rng, row| {
        LOG_START_EPOCH_S + (row as i64) * 3 + rng.gen_range(0..3i64)
    });
    let columns = vec![
        StringChunked::from_iter_values(REQUEST_ID.into(), request_id.iter().map(String::as_str))
            .into_column(),
        Column::new(USER_ID.into(), user_id),
        Column::new(DATASET_ID.into(), dataset_id),
        Float64Chunked::from_iter_options(LABEL.into(), label.into_iter()).into_column(),
        Column::new(POSITION.into(), position),
        Column::new(SCORE.into(), score),
        Column::new(TIMESTAMP.into(), timestamp),
    ];
    Ok(DataFrame::new(n, columns)?)
}

/// Name of the `k`-th profile column of a kind (stable across scenarios).
pub fn profile_column_name(kind: ColumnKind, k: usize) -> String {
    let tag = match kind {
        ColumnKind::Float => "num_f",
        ColumnKind::Integer => "num_i",
        ColumnKind::String => "str",
        ColumnKind::Categorical => "cat",
    };
    format!("{tag}_{k:03}")
}

fn profile(scenario: &Scenario, sizes: &Sizes, seed: u64) -> Result<DataFrame> {
    let n = sizes.datasets as usize;
    // (kind, index within kind, length range, distinct) for every feature column.
    let mut specs = Vec::new();
    let mut per_kind = std::collections::HashMap::new();
    for group in &scenario.dataset_profile.columns {
        for _ in 0..group.count {
            let k = per_kind.entry(group.kind as u8).or_insert(0usize);
            let [lo, hi] = group.length.unwrap_or([8, 32]);
            specs.push((
                group.kind,
                *k,
                (lo as usize, hi as usize),
                group.distinct.unwrap_or(100) as usize,
            ));
            *k += 1;
        }
    }
    let features: Vec<Column> = specs
        .par_iter()
        .enumerate()
        .map(|(i, &(kind, k, (lo, hi), distinct))| {
            let stream = 1000 + i as u64;
            let name = profile_column_name(kind, k);
            match kind {
                ColumnKind::Float => {
                    let v = par_rows(n, seed, stream, |rng, _| {
                        let x: f64 = rng.gen::<f64>();
                        (x * 8.0).exp() / 100.0
                    });
                    Column::new(name.into(), v)
                }
                ColumnKind::Integer => {
                    let v = par_rows(n, seed, stream, |rng, _| rng.gen_range(0..100_000i64));
                    Column::new(name.into(), v)
                }
                ColumnKind::String | ColumnKind::Categorical => {
                    let mut rng = rng_for(seed, stream, u64::MAX >> 24);
                    let vocab: Vec<String> = (0..distinct.min(n.max(1)))
                        .map(|_| {
                            let len = rng.gen_range(lo..=hi);
                            random_text(&mut rng, len, ALPHABET)
                        })
                        .collect();
                    let picks = par_rows(n, seed, stream, |rng, _| rng.gen_range(0..vocab.len()));
                    StringChunked::from_iter_values(
                        name.into(),
                        picks.iter().map(|&p| vocab[p].as_str()),
                    )
                    .into_column()
                }
            }
        })
        .collect();
    let mut columns = Vec::with_capacity(features.len() + 1);
    columns.push(Column::new(
        DATASET_ID.into(),
        (1..=n as i64).collect::<Vec<_>>(),
    ));
    columns.extend(features);
    Ok(DataFrame::new(n, columns)?)
}

/// Name of the `k`-th user feature column.
pub fn user_column_name(k: usize) -> String {
    format!("user_f{k:02}")
}

fn users(sizes: &Sizes, seed: u64) -> Result<DataFrame> {
    let n = sizes.users as usize;
    let mut columns = vec![Column::new(
        USER_ID.into(),
        (1..=n as i64).collect::<Vec<_>>(),
    )];
    let features: Vec<Column> = (0..sizes.user_columns as usize)
        .into_par_iter()
        .map(|k| {
            let v = par_rows(n, seed, 500 + k as u64, |rng, _| rng.gen::<f64>() * 10.0);
            Column::new(user_column_name(k).into(), v)
        })
        .collect();
    columns.extend(features);
    Ok(DataFrame::new(n, columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_is_skewed_and_complete() {
        let cdf = zipf_cdf(1000, 1.1);
        assert!((cdf[999] - 1.0).abs() < 1e-12);
        assert!(cdf[0] > 0.1, "rank 1 should hold a large share: {}", cdf[0]);
        let mut rng = rng_for(1, 1, 0);
        let draws: Vec<i64> = (0..10_000).map(|_| draw(&cdf, &mut rng)).collect();
        assert!(draws.iter().all(|d| (1..=1000).contains(d)));
    }
}
