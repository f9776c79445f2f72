//! Rescaling the model to peaks seen outside the replay, and the sentences
//! that say how it was rescaled.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::observed::{affine_scaling, meet_bounds, one_factor, ObservedPeak, Scaling};
use super::{Model, ModelSource, VariantModel};
use crate::error::bad_input;

/// A rescaling of the model to peaks seen outside the replay.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Calibration {
    /// Every stage's prediction is multiplied by this...
    pub factor: f64,
    /// ...and this is added to it: zero for `--observed` (a peak or two cannot
    /// tell fixed from per-row costs), fitted for a `--fidelity` result, whose
    /// pandas points at several sizes can (pandas' fixed cost, the interpreter
    /// and pyarrow's pool, is not the replay's).
    #[serde(default)]
    pub offset_bytes: f64,
    /// Where the observations came from (`--observed`, or the fidelity file).
    #[serde(default)]
    pub source: String,
    pub observations: Vec<ObservedPeak>,
}

/// What an uncalibrated model's figures are, and how to make them pandas
/// bytes (the note `recommend` and `check` print).
pub fn uncalibrated_note(model: &Model) -> String {
    if let ModelSource::Command { .. } = model.source {
        return format!(
            "answers are in {}",
            model.source.describe(model.memory_mode)
        );
    }
    format!(
        "the model is of the replay ({} memory mode); pandas in production pays more per row: calibrate with --fidelity fidelity.json (oomlab fidelity) or --observed ROWS=PEAK from a production run",
        model.memory_mode.label()
    )
}

/// The `Calibration: ...` line of `recommend` and `check` (`None` when the
/// model is uncalibrated).
pub fn calibration_line(model: &Model) -> Option<String> {
    model.calibration.as_ref().map(|c| {
        let one_factor = if c.offset_bytes.abs() < 1.0 && c.observations.len() == 1 {
            "; one observation fits one factor, which scales the fixed cost as well as the per-row cost (two observations at different sizes fit offset + factor)"
        } else {
            ""
        };
        format!(
            "Calibration: {} on every prediction (from {}{one_factor})",
            describe_calibration(c),
            c.source
        )
    })
}

/// A calibration in words: `x1.23`, or `x1.23 + 1.9 GiB`.
pub fn describe_calibration(c: &Calibration) -> String {
    if c.offset_bytes.abs() < 1.0 {
        format!("x{:.2}", c.factor)
    } else {
        format!(
            "x{:.2} {} {}",
            c.factor,
            if c.offset_bytes < 0.0 { "-" } else { "+" },
            crate::units::format_bytes(c.offset_bytes.abs() as u64)
        )
    }
}

impl Model {
    /// Rescales the model so it reproduces peaks seen elsewhere: one factor `k`
    /// on every prediction, chosen to minimise the relative error
    /// `sum((k p_i - o_i) / o_i)^2`, so a single observation is matched exactly.
    ///
    /// One factor, not refitted coefficients: a production peak or two cannot
    /// tell fixed from per-row costs, and the replay's shape (which stage peaks
    /// when) is what the sweep measured; what differs in production is mostly
    /// the cost per byte (Python objects, another allocator). The same factor
    /// applies to every variant.
    pub fn calibrate(&mut self, variant: &str, observed: &[ObservedPeak]) -> Result<()> {
        if observed.is_empty() {
            return Ok(());
        }
        let v = self.variant(variant)?.clone();
        let mut points = Vec::new();
        for o in observed {
            let p = self.uncalibrated_at(&v, o)?;
            if p <= 0.0 {
                return Err(bad_input(format!(
                    "--observed {}=...: the model predicts no memory there; cannot calibrate",
                    o.rows_in
                )));
            }
            points.push(ObservedPeak {
                predicted_bytes: p,
                ..o.clone()
            });
        }
        let factor = one_factor(points.iter().filter(|o| !o.at_least));
        let scaling = Scaling {
            factor: if factor.is_finite() { factor } else { 1.0 },
            offset_bytes: 0.0,
        };
        let scaling = meet_bounds(scaling, &points);
        self.calibration = Some(Calibration {
            factor: scaling.factor,
            offset_bytes: 0.0,
            source: "--observed".into(),
            observations: points,
        });
        Ok(())
    }

    /// The uncalibrated figure an observation is compared with: the peak of
    /// its stage when it names one, else the variant's peak (its largest stage).
    fn uncalibrated_at(&self, v: &VariantModel, o: &ObservedPeak) -> Result<f64> {
        let p = v.predict(
            o.rows_in,
            self.rows_kept(v, o.rows_in, o.max_ranking_samples),
            Scaling::IDENTITY,
        );
        match &o.stage {
            None => Ok(p.peak_bytes),
            Some(stage) => p
                .stages
                .iter()
                .find(|s| &s.stage == stage)
                .map(|s| s.bytes)
                .ok_or_else(|| {
                    bad_input(format!(
                        "--observed {}: the model of `{}` has no stage `{stage}` (it has: {})",
                        o.to_arg(),
                        v.name,
                        p.stages
                            .iter()
                            .map(|s| s.stage.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }),
        }
    }

    /// Rescales the model to peaks of the real pipeline at several sizes (a
    /// `--fidelity` result's pandas runs): `peak = offset + k x replay`, with
    /// `offset` and `k` minimising the relative error
    /// `sum(((offset + k p_i) - o_i) / o_i)^2`. Two parameters, so the pandas
    /// fixed cost does not inflate the per-row factor (one factor fitted at
    /// small sizes, where the fixed cost dominates, scaled production by
    /// about 2 on the production scenario). Falls back to [`Model::calibrate`] when the points
    /// cannot separate the two (fewer than two sizes, or a fit with k <= 0).
    pub fn calibrate_affine(
        &mut self,
        variant: &str,
        observed: &[ObservedPeak],
        source: &str,
    ) -> Result<()> {
        // Validates the observations and records them, with one factor.
        self.calibrate(variant, observed)?;
        let Some(mut calibration) = self.calibration.take() else {
            return Ok(());
        };
        // Against the stage that sets the peak at large sizes: at the small
        // sizes a fidelity run measures, a fixed-cost stage can be the largest
        // and would make the pandas per-row growth look like a huge factor.
        let v = self.variant(variant)?.clone();
        if let Some(stage) = v.fastest_stage(self.dropna_keep_ratio) {
            for o in calibration
                .observations
                .iter_mut()
                .filter(|o| o.stage.is_none() && !o.at_least)
            {
                let kept = self.rows_kept(&v, o.rows_in, o.max_ranking_samples);
                o.predicted_bytes = stage.fit.eval(o.rows_in as f64, kept as f64).max(0.0);
            }
        }
        calibration.source = source.to_string();
        let pinned: Vec<ObservedPeak> = calibration
            .observations
            .iter()
            .filter(|o| !o.at_least)
            .cloned()
            .collect();
        let scaling = meet_bounds(affine_scaling(&pinned), &calibration.observations);
        calibration.factor = scaling.factor;
        calibration.offset_bytes = scaling.offset_bytes;
        self.calibration = Some(calibration);
        Ok(())
    }

    /// How `recommend`, `check` and `postmortem` calibrate, in one place so
    /// they cannot drift apart (a postmortem prints `check` lines that must
    /// reproduce its answer): with a fidelity result's points among the
    /// observations, `offset + k x model` ([`Model::calibrate_affine`]); else
    /// the same when the observations are at two sizes or more (they tell the
    /// fixed cost from the per-row cost), one factor otherwise.
    pub fn calibrate_observed(
        &mut self,
        variant: &str,
        observations: &[ObservedPeak],
        fidelity_source: Option<&str>,
    ) -> Result<()> {
        if let Some(source) = fidelity_source {
            return self.calibrate_affine(variant, observations, source);
        }
        let mut sizes: Vec<u64> = observations.iter().map(|o| o.rows_in).collect();
        sizes.sort_unstable();
        sizes.dedup();
        if sizes.len() >= 2 {
            self.calibrate_affine(variant, observations, "--observed")
        } else {
            self.calibrate(variant, observations)
        }
    }
}
