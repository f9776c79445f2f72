//! Issue 25: the self-contained `report.html`, opened in a real browser.
//!
//! Each test makes a page through the real binary (a compare run's report
//! directory, `oomlab html` of the committed model, a postmortem of a killed
//! log), opens it in headless Chromium with no network
//! (`tests/browser/check_page.py` drives it over the DevTools pipe, standard
//! library only) and checks what a person would: no console errors and no
//! request, the peak on the page is the document's, hovering the timeline
//! reads out a real sample's time and RSS, and the screenshot is not blank.
//!
//! Chromium is Debian's `chromium`, installed by `.ci/run`. Without it the
//! tests fail under CI (`CI=true`) and are skipped with a printed reason
//! elsewhere.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{cache_dir, oomlab, run, scratch, u};
use serde_json::Value;

/// The browser, or `None` (skip) outside CI when it is not installed.
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("OOMLAB_CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from))
        .find(|p| p.exists());
    if found.is_none() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !ci,
            "chromium is not installed: CI must install it (.ci/run: apt-get install -y chromium)"
        );
        eprintln!("SKIPPED: chromium not found (/usr/bin/chromium; apt-get install -y chromium)");
    }
    found
}

/// What the browser saw of a page (check_page.py's JSON).
fn open(page: &Path, shot: &Path, hover: usize) -> Value {
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/check_page.py"))
        .arg(page)
        .arg("--screenshot")
        .arg(shot)
        .arg("--hover")
        .arg(hover.to_string())
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "check_page.py failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(&stdout).expect("check_page.py prints JSON");
    assert_eq!(
        seen["ready"], true,
        "the page did not finish drawing: {seen}"
    );
    assert_eq!(
        seen["errors"].as_array().map(Vec::len),
        Some(0),
        "console errors: {}",
        seen["errors"]
    );
    assert_eq!(
        seen["requests"].as_array().map(Vec::len),
        Some(0),
        "the page asked the network for: {}",
        seen["requests"]
    );
    assert_not_blank(shot);
    seen
}

/// A blank page is one or two colours; a drawn one has text, lines and fills.
fn assert_not_blank(png_path: &Path) {
    let file = std::fs::File::open(png_path).expect("screenshot written");
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    let channels = info.color_type.samples();
    assert!(
        channels >= 3,
        "unexpected PNG colour type {:?}",
        info.color_type
    );
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    let mut colours = std::collections::HashSet::new();
    let mut ink = 0usize;
    for p in &pixels {
        colours.insert((p[0], p[1], p[2]));
        if (p[0] as u32 + p[1] as u32 + p[2] as u32) < 600 {
            ink += 1;
        }
    }
    let share = ink as f64 / pixels.len() as f64;
    assert!(
        colours.len() > 50 && share > 0.01,
        "{}: looks blank ({} colours, {:.2}% of pixels not near white)",
        png_path.display(),
        colours.len(),
        share * 100.0
    );
}

/// `1,234,567` as the page writes byte counts.
fn commas(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The hover readout names a real sample: its time and bytes are one of
/// `samples` (time, bytes), and the text shows both.
fn assert_hover_reads_a_sample(seen: &Value, samples: &[(f64, u64)]) {
    let h = &seen["hover"];
    let t = h["t"]
        .as_f64()
        .unwrap_or_else(|| panic!("no time read out: {h}"));
    let bytes = h["bytes"]
        .as_u64()
        .unwrap_or_else(|| panic!("no RSS read out: {h}"));
    assert!(
        samples
            .iter()
            .any(|(st, sb)| (st - t).abs() < 1e-9 && *sb == bytes),
        "hovered ({t}, {bytes}) is not a sample of the document"
    );
    let text = h["text"].as_str().unwrap_or_default();
    assert!(
        text.contains(&format!("t {t:.3} s")) && text.contains(&commas(bytes)),
        "the readout does not show the time and bytes: {text}"
    );
    // The mouse was over the middle of the plot: not the first sample.
    let first = samples.first().map_or(0.0, |s| s.0);
    assert!(
        t > first,
        "hover read the first sample ({t}): the cursor did not move"
    );
}

#[test]
fn a_compare_report_page_shows_the_exact_peaks_and_reads_out_the_timeline() {
    let Some(_) = chromium() else { return };
    let dir = scratch("html-compare");
    let cache = cache_dir();
    let out = run(&[
        "compare",
        "--scenario",
        "scenarios/ci.toml",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--interval",
        "5ms",
        "--out",
        dir.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{out:?}");
    let page = dir.join("report.html");
    assert!(
        page.exists(),
        "compare wrote no report.html beside report.json"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let seen = open(&page, &dir.join("report.png"), 0);

    let runs = report["runs"].as_array().unwrap();
    let peaks = seen["peaks"].as_array().unwrap();
    assert_eq!(peaks.len(), runs.len(), "one peak per run: {peaks:?}");
    for r in runs {
        let shown = peaks
            .iter()
            .find(|p| p["strategy"] == r["strategy"])
            .unwrap_or_else(|| panic!("no peak shown for {}", r["strategy"]));
        assert_eq!(shown["bytes"], r["peak_bytes"], "{}", r["strategy"]);
        assert!(shown["text"]
            .as_str()
            .unwrap()
            .contains(&commas(u(&r["peak_bytes"]))));
    }
    let first = &runs[0]["timeline"];
    let samples: Vec<(f64, u64)> = first["t_s"]
        .as_array()
        .unwrap()
        .iter()
        .zip(first["rss_bytes"].as_array().unwrap())
        .map(|(t, b)| (t.as_f64().unwrap(), u(b)))
        .collect();
    assert_hover_reads_a_sample(&seen, &samples);
    assert_eq!(seen["charts"], runs.len() as u64);
    let text = seen["text"].as_str().unwrap();
    for needle in [
        "Before / after",
        "What produced these figures",
        "replay mode",
        "machine",
    ] {
        assert!(text.contains(needle), "page lacks {needle:?}");
    }

    // `oomlab html` remakes the same page from the saved report.
    let again = dir.join("again.html");
    let out = run(&[
        "html",
        dir.join("report.json").to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let a = std::fs::read_to_string(&page).unwrap();
    let b = std::fs::read_to_string(&again).unwrap();
    assert!(
        a == b,
        "oomlab html made another page from the same report.json"
    );
}

#[test]
fn a_model_page_shows_what_check_predicts_with_the_grid_and_budget() {
    let Some(_) = chromium() else { return };
    let dir = scratch("html-model");
    let page = dir.join("model.html");
    let out = run(&["html", "reports/model.json", "-o", page.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let seen = open(&page, &dir.join("model.png"), 0);
    let preds = seen["predictions"].as_array().unwrap();
    assert!(!preds.is_empty(), "no production prediction shown");
    for p in preds {
        let variant = p["variant"].as_str().unwrap();
        // The same model, the same rows: `check` must say the same peak.
        let out = oomlab()
            .args([
                "check",
                "--model",
                "reports/model.json",
                "--memory",
                "150GB",
                "--strategy",
                variant,
                "--json",
            ])
            .output()
            .unwrap();
        let check: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("check --json for {variant}: {e}: {out:?}"));
        let predicted = check["prediction"]["peak_bytes"].as_f64().unwrap();
        assert!(
            (u(&p["bytes"]) as f64 - predicted).abs() <= 1.0,
            "{variant}: page {} vs check {predicted}",
            p["bytes"]
        );
    }
    let text = seen["text"].as_str().unwrap();
    for needle in [
        "Held-out check",
        "Headroom: rows x columns against the 150 GB",
        "+100 columns",
        "x10",
        "production prediction",
        // Whose bytes, as `recommend` says it of this replay model.
        "replay mode",
        "oomlab's replay (",
        "a real pipeline's bytes differ",
    ] {
        assert!(text.contains(needle), "model page lacks {needle:?}");
    }
}

#[test]
fn a_postmortem_page_shows_the_curve_to_the_kill_the_facts_and_the_cap() {
    let Some(_) = chromium() else { return };
    let dir = scratch("html-postmortem");
    let out = run(&[
        "postmortem",
        "--log",
        "tests/fixtures/logs/legacy_killed_mid_merge.log",
        "--docker-stats",
        "tests/fixtures/logs/docker_stats.txt",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let page = dir.join("postmortem.html");
    assert!(page.exists(), "postmortem wrote no postmortem.html");
    let pm: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("postmortem.json")).unwrap())
            .unwrap();
    let seen = open(&page, &dir.join("postmortem.png"), 0);
    let peaks = seen["peaks"].as_array().unwrap();
    assert_eq!(peaks.len(), 1, "{peaks:?}");
    assert_eq!(peaks[0]["bytes"], pm["memory"]["peak_usage_bytes"]);
    // Hover reads a docker stats reading (times relative to the first).
    let stats = pm["stats"].as_array().unwrap();
    let t0 = stats[0]["t_unix"].as_f64().unwrap();
    let samples: Vec<(f64, u64)> = stats
        .iter()
        .map(|s| (s["t_unix"].as_f64().unwrap() - t0, u(&s["usage_bytes"])))
        .collect();
    assert_hover_reads_a_sample(&seen, &samples);
    let text = seen["text"].as_str().unwrap();
    // Each fact with the line it was read from, and the cap with its .env.
    for needle in [
        "8,532,146",
        "log line 72",
        "Ranking samples: 8532146 rows before optimization",
        "log line 80",
        "MAX_RANKING_SAMPLES=6800000",
        "cat >> .env << EOF",
    ] {
        assert!(text.contains(needle), "postmortem page lacks {needle:?}");
    }
}

#[test]
fn a_hostile_report_cannot_script_the_page_and_bad_files_exit_2() {
    let Some(_) = chromium() else { return };
    let dir = scratch("html-hostile");
    let mut report: Value = serde_json::from_str(
        &std::fs::read_to_string("tests/fixtures/reports/ci/report.json").unwrap(),
    )
    .unwrap();
    let evil = "</script><script>window.pwned=1</script><!--";
    report["runs"][0]["stages"][0]["name"] = Value::from(evil);
    let path = dir.join("report.json");
    std::fs::write(&path, serde_json::to_vec(&report).unwrap()).unwrap();
    let out = run(&["html", path.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let page = dir.join("report.html");
    let seen = open(&page, &dir.join("hostile.png"), 0);
    assert!(
        seen["text"].as_str().unwrap().contains(evil),
        "the stage name is shown as text"
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<script>window.pwned"), "embedded unescaped");

    for (name, bytes) in [
        ("garbage.json", &b"\x00\x01not json"[..]),
        ("other.json", &b"{\"hello\": 1}"[..]),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let out = run(&["html", p.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{name}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(name),
            "{name}: the error names the file: {err}"
        );
    }
    let out = run(&["html", "no/such/report.json"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn a_gate_page_shows_each_stage_verdict() {
    let Some(_) = chromium() else { return };
    let dir = scratch("html-gate");
    // A real `gate --json` result (tests/fixtures/gate/README.md), with one
    // stage turned into a regression as a failing gate writes it.
    let mut result: Value =
        serde_json::from_str(&std::fs::read_to_string("tests/fixtures/gate/result.json").unwrap())
            .unwrap();
    let stage = result["strategies"][0]["stages"][4].clone();
    result["strategies"][0]["stages"][4]["verdict"] = Value::from("regressed");
    result["passed"] = Value::from(false);
    result["regressed"] = serde_json::json!([{"stage": stage["stage"]}]);
    let path = dir.join("gate.json");
    std::fs::write(&path, serde_json::to_vec(&result).unwrap()).unwrap();
    let out = run(&["html", path.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let seen = open(&dir.join("gate.html"), &dir.join("gate.png"), 0);
    let text = seen["text"].as_str().unwrap();
    assert!(text.contains("Failed: 1 stage(s)"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    for st in result["strategies"][0]["stages"].as_array().unwrap() {
        let name = st["stage"].as_str().unwrap();
        let verdict = st["verdict"].as_str().unwrap().to_uppercase();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{name}\t{verdict}"))),
            "no row `{name} {verdict}` on the page"
        );
    }
    for c in result["commands"].as_array().unwrap() {
        for st in c["stages"].as_array().unwrap() {
            let name = st["stage"].as_str().unwrap();
            assert!(
                lines.iter().any(|l| l.starts_with(&format!("{name}\t"))),
                "command stage {name} missing"
            );
        }
    }
}
