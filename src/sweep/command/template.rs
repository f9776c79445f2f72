//! The command line a sweep point runs: its placeholders (`{rows}`,
//! `{data_dir}`, ...) and where they are substituted, the row list as given,
//! and the Python and pandas versions the command printed about itself.

use std::ffi::OsString;
use std::path::Path;

use anyhow::Result;

use crate::error::bad_input;

/// The placeholders substituted into a command's arguments.
pub const PLACEHOLDERS: [&str; 5] = [
    "{rows}",
    "{scale}",
    "{data_dir}",
    "{max_ranking_samples}",
    "{columns}",
];

/// Whether the command needs the scenario's data generated: an argument
/// names `{data_dir}`, or the caller asked for it (`$OOMLAB_DATA_DIR`).
pub fn needs_data(template: &[OsString], generate_data: bool) -> bool {
    generate_data
        || template
            .iter()
            .filter_map(|a| a.to_str())
            .any(|a| a.contains("{data_dir}"))
}

/// `--rows 100000,200000,400000` (underscores and thousands commas inside a
/// number are not accepted here: the list is comma-separated).
pub fn parse_rows(text: &str) -> Result<Vec<u64>> {
    text.split(',')
        .map(|t| {
            t.trim().replace('_', "").parse::<u64>().map_err(|_| {
                bad_input(format!(
                    "--rows {text}: `{}` is not a whole number of rows (expected a comma-separated list such as 100000,200000,400000)",
                    t.trim()
                ))
            })
        })
        .collect()
}

/// The argv of one run: every placeholder replaced (`{columns}` needs a
/// known column count: the sweep's, or the scenario's).
pub fn substitute(
    template: &[OsString],
    (rows, scale, columns): (u64, f64, Option<u64>),
    data_dir: Option<&Path>,
    cap: u64,
) -> Result<Vec<OsString>> {
    template
        .iter()
        .map(|arg| {
            let Some(text) = arg.to_str() else {
                return Ok(arg.clone());
            };
            if text.contains("{data_dir}") && data_dir.is_none() {
                return Err(bad_input(format!(
                    "sweep -- CMD: argument `{text}` names {{data_dir}}, but no data was generated (internal: data_dir missing)"
                )));
            }
            if text.contains("{columns}") && columns.is_none() {
                return Err(bad_input(format!(
                    "argument `{text}` names {{columns}}, but no scenario says how many numeric profile columns there are (give --scenario)"
                )));
            }
            let dir = data_dir.map(|d| d.display().to_string()).unwrap_or_default();
            Ok(OsString::from(
                text.replace("{rows}", &rows.to_string())
                    .replace("{scale}", &scale.to_string())
                    .replace("{data_dir}", &dir)
                    .replace("{max_ranking_samples}", &cap.to_string())
                    .replace("{columns}", &columns.unwrap_or(0).to_string()),
            ))
        })
        .collect()
}

/// Whether any argument names a placeholder.
pub fn uses_placeholders(template: &[OsString]) -> bool {
    template
        .iter()
        .filter_map(|a| a.to_str())
        .any(|a| PLACEHOLDERS.iter().any(|p| a.contains(p)))
}

/// The Python and pandas versions a command printed (`pandas 2.3.3`,
/// `pandas==3.0.1`, `Python 3.11.7`), searched in its saved output; the
/// sweep's model and the command gate's baseline both record them.
pub fn versions(dir: &Path) -> (Option<String>, Option<String>) {
    let text = banner(dir);
    (found(&text, "python"), found(&text, "pandas"))
}

/// The version of `name` (`pyarrow`, ...) a command printed in the first
/// 64 KiB of its saved output: what a hint about that library stands on.
pub fn printed_version(dir: &Path, name: &'static str) -> Option<String> {
    found(&banner(dir), name)
}

/// The first 64 KiB of a run's saved stdout and stderr: a banner, if any.
fn banner(dir: &Path) -> String {
    let mut text = String::new();
    for log in ["stdout.log", "stderr.log"] {
        if let Ok(bytes) = std::fs::read(dir.join(log)) {
            text.push_str(&String::from_utf8_lossy(
                &bytes[..bytes.len().min(64 << 10)],
            ));
        }
    }
    text
}

fn found(text: &str, name: &'static str) -> Option<String> {
    let re = regex_lite_version(name);
    text.lines().find_map(&re)
}

/// A finder of `<name> <version>` (case-insensitive, `=`, `:` or `v` allowed
/// between) in a line.
pub(super) fn regex_lite_version(name: &'static str) -> impl Fn(&str) -> Option<String> {
    move |line: &str| {
        let lower = line.to_ascii_lowercase();
        let at = lower.find(name)? + name.len();
        let rest = line[at..].trim_start_matches([' ', '=', ':', 'v']);
        let version: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        (version.contains('.') && version.starts_with(|c: char| c.is_ascii_digit()))
            .then(|| version.trim_end_matches('.').to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_substituted_everywhere() {
        let t: Vec<OsString> = [
            "py",
            "--rows={rows}",
            "{scale}",
            "--d",
            "{data_dir}/x",
            "{max_ranking_samples}",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let got = substitute(&t, (1000, 0.5, Some(87)), Some(Path::new("/tmp/d")), 7).unwrap();
        let got: Vec<String> = got
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(got, ["py", "--rows=1000", "0.5", "--d", "/tmp/d/x", "7"]);
        assert!(uses_placeholders(&t));
        assert!(!uses_placeholders(&[
            OsString::from("python3"),
            OsString::from("x.py")
        ]));
    }

    #[test]
    fn versions_are_read_from_a_banner() {
        let f = regex_lite_version("pandas");
        assert_eq!(
            f("INFO python 3.11.7 pandas 2.3.3").as_deref(),
            Some("2.3.3")
        );
        assert_eq!(f("pandas==3.0.1").as_deref(), Some("3.0.1"));
        assert_eq!(f("using Pandas: v3.1.0.").as_deref(), Some("3.1.0"));
        assert_eq!(f("pandas is fun"), None);
    }
}
