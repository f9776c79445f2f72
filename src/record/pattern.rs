//! The regular expressions behind `record --stage-pattern`, on the `regex` crate.
//!
//! Stage markers are log lines picked by a pattern the user writes, so it is a
//! real regular expression: the `regex` crate's syntax, matched in time linear
//! in the line whatever the pattern (no exponential blow-up on a hostile
//! pattern or line). One extension keeps patterns written for log formats
//! working: a `{` that does not start a counted repetition (`{2}`, `{2,}`,
//! `{2,5}`) is a literal brace, as in Airflow's `{file.py:12}` prefixes.

use regex::{Regex, RegexBuilder};

/// A compiled pattern, with the text it was compiled from (the report records
/// the pattern as the user wrote it).
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    regex: Regex,
}

/// What a pattern matched on a line: the whole match and its first group
/// (a stage's message: the group when there is one, else the whole match).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternMatch {
    /// The text the whole pattern matched.
    pub whole: String,
    /// The first capturing group, when the pattern has one and it took part.
    pub group1: Option<String>,
}

/// Lines longer than this are matched on their first this-many characters, so
/// a marker found in a megabyte-long line is where a reader would see it.
pub const MAX_MATCH_CHARS: usize = 4096;

/// Compiled size allowed to one pattern: roomy for any stage marker, small
/// enough that a pattern like `(a{999}){999}` is refused at once.
const SIZE_LIMIT: usize = 1 << 20;

/// `source` with every `{` that cannot open a counted repetition escaped.
fn literal_braces(source: &str) -> String {
    let mut out = String::with_capacity(source.len() + 4);
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            '{' if !chars.peek().is_some_and(|n| n.is_ascii_digit()) => out.push_str(r"\{"),
            c => out.push(c),
        }
    }
    out
}

/// A `regex` syntax error (`regex parse error:`, the pattern with a caret
/// line under the problem, `error: what`) as what is wrong, then the pattern
/// and the caret.
fn syntax_error(message: &str) -> String {
    message
        .strip_prefix("regex parse error:\n")
        .and_then(|body| body.rsplit_once("\nerror: "))
        .map_or_else(
            || message.to_string(),
            |(shown, what)| format!("{what}\n{shown}"),
        )
}

impl Pattern {
    /// Compiles `source`; the error says what is wrong and shows the pattern
    /// with a caret under the place.
    pub fn new(source: &str) -> Result<Self, String> {
        let regex = RegexBuilder::new(&literal_braces(source))
            .size_limit(SIZE_LIMIT)
            .build()
            .map_err(|e| match e {
                regex::Error::Syntax(message) => syntax_error(&message),
                regex::Error::CompiledTooBig(limit) => format!(
                    "pattern too large once repetitions are expanded (over {} KiB compiled)",
                    limit / 1024
                ),
                e => e.to_string(),
            })?;
        Ok(Self {
            source: source.to_string(),
            regex,
        })
    }

    /// [`Pattern::new`] for a pattern the user gave as `--stage-pattern` (or
    /// a baseline's `stage_pattern`): a bad one is bad input (exit 2) naming
    /// the flag and the pattern, the same words wherever it is read.
    pub fn from_flag(source: &str) -> anyhow::Result<Self> {
        Self::new(source)
            .map_err(|e| crate::error::bad_input(format!("--stage-pattern {source}: {e}")))
    }

    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The leftmost match in `line` (first [`MAX_MATCH_CHARS`] characters).
    pub fn find(&self, line: &str) -> Option<PatternMatch> {
        let line = match line.char_indices().nth(MAX_MATCH_CHARS) {
            Some((end, _)) => &line[..end],
            None => line,
        };
        if self.regex.captures_len() < 2 {
            let m = self.regex.find(line)?;
            return Some(PatternMatch {
                whole: m.as_str().to_string(),
                group1: None,
            });
        }
        let caps = self.regex.captures(line)?;
        Some(PatternMatch {
            whole: caps.get(0).map_or("", |m| m.as_str()).to_string(),
            group1: caps.get(1).map(|m| m.as_str().to_string()),
        })
    }

    /// True when the pattern matches somewhere in `line`.
    #[cfg(test)]
    pub fn is_match(&self, line: &str) -> bool {
        self.find(line).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(p: &str, line: &str) -> Option<(String, Option<String>)> {
        Pattern::new(p)
            .unwrap()
            .find(line)
            .map(|m| (m.whole, m.group1))
    }

    #[test]
    fn matches_the_common_syntax() {
        assert_eq!(m("abc", "xxabcxx").unwrap().0, "abc");
        assert!(m("^abc", "xabc").is_none());
        assert!(m("abc$", "abcx").is_none());
        assert_eq!(m("a.c", "a-c").unwrap().0, "a-c");
        assert_eq!(m(r"\d+", "rows: 8532146 x").unwrap().0, "8532146");
        assert_eq!(m("[a-c]+", "zzabcabd").unwrap().0, "abcab");
        assert_eq!(m("[^ ]+", "  word ").unwrap().0, "word");
        assert_eq!(m("colou?r", "color").unwrap().0, "color");
        assert_eq!(m("a{2,3}", "aaaa").unwrap().0, "aaa");
        assert_eq!(m("a{2}", "aaaa").unwrap().0, "aa");
        assert_eq!(m("a{2,}", "aaaa").unwrap().0, "aaaa");
        assert_eq!(m("a+?", "aaaa").unwrap().0, "a");
        assert_eq!(m("cat|dog", "hotdog").unwrap().0, "dog");
        assert_eq!(m(r"\bINFO\b", "xINFO INFO").unwrap().0, "INFO");
        assert!(m(r"\bINFO\b", "INFOS").is_none());
        assert_eq!(m("(?i)info", "x INFO").unwrap().0, "INFO");
        assert_eq!(m(r"\.", "a.b").unwrap().0, ".");
        assert_eq!(m("[.]", "ab.").unwrap().0, ".");
        assert_eq!(m(r"[\d,]+", "rows 8,532,146").unwrap().0, "8,532,146");
    }

    #[test]
    fn braces_that_count_nothing_are_literal() {
        assert_eq!(m("x{a}", "x{a}").unwrap().0, "x{a}");
        assert_eq!(
            m(
                r"\{train_models.py:\d+} INFO - (.*)",
                "[t] {train_models.py:12} INFO - Merging"
            )
            .unwrap()
            .1
            .as_deref(),
            Some("Merging")
        );
        assert_eq!(m(r"\{x", "{x").unwrap().0, "{x");
        assert_eq!(m("[{]", "a{").unwrap().0, "{");
        assert_eq!(literal_braces(r"a{2}\{{b"), r"a{2}\{\{b");
    }

    #[test]
    fn captures_the_first_group() {
        let (_, g) = m(
            r"\bINFO\b\W*(.*\S)",
            "2025-12-25 08:19 - INFO - Merging with x ",
        )
        .unwrap();
        assert_eq!(g.as_deref(), Some("Merging with x"));
        let (_, g) = m(r"(?:a|b)(c)?", "a").unwrap();
        assert_eq!(g, None);
    }

    #[test]
    fn matches_only_the_head_of_a_huge_line() {
        let line = format!("{}INFO", "x".repeat(MAX_MATCH_CHARS));
        assert!(m("INFO", &line).is_none());
        assert_eq!(m("x$", &line).unwrap().0, "x");
    }

    #[test]
    fn rejects_bad_patterns_saying_what_and_where() {
        for (bad, what) in [
            ("(", "unclosed group"),
            (")", "unopened group"),
            ("[a-", "unclosed character class"),
            ("*a", "repetition operator missing expression"),
            ("a{3,1}", "invalid repetition count range"),
            (r"\q", "unrecognized escape sequence"),
            ("(?=x)", "look-around"),
            ("(a{999}){999}", "too large"),
        ] {
            let err = Pattern::new(bad).unwrap_err();
            assert!(err.contains(what), "{bad}: {err}");
            if what != "too large" {
                // What is wrong first, then the pattern with a caret under it.
                assert!(err.starts_with(what), "{bad}: {err}");
                assert!(err.contains(bad) && err.contains('^'), "{bad}: {err}");
                assert!(!err.contains("error:"), "{bad}: {err}");
            }
        }
    }

    proptest! {
        #[test]
        fn never_panics(pattern in ".{0,40}", line in ".{0,200}") {
            if let Ok(p) = Pattern::new(&pattern) {
                let _ = p.find(&line);
            }
        }

        #[test]
        fn literal_patterns_find_themselves(word in "[a-zA-Z0-9 ]{1,20}", pre in "[a-z]{0,10}") {
            let p = Pattern::new(&word).unwrap();
            let line = format!("{pre}{word}");
            prop_assert!(p.is_match(&line));
        }

        #[test]
        fn hostile_patterns_answer_in_linear_time(n in 1000usize..20_000) {
            // Each would take exponential time in a backtracking matcher.
            let line = "a".repeat(n);
            for pattern in ["(a*)*b", "(a|a)*b", "(a+)+$x"] {
                prop_assert!(!Pattern::new(pattern).unwrap().is_match(&line));
            }
        }
    }
}
