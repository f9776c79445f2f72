#!/usr/bin/env python3
"""Checks the Dockerfile without a container daemon (CI has none).

  * every `COPY` source outside `--from=` stages exists in the repository
    (globs must match at least one file), and is not excluded by .dockerignore;
  * the build stage runs `cargo build --release`, the README's build (its
    `cargo run --release` compiles exactly that), and nothing else compiles;
  * the optional `pandas` stage installs scenarios/pandas/requirements.txt, the
    README's pandas environment;
  * the last stage (the default `docker build` target) is the slim runtime.

Prints each problem and exits 1, or a one-line summary. Stdlib only.
"""

import glob
import os
import re
import sys

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def main():
    text = open(os.path.join(ROOT, "Dockerfile")).read()
    readme = open(os.path.join(ROOT, "README.md")).read()
    ignored = [
        line.strip()
        for line in open(os.path.join(ROOT, ".dockerignore"))
        if line.strip() and not line.startswith("#")
    ]
    problems = []
    lines = re.sub(r"\\\n", " ", text).splitlines()
    stages = [m.group(1) for m in (re.match(r"FROM\s+\S+\s+AS\s+(\S+)", l, re.I) for l in lines) if m]
    copies = 0
    for line in lines:
        words = line.split()
        if not words or words[0].upper() != "COPY" or any(w.startswith("--from=") for w in words):
            continue
        for src in words[1:-1]:
            copies += 1
            matches = glob.glob(os.path.join(ROOT, src))
            if not matches:
                problems.append(f"Dockerfile: COPY {src}: no such file in the repository")
            for ig in ignored:
                if src == ig or src.startswith(ig.rstrip("/") + "/"):
                    problems.append(f"Dockerfile: COPY {src}: excluded by .dockerignore ({ig})")
    builds = [l for l in lines if re.match(r"\s*RUN\b", l) and "cargo" in l]
    if not any("cargo build --release" in l for l in builds):
        problems.append("Dockerfile: no `RUN cargo build --release` (the README's build)")
    if "cargo run --release" not in readme:
        problems.append("README.md: no `cargo run --release` build to match")
    if not any("requirements.txt" in l and "scenarios/pandas" in l for l in lines):
        problems.append("Dockerfile: the pandas stage does not install scenarios/pandas/requirements.txt")
    if "pandas" not in stages:
        problems.append("Dockerfile: no optional `pandas` stage")
    if not stages or stages[-1] != "runtime":
        problems.append("Dockerfile: the last stage (the default target) is not `runtime`")
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"dockerfile: {len(stages)} stages ({', '.join(stages)}), {copies} COPY sources exist, builds with `cargo build --release`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
