//! The committed baseline a gate compares against: `reports/baseline.json`.
//!
//! A baseline names what to re-run (scenario file, scale, strategies,
//! settings) and holds, per stage, the figures blessed last time: the exact
//! peak RSS (median of several runs) and dhat's heap figures (one heap
//! profiling run; they are deterministic). People edit it by hand to loosen a
//! noisy stage, so it is strict: an unknown key is an error, not ignored.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::bad_input;
use crate::machine::MachineFacts;

/// Bumped whenever an older oomlab would misread a newer baseline.
pub const BASELINE_SCHEMA_VERSION: u32 = 1;

/// Marks the file as a gate baseline, so a `report.json` passed by mistake is
/// refused with a clear message instead of a missing-field error.
pub const BASELINE_KIND: &str = "oomlab-gate-baseline";

/// Everything a gate needs to re-run and judge.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub schema_version: u32,
    pub kind: String,
    /// The oomlab that blessed it; heap figures depend on the build.
    pub oomlab_version: String,
    /// UTC time it was blessed, RFC 3339.
    pub created_at: String,
    /// Where RSS was measured; RSS depends on the machine, so a gate on another
    /// machine class says so.
    pub machine: BaselineMachine,
    /// The children's allocator; RSS depends on it.
    pub allocator: String,
    /// Changes smaller than these never fail, whatever the percentage.
    #[serde(default)]
    pub floors: Floors,
    /// Replay entries: oomlab's own replay of a scenario (may be empty when
    /// the baseline only gates commands).
    #[serde(default)]
    pub scenarios: Vec<BaselineScenario>,
    /// Command entries: a team's own pipeline, gated on what production pays
    /// per row (absent from baselines written before they existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<CommandEntry>,
}

/// A user's command gated at a few small sizes: the exact peak at the largest
/// size (as a replay stage), and the per-row slope between sizes, which is
/// what production pays and barely depends on the CI machine's fixed costs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CommandEntry {
    /// The argv template, placeholders (`{rows}`, `{scale}`, `{data_dir}`,
    /// `{max_ranking_samples}`) unsubstituted; it identifies the entry.
    pub argv: Vec<String>,
    /// Rows the command is run at, smallest first (at least two, for a slope).
    pub rows: Vec<u64>,
    /// The scenario's scale at each of `rows` (for `{scale}` and `{data_dir}`).
    pub scales: Vec<f64>,
    /// The scenario whose data `{data_dir}` names (none: the command reads
    /// its own input, sized by `{rows}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// Regex of the lines that start stages (as `record --stage-pattern`).
    pub stage_pattern: String,
    /// Rows the pipeline loads in production: the slope's change is priced there.
    pub production_rows: u64,
    /// Generate the scenario's data even when no argument names `{data_dir}`.
    #[serde(default)]
    pub generate_data: bool,
    /// Runs per size whose medians were blessed.
    pub runs: u32,
    /// Python and pandas versions the command printed, if any: a different
    /// pandas moves the figures for reasons other than the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The pandas version the command printed (see `python`).
    pub pandas: Option<String>,
    pub stages: Vec<CommandStage>,
    /// What each line of the command's own code costs per row at each
    /// stage's peak, blessed with `gate --update --lines` (docs/lines.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<crate::lines::LinesModel>,
}

/// One stage of a command entry, as blessed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CommandStage {
    /// The stage's name, from the command's marker lines.
    pub name: String,
    /// Median over the runs of the stage's exact peak at the largest size, bytes.
    pub peak_bytes: u64,
    /// Each run's exact peak at the largest size, for the spread.
    pub peak_runs_bytes: Vec<u64>,
    /// Fitted per-row cost (least squares over the sizes' medians), bytes per row.
    pub bytes_per_row: f64,
    /// The fit's fixed part (its value at zero rows), bytes; may be negative.
    pub fixed_bytes: f64,
    /// Each run's own slope (run i at every size): how much the slope moved
    /// between runs when blessed. A change within that spread is noise, not a
    /// regression (short stages' peaks move most).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bytes_per_row_runs: Vec<f64>,
    /// Overrides `--rss-tolerance` for this stage's peak, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_tolerance_pct: Option<f64>,
    /// Overrides `--slope-tolerance` for this stage's per-row cost, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slope_tolerance_pct: Option<f64>,
}

impl CommandEntry {
    /// The argv template as one line, for tables and messages.
    pub fn label(&self) -> String {
        self.argv.join(" ")
    }

    /// The blessed stage of this name.
    pub fn stage(&self, name: &str) -> Option<&CommandStage> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// Checks what serde cannot, naming the key at fault.
    pub fn validate(&self, index: usize) -> Result<(), String> {
        let at = format!("commands[{index}] (`{}`)", self.label());
        if self.argv.is_empty() {
            return Err(format!("{at}: key `argv` is empty"));
        }
        if self.rows.len() < 2 || self.rows.windows(2).any(|w| w[0] >= w[1]) || self.rows[0] == 0 {
            return Err(format!(
                "{at}: key `rows` must list at least two distinct, increasing, non-zero sizes (found {:?})",
                self.rows
            ));
        }
        if self.scales.len() != self.rows.len()
            || self.scales.iter().any(|s| !(s.is_finite() && *s > 0.0))
        {
            return Err(format!(
                "{at}: key `scales` must hold one positive scale per entry of `rows` (found {:?})",
                self.scales
            ));
        }
        if self.runs == 0 {
            return Err(format!("{at}: key `runs` is 0"));
        }
        if self.production_rows == 0 {
            return Err(format!("{at}: key `production_rows` is 0"));
        }
        if self.stages.is_empty() {
            return Err(format!("{at}: key `stages` is empty"));
        }
        for (j, st) in self.stages.iter().enumerate() {
            let at = format!("{at}, stage {}", st.name);
            if self.stages[..j].iter().any(|o| o.name == st.name) {
                return Err(format!("{at}: key `name` appears twice"));
            }
            if !st.bytes_per_row.is_finite() {
                return Err(format!("{at}: key `bytes_per_row` is not a number"));
            }
            if !st.fixed_bytes.is_finite() {
                return Err(format!("{at}: key `fixed_bytes` is not a number"));
            }
            if st.peak_runs_bytes.is_empty() {
                return Err(format!("{at}: key `peak_runs_bytes` is empty"));
            }
            for (key, v) in [
                ("peak_tolerance_pct", st.peak_tolerance_pct),
                ("slope_tolerance_pct", st.slope_tolerance_pct),
            ] {
                if let Some(v) = v {
                    check_tolerance(v).map_err(|m| format!("{at}: key `{key}` {m}"))?;
                }
            }
        }
        Ok(())
    }
}

/// The machine facts a baseline keeps (no free memory: it changes by the second).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineMachine {
    pub cpus: usize,
    pub total_memory_bytes: u64,
    pub kernel: String,
}

impl From<&MachineFacts> for BaselineMachine {
    fn from(m: &MachineFacts) -> Self {
        Self {
            cpus: m.cpus,
            total_memory_bytes: m.total_memory_bytes,
            kernel: m.kernel.clone(),
        }
    }
}

/// Absolute slack under which a change passes, for stages so small that one
/// page or one thread's scratch buffer is a large percentage.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Floors {
    /// RSS peak: rises up to this many bytes pass.
    pub rss_bytes: u64,
    /// Heap peak and heap total: rises up to this many bytes pass.
    pub heap_bytes: u64,
    /// Allocation count: rises up to this many allocations pass (polars' thread
    /// pool splits work differently from run to run).
    pub heap_allocs: u64,
}

impl Default for Floors {
    fn default() -> Self {
        Self {
            rss_bytes: 4 << 20,
            heap_bytes: 256 << 10,
            heap_allocs: 256,
        }
    }
}

/// One scenario file at one scale with its settings, and the strategies run on it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineScenario {
    /// Scenario file, relative to the directory the gate runs in (the repo root).
    pub path: String,
    /// The scenario's `name`, for tables.
    pub name: String,
    pub scale: f64,
    /// `MAX_RANKING_SAMPLES` the strategies ran with (0 = no limit); the gate
    /// passes it explicitly so the environment cannot change what is compared.
    pub max_ranking_samples: u64,
    /// Content hash of the generated inputs; a different hash means the
    /// figures compare different data.
    pub data_hash: String,
    /// How many runs the RSS medians were taken over.
    pub rss_runs: u32,
    pub strategies: Vec<BaselineStrategy>,
}

/// One strategy's blessed stages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineStrategy {
    pub name: String,
    pub stages: Vec<BaselineStage>,
}

/// The blessed figures of one stage, and optional per-stage tolerances.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineStage {
    pub name: String,
    /// Median over the runs of the stage's exact peak RSS (VmHWM), bytes.
    pub rss_peak_bytes: u64,
    /// Each run's exact peak RSS, for the spread.
    pub rss_peak_runs_bytes: Vec<u64>,
    /// Most live heap bytes at any moment of the stage (dhat run).
    pub heap_peak_bytes: u64,
    /// Bytes allocated during the stage (dhat run).
    pub heap_total_bytes: u64,
    /// Allocations during the stage (dhat run).
    pub heap_allocs: u64,
    /// Overrides `--rss-tolerance` for this stage, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_tolerance_pct: Option<f64>,
    /// Overrides `--heap-tolerance` for this stage, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap_tolerance_pct: Option<f64>,
}

impl Baseline {
    /// Reads and checks a baseline; every way it can be unusable is a bad-input
    /// error (exit 2) that names the file and says how to fix it.
    pub fn read(path: &Path) -> anyhow::Result<Baseline> {
        let shown = path.display();
        let bytes = std::fs::read(path).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "; create it with `oomlab gate --baseline {shown} --update --scenario scenarios/ci.toml --strategy optimized`"
                )
            } else {
                String::new()
            };
            bad_input(format!("{shown}: cannot read the baseline: {e}{hint}"))
        })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            bad_input(format!(
                "{shown}: the baseline is corrupt (not JSON: {e}); restore it from git or bless a new one with --update"
            ))
        })?;
        let kind = value.get("kind").and_then(|k| k.as_str());
        if kind != Some(BASELINE_KIND) {
            return Err(bad_input(format!(
                "{shown}: not an oomlab gate baseline (expected \"kind\": \"{BASELINE_KIND}\", found {})",
                kind.map_or("no kind".to_string(), |k| format!("{k:?}"))
            )));
        }
        let version = value.get("schema_version").and_then(|v| v.as_u64());
        if version != Some(BASELINE_SCHEMA_VERSION as u64) {
            return Err(bad_input(format!(
                "{shown}: baseline schema_version is {}, this oomlab reads version {BASELINE_SCHEMA_VERSION}; re-bless it with this oomlab: delete it and run `oomlab gate --baseline {shown} --update --scenario <file> --strategy <names>`",
                version.map_or("missing".to_string(), |v| v.to_string())
            )));
        }
        if let Some(commands) = value.get("commands").and_then(|c| c.as_array()) {
            for (i, entry) in commands.iter().enumerate() {
                serde_json::from_value::<CommandEntry>(entry.clone()).map_err(|e| {
                    let key = match faulty_key::<CommandEntry>(entry).as_deref() {
                        Some("stages") => entry["stages"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .enumerate()
                            .find_map(|(j, st)| {
                                faulty_key::<CommandStage>(st).map(|k| format!("stages[{j}].{k}"))
                            })
                            .or(Some("stages".to_string())),
                        other => other.map(String::from),
                    };
                    bad_input(format!(
                        "{shown}: command entry commands[{i}] is corrupt{}: {e}; restore it from git or re-bless it with `oomlab gate --baseline {shown} --update -- CMD...`",
                        key.map(|k| format!(" at key `{k}`")).unwrap_or_default()
                    ))
                })?;
            }
        }
        let baseline: Baseline = serde_json::from_value(value)
            .map_err(|e| bad_input(format!("{shown}: the baseline is corrupt: {e}")))?;
        baseline
            .validate()
            .map_err(|msg| bad_input(format!("{shown}: {msg}")))?;
        Ok(baseline)
    }

    /// Checks what serde cannot: something to run, sane tolerances, unique names.
    fn validate(&self) -> Result<(), String> {
        if self.scenarios.is_empty() && self.commands.is_empty() {
            return Err("the baseline names no scenario and no command".into());
        }
        for (i, c) in self.commands.iter().enumerate() {
            c.validate(i)?;
            if self.commands[..i].iter().any(|o| o.argv == c.argv) {
                return Err(format!(
                    "commands[{i}] (`{}`): key `argv` appears twice",
                    c.label()
                ));
            }
        }
        for sc in &self.scenarios {
            if sc.strategies.is_empty() {
                return Err(format!("scenario {}: names no strategy", sc.path));
            }
            if !(sc.scale.is_finite() && sc.scale > 0.0) {
                return Err(format!(
                    "scenario {}: scale {} is not a positive factor",
                    sc.path, sc.scale
                ));
            }
            for (i, st) in sc.strategies.iter().enumerate() {
                if sc.strategies[..i].iter().any(|o| o.name == st.name) {
                    return Err(format!(
                        "scenario {}: strategy {} appears twice",
                        sc.path, st.name
                    ));
                }
                for (j, stage) in st.stages.iter().enumerate() {
                    let at = format!(
                        "scenario {}, strategy {}, stage {}",
                        sc.path, st.name, stage.name
                    );
                    if st.stages[..j].iter().any(|o| o.name == stage.name) {
                        return Err(format!("{at}: appears twice"));
                    }
                    for (key, v) in [
                        ("rss_tolerance_pct", stage.rss_tolerance_pct),
                        ("heap_tolerance_pct", stage.heap_tolerance_pct),
                    ] {
                        if let Some(v) = v {
                            check_tolerance(v).map_err(|m| format!("{at}: {key} {m}"))?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes the baseline atomically, pretty-printed with a trailing newline so
    /// that diffs of a re-blessed baseline are readable in review.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let mut json = serde_json::to_vec_pretty(self)?;
        json.push(b'\n');
        crate::report::write_atomically(path, &json)
    }

    /// The scenario entry for a scenario file, if the baseline has one.
    pub fn scenario_mut(&mut self, path: &str) -> Option<&mut BaselineScenario> {
        self.scenarios.iter_mut().find(|s| s.path == path)
    }
}

impl BaselineScenario {
    /// The blessed strategy of this name.
    pub fn strategy(&self, name: &str) -> Option<&BaselineStrategy> {
        self.strategies.iter().find(|s| s.name == name)
    }
}

impl BaselineStrategy {
    /// The blessed stage of this name.
    pub fn stage(&self, name: &str) -> Option<&BaselineStage> {
        self.stages.iter().find(|s| s.name == name)
    }
}

/// The key of a JSON object that keeps it from deserializing as `T`: the one
/// whose removal makes it deserialize, or leaves only "missing field" for it.
/// serde's type errors name the expected type but not the key, and a person
/// who edited a baseline by hand needs the key.
fn faulty_key<T: serde::de::DeserializeOwned>(value: &serde_json::Value) -> Option<String> {
    let map = value.as_object()?;
    map.keys()
        .find(|k| {
            let mut rest = map.clone();
            rest.remove(*k);
            match serde_json::from_value::<T>(serde_json::Value::Object(rest)) {
                Ok(_) => true,
                Err(e) => e.to_string().starts_with(&format!("missing field `{k}`")),
            }
        })
        .cloned()
}

/// A tolerance is a percentage in [0, 1000].
pub fn check_tolerance(pct: f64) -> Result<f64, String> {
    if pct.is_finite() && (0.0..=1000.0).contains(&pct) {
        Ok(pct)
    } else {
        Err(format!("{pct}: expected a percentage between 0 and 1000"))
    }
}

/// Parses a tolerance flag such as `2%`, `2` or `0.5%` into percent.
pub fn parse_tolerance(flag: &str, text: &str) -> anyhow::Result<f64> {
    let t = text.trim();
    let number = t.strip_suffix('%').unwrap_or(t).trim();
    let pct: f64 = number.parse().map_err(|_| {
        bad_input(format!(
            "{flag} {text}: expected a percentage such as 2% or 10%"
        ))
    })?;
    check_tolerance(pct).map_err(|m| bad_input(format!("{flag} {m}")))
}
