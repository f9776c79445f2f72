//! Issue 7: `oomlab record -- CMD ARGS...` through the real binary.
//!
//! The measured commands are small Python programs (CPython 3.11 on CI). They
//! run through the real interpreter (`sys.executable`), not a version-manager
//! shim, so the process tree holds only what each test puts there. Figures are
//! asserted against what the programs allocate, with margins for an
//! interpreter's own few MiB; no assertion depends on how fast the machine is.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{oomlab, scratch, u};
use serde_json::Value;

const MIB: u64 = 1 << 20;
/// Documented exit codes (README, "Exit codes").
const EXIT_BAD_INPUT: i32 = 2;
const EXIT_OOM_KILLED: i32 = 5;
const EXIT_CHILD_FAILED: i32 = 6;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The real Python interpreter behind `python3` (a pyenv shim would add a
/// dozen short bash processes to every tree).
fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 is needed for the record tests (CPython 3.11 on CI)");
        assert!(out.status.success(), "python3 does not run");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}

/// What one `oomlab record` run left behind.
struct Recorded {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
    dir: PathBuf,
    report: Option<Value>,
}

impl Recorded {
    fn report(&self) -> &Value {
        self.report.as_ref().unwrap_or_else(|| {
            panic!(
                "no report.json in {} (exit {:?})\n{}",
                self.dir.display(),
                self.code,
                self.stderr
            )
        })
    }

    fn run(&self) -> &Value {
        &self.report()["runs"][0]
    }

    fn stage_names(&self) -> Vec<String> {
        self.run()["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    }

    fn stage(&self, name: &str) -> &Value {
        self.run()["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no stage {name} in {:?}", self.stage_names()))
    }

    fn saved(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    fn context(&self) -> String {
        format!(
            "exit {:?}\nstdout: {}\nstderr: {}",
            self.code,
            String::from_utf8_lossy(&self.stdout),
            self.stderr
        )
    }
}

/// Runs `oomlab record <flags> --out DIR -- <command>` into a fresh directory.
fn record(name: &str, flags: &[&str], command: &[&str]) -> Recorded {
    record_env(name, &[], flags, command)
}

/// [`record`] with environment variables set for oomlab.
fn record_env(name: &str, env: &[(&str, &str)], flags: &[&str], command: &[&str]) -> Recorded {
    let dir = scratch(name);
    let output = oomlab()
        .envs(env.iter().copied())
        .arg("record")
        .args(flags)
        .arg("--out")
        .arg(&dir)
        .arg("--")
        .args(command)
        .output()
        .expect("oomlab runs");
    let report = std::fs::read_to_string(dir.join("report.json"))
        .ok()
        .map(|t| serde_json::from_str(&t).expect("report.json is JSON"));
    Recorded {
        code: output.status.code(),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        dir,
        report,
    }
}

/// `oomlab record ... -- python -c CODE`.
fn record_python(name: &str, flags: &[&str], code: &str) -> Recorded {
    record(name, flags, &[python(), "-c", code])
}

/// A worker process that allocates (and touches) 200 MiB and holds it.
const WORKER_ALLOCATES_200_MIB: &str = r#"
import subprocess, sys
worker = '''
import time
print("INFO [stage] worker_alloc", flush=True)
held = bytearray(b"x") * (200 << 20)
time.sleep(1.5)
print("INFO [stage] worker_done", flush=True)
'''
print("INFO [stage] spawn_worker", flush=True)
subprocess.run([sys.executable, "-c", worker], check=True)
print("INFO [stage] after_worker", flush=True)
"#;

#[test]
fn a_child_processs_memory_is_counted_and_each_process_listed() {
    let r = record_python("record-child", &["--quiet"], WORKER_ALLOCATES_200_MIB);
    assert_eq!(r.code, Some(0), "{}", r.context());
    let run = r.run();
    assert_eq!(run["status"]["kind"], "completed", "{}", run["status"]);

    // Every process is listed: the root, and the worker it started.
    let procs = run["processes"].as_array().unwrap();
    let root = procs
        .iter()
        .find(|p| p["root"] == true)
        .expect("the root is listed");
    let worker = procs
        .iter()
        .find(|p| p["ppid"] == root["pid"] && p["command"].as_str().unwrap().contains("-c"))
        .unwrap_or_else(|| panic!("the worker is listed: {procs:?}"));
    assert!(
        u(&worker["peak_bytes"]) >= 200 * MIB,
        "worker peak {}",
        worker["peak_bytes"]
    );
    assert!(
        u(&root["peak_bytes"]) < 100 * MIB,
        "the root itself holds little: {}",
        root["peak_bytes"]
    );

    // The worker's stage carries its memory: the tree's exact peak, and the
    // sampled sum of root and worker (the worker held it 1.5 s).
    assert_eq!(
        r.stage_names(),
        [
            "start",
            "spawn_worker",
            "worker_alloc",
            "worker_done",
            "after_worker"
        ]
    );
    let alloc = r.stage("worker_alloc");
    let exact = u(&alloc["exact_peak_bytes"]);
    assert!(
        (200 * MIB..=400 * MIB).contains(&exact),
        "worker_alloc exact peak {exact}"
    );
    let per_process = &alloc["detail"]["process_peaks"];
    let worker_in_stage = u(&per_process[worker["pid"].to_string()]);
    assert!(worker_in_stage >= 200 * MIB, "{per_process}");
    assert!(
        exact >= worker_in_stage,
        "the tree holds at least the worker"
    );
    let sampled = u(&alloc["sampled_peak_bytes"]);
    assert!(
        sampled >= 200 * MIB + 4 * MIB,
        "the sampled tree sums the root and the worker: {sampled}"
    );
    assert!(u(&run["peak_bytes"]) >= 200 * MIB);
    assert!(u(&run["sampled_peak_bytes"]) >= 200 * MIB);

    // Before and after the worker, the tree is small again.
    assert!(u(&r.stage("after_worker")["exact_peak_bytes"]) < 100 * MIB);
    assert!(r.stderr.contains("2 process(es)"), "{}", r.stderr);
}

/// Prints the pipeline's lines in several layouts, a custom `[stage]`
/// marker, lines that are not markers, and a line that is not UTF-8.
const PIPELINE_OUTPUT: &str = r#"
import sys, time
# Stage markers are read from a pipe: pause after each, as a real pipeline
# works between its log lines, so every stage's boundary is taken while the
# process is alive (a stage whose marker is read after the process exited
# cannot have its own kernel peak).
out = sys.stdout
out.write("starting up\n")
out.write("2025-12-25 08:15:02,001 - train_models - INFO - Ranking samples: 1000 rows before optimization\n")
out.write("DEBUG not a stage\n")
out.write("INFO Merging with dataset features (87 columns)...\n")
out.flush()
time.sleep(0.1)
sys.stderr.write("a warning on stderr\n")
sys.stderr.flush()
out.write("INFO [stage] my_step\n")
out.flush()
time.sleep(0.1)
out.buffer.write(b"caf\xe9 au lait\n")
out.buffer.flush()
out.write("INFO Custom message here\n")
out.write("done\n")
out.flush()
time.sleep(0.1)
"#;

#[test]
fn output_lines_become_stages_and_the_output_is_passed_through_and_saved() {
    let r = record_python("record-stages", &["--quiet"], PIPELINE_OUTPUT);
    assert_eq!(r.code, Some(0), "{}", r.context());
    assert_eq!(
        r.stage_names(),
        [
            "start",
            "optimize_samples", // the write-up's line, named as a replay names it
            "merge_dataset_profile", // likewise
            "my_step",          // `INFO [stage] NAME` names the stage itself
            "custom_message_here", // any other INFO line: a slug of its message
        ]
    );
    let run = r.run();
    assert_eq!(u(&run["recorded"]["markers"]), 4);
    let messages: Vec<&str> = run["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages[1], "Merging with dataset features (87 columns)...",
        "{messages:?}"
    );
    assert!(run["logs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["level"] == "INFO"));
    // Stages tile the run: each starts where the one before ended.
    let stages = run["stages"].as_array().unwrap();
    for pair in stages.windows(2) {
        assert!((f(&pair[0]["end_s"]) - f(&pair[1]["start_s"])).abs() < 1e-9);
        assert!(u(&pair[0]["exact_peak_bytes"]) > 0);
    }
    // The sizes the command logged are the report's data sizes.
    let sizes = &r.report()["scenario"]["scaled"];
    assert_eq!(u(&sizes["sample_rows"]), 1000);
    assert_eq!(u(&sizes["profile_columns"]), 87);

    // Output passes through untouched (bytes, not lossily decoded) and is saved.
    let stdout_log = r.saved("stdout.log");
    assert_eq!(r.stdout, stdout_log, "oomlab's stdout is the command's");
    let text = String::from_utf8_lossy(&stdout_log);
    assert!(
        text.starts_with("starting up\n") && text.ends_with("done\n"),
        "{text}"
    );
    assert!(stdout_log
        .windows(b"caf\xe9 au lait\n".len())
        .any(|w| w == b"caf\xe9 au lait\n"));
    let stderr_log = String::from_utf8(r.saved("stderr.log")).unwrap();
    assert_eq!(stderr_log, "a warning on stderr\n");
    assert!(r.stderr.contains("a warning on stderr"), "{}", r.stderr);
    assert_eq!(run["recorded"]["stdout_log"], "stdout.log");
}

#[test]
fn a_stage_pattern_of_ones_own_picks_the_markers_on_the_stream_asked_for() {
    let code = r#"
import sys
print("INFO not a stage under this pattern", flush=True)
sys.stderr.write("STEP load\n"); sys.stderr.flush()
sys.stderr.write("step ignored: the pattern is case-sensitive\n"); sys.stderr.flush()
sys.stderr.write("STEP merge_all\n"); sys.stderr.flush()
"#;
    let r = record_python(
        "record-pattern",
        &[
            "--quiet",
            "--stage-pattern",
            r"^STEP (\w+)$",
            "--stage-stream",
            "stderr",
        ],
        code,
    );
    assert_eq!(r.code, Some(0), "{}", r.context());
    assert_eq!(r.stage_names(), ["start", "load", "merge_all"]);
    assert_eq!(r.run()["recorded"]["stage_pattern"], r"^STEP (\w+)$");
    assert_eq!(r.run()["recorded"]["stage_stream"], "stderr");

    // A pattern that does not compile is bad input, named.
    let r = record_python(
        "record-bad-pattern",
        &["--stage-pattern", "STEP (unclosed"],
        "pass",
    );
    assert_eq!(r.code, Some(EXIT_BAD_INPUT), "{}", r.context());
    assert!(r.stderr.contains("--stage-pattern"), "{}", r.stderr);
    assert!(r.report.is_none());
}

#[test]
fn a_command_that_does_not_exist_is_bad_input_naming_it() {
    let r = record(
        "record-missing",
        &[],
        &["oomlab-test-no-such-command", "--x"],
    );
    assert_eq!(r.code, Some(EXIT_BAD_INPUT), "{}", r.context());
    assert!(
        r.stderr
            .contains("`oomlab-test-no-such-command`: command not found in $PATH"),
        "{}",
        r.stderr
    );
    assert!(r.report.is_none(), "nothing ran, so no report");

    let r = record("record-missing-path", &[], &["./no/such/file.sh"]);
    assert_eq!(r.code, Some(EXIT_BAD_INPUT), "{}", r.context());
    assert!(
        r.stderr.contains("`./no/such/file.sh`: no such file"),
        "{}",
        r.stderr
    );

    let dir = scratch("record-a-directory");
    let r = record("record-dir", &[], &[dir.to_str().unwrap()]);
    assert_eq!(r.code, Some(EXIT_BAD_INPUT), "{}", r.context());
    assert!(r.stderr.contains("is a directory"), "{}", r.stderr);
}

#[test]
fn a_command_that_fails_yields_a_report_saying_how_and_where() {
    let code = r#"
import sys
print("INFO [stage] load", flush=True)
print("INFO [stage] work", flush=True)
sys.stderr.write("Traceback (most recent call last):\nValueError: disk on fire\n")
sys.exit(3)
"#;
    let r = record_python("record-fails", &["--quiet"], code);
    assert_eq!(r.code, Some(EXIT_CHILD_FAILED), "{}", r.context());
    let run = r.run();
    let status = &run["status"];
    assert_eq!(status["kind"], "failed", "{status}");
    assert_eq!(status["exit_code"], 3);
    assert_eq!(status["stage"], "work", "the stage it failed in");
    assert_eq!(status["message"], "ValueError: disk on fire");
    assert_eq!(run["recorded"]["exit_code"], 3);
    assert!(run["stderr_tail"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l == "ValueError: disk on fire"));
    // Its stages were still measured.
    assert!(u(&r.stage("work")["exact_peak_bytes"]) > 0);
    let summary = String::from_utf8(r.saved("summary.md")).unwrap();
    assert!(
        summary.contains("**Failed** (exit code 3) in stage `work`: ValueError: disk on fire"),
        "{summary}"
    );
    // oomlab generated no data for it: no zero-filled data table, seed or hash.
    assert!(!summary.contains("| ranking_samples rows | 0"), "{summary}");
    assert!(!summary.contains("data hash"), "{summary}");

    // Death by a signal nobody sent on purpose is a failure too, with the signal.
    let r = record_python(
        "record-signal",
        &["--quiet"],
        "import os, signal\nprint('INFO [stage] doomed', flush=True)\nos.kill(os.getpid(), signal.SIGTERM)",
    );
    assert_eq!(r.code, Some(EXIT_CHILD_FAILED), "{}", r.context());
    let status = &r.run()["status"];
    assert_eq!(status["kind"], "failed", "{status}");
    assert_eq!(status["signal"], 15);
    assert!(status["exit_code"].is_null());
    assert_eq!(status["stage"], "doomed");
}

/// Allocates (and touches) `bytes` after a pause, holds them 5 ms, frees
/// them, and runs on a while: a spike between two 100 ms samples.
fn spike(bytes: u64) -> String {
    format!(
        "import time\ntime.sleep(0.3)\nb = bytearray(b'x') * {bytes}\ntime.sleep(0.005)\ndel b\ntime.sleep(0.3)\n"
    )
}

#[test]
fn a_5ms_spike_is_measured_exactly_by_the_kernel_whatever_the_sampling_interval() {
    let flags = ["--quiet", "--interval", "100ms"];
    // The interpreter's own peak: the same program allocating nothing.
    let base = record_python("record-spike-0", &flags, &spike(0));
    assert_eq!(base.code, Some(0), "{}", base.context());
    let baseline = u(&base.run()["peak_bytes"]);
    assert!(baseline > 0 && baseline < 100 * MIB, "baseline {baseline}");

    let r = record_python("record-spike-256", &flags, &spike(256 * MIB));
    assert_eq!(r.code, Some(0), "{}", r.context());
    let run = r.run();
    assert_eq!(f(&run["timeline"]["interval_ms"]), 100.0);
    let peak = u(&run["peak_bytes"]);
    let truth = 256 * MIB + baseline;
    let error = (peak as f64 - truth as f64) / truth as f64;
    assert!(
        error.abs() <= 0.02,
        "exact peak {peak} vs 256 MiB + baseline {baseline} = {truth}: {:+.2}%",
        error * 100.0
    );
    assert!(peak >= 256 * MIB, "the whole allocation is in the peak");
    // Sampling sees what happens to fall on a tick; the kernel saw it all.
    let sampled = u(&run["sampled_peak_bytes"]);
    assert!(sampled <= peak, "sampled {sampled} above exact {peak}");
    assert_eq!(u(&run["stages"][0]["exact_peak_bytes"]), peak);
    // One process: its own kernel mark, exact, cgroup or not.
    assert_eq!(run["peak_source"], "vmhwm", "{}", run["peak_source"]);
    eprintln!(
        "spike: exact {peak} (truth {truth}, {:+.3}%), sampled at 100 ms {sampled}",
        error * 100.0
    );
}

/// A launcher leaves a short child behind (as pyenv's shim does), then the
/// root's last stage peaks in its last moments, between two samples.
#[test]
fn a_last_stage_that_peaks_just_before_exit_gets_the_kernels_figure_behind_a_launcher() {
    let code = format!(
        "import subprocess, time\n\
         subprocess.run(['sleep', '1.2'])\n\
         print('INFO [stage] small', flush=True)\n\
         time.sleep(0.3)\n\
         print('INFO [stage] last', flush=True)\n\
         time.sleep(0.3)\n\
         b = bytearray(b'x') * {}\n",
        256 * MIB
    );
    let r = record_python(
        "record-last-moments",
        &["--quiet", "--interval", "1s"],
        &code,
    );
    assert_eq!(r.code, Some(0), "{}", r.context());
    let run = r.run();
    let processes = run["processes"].as_array().map_or(0, Vec::len);
    assert!(
        processes >= 2,
        "the launcher's child is in the tree: {processes}"
    );
    let stages = run["stages"].as_array().expect("stages");
    let last = stages.last().expect("a last stage");
    assert_eq!(last["name"], "last");
    let peak = u(&last["exact_peak_bytes"]);
    assert!(peak >= 256 * MIB, "last stage {peak} misses the allocation");
    let small = stages.iter().find(|s| s["name"] == "small").expect("small");
    assert!(u(&small["exact_peak_bytes"]) < 100 * MIB, "{small}");
}

/// The root starts a worker that grows by 20 MiB every 20 ms up to 800 MiB;
/// the root itself would carry on after the worker.
const GROWING_WORKER: &str = r#"
import subprocess, sys
worker = '''
import time
print("INFO [stage] grow", flush=True)
held = []
for i in range(40):
    held.append(bytearray(b"x") * (20 << 20))
    time.sleep(0.02)
print("INFO [stage] worker_survived", flush=True)
'''
print("INFO [stage] spawn_worker", flush=True)
r = subprocess.run([sys.executable, "-c", worker])
print(f"INFO [stage] after_worker rc={r.returncode}", flush=True)
"#;

const LIMIT: &str = "300MiB";
const LIMIT_BYTES: u64 = 300 * MIB;

/// Checks a run that the limit killed in the worker's `grow` stage.
fn assert_tree_killed_in_grow(r: &Recorded, by: &str) {
    assert_eq!(r.code, Some(EXIT_OOM_KILLED), "{}", r.context());
    let run = r.run();
    let status = &run["status"];
    assert_eq!(status["kind"], "killed", "{status}");
    assert_eq!(status["signal"], 9);
    assert_eq!(status["by"], by, "{status}");
    assert_eq!(status["stage"], "grow", "{status}");
    let grow = r.stage("grow");
    assert!(
        grow["exact_peak_bytes"].is_null(),
        "a killed stage has no exact peak"
    );
    // The kill comes after the worker started (a marker's time is when its
    // line was read, which a loaded machine can delay) and ends the run.
    let t = f(&status["t_s"]);
    assert!(
        t >= f(&r.stage("spawn_worker")["start_s"]) && t <= f(&run["wall_s"]),
        "killed at {t} s"
    );
    // Where it died, the tree held most of the limit (the watchdog kills on
    // the sample that crossed it; the kernel at the limit, sampled just before).
    let rss = u(&status["rss_bytes"]);
    assert!(rss >= LIMIT_BYTES / 2, "RSS at the kill {rss}");
    if by == "watchdog" {
        assert!(rss >= LIMIT_BYTES, "RSS at the kill {rss}");
    }
    assert_eq!(u(&run["memory_limit"]["limit_bytes"]), LIMIT_BYTES);

    // The whole tree died: the root never went on after its worker.
    assert_eq!(run["recorded"]["signal"], 9, "the root was killed too");
    assert!(!r
        .stage_names()
        .iter()
        .any(|s| s.starts_with("after_worker")));
    let out = String::from_utf8_lossy(&r.saved("stdout.log")).into_owned();
    assert!(
        !out.contains("after_worker") && !out.contains("worker_survived"),
        "{out}"
    );
    assert!(
        r.stderr.contains("was killed (-9)") && r.stderr.contains("in stage grow"),
        "{}",
        r.stderr
    );
    let summary = String::from_utf8(r.saved("summary.md")).unwrap();
    assert!(summary.contains("**Killed (-9)**"), "{summary}");
}

#[test]
fn the_watchdog_kills_the_whole_tree_in_the_stage_that_crossed_the_limit() {
    let r = record_python(
        "record-limit-watchdog",
        &["--quiet", "--memory-limit", LIMIT, "--limit-by", "watchdog"],
        GROWING_WORKER,
    );
    assert_tree_killed_in_grow(&r, "watchdog");
    assert_eq!(r.run()["memory_limit"]["enforced_by"], "watchdog");
}

#[test]
fn the_default_limit_kills_the_whole_tree_too_by_cgroup_where_one_can_be_made() {
    let r = record_python(
        "record-limit-auto",
        &["--quiet", "--memory-limit", LIMIT],
        GROWING_WORKER,
    );
    let by = r.run()["memory_limit"]["enforced_by"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", r.context()))
        .to_string();
    if by.starts_with("cgroup") {
        // The kernel killed its victim (the worker); oomlab ended the rest.
        assert_tree_killed_in_grow(&r, "cgroup");
        assert!(u(&r.run()["memory_limit"]["oom_kills"]) >= 1);
    } else {
        assert_eq!(by, "watchdog");
        assert!(r.run()["memory_limit"]["fallback_reason"].is_string());
        assert_tree_killed_in_grow(&r, "watchdog");
    }
}

#[test]
fn a_bad_interval_or_limit_is_bad_input() {
    let r = record_python(
        "record-bad-limit",
        &["--memory-limit", "3 potatoes"],
        "pass",
    );
    assert_eq!(r.code, Some(EXIT_BAD_INPUT), "{}", r.context());
    assert!(r.stderr.contains("3 potatoes"), "{}", r.stderr);
    let r = record_python("record-bad-interval", &["--interval", "fast"], "pass");
    assert_eq!(r.code, Some(EXIT_BAD_INPUT), "{}", r.context());
    assert!(r.stderr.contains("--interval fast"), "{}", r.stderr);
    assert!(!Path::new(&r.dir).join("report.json").exists());
}

/// Issue 17: fills 500 MiB, then forks 4 children that only read it, as
/// Airflow's LocalExecutor, multiprocessing and gunicorn fork workers.
const FORK_SHARING_500_MIB: &str = r#"
import os, time
data = bytearray(b"x") * (500 << 20)
kids = []
for i in range(4):
    pid = os.fork()
    if pid == 0:
        s = 0
        for j in range(0, len(data), 4096):
            s += data[j]
        time.sleep(1.0)
        os._exit(0)
    kids.append(pid)
for k in kids:
    os.waitpid(k, 0)
"#;

#[test]
fn a_tree_sharing_its_pages_is_charged_once_where_a_cgroup_can_be_made() {
    let r = record_python("record-fork-cgroup", &["--quiet"], FORK_SHARING_500_MIB);
    assert_eq!(r.code, Some(0), "{}", r.context());
    let run = r.run();
    if run["cgroup_peak_bytes"].is_null() {
        eprintln!(
            "skipped: no memory cgroup can be made here (peak_source {})",
            run["peak_source"]
        );
        return;
    }
    assert!(run["processes"].as_array().unwrap().len() >= 5, "{}", run);
    assert_eq!(run["peak_source"], "cgroup", "{}", run["peak_source"]);
    let peak = u(&run["peak_bytes"]);
    let error = (peak as f64 - (500 * MIB) as f64) / (500 * MIB) as f64;
    assert!(
        error.abs() <= 0.10,
        "tree peak {peak} vs 500 MiB: {:+.1}%",
        error * 100.0
    );
    // The summed marks count the shared pages once per process: kept aside.
    let summed = r.run()["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["detail"]["sum_of_process_peaks"].as_u64())
        .max()
        .unwrap_or(0);
    assert!(summed >= 2 * 500 * MIB, "sum of process peaks {summed}");
    // The timeline counts the shared pages once too: the cgroup's usage.
    assert_eq!(run["timeline"]["several"], "cgroup-usage");
    let sampled = u(&run["sampled_peak_bytes"]);
    assert!(
        sampled <= peak + peak / 10 && sampled >= 400 * MIB,
        "sampled tree peak {sampled} vs exact {peak}"
    );
    let summary = String::from_utf8(r.saved("summary.md")).unwrap();
    assert!(summary.contains("cgroup's current usage"), "{summary}");
    assert!(summary.contains("cgroup high-water mark"), "{summary}");
    assert!(r.stderr.contains("cgroup high-water mark"), "{}", r.stderr);
    eprintln!(
        "fork tree: cgroup peak {peak} ({:+.2}% of 500 MiB)",
        error * 100.0
    );
}

#[test]
fn without_a_cgroup_a_trees_summed_peak_is_named_an_upper_bound_with_pss_beside_it() {
    let r = record_env(
        "record-fork-no-cgroup",
        &[("OOMLAB_NO_CGROUP", "1")],
        &["--quiet"],
        &[python(), "-c", FORK_SHARING_500_MIB],
    );
    assert_eq!(r.code, Some(0), "{}", r.context());
    let run = r.run();
    assert!(
        run["cgroup_peak_bytes"].is_null(),
        "{}",
        run["cgroup_peak_bytes"]
    );
    assert_eq!(
        run["peak_source"], "sum-vmhwm-upper-bound",
        "{}",
        run["peak_source"]
    );
    // Every process's mark holds the 500 MiB it maps: far above the truth.
    let peak = u(&run["peak_bytes"]);
    assert!(peak >= 2 * 500 * MIB, "upper bound {peak}");
    // Beside it, PSS counts each shared page once (sampled, so at most the truth).
    let pss = u(&run["pss_peak_bytes"]);
    assert!(pss > 0 && pss < peak, "PSS peak {pss}, bound {peak}");
    // The timeline takes the shared pages off the summed RSS.
    assert_eq!(run["timeline"]["several"], "rss-less-shared");
    let sampled = u(&run["sampled_peak_bytes"]);
    assert!(
        sampled < 2 * 500 * MIB,
        "sampled tree peak {sampled} counts shared pages again"
    );
    let summary = String::from_utf8(r.saved("summary.md")).unwrap();
    assert!(summary.contains("upper bound"), "{summary}");
    assert!(summary.contains("proportional set size"), "{summary}");
    assert!(r.stderr.contains("upper bound"), "{}", r.stderr);
    // What measuring cost is in the report.
    let sampler = &run["sampler"];
    assert!(u(&sampler["samples"]) > 10, "{sampler}");
    assert!(f(&sampler["cpu_s"]) >= 0.0 && f(&sampler["achieved_interval_ms"]) >= 10.0);
}
