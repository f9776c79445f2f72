//! Issue 3: `oomlab plot` re-draws a saved report's pictures.
//!
//! The fixtures under `tests/fixtures/reports/` are real reports of ci.toml
//! (see the README there): `ci` has all three strategies completed, `ci-killed`
//! has legacy killed by a 600 MiB memory limit in its dataset merge, so its
//! timeline stops part-way. Plotting reads nothing but the report, so these
//! tests need no data cache and run in well under a second each; one replays
//! ci.toml to check a fresh report directory's summary shows its pictures.

mod common;

use std::path::{Path, PathBuf};

use common::{replay, run, scratch};

/// Documented exit code for bad input (a report that cannot be used).
const EXIT_BAD_INPUT: i32 = 2;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reports")
        .join(name)
        .join("report.json")
}

fn report(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("fixture readable");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// Every stage name of every run in a report.
fn stage_names(report: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = report["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .flat_map(|r| r["stages"].as_array().expect("stages").iter())
        .map(|s| s["name"].as_str().expect("stage name").to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Width and height of a PNG, from its IHDR chunk (checking the signature).
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG signature"
    );
    assert_eq!(&bytes[12..16], b"IHDR", "IHDR is the first chunk");
    let be =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    (be(16), be(20))
}

/// Reads an SVG, checks it is one at the parse level (an `<svg` root, closed
/// at the end) and returns its text and its declared size.
fn svg(path: &Path) -> (String, (u32, u32)) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let t = text.trim();
    assert!(
        t.starts_with("<svg") || t.starts_with("<?xml"),
        "{} does not start as an SVG: {:?}",
        path.display(),
        &t[..t.len().min(60)]
    );
    assert!(t.ends_with("</svg>"), "{} is not closed", path.display());
    assert_eq!(t.matches("<svg").count(), 1, "one root element");
    let attr = |name: &str| -> u32 {
        let at = t.find(&format!(" {name}=\"")).expect("size attribute") + name.len() + 3;
        t[at..]
            .split('"')
            .next()
            .and_then(|v| v.parse().ok())
            .expect("a whole number of pixels")
    };
    let size = (attr("width"), attr("height"));
    (text, size)
}

/// Plots `report` into a fresh directory and checks every picture is there and
/// well formed; returns the directory.
fn plot_ok(name: &str, report: &Path, extra: &[&str]) -> PathBuf {
    let out = scratch(name);
    let mut args = vec![
        "plot",
        report.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = run(&args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "oomlab {args:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for pic in ["timeline", "peaks"] {
        let png_path = out.join(format!("{pic}.png"));
        let svg_path = out.join(format!("{pic}.svg"));
        // The command names what it wrote.
        assert!(stdout.contains(&*png_path.to_string_lossy()), "{stdout}");
        assert!(stdout.contains(&*svg_path.to_string_lossy()), "{stdout}");
        let png = std::fs::read(&png_path).expect("PNG written");
        let (w, h) = png_size(&png);
        // A picture, not a placeholder: room for a plot and its labels.
        assert!(w >= 600 && h >= 300, "{pic}.png is only {w}x{h}");
        // Far more bytes than an empty white image of that size compresses to.
        assert!(png.len() > 10_000, "{pic}.png is {} bytes", png.len());
        let (_, svg_size) = svg(&svg_path);
        assert_eq!(
            svg_size,
            (w, h),
            "{pic}: the SVG and the PNG are one picture"
        );
    }
    // Nothing but the pictures (temporary files are renamed away).
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .expect("out dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["peaks.png", "peaks.svg", "timeline.png", "timeline.svg"]
    );
    out
}

#[test]
fn a_saved_report_draws_every_stage_of_every_strategy() {
    let path = fixture("ci");
    let rep = report(&path);
    let names = stage_names(&rep);
    assert!(
        names.len() >= 10,
        "the fixture has all three strategies: {names:?}"
    );
    let out = plot_ok("plot-ci", &path, &[]);
    for pic in ["timeline", "peaks"] {
        let (text, _) = svg(&out.join(format!("{pic}.svg")));
        for name in &names {
            assert!(text.contains(name.as_str()), "{pic}.svg lacks stage {name}");
        }
        for strategy in ["legacy", "optimized", "streaming"] {
            assert!(text.contains(strategy), "{pic}.svg lacks {strategy}");
        }
    }
}

#[test]
fn a_killed_run_is_drawn_up_to_where_it_ended_and_marked() {
    let path = fixture("ci-killed");
    let rep = report(&path);
    let legacy = common::run_of(&rep, "legacy");
    assert_eq!(legacy["status"]["kind"], "killed", "the fixture's premise");
    let stage = legacy["status"]["stage"]
        .as_str()
        .expect("killed in a stage");
    let out = plot_ok("plot-ci-killed", &path, &[]);

    let (timeline, _) = svg(&out.join("timeline.svg"));
    for name in stage_names(&rep) {
        assert!(timeline.contains(&name), "timeline.svg lacks stage {name}");
    }
    // Where it ended: the note at the cross, the lane's last stage and the legend.
    assert!(
        timeline.contains(&format!("legacy killed (-9) by cgroup in {stage}")),
        "no note where legacy was killed"
    );
    assert!(
        timeline.contains(&format!("{stage} (killed)")),
        "lane not marked"
    );
    assert!(
        timeline.contains("memory limit 600.0 MiB"),
        "limit line not labelled"
    );
    // The completed strategy is drawn as usual, with its peak.
    assert!(
        timeline.contains("optimized peak"),
        "optimized peak not noted"
    );

    // The killed stage's bar is the sampled RSS, said so.
    let (peaks, _) = svg(&out.join("peaks.svg"));
    assert!(
        peaks.contains("sampled (killed here)"),
        "killed bar not marked"
    );
}

#[test]
fn pictures_go_beside_the_report_by_default_and_leave_it_untouched() {
    let dir = scratch("plot-beside");
    let copy = dir.join("report.json");
    std::fs::copy(fixture("ci-killed"), &copy).expect("copy fixture");
    let before = std::fs::read(&copy).expect("read");
    let output = run(&["plot", copy.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    for f in ["timeline.png", "timeline.svg", "peaks.png", "peaks.svg"] {
        assert!(dir.join(f).is_file(), "{f} not beside the report");
    }
    assert_eq!(
        std::fs::read(&copy).expect("read"),
        before,
        "report.json changed"
    );
}

#[test]
fn a_budget_is_drawn_and_a_bad_one_is_refused() {
    let out = plot_ok("plot-budget", &fixture("ci"), &["--budget", "1GiB"]);
    let (timeline, _) = svg(&out.join("timeline.svg"));
    assert!(
        timeline.contains("budget 1.00 GiB"),
        "budget line not labelled"
    );

    let output = run(&["plot", fixture("ci").to_str().unwrap(), "--budget", "lots"]);
    assert_eq!(output.status.code(), Some(EXIT_BAD_INPUT), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--budget") && stderr.contains("lots"),
        "{stderr}"
    );
}

/// Runs `oomlab plot` on a report file holding `content`; returns the exit code
/// and stderr, after checking no picture was written.
fn plot_bad(name: &str, content: &str) -> (Option<i32>, String, PathBuf) {
    let dir = scratch(name);
    let path = dir.join("report.json");
    std::fs::write(&path, content).expect("write report");
    let output = run(&["plot", path.to_str().unwrap()]);
    let files: Vec<_> = std::fs::read_dir(&dir).expect("dir").collect();
    assert_eq!(files.len(), 1, "only the bad report is there");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        path,
    )
}

#[test]
fn a_corrupt_report_is_bad_input_naming_the_file() {
    // Cut off half-way, as a copy interrupted mid-transfer leaves it.
    let text = std::fs::read_to_string(fixture("ci")).expect("fixture");
    let (code, stderr, path) = plot_bad("plot-corrupt", &text[..text.len() / 2]);
    assert_eq!(code, Some(EXIT_BAD_INPUT), "{stderr}");
    assert!(stderr.contains(&*path.to_string_lossy()), "{stderr}");
    assert!(stderr.contains("not a valid oomlab report"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Valid JSON, but not a report.
    let (code, stderr, path) = plot_bad("plot-not-a-report", "[1, 2, 3]");
    assert_eq!(code, Some(EXIT_BAD_INPUT), "{stderr}");
    assert!(stderr.contains(&*path.to_string_lossy()), "{stderr}");
}

#[test]
fn a_report_of_another_schema_version_is_bad_input_naming_both_versions() {
    let mut rep = report(&fixture("ci"));
    rep["schema_version"] = serde_json::json!(99);
    let (code, stderr, path) = plot_bad("plot-schema", &rep.to_string());
    assert_eq!(code, Some(EXIT_BAD_INPUT), "{stderr}");
    assert!(stderr.contains(&*path.to_string_lossy()), "{stderr}");
    assert!(stderr.contains("schema_version is 99"), "{stderr}");
    assert!(stderr.contains("reads version 1"), "{stderr}");
}

#[test]
fn a_missing_report_is_bad_input_naming_the_file() {
    let path = scratch("plot-missing").join("nowhere.json");
    let output = run(&["plot", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(EXIT_BAD_INPUT), "{stderr}");
    assert!(stderr.contains(&*path.to_string_lossy()), "{stderr}");
}

#[test]
fn a_replay_draws_its_pictures_and_its_summary_shows_them() {
    let (_, dir) = replay("plot-replay", "compare", &["--interval", "50ms"]);
    let summary = std::fs::read_to_string(dir.join("summary.md")).expect("summary.md");
    for pic in ["timeline", "peaks"] {
        // Shown as a PNG (any code host draws it), linking to the SVG.
        let embed = format!("[![{pic}]({pic}.png)]({pic}.svg)");
        assert!(summary.contains(&embed), "summary.md lacks {embed}");
        let png = std::fs::read(dir.join(format!("{pic}.png"))).expect("PNG beside summary");
        let (w, h) = png_size(&png);
        let (_, svg_size) = svg(&dir.join(format!("{pic}.svg")));
        assert_eq!(
            svg_size,
            (w, h),
            "{pic}: the SVG and the PNG are one picture"
        );
    }
    // The pictures come before the per-strategy details, under the table.
    let table = summary.find("## Before / after").expect("table");
    let pictures = summary.find("timeline.png").expect("picture");
    let details = summary.find("## legacy").expect("legacy section");
    assert!(table < pictures && pictures < details, "{summary}");
}
