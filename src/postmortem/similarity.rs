//! A kill in item-item similarity: the write-up's first OOM, read from the log.
//!
//! The similarity step logs what it computes (`Computing item similarity:
//! 500000 items in 10000 micro-batches of 50 (SIMILARITY_MICRO_BATCH_SIZE=50),
//! top 200 (SIMILARITY_TOP_K=200)`, or `... 500000 x 500000 matrix` before the
//! fix) and what it finished (`Similarity computed: ...`). A kill after the
//! first and before the second died in similarity, holding N items at those
//! knobs: the command needed at least the limit there. As the ranking kill
//! does for `MAX_RANKING_SAMPLES`, that calibrates a similarity command model
//! (`sweep --items ... -- CMD`) upwards when it predicted less, and the knobs
//! advised under the same limit can then never be the killed ones.

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::model::similarity_command::{env_snippet, SimilarityCommandModel};
use crate::units::{format_bytes, format_count};

/// What the log said the similarity step was computing when it died.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarityRun {
    /// Log line of `Computing item similarity: ...`.
    pub line: u64,
    pub items: u64,
    /// `None` for the full N x N matrix (the code before the fix).
    pub micro_batch_size: Option<u64>,
    pub top_k: Option<u64>,
}

/// A kill in similarity and what it says about the knobs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SimilarityFindings {
    /// The run the kill interrupted.
    pub run: Option<SimilarityRun>,
    /// The kill's log line.
    pub kill_line: u64,
    pub limit_bytes: Option<u64>,
    /// The model's prediction at the killed sizes, before the kill calibrated it.
    pub predicted_bytes: Option<f64>,
    /// The factor the kill multiplied the model by (1: it already predicted at least the limit).
    pub factor: Option<f64>,
    /// The knobs that fit the limit after the calibration, as `.env` lines.
    pub env_snippet: Option<String>,
    /// The findings in sentences, for the write-up.
    pub sentences: Vec<String>,
}

/// What opens a similarity run's line, wherever a logger put it.
const START: &str = "Computing item similarity:";
/// What closes a similarity run: after it, a kill is no longer in similarity.
pub const DONE: &str = "Similarity computed:";
/// A word both lines hold, in lowercase: the scan's prefilter looks for it
/// so that these lines, which no other needle finds, are read in full.
pub const NEEDLE: &str = "similarity";

/// One `Computing item similarity: ...` line, wherever a logger put it.
pub fn parse_line(text: &str) -> Option<(u64, Option<u64>, Option<u64>)> {
    let rest = &text[text.find(START)? + START.len()..];
    let number = |s: &str| -> Option<u64> {
        let d: String = s
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        d.parse().ok()
    };
    let items = number(rest)?;
    let after = |key: &str| rest.find(key).and_then(|i| number(&rest[i + key.len()..]));
    if rest.contains(" x ") && rest.contains("matrix") {
        return Some((items, None, None));
    }
    let b = after("SIMILARITY_MICRO_BATCH_SIZE=").or_else(|| after("micro-batches of "));
    let k = after("SIMILARITY_TOP_K=").or_else(|| after("top "));
    Some((items, b, k))
}

/// The findings of a kill in similarity: with a similarity command model,
/// calibrated by the kill; without one, what the log alone says.
pub fn findings(
    kill_line: Option<u64>,
    run: Option<SimilarityRun>,
    limit: Option<u64>,
    headroom: f64,
    model: Option<(&Path, &SimilarityCommandModel)>,
) -> Result<Option<SimilarityFindings>> {
    let Some(kill_line) = kill_line else {
        return Ok(None);
    };
    let Some(run) = run else {
        return Ok(None);
    };
    let mut f = SimilarityFindings {
        run: Some(run.clone()),
        kill_line,
        limit_bytes: limit,
        ..Default::default()
    };
    let what = match (run.micro_batch_size, run.top_k) {
        (Some(b), Some(k)) => format!("SIMILARITY_MICRO_BATCH_SIZE={b}, SIMILARITY_TOP_K={k}"),
        _ => "the full N x N matrix (code before the micro-batch fix)".to_string(),
    };
    f.sentences.push(format!(
        "Killed in item-item similarity (line {kill_line}): {} items with {what} (line {}).",
        format_count(run.items),
        run.line
    ));
    let Some(limit) = limit.filter(|l| *l > 0) else {
        f.sentences.push(
            "No memory limit known (give --memory-limit): the kill cannot calibrate anything."
                .into(),
        );
        return Ok(Some(f));
    };
    f.sentences.push(format!(
        "From the log alone: the step needed at least {} ({} per item) at those knobs.",
        format_bytes(limit),
        format_bytes((limit as f64 / run.items.max(1) as f64).ceil() as u64)
    ));
    let Some((path, m)) = model else {
        f.sentences.push("Sweep the similarity command (`oomlab sweep --items ... -- CMD`) and pass its model with --model for the knobs that fit.".into());
        return Ok(Some(f));
    };
    let (b, k) = match (run.micro_batch_size, run.top_k) {
        (Some(b), Some(k)) => (b, k),
        _ => (m.base.micro_batch_size, m.base.top_k),
    };
    let predicted = m.predict(run.items, b, k);
    let factor = if predicted > 0.0 && (limit as f64) > predicted {
        limit as f64 / predicted
    } else {
        1.0
    };
    f.predicted_bytes = Some(predicted);
    f.factor = Some(factor);
    let calibrated = m.scaled(factor);
    f.sentences.push(format!(
        "The model {} predicted {} there{}.",
        path.display(),
        format_bytes(predicted as u64),
        if factor > 1.0 {
            format!(
                ", below the {} the kill proves: every prediction below is multiplied by {factor:.2}",
                format_bytes(limit)
            )
        } else {
            " (at least the limit: the kill agrees with it)".to_string()
        }
    ));
    if run.micro_batch_size.is_none() {
        f.sentences.push(format!(
            "The killed code held the full matrix, which the model of {} does not: the advice is for the micro-batched command the model measured.",
            m.describe()
        ));
    }
    let budget = limit as f64 * (1.0 - headroom);
    match calibrated.advise(run.items, budget)? {
        Ok(a) => {
            f.sentences.push(format!(
                "Under the same {} limit with {:.0}% headroom: SIMILARITY_MICRO_BATCH_SIZE={} SIMILARITY_TOP_K={} (predicted {}, calibrated by the kill).",
                format_bytes(limit),
                headroom * 100.0,
                a.micro_batch_size,
                a.top_k,
                format_bytes(a.predicted_bytes as u64)
            ));
            f.env_snippet = Some(env_snippet(&a, run.items));
        }
        Err(floor) => f.sentences.push(format!(
            "No measured setting fits {} at {} items even calibrated by the kill: the least is SIMILARITY_MICRO_BATCH_SIZE={} SIMILARITY_TOP_K={} at {}.",
            format_bytes(limit),
            format_count(run.items),
            floor.micro_batch_size,
            floor.top_k,
            format_bytes(floor.predicted_bytes as u64)
        )),
    }
    Ok(Some(f))
}

/// The findings as a markdown section of `postmortem.md`.
pub fn render(f: &SimilarityFindings) -> String {
    let mut md = String::from("## Item-item similarity\n\n");
    for s in &f.sentences {
        md += &format!("- {s}\n");
    }
    if let Some(env) = &f.env_snippet {
        md += &format!("\n```bash\n{env}```\n");
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_computing_lines_parse_behind_a_prefix() {
        assert_eq!(
            parse_line("[2025-12-25, 05:40:00 UTC] {x.py:1} INFO - Computing item similarity: 500000 items in 10000 micro-batches of 50 (SIMILARITY_MICRO_BATCH_SIZE=50), top 200 (SIMILARITY_TOP_K=200)"),
            Some((500_000, Some(50), Some(200)))
        );
        assert_eq!(
            parse_line("INFO Computing item similarity: 500000 x 500000 matrix (1000000.00 MB)"),
            Some((500_000, None, None))
        );
        assert_eq!(parse_line("INFO Similarity computed: 5 items"), None);
        for line in [START, DONE] {
            assert!(line.to_ascii_lowercase().contains(NEEDLE), "{line}");
        }
    }
}
