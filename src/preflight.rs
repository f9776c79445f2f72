//! Preflight: refuse to start a child that would not fit in this machine.
//!
//! A memory harness that takes down the laptop or CI runner it runs on is worse
//! than none. Before each child starts, its peak is predicted (from the saved
//! model when it was measured on the same scenario, else from a deliberately
//! pessimistic estimate from the scenario's sizes) and compared with what the
//! machine offers: available memory (sysinfo), or the cgroup limit when lower,
//! less a safety margin. `--force` overrides; a `--memory-limit` that kills the
//! child first makes the check moot, so it is skipped then.

use anyhow::Result;

use crate::error::{exit_with, Exit};
use crate::scenario::{ColumnKind, Scenario, Sizes};
use crate::strategy::similarity::Knobs;
use crate::strategy::GENERATE;
use crate::units::format_bytes;

/// Share of the available memory preflight keeps free for the harness, the
/// page cache and everything else on the machine.
pub const MARGIN_SHARE: f64 = 0.10;

/// Environment variable that overrides the available memory preflight sees
/// (bytes). For tests and for machines whose `MemAvailable` is known to lie.
pub const AVAILABLE_ENV: &str = "OOMLAB_PREFLIGHT_AVAILABLE_BYTES";

/// What a child may use: available memory or the cgroup limit, whichever is
/// lower, unless [`AVAILABLE_ENV`] says otherwise (a value that is not a whole
/// number of bytes is bad input, exit 2: a typo must not silently turn the
/// check back to the machine's figure).
pub fn usable_memory() -> Result<(u64, &'static str)> {
    if let Ok(text) = std::env::var(AVAILABLE_ENV) {
        if !text.trim().is_empty() {
            let v = text.trim().replace('_', "").parse::<u64>().map_err(|_| {
                crate::error::bad_input(format!(
                    "environment variable {AVAILABLE_ENV}={text:?}: expected a whole number of bytes"
                ))
            })?;
            return Ok((v, AVAILABLE_ENV));
        }
    }
    let facts = crate::machine::MachineFacts::collect();
    Ok(match facts.cgroup_memory_limit_bytes {
        Some(limit) if limit < facts.available_memory_bytes => (limit, "the cgroup memory limit"),
        _ => (facts.available_memory_bytes, "available memory"),
    })
}

/// The saved model's prediction for `strategy`, when the model was measured
/// on a scenario of the same name and knows the strategy; `None` otherwise
/// (no model, another scenario, unreadable: the conservative estimate serves).
pub fn from_model(
    scenario: &Scenario,
    sizes: &Sizes,
    strategy: &str,
    cap: u64,
    sampling: crate::sampling::SamplingMode,
) -> Option<Estimate> {
    // The model `recommend` and `check` would use: ./reports/model.json or
    // $OOMLAB_MODEL, else the bundled production model, so an installed
    // oomlab outside a checkout predicts as well as one inside it.
    let found = crate::model::find_model(None).ok()?;
    let (model, path) = (found.model, found.path);
    if model.scenario.name != scenario.name {
        return None;
    }
    let variant = model.variant_for(strategy, sampling).ok()?;
    // At the run's own width: a scenario made wider than the model's costs more.
    let predicted = model
        .predict_at(
            variant,
            sizes.sample_rows,
            cap,
            sizes.profile_numeric_columns,
        )
        .peak_bytes;
    (predicted.is_finite() && predicted > 0.0).then(|| Estimate {
        bytes: predicted as u64,
        source: format!("model {}", path.display()),
    })
}

/// A predicted peak and where the figure came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub bytes: u64,
    /// `model <path>` or `conservative estimate from the scenario's sizes`.
    pub source: String,
}

/// Refuses (exit 3) when `estimate` does not fit in `usable` less the margin.
pub fn check(label: &str, estimate: &Estimate, usable: (u64, &str), force: bool) -> Result<()> {
    let allowed = (usable.0 as f64 * (1.0 - MARGIN_SHARE)) as u64;
    if force || estimate.bytes <= allowed {
        return Ok(());
    }
    Err(exit_with(
        Exit::Refused,
        format!(
            "preflight: `{label}` is predicted to peak at {} ({}), more than this machine offers: {} of {} less a {:.0}% margin = {}. Lower --scale or set --max-ranking-samples, give --memory-limit to have it killed at a limit, or pass --force to run it anyway",
            format_bytes(estimate.bytes),
            estimate.source,
            format_bytes(usable.0),
            usable.1,
            MARGIN_SHARE * 100.0,
            format_bytes(allowed)
        ),
    ))
}

/// Baseline of any child: code, runtime, thread stacks, the allocator's arenas.
const PROCESS_BASE_BYTES: f64 = 256.0 * 1024.0 * 1024.0;

/// Pessimistic factor on the size arithmetic below: allocator slack, parquet
/// decode buffers and hash tables it does not count.
const SLACK: f64 = 1.25;

/// A pessimistic peak for `strategy` from the scenario's sizes alone: the
/// frames each strategy holds at once, counted at pandas' 64-bit widths and
/// polars' 16-byte string views plus their bytes, times [`SLACK`].
///
/// `knobs` are the similarity knobs in force (`None`: the scenario's).
pub fn conservative(
    scenario: &Scenario,
    sizes: &Sizes,
    strategy: &str,
    cap: u64,
    knobs: Option<Knobs>,
) -> Estimate {
    let bytes = if let Some(sim) = &scenario.similarity {
        let (n, d) = (sizes.items as f64, sizes.dimension.max(1) as f64);
        let (b, k) = match knobs {
            Some(k) => (k.micro_batch_size as f64, k.top_k as f64),
            None => (sim.micro_batch_size as f64, sim.top_k as f64),
        };
        let (b, k) = (b.max(1.0), k.max(1.0));
        let vectors = n * d * 4.0 * 2.0;
        match strategy {
            "legacy" => vectors + n * n * 4.0 + n * k * 12.0,
            GENERATE => vectors,
            _ => vectors + b * n * 4.0 * 2.0 + n * k * 12.0,
        }
    } else {
        ranking_bytes(scenario, sizes, strategy, cap)
    };
    Estimate {
        bytes: (PROCESS_BASE_BYTES + bytes * SLACK) as u64,
        source: "conservative estimate from the scenario's sizes".into(),
    }
}

fn ranking_bytes(scenario: &Scenario, sizes: &Sizes, strategy: &str, cap: u64) -> f64 {
    let rows = sizes.sample_rows as f64;
    let request_id = scenario.ranking_samples.request_id_length.max(0) as f64;
    // request_id (view + bytes), user_id, dataset_id, label, position, score, timestamp.
    let sample_row = 16.0 + request_id + 6.0 * 8.0;
    let mut profile_row = 0.0; // per merged row: values or views
    let mut profile_bytes = 0.0; // the profile table itself, string bytes included
    for group in &scenario.dataset_profile.columns {
        let count = group.count.max(0) as f64;
        match group.kind {
            ColumnKind::Float | ColumnKind::Integer => {
                profile_row += count * 8.0;
                profile_bytes += count * 8.0 * sizes.datasets as f64;
            }
            _ => {
                let max_len = group.length.map_or(32, |l| l[1].max(0)) as f64;
                profile_row += count * 16.0;
                profile_bytes += count * (16.0 + max_len) * sizes.datasets as f64;
            }
        }
    }
    let numeric_row = sizes.profile_numeric_columns as f64 * 8.0;
    let user_row = (sizes.user_columns as f64 + 1.0) * 8.0;
    let users = sizes.users as f64 * user_row;
    let lookups = profile_bytes + users;
    let kept = if cap > 0 { rows.min(cap as f64) } else { rows };
    match strategy {
        // During the user merge: samples, the filtered copy, the merged frame
        // and the frame merged again (the unfiltered copy is gone by then).
        "legacy" => lookups + rows * (4.0 * sample_row + 2.0 * profile_row + user_row),
        // samples; the merged frame twice (merge, then user merge) at 64-bit widths.
        "optimized" => {
            lookups + rows * sample_row + kept * 2.0 * (sample_row + numeric_row + user_row)
        }
        "streaming" => lookups + kept * (sample_row + numeric_row + user_row) + rows * 16.0,
        // Generation builds the three frames and encodes them.
        GENERATE => 2.0 * (lookups + rows * sample_row),
        _ => lookups + rows * (3.0 * sample_row + 3.0 * profile_row + user_row),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_over_the_margin_and_force_overrides() {
        let e = Estimate {
            bytes: 950,
            source: "test".into(),
        };
        assert!(check("legacy", &e, (1000, "available memory"), false).is_err());
        assert!(check("legacy", &e, (1000, "available memory"), true).is_ok());
        assert!(check("legacy", &e, (2000, "available memory"), false).is_ok());
        let err = check("legacy", &e, (1000, "available memory"), false).unwrap_err();
        assert_eq!(crate::error::exit_code_of(&err), Exit::Refused);
    }
}
