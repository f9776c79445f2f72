//! `oomlab sweep --emit kubernetes`: the sweep written as Indexed Jobs, read
//! back into the typed Kubernetes objects (issue 19).

mod common;

use std::collections::BTreeMap;

use common::{oomlab, scratch, text};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::List;

/// Emits, checks exit 0, and parses the manifest back into typed Jobs.
fn emit(args: &[&str]) -> Vec<Job> {
    let out = oomlab()
        .args(["sweep", "--emit", "kubernetes"])
        .args(args)
        .env_remove("OOMLAB_MODEL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let list: List<Job> = serde_json::from_slice(&out.stdout).expect("a typed JobList");
    list.items
}

/// A Job's pods: completion index -> (argv after `oomlab`, memory limit).
fn pods(job: &Job) -> BTreeMap<usize, (Vec<String>, String)> {
    let spec = job.spec.as_ref().unwrap();
    assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!(spec.backoff_limit_per_index, Some(0));
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let c = &pod.containers[0];
    let limit = c.resources.as_ref().unwrap().limits.as_ref().unwrap()["memory"]
        .0
        .clone();
    let request = &c.resources.as_ref().unwrap().requests.as_ref().unwrap()["memory"].0;
    assert_eq!(&limit, request, "requested as limited");
    let command = c.command.as_ref().unwrap();
    assert_eq!(command[..2], ["/bin/sh".to_string(), "-c".to_string()]);
    let mounts: Vec<&str> = c
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.mount_path.as_str())
        .collect();
    assert!(mounts.contains(&"/results"));
    // The script's branches, one per index.
    let mut out = BTreeMap::new();
    for line in command[2].lines() {
        let Some((index, rest)) = line.split_once(") exec oomlab ") else {
            continue;
        };
        let argv = shell_words(rest.trim_end_matches(" ;;"));
        out.insert(index.parse::<usize>().unwrap(), (argv, limit.clone()));
    }
    // The annotation lists the same runs.
    let listed: Vec<serde_json::Value> =
        serde_json::from_str(&job.metadata.annotations.as_ref().unwrap()["oomlab.dev/runs"])
            .unwrap();
    assert_eq!(listed.len(), out.len());
    for (i, run) in listed.iter().enumerate() {
        assert_eq!(run["index"], i);
        assert_eq!(run["args"][0], out[&i].0[0]);
    }
    assert_eq!(spec.completions, Some(out.len() as i32));
    out
}

/// Splits a line as `sh` does the emitter's quoting: words apart at
/// spaces, `'...'` quoted, `\x` escaped.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    w.push(q);
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

fn flag<'a>(argv: &'a [String], name: &str) -> &'a str {
    let at = argv
        .iter()
        .position(|a| a == name)
        .unwrap_or_else(|| panic!("{name} in {argv:?}"));
    &argv[at + 1]
}

#[test]
fn a_budget_gives_one_job_with_an_index_per_run() {
    let jobs = emit(&[
        "--scenario",
        "ci",
        "--scales",
        "0.25,0.5,1",
        "--pod-memory",
        "2GiB",
        "--namespace",
        "ml",
        "--node-selector",
        "pool=highmem",
        "--image",
        "registry.example/oomlab:0.1.0",
        "--out",
        "reports/runs/sweep-ci-k8s",
    ]);
    assert_eq!(jobs.len(), 1, "one limit, one Job");
    let job = &jobs[0];
    assert_eq!(job.metadata.namespace.as_deref(), Some("ml"));
    let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(pod.node_selector.as_ref().unwrap()["pool"], "highmem");
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some("registry.example/oomlab:0.1.0")
    );
    let runs = pods(job);
    // 3 scales x (unsampled + 2 fractions x 2 ways of sampling).
    assert_eq!(runs.len(), 15);
    let mut seen = Vec::new();
    for (argv, limit) in runs.values() {
        assert_eq!(limit, "2Gi");
        assert_eq!(argv[0], "run");
        assert_eq!(flag(argv, "--scenario"), "ci");
        let (scale, cap, sampling) = (
            flag(argv, "--scale"),
            flag(argv, "--max-ranking-samples"),
            flag(argv, "--sampling"),
        );
        let out = flag(argv, "--out");
        let dir = if cap == "0" {
            "no-sampling".to_string()
        } else {
            assert_eq!(flag(argv, "--strategy"), "optimized,streaming");
            let fraction = if out.ends_with("0.25") { "0.25" } else { "0.6" };
            format!("{sampling}-{fraction}")
        };
        assert_eq!(
            out,
            format!("/results/sweep-ci-k8s/scale-{scale}/{dir}"),
            "{argv:?}"
        );
        if cap == "0" {
            assert_eq!(flag(argv, "--strategy"), "legacy,optimized,streaming");
        }
        seen.push(out.to_string());
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 15, "every run its own directory");
}

#[test]
fn per_run_limits_come_from_the_model_one_job_per_limit() {
    let jobs = emit(&[
        "--scenario",
        "production",
        "--scales",
        "0.02,0.04,0.08,1",
        "--max-ranking-samples-fraction",
        "none",
        "--limits-model",
        "production",
    ]);
    let mut by_scale = BTreeMap::new();
    let mut total = 0;
    for job in &jobs {
        let runs = pods(job);
        total += runs.len();
        for (argv, limit) in runs.values() {
            by_scale.insert(flag(argv, "--scale").to_string(), limit.clone());
        }
    }
    assert_eq!(total, 4);
    assert_eq!(jobs.len(), 4, "{by_scale:?}");
    // Legacy at production size: about 68 GiB predicted, plus 20% headroom.
    assert_eq!(by_scale["1"], "85Gi", "{by_scale:?}");
    let bytes = |q: &str| -> u64 {
        match q.strip_suffix("Gi") {
            Some(g) => g.parse::<u64>().unwrap() << 30,
            None => q.trim_end_matches("Mi").parse::<u64>().unwrap() << 20,
        }
    };
    assert!(bytes(&by_scale["0.02"]) < bytes(&by_scale["0.04"]));
    assert!(bytes(&by_scale["0.04"]) < bytes(&by_scale["0.08"]));
    // A model of another scenario cannot set limits: exit 2, saying so.
    let refused = oomlab()
        .args([
            "sweep",
            "--scenario",
            "ci",
            "--scales",
            "0.25,0.5,1",
            "--emit",
            "kubernetes",
            "--limits-model",
            "production",
        ])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("--pod-memory"));
}

/// A command sweep's pods run `oomlab sweep --point INDEX`; run here, those
/// points are reports `oomlab model fit` fits (the round trip, minus the
/// cluster).
#[test]
fn a_command_sweeps_pods_record_points_model_fit_reads() {
    let script = "import sys; print('INFO [stage] hold', flush=True); b = bytearray(b'\\x01') * (int(sys.argv[1]) * 1000)";
    let sweep = [
        "--rows",
        "20000,40000,80000",
        "--stage-pattern",
        r"^INFO \[stage\] (\S+)$",
    ];
    let command = ["python3", "-c", script, "{rows}"];
    let mut args: Vec<&str> = sweep.to_vec();
    args.extend(["--pod-memory", "1GiB", "--"]);
    args.extend(command);
    let jobs = emit(&args);
    assert_eq!(jobs.len(), 1);
    let runs = pods(&jobs[0]);
    assert_eq!(runs.len(), 3);
    let results = scratch("kubernetes-command-points");
    for (i, (argv, limit)) in &runs {
        assert_eq!(limit, "1Gi");
        assert_eq!(argv[0], "sweep");
        assert_eq!(flag(argv, "--point"), i.to_string());
        assert_eq!(flag(argv, "--rows"), "20000,40000,80000");
        assert!(flag(argv, "--out").starts_with("/results/"));
        // As the pod would, with the results directory here.
        let mut local: Vec<&str> = sweep.to_vec();
        let point = i.to_string();
        local.extend(["--point", &point, "--quiet", "--out"]);
        local.push(results.to_str().unwrap());
        local.push("--");
        local.extend(command);
        let run = oomlab().arg("sweep").args(&local).output().unwrap();
        assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    }
    let fit = oomlab()
        .args(["model", "fit", results.to_str().unwrap(), "--out"])
        .arg(results.join("fit"))
        .output()
        .unwrap();
    assert_eq!(fit.status.code(), Some(0), "{}", text(&fit));
    let model: serde_json::Value =
        serde_json::from_slice(&std::fs::read(results.join("fit/model.json")).unwrap()).unwrap();
    assert_eq!(model["source"]["kind"], "command");
    assert_eq!(model["source"]["argv"][3], "{rows}");
    let hold = model["variants"][0]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "hold")
        .expect("a hold stage")["fit"]["bytes_per_row_in"]
        .as_f64()
        .unwrap();
    assert!((hold - 1000.0).abs() < 100.0, "{hold} B/row");
}
