//! The classifier on the write-up's lines, kills and near misses, and
//! property tests that no line makes it panic.

use proptest::prelude::*;

use super::*;

#[test]
fn only_a_shell_report_of_killed_is_a_kill() {
    for line in [
        "Killed",
        "  Killed  ",
        "2025-12-25 08:19:29 run_pipeline.sh: line 12: Killed",
        "bash: line 1:  4242 Killed                  python3 prepare.py",
    ] {
        assert!(shell_killed(line), "{line:?} is a kill");
    }
    for line in [
        "INFO cleanup: 3 stale workers killed",
        "WARNING the previous attempt was killed by the user",
        "INFO Killed 0 zombies",
    ] {
        assert!(!shell_killed(line), "{line:?} is no kill");
        let lower = line.to_lowercase();
        assert!(kill_event(line, &lower).is_none(), "{line:?}");
    }
}

#[test]
fn every_phrase_holds_a_needle() {
    let pipeline = [
        "ranking samples optimized:",
        "ranking samples:",
        "sampling ranking data:",
        "preparing ranking data",
        "merging with dataset features",
        "merging with user features",
        "optimizing enriched dataframe memory",
        "memory optimization:",
        "ranking data prepared:",
        "max_ranking_samples",
        "killed",
        "memoryerror",
        "oom",
        "mem usage",
    ];
    for phrase in pipeline.iter().chain(OOM_KILLER).chain(SIGKILL) {
        assert!(NEEDLES.iter().any(|n| phrase.contains(n)), "{phrase}");
    }
}

#[test]
fn recognizes_the_write_ups_lines() {
    let cases = [
        ("INFO Ranking samples: 8532146 rows before optimization", LogEvent::RankingSamples { rows: 8_532_146 }),
        ("INFO Sampling ranking data: 8532146 -> 5000000 rows (set MAX_RANKING_SAMPLES=0 to disable)", LogEvent::Sampling { from: 8_532_146, to: 5_000_000 }),
        ("INFO Ranking samples optimized: 5000000 rows", LogEvent::SamplesOptimized { rows: 5_000_000 }),
        ("INFO Preparing ranking data (samples: 5000000 rows, datasets: 123456)", LogEvent::Preparing { samples: 5_000_000, datasets: Some(123_456) }),
        ("INFO Merging with dataset features (87 columns)...", LogEvent::MergeDatasetFeatures { columns: 87 }),
        ("INFO Merging with user features (12 columns)...", LogEvent::MergeUserFeatures { columns: 12 }),
        ("INFO Optimizing enriched DataFrame memory usage...", LogEvent::OptimizingMemory),
        ("INFO Memory optimization: 3456.78 MB -> 1234.56 MB (64.3% reduction)", LogEvent::MemoryOptimization { before_mb: 3456.78, after_mb: 1234.56, reduction_pct: Some(64.3) }),
        ("INFO Ranking data prepared: 5000000 rows, 105 features", LogEvent::Prepared { rows: 5_000_000, features: Some(105) }),
        ("MAX_RANKING_SAMPLES=2000000  # 200万", LogEvent::MaxRankingSamples { value: 2_000_000 }),
    ];
    for (line, want) in cases {
        assert_eq!(classify(line), Some(want.clone()), "{line}");
        let prefixed = format!(
            "airflow-scheduler-1  | [2025-12-25, 08:15:02 UTC] {{train_models.py:1401}} {line}"
        );
        assert_eq!(classify(&prefixed), Some(want), "{prefixed}");
    }
    assert_eq!(
        classify("Ranking samples: 8,532,146 rows before optimization"),
        Some(LogEvent::RankingSamples { rows: 8_532_146 })
    );
}

#[test]
fn recognizes_kills() {
    for (line, kind) in [
        ("Task exited with return code -9", KillKind::Sigkill),
        (
            "ERROR - Process exited with exit code -9",
            KillKind::Sigkill,
        ),
        (
            "Task exited with return code Negsignal.SIGKILL",
            KillKind::Sigkill,
        ),
        ("airflow-scheduler exited with code 137", KillKind::Sigkill),
        (
            "Out of memory: Killed process 4242 (python3) total-vm:160000000kB",
            KillKind::OomKiller,
        ),
        ("\"OOMKilled\": true,", KillKind::OomKiller),
        ("Killed", KillKind::Killed),
        (
            "MemoryError: Unable to allocate 12.3 GiB",
            KillKind::MemoryError,
        ),
        ("OOM at 08:19:29", KillKind::OomKiller),
    ] {
        match classify(line) {
            Some(LogEvent::Kill { kind: k, .. }) => assert_eq!(k, kind, "{line}"),
            other => panic!("{line}: {other:?}"),
        }
    }
    assert_eq!(classify("a skilled worker in the room"), None);
    for (line, kill) in [
        ("INFO - Sending SIGKILL to orphaned worker 12", false),
        ("WARNING - will send SIGKILL after 30 s", false),
        ("Process 4242 terminated by signal SIGKILL", true),
        ("python3 prepare.py was killed by SIGKILL", true),
        ("ERROR - Task received SIGKILL", true),
        ("Process exited pid=4242 signal_sent=SIGKILL", true),
    ] {
        let found = matches!(
            classify(line),
            Some(LogEvent::Kill {
                kind: KillKind::Sigkill,
                ..
            })
        );
        assert_eq!(found, kill, "{line}");
    }
}

#[test]
fn parses_docker_stats_rows() {
    let row = "3f2a9c1b7d4e   airflow-scheduler   98.50%    142.3GiB / 150GiB     94.87%    1.2GB / 800MB     50GB / 2GB        87";
    let Some(LogEvent::Stats(r)) = classify(row) else {
        panic!()
    };
    assert_eq!(r.name, "airflow-scheduler");
    assert_eq!(r.limit_bytes, 150 << 30);
    assert_eq!(r.usage_bytes, (142.3 * (1u64 << 30) as f64).round() as u64);
    assert_eq!(r.mem_pct, Some(94.87));
    assert_eq!(
        classify(
            "CONTAINER ID   NAME   CPU %   MEM USAGE / LIMIT   MEM %   NET I/O   BLOCK I/O   PIDS"
        ),
        Some(LogEvent::StatsHeader)
    );
    let r = parse_stats_row("airflow-scheduler\t1.5GiB / 2GiB").unwrap();
    assert_eq!(
        (r.name.as_str(), r.limit_bytes),
        ("airflow-scheduler", 2 << 30)
    );
}

#[test]
fn finds_timestamps() {
    let t = find_timestamp("2025-12-25 08:19:29,123 INFO x").unwrap();
    assert!((t - (20_447.0 * 86_400.0 + 8.0 * 3600.0 + 19.0 * 60.0 + 29.123)).abs() < 1e-6);
    assert_eq!(
        find_timestamp("[2025-12-25, 08:19:29 UTC] x").map(|t| t as i64),
        Some(t as i64)
    );
    assert_eq!(
        find_timestamp("2025-12-25T08:19:29Z").map(|t| t as i64),
        Some(t as i64)
    );
    assert_eq!(
        find_timestamp("Thu Dec 25 08:19:29 UTC 2025").map(|t| t as i64),
        Some(t as i64)
    );
    assert_eq!(find_timestamp("no time here 12:00"), None);
}

proptest! {
    #[test]
    fn classify_never_panics(line in ".{0,300}") {
        let _ = classify(&line);
        let _ = find_timestamp(&line);
        let _ = parse_stats_row(&line);
    }

    #[test]
    fn classify_never_panics_on_near_misses(
        prefix in "[ -~]{0,20}",
        phrase in prop::sample::select(vec![
            "Ranking samples:", "Sampling ranking data:", "Preparing ranking data (samples:",
            "Merging with dataset features (", "Memory optimization:", "Ranking data prepared:",
            "MAX_RANKING_SAMPLES=", " / ", "2025-12-25 ", "exit code -9",
        ]),
        tail in "[0-9a-zA-Z ,.:>()/%-]{0,40}",
    ) {
        let line = format!("{prefix}{phrase}{tail}");
        let _ = classify(&line);
        let _ = find_timestamp(&line);
    }
}
