#!/usr/bin/env bash
# Benchmark (not a test): item-item similarity throughput (items/s) and peaks
# for SIMILARITY_MICRO_BATCH_SIZE in {20, 50, 100, 200}, the full-matrix legacy
# beside them, and the exponent of peak-vs-N of both strategies.
#   bench/similarity.sh [SCALE]        (default 0.04: 20,000 items x 128 dims)
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${1:-0.04}"
. bench/lib.sh
sc=scenarios/similarity.toml
echo "throughput at --scale $scale (warm data cache):"
for b in 20 50 100 200; do
  "$bin" run --quiet --scenario "$sc" --scale "$scale" --strategy optimized \
    --similarity-micro-batch-size "$b" --out "$out/b$b" >/dev/null
done
"$bin" run --quiet --scenario "$sc" --scale "$scale" --strategy legacy --out "$out/legacy" >/dev/null
for s in 0.01 0.02 0.04; do
  "$bin" run --quiet --scenario "$sc" --scale "$s" --strategy legacy,optimized --out "$out/n$s" >/dev/null
done
python3 - "$out" <<'PY'
import json, math, sys, os
out = sys.argv[1]
def load(name):
    return json.load(open(os.path.join(out, name, "report.json")))
def scoring(run):
    st = [s for s in run["stages"] if s["name"] not in ("load", "normalize")]
    return sum(s["end_s"] - s["start_s"] for s in st)
for name in ["b20", "b50", "b100", "b200", "legacy"]:
    r = load(name)
    run = r["runs"][0]
    n = r["scenario"]["scaled"]["items"]
    label = "legacy (N x N)" if name == "legacy" else f"B = {name[1:]:>3}"
    print(f"  {label:15} {n:>7} items  {n / scoring(run):>9.0f} items/s  peak {run['peak_bytes'] / 2**30:6.2f} GiB")
print("peak vs N (exact peaks), fitted exponent of log(peak - base) on log(N):")
pts = {}
for s in ["n0.01", "n0.02", "n0.04"]:
    r = load(s)
    n = r["scenario"]["scaled"]["items"]
    for run in r["runs"]:
        # The process's own base (code, runtime) is the RSS at the first stage's start.
        base = run["stages"][0]["rss_start_bytes"]
        pts.setdefault(run["strategy"], []).append((n, run["peak_bytes"] - base))
for strat, p in pts.items():
    xs = [math.log(n) for n, _ in p]; ys = [math.log(max(b, 1)) for _, b in p]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    k = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    figures = ", ".join(f"{n}: {b / 2**20:.0f} MiB" for n, b in p)
    print(f"  {strat:10} exponent {k:.2f}   ({figures})")
PY
