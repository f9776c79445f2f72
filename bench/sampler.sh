#!/usr/bin/env bash
# Benchmark (not a test): what measuring costs, on a loaded machine. Records a
# Python process that holds 500 MiB, and a tree of 10 (a root and 9 forked
# children holding 50 MiB each) in a cgroup where one can be made and without
# one (OOMLAB_NO_CGROUP=1: summed VmHWM plus PSS readings), for SECONDS each,
# at 10 ms and at 1 ms, and prints oomlab's CPU per wall second: the sampler
# thread's (getrusage RUSAGE_THREAD) and all of oomlab's threads' (RUSAGE_SELF,
# children not counted), with the interval achieved and its worst jitter, from
# each report's `sampler` section, and the load average when the case ended.
# BUSY (default 2) `yes >/dev/null` loops run throughout, so the machine is
# loaded even when nothing else runs (BUSY=0: only what else runs).
#   bench/sampler.sh [SECONDS] [BUSY]   (default 10 2)
# Targets (issue 27), for the sampler thread at 10 ms: at most 1% of one core
# for one process and 1.5% for a tree of 10 (with or without a cgroup); each
# 10 ms line says whether it is met.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
busy="${2:-2}"
. bench/lib.sh
busy_pids=()
for _ in $(seq 1 "$busy"); do
  yes >/dev/null &
  busy_pids+=($!)
done
trap '[ ${#busy_pids[@]} -eq 0 ] || kill "${busy_pids[@]}" 2>/dev/null; [ -n "${KEEP_OUT:-}" ] || rm -rf "$out"' EXIT
echo "$(nproc) cores, $busy busy loops beside whatever else runs; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
py=$(python3 -c 'import sys; print(sys.executable)')
one="import time
b = bytearray(b'x') * (500 << 20)
time.sleep($secs)"
tree="import os, time
kids = []
for i in range(9):
    pid = os.fork()
    if pid == 0:
        b = bytearray(b'x') * (50 << 20)
        time.sleep($secs)
        os._exit(0)
    kids.append(pid)
b = bytearray(b'x') * (50 << 20)
time.sleep($secs)
for k in kids:
    os.waitpid(k, 0)"
for interval in 10ms 1ms; do
  for shape in one tree tree-no-cgroup; do
    code=$one; [ "$shape" != one ] && code=$tree
    nocg=0; [ "$shape" = tree-no-cgroup ] && nocg=1
    OOMLAB_NO_CGROUP=$nocg "$bin" record --quiet --interval "$interval" --out "$out/$shape-$interval" \
      -- "$py" -c "$code" >/dev/null 2>&1 || true
    python3 - "$out/$shape-$interval/report.json" "$shape" "$interval" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))["runs"][0]
s = run["sampler"]
wall = run["wall_s"]
procs = len(run.get("processes", [])) or 1
label = "1 process" if sys.argv[2] == "one" else f"tree of {procs}"
if sys.argv[2] == "tree-no-cgroup":
    label += ", no cgroup"
pct = s['cpu_s'] / wall * 100
verdict = ""
if sys.argv[3] == "10ms":
    target = 1.0 if sys.argv[2] == "one" else 1.5
    verdict = f" | target {target}%: {'met' if pct <= target else 'NOT MET'}"
load = open("/proc/loadavg").read().split()[0]
print(f"{label:23} at {sys.argv[3]:>4}: sampler {pct:5.2f}% of a core, "
      f"oomlab {s['oomlab_cpu_s'] / wall * 100:5.2f}% | {s['samples']} samples, "
      f"every {s['achieved_interval_ms']:.3f} ms (worst jitter {s['worst_jitter_ms']:.2f} ms) | "
      f"peak {run['peak_bytes'] / 2**20:.0f} MiB ({run.get('peak_source')}) | load {load}{verdict}")
PY
  done
done
