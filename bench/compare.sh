#!/usr/bin/env bash
# Benchmark (not a test): wall time of `oomlab compare` on the default scenario and
# the peaks it measured. The first run generates the data cache; figures are
# printed for a warm cache (data already generated) over N runs.
#   bench/compare.sh [RUNS] [extra compare flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"; shift || true
. bench/lib.sh
echo "warm-up (generates the data cache if missing)..."
start=$(date +%s.%N); $bin compare --quiet --out "$out/warm" "$@" >/dev/null; end=$(date +%s.%N)
printf 'first run (incl. data generation if cold): %.2f s\n' "$(echo "$end - $start" | bc)"
for i in $(seq 1 "$runs"); do
  start=$(date +%s.%N)
  $bin compare --quiet --out "$out/run$i" "$@" >/dev/null
  end=$(date +%s.%N)
  python3 - "$out/run$i/report.json" "$(echo "$end - $start" | bc)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
peaks = {run["strategy"]: run["peak_bytes"] / 2**30 for run in r["runs"]}
walls = {run["strategy"]: run["wall_s"] for run in r["runs"]}
red = (1 - peaks["optimized"] / peaks["legacy"]) * 100
print(f"compare wall {float(sys.argv[2]):6.2f} s | legacy peak {peaks['legacy']:.2f} GiB ({walls['legacy']:.1f} s) | "
      f"optimized peak {peaks['optimized']:.2f} GiB ({walls['optimized']:.1f} s) | reduction {red:.1f}%")
PY
done
rm -rf "$out"
