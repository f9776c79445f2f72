//! Whose bytes a model is in (oomlab's replay, or a user's own command), and
//! the one line that says so wherever a model's answers are printed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Whose bytes a model is in. `recommend`, `check` and `postmortem` name
/// it, since a replay's bytes and a pipeline's own differ (by pandas
/// version, allocator, code) and the reader must know which they got.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelSource {
    /// oomlab's replay of the strategies (in `Model::memory_mode`).
    #[default]
    Replay,
    /// A user's command, run at several sizes (`oomlab sweep -- CMD`).
    Command {
        /// The argv template, placeholders (`{rows}`, `{scale}`,
        /// `{data_dir}`, `{max_ranking_samples}`) unsubstituted.
        argv: Vec<String>,
        /// The pattern whose matching lines cut stages.
        stage_pattern: String,
        /// Python version the command reported in its output, if any.
        #[serde(default)]
        python: Option<String>,
        /// pandas version the command reported in its output, if any.
        #[serde(default)]
        pandas: Option<String>,
        /// Allocator settings the command ran under
        /// (`ARROW_DEFAULT_MEMORY_POOL`, `MALLOC_*`, `PYTHONMALLOC`): they
        /// move a pandas pipeline's peaks (pyarrow's pool holds pandas 3's
        /// strings), so a model says which it was fitted under.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        allocator_env: BTreeMap<String, String>,
        /// Commands fitted together but named apart (`oomlab model fit
        /// NAME=DIR ...`): each name's argv; the name is its variants'
        /// strategy. Empty for one command.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        named: BTreeMap<String, Vec<String>>,
    },
}

/// The allocator settings in this process's environment, which a child
/// inherits: see `ModelSource::Command::allocator_env`.
pub fn allocator_env() -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| {
            k == "ARROW_DEFAULT_MEMORY_POOL" || k == "PYTHONMALLOC" || k.starts_with("MALLOC_")
        })
        .collect()
}

impl ModelSource {
    /// One line on whose bytes the model's answers are in.
    pub fn describe(&self, memory_mode: crate::settings::MemoryMode) -> String {
        match self {
            ModelSource::Replay => format!(
                "oomlab's replay ({} memory mode); a real pipeline's bytes differ: calibrate with --observed or --fidelity, or sweep the pipeline itself (`oomlab sweep -- CMD`)",
                memory_mode.label()
            ),
            ModelSource::Command {
                argv,
                python,
                pandas,
                allocator_env,
                ..
            } => {
                let mut versions = Vec::new();
                if let Some(p) = python {
                    versions.push(format!("Python {p}"));
                }
                if let Some(p) = pandas {
                    versions.push(format!("pandas {p}"));
                }
                for (k, v) in allocator_env {
                    versions.push(format!("{k}={v}"));
                }
                format!(
                    "the command's own bytes: `{}`{}",
                    argv.join(" "),
                    if versions.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", versions.join(", "))
                    }
                )
            }
        }
    }
}
