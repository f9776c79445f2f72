//! A hand-made model with known coefficients, for tests of everything that
//! reads models (no sweep needed).

use super::fit::Fit;
use super::*;

const SCENARIO: &str = r#"
name = "synthetic"
seed = 1
[ranking_samples]
rows = 8_532_146
[dataset_profile]
rows = 123_456
columns = [{ kind = "float", count = 87 }, { kind = "string", count = 213 }]
[user_features]
rows = 1_200_000
columns = 12
"#;

fn fit(fixed: f64, per_in: f64, per_kept: f64) -> Fit {
    Fit {
        fixed_bytes: fixed,
        bytes_per_row_in: per_in,
        bytes_per_row_kept: per_kept,
        rows_kept_identified: per_kept != 0.0,
        rows_in_identified: true,
        r2: 1.0,
        rmse_bytes: 0.0,
        residuals: Vec::new(),
        columns_ref: 0.0,
        bytes_per_column: 0.0,
        bytes_per_row_in_per_column: 0.0,
        bytes_per_row_kept_per_column: 0.0,
        columns_identified: false,
        spread: None,
    }
}

/// `optimized`: load = 2 GiB + 200 B/row in; merge = 1 GiB + 300 B/row in
/// + 4,000 B/row kept. `legacy`: merge = 3 GiB + 12,000 B/row in.
pub fn model() -> Model {
    let scenario = Scenario::parse(SCENARIO, "synthetic.toml").expect("scenario parses");
    let gib = (1u64 << 30) as f64;
    let optimized = VariantModel {
        name: "optimized".into(),
        strategy: "optimized".into(),
        sampling: Some(SamplingMode::Uniform),
        stages: vec![
            StageModel {
                name: "load".into(),
                fit: fit(2.0 * gib, 200.0, 0.0),
            },
            StageModel {
                name: "merge_dataset_profile".into(),
                fit: fit(gib, 300.0, 4000.0),
            },
        ],
        overall: fit(gib, 300.0, 4000.0),
        points: Vec::new(),
    };
    let legacy = VariantModel {
        name: "legacy".into(),
        strategy: "legacy".into(),
        sampling: None,
        stages: vec![StageModel {
            name: "merge_dataset_profile".into(),
            fit: fit(3.0 * gib, 12_000.0, 0.0),
        }],
        overall: fit(3.0 * gib, 12_000.0, 0.0),
        points: Vec::new(),
    };
    Model {
        schema_version: MODEL_SCHEMA_VERSION,
        oomlab_version: "test".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        scenario: ModelScenario {
            name: scenario.name.clone(),
            path: "synthetic.toml".into(),
            production: scenario.production_sizes(),
            scenario,
        },
        scales: vec![0.001, 0.002, 0.004],
        cache_root: PathBuf::from("/nonexistent"),
        allocator: "test".into(),
        machine: MachineFacts::default(),
        dropna_keep_ratio: 0.98,
        streaming_chunk_rows: 100_000,
        memory_mode: Default::default(),
        variants: vec![legacy, optimized],
        validation: Validation {
            holdout_scale: 0.004,
            fitted_scales: vec![0.001, 0.002],
            points: Vec::new(),
            max_abs_error_pct: BTreeMap::new(),
            holdout_columns: None,
            fitted_columns: Vec::new(),
        },
        calibration: None,
        production_checks: Vec::new(),
        machines: Vec::new(),
        source: Default::default(),
        columns: ColumnAxis::default(),
    }
}

/// [`model`] with a column term: every stage also pays 1 MB per numeric
/// profile column and, per row, 8 bytes per column for each row it holds
/// (in and kept as its own costs say), centred on the scenario's 87;
/// measured at 87, 137 and 187.
pub fn model_with_columns() -> Model {
    let mut m = model();
    for v in &mut m.variants {
        let fits = v.stages.iter_mut().map(|s| &mut s.fit);
        for f in fits.chain(std::iter::once(&mut v.overall)) {
            f.columns_identified = true;
            f.columns_ref = 87.0;
            f.bytes_per_column = 1e6;
            f.bytes_per_row_in_per_column = if f.bytes_per_row_in > 1000.0 {
                16.0
            } else {
                0.0
            };
            f.bytes_per_row_kept_per_column = if f.bytes_per_row_kept > 0.0 { 8.0 } else { 0.0 };
        }
    }
    m.columns = ColumnAxis {
        at: 87,
        measured: vec![87, 137, 187],
    };
    m
}
