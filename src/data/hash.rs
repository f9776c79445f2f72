//! A content hash of frames: the proof that a seed really pins the data.
//!
//! Hashes column names, dtypes, validity and values (not buffer layout), so two
//! frames with the same content hash alike however they are chunked. Dtypes
//! enter by a name of our own ([`dtype_name`]), not polars' `Debug` text, so a
//! polars upgrade does not change every hash (and every baseline's data hash).

use polars::prelude::*;
use rayon::prelude::*;
use xxhash_rust::xxh3::Xxh3;

/// The name a dtype is hashed under: fixed here, whatever polars prints.
///
/// The names are those polars 0.55's `Debug` gave the dtypes oomlab makes, so
/// hashes taken before this existed still hold. Dtypes oomlab never makes
/// (decimal, categorical, struct, ... behind polars features) share `Other`:
/// their values still tell them apart.
pub fn dtype_name(dtype: &DataType) -> String {
    let unit = |u: &TimeUnit| match u {
        TimeUnit::Nanoseconds => "ns",
        TimeUnit::Microseconds => "μs",
        TimeUnit::Milliseconds => "ms",
    };
    match dtype {
        DataType::Boolean => "Boolean".into(),
        DataType::UInt8 => "UInt8".into(),
        DataType::UInt16 => "UInt16".into(),
        DataType::UInt32 => "UInt32".into(),
        DataType::UInt64 => "UInt64".into(),
        DataType::UInt128 => "UInt128".into(),
        DataType::Int8 => "Int8".into(),
        DataType::Int16 => "Int16".into(),
        DataType::Int32 => "Int32".into(),
        DataType::Int64 => "Int64".into(),
        DataType::Int128 => "Int128".into(),
        DataType::Float16 => "Float16".into(),
        DataType::Float32 => "Float32".into(),
        DataType::Float64 => "Float64".into(),
        DataType::String => "String".into(),
        DataType::Binary => "Binary".into(),
        DataType::BinaryOffset => "BinaryOffset".into(),
        DataType::Date => "Date".into(),
        DataType::Time => "Time".into(),
        DataType::Duration(u) => format!("Duration('{}')", unit(u)),
        DataType::Datetime(u, None) => format!("Datetime('{}')", unit(u)),
        DataType::Datetime(u, Some(tz)) => format!("Datetime('{}', '{}')", unit(u), tz.as_str()),
        DataType::List(inner) => format!("List({})", dtype_name(inner)),
        DataType::Null => "Null".into(),
        DataType::Unknown(_) => "Unknown".into(),
        _ => "Other".into(),
    }
}

fn column_hash(column: &Column) -> u64 {
    let mut h = Xxh3::new();
    h.update(column.name().as_bytes());
    h.update(dtype_name(column.dtype()).as_bytes());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_names_are_fixed() {
        assert_eq!(dtype_name(&DataType::Int64), "Int64");
        assert_eq!(dtype_name(&DataType::Float32), "Float32");
        assert_eq!(dtype_name(&DataType::String), "String");
        assert_eq!(
            dtype_name(&DataType::List(Box::new(DataType::UInt16))),
            "List(UInt16)"
        );
        assert_eq!(
            dtype_name(&DataType::Datetime(TimeUnit::Milliseconds, None)),
            "Datetime('ms')"
        );
    }

    #[test]
    fn the_hash_of_a_frame_is_pinned() {
        // One column of each dtype oomlab makes. A change here changes every
        // data hash, and so every cache's and baseline's: bump
        // `GENERATOR_VERSION` with it and re-bless the baseline.
        let df = polars::df!(
            "i8" => [1i8, -2],
            "i16" => [3i16, 4],
            "i32" => [5i32, 6],
            "i64" => [7i64, 8],
            "u8" => [9u8, 10],
            "u16" => [11u16, 12],
            "u32" => [13u32, 14],
            "u64" => [15u64, 16],
            "f32" => [0.5f32, 1.5],
            "f64" => [Some(2.5f64), None],
            "str" => [Some("a"), None],
        )
        .unwrap();
        assert_eq!(frames_hash(&[&df]), "b2063b643d438c47");
    }
}
