//! The postmortem's analysis on synthetic models and logs: the model's
//! findings calibrated by a kill, shape notes, and the facts a log gives.

use super::findings::*;
use super::model::{ModelColumns, ModelShape, PeakModel};
use super::*;
use crate::model::ObservedPeak;

/// A model whose peak is a fixed cost per row held, times a factor a
/// kill can raise.
struct PerRow {
    legacy: u64,
    optimized: u64,
    factor: f64,
}

fn per_row(legacy: u64, optimized: u64) -> PerRow {
    PerRow {
        legacy,
        optimized,
        factor: 1.0,
    }
}

fn kept(rows_in: u64, cap: u64) -> u64 {
    if cap > 0 && cap < rows_in {
        cap
    } else {
        rows_in
    }
}

impl PeakModel for PerRow {
    fn describe(&self) -> String {
        format!("per-row test model x{}", self.factor)
    }
    fn shape(&self) -> ModelShape {
        ModelShape {
            datasets: 5_000,
            profile_columns: 300,
            profile_numeric_columns: 87,
            user_columns: 12,
        }
    }
    fn predict(&self, strategy: &str, rows_in: u64, cap: u64) -> Result<PredictedPeak> {
        let per = if strategy == "legacy" {
            self.legacy
        } else {
            self.optimized
        };
        Ok(PredictedPeak {
            peak_bytes: (kept(rows_in, cap) as f64 * per as f64 * self.factor) as u64,
            stage: "merge_dataset_profile".into(),
        })
    }
    fn fitting_setting(&self, rows_in: u64, budget: u64, h: f64) -> Result<FittingSetting> {
        let limit = budget as f64 * (1.0 - h);
        let rows = (limit / (self.optimized as f64 * self.factor)).floor() as u64;
        Ok(if rows >= rows_in {
            FittingSetting::NoSampling {
                peak: self.predict("optimized", rows_in, 0)?,
            }
        } else if rows >= 1 {
            FittingSetting::Cap {
                cap: rows,
                peak: self.predict("optimized", rows_in, rows)?,
            }
        } else {
            FittingSetting::NoFit {
                floor: self.predict("optimized", rows_in, 1)?,
            }
        })
    }
    fn stages(&self) -> Vec<String> {
        vec!["merge_dataset_profile".into()]
    }
    fn calibrate(&mut self, observed: &[ObservedPeak], _: Option<&Path>) -> Result<()> {
        self.factor = observed
            .iter()
            .filter(|o| o.at_least)
            .map(|o| {
                o.peak_bytes as f64
                    / (kept(o.rows_in, o.max_ranking_samples) * self.optimized) as f64
            })
            .fold(1.0, f64::max);
        Ok(())
    }
}

fn run_of(rows: u64, columns: u64, datasets: u64) -> (RunFacts, Facts) {
    let run = RunFacts {
        ranking_samples_rows: Some(rows),
        dataset_feature_columns: Some(columns),
        datasets: Some(datasets),
        ..RunFacts::default()
    };
    let facts = Facts {
        ranking_samples_rows: Some(rows),
        ..Facts::default()
    };
    (run, facts)
}

fn killed_at(rows: u64, limit: u64) -> std::result::Result<KillEvidence, String> {
    Ok(KillEvidence {
        rows_in: rows,
        max_ranking_samples: 0,
        killed_rows: rows,
        limit_bytes: limit,
        limit_source: "flag".into(),
        stage: Some("merge_dataset_profile".into()),
        stage_line: Some(5),
        kill_line: 6,
        kill_source: "log line 6".into(),
    })
}

fn findings(
    model: &mut PerRow,
    facts: (&RunFacts, &Facts),
    limit: u64,
    killed: bool,
    evidence: &std::result::Result<KillEvidence, String>,
) -> ModelFindings {
    let ctx = ModelContext {
        path: "model.json",
        fidelity: None,
        observed: &[],
    };
    model_findings(model, &ctx, facts.0, facts.1, Some(limit), killed, evidence).unwrap()
}

#[test]
fn a_kill_calibrates_the_model_and_its_cap_stays_below_the_killed_rows() {
    let (run, facts) = run_of(1_000_000, 300, 5_000);
    // Killed at 10 GB, but the model predicts 1 GB at most.
    let ev = killed_at(1_000_000, 10_000_000_000);
    let found = findings(
        &mut per_row(1_000, 200),
        (&run, &facts),
        10_000_000_000,
        true,
        &ev,
    );
    assert!(found.under_predicts);
    assert_eq!(found.largest_before_kill_bytes, Some(1_000_000_000));
    assert_eq!(
        found.kill_observation.as_deref(),
        Some("1000000:0>=10000000000@merge_dataset_profile")
    );
    assert!(
        found.notes.iter().any(|n| n.contains("under-predicts")),
        "{:?}",
        found.notes
    );
    // x50 now: 8 GB after headroom at 10,000 B a row is 800,000 rows.
    match found.fitting {
        Some(FittingSetting::Cap { cap, .. }) => assert_eq!(cap, 800_000),
        ref other => panic!("{other:?}"),
    }
    assert!(found.cap_is_upper_bound);
    assert!(found
        .env_snippet
        .unwrap()
        .contains("MAX_RANKING_SAMPLES=800000"));
    assert!(found
        .check_command
        .unwrap()
        .ends_with("--rows 1000000 --memory 10000000000 --max-ranking-samples 800000"));
    assert!(found
        .check_killed_command
        .unwrap()
        .ends_with("--max-ranking-samples 0"));

    // Not killed: nothing to explain, nothing calibrated.
    let none = Err("no kill in the log".to_string());
    let found = findings(
        &mut per_row(1_000, 200),
        (&run, &facts),
        10_000_000_000,
        false,
        &none,
    );
    assert!(
        !found.under_predicts && found.notes.is_empty(),
        "{:?}",
        found.notes
    );
    assert!(found.kill_observation.is_none() && !found.cap_is_upper_bound);
    // Killed above the prediction: explained, and still no cap at or above the kill.
    let ev = killed_at(1_000_000, 500_000_000);
    let found = findings(
        &mut per_row(1_000, 200),
        (&run, &facts),
        500_000_000,
        true,
        &ev,
    );
    assert!(!found.under_predicts, "{:?}", found.notes);
    match found.fitting {
        Some(FittingSetting::Cap { cap, .. }) => assert!(cap < 1_000_000),
        ref other => panic!("{other:?}"),
    }
}

#[test]
fn no_cap_shown_safe_says_how_to_measure_one() {
    let (run, facts) = run_of(1_000_000, 300, 5_000);
    // A model whose fixed answer is "no sampling" cannot overrule the kill.
    struct Stubborn(PerRow);
    impl PeakModel for Stubborn {
        fn describe(&self) -> String {
            self.0.describe()
        }
        fn shape(&self) -> ModelShape {
            self.0.shape()
        }
        fn predict(&self, s: &str, r: u64, c: u64) -> Result<PredictedPeak> {
            self.0.predict(s, r, c)
        }
        fn fitting_setting(&self, r: u64, _: u64, _: f64) -> Result<FittingSetting> {
            Ok(FittingSetting::NoSampling {
                peak: self.0.predict("optimized", r, 0)?,
            })
        }
        fn stages(&self) -> Vec<String> {
            Vec::new()
        }
        fn calibrate(&mut self, o: &[ObservedPeak], f: Option<&Path>) -> Result<()> {
            self.0.calibrate(o, f)
        }
    }
    let ev = killed_at(1_000_000, 10_000_000_000);
    let ctx = ModelContext {
        path: "model.json",
        fidelity: None,
        observed: &[],
    };
    let mut m = Stubborn(per_row(1_000, 200));
    let found =
        model_findings(&mut m, &ctx, &run, &facts, Some(10_000_000_000), true, &ev).unwrap();
    assert!(found.env_snippet.is_none() && found.check_command.is_none());
    assert!(found.no_safe_cap.unwrap().contains("cannot be shown safe"));
    assert!(found
        .measure_command
        .unwrap()
        .starts_with("oomlab sweep --rows 25000,50000,100000 --max-ranking-samples-fraction 0.25,0.6 --model reports/model-pipeline.json -- "));
    assert!(found
        .notes
        .iter()
        .any(|n| n.contains("no stage `merge_dataset_profile`")));
}

#[test]
fn a_log_of_another_shape_than_the_models_is_noted() {
    let model = per_row(1_000, 200);
    let shape = model.shape();
    // The legacy merge takes all 300 columns, v2 the 87 numeric ones: both match.
    let none = ModelColumns::default();
    for columns in [300, 87] {
        let (run, _) = run_of(1, columns, 5_000);
        assert!(shape_notes(shape, &none, &run).is_empty(), "{columns}");
    }
    let (mut run, _) = run_of(1, 312, 123_456);
    run.user_feature_columns = Some(40);
    let notes = shape_notes(shape, &none, &run);
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(
        notes[0].contains("312 dataset feature columns") && notes[0].contains("300 (87 numeric)")
    );
    assert!(notes[1].contains("40 user feature columns"));
    assert!(notes[2].contains("123,456 datasets"));
    // A model with a column term predicts at the logged count and says
    // how far outside its measured counts that is.
    let modelled = ModelColumns {
        modelled: true,
        at: 87,
        measured: vec![87, 137],
    };
    let (mut run, _) = run_of(1, 94, 5_000);
    run.samples_optimized_rows = Some(1);
    assert_eq!(logged_numeric_columns(shape, &run), Some(94));
    let notes = shape_notes(shape, &modelled, &run);
    assert!(
        notes[0].contains("every figure is at 94 numeric profile columns")
            && notes[0].contains("inside the measured range"),
        "{notes:?}"
    );
    let (run, _) = run_of(1, 200, 5_000);
    let notes = shape_notes(shape, &modelled, &run);
    assert!(
        notes[0].contains("63 above the largest measured (137)"),
        "{notes:?}"
    );
}
