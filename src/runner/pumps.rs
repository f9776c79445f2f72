//! Reading the child's stdout and stderr while it runs.
//!
//! Each stream gets its own thread, so a child that fills one pipe never
//! blocks on the other, and the runner's loop receives what matters
//! ([`Message`]) through one channel. A replay child's stdout carries the
//! `@oomlab` protocol; a recorded command's output is passed through, saved
//! and searched for stage markers. Both keep the tail of stderr, which says
//! why a child failed.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::Child;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::{Context, Result};

use super::{Marker, OutputStages};
use crate::protocol::{monotonic_ns, Event};

/// How many stderr lines a failed run keeps.
const STDERR_TAIL_LINES: usize = 40;

/// Longest output line (bytes) kept for stage matching; the rest of a longer
/// line is still passed through and saved, just not matched.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// What the reader threads hand to the runner's loop.
pub enum Message {
    /// A protocol event of a replay child.
    Event(Event),
    /// A replay child's stdout line that is not protocol (a library printing).
    Output(String),
    /// A recorded command's marker line, seen at this `CLOCK_MONOTONIC` time.
    Marker(u64, Marker),
}

/// The last [`STDERR_TAIL_LINES`] lines of the child's stderr, shared between
/// the reader that fills it and the runner that reports it.
#[derive(Clone, Default)]
pub struct StderrTail(Arc<Mutex<VecDeque<String>>>);

impl StderrTail {
    fn push(&self, line: String) {
        if let Ok(mut t) = self.0.lock() {
            if t.len() == STDERR_TAIL_LINES {
                t.pop_front();
            }
            t.push_back(line);
        }
    }

    /// The lines kept so far, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The running readers of one child.
pub struct Pumps {
    /// Closes when every reader has ended (the child and every descendant
    /// holding its pipes are gone).
    pub messages: mpsc::Receiver<Message>,
    /// The tail of stderr.
    pub stderr_tail: StderrTail,
    /// The reader threads.
    pub readers: Vec<JoinHandle<()>>,
}

impl Pumps {
    /// Takes the child's stdout and stderr and starts their readers: the
    /// protocol for a replay child, else `output`'s passthrough, saving and
    /// marker search (its log files are created here).
    pub fn start(child: &mut Child, output: Option<&OutputStages>) -> Result<Self> {
        let (tx, messages) = mpsc::channel::<Message>();
        let stderr_tail = StderrTail::default();
        let stdout = child.stdout.take().context("child stdout")?;
        let stderr = child.stderr.take().context("child stderr")?;
        let readers = match output {
            None => protocol_readers(stdout, stderr, tx, stderr_tail.clone()),
            Some(o) => output_readers(stdout, stderr, tx, stderr_tail.clone(), o)?,
        };
        Ok(Self {
            messages,
            stderr_tail,
            readers,
        })
    }
}

/// Joins the readers that have ended; one still held open by a descendant
/// that outlived the run is left to finish on its own.
pub fn join_finished(readers: Vec<JoinHandle<()>>) {
    for reader in readers {
        if reader.is_finished() {
            let _ = reader.join();
        }
    }
}

/// Readers of a replay child: protocol lines from stdout, a tail of stderr.
fn protocol_readers(
    stdout: impl Read + Send + 'static,
    stderr: impl Read + Send + 'static,
    tx: mpsc::Sender<Message>,
    stderr_tail: StderrTail,
) -> Vec<JoinHandle<()>> {
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let msg = match Event::parse_line(&line) {
                Some(Ok(event)) => Message::Event(event),
                _ => Message::Output(line),
            };
            if tx.send(msg).is_err() {
                break;
            }
        }
    });
    let err_reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            stderr_tail.push(line);
        }
    });
    vec![reader, err_reader]
}

/// Readers of a recorded command: each stream is passed through, saved, and
/// searched line by line for stage markers.
fn output_readers(
    stdout: impl Read + Send + 'static,
    stderr: impl Read + Send + 'static,
    tx: mpsc::Sender<Message>,
    stderr_tail: StderrTail,
    o: &OutputStages,
) -> Result<Vec<JoinHandle<()>>> {
    let file = |name: &str| -> Result<Option<File>> {
        o.save_dir
            .as_ref()
            .map(|d| {
                std::fs::create_dir_all(d)
                    .and_then(|_| File::create(d.join(name)))
                    .with_context(|| format!("creating {}", d.join(name).display()))
            })
            .transpose()
    };
    let (out_file, err_file) = (file("stdout.log")?, file("stderr.log")?);
    let mut handles = Vec::new();
    for (is_stdout, source, save, markers) in [
        (
            true,
            Box::new(stdout) as Box<dyn Read + Send>,
            out_file,
            o.stdout_markers,
        ),
        (false, Box::new(stderr), err_file, o.stderr_markers),
    ] {
        let (tx, marker, tail) = (tx.clone(), o.marker.clone(), stderr_tail.clone());
        let passthrough = o.passthrough;
        handles.push(std::thread::spawn(move || {
            let mut save = save;
            pump(
                source,
                |chunk| {
                    if passthrough {
                        if is_stdout {
                            let mut out = std::io::stdout().lock();
                            let _ = out.write_all(chunk).and_then(|_| out.flush());
                        } else {
                            let mut err = std::io::stderr().lock();
                            let _ = err.write_all(chunk).and_then(|_| err.flush());
                        }
                    }
                    if let Some(f) = save.as_mut() {
                        let _ = f.write_all(chunk);
                    }
                },
                |line| {
                    let t_ns = monotonic_ns();
                    if !is_stdout {
                        tail.push(line.to_string());
                    }
                    if markers {
                        if let Some(m) = marker(line) {
                            let _ = tx.send(Message::Marker(t_ns, m));
                        }
                    }
                },
            );
            if let Some(f) = save.as_mut() {
                let _ = f.flush();
            }
        }));
    }
    Ok(handles)
}

/// Copies `source` chunk by chunk to `on_chunk` as it arrives, and calls
/// `on_line` for each complete line (lossily decoded, at most
/// [`MAX_LINE_BYTES`] of it, without the line ending).
fn pump(mut source: impl Read, mut on_chunk: impl FnMut(&[u8]), mut on_line: impl FnMut(&str)) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut line: Vec<u8> = Vec::new();
    let mut emit = |line: &mut Vec<u8>| {
        let text = String::from_utf8_lossy(line);
        on_line(text.trim_end_matches('\r'));
        line.clear();
    };
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let chunk = &buf[..n];
        on_chunk(chunk);
        for piece in chunk.split_inclusive(|b| *b == b'\n') {
            let (body, ends) = match piece.split_last() {
                Some((b'\n', body)) => (body, true),
                _ => (piece, false),
            };
            let room = MAX_LINE_BYTES.saturating_sub(line.len());
            line.extend_from_slice(&body[..body.len().min(room)]);
            if ends {
                emit(&mut line);
            }
        }
    }
    if !line.is_empty() {
        emit(&mut line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pump_splits_lines_and_passes_everything_through() {
        let input: &[u8] = b"one\r\ntwo\n\xffthree";
        let mut chunks = Vec::new();
        let mut lines = Vec::new();
        pump(
            input,
            |c| chunks.extend_from_slice(c),
            |l| lines.push(l.to_string()),
        );
        assert_eq!(chunks, input);
        assert_eq!(lines, vec!["one", "two", "\u{fffd}three"]);
    }

    #[test]
    fn pump_caps_long_lines() {
        let input = vec![b'x'; MAX_LINE_BYTES * 3];
        let mut lines = Vec::new();
        pump(&input[..], |_| {}, |l| lines.push(l.len()));
        assert_eq!(lines, vec![MAX_LINE_BYTES]);
    }

    #[test]
    fn the_stderr_tail_keeps_the_last_lines() {
        let tail = StderrTail::default();
        for i in 0..STDERR_TAIL_LINES + 5 {
            tail.clone().push(i.to_string());
        }
        let lines = tail.lines();
        assert_eq!(lines.len(), STDERR_TAIL_LINES);
        assert_eq!(lines[0], "5");
        assert_eq!(lines.last().map(String::as_str), Some("44"));
    }

    #[test]
    fn protocol_readers_route_events_and_output() {
        let (tx, rx) = mpsc::channel();
        let tail = StderrTail::default();
        let event = Event::Log {
            t_ns: 7,
            level: "INFO".into(),
            message: "hello".into(),
        };
        let stdout = format!("{}\nplain line\n", event.to_line()).into_bytes();
        let stderr: &'static [u8] = b"warn 1\nwarn 2\n";
        let readers = protocol_readers(std::io::Cursor::new(stdout), stderr, tx, tail.clone());
        for r in readers {
            r.join().unwrap();
        }
        let got: Vec<Message> = rx.iter().collect();
        assert!(matches!(&got[..], [Message::Event(e), Message::Output(l)]
            if *e == event && l == "plain line"));
        assert_eq!(tail.lines(), vec!["warn 1", "warn 2"]);
    }

    #[test]
    fn output_readers_save_and_find_markers_on_their_stream() {
        let dir = std::env::temp_dir().join(format!("oomlab-pumps-{}", std::process::id()));
        let o = OutputStages {
            marker: Arc::new(|l: &str| {
                l.strip_prefix("STAGE ").map(|s| Marker {
                    stage: s.into(),
                    level: String::new(),
                    message: l.into(),
                })
            }),
            stdout_markers: true,
            stderr_markers: false,
            save_dir: Some(dir.clone()),
            passthrough: false,
            recorded: Default::default(),
        };
        let (tx, rx) = mpsc::channel();
        let tail = StderrTail::default();
        let stdout: &'static [u8] = b"hello\nSTAGE load\n";
        let stderr: &'static [u8] = b"STAGE hidden\noops\n";
        let readers = output_readers(stdout, stderr, tx, tail.clone(), &o).unwrap();
        for r in readers {
            r.join().unwrap();
        }
        let stages: Vec<String> = rx
            .iter()
            .map(|m| match m {
                Message::Marker(_, m) => m.stage,
                _ => panic!("only markers come from a recorded command"),
            })
            .collect();
        assert_eq!(stages, vec!["load"]);
        assert_eq!(tail.lines(), vec!["STAGE hidden", "oops"]);
        let saved = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(saved("stdout.log"), "hello\nSTAGE load\n");
        assert_eq!(saved("stderr.log"), "STAGE hidden\noops\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
