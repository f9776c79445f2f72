//! `oomlab sweep --emit FORMAT`: a sweep written out for somewhere else to
//! run, instead of run here.
//!
//! A sweep on one machine measures only what that machine holds; legacy at
//! production size needs more than any CI runner has. The runs of a sweep
//! are independent, so they can run where the team's pipelines already run
//! (Kubernetes), each with a memory limit that rehearses the budget, and come
//! back as reports for `oomlab model fit`. This module turns a planned sweep
//! into pod runs (the oomlab command line of each, its report directory, its
//! memory limit); one file per output format renders them, behind the
//! [`Emitter`] trait.

pub mod kubernetes;

use std::collections::BTreeMap;

use anyhow::Result;
use clap::ValueEnum;

use crate::error::bad_input;
use crate::model::Model;
use crate::units::format_bytes;

/// The formats a sweep can be written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmitFormat {
    /// Indexed Jobs (batch/v1), one per distinct pod memory limit.
    Kubernetes,
}

/// Where the runs go: what every output format needs to know beyond the runs.
#[derive(Debug, Clone)]
pub struct Target {
    /// Names the Jobs and the results directory (`sweep-ci`, `sweep-command`).
    pub name: String,
    /// The results directory of this sweep under the volume (`<time>-sweep-ci`).
    pub results_id: String,
    /// Container image holding oomlab (and whatever a command needs).
    pub image: String,
    /// Namespace of the Jobs (`None`: kubectl's current one).
    pub namespace: Option<String>,
    /// PersistentVolumeClaim the reports are written to.
    pub volume_claim: String,
    /// Node labels the pods must match.
    pub node_selector: BTreeMap<String, String>,
    /// Pods of one Job run at once (`None`: all).
    pub parallelism: Option<u32>,
}

/// Where the volume is mounted in a pod; every run's `--out` is under it.
pub const RESULTS_MOUNT: &str = "/results";

/// Where each pod caches its generated data (a volume of its own, so pods
/// never write one cache at once).
pub const CACHE_MOUNT: &str = "/cache";

/// One run of the sweep as a pod runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct PodRun {
    /// The report directory, relative to the sweep's (as the sweep names it).
    pub dir: String,
    /// `oomlab`'s arguments (the binary's name not included).
    pub args: Vec<String>,
    /// The pod's memory limit, bytes.
    pub limit_bytes: u64,
    /// Where the limit came from (`--pod-memory`, or the model's prediction).
    pub limit_source: String,
}

/// A format a sweep can be written in: one file per format, as hyperfine's
/// exporters, so a new place to run (a batch system, a shell script) adds a
/// file and no branch in the sweep.
pub trait Emitter {
    /// The whole document, ready to write or pipe (`kubectl apply -f -`).
    fn render(&self, target: &Target, runs: &[PodRun]) -> Result<String>;
}

/// The emitter of a format.
pub fn emitter(format: EmitFormat) -> Box<dyn Emitter> {
    match format {
        EmitFormat::Kubernetes => Box::new(kubernetes::Kubernetes),
    }
}

/// The least memory limit a pod is given: oomlab, the interpreter of a
/// command and the data generation need some room even at tiny sizes.
pub const MIN_LIMIT_BYTES: u64 = 512 << 20;

/// A limit people read and schedulers pack: up to the next 256 MiB below
/// 16 GiB, the next GiB above.
pub fn round_limit(bytes: f64) -> u64 {
    let bytes = bytes.max(MIN_LIMIT_BYTES as f64).ceil() as u64;
    let step: u64 = if bytes < (16 << 30) {
        256 << 20
    } else {
        1 << 30
    };
    bytes.div_ceil(step) * step
}

/// The pod limits: every pod `budget` when given (the budget rehearsed),
/// else each run's predicted peak from `model` plus `headroom`, as
/// `recommend` keeps it (the budget whose limit after headroom is the peak).
/// `predicted` gives each run's peak from the model, `None` when the model
/// cannot predict it (then `--pod-memory` is needed, and the error says so).
pub fn limits(
    runs: &mut [PodRun],
    budget: Option<u64>,
    model: Option<(&Model, &str)>,
    headroom: f64,
    predicted: &dyn Fn(&Model, usize) -> Option<f64>,
) -> Result<()> {
    for (i, run) in runs.iter_mut().enumerate() {
        match (budget, model) {
            (Some(b), _) => {
                run.limit_bytes = b;
                run.limit_source = "--pod-memory".into();
            }
            (None, Some((m, label))) => {
                let peak = predicted(m, i).ok_or_else(|| {
                    bad_input(format!(
                        "--emit: the model {label} cannot predict run {} (another scenario, memory mode or command): pass --pod-memory SIZE, or --limits-model a model of this sweep",
                        run.dir
                    ))
                })?;
                run.limit_bytes = round_limit(peak / (1.0 - headroom));
                run.limit_source = format!(
                    "{label}: predicted {} + {:.0}% headroom",
                    format_bytes(peak as u64),
                    headroom * 100.0
                );
            }
            (None, None) => {
                return Err(bad_input(
                    "--emit: no pod memory limit: pass --pod-memory SIZE (every pod), or a model to predict each run's (--limits-model)",
                ))
            }
        }
    }
    Ok(())
}

/// Quotes an argument for `sh` (single quotes; a quote inside as `'\''`).
pub fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        return arg.to_string();
    }
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// A name Kubernetes accepts (DNS-1123 label: lowercase letters, digits and
/// `-`, at most 63 characters, starting and ending alphanumeric).
pub fn dns_label(text: &str) -> String {
    let mut out: String = text
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    out.truncate(63);
    out.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_rounded_up_to_steps_people_read() {
        assert_eq!(round_limit(1.0), MIN_LIMIT_BYTES);
        assert_eq!(round_limit((600 << 20) as f64), 768 << 20);
        assert_eq!(round_limit((16u64 << 30) as f64 + 1.0), 17 << 30);
    }

    #[test]
    fn shell_quoting_and_names() {
        assert_eq!(shell_quote("--scale"), "--scale");
        assert_eq!(shell_quote("{rows}"), "'{rows}'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(dns_label("oomlab-Sweep_ci--1.5Gi"), "oomlab-sweep-ci-1-5gi");
    }
}
