//! Which lines of a Python command's own code hold each byte at each stage's
//! peak, and (over a sweep's sizes) what each line costs per row.
//!
//! A stage figure says *that* a merge costs 4,845 bytes per row; the
//! engineer's next question is *which line*. memray answers that for one
//! run; oomlab runs the command a second, separate time under memray
//! ([`capture`]: the kernel figures stay those of the untraced run), reads
//! the capture through memray's own Python API with a bundled reader that
//! prints JSON, cuts the capture at the command's stage markers by time
//! ([`attribute`]), and, over a sweep's sizes, fits each line's bytes
//! against rows with the stage model's own fit ([`sites`]), so a line's
//! cost extrapolates to production rows and a gate can name the line whose
//! cost grew.

pub mod attribute;
pub mod capture;
pub mod render;
pub mod sites;

use std::ffi::OsString;

use anyhow::{Context, Result};

pub use attribute::{attribute, Site, SiteBytes, StageLines};
pub use capture::{memray_version, python_command, trace, Capture, TracePlan, Traced};
pub use sites::{changes, fit_sites, LineChange, LinesModel, SizedLines};

/// Refuses early (exit 2) a command `--lines` cannot trace: not Python, or
/// an interpreter without memray; before any kernel run spends minutes.
/// Returns memray's version.
pub fn check_ready(command: &[OsString]) -> Result<String> {
    let python = python_command(command)?;
    memray_version(&python.interpreter)
}

/// One traced run, attributed to its stages.
#[derive(Debug, Clone)]
pub struct TracedRun {
    pub traced: Traced,
    pub stages: Vec<StageLines>,
}

/// Traces the command once and attributes its capture to its stages; the
/// stages are also written as `lines.json` beside the capture.
pub fn trace_run(plan: &TracePlan<'_>) -> Result<TracedRun> {
    let traced = trace(plan)?;
    let stages = attribute(&traced);
    let path = plan.dir.join("lines.json");
    let json = serde_json::json!({
        "memray": traced.capture.memray,
        "python": traced.capture.python,
        "wall_s": traced.wall_s,
        "markers": traced.markers.len(),
        "markers_timed_in_process": traced.markers_stamped,
        "capture": traced.capture_path.display().to_string(),
        "stages": stages,
    });
    std::fs::write(&path, serde_json::to_vec_pretty(&json)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(TracedRun { traced, stages })
}
