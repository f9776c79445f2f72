//! Reading a scenario file and checking it: every complaint names the file,
//! the key and what was expected.

use std::path::Path;

use anyhow::Result;

use super::{
    bundled, DatasetProfile, LoadedScenario, RankingSamples, Scenario, UserFeatures, BUNDLED,
    DEFAULT_SCENARIO,
};
use crate::error::bad_input;

impl Scenario {
    /// Loads and validates a scenario file.
    pub fn load(path: &Path) -> Result<LoadedScenario> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(_) if !path.exists() && bundled(path).is_some() => {
                bundled(path).unwrap_or_default().to_string()
            }
            Err(e) => {
                return Err(bad_input(format!(
                    "{}: cannot read scenario file: {e} (expected a TOML file such as {DEFAULT_SCENARIO}, or a bundled scenario's name: {})",
                    path.display(),
                    BUNDLED.map(|(n, _)| n).join(", ")
                )))
            }
        };
        let scenario = Self::parse(&text, &path.display().to_string())?;
        Ok(LoadedScenario {
            path: path.to_path_buf(),
            scenario,
        })
    }

    /// Parses and validates scenario text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Scenario> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| {
            let key = e
                .message()
                .split('`')
                .nth(1)
                .map(|k| format!(" key `{k}`:"))
                .unwrap_or_default();
            bad_input(format!("{origin}:{} {}", key, e.to_string().trim_end()))
        })?;
        scenario.validate(origin)?;
        Ok(scenario)
    }

    pub(super) fn validate(&self, origin: &str) -> Result<()> {
        let err = |key: &str, expected: &str, got: String| {
            bad_input(format!(
                "{origin}: key `{key}`: expected {expected}, got {got}"
            ))
        };
        if self.name.trim().is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(err(
                "name",
                "a non-empty name of letters, digits, '-' or '_'",
                format!("{:?}", self.name),
            ));
        }
        let positive = |key: &str, v: i64, max: i64| {
            if v < 1 || v > max {
                Err(err(
                    key,
                    &format!("a positive integer no larger than {max}"),
                    v.to_string(),
                ))
            } else {
                Ok(())
            }
        };
        if let Some(sim) = &self.similarity {
            if self.ranking_samples != RankingSamples::default()
                || self.dataset_profile != DatasetProfile::default()
                || self.user_features != UserFeatures::default()
            {
                return Err(err(
                    "similarity",
                    "either a [similarity] section or the ranking sections, not both",
                    "both".into(),
                ));
            }
            positive("similarity.items", sim.items, 100_000_000)?;
            positive("similarity.dimension", sim.dimension, 100_000)?;
            positive(
                "similarity.micro_batch_size",
                sim.micro_batch_size,
                1_000_000,
            )?;
            positive("similarity.top_k", sim.top_k, 1_000_000)?;
            return Ok(());
        }
        positive(
            "ranking_samples.rows",
            self.ranking_samples.rows,
            4_000_000_000,
        )?;
        positive(
            "dataset_profile.rows",
            self.dataset_profile.rows,
            1_000_000_000,
        )?;
        positive("user_features.rows", self.user_features.rows, 1_000_000_000)?;
        positive("user_features.columns", self.user_features.columns, 10_000)?;
        positive(
            "ranking_samples.request_id_length",
            self.ranking_samples.request_id_length,
            256,
        )?;
        let share = self.ranking_samples.label_null_share;
        if !(0.0..0.95).contains(&share) {
            return Err(err(
                "ranking_samples.label_null_share",
                "a share in [0, 0.95)",
                share.to_string(),
            ));
        }
        for (key, v) in [
            (
                "ranking_samples.dataset_zipf_exponent",
                self.ranking_samples.dataset_zipf_exponent,
            ),
            (
                "ranking_samples.user_zipf_exponent",
                self.ranking_samples.user_zipf_exponent,
            ),
        ] {
            if !(0.0..=5.0).contains(&v) {
                return Err(err(key, "an exponent in [0, 5]", v.to_string()));
            }
        }
        if self.dataset_profile.columns.is_empty() {
            return Err(err(
                "dataset_profile.columns",
                "at least one column group",
                "none".into(),
            ));
        }
        for (i, group) in self.dataset_profile.columns.iter().enumerate() {
            let key = |k: &str| format!("dataset_profile.columns[{i}].{k}");
            positive(&key("count"), group.count, 10_000)?;
            if group.kind.is_numeric() {
                if group.length.is_some() || group.distinct.is_some() {
                    return Err(err(
                        &key("length"),
                        "no `length`/`distinct` on a numeric column group",
                        format!("{:?}", group.kind),
                    ));
                }
                continue;
            }
            let [lo, hi] = group.length.unwrap_or([8, 32]);
            if lo < 1 || hi < lo || hi > 4096 {
                return Err(err(
                    &key("length"),
                    "[min, max] with 1 <= min <= max <= 4096",
                    format!("[{lo}, {hi}]"),
                ));
            }
            positive(&key("distinct"), group.distinct.unwrap_or(100), 100_000_000)?;
        }
        Ok(())
    }
}

/// Checks a `--scale` value: a positive finite factor.
pub fn validate_scale(scale: f64) -> Result<f64> {
    if scale.is_finite() && scale > 0.0 && scale <= 100.0 {
        Ok(scale)
    } else {
        Err(bad_input(format!(
            "--scale {scale}: expected a factor in (0, 100], e.g. 0.01 for 1% of production rows"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Workload;

    const GOOD: &str = r#"
name = "t"
seed = 1
[ranking_samples]
rows = 1000
[dataset_profile]
rows = 50
columns = [{ kind = "float", count = 3 }, { kind = "string", count = 2, length = [4, 20], distinct = 10 }]
[user_features]
rows = 20
columns = 12
"#;

    #[test]
    fn parses_and_scales() {
        let s = Scenario::parse(GOOD, "t.toml").unwrap();
        let sizes = s.sizes(0.5);
        assert_eq!(sizes.sample_rows, 500);
        assert_eq!(sizes.datasets, 50);
        assert_eq!(sizes.profile_columns, 5);
        assert_eq!(sizes.profile_numeric_columns, 3);
    }

    fn error_of(text: &str) -> String {
        let e = Scenario::parse(text, "bad.toml").unwrap_err();
        assert_eq!(crate::error::exit_code_of(&e), crate::error::Exit::BadInput);
        e.to_string()
    }

    #[test]
    fn similarity_scenarios_stand_alone() {
        let s = Scenario::parse(
            "name = \"sim\"\nseed = 1\n[similarity]\nitems = 500000\ndimension = 64\n",
            "sim.toml",
        )
        .unwrap();
        assert_eq!(s.workload(), Workload::Similarity);
        assert_eq!(s.sizes(0.01).items, 5000);
        assert_eq!(s.sizes(0.01).sample_rows, 0);
        let e = error_of("name = \"sim\"\nseed = 1\n[similarity]\nitems = -1\ndimension = 64\n");
        assert!(e.contains("similarity.items"), "{e}");
    }

    #[test]
    fn names_file_and_key() {
        let e = error_of(&GOOD.replace("rows = 1000", "rows = -5"));
        assert!(
            e.contains("bad.toml") && e.contains("ranking_samples.rows") && e.contains("-5"),
            "{e}"
        );
        let e = error_of(&GOOD.replace("rows = 1000", "rowz = 1000"));
        assert!(e.contains("bad.toml") && e.contains("rowz"), "{e}");
        let e = error_of(&GOOD.replace("\"float\"", "\"blob\""));
        assert!(e.contains("bad.toml") && e.contains("blob"), "{e}");
        let e = error_of(&GOOD.replace(
            "[user_features]",
            "[similarity]\nitems = 5\ndimension = 3\n[user_features]",
        ));
        assert!(e.contains("not both"), "{e}");
        let e = error_of(&GOOD.replace("length = [4, 20]", "length = [20, 4]"));
        assert!(e.contains("dataset_profile.columns[1].length"), "{e}");
    }

    /// What every answer of the parser must look like: a scenario whose sizes
    /// and preflight estimate can be computed at any valid scale, or a
    /// bad-input error (exit 2) that names the file.
    fn check_answer(text: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        match Scenario::parse(text, "fuzz.toml") {
            Ok(s) => {
                for scale in [1e-9, 0.001, 1.0, 100.0] {
                    let sizes = s.sizes(scale);
                    for strategy in [
                        "legacy",
                        "optimized",
                        "streaming",
                        crate::strategy::GENERATE,
                    ] {
                        let _ = crate::preflight::conservative(&s, &sizes, strategy, 0, None);
                        let _ = crate::preflight::conservative(&s, &sizes, strategy, 7, None);
                    }
                }
            }
            Err(e) => {
                proptest::prop_assert_eq!(
                    crate::error::exit_code_of(&e),
                    crate::error::Exit::BadInput,
                    "{}",
                    e
                );
                proptest::prop_assert!(e.to_string().starts_with("fuzz.toml"), "{e}");
            }
        }
        Ok(())
    }

    /// A TOML value of any type a scenario key might be given, hostile ones included.
    fn value() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let scalar = prop_oneof![
            any::<i64>().prop_map(|v| v.to_string()),
            (-5i64..300_000).prop_map(|v| v.to_string()),
            any::<f64>().prop_map(|v| format!("{v:?}")),
            prop::sample::select(vec![
                "nan",
                "-nan",
                "inf",
                "-inf",
                "0.0",
                "-0.0",
                "1e308",
                "true",
                "false",
                "1_000_000",
                "0x10",
                "\"\"",
                "\"a b\"",
                "\"float\"",
                "\"string\"",
                "\"categorical\"",
                "\"integer\"",
                "\"blob\"",
                "1979-05-27",
                "[]",
                "{}",
                "9223372036854775808",
                "-9223372036854775809",
            ])
            .prop_map(str::to_string),
            "\"[ -~]{0,12}\"".prop_map(|s| s.replace('\\', "")),
        ];
        let group = (
            prop::sample::select(vec!["float", "integer", "string", "categorical", "x"]),
            scalar.clone(),
            proptest::option::of((scalar.clone(), scalar.clone())),
            proptest::option::of(scalar.clone()),
        )
            .prop_map(|(kind, count, length, distinct)| {
                let mut g = format!("{{ kind = \"{kind}\", count = {count}");
                if let Some((lo, hi)) = length {
                    g += &format!(", length = [{lo}, {hi}]");
                }
                if let Some(d) = distinct {
                    g += &format!(", distinct = {d}");
                }
                g + " }"
            });
        prop_oneof![
            4 => scalar,
            2 => prop::collection::vec(group, 0..4).prop_map(|g| format!("[{}]", g.join(", "))),
        ]
    }

    /// One line of a TOML-ish scenario: a known or unknown section, a known or
    /// unknown key with any value, or junk.
    fn line() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let section = prop::sample::select(vec![
            "[ranking_samples]",
            "[dataset_profile]",
            "[user_features]",
            "[similarity]",
            "[scaling]",
            "[bogus]",
            "[[dataset_profile.columns]]",
            "[ranking_samples",
        ]);
        let key = prop::sample::select(vec![
            "name",
            "seed",
            "description",
            "rows",
            "columns",
            "label_null_share",
            "dataset_zipf_exponent",
            "user_zipf_exponent",
            "request_id_length",
            "items",
            "dimension",
            "micro_batch_size",
            "top_k",
            "scale_pools",
            "kind",
            "count",
            "length",
            "distinct",
            "rowz",
        ]);
        prop_oneof![
            2 => section.prop_map(str::to_string),
            6 => (key, value()).prop_map(|(k, v)| format!("{k} = {v}")),
            1 => "[ -~]{0,30}",
        ]
    }

    // Case counts follow PROPTEST_CASES (README, "Property tests").
    proptest::proptest! {
        #[test]
        fn scenario_any_text_is_ok_or_bad_input(text in "(?s).{0,400}") {
            check_answer(&text)?;
        }

        #[test]
        fn scenario_toml_ish_lines_are_ok_or_bad_input(
            name in proptest::sample::select(vec!["t", "", "a b", "ü", "x-1_2"]),
            seed in proptest::sample::select(vec!["1", "-1", "18446744073709551615", "1.5", "\"7\""]),
            lines in proptest::collection::vec(line(), 0..24),
        ) {
            let text = format!("name = \"{name}\"\nseed = {seed}\n{}\n", lines.join("\n"));
            check_answer(&text)?;
        }

        #[test]
        fn scenario_edited_bundled_files_are_ok_or_bad_input(
            file in 0usize..3,
            edits in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), value()), 1..4),
        ) {
            let text = [GOOD, include_str!("../../scenarios/ci.toml"), include_str!("../../scenarios/similarity.toml")][file];
            // Replace the value of a few `key = value` lines (or parts of
            // inline tables) with hostile values.
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            for (at, v) in edits {
                let candidates: Vec<usize> = (0..lines.len()).filter(|i| lines[*i].contains('=')).collect();
                if candidates.is_empty() {
                    break;
                }
                let i = candidates[at.index(candidates.len())];
                let eq = lines[i].find('=').unwrap_or(0);
                let end = lines[i][eq..].find([',', '}']).map_or(lines[i].len(), |e| eq + e);
                lines[i] = format!("{}= {v}{}", &lines[i][..eq], &lines[i][end..]);
            }
            check_answer(&lines.join("\n"))?;
        }
    }
}
