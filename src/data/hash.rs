//! A content hash of frames: the proof that a seed really pins the data.
//!
//! Hashes column names, dtypes, validity and values (not buffer layout), so two
//! frames with the same content hash alike however they are chunked.

use polars::prelude::*;
use rayon::prelude::*;
use xxhash_rust::xxh3::Xxh3;

fn column_hash(column: &Column) -> u64 {
    let mut h = Xxh3::new();
    h.update(column.name().as_bytes());
    h.update(format!("{:?}", column.dtype()).as_bytes());
    let s = column.as_materialized_series();
    if let Ok(ca) = s.str() {
        for v in ca.iter() {
            match v {
                Some(v) => {
                    h.update(&(v.len() as u64).to_le_bytes());
                    h.update(v.as_bytes());
                }
                None => h.update(&u64::MAX.to_le_bytes()),
            }
        }
    } else if let Ok(phys) = s.cast(&DataType::Float64) {
        // Every numeric dtype the generator makes is exactly representable as f64.
        if let Ok(ca) = phys.f64() {
            for v in ca.iter() {
                match v {
                    Some(v) => h.update(&v.to_bits().to_le_bytes()),
                    None => h.update(b"\xffnull"),
                }
            }
        }
    }
    h.digest()
}

/// Hash of several frames' content, in order, as 16 hex digits.
pub fn frames_hash(frames: &[&DataFrame]) -> String {
    let mut h = Xxh3::new();
    for df in frames {
        let per_column: Vec<u64> = df.columns().par_iter().map(column_hash).collect();
        h.update(&(df.height() as u64).to_le_bytes());
        for c in per_column {
            h.update(&c.to_le_bytes());
        }
    }
    format!("{:016x}", h.digest())
}
