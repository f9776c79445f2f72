//! The model on a synthetic sweep: predicting the largest stage, the held-out
//! check, reading and refusing model files.

use super::*;

#[test]
fn predicts_the_largest_stage() {
    let m = synthetic::model();
    let v = m.variant("optimized").unwrap();
    // Tiny: load (2 GiB + ...) sets the peak; production: the merge.
    let small = m.predict(v, 1000, 0);
    assert_eq!(small.peak_stage, "load");
    let big = m.predict(v, 8_532_146, 0);
    assert_eq!(big.peak_stage, "merge_dataset_profile");
    let kept = m.rows_after_dropna(8_532_146) as f64;
    let want = (1u64 << 30) as f64 + 300.0 * 8_532_146.0 + 4000.0 * kept;
    assert!((big.peak_bytes - want).abs() < 1.0);
    // Sampling lowers it; legacy ignores the cap.
    assert!(m.predict(v, 8_532_146, 2_000_000).peak_bytes < big.peak_bytes);
    let l = m.variant("legacy").unwrap();
    assert_eq!(
        m.predict(l, 8_532_146, 2_000_000).peak_bytes,
        m.predict(l, 8_532_146, 0).peak_bytes
    );
    assert_eq!(
        m.variant_for("legacy", SamplingMode::Capped).unwrap().name,
        "legacy"
    );
    assert!(m.variant_for("optimized", SamplingMode::Capped).is_err());
}

#[test]
fn calibration_matches_one_observation_exactly() {
    let mut m = synthetic::model();
    let before = m
        .predict(m.variant("optimized").unwrap(), 8_532_146, 0)
        .peak_bytes;
    let seen = ObservedPeak::parse("8532146=50GB").unwrap();
    m.calibrate("optimized", &[seen]).unwrap();
    let v = m.variant("optimized").unwrap().clone();
    let after = m.predict(&v, 8_532_146, 0).peak_bytes;
    assert!((after - 50e9).abs() < 1.0, "{after}");
    let cal = m.calibration.as_ref().unwrap();
    assert!((cal.factor - 50e9 / before).abs() < 1e-9);
    assert!((cal.observations[0].predicted_bytes - before).abs() < 1.0);
    // Two observations: relative least squares between them.
    let mut m2 = synthetic::model();
    let a = ObservedPeak::parse("8532146=50GB").unwrap();
    let b = ObservedPeak::parse("8532146=60GB").unwrap();
    m2.calibrate("optimized", &[a, b]).unwrap();
    let p = m2.predict(&v, 8_532_146, 0).peak_bytes;
    assert!(p > 50e9 && p < 60e9);
}

#[test]
fn a_kill_is_a_lower_bound_in_its_stage() {
    let o = ObservedPeak::parse("11873402:0>=150GB@merge_dataset_profile").unwrap();
    assert!(o.at_least);
    assert_eq!(o.stage.as_deref(), Some("merge_dataset_profile"));
    assert_eq!(ObservedPeak::parse(&o.to_arg()).unwrap(), o);
    for bad in ["1>=1G@", "1>=1G@a b", "1>=x"] {
        assert!(ObservedPeak::parse(bad).is_err(), "{bad}");
    }
    // Alone, the bound lifts the model until the stage reaches the limit.
    let mut m = synthetic::model();
    m.calibrate("optimized", std::slice::from_ref(&o)).unwrap();
    let v = m.variant("optimized").unwrap().clone();
    let p = m.predict(&v, 11_873_402, 0);
    let stage = p
        .stages
        .iter()
        .find(|s| s.stage == "merge_dataset_profile")
        .unwrap();
    assert!((stage.bytes - 150e9).abs() < 1e3, "{}", stage.bytes);
    // A bound that already holds changes nothing...
    let mut m = synthetic::model();
    let low = ObservedPeak::parse("11873402>=1GB").unwrap();
    m.calibrate("optimized", &[low]).unwrap();
    assert_eq!(m.calibration.as_ref().unwrap().factor, 1.0);
    // ...and one that does not wins over a smaller observed peak.
    let mut m = synthetic::model();
    let seen = ObservedPeak::parse("1000000=10GB").unwrap();
    m.calibrate("optimized", &[seen.clone(), o.clone()])
        .unwrap();
    let p = m.predict(&v, 11_873_402, 0).peak_bytes;
    assert!(p >= 150e9 - 1e3, "{p}");
    // The affine calibration keeps the bound too.
    let mut m = synthetic::model();
    m.calibrate_affine("optimized", &[seen, o], "test").unwrap();
    let p = m.predict(&v, 11_873_402, 0).peak_bytes;
    assert!(p >= 150e9 - 1e3, "{p}");
    // A stage the model does not have is named.
    let mut m = synthetic::model();
    let e = m
        .calibrate("optimized", &[ObservedPeak::parse("1>=1G@nope").unwrap()])
        .unwrap_err();
    assert!(e.to_string().contains("no stage `nope`"), "{e}");
}

#[test]
fn affine_calibration_recovers_offset_and_factor() {
    let obs: Vec<ObservedPeak> = [1.0e9f64, 2.0e9, 4.0e9]
        .iter()
        .map(|&p| ObservedPeak {
            rows_in: p as u64,
            max_ranking_samples: 0,
            peak_bytes: (1.5e9 + 1.2 * p) as u64,
            predicted_bytes: p,
            ..ObservedPeak::default()
        })
        .collect();
    let s = affine_scaling(&obs);
    assert!((s.factor - 1.2).abs() < 1e-6, "{s:?}");
    assert!((s.offset_bytes - 1.5e9).abs() < 1e3, "{s:?}");
    // One size cannot separate the two: one factor.
    let s = affine_scaling(&obs[..1]);
    assert_eq!(s.offset_bytes, 0.0);
    assert!((s.factor - 2.7).abs() < 1e-6, "{s:?}");
}

#[test]
fn model_round_trips_and_refuses_other_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.json");
    let m = synthetic::model();
    m.write(&path).unwrap();
    let back = Model::read(&path).unwrap();
    assert_eq!(back.variants.len(), 2);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"schema_version\": 1", "\"schema_version\": 99");
    std::fs::write(&path, text).unwrap();
    let e = Model::read(&path).unwrap_err();
    assert_eq!(crate::error::exit_code_of(&e), crate::error::Exit::BadInput);
    assert!(e.to_string().contains("schema_version is 99"), "{e}");
}
