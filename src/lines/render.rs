//! The lines as a person reads them: one traced run's stages (`record`),
//! a sweep's per-row table, a gate's changed lines.

use super::attribute::{Site, StageLines};
use super::sites::{LineChange, LinesModel};
use crate::units::{format_bytes, format_count};

/// How many sites a stage lists.
pub const TOP: usize = 8;

/// `prep.py:57 working.merge(dataset_profile, ...)`, the text cut to fit a line.
pub fn site_label(site: &Site) -> String {
    let mut code = site.code.clone();
    if code.is_empty() {
        code = format!("in {}", site.function);
    } else if code.chars().count() > 60 {
        code = code.chars().take(57).collect::<String>() + "...";
    }
    if site.file.is_empty() {
        return code;
    }
    format!("{} {code}", site.location())
}

/// Where the figures come from, said once above every lines table.
pub fn provenance(memray: &str, python: &str) -> String {
    format!(
        "lines: memray {memray} under Python {python}, in a second, traced run; every other figure is the kernel's, from the untraced run"
    )
}

/// What a stage's sites are made of at its peak.
struct Held {
    sites: u64,
    baseline: u64,
    threads: u64,
    unheld: u64,
}

/// The sites' share of the kernel's stage peak above the process baseline,
/// and what the rest is.
fn coverage(held: &Held, kernel_above: Option<u64>) -> String {
    let sites = format!(
        "sites {} (library threads {}, resident held by no allocation {})",
        format_bytes(held.sites),
        format_bytes(held.threads),
        format_bytes(held.unheld)
    );
    let rest = format!(
        "also held: {} allocated before the first stage",
        format_bytes(held.baseline)
    );
    match kernel_above {
        Some(k) if k > 0 => format!(
            "{sites} = {:.0}% of the kernel peak above the process baseline ({}), the allocations alone {:.0}%; {rest}",
            held.sites as f64 / k as f64 * 100.0,
            format_bytes(k),
            held.sites.saturating_sub(held.unheld) as f64 / k as f64 * 100.0
        ),
        _ => format!("{sites}; {rest}"),
    }
}

/// One traced run's stages, each with its sites at its peak (`record --lines`).
/// `kernel`: the untraced run's `(stage, exact peak)`.
pub fn run_text(stages: &[StageLines], kernel: &[(String, u64)]) -> String {
    let base = kernel
        .iter()
        .find(|(n, _)| n == crate::runner::FIRST_STAGE)
        .map(|p| p.1);
    let mut out = String::new();
    for st in stages {
        let k = kernel.iter().find(|(n, _)| *n == st.stage).map(|p| p.1);
        let above = k.zip(base).map(|(k, b)| k.saturating_sub(b));
        out += &format!(
            "{}: {}\n",
            st.stage,
            coverage(
                &Held {
                    sites: st.sites_bytes(),
                    baseline: st.baseline_bytes,
                    threads: st.outside_bytes,
                    unheld: st.unheld_bytes,
                },
                above
            )
        );
        for s in st.sites.iter().take(TOP) {
            out += &format!("  {:>11}  {}\n", format_bytes(s.bytes), site_label(&s.site));
        }
        if st.sites.len() > TOP {
            let rest: u64 = st.sites[TOP..].iter().map(|s| s.bytes).sum();
            out += &format!(
                "  {:>11}  ({} more lines)\n",
                format_bytes(rest),
                st.sites.len() - TOP
            );
        }
    }
    out
}

/// A sweep's lines: per stage, each line's cost per row at the stage's peak,
/// what it adds at `production_rows`, and its held-out check.
pub fn model_text(model: &LinesModel, production_rows: u64) -> String {
    let mut out = String::new();
    let largest = model.rows.last().copied().unwrap_or(0);
    for stage in &model.stages {
        let sites: Vec<_> = stage
            .sites
            .iter()
            .filter(|s| s.bytes_per_row >= 0.5)
            .take(TOP)
            .collect();
        if sites.is_empty() {
            continue;
        }
        let at = stage.sizes.iter().find(|s| s.rows == largest);
        out += &stage.stage;
        if let Some(at) = at {
            out += &format!(
                " (at {} rows: {})",
                format_count(at.rows),
                coverage(
                    &Held {
                        sites: at.sites_bytes,
                        baseline: at.baseline_bytes,
                        threads: at.outside_bytes,
                        unheld: at.unheld_bytes,
                    },
                    at.kernel_above_baseline_bytes
                )
            );
        }
        out.push('\n');
        if let Some(k) = stage.kernel_bytes_per_row {
            out += &format!(
                "  per row: the sites {} B/row of the stage peak's {} B/row (kernel)\n",
                format_count(stage.sites_bytes_per_row().round().max(0.0) as u64),
                format_count(k.round().max(0.0) as u64)
            );
        }
        let labels: Vec<String> = sites.iter().map(|s| site_label(&s.site)).collect();
        let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        for (s, label) in sites.iter().zip(&labels) {
            let held = match (s.held_out, s.held_out_pct()) {
                // A share of a few bytes says nothing: give the miss itself.
                (Some((_, measured)), Some(p)) if measured >= 1 << 20 => {
                    format!("  held out {p:+.1}%")
                }
                (Some((predicted, measured)), _) => format!(
                    "  held out off by {}",
                    format_bytes((predicted - measured as f64).abs() as u64)
                ),
                _ => String::new(),
            };
            out += &format!(
                "  {label:<width$}  {:>8} B/row  +{} at {} rows{held}\n",
                format_count(s.bytes_per_row.round().max(0.0) as u64),
                format_bytes(s.at(production_rows) as u64),
                format_count(production_rows),
            );
        }
    }
    out
}

/// A gate's changed lines, one sentence each.
pub fn changes_text(changes: &[LineChange], production_rows: u64) -> String {
    let mut out = String::new();
    for c in changes {
        let what = match c.baseline_bytes_per_row {
            None => format!(
                "appeared: {} B/row",
                format_count(c.now_bytes_per_row.round().max(0.0) as u64)
            ),
            Some(b) => format!(
                "grew: {} -> {} B/row",
                format_count(b.round().max(0.0) as u64),
                format_count(c.now_bytes_per_row.round().max(0.0) as u64)
            ),
        };
        out += &format!(
            "  {}: line {} {what} (+{} at {} rows)\n",
            c.stage,
            site_label(&c.site),
            format_bytes(c.at_production_bytes.max(0.0) as u64),
            format_count(production_rows)
        );
    }
    out
}
