//! Where a model comes from: the flag, `$OOMLAB_MODEL`, `reports/model.json`
//! here, or one of the models built into the binary.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::Model;

/// Where `sweep` saves the latest model and where `recommend`/`check` look for
/// it unless `--model` (or `$OOMLAB_MODEL`) says otherwise.
pub const DEFAULT_MODEL_PATH: &str = "reports/model.json";

/// Environment variable naming the model file when `--model` is not given.
pub const MODEL_PATH_ENV: &str = "OOMLAB_MODEL";

/// The model file `recommend`/`check` read: the flag, else `$OOMLAB_MODEL`,
/// else [`DEFAULT_MODEL_PATH`].
pub fn model_path(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os(MODEL_PATH_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL_PATH))
}

/// The models committed in this repository, built into the binary by name,
/// so an installed oomlab answers `recommend`/`check` from any directory
/// (name, the repository file it is, what it is of).
pub const BUNDLED_MODELS: [(&str, &str, &str); 6] = [
    (
        "production",
        include_str!("../../reports/model.json"),
        "the replay of the production scenario (polars), the sweep of docs/model.md",
    ),
    (
        "pandas",
        include_str!("../../reports/model-pandas.json"),
        "the replay of the production scenario in pandas memory mode",
    ),
    (
        "command-optimized-pandas2",
        include_str!("../../reports/model-command-optimized-pandas2.json"),
        "the pandas reference's optimized strategy under pandas 2.3, swept as a command",
    ),
    (
        "command-legacy-pandas2",
        include_str!("../../reports/model-command-legacy-pandas2.json"),
        "the pandas reference's legacy strategy under pandas 2.3, swept as a command",
    ),
    (
        "command-legacy-pandas3",
        include_str!("../../reports/model-command-legacy-pandas3.json"),
        "the pandas reference's legacy strategy under pandas 3.1, swept as a command",
    ),
    (
        "command-optimized-pandas3",
        include_str!("../../reports/model-command-optimized-pandas3.json"),
        "the pandas reference's optimized strategy under pandas 3.1, swept as a command",
    ),
];

/// The name of the bundled model `spec` names: its name (`production`), or
/// its repository path (`reports/model.json`, `reports/model-pandas.json`).
pub fn bundled_model_name(spec: &Path) -> Option<&'static str> {
    let text = spec.to_str()?;
    let name = match text
        .strip_prefix("reports/")
        .and_then(|n| n.strip_suffix(".json"))
    {
        Some("model") => "production",
        Some(file) => file.strip_prefix("model-").unwrap_or(file),
        None => text,
    };
    BUNDLED_MODELS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(n, _, _)| *n)
}

/// A model as found: where it came from (a file, or one built in) and, when
/// nothing was asked for and nothing was found here, the sentence saying the
/// bundled production model answers instead.
pub struct FoundModel {
    pub model: Model,
    /// The file read, or `bundled:NAME` for a model built into the binary.
    pub path: PathBuf,
    /// Set when the bundled production model stands in for a missing
    /// default: the first line `recommend` and `check` print.
    pub fallback: Option<String>,
}

/// Finds and reads the model `recommend`, `check` and `postmortem` answer
/// from: `--model` (a file, or a bundled model's name), else
/// `$OOMLAB_MODEL`, else `reports/model.json` here, else the bundled model
/// of the production scenario, so an installed oomlab answers from any
/// directory and says which model it used.
pub fn find_model(flag: Option<&Path>) -> Result<FoundModel> {
    let asked = flag.is_some() || std::env::var_os(MODEL_PATH_ENV).is_some();
    let path = model_path(flag);
    if path.exists() {
        return Ok(FoundModel {
            model: Model::read(&path)?,
            path,
            fallback: None,
        });
    }
    let Some(name) = bundled_model_name(&path).or((!asked).then_some("production")) else {
        // Not here and not built in: reading it says so (exit 2).
        return Ok(FoundModel {
            model: Model::read(&path)?,
            path,
            fallback: None,
        });
    };
    let (_, text, what) = BUNDLED_MODELS
        .iter()
        .find(|(n, _, _)| *n == name)
        .copied()
        .unwrap_or(BUNDLED_MODELS[0]);
    let label = PathBuf::from(format!("bundled:{name}"));
    let model = Model::parse(text.as_bytes(), &label)?;
    let fallback = (!asked).then(|| {
        format!(
            "Using oomlab's bundled model `{name}` ({what}; measured {} on {} CPUs): no --model, no ${MODEL_PATH_ENV}, no {DEFAULT_MODEL_PATH} in this directory",
            model.created_at.get(..10).unwrap_or(&model.created_at),
            model.machine.cpus
        )
    });
    Ok(FoundModel {
        model,
        path: label,
        fallback,
    })
}
