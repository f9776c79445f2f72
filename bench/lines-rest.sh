#!/usr/bin/env bash
# Benchmark (not a test): what the kernel counts in a stage's peak that no live
# allocation holds, the rest beside `--lines`' sites (docs/lines.md). Runs the
# pandas reference untraced and, at each stage marker, prints the process's
# resident memory split as the kernel and glibc's malloc see it: anonymous and
# file-backed RSS (/proc/self/status), and malloc's bytes in use and freed but
# kept (mallinfo2, summed over every arena). Figures are growth since the
# first marker, MiB.
#   bench/lines-rest.sh [STRATEGY] [SCALE] [PYTHON]   (default: legacy 2 python3)
set -euo pipefail
cd "$(dirname "$0")/.."
strategy="${1:-legacy}"; scale="${2:-2}"; python="${3:-python3}"
. bench/lib.sh
data=$("$bin" data --scenario scenarios/ci.toml --scale "$scale" 2>&1 | sed -n 's/^data: //p')
ARROW_DEFAULT_MEMORY_POOL=system "$python" - scenarios/pandas/ranking_prep.py \
  --strategy "$strategy" --data-dir "$data" <<'PY'
import ctypes, runpy, sys

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
real = sys.stdout
first = {}

def figures():
    got = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            got[key] = int(value.split()[0]) << 10
    m = libc.mallinfo2()
    got["malloc in use"] = m.uordblks + m.hblkhd
    got["malloc freed, kept"] = m.fordblks
    return got

class Markers:
    def write(self, text):
        if "[stage]" in text:
            now = figures()
            if not first:
                first.update(now)
                real.write("at the first marker (MiB): " + ", ".join(
                    f"{k} {v / 2**20:.1f}" for k, v in now.items()) + "\n")
            real.write(f"{text.strip():36} " + "  ".join(
                f"{k} {(v - first[k]) / 2**20:+8.1f}" for k, v in now.items()) + "\n")
        return len(text)

    def flush(self):
        pass

sys.stdout = Markers()
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
PY
