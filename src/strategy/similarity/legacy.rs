//! The pre-fix similarity: every item against every item, then top K.
//!
//! ```python
//! unit = normalize(item_vectors)          # new N x D array
//! sims = unit @ unit.T                    # N x N float32: 1 TB at 500,000 items
//! top = [argpartition(-sims[i], K)[:K] for i in range(N)]
//! ```
//! The whole matrix is alive until the function returns, so its N^2 bytes set
//! the peak. This replay keeps only the matrix itself: a numpy `argpartition`
//! over `axis=1` of the whole matrix would add an N x N int64 index array (and
//! `-sims` another N x N float32), so the real function needed at least this much.

use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use super::{effective_k, finish, job_knobs, load_and_normalize, output, TopK};
use crate::probe::Probe;
use crate::strategy::{Job, Strategy};

/// Full N x N cosine similarity matrix, then top K per item.
pub struct SimilarityLegacy;

impl Strategy for SimilarityLegacy {
    fn name(&self) -> &'static str {
        "legacy"
    }

    fn description(&self) -> &'static str {
        "pre-fix similarity: full N x N cosine similarity matrix, then top K per item"
    }

    fn stages(&self) -> &'static [&'static str] {
        &["load", "normalize", "similarity_matrix", "top_k"]
    }

    fn run(&self, job: &Job, probe: &Probe) -> Result<()> {
        let knobs = job_knobs(job)?;
        let (items, unit) = load_and_normalize(job, probe)?;
        let n = unit.nrows();
        let k = effective_k(n, knobs.top_k);
        let started = Instant::now();
        let sims = probe.stage("similarity_matrix", |d| {
            probe.info(format!(
                "Computing item similarity: {n} x {n} matrix ({:.2} MB)",
                (n * n * 4) as f64 / 1e6
            ));
            let sims = unit.dot(&unit.t());
            d.insert("rows".into(), json!(n));
            d.insert("columns".into(), json!(n));
            d.insert("bytes".into(), json!((sims.len() * 4) as u64));
            Ok(sims)
        })?;
        let top = probe.stage("top_k", |d| {
            probe.info(format!("Selecting top {k} neighbours per item..."));
            let mut top = TopK::new(n, k);
            top.fill_rows(0, sims.view());
            finish(probe, d, &top, n, started);
            Ok(top)
        })?;
        output(probe, job, &top, n);
        // `sims`, `unit` and the raw vectors lived until here, as in the original.
        drop((sims, unit, items));
        Ok(())
    }
}
