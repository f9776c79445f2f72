//! The small regular-expression engine behind `record --stage-pattern`.
//!
//! Stage markers are log lines picked by a pattern the user writes, so it must
//! be a real regular expression; oomlab's dependency list does not include a
//! regex crate, so this is a compact one: the common syntax (literals, `.`,
//! classes `[a-z]` `[^...]`, `\d \w \s \D \W \S \b \B`, anchors `^ $`, groups
//! `(...)` `(?:...)`, alternation `|`, greedy and lazy `* + ? {n} {n,} {n,m}`,
//! a leading `(?i)` for case-insensitive matching), compiled to a small program
//! run by a backtracking matcher that remembers the states it has tried, so a
//! match costs at most program length x line length steps whatever the pattern
//! (no exponential blow-up on a hostile pattern or line).

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    prog: Vec<Inst>,
    groups: usize,
    icase: bool,
}

/// What a pattern matched on a line: the whole match and its first group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternMatch {
    pub whole: String,
    /// The first capturing group, when the pattern has one and it took part.
    pub group1: Option<String>,
}

/// Lines longer than this are matched on their first this-many characters.
pub const MAX_MATCH_CHARS: usize = 4096;
const MAX_REPEAT: u32 = 100;
const MAX_PROGRAM: usize = 20_000;

#[derive(Debug, Clone)]
enum Inst {
    Char(char),
    Any,
    Class(Class),
    Split(usize, usize),
    Jmp(usize),
    Save(usize),
    Bol,
    Eol,
    WordBoundary(bool),
    Match,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Item {
    Range(char, char),
    Digit(bool),
    Word(bool),
    Space(bool),
}

#[derive(Debug, Clone, PartialEq)]
struct Class {
    negated: bool,
    items: Vec<Item>,
}

#[derive(Debug, Clone)]
enum Node {
    Empty,
    Char(char),
    Any,
    Class(Class),
    Bol,
    Eol,
    WordBoundary(bool),
    Group(Box<Node>, Option<usize>),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat {
        node: Box<Node>,
        min: u32,
        max: Option<u32>,
        greedy: bool,
    },
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Item {
    fn matches(&self, c: char, icase: bool) -> bool {
        match *self {
            Item::Range(a, b) => {
                (a..=b).contains(&c)
                    || (icase
                        && ((a..=b).contains(&c.to_ascii_lowercase())
                            || (a..=b).contains(&c.to_ascii_uppercase())))
            }
            Item::Digit(neg) => c.is_ascii_digit() != neg,
            Item::Word(neg) => is_word(c) != neg,
            Item::Space(neg) => c.is_whitespace() != neg,
        }
    }
}

impl Class {
    fn matches(&self, c: char, icase: bool) -> bool {
        self.items.iter().any(|i| i.matches(c, icase)) != self.negated
    }
}

struct Parser<'a> {
    chars: &'a [char],
    pos: usize,
    groups: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn err(&self, what: &str) -> String {
        format!("{what} at character {}", self.pos + 1)
    }

    fn alt(&mut self, depth: usize) -> Result<Node, String> {
        if depth > 50 {
            return Err(self.err("groups nested too deeply"));
        }
        let mut branches = vec![self.concat(depth)?];
        while self.eat('|') {
            branches.push(self.concat(depth)?);
        }
        Ok(if branches.len() == 1 {
            branches.remove(0)
        } else {
            Node::Alt(branches)
        })
    }

    fn concat(&mut self, depth: usize) -> Result<Node, String> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom(depth)?;
            items.push(self.repeat(atom)?);
        }
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.remove(0),
            _ => Node::Concat(items),
        })
    }

    fn number(&mut self) -> Option<u32> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        text.parse().ok()
    }

    fn repeat(&mut self, atom: Node) -> Result<Node, String> {
        let (min, max) = match self.peek() {
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('?') => (0, Some(1)),
            Some('{') => {
                let save = self.pos;
                self.pos += 1;
                let Some(min) = self.number() else {
                    // Not a counted repetition: a literal brace.
                    self.pos = save;
                    return Ok(atom);
                };
                let max = if self.eat(',') {
                    if self.peek() == Some('}') {
                        None
                    } else {
                        Some(self.number().ok_or_else(|| self.err("expected a number"))?)
                    }
                } else {
                    Some(min)
                };
                if self.peek() != Some('}') {
                    return Err(self.err("expected `}`"));
                }
                if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT || m < min) {
                    return Err(self.err("repetition count out of range (0..=100, min <= max)"));
                }
                (min, max)
            }
            _ => return Ok(atom),
        };
        self.pos += 1;
        if matches!(
            atom,
            Node::Bol | Node::Eol | Node::WordBoundary(_) | Node::Empty
        ) {
            return Err(self.err("nothing to repeat"));
        }
        let greedy = !self.eat('?');
        Ok(Node::Repeat {
            node: Box::new(atom),
            min,
            max,
            greedy,
        })
    }

    fn atom(&mut self, depth: usize) -> Result<Node, String> {
        let Some(c) = self.peek() else {
            return Err(self.err("unexpected end"));
        };
        self.pos += 1;
        Ok(match c {
            '.' => Node::Any,
            '^' => Node::Bol,
            '$' => Node::Eol,
            '(' => {
                let index = if self.eat('?') {
                    if !self.eat(':') {
                        return Err(
                            self.err("only (?:...) groups and a leading (?i) are supported")
                        );
                    }
                    None
                } else {
                    self.groups += 1;
                    Some(self.groups)
                };
                let inner = self.alt(depth + 1)?;
                if !self.eat(')') {
                    return Err(self.err("missing `)`"));
                }
                Node::Group(Box::new(inner), index)
            }
            ')' => return Err(self.err("unmatched `)`")),
            '[' => Node::Class(self.class()?),
            '*' | '+' | '?' => return Err(self.err("nothing to repeat")),
            '\\' => self.escape(false)?,
            c => Node::Char(c),
        })
    }

    /// An escape after `\`: a node outside classes, an item inside them.
    fn escape(&mut self, in_class: bool) -> Result<Node, String> {
        let Some(c) = self.peek() else {
            return Err(self.err("trailing backslash"));
        };
        self.pos += 1;
        let class = |item| {
            Node::Class(Class {
                negated: false,
                items: vec![item],
            })
        };
        Ok(match c {
            'd' => class(Item::Digit(false)),
            'D' => class(Item::Digit(true)),
            'w' => class(Item::Word(false)),
            'W' => class(Item::Word(true)),
            's' => class(Item::Space(false)),
            'S' => class(Item::Space(true)),
            'b' if !in_class => Node::WordBoundary(true),
            'B' if !in_class => Node::WordBoundary(false),
            'n' => Node::Char('\n'),
            't' => Node::Char('\t'),
            'r' => Node::Char('\r'),
            c if c.is_ascii_alphanumeric() => {
                return Err(self.err(&format!("unsupported escape \\{c}")))
            }
            c => Node::Char(c),
        })
    }

    fn class(&mut self) -> Result<Class, String> {
        let negated = self.eat('^');
        let mut items = Vec::new();
        let mut first = true;
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err("missing `]`"));
            };
            if c == ']' && !first {
                self.pos += 1;
                break;
            }
            first = false;
            self.pos += 1;
            let lo = if c == '\\' {
                match self.escape(true)? {
                    Node::Char(ch) => ch,
                    Node::Class(cl) => {
                        items.extend(cl.items);
                        continue;
                    }
                    _ => return Err(self.err("unsupported escape in a class")),
                }
            } else {
                c
            };
            if self.peek() == Some('-') && self.chars.get(self.pos + 1).is_some_and(|&n| n != ']') {
                self.pos += 1;
                let Some(mut hi) = self.peek() else {
                    return Err(self.err("missing `]`"));
                };
                self.pos += 1;
                if hi == '\\' {
                    match self.escape(true)? {
                        Node::Char(ch) => hi = ch,
                        _ => return Err(self.err("a range must end in a character")),
                    }
                }
                if hi < lo {
                    return Err(self.err("range out of order"));
                }
                items.push(Item::Range(lo, hi));
            } else {
                items.push(Item::Range(lo, lo));
            }
        }
        Ok(Class { negated, items })
    }
}

struct Compiler {
    prog: Vec<Inst>,
}

impl Compiler {
    fn emit(&mut self, inst: Inst) -> Result<usize, String> {
        if self.prog.len() >= MAX_PROGRAM {
            return Err("pattern too large once repetitions are expanded".into());
        }
        self.prog.push(inst);
        Ok(self.prog.len() - 1)
    }

    fn compile(&mut self, node: &Node) -> Result<(), String> {
        match node {
            Node::Empty => {}
            Node::Char(c) => {
                self.emit(Inst::Char(*c))?;
            }
            Node::Any => {
                self.emit(Inst::Any)?;
            }
            Node::Class(c) => {
                self.emit(Inst::Class(c.clone()))?;
            }
            Node::Bol => {
                self.emit(Inst::Bol)?;
            }
            Node::Eol => {
                self.emit(Inst::Eol)?;
            }
            Node::WordBoundary(b) => {
                self.emit(Inst::WordBoundary(*b))?;
            }
            Node::Group(inner, index) => {
                if let Some(i) = index {
                    self.emit(Inst::Save(2 * i))?;
                }
                self.compile(inner)?;
                if let Some(i) = index {
                    self.emit(Inst::Save(2 * i + 1))?;
                }
            }
            Node::Concat(items) => {
                for n in items {
                    self.compile(n)?;
                }
            }
            Node::Alt(branches) => {
                let mut jumps = Vec::new();
                for (i, b) in branches.iter().enumerate() {
                    if i + 1 < branches.len() {
                        let split = self.emit(Inst::Split(0, 0))?;
                        self.compile(b)?;
                        jumps.push(self.emit(Inst::Jmp(0))?);
                        let next = self.prog.len();
                        self.prog[split] = Inst::Split(split + 1, next);
                    } else {
                        self.compile(b)?;
                    }
                }
                let end = self.prog.len();
                for j in jumps {
                    self.prog[j] = Inst::Jmp(end);
                }
            }
            Node::Repeat {
                node,
                min,
                max,
                greedy,
            } => {
                for _ in 0..*min {
                    self.compile(node)?;
                }
                let split = |a: usize, b: usize| {
                    if *greedy {
                        Inst::Split(a, b)
                    } else {
                        Inst::Split(b, a)
                    }
                };
                match max {
                    None => {
                        let top = self.emit(Inst::Split(0, 0))?;
                        self.compile(node)?;
                        self.emit(Inst::Jmp(top))?;
                        let end = self.prog.len();
                        self.prog[top] = split(top + 1, end);
                    }
                    Some(max) => {
                        let mut splits = Vec::new();
                        for _ in *min..*max {
                            splits.push(self.emit(Inst::Split(0, 0))?);
                            self.compile(node)?;
                        }
                        let end = self.prog.len();
                        for s in splits {
                            self.prog[s] = split(s + 1, end);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl Pattern {
    /// Compiles `source`; the error names what is wrong and where.
    pub fn new(source: &str) -> Result<Self, String> {
        let (icase, body) = match source.strip_prefix("(?i)") {
            Some(rest) => (true, rest),
            None => (false, source),
        };
        let chars: Vec<char> = body.chars().collect();
        let mut parser = Parser {
            chars: &chars,
            pos: 0,
            groups: 0,
        };
        let node = parser.alt(0)?;
        if parser.pos < chars.len() {
            return Err(parser.err("unmatched `)`"));
        }
        let mut c = Compiler { prog: Vec::new() };
        c.emit(Inst::Save(0))?;
        c.compile(&node)?;
        c.emit(Inst::Save(1))?;
        c.emit(Inst::Match)?;
        Ok(Self {
            source: source.to_string(),
            prog: c.prog,
            groups: parser.groups,
            icase,
        })
    }

    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The leftmost match in `line` (first [`MAX_MATCH_CHARS`] characters).
    pub fn find(&self, line: &str) -> Option<PatternMatch> {
        let chars: Vec<char> = line.chars().take(MAX_MATCH_CHARS).collect();
        let slots = self.exec(&chars)?;
        let text = |a: Option<usize>, b: Option<usize>| -> Option<String> {
            let (a, b) = (a?, b?);
            (a <= b).then(|| chars[a..b].iter().collect())
        };
        Some(PatternMatch {
            whole: text(slots[0], slots[1]).unwrap_or_default(),
            group1: if self.groups >= 1 {
                text(slots[2], slots[3])
            } else {
                None
            },
        })
    }

    /// True when the pattern matches somewhere in `line`.
    #[cfg(test)]
    pub fn is_match(&self, line: &str) -> bool {
        self.find(line).is_some()
    }

    fn exec(&self, chars: &[char]) -> Option<Vec<Option<usize>>> {
        self.exec_counted(chars).0
    }

    /// [`Pattern::exec`], also returning the matcher's steps (iterations of
    /// its inner loop): the work the linear bound is about.
    fn exec_counted(&self, chars: &[char]) -> (Option<Vec<Option<usize>>>, u64) {
        let n = chars.len();
        let states = self.prog.len() * (n + 1);
        let mut visited = vec![0u64; states.div_ceil(64)];
        let nslots = 2 * (self.groups + 1);
        let mut steps = 0u64;
        for start in 0..=n {
            let mut slots = vec![None; nslots];
            if self.run(chars, start, &mut visited, &mut slots, &mut steps) {
                return (Some(slots), steps);
            }
        }
        (None, steps)
    }

    fn char_eq(&self, a: char, b: char) -> bool {
        a == b || (self.icase && a.eq_ignore_ascii_case(&b))
    }

    fn run(
        &self,
        chars: &[char],
        start: usize,
        visited: &mut [u64],
        slots: &mut [Option<usize>],
        steps: &mut u64,
    ) -> bool {
        enum Job {
            Try(usize, usize),
            Restore(usize, Option<usize>),
        }
        let n = chars.len();
        let mut stack = vec![Job::Try(0, start)];
        while let Some(job) = stack.pop() {
            let (mut pc, mut pos) = match job {
                Job::Restore(slot, old) => {
                    slots[slot] = old;
                    continue;
                }
                Job::Try(pc, pos) => (pc, pos),
            };
            loop {
                *steps += 1;
                // A state already tried failed then and fails now.
                let state = pc * (n + 1) + pos;
                let (word, bit) = (state / 64, 1u64 << (state % 64));
                if visited[word] & bit != 0 {
                    break;
                }
                visited[word] |= bit;
                match &self.prog[pc] {
                    Inst::Char(c) => {
                        if pos < n && self.char_eq(chars[pos], *c) {
                            pc += 1;
                            pos += 1;
                        } else {
                            break;
                        }
                    }
                    Inst::Any => {
                        if pos < n && chars[pos] != '\n' {
                            pc += 1;
                            pos += 1;
                        } else {
                            break;
                        }
                    }
                    Inst::Class(class) => {
                        if pos < n && class.matches(chars[pos], self.icase) {
                            pc += 1;
                            pos += 1;
                        } else {
                            break;
                        }
                    }
                    Inst::Split(a, b) => {
                        stack.push(Job::Try(*b, pos));
                        pc = *a;
                    }
                    Inst::Jmp(a) => pc = *a,
                    Inst::Save(slot) => {
                        stack.push(Job::Restore(*slot, slots[*slot]));
                        slots[*slot] = Some(pos);
                        pc += 1;
                    }
                    Inst::Bol => {
                        if pos == 0 {
                            pc += 1
                        } else {
                            break;
                        }
                    }
                    Inst::Eol => {
                        if pos == n {
                            pc += 1
                        } else {
                            break;
                        }
                    }
                    Inst::WordBoundary(want) => {
                        let before = pos > 0 && is_word(chars[pos - 1]);
                        let after = pos < n && is_word(chars[pos]);
                        if (before != after) == *want {
                            pc += 1
                        } else {
                            break;
                        }
                    }
                    Inst::Match => return true,
                }
            }
        }
        false
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
        assert_eq!(m("x{a}", "x{a}").unwrap().0, "x{a}");
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
    fn rejects_bad_patterns_with_a_position() {
        for bad in ["(", ")", "[a-", "*a", "a{3,1}", r"\q", "a{1000}", "(?=x)"] {
            let err = Pattern::new(bad).unwrap_err();
            assert!(
                err.contains("character") || err.contains("large"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn hostile_patterns_stay_linear() {
        // Every (instruction, position) state is entered once; a step either
        // enters one or stops at one already tried, reached by a pushed
        // alternative (at most one per entered state) or a new start.
        for pattern in ["(a*)*b", "(a|a)*b", "(a+)+$x"] {
            let p = Pattern::new(pattern).unwrap();
            let mut last = 0;
            for n in [1000usize, 2000, 4000] {
                let line: Vec<char> = "a".repeat(n).chars().collect();
                let (found, steps) = p.exec_counted(&line);
                assert!(found.is_none(), "{pattern}");
                let states = (p.prog.len() * (n + 1)) as u64;
                assert!(
                    steps <= 2 * states + n as u64 + 1,
                    "{pattern}: {steps} steps for n={n}"
                );
                if last > 0 {
                    assert!(
                        steps <= 3 * last,
                        "{pattern}: {last} -> {steps} steps when n doubled"
                    );
                }
                last = steps;
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
    }
}
