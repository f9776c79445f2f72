//! `oomlab sweep --items ... -- CMD`: a similarity command by items, batch
//! size and top K, fitted in its own bytes; `recommend`, `check` and
//! `postmortem` answering from that model (issue 24).

mod common;

use common::{oomlab, scratch, text};

/// A stdlib-only Python command with known costs: it writes (so the pages
/// are resident) 1,000 bytes per item, `PER_ITEM_PER_BATCH` per item per
/// batch item and 12 per item per neighbour, inside its `hold` stage.
const PER_ITEM_PER_BATCH: f64 = 40.0;
const KNOWN: &str = "import sys, time\n\
n, b, k = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])\n\
print('INFO [stage] hold', flush=True)\n\
items = bytearray(b'\\x01') * (n * 1000)\n\
block = bytearray(b'\\x01') * (n * b * 40)\n\
top = bytearray(b'\\x01') * (n * k * 12)\n\
time.sleep(0.2)\n";

/// The same command ignoring its batch size.
const NO_BATCH: &str = "import sys, time\n\
n = int(sys.argv[1])\n\
print('INFO [stage] hold', flush=True)\n\
items = bytearray(b'\\x01') * (n * 2000)\n\
time.sleep(0.2)\n";

fn sweep(out: &std::path::Path, extra: &[&str], command: &[&str]) -> std::process::Output {
    let mut args = vec!["sweep", "--quiet", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(command);
    oomlab().args(&args).output().expect("oomlab runs")
}

#[test]
fn a_known_per_item_per_batch_cost_is_recovered_and_answers_in_its_bytes() {
    let out = scratch("similarity-command-known");
    let run = sweep(
        &out,
        &[
            "--items",
            "2000,4000,8000,16000",
            "--batch-sizes",
            "40,10,100",
            "--top-k",
            "100,50",
        ],
        &["python3", "-c", KNOWN, "{items}", "{batch_size}", "{top_k}"],
    );
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let path = out.join("model.json");
    let model: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(model["kind"], "similarity-command");
    let fit = &model["fit"];
    let per_batch = fit["bytes_per_item_per_batch_item"].as_f64().unwrap();
    let err = (per_batch - PER_ITEM_PER_BATCH).abs() / PER_ITEM_PER_BATCH;
    assert!(
        err <= 0.02,
        "per item per batch item {per_batch:.2} B against {PER_ITEM_PER_BATCH} ({:.1}% off)\n{}",
        err * 100.0,
        text(&run)
    );
    let per_k = fit["bytes_per_item_per_neighbour"].as_f64().unwrap();
    assert!(
        (per_k - 12.0).abs() / 12.0 <= 0.05,
        "{per_k}\n{}",
        text(&run)
    );
    assert_eq!(fit["quadratic"], false, "{}", text(&run));
    let held = model["held_out"]["error_pct"].as_f64().unwrap();
    assert!(held.abs() <= 5.0, "held-out error {held}%\n{}", text(&run));
    let said = text(&run);
    assert!(said.contains("per item per batch item"), "{said}");
    assert!(said.contains("predicting 16,000 items"), "{said}");

    // recommend: the knobs as .env lines, how far items grow, in its bytes.
    let rec = oomlab()
        .args(["recommend", "--model", path.to_str().unwrap()])
        .args(["--memory", "2GiB", "--items", "500000"])
        .output()
        .unwrap();
    let said = text(&rec);
    assert_eq!(rec.status.code(), Some(0), "{said}");
    assert!(said.contains("the command's own bytes"), "{said}");
    assert!(
        said.contains("SIMILARITY_MICRO_BATCH_SIZE=10\nSIMILARITY_TOP_K=100"),
        "{said}"
    );
    assert!(said.contains("Items can grow to"), "{said}");

    // check: the planned batch size does not fit; the one that does is named.
    let check = oomlab()
        .args(["check", "--model", path.to_str().unwrap()])
        .args(["--memory", "2GiB", "--items", "500000"])
        .args(["--similarity-micro-batch-size", "100"])
        .env_remove("SIMILARITY_TOP_K")
        .output()
        .unwrap();
    let said = text(&check);
    assert_eq!(check.status.code(), Some(1), "{said}");
    assert!(said.contains("DOES NOT FIT: 500,000 items"), "{said}");
    assert!(
        said.contains("would fit: SIMILARITY_MICRO_BATCH_SIZE=10"),
        "{said}"
    );
    let fits = oomlab()
        .args(["check", "--model", path.to_str().unwrap()])
        .args(["--memory", "64GiB", "--items", "500000"])
        .env("SIMILARITY_MICRO_BATCH_SIZE", "100")
        .output()
        .unwrap();
    assert_eq!(fits.status.code(), Some(0), "{}", text(&fits));
    assert!(text(&fits).contains("SIMILARITY_MICRO_BATCH_SIZE=100 (env)"));

    // postmortem: a kill at B=40, K=100 under 2 GiB calibrates the model
    // up (it predicted less) and never advises the killed knobs.
    let pm_out = scratch("similarity-command-postmortem");
    let log = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/logs/similarity_killed.log");
    let pm = oomlab()
        .args(["postmortem", "--log", log.to_str().unwrap()])
        .args(["--memory-limit", "2GiB", "--model", path.to_str().unwrap()])
        .args(["--out", pm_out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(pm.status.code(), Some(0), "{}", text(&pm));
    let found: serde_json::Value =
        serde_json::from_slice(&std::fs::read(pm_out.join("postmortem.json")).unwrap()).unwrap();
    let s = &found["similarity"];
    assert_eq!(s["run"]["items"], 500000, "{s}");
    assert_eq!(s["run"]["micro_batch_size"], 40, "{s}");
    assert!(s["factor"].as_f64().unwrap() > 1.0, "{s}");
    let env = s["env_snippet"].as_str().expect("knobs advised");
    assert!(
        !env.contains("SIMILARITY_MICRO_BATCH_SIZE=40\nSIMILARITY_TOP_K=100"),
        "{env}"
    );
    assert!(
        text(&pm).contains("Killed in item-item similarity"),
        "{}",
        text(&pm)
    );
}

#[test]
fn a_knob_grid_that_does_not_change_the_peak_is_refused_naming_it() {
    let out = scratch("similarity-command-unused");
    let run = sweep(
        &out,
        &["--items", "2000,4000,8000", "--batch-sizes", "10,100"],
        &["python3", "-c", NO_BATCH, "{items}"],
    );
    let said = text(&run);
    assert_eq!(run.status.code(), Some(2), "{said}");
    assert!(said.contains("--batch-sizes"), "{said}");
    assert!(said.contains("{batch_size} is unused"), "{said}");
    assert!(!out.join("model.json").exists());
    // A ranking placeholder in a similarity sweep is bad input too.
    let run = sweep(
        &out,
        &["--items", "1,2,3"],
        &["python3", "-c", "1", "{rows}"],
    );
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    assert!(text(&run).contains("{rows}"), "{}", text(&run));
}

/// The bundled numpy reference, swept as a team's command on the bundled
/// similarity scenario's vectors: the old code's full matrix gets its
/// items² term, the micro-batched code does not, both hold out well.
#[test]
fn the_numpy_reference_sweeps_old_quadratic_and_new_linear() {
    let reference =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/pandas/similarity.py");
    let reference = reference.to_str().unwrap();
    let cache = common::cache();
    for (strategy, extra, quadratic) in [
        ("old", vec![], true),
        ("new", vec!["--batch-sizes", "20,100"], false),
    ] {
        let out = scratch(&format!("similarity-command-numpy-{strategy}"));
        let mut flags = vec![
            "--items",
            "2000,3000,4000,6000",
            "--cache-dir",
            cache.as_str(),
            "--stage-pattern",
            r"^INFO \[stage\] (\S+)$",
        ];
        flags.extend(extra);
        let run = sweep(
            &out,
            &flags,
            &[
                "python3",
                reference,
                "--strategy",
                strategy,
                "--data-dir",
                "{data_dir}",
                "--micro-batch-size",
                "{batch_size}",
            ],
        );
        assert_eq!(run.status.code(), Some(0), "{}", text(&run));
        let model: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("model.json")).unwrap()).unwrap();
        assert_eq!(model["fit"]["quadratic"], quadratic, "{}", text(&run));
        assert!(
            model["numpy"].as_str().is_some_and(|v| v.contains('.')),
            "{}",
            text(&run)
        );
        let held = model["held_out"]["error_pct"].as_f64().unwrap();
        assert!(
            held.abs() <= 10.0,
            "{strategy}: held-out {held}%\n{}",
            text(&run)
        );
    }
}
