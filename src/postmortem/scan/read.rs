//! Reading a log a buffer at a time, touching only the lines that can matter.
//!
//! Almost every line of a scheduler log is noise, so a buffer of whole lines
//! is searched as a whole for what makes a line worth reading in full: the
//! phrases a recognized line must hold ([`NEEDLES`] and the similarity
//! step's, one Aho-Corasick search over the buffer in ASCII lowercase), a
//! slash after a size unit (a `docker stats` row), and a line longer than the
//! cap. Only those lines go through [`Analyzer::feed`]; the lines between two
//! of them are counted from the newline bits of the buffer's one pass
//! ([`survey`]; blank ones apart: only a line that starts with white space
//! can be), and what a full read would have taken from them (the last time
//! stamp, the lines kept as context) is taken from their tail
//! ([`Analyzer::settle`]). The result is the same as feeding every line,
//! which the tests check; a noisy log is read at about 3 GB/s of CPU time,
//! as fast as `grep -c` (`bench/postmortem.sh`). The buffers come from
//! `read` here, or from maps of the file (`map.rs`).

use std::io::{self, Read};
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};
use memchr::{memchr, memrchr};

use super::super::parse::{find_timestamp, size_before_slash, NEEDLES};
use super::super::similarity::NEEDLE as SIMILARITY_NEEDLE;
use super::bytes::{first_binary, survey, Marks};
use super::{short_text, Analyzer};

/// The search for lines worth reading in full: [`NEEDLES`] and the
/// similarity step's phrase (Aho-Corasick, whose Teddy search takes a buffer
/// at a time), and slashes after a size unit (a `docker stats` row, see
/// [`size_before_slash`]).
pub(super) struct Prefilter {
    needles: AhoCorasick,
}

impl Prefilter {
    pub(super) fn get() -> &'static Prefilter {
        static PREFILTER: OnceLock<Prefilter> = OnceLock::new();
        PREFILTER.get_or_init(|| Prefilter {
            // The order matters to the speed, not to what is found: see
            // NEEDLES on the search's buckets.
            needles: AhoCorasick::builder()
                .kind(Some(AhoCorasickKind::DFA))
                .match_kind(MatchKind::LeftmostFirst)
                .build(NEEDLES.iter().chain([&SIMILARITY_NEEDLE]))
                .expect("the needles are few and plain"),
        })
    }

    /// Where the first needle at or after `from` starts in `lower` (a text
    /// in ASCII lowercase: needles match whatever their case, as
    /// [`super::classify`] reads lines), or `usize::MAX`.
    fn next_needle(&self, lower: &[u8], from: usize) -> usize {
        let span = from.min(lower.len())..lower.len();
        self.needles
            .find(Input::new(lower).span(span))
            .map_or(usize::MAX, |m| m.start())
    }

    /// Where the first slash after a size unit at or after `from` is in
    /// `text` (which starts at byte `base` of the buffer `marks` surveyed),
    /// or `usize::MAX`. Most slashes (paths, URLs) follow a letter other
    /// than `b`, which the survey told by the byte before them; the rest
    /// are checked here.
    fn next_size_slash(text: &str, from: usize, base: usize, marks: &Marks) -> usize {
        let bytes = text.as_bytes();
        let end = base + bytes.len();
        let first = marks
            .slashes
            .partition_point(|&p| (p as usize) < base + from);
        for &p in &marks.slashes[first..] {
            let p = p as usize;
            if p >= end {
                break;
            }
            let at = p - base;
            // Back over ASCII blanks (`from /opt/...` is common) to the
            // character that decides; anything wider is left to the parser.
            let head = &bytes[..at];
            let unit = match head
                .iter()
                .rposition(|b| !matches!(b, b' ' | b'\t' | b'\x0b' | b'\x0c' | b'\r'))
            {
                Some(i) if head[i].is_ascii() => head[i] | 0x20 == b'b',
                Some(_) => size_before_slash(text, at),
                None => false,
            };
            if unit {
                return at;
            }
        }
        usize::MAX
    }

    /// Whether a line may be one [`super::classify`] knows.
    #[cfg(test)]
    pub(super) fn passes(&self, line: &str) -> bool {
        let (mut lower, mut marks) = (Vec::new(), Marks::default());
        survey(line.as_bytes(), &mut lower, &mut marks);
        self.next_needle(&lower, 0) != usize::MAX
            || Self::next_size_slash(line, 0, 0, &marks) != usize::MAX
    }
}

/// A line as the analyzer keeps it: its first `max` bytes (without `\n`)
/// minus a final `\r`, and whether it was longer.
pub(super) fn kept(raw: &[u8], max: usize) -> (&[u8], bool) {
    let truncated = raw.len() > max;
    let line = &raw[..raw.len().min(max)];
    (line.strip_suffix(b"\r").unwrap_or(line), truncated)
}

/// The longest head of `lines` (whole lines, each ending in `\n`, part of
/// the buffer `marks` surveyed) that is UTF-8 without binary bytes: the
/// part the fast path may read as text. A buffer with neither is all of it.
fn clean_head<'a>(lines: &'a [u8], marks: &Marks) -> &'a str {
    if !marks.binary && !marks.wide {
        // SAFETY: every byte of the buffer, so of `lines`, is ASCII (the
        // survey saw none with its top bit set), and ASCII is UTF-8.
        return unsafe { std::str::from_utf8_unchecked(lines) };
    }
    let limit = if marks.binary {
        first_binary(lines).unwrap_or(lines.len())
    } else {
        lines.len()
    };
    let valid = match std::str::from_utf8(&lines[..limit]) {
        Ok(text) => text,
        // Whatever is not read here is read line by line, so "" is safe.
        Err(e) => std::str::from_utf8(&lines[..e.valid_up_to()]).unwrap_or(""),
    };
    &valid[..valid.rfind('\n').map_or(0, |i| i + 1)]
}

/// Whether `b` can start a white-space character (`char::is_whitespace`:
/// ASCII blanks, and U+0085, U+00A0, U+1680, U+2000 to U+3000 in UTF-8). A
/// line that starts with anything else is not blank.
fn blank_lead(b: u8) -> bool {
    matches!(b, b'\t'..=b'\r' | b' ' | 0xc2 | 0xe1..=0xe3)
}

/// Start of the first line at or after `from` (a line start in `bytes`,
/// whole lines) longer than `max` bytes, or `usize::MAX`: a window of
/// `max + 1` bytes without a newline holds one, so the search jumps from the
/// last newline of one window to the next.
fn next_long(bytes: &[u8], mut from: usize, max: usize) -> usize {
    while bytes.len().saturating_sub(from) > max + 1 {
        match memrchr(b'\n', &bytes[from..from + max + 1]) {
            Some(i) => from += i + 1,
            None => return from,
        }
    }
    usize::MAX
}

impl Analyzer {
    /// Reads a whole stream through the analyzer, [`super::CHUNK_BYTES`] at
    /// a time (no need for a `BufReader`): the same findings as
    /// [`Analyzer::feed`] on every line.
    pub fn read_all(&mut self, mut reader: impl Read) -> io::Result<()> {
        let mut buf = vec![0u8; self.chunk_bytes.max(self.max_line + 1)];
        let (mut lower, mut marks) = (Vec::new(), Marks::default());
        let mut filled = 0;
        let mut total = 0u64;
        // The head of a line longer than the buffer, while its tail is skipped.
        let mut long_head: Option<Vec<u8>> = None;
        let mut eof = false;
        while !eof {
            while filled < buf.len() {
                match reader.read(&mut buf[filled..]) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => {
                        filled += n;
                        total += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            let mut start = 0;
            if let Some(head) = &long_head {
                let Some(nl) = memchr(b'\n', &buf[..filled]) else {
                    filled = 0;
                    continue;
                };
                let (line, truncated) = kept(head, self.max_line);
                self.feed(line, truncated);
                long_head = None;
                start = nl + 1;
            }
            let end = memrchr(b'\n', &buf[start..filled]).map_or(start, |i| start + i + 1);
            self.scan_lines(&buf[start..end], &mut lower, &mut marks);
            if eof {
                if end < filled {
                    // The last line, without a line ending.
                    let (line, truncated) = kept(&buf[end..filled], self.max_line);
                    self.feed(line, truncated);
                }
            } else if filled - end == buf.len() {
                // One line fills the buffer: keep its head, skip to its end.
                long_head = Some(buf[..self.max_line + 1].to_vec());
                filled = 0;
            } else {
                buf.copy_within(end..filled, 0);
                filled -= end;
            }
        }
        if let Some(head) = long_head {
            let (line, truncated) = kept(&head, self.max_line);
            self.feed(line, truncated);
        }
        // `feed` counts only what each line kept; the reader knows the rest.
        self.out.source.bytes = total;
        Ok(())
    }

    /// Reads whole lines (each ending in `\n`): clean text on the fast path,
    /// any line that is not UTF-8 or holds binary bytes in full.
    pub(super) fn scan_lines(&mut self, lines: &[u8], lower: &mut Vec<u8>, marks: &mut Marks) {
        survey(lines, lower, marks);
        let mut at = 0;
        while at < lines.len() {
            let text = clean_head(&lines[at..], marks);
            self.scan_text(text, at, lower, marks);
            at += text.len();
            let Some(nl) = memchr(b'\n', &lines[at..]) else {
                break;
            };
            let (line, truncated) = kept(&lines[at..at + nl], self.max_line);
            self.feed(line, truncated);
            at += nl + 1;
        }
    }

    /// The fast path over whole lines of clean text (from byte `base` of
    /// the buffer surveyed into `lower` and `marks`): the lines the searches
    /// find (and those kept after a kill) are fed in full; the lines between
    /// them are counted together and settled ([`Analyzer::skip`]).
    fn scan_text(&mut self, text: &str, base: usize, lower: &[u8], marks: &Marks) {
        if text.is_empty() {
            return;
        }
        let prefilter = Prefilter::get();
        let bytes = text.as_bytes();
        let lower = &lower[base..base + bytes.len()];
        // The next find of each search: they run ahead, and are searched
        // again once the lines read in full have passed them.
        let mut needle = prefilter.next_needle(lower, 0);
        let mut slash = Prefilter::next_size_slash(text, 0, base, marks);
        let mut long = next_long(bytes, 0, self.max_line);
        // Start of the lines counted but not yet settled, and of the next line.
        let (mut gap, mut pos) = (0, 0);
        while pos < bytes.len() {
            let at = if self.after_needed > 0 {
                pos
            } else {
                if needle < pos {
                    needle = prefilter.next_needle(lower, pos);
                }
                if slash < pos {
                    slash = Prefilter::next_size_slash(text, pos, base, marks);
                }
                if long < pos {
                    long = next_long(bytes, pos, self.max_line);
                }
                needle.min(slash).min(long)
            };
            if at >= bytes.len() {
                break;
            }
            let start = memrchr(b'\n', &bytes[pos..at]).map_or(pos, |i| pos + i + 1);
            let end = memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i);
            self.skip(&text[gap..start], base + gap, marks);
            let (line, truncated) = kept(&bytes[start..end], self.max_line);
            self.feed(line, truncated);
            pos = (end + 1).min(bytes.len());
            gap = pos;
        }
        self.skip(&text[gap..], base + gap, marks);
    }

    /// Counts whole lines (from byte `at` of the buffer `marks` surveyed)
    /// that none of the searches found: none is one of the known lines, and
    /// only one that starts with white space can be blank.
    fn skip(&mut self, lines: &str, at: usize, marks: &Marks) {
        if lines.is_empty() {
            return;
        }
        let bytes = lines.as_bytes();
        let n = marks.newlines_in(at, at + bytes.len());
        let first = marks.blank_starts.partition_point(|&p| (p as usize) < at);
        let mut empty = 0;
        for &p in &marks.blank_starts[first..] {
            let start = p as usize - at;
            if start >= bytes.len() {
                break;
            }
            let end = memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i);
            if blank_lead(bytes[start]) && lines[start..end].trim().is_empty() {
                empty += 1;
            }
        }
        let s = &mut self.out.source;
        s.lines += n;
        s.empty += empty;
        s.unknown += n - empty;
        self.settle(lines);
    }

    /// Takes from lines that were only counted (each ending in `\n`, the
    /// last being the last line counted) what [`Analyzer::feed`] would have:
    /// the latest time stamp, and the lines kept as context.
    fn settle(&mut self, skipped: &str) {
        let Some(skipped) = skipped.strip_suffix('\n') else {
            return;
        };
        if let Some(t) = skipped
            .rsplit('\n')
            .find_map(|l| find_timestamp(l.strip_suffix('\r').unwrap_or(l)))
        {
            self.last_time = Some(t);
        }
        if self.context == 0 || self.out.kill.is_some() {
            return;
        }
        let last = self.out.source.lines;
        let mut kept: Vec<&str> = skipped.rsplit('\n').take(self.context).collect();
        kept.reverse();
        let first = last + 1 - kept.len() as u64;
        for (i, l) in kept.into_iter().enumerate() {
            let l = l.strip_suffix('\r').unwrap_or(l);
            self.remember(first + i as u64, short_text(l));
        }
    }
}
