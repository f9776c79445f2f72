#!/usr/bin/env bash
# Benchmark (not a test): wall time of `oomlab plot` on a report with 100,000
# timeline samples per strategy (300,000 in all), synthesized from the ci
# fixture report: each run's timeline is resampled to 100,000 points over its
# own duration (linear interpolation plus a seeded ±2% jitter, so every pixel
# column has extremes to keep). Target: under a second.
#   bench/plot.sh [RUNS] [SAMPLES]
# OOMLAB_BIN picks the binary (default: build and use the release one; bench/lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
samples="${2:-100000}"
. bench/lib.sh

python3 - tests/fixtures/reports/ci/report.json "$out/report.json" "$samples" <<'PY'
import bisect, json, random, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = json.load(open(src))
rng = random.Random(42)
for run in r["runs"]:
    tl = run["timeline"]
    t, b = tl["t_s"], tl["rss_bytes"]
    end = max(t[-1], run["wall_s"])
    ts, rss = [], []
    for i in range(n):
        x = end * i / (n - 1)
        j = min(max(bisect.bisect_right(t, x), 1), len(t) - 1)
        u = min(max((x - t[j - 1]) / ((t[j] - t[j - 1]) or 1.0), 0.0), 1.0)
        v = b[j - 1] + (b[j] - b[j - 1]) * u
        ts.append(round(x, 9))
        rss.append(max(0, int(v * (1 + rng.uniform(-0.02, 0.02)))))
    tl["t_s"], tl["rss_bytes"] = ts, rss
    tl["interval_ms"] = end / (n - 1) * 1000
r["settings"]["interval_ms"] = min(run["timeline"]["interval_ms"] for run in r["runs"])
json.dump(r, open(dst, "w"))
PY
total=$(jq '[.runs[].timeline.t_s | length] | add' "$out/report.json")
size=$(du -k "$out/report.json" | cut -f1)
echo "report: $total timeline samples ($samples per strategy), ${size} KiB"

times=()
for i in $(seq 1 "$runs"); do
  start=$(date +%s.%N)
  "$bin" plot "$out/report.json" --out "$out/pics" >/dev/null
  end=$(date +%s.%N)
  times+=("$(echo "$end - $start" | bc)")
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(echo "$sorted" | sed -n "$(( (runs + 1) / 2 ))p")
max=$(echo "$sorted" | tail -1)
pics=$(for f in timeline.png timeline.svg peaks.png peaks.svg; do
  printf '%s %d KiB  ' "$f" "$(( $(stat -c %s "$out/pics/$f") / 1024 ))"; done)
printf 'plot wall  median %.3f s | max %.3f s over %d runs (target < 1 s)\n' "$median" "$max" "$runs"
echo "pictures: $pics"
