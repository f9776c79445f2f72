//! The fix (commit 261674c): micro-batches reduced to top K at once.
//!
//! ```python
//! unit = normalize(item_vectors)
//! top_idx = np.empty((N, K), np.int64); top_val = np.empty((N, K), np.float32)
//! for start in range(0, N, SIMILARITY_MICRO_BATCH_SIZE):
//!     sims = unit[start:start + B] @ unit.T       # B x N, freed next batch
//!     top_idx[start:start + B], top_val[...] = topk(sims, SIMILARITY_TOP_K)
//! ```
//! At most one B x N block of scores exists at a time; what stays is N x K
//! (index, score) pairs, so the peak grows linearly in N.

use std::time::Instant;

use anyhow::Result;
use ndarray::s;
use serde_json::json;

use super::{effective_k, finish, job_knobs, load_and_normalize, output, TopK};
use crate::probe::Probe;
use crate::strategy::{Job, Strategy};

/// How many progress lines a run logs (about one per tenth of the batches).
const PROGRESS_LINES: usize = 10;

/// Micro-batches of B items scored against all N, reduced to top K per item.
pub struct SimilarityOptimized;

impl Strategy for SimilarityOptimized {
    fn name(&self) -> &'static str {
        "optimized"
    }

    fn description(&self) -> &'static str {
        "fixed similarity: micro-batches of SIMILARITY_MICRO_BATCH_SIZE items against all N, top SIMILARITY_TOP_K kept"
    }

    fn stages(&self) -> &'static [&'static str] {
        &["load", "normalize", "micro_batches"]
    }

    fn run(&self, job: &Job, probe: &Probe) -> Result<()> {
        let knobs = job_knobs(job)?;
        let (items, unit) = load_and_normalize(job, probe)?;
        let n = unit.nrows();
        let k = effective_k(n, knobs.top_k);
        let b = (knobs.micro_batch_size as usize).clamp(1, n.max(1));
        let top = probe.stage("micro_batches", |d| {
            let batches = n.div_ceil(b);
            probe.info(format!(
                "Computing item similarity: {n} items in {batches} micro-batches of {b} (SIMILARITY_MICRO_BATCH_SIZE={}), top {k} (SIMILARITY_TOP_K={})",
                knobs.micro_batch_size, knobs.top_k
            ));
            let started = Instant::now();
            let mut top = TopK::new(n, k);
            let every = batches.div_ceil(PROGRESS_LINES).max(1);
            for (i, start) in (0..n).step_by(b).enumerate() {
                let end = (start + b).min(n);
                // A fresh B x N block per batch, dropped before the next, as numpy does.
                let block = unit.slice(s![start..end, ..]).dot(&unit.t());
                top.fill_rows(start, block.view());
                drop(block);
                if (i + 1) % every == 0 && i + 1 < batches {
                    let secs = started.elapsed().as_secs_f64().max(1e-9);
                    probe.info(format!(
                        "Similarity micro-batch {}/{batches}: {end} items scored ({:.0} items/s)",
                        i + 1,
                        end as f64 / secs
                    ));
                }
            }
            d.insert("micro_batch_size".into(), json!(b));
            d.insert("batches".into(), json!(batches));
            d.insert("block_bytes".into(), json!((b * n * 4) as u64));
            finish(probe, d, &top, n, started);
            Ok(top)
        })?;
        output(probe, job, &top, n);
        drop((unit, items));
        Ok(())
    }
}
