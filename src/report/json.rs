//! `report.json` on disk: written atomically, read back refusing anything
//! that is not a report of this schema with a bad-input error naming the file.

use std::path::Path;

use anyhow::{Context, Result};

use super::{Report, SCHEMA_VERSION};
use crate::error::bad_input;

impl Report {
    /// Writes `report.json` atomically (temporary name, then rename).
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).context("serializing the report")?;
        write_atomically(path, &json)
    }

    /// Reads a report, refusing other schema versions with a clear message (exit 2).
    pub fn read_json(path: &Path) -> Result<Report> {
        let bytes = std::fs::read(path)
            .map_err(|e| bad_input(format!("{}: cannot read report: {e}", path.display())))?;
        Self::from_json(&bytes, &path.display().to_string())
    }

    /// Parses a report's bytes; `origin` names the file in errors. Anything
    /// that is not a report of this schema is a bad-input error (exit 2),
    /// never a panic: reports travel between machines and get hand-edited.
    pub fn from_json(bytes: &[u8], origin: &str) -> Result<Report> {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            bad_input(format!(
                "{origin}: not a valid oomlab report (JSON error: {e})"
            ))
        })?;
        let version = value.get("schema_version").and_then(|v| v.as_u64());
        if version != Some(SCHEMA_VERSION as u64) {
            return Err(bad_input(format!(
                "{origin}: report schema_version is {}, this oomlab reads version {SCHEMA_VERSION}",
                version.map_or("missing".to_string(), |v| v.to_string())
            )));
        }
        serde_json::from_value(value)
            .map_err(|e| bad_input(format!("{origin}: not a valid oomlab report: {e}")))
    }
}

/// Writes a file so that readers see either the old content or the whole new one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating directory {}", dir.display()))?;
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(bytes)?;
            // On disk before the rename: after a crash the name holds the old
            // content or the whole new one, never an empty file.
            f.sync_data()
        })
        .with_context(|| format!("writing {}", tmp.display()));
    let renamed = written.and_then(|_| {
        std::fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    });
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::*;
    use crate::sampler::{PeakSource, SamplerStats, Timeline};

    /// A small report with every kind of run, as the property tests' seed.
    fn sample_report() -> Report {
        let sizes: Sizes = serde_json::from_value(serde_json::json!({
            "sample_rows": 1000, "datasets": 10, "users": 20, "profile_columns": 5,
            "profile_numeric_columns": 3, "user_columns": 2,
        }))
        .expect("sizes");
        let stage = |name: &str, start: f64, end: f64, peak: Option<u64>| StageRecord {
            name: name.into(),
            start_s: start,
            end_s: end,
            exact_peak_bytes: peak,
            peak_source: Some(PeakSource::Vmhwm),
            rss_start_bytes: 10 << 20,
            rss_end_bytes: 20 << 20,
            sampled_peak_bytes: peak.map(|p| p - 1),
            detail: BTreeMap::from([("rows".to_string(), serde_json::json!(1000))]),
        };
        let run = |strategy: &str, status: RunStatus| RunRecord {
            strategy: strategy.into(),
            status,
            wall_s: 1.5,
            peak_bytes: Some(300 << 20),
            peak_source: Some(PeakSource::SumVmhwmUpperBound),
            pss_peak_bytes: Some(120 << 20),
            cgroup_peak_bytes: Some(310 << 20),
            sampler: Some(SamplerStats {
                samples: 150,
                cpu_s: 0.01,
                wall_s: 1.5,
                interval_ms: 10.0,
                achieved_interval_ms: 10.1,
                worst_jitter_ms: 2.0,
                oomlab_cpu_s: 0.02,
            }),
            sampled_peak_bytes: 290 << 20,
            stages: vec![
                stage("load", 0.0, 0.5, Some(100 << 20)),
                stage("merge_dataset_profile", 0.5, 1.5, Some(300 << 20)),
            ],
            logs: vec![LogLine {
                t_s: 0.1,
                level: "INFO".into(),
                message: "Ranking samples: 1000".into(),
            }],
            output: Some(OutputSummary {
                rows: 900,
                floor_bytes: Some(50 << 20),
                ..OutputSummary::default()
            }),
            stderr_tail: vec!["boom".into()],
            timeline: Timeline {
                interval_ms: 10.0,
                t_s: vec![0.0, 0.4, 0.9, 1.4],
                rss_bytes: vec![1 << 20, 100 << 20, 290 << 20, 20 << 20],
                several: None,
            },
            memory_limit: None,
            processes: Vec::new(),
            recorded: None,
        };
        Report {
            schema_version: SCHEMA_VERSION,
            oomlab_version: "0.1.0".into(),
            command: "compare".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            scenario: ScenarioInfo {
                name: "ci".into(),
                path: "scenarios/ci.toml".into(),
                description: String::new(),
                seed: 7,
                scale: 1.0,
                scaled: sizes,
                production: sizes,
                data_hash: "00".into(),
            },
            settings: Settings::default(),
            machine: MachineFacts::default(),
            allocator: "glibc".into(),
            data_generation: None,
            runs: vec![
                run("legacy", RunStatus::Completed),
                run(
                    "optimized",
                    RunStatus::Killed {
                        signal: 9,
                        stage: Some("load".into()),
                        t_s: 1.0,
                        rss_bytes: 5 << 20,
                        by: "watchdog".into(),
                    },
                ),
                run(
                    "interrupted",
                    RunStatus::Interrupted {
                        signal: 2,
                        stage: Some("merge_dataset_profile".into()),
                        t_s: 1.2,
                        rss_bytes: 200 << 20,
                    },
                ),
                run(
                    "streaming",
                    RunStatus::Failed {
                        exit_code: Some(101),
                        signal: None,
                        stage: None,
                        message: "panicked".into(),
                    },
                ),
            ],
            floor_bytes: Some(50 << 20),
            interrupted: Some(Interruption {
                signal: 2,
                signal_name: "SIGINT".into(),
                not_run: vec!["similarity".into()],
            }),
        }
    }

    /// Found by `report_edited_reports_are_a_report_or_bad_input`: a stage
    /// starting at 5.96e31 s put the peak note's anchor past `i32::MAX` pixels
    /// and the note placement panicked (`clamp` with min > max) in `oomlab
    /// plot` and in every report directory's pictures.
    #[test]
    fn absurd_times_and_sizes_draw_without_panic() {
        let mut report = sample_report();
        report.runs[0].stages[1].start_s = 5.958030845605301e31;
        check_answer(&serde_json::to_vec(&report).unwrap()).unwrap();
        for (t, bytes) in [
            (-1e300, u64::MAX),
            (1e300, 0),
            (f64::MIN_POSITIVE, u64::MAX / 2),
        ] {
            let mut report = sample_report();
            for run in &mut report.runs {
                run.wall_s = t;
                run.peak_bytes = Some(bytes);
                run.timeline.t_s.push(t);
                run.timeline.rss_bytes.push(bytes);
                for s in &mut run.stages {
                    s.end_s = t;
                    s.exact_peak_bytes = Some(bytes);
                }
            }
            check_answer(&serde_json::to_vec(&report).unwrap()).unwrap();
        }
    }

    /// Found by `report_edited_reports_are_a_report_or_bad_input` in a
    /// 10-minute run: a stage with an empty name has a 0-pixel label, and the
    /// callout placement panicked (`clamp` with min > max).
    #[test]
    fn empty_stage_names_draw_without_panic() {
        let mut report = sample_report();
        for run in &mut report.runs {
            for s in &mut run.stages {
                s.name = String::new();
                s.end_s = s.start_s;
            }
        }
        check_answer(&serde_json::to_vec(&report).unwrap()).unwrap();
    }

    /// Every place of a JSON tree, as a path of object keys and array indices.
    fn paths(v: &serde_json::Value, at: Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(at.clone());
        match v {
            serde_json::Value::Object(m) => {
                for (k, child) in m {
                    let mut p = at.clone();
                    p.push(k.clone());
                    paths(child, p, out);
                }
            }
            serde_json::Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    let mut p = at.clone();
                    p.push(i.to_string());
                    paths(child, p, out);
                }
            }
            _ => {}
        }
    }

    fn at_path<'a>(
        v: &'a mut serde_json::Value,
        path: &[String],
    ) -> Option<&'a mut serde_json::Value> {
        path.iter().try_fold(v, |v, k| match v {
            serde_json::Value::Object(m) => m.get_mut(k),
            serde_json::Value::Array(a) => a.get_mut(k.parse::<usize>().ok()?),
            _ => None,
        })
    }

    /// What every answer of the reader must look like: a report every reader
    /// of reports (summary, tables, both pictures) can render, or a bad-input
    /// error (exit 2) that names the file.
    fn check_answer(bytes: &[u8]) -> Result<(), proptest::test_runner::TestCaseError> {
        match Report::from_json(bytes, "fuzz.json") {
            Ok(report) => {
                let _ = crate::summary::render(&report);
                let _ = crate::table::before_after(&report).to_text();
                for run in &report.runs {
                    let _ = crate::table::stages(run).to_markdown();
                    let _ = crate::record::kill_sentence(run);
                }
                let opts = crate::plot::PlotOptions {
                    budget_bytes: Some(1 << 30),
                    ..crate::plot::PlotOptions::for_report(&report)
                };
                // A picture may be refused as too large (bad input), never fail otherwise.
                let drawn = |r: Result<String>| match r {
                    Err(e) if crate::error::exit_code_of(&e) != crate::error::Exit::BadInput => {
                        Err(proptest::test_runner::TestCaseError::fail(format!("{e:#}")))
                    }
                    _ => Ok(()),
                };
                if crate::plot::timeline::TimelineChart::applies(&report) {
                    drawn(crate::plot::render_svg(
                        &crate::plot::timeline::TimelineChart::new(&report, &opts),
                    ))?;
                }
                if crate::plot::peaks::PeaksChart::applies(&report) {
                    drawn(crate::plot::render_svg(
                        &crate::plot::peaks::PeaksChart::new(&report, &opts),
                    ))?;
                }
            }
            Err(e) => {
                proptest::prop_assert_eq!(
                    crate::error::exit_code_of(&e),
                    crate::error::Exit::BadInput,
                    "{}",
                    e
                );
                proptest::prop_assert!(e.to_string().starts_with("fuzz.json"), "{e}");
            }
        }
        Ok(())
    }

    /// A JSON value of any type, hostile numbers included.
    fn hostile_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            (0u64..10).prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            prop::sample::select(vec![
                -1.0,
                0.0,
                -0.0,
                1e-300,
                1e300,
                f64::MAX,
                f64::MIN_POSITIVE,
                0.5
            ])
            .prop_map(serde_json::Value::from),
            "[ -~]{0,8}".prop_map(serde_json::Value::from),
            prop::sample::select(vec![
                "completed",
                "killed",
                "failed",
                "interrupted",
                "",
                "load"
            ])
            .prop_map(serde_json::Value::from),
            Just(serde_json::json!([])),
            Just(serde_json::json!({})),
            Just(serde_json::json!([0.0, 1e300, -5.0])),
        ]
    }

    // Case counts follow PROPTEST_CASES (README, "Property tests").
    proptest::proptest! {
        #[test]
        fn report_any_bytes_are_a_report_or_bad_input(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            check_answer(&bytes)?;
        }

        #[test]
        fn report_any_json_text_is_a_report_or_bad_input(text in "[\\[\\]{}\":,0-9a-z .eE+-]{0,200}") {
            check_answer(text.as_bytes())?;
        }

        #[test]
        fn report_edited_reports_are_a_report_or_bad_input(
            edits in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), hostile_value(), 0u8..6), 1..4),
        ) {
            let mut value = serde_json::to_value(sample_report()).expect("report to JSON");
            for (at, replacement, how) in edits {
                let mut all = Vec::new();
                paths(&value, Vec::new(), &mut all);
                let path = all[at.index(all.len())].clone();
                let Some((last, parent_path)) = path.split_last() else {
                    continue;
                };
                if how == 0 {
                    // Remove the key or element.
                    match at_path(&mut value, parent_path) {
                        Some(serde_json::Value::Object(m)) => {
                            m.remove(last);
                        }
                        Some(serde_json::Value::Array(a)) => {
                            if let Ok(i) = last.parse::<usize>() {
                                if i < a.len() {
                                    a.remove(i);
                                }
                            }
                        }
                        _ => {}
                    }
                } else if how == 1 {
                    // Duplicate an array element (longer lists, unsorted times).
                    if let Some(serde_json::Value::Array(a)) = at_path(&mut value, parent_path) {
                        if let Some(v) = last.parse::<usize>().ok().and_then(|i| a.get(i).cloned()) {
                            a.push(v);
                        }
                    }
                } else if let Some(slot) = at_path(&mut value, &path) {
                    // Half the time keep the slot's type, so the edit gets past
                    // the schema and reaches the readers: 0, 1, huge, or the
                    // random number; a float NaN-free but of any magnitude.
                    *slot = match (if (2..5).contains(&how) { 2 } else { how }, &*slot, &replacement) {
                        (2, serde_json::Value::Number(n), _) if n.is_u64() => {
                            let pick = [0, 1, u64::MAX, u64::MAX / 2, replacement.as_u64().unwrap_or(7)];
                            serde_json::Value::from(pick[at.index(pick.len())])
                        }
                        (2, serde_json::Value::Number(n), _) if n.is_f64() || n.is_i64() => {
                            let pick = [0.0, -1.0, 1e-9, 1e300, -1e300, replacement.as_f64().unwrap_or(0.25)];
                            serde_json::Value::from(pick[at.index(pick.len())])
                        }
                        (2, serde_json::Value::String(_), _) => {
                            serde_json::Value::from(replacement.to_string())
                        }
                        _ => replacement,
                    };
                }
            }
            let bytes = serde_json::to_vec(&value).expect("JSON");
            check_answer(&bytes)?;
        }
    }
}
