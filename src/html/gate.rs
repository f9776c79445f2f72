//! The page of a gate result (`oomlab gate --json FILE`): the verdict, and
//! each stage of each strategy and command with its verdict, its figures
//! against the baseline and the reasons.
//!
//! The gate sits above the report directories this layer writes pages for
//! (it re-runs replays through `sweep`'s code), so this file reads the
//! gate's JSON by its documented keys rather than its Rust types: the page
//! needs only what the JSON already says, and the layers stay one way.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{fact, Fact, Kind, Page};

/// The part of a gate result the page shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GateDocument {
    pub schema_version: u32,
    pub baseline: String,
    pub passed: bool,
    #[serde(default)]
    pub updated: bool,
    #[serde(default)]
    pub runs: u32,
    #[serde(default)]
    pub tolerances: Value,
    #[serde(default)]
    pub wall_s: f64,
    #[serde(default)]
    pub notes: Vec<String>,
    #[serde(default)]
    pub regressed: Vec<Value>,
    /// Per strategy: `scenario`, `strategy`, `baseline_strategy` and its
    /// `stages` (`stage`, `verdict`, `rss`, `heap_*`, `reasons`).
    #[serde(default)]
    pub strategies: Vec<Value>,
    #[serde(default)]
    pub command_tolerances: Value,
    /// Per command entry: `command`, `against`, `rows` and its `stages`.
    #[serde(default)]
    pub commands: Vec<Value>,
}

/// `{"rss_pct": 10.0, "heap_pct": 2.0}` as `rss 10%, heap 2%`.
fn percents(v: &Value) -> String {
    match v.as_object() {
        Some(map) if !map.is_empty() => map
            .iter()
            .map(|(k, v)| format!("{} {v}%", k.trim_end_matches("_pct").replace('_', " ")))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "-".into(),
    }
}

/// The page of a gate result; `source` names the JSON it shows.
pub fn page(g: &GateDocument, source: &str) -> Page {
    let failing = g.regressed.len();
    let subtitle = if g.updated {
        "blessed into the baseline (--update)".to_string()
    } else if g.passed {
        "passed: no stage regressed".to_string()
    } else {
        format!(
            "FAILED: {failing} stage{} regressed, appeared or disappeared",
            if failing == 1 { "" } else { "s" }
        )
    };
    let provenance: Vec<Fact> = vec![
        fact("command", format!("oomlab gate --baseline {}", g.baseline)),
        fact(
            "replay mode",
            "each strategy re-run as the baseline names it; command entries run as blessed",
        ),
        fact("runs", format!("{} plain runs per scenario (RSS medians); exact heap figures from one profiling run", g.runs)),
        fact(
            "tolerances",
            format!(
                "replays: {}; commands: {}",
                percents(&g.tolerances),
                percents(&g.command_tolerances)
            ),
        ),
        fact("written", format!("gate result schema {} from {source}, {:.1} s", g.schema_version, g.wall_s)),
    ];
    Page {
        kind: Kind::Gate,
        title: format!("oomlab gate: {}", g.baseline),
        subtitle,
        provenance,
        body: serde_json::to_value(g).unwrap_or_default(),
    }
}
