#!/usr/bin/env python3
"""Checks the documentation's links: every relative link resolves inside the repository.

Reads README.md and every docs/**/*.md, and checks each link and image:

  * inline `[text](target)` and `![alt](target)`, reference definitions
    `[id]: target`, and HTML `href="..."` / `src="..."`;
  * text in fenced code blocks and in `code spans` is not markdown and is skipped;
  * a target with a scheme (`https:`, `mailto:`) is not a file: it is counted,
    not checked; `file:` and absolute paths (`/work/...`) are broken, since
    they point outside the repository;
  * a relative target must resolve (from the linking file's directory, after
    `%xx` decoding) to a file or directory inside the repository, symlinks
    followed;
  * an anchor (`#section`, or `other.md#section`) pointing at a markdown file
    must match one of its headings, slugged as GitHub slugs them (lowercase,
    punctuation dropped, spaces to `-`, `-1`, `-2` for repeats), or an
    explicit `id="..."` / `name="..."`; anchors on other files are ignored.

Prints each broken link as `file:line: target: reason` and exits 1; prints a
one-line summary and exits 0 when every link resolves. Stdlib only.
"""

import os
import re
import sys
import unicodedata
from urllib.parse import unquote

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN_RE = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target "title"), text may hold one level of brackets, target may be <...>.
INLINE_RE = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*(<[^>]*>|[^)\s]*)(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
REFDEF_RE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML_RE = re.compile(r"\b(?:href|src)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')", re.I)
HTML_ID_RE = re.compile(r"\b(?:id|name)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')", re.I)
HEADING_RE = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def doc_files():
    files = [os.path.join(ROOT, "README.md")]
    for dirpath, dirnames, names in os.walk(os.path.join(ROOT, "docs")):
        dirnames.sort()
        files += [os.path.join(dirpath, n) for n in sorted(names) if n.endswith(".md")]
    return [f for f in files if os.path.isfile(f)]


def blank(m):
    return " " * len(m.group(0))


def markdown_lines(text):
    """(line number, raw line, line with code spans blanked) outside fenced code."""
    fence = None
    for number, line in enumerate(text.split("\n"), 1):
        m = FENCE_RE.match(line)
        if fence:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line.strip().strip(fence[0]):
                fence = None
            continue
        if m:
            fence = m.group(1)
            continue
        yield number, line, CODE_SPAN_RE.sub(blank, line)


def slug(heading):
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)  # code spans keep their text
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text)  # HTML tags go
    out = []
    for ch in text.strip().lower():
        cat = unicodedata.category(ch)
        if ch in "-_" or cat[0] in "LNM":
            out.append(ch)
        elif ch == " ":
            out.append("-")
    return "".join(out)


_anchors = {}


def anchors_of(path):
    if path not in _anchors:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        seen, found = {}, set()
        for _, raw, line in markdown_lines(text):
            m = HEADING_RE.match(raw)
            if m:
                s = slug(m.group(2))
                n = seen.get(s, 0)
                seen[s] = n + 1
                found.add(s if n == 0 else f"{s}-{n}")
            for m in HTML_ID_RE.finditer(line):
                found.add(m.group(1) or m.group(2) or "")
        _anchors[path] = found
    return _anchors[path]


def check(path, number, target, problems, counts):
    rel = os.path.relpath(path, ROOT)
    where = f"{rel}:{number}: {target}"
    if target.startswith("<") and target.endswith(">"):
        target = target[1:-1]
    if not target:
        problems.append(f"{rel}:{number}: (empty): empty link target")
        return
    if SCHEME_RE.match(target) and not target.lower().startswith("file:"):
        counts["external"] += 1
        return
    counts["relative"] += 1
    if target.lower().startswith("file:") or target.startswith("/"):
        problems.append(f"{where}: absolute path, points outside the repository (use a relative link)")
        return
    file_part, _, anchor = target.partition("#")
    file_part = unquote(file_part.split("?", 1)[0])
    if file_part:
        resolved = os.path.realpath(os.path.join(os.path.dirname(path), file_part))
    else:
        resolved = path
    if os.path.commonpath([resolved, ROOT]) != ROOT:
        problems.append(f"{where}: resolves to {resolved}, outside the repository")
        return
    if not os.path.exists(resolved):
        problems.append(f"{where}: no such file {os.path.relpath(resolved, ROOT)}")
        return
    if anchor and resolved.endswith(".md") and os.path.isfile(resolved):
        counts["anchors"] += 1
        if unquote(anchor).lower() not in {a.lower() for a in anchors_of(resolved)}:
            problems.append(f"{where}: no heading #{anchor} in {os.path.relpath(resolved, ROOT)}")


def main():
    problems = []
    counts = {"relative": 0, "external": 0, "anchors": 0}
    files = doc_files()
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for number, _, line in markdown_lines(text):
            for m in INLINE_RE.finditer(line):
                check(path, number, m.group(3), problems, counts)
            m = REFDEF_RE.match(line)
            if m:
                check(path, number, m.group(1), problems, counts)
            for m in HTML_RE.finditer(line):
                check(path, number, m.group(1) if m.group(1) is not None else m.group(2), problems, counts)
    if problems:
        print("\n".join(problems))
        print(f"links: {len(problems)} broken link(s) in {len(files)} markdown files")
        return 1
    print(
        f"links: {counts['relative']} relative links in {len(files)} markdown files resolve inside the repository"
        f" ({counts['anchors']} anchors checked, {counts['external']} external URLs not checked)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
