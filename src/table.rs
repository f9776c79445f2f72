//! Tables in the form of the write-up's memory table, for terminals and markdown.
//!
//! One `Table` value, two renderings: aligned text for the terminal and GitHub
//! markdown for `summary.md` and `$GITHUB_STEP_SUMMARY`.

use crate::report::{Report, RunRecord, RunStatus};
use crate::sampler::PeakSource;
use crate::units::{format_bytes, format_count};

/// A header row and body rows of cells.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Renders as GitHub-flavoured markdown.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("| {} |\n", self.headers.join(" | "));
        out += &format!("|{}\n", "---|".repeat(self.headers.len()));
        for row in &self.rows {
            out += &format!("| {} |\n", row.join(" | "));
        }
        out
    }

    /// Renders as aligned plain text.
    pub fn to_text(&self) -> String {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|i| {
                std::iter::once(&self.headers)
                    .chain(&self.rows)
                    .filter_map(|r| r.get(i))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &Vec<String>| {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}", w = *w))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        let mut out = line(&self.headers) + "\n";
        out += &widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  ");
        out += "\n";
        for row in &self.rows {
            out += &(line(row) + "\n");
        }
        out
    }
}

/// The figure a table shows for a run: its exact peak, or how it ended.
pub fn peak_cell(run: &RunRecord) -> String {
    match &run.status {
        RunStatus::Completed => run
            .peak_bytes
            .map(format_bytes)
            .unwrap_or_else(|| "-".into()),
        RunStatus::Killed { stage, .. } => {
            format!("OOM-killed at {}", stage.as_deref().unwrap_or("start"))
        }
        RunStatus::Failed { stage, .. } => {
            format!("failed at {}", stage.as_deref().unwrap_or("start"))
        }
        RunStatus::Interrupted { stage, .. } => {
            format!("interrupted at {}", stage.as_deref().unwrap_or("start"))
        }
    }
}

/// Reduction of `after`'s peak against `before`'s, when both completed.
pub fn reduction(before: &RunRecord, after: &RunRecord) -> Option<f64> {
    match (
        &before.status,
        &after.status,
        before.peak_bytes,
        after.peak_bytes,
    ) {
        (RunStatus::Completed, RunStatus::Completed, Some(b), Some(a)) if b > 0 => {
            Some((b as f64 - a as f64) / b as f64 * 100.0)
        }
        _ => None,
    }
}

/// The before/after table: scenario, data size, one peak per strategy, reduction.
pub fn before_after(report: &Report) -> Table {
    let Some(first) = report.runs.first() else {
        return Table::default();
    };
    let mut headers = vec!["Scenario".to_string(), "Data size".to_string()];
    headers.extend(report.runs.iter().map(|r| format!("{} peak", r.strategy)));
    if report.floor_bytes.is_some() {
        headers.push("Floor".to_string());
    }
    for r in report.runs.iter().skip(1) {
        headers.push(if report.runs.len() == 2 {
            "Reduction".to_string()
        } else {
            format!("Reduction ({})", r.strategy)
        });
    }
    let s = &report.scenario;
    let mrs = report.settings.max_ranking_samples;
    let recorded = s.data_hash.is_empty();
    let case = if recorded {
        // `record`: any command, not necessarily ranking prep.
        s.name.clone()
    } else if mrs > 0 {
        format!(
            "{}: ranking prep (sampling to {})",
            s.name,
            format_count(mrs)
        )
    } else {
        format!("{}: ranking prep (no sampling)", s.name)
    };
    // Figures of the `pandas` memory mode are in other bytes: say so in the row.
    let case = if report.settings.memory_mode == crate::strategy::memory::MemoryMode::Pandas {
        format!("{case}, pandas 2.x memory mode")
    } else {
        case
    };
    let mut size = if recorded && s.scaled.sample_rows == 0 {
        "not logged".to_string()
    } else {
        format!("{} samples", format_count(s.scaled.sample_rows))
    };
    if mrs > 0 && mrs < s.scaled.sample_rows {
        size = format!(
            "{} -> {} samples",
            format_count(s.scaled.sample_rows),
            format_count(mrs)
        );
    }
    if (s.scale - 1.0).abs() > f64::EPSILON {
        size += &format!(
            " (scale {} of {})",
            s.scale,
            format_count(s.production.sample_rows)
        );
    }
    let (case, size) = match similarity_case(report) {
        Some(cells) => cells,
        None => (case, size),
    };
    let mut row = vec![case, size];
    row.extend(report.runs.iter().map(|r| match report.floor_ratio(r) {
        Some(ratio) if r.status == RunStatus::Completed => {
            format!("{} ({ratio:.2}x floor)", peak_cell(r))
        }
        _ => peak_cell(r),
    }));
    if let Some(floor) = report.floor_bytes {
        row.push(format_bytes(floor));
    }
    for r in report.runs.iter().skip(1) {
        row.push(
            reduction(first, r)
                .map(|p| format!("{p:.1}% ↓"))
                .unwrap_or_else(|| "-".into()),
        );
    }
    Table {
        headers,
        rows: vec![row],
    }
}

/// Scenario and data-size cells of a similarity report (the write-up's
/// "相似度计算 | 50万 item" row): items, dimension and the knobs in force.
fn similarity_case(report: &Report) -> Option<(String, String)> {
    let s = &report.scenario;
    let b = report.settings.similarity_micro_batch_size?;
    let k = report.settings.similarity_top_k?;
    let case = format!("{}: similarity (batch {b}, top {k})", s.name);
    let mut size = format!(
        "{} items x {} dims",
        format_count(s.scaled.items),
        s.scaled.dimension
    );
    if (s.scale - 1.0).abs() > f64::EPSILON {
        size += &format!(
            " (scale {} of {})",
            s.scale,
            format_count(s.production.items)
        );
    }
    Some((case, size))
}

/// Per-stage figures of one run.
pub fn stages(run: &RunRecord) -> Table {
    let headers = [
        "Stage",
        "Start (s)",
        "Time (s)",
        "Exact peak",
        "Sampled peak",
        "RSS at end",
        "Rows",
    ]
    .map(String::from)
    .to_vec();
    // A stage without an exact peak is the one the process ended in.
    let ended = match run.status {
        RunStatus::Interrupted { .. } => "interrupted",
        RunStatus::Failed { .. } => "failed",
        _ => "killed",
    };
    let rows = run
        .stages
        .iter()
        .map(|st| {
            vec![
                st.name.clone(),
                format!("{:.2}", st.start_s),
                format!("{:.2}", st.end_s - st.start_s),
                st.exact_peak_bytes
                    .map(|b| match st.peak_source {
                        // A tree's summed marks without a cgroup: not exact.
                        Some(PeakSource::SumVmhwmUpperBound) => {
                            format!("{} (upper bound)", format_bytes(b))
                        }
                        _ => format_bytes(b),
                    })
                    .unwrap_or_else(|| ended.into()),
                st.sampled_peak_bytes
                    .map(format_bytes)
                    .unwrap_or_else(|| "-".into()),
                format_bytes(st.rss_end_bytes),
                st.detail
                    .get("rows")
                    .and_then(|v| v.as_u64())
                    .map(format_count)
                    .unwrap_or_default(),
            ]
        })
        .collect();
    Table { headers, rows }
}
