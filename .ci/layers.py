#!/usr/bin/env python3
"""Checks the shape of the code: the import graph of `src/` has no cycle.

Rust accepts modules that import each other; a newcomer reading them does not.
This walks every `crate::a::b` path in the library (test modules excluded: a
test may reach any layer) and in the binary, resolves each to the module file
that defines it, and fails on:

  * a cycle among the library's top-level modules (`report` -> `sampler` ->
    `report`), or among the files inside one top-level module (a child may
    use its parent's items, which the parent re-exports, so child -> ancestor
    edges are not counted);
  * a library module that names `commands` or `cli` (they live in the binary);
  * a file in `src/commands/` that imports another command;
  * a cycle in the binary's modules (`main`, `cli`, `commands`, each file
    under `src/commands/`) that includes `cli`: the flags parse themselves
    and the commands take parsed values, so `cli` never calls down into them;
  * a file in `src/` over MAX_LINES lines (a room too big to hold in one's
    head; split it along its jobs, docs/ARCHITECTURE.md).

Prints the offending paths with file and line, exits 1; prints a one-line
summary and exits 0 when the graph is a DAG. Run by `.ci/run`.
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
BINARY_ONLY = {"cli", "commands", "main"}
MAX_LINES = 800

PATH_RE = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP_RE = re.compile(r"\buse\s+(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\}\s*;", re.S)


def module_of(path):
    """`src/a/b.rs` -> ('a', 'b'); `src/a/mod.rs` -> ('a',); `src/lib.rs` -> ().

    `src/main.rs` is ('main',), a module of the binary apart from the
    library's root (both are `crate` in their own crate)."""
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    if rel == ["lib"]:
        return ()
    return tuple(rel)


def blank(m):
    """Spaces for a match, newlines kept, so positions still give lines."""
    return re.sub(r"[^\n]", " ", m.group(0))


def strip(text):
    """Blanks comments, strings and `#[cfg(test)]` modules."""
    text = re.sub(r"//[^\n]*", blank, text)
    text = re.sub(r"/\*.*?\*/", blank, text, flags=re.S)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', blank, text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', blank, text)
    for m in list(re.finditer(r"#\[cfg\(test\)\]\s*(?:pub\s+)?mod\s+\w+\s*\{", text)):
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        text = text[: m.start()] + re.sub(r"[^\n]", " ", text[m.start():j]) + text[j:]
    return text


def main():
    files = {}
    for dirpath, _, names in os.walk(ROOT):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(dirpath, name)
                files[module_of(path)] = path
    modules = set(files)

    def resolve(origin, head, segments):
        """The module file a path lands in: the longest known prefix."""
        if head == "super":
            # `super` from a.rs or a/mod.rs both name a's parent.
            segs = list(origin[:-1])
            while segments and segments[0] == "super":
                segs, segments = segs[:-1], segments[1:]
            segments = segs + segments
        best = ()
        for k in range(1, len(segments) + 1):
            if tuple(segments[:k]) in modules:
                best = tuple(segments[:k])
        return best

    edges = {}
    for mod, path in files.items():
        with open(path, encoding="utf-8") as f:
            raw = f.read()
        text = strip(raw)
        line_of = lambda pos: text.count("\n", 0, pos) + 1
        found = []
        for m in USE_GROUP_RE.finditer(text):
            prefix = [s for s in m.group(2).split("::") if s]
            for item in re.split(r"[,{}\s]+", m.group(3)):
                item = item.split("::")
                if item and item[0] and item[0] not in ("self", "*"):
                    found.append((m.group(1), prefix + [p for p in item if p and p != "self"], m.start()))
            found.append((m.group(1), prefix, m.start()))
        for m in PATH_RE.finditer(text):
            found.append((m.group(1), [s for s in m.group(2).split("::") if s], m.start()))
        for head, segments, pos in found:
            target = resolve(mod, head, segments)
            if target and target != mod:
                edges.setdefault(mod, {}).setdefault(target, (path, line_of(pos)))

    problems = []
    rel = lambda p: os.path.relpath(p, os.path.join(ROOT, ".."))

    for mod, targets in edges.items():
        in_binary = bool(mod) and mod[0] in BINARY_ONLY
        for target, (path, line) in targets.items():
            if not in_binary and target and target[0] in BINARY_ONLY:
                problems.append(f"{rel(path)}:{line}: library module {'::'.join(mod)} imports {'::'.join(target)} (binary only)")
            if mod[:1] == ("commands",) and len(mod) > 1 and target[:1] == ("commands",) and len(target) > 1 and target != mod:
                problems.append(f"{rel(path)}:{line}: command {'::'.join(mod)} imports command {'::'.join(target)}")

    def sccs(graph):
        """Tarjan's strongly connected components with more than one node."""
        index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

        def visit(n):
            index[n] = low[n] = counter[0]
            counter[0] += 1
            stack.append(n)
            on.add(n)
            for m in sorted(graph.get(n, ())):
                if m not in index:
                    visit(m)
                    low[n] = min(low[n], low[m])
                elif m in on:
                    low[n] = min(low[n], index[m])
            if low[n] == index[n]:
                comp = []
                while True:
                    m = stack.pop()
                    on.discard(m)
                    comp.append(m)
                    if m == n:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))

        for n in sorted(graph):
            if n not in index:
                visit(n)
        return out

    def report_cycles(graph, label, keep=lambda comp: True, what="import cycle"):
        for comp in sccs(graph):
            if not keep(comp):
                continue
            members = set(comp)
            hops = [
                f"    {label(a)} -> {label(b)}  ({rel(graph[a][b][0])}:{graph[a][b][1]})"
                for a in comp
                for b in sorted(graph.get(a, ()))
                if b in members
            ]
            names = ", ".join(label(n) for n in comp)
            problems.append(f"{what} among {names}:\n" + "\n".join(hops))

    # Top-level layers of the library.
    top = {}
    for mod, targets in edges.items():
        if not mod or mod[0] in BINARY_ONLY:
            continue
        for target, where in targets.items():
            if target and target[0] != mod[0] and target[0] not in BINARY_ONLY:
                top.setdefault(mod[0], {}).setdefault(target[0], where)
    report_cycles(top, lambda n: n)

    # The binary: main, cli, commands and each command, file by file (a
    # command using its parent's shared helpers is not counted); a cycle
    # through `cli` is one.
    binary = {}
    for mod, targets in edges.items():
        if not mod or mod[0] not in BINARY_ONLY:
            continue
        for target, where in targets.items():
            if target and target[0] in BINARY_ONLY and mod[: len(target)] != target:
                binary.setdefault(mod, {}).setdefault(target, where)
    report_cycles(binary, lambda n: "::".join(n), keep=lambda comp: ("cli",) in comp, what="import cycle through cli")

    # Files too long to read as one room.
    for mod, path in sorted(files.items(), key=lambda kv: kv[1]):
        with open(path, encoding="utf-8") as f:
            n = sum(1 for _ in f)
        if n > MAX_LINES:
            problems.append(f"{rel(path)}: {n} lines (at most {MAX_LINES}; split it along its jobs)")

    # Files inside each top-level module (and the binary's commands).
    for parent in sorted({m[0] for m in modules if m}):
        inner = {}
        for mod, targets in edges.items():
            if mod[:1] != (parent,):
                continue
            for target, where in targets.items():
                if target[:1] == (parent,) and target != mod and mod[: len(target)] != target:
                    inner.setdefault(mod, {}).setdefault(target, where)
        report_cycles(inner, lambda n: "::".join(n))

    if problems:
        print("\n".join(problems))
        print(f"layers: {len(problems)} problem(s) in the import graph and file sizes of src/")
        return 1
    n_edges = sum(len(t) for t in edges.values())
    print(f"layers: {len(files)} modules, {n_edges} imports, no cycle, commands stay apart, no file over {MAX_LINES} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
