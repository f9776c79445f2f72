//! Why runs of one command at one size disagree, and what to try first.
//!
//! A budget sweep that finds one run's own spread at the target wider than
//! the ±5% it aims for says that no budget narrows it; a user then wants the
//! next step. The bundled pandas 3 reference showed the commonest cause:
//! pyarrow's default memory pool is mimalloc, which hands freed pages back to
//! the kernel only after a delay, so whether a stage's freed intermediates
//! are back before the next stage allocates is a race with the clock. Eleven
//! runs at 8,532,146 rows peaked anywhere from 9.59 to 11.18 GiB; with
//! `MIMALLOC_PURGE_DELAY=0` in the environment three runs peaked at 9.63 GiB
//! within 0.1% of each other (docs/command-sweep.md). The hint names that
//! setting only where the command's own output shows pyarrow (or a pandas
//! whose strings it reads through pyarrow) and the setting is not already
//! the one that was in force: advice must survive its own evidence.

use std::ffi::OsString;
use std::path::Path;

use super::template::printed_version;
use crate::model::{Prediction, VariantModel};
use crate::sweep::budget::TARGET_HALF_WIDTH;
use crate::units::format_count;

/// The variable that sets mimalloc's purge delay (milliseconds) in
/// pyarrow's bundled mimalloc: 0 returns freed memory at once.
pub const PURGE_DELAY: &str = "MIMALLOC_PURGE_DELAY";

/// Where the explanation and the measured figures are.
const DOCS: &str = "docs/command-sweep.md#when-runs-at-one-size-disagree";

/// What the hint is judged on: what the command printed about itself and
/// what it ran with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evidence {
    /// `pyarrow 26.0.1`, or `pandas 3.1.1` (whose default string dtype is
    /// pyarrow-backed) when the command printed no pyarrow version.
    pub arrow: Option<String>,
    /// The purge delay the command ran with: from `NAME=value` in its
    /// arguments (`env MIMALLOC_PURGE_DELAY=0 python ...`), else from
    /// oomlab's own environment, which the command inherits.
    pub purge_delay: Option<String>,
}

impl Evidence {
    /// Whether the command ran with the purge delay at 0: the setting the
    /// hints would name, so they must not name it again.
    fn purges_at_once(&self) -> bool {
        self.purge_delay.as_deref().is_some_and(|v| v.trim() == "0")
    }

    /// From the command's arguments and one run's saved output.
    pub fn gather(argv: &[OsString], run_dir: &Path) -> Self {
        let arrow = printed_version(run_dir, "pyarrow")
            .map(|v| format!("pyarrow {v}"))
            .or_else(|| {
                printed_version(run_dir, "pandas")
                    .filter(|v| v.split('.').next().and_then(|m| m.parse::<u32>().ok()) >= Some(3))
                    .map(|v| format!("pandas {v}"))
            });
        let prefix = format!("{PURGE_DELAY}=");
        let purge_delay = argv
            .iter()
            .filter_map(|a| a.to_str())
            .find_map(|a| a.strip_prefix(&prefix).map(str::to_string))
            .or_else(|| std::env::var(PURGE_DELAY).ok());
        Evidence { arrow, purge_delay }
    }
}

/// One run's own 95% spread at the predicted peak, as a share of it: the
/// peak stage's ([`crate::model::interval::Spread::run_half_width`]).
/// `None` when the model has no spread there.
pub fn run_noise_share(v: &VariantModel, prediction: &Prediction) -> Option<f64> {
    v.stages
        .iter()
        .find(|s| s.name == prediction.peak_stage)
        .and_then(|s| s.fit.spread.as_ref())
        .and_then(|s| s.run_half_width(prediction.peak_bytes))
        .map(|h| h / prediction.peak_bytes.max(1.0))
}

/// What to say when one run's own spread at `rows` (`run_share`, as a
/// share of the peak) is wider than the ±5% a budget sweep aims for; `None`
/// when it is not (or unknown).
pub fn hint(run_share: Option<f64>, rows: u64, evidence: &Evidence) -> Option<String> {
    let share = run_share.filter(|s| *s > TARGET_HALF_WIDTH)?;
    let spread = format!(
        "runs at one size differ: one run's own spread at {} rows is ±{:.1}% (95%), wider than ±{:.0}%",
        format_count(rows),
        share * 100.0,
        TARGET_HALF_WIDTH * 100.0
    );
    let set_to_zero = evidence.purges_at_once();
    Some(match (&evidence.arrow, set_to_zero) {
        (_, true) => format!(
            "why {spread}, with {PURGE_DELAY}=0 already in force: pyarrow's pool returning memory late is not the cause here; threads, garbage collection or the input's order may be ({DOCS})"
        ),
        (Some(arrow), false) => format!(
            "why {spread}. The command runs {arrow}, whose default memory pool (mimalloc) gives freed memory back to the system only after a delay{}, so each peak depends on whether a stage's freed buffers were back before the next stage allocated. Run it with {PURGE_DELAY}=0 (`oomlab sweep ... -- env {PURGE_DELAY}=0 CMD`, and the same in the deployed task's environment) for a peak that repeats, then sweep again ({DOCS})",
            evidence
                .purge_delay
                .as_deref()
                .map(|v| format!(" (it ran with {PURGE_DELAY}={v})"))
                .unwrap_or_default()
        ),
        (None, false) => format!(
            "why {spread}: the command's allocations vary from run to run (an allocator giving memory back late, threads, garbage collection); no sizes predict one run closer than that ({DOCS})"
        ),
    })
}

/// What a sweep without repeats says when the command runs pyarrow with
/// its pool's default purge delay: its interval then counts no run's own
/// spread, and that spread is the pool's race. A fixed sweep of the
/// reference so (4 sizes, one run each) printed ±2.0% at 8,532,146 rows and
/// missed all three production runs. `None` when the evidence shows no
/// pyarrow or the delay was already 0.
pub fn unrepeated_caution(evidence: &Evidence) -> Option<String> {
    pool_caution(
        evidence,
        "every size ran once, so the interval counts no run's own spread",
        "Sweep again with --repeat 2 (or --budget, which repeats), or",
    )
}

/// What a budget sweep that did not reach ±5% says when its repeats
/// happened to agree (no [`hint`]) but the command runs pyarrow with its
/// pool's default purge delay: the race then shows across sizes instead,
/// as lack of fit (the reference's 1,066,518, 2,133,036 and 4,266,073-row
/// peaks left a residual of 0.38 GB on a line while two runs at 2,133,036
/// rows agreed to 14 MB). `None` as for [`unrepeated_caution`].
pub fn wide_caution(evidence: &Evidence) -> Option<String> {
    pool_caution(
        evidence,
        "the interval is wider than ±5%",
        "If it stays wide, sweep",
    )
}

fn pool_caution(evidence: &Evidence, why: &str, then: &str) -> Option<String> {
    let arrow = evidence.arrow.as_deref()?;
    if evidence.purges_at_once() {
        return None;
    }
    Some(format!(
        "caution: {why}, and the command runs {arrow}, whose default pool gives freed memory back late: its peak can move by a gigabyte from one run to the next at the same size. {then} with {PURGE_DELAY}=0 in the command's environment ({DOCS})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(arrow: Option<&str>, delay: Option<&str>) -> Evidence {
        Evidence {
            arrow: arrow.map(str::to_string),
            purge_delay: delay.map(str::to_string),
        }
    }

    #[test]
    fn names_the_purge_delay_only_for_arrow_and_never_twice() {
        let arrow = evidence(Some("pyarrow 26.0.1"), None);
        assert_eq!(
            hint(Some(0.04), 8_532_146, &arrow),
            None,
            "within ±5%: nothing to say"
        );
        assert_eq!(hint(None, 8_532_146, &arrow), None);
        let h = hint(Some(0.113), 8_532_146, &arrow).unwrap();
        assert!(
            h.contains("±11.3%") && h.contains("8,532,146 rows") && h.contains("pyarrow 26.0.1"),
            "{h}"
        );
        assert!(h.contains("MIMALLOC_PURGE_DELAY=0"), "{h}");
        // A delay that was in force and not 0: still worth trying 0, and said.
        let h = hint(
            Some(0.113),
            8_532_146,
            &evidence(Some("pandas 3.1.1"), Some("10")),
        )
        .unwrap();
        assert!(h.contains("it ran with MIMALLOC_PURGE_DELAY=10"), "{h}");
        // Already 0: the setting the evidence shows not to help is not repeated.
        let h = hint(
            Some(0.113),
            8_532_146,
            &evidence(Some("pyarrow 26.0.1"), Some("0")),
        )
        .unwrap();
        assert!(
            h.contains("already in force") && !h.contains("Run it with"),
            "{h}"
        );
        // No pyarrow in sight: no setting of its pool is advised.
        let h = hint(Some(0.113), 8_532_146, &evidence(None, None)).unwrap();
        assert!(!h.contains(PURGE_DELAY), "{h}");
    }

    #[test]
    fn a_sweep_without_repeats_is_cautioned_only_where_the_pool_races() {
        let c = unrepeated_caution(&evidence(Some("pandas 3.1.1"), None)).unwrap();
        assert!(
            c.contains("--repeat 2") && c.contains("pandas 3.1.1"),
            "{c}"
        );
        assert!(unrepeated_caution(&evidence(Some("pyarrow 26.0.1"), Some("10"))).is_some());
        assert_eq!(
            unrepeated_caution(&evidence(Some("pyarrow 26.0.1"), Some("0"))),
            None
        );
        assert_eq!(unrepeated_caution(&evidence(None, None)), None);
        let w = wide_caution(&evidence(Some("pyarrow 26.0.1"), None)).unwrap();
        assert!(
            w.contains("wider than ±5%") && w.contains("sweep with MIMALLOC_PURGE_DELAY=0"),
            "{w}"
        );
        assert_eq!(
            wide_caution(&evidence(Some("pyarrow 26.0.1"), Some("0"))),
            None
        );
    }

    #[test]
    fn evidence_comes_from_the_banner_and_the_arguments() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("stderr.log"),
            "INFO python 3.11.7 pandas 3.1.1 pyarrow 26.0.1\n",
        )
        .unwrap();
        let argv: Vec<OsString> = ["env", "MIMALLOC_PURGE_DELAY=0", "python3", "prep.py"]
            .iter()
            .map(OsString::from)
            .collect();
        let e = Evidence::gather(&argv, dir.path());
        assert_eq!(e.arrow.as_deref(), Some("pyarrow 26.0.1"));
        assert_eq!(e.purge_delay.as_deref(), Some("0"));
        // pandas 2 without pyarrow printed: no arrow evidence.
        std::fs::write(dir.path().join("stderr.log"), "pandas 2.3.3\n").unwrap();
        assert_eq!(Evidence::gather(&argv[2..], dir.path()).arrow, None);
    }
}
