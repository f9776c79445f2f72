//! The scanner on logs made in the test: each line the write-up names, the
//! kill, context kept across reads of any size, and property tests that any
//! split of the bytes gives the same analysis.

use std::io;

use memchr::memchr;
use proptest::prelude::*;

use super::read::{kept, Prefilter};
use super::*;

fn analyze(bytes: &[u8], context: usize) -> LogAnalysis {
    let mut a = Analyzer::new("t", context);
    a.read_all(bytes).unwrap();
    a.finish()
}

/// [`analyze`] with lines capped at `max` bytes, read `chunk` at a time.
fn analyze_with(bytes: &[u8], context: usize, max: usize, chunk: usize) -> LogAnalysis {
    let mut a = Analyzer::new("t", context);
    a.max_line = max;
    a.chunk_bytes = chunk;
    a.read_all(bytes).unwrap();
    a.finish()
}

/// [`analyze_with`] through maps of a file holding `bytes`, as small as a
/// page when `max` is small.
fn analyze_mapped(bytes: &[u8], context: usize, max: usize, chunk: usize) -> LogAnalysis {
    let mut file = tempfile::tempfile().unwrap();
    io::Write::write_all(&mut file, bytes).unwrap();
    let mut a = Analyzer::new("t", context);
    a.max_line = max;
    a.chunk_bytes = chunk;
    a.window_bytes = 0;
    a.map_all(&file, bytes.len() as u64).unwrap();
    a.finish()
}

/// What the analyzer must find: every line split off naively and fed.
fn reference(bytes: &[u8], context: usize, max: usize) -> LogAnalysis {
    let mut a = Analyzer::new("t", context);
    a.max_line = max;
    let mut rest = bytes;
    while !rest.is_empty() {
        let (raw, next) = match memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        let (line, truncated) = kept(raw, max);
        a.feed(line, truncated);
        rest = next;
    }
    a.out.source.bytes = bytes.len() as u64;
    a.finish()
}

#[test]
fn lines_are_capped_and_lose_their_endings() {
    let data = b"a\r\nbb\n\nccccccccc\nKilled";
    for chunk in [3, 4, 7, 64] {
        let a = analyze_with(data, 10, 6, chunk);
        let kept: Vec<&str> = a.context_before.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(kept, ["a", "bb", "", "cccccc"], "chunk {chunk}");
        assert_eq!(a.source.truncated, 1);
        assert_eq!(a.source.empty, 1);
        assert_eq!(a.kill.unwrap().line, 5);
    }
}

#[test]
fn bytes_read_counts_every_byte_kept_or_not() {
    for data in [&b""[..], b"a", b"a\n", b"a\r\nbb\n\nccc", b"xxxxxxxxxx\ny"] {
        for chunk in [4, 5, 8, 1 << 20] {
            let a = analyze_with(data, 2, 3, chunk);
            assert_eq!(a.source.bytes, data.len() as u64, "{data:?}");
            assert_eq!(a, reference(data, 2, 3), "{data:?} by {chunk}");
        }
        assert_eq!(analyze(data, 2).source.bytes, data.len() as u64, "{data:?}");
    }
}

/// A line of a log for the tests below: the pipeline's lines, kills,
/// stats rows, times, blanks, odd bytes, and noise.
fn log_line() -> impl Strategy<Value = Vec<u8>> {
    let known: Vec<&'static str> = vec![
        "[2025-12-25, 08:15:02 UTC] {train_models.py:1401} INFO - Ranking samples: 8532146 rows before optimization",
        "2025-12-25 08:16:00,123 - INFO - Sampling ranking data: 8532146 -> 5000000 rows",
        "INFO Preparing ranking data (samples: 100 rows, datasets: 7)",
        "INFO Merging with dataset features (87 columns)...",
        "INFO MERGING WITH USER FEATURES (12 columns)",
        "INFO Memory optimization: 3456.78 MB -> 1234.56 MB (64.3% reduction)",
        "Ranking data prepared: 5 rows, 4 features",
        "MAX_RANKING_SAMPLES=2000000",
        "Task exited with return code -9",
        "Task exited with return code 0",
        "bash: line 1:  4242 Killed    python3 prepare.py",
        "Out of memory: Killed process 4242 (python3)",
        "OOM at 08:19:29",
        "c1 app 1.0% 142.3GiB / 150GiB 94.9%",
        "c1\tapp\t1.5GiB\u{3000}/\u{a0}2GiB",
        "app 1.5GiB/2GiB",
        "CONTAINER ID NAME CPU % MEM USAGE / LIMIT MEM %",
        "Thu Dec 25 08:19:29 UTC 2025 tick",
        "2025-12-25T08:19:30Z no event",
        "loading /opt/airflow/dags/x.py from /tmp / home",
        "",
        "   ",
        "\u{a0}\u{3000}",
        "\r",
        "    raise MemoryError()",
        "\u{2003}indented note",
        "[2025-12-25, 05:40:00 UTC] {x.py:1} INFO - Computing item similarity: 500000 items in 10000 micro-batches of 50 (SIMILARITY_MICRO_BATCH_SIZE=50), top 200 (SIMILARITY_TOP_K=200)",
        "INFO Computing item similarity: 9 x 9 matrix (1.00 MB)",
        "INFO Similarity computed: 5 items",
    ];
    prop_oneof![
        4 => proptest::sample::select(known).prop_map(|s| s.as_bytes().to_vec()),
        2 => "[ -~]{0,40}".prop_map(String::into_bytes),
        1 => ".{0,20}".prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..30),
        1 => (1usize..3).prop_map(|n| vec![b'y'; 30 * n]),
    ]
}

/// A log of `lines`, each ended by CRLF or LF as its flag says, the last
/// one's ending dropped unless `last_newline`.
fn joined(lines: &[(Vec<u8>, bool)], last_newline: bool) -> Vec<u8> {
    let mut log = Vec::new();
    for (line, crlf) in lines {
        log.extend_from_slice(line);
        log.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
    }
    if !last_newline && log.last() == Some(&b'\n') {
        log.pop();
    }
    log
}

proptest! {
    #[test]
    fn reading_in_chunks_finds_what_feeding_every_line_does(
        lines in proptest::collection::vec((log_line(), any::<bool>()), 0..60),
        last_newline in any::<bool>(),
        context in 0usize..4,
        max in prop::sample::select(vec![8usize, 40, 64 * 1024]),
        chunk in 1usize..200,
    ) {
        let log = joined(&lines, last_newline);
        let want = reference(&log, context, max);
        prop_assert_eq!(analyze_with(&log, context, max, chunk), want);
    }

    #[test]
    fn reading_through_maps_finds_what_feeding_every_line_does(
        lines in proptest::collection::vec((log_line(), any::<bool>()), 0..400),
        last_newline in any::<bool>(),
        context in 0usize..4,
        max in prop::sample::select(vec![8usize, 40, 3000]),
        chunk in 1usize..300,
    ) {
        let log = joined(&lines, last_newline);
        let want = reference(&log, context, max);
        prop_assert_eq!(analyze_mapped(&log, context, max, chunk), want);
    }

    #[test]
    fn the_prefilter_passes_every_line_classify_knows(
        line in log_line(),
        noise in "[ -~]{0,10}",
    ) {
        for bytes in [line.clone(), [noise.as_bytes(), &line, noise.as_bytes()].concat()] {
            let text = String::from_utf8_lossy(&bytes);
            if classify(&text).is_some() {
                prop_assert!(Prefilter::get().passes(&text), "{:?}", text);
            }
        }
    }
}

#[test]
fn long_lines_across_maps_are_cut_as_when_read() {
    // Lines longer than a window, than the cap, and exactly at the edges.
    let mut log = Vec::new();
    for (i, len) in [5000usize, 4095, 4096, 4097, 12000, 3, 8191, 0, 9000]
        .iter()
        .enumerate()
    {
        log.extend(std::iter::repeat_n(b'a' + i as u8, *len));
        log.push(b'\n');
    }
    log.extend_from_slice(b"Task exited with return code -9\n");
    log.extend(std::iter::repeat_n(b'z', 10000));
    for max in [8, 100, 4000, 5000] {
        for chunk in [7, 4096, 100_000] {
            let want = reference(&log, 2, max);
            assert_eq!(
                analyze_mapped(&log, 2, max, chunk),
                want,
                "max {max}, chunk {chunk}"
            );
        }
    }
}

#[test]
fn a_log_that_shrinks_while_mapped_is_an_error_not_a_crash() {
    // The file holds 3 pages; the scan believes it holds 64 KiB, as when a
    // log is truncated after its length was read.
    let mut file = tempfile::tempfile().unwrap();
    io::Write::write_all(&mut file, &b"noise line\n".repeat(1200)).unwrap();
    let mut a = Analyzer::new("t", 0);
    let err = a.map_all(&file, 64 << 10).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert!(err.to_string().contains("shrank"), "{err}");
    // The next scan maps as before.
    let mut a = Analyzer::new("t", 0);
    a.map_all(&file, 1200 * 11).unwrap();
    assert_eq!(a.finish().source.lines, 1200);
}

/// Yields `len` bytes of `x` (no newline) without ever holding them.
struct Endless {
    left: u64,
    chunk: Vec<u8>,
}

impl io::Read for Endless {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = (out.len() as u64)
            .min(self.left)
            .min(self.chunk.len() as u64) as usize;
        out[..n].copy_from_slice(&self.chunk[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}

#[test]
fn a_line_larger_than_memory_is_streamed_through() {
    // A 1 GiB "line" (a binary dump, a log without newlines): read in
    // 64 KiB pieces, one capped line kept, every byte counted.
    const LEN: u64 = 1 << 30;
    let source = Endless {
        left: LEN,
        chunk: vec![b'x'; 64 * 1024],
    };
    let mut a = Analyzer::new("t", 3);
    a.read_all(io::BufReader::with_capacity(64 * 1024, source))
        .unwrap();
    let a = a.finish();
    assert_eq!(a.source.lines, 1);
    assert_eq!(a.source.truncated, 1);
    assert_eq!(a.source.bytes, LEN);
    assert_eq!(a.source.unknown, 1);
}

#[test]
fn finds_the_kill_its_run_and_context() {
    let mut log = String::new();
    for i in 0..60 {
        log += &format!("noise {i}\n");
    }
    log += "INFO Ranking samples: 100 rows before optimization\n";
    log += "INFO Preparing ranking data (samples: 100 rows, datasets: 7)\n";
    log += "INFO Merging with dataset features (300 columns)...\n";
    log += "Task exited with return code -9\n";
    for i in 0..60 {
        log += &format!("after {i}\n");
    }
    let a = analyze(log.as_bytes(), 50);
    let kill = a.kill.unwrap();
    assert_eq!(kill.line, 64);
    assert_eq!(a.run.ranking_samples_rows, Some(100));
    assert_eq!(a.run.datasets, Some(7));
    assert_eq!(a.run.dataset_feature_columns, Some(300));
    assert_eq!(
        a.run.last_stage.unwrap().stage.as_deref(),
        Some("merge_dataset_profile")
    );
    assert_eq!(a.context_before.len(), 50);
    assert_eq!(a.context_before.last().unwrap().line, 63);
    assert_eq!(a.context_after.len(), 50);
    assert_eq!(a.context_after[0].line, 65);
    assert_eq!(a.source.unknown, 120);
    assert_eq!(a.runs_seen, 1);
}

#[test]
fn a_new_run_starts_over() {
    let log = "Ranking samples: 5 rows before optimization\nMerging with dataset features (3 columns)\nRanking data prepared: 5 rows, 4 features\nRanking samples: 9 rows before optimization\nMerging with dataset features (3 columns)\nKilled\n";
    let a = analyze(log.as_bytes(), 5);
    assert_eq!(a.runs_seen, 2);
    assert_eq!(a.run.ranking_samples_rows, Some(9));
    assert_eq!(a.run.prepared_rows, None);
    assert_eq!(a.after_kill, None, "nothing ran after the kill");
}

#[test]
fn a_retry_after_the_kill_is_kept_apart_from_the_killed_run() {
    let log = "Ranking samples: 9 rows before optimization\nMerging with dataset features (3 columns)\nKilled\nRanking samples: 9 rows before optimization\nSampling ranking data: 9 -> 4 rows\nRanking data prepared: 4 rows, 4 features\n";
    let a = analyze(log.as_bytes(), 5);
    assert_eq!(a.runs_seen, 2);
    assert_eq!(
        a.run.last_stage.unwrap().stage.as_deref(),
        Some("merge_dataset_profile")
    );
    let retry = a.after_kill.expect("the retry");
    assert_eq!(retry.first_line, 4);
    assert_eq!(retry.sampling, Some((9, 4)));
    assert_eq!(retry.prepared_rows, Some(4));
}

#[test]
fn stats_are_thinned_not_unbounded() {
    let mut log = String::new();
    for i in 0..(MAX_STATS_POINTS * 3) {
        log += &format!("c1 app 1.0% {}MiB / 100GiB 1.0%\n", i % 1000 + 1);
    }
    let a = analyze(log.as_bytes(), 0);
    assert!(a.stats.len() <= MAX_STATS_POINTS);
    assert_eq!(
        a.stats.iter().map(|p| p.usage_bytes).max(),
        Some(1000 << 20)
    );
}

proptest! {
    #[test]
    fn any_bytes_scan_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096), context in 0usize..5) {
        let a = analyze(&bytes, context);
        prop_assert!(a.source.lines >= (bytes.iter().filter(|b| **b == b'\n').count() as u64));
    }

    #[test]
    fn lines_of_known_pieces_scan_without_panic(lines in proptest::collection::vec(
        prop_oneof![
            Just("INFO Ranking samples: 8532146 rows before optimization".to_string()),
            Just("INFO Merging with dataset features (87 columns)...".to_string()),
            Just("Killed".to_string()),
            Just("x 1GiB / 2GiB 50%".to_string()),
            ".{0,80}",
        ], 0..50)) {
        let text = lines.join("\n");
        let _ = analyze(text.as_bytes(), 3);
    }
}

#[test]
fn the_similarity_run_a_kill_interrupted_is_found_in_the_same_pass() {
    let computing = "[2025-12-25, 05:40:00 UTC] {x.py:1} INFO - Computing item similarity: 500000 items in 10000 micro-batches of 50 (SIMILARITY_MICRO_BATCH_SIZE=50), top 200 (SIMILARITY_TOP_K=200)\n";
    let noise: String = (0..5000).map(|i| format!("INFO heartbeat {i}\n")).collect();
    let open = format!("{noise}{computing}{noise}Killed\n{computing}");
    let a = analyze_with(open.as_bytes(), 3, 1000, 4096);
    let run = a.similarity.expect("the run the kill interrupted");
    assert_eq!(run.line, 5001);
    assert_eq!(
        (run.items, run.micro_batch_size, run.top_k),
        (500_000, Some(50), Some(200))
    );
    let done = format!("{computing}{noise}INFO Similarity computed: 5 items\n{noise}Killed\n");
    assert_eq!(analyze(done.as_bytes(), 3).similarity, None, "it finished");
    let unkilled = format!("{noise}{computing}{noise}");
    assert_eq!(analyze(unkilled.as_bytes(), 3).similarity, None, "no kill");
}
