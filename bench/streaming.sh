#!/usr/bin/env bash
# Benchmark (not a test): every ranking-prep strategy's exact peak against the
# floor (bytes of the final frame + the slim lookup tables it is joined
# against), peak/floor ratios, and wall times, on the production scenario.
#   bench/streaming.sh [SCALE] [extra run flags...]   (default scale 1.0)
# legacy needs ~150 GiB at scale 1, so it is left out above scale 0.1; the
# runs go under a memory limit of 90% of the available memory.
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${1:-1.0}"; shift || true
. bench/lib.sh
strategies=optimized,streaming
if python3 -c "import sys; sys.exit(0 if float('$scale') <= 0.1 else 1)"; then
  strategies=legacy,optimized,streaming
fi
limit=$(awk '/MemAvailable/ {printf "%.0f", $2 * 1024 * 0.9}' /proc/meminfo)
"$bin" run --quiet --scenario scenarios/production.toml --scale "$scale" \
  --strategy "$strategies" --memory-limit "$limit" --out "$out/r" "$@" >/dev/null || true
python3 - "$out/r/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
floor = r["floor_bytes"]
print(f"production x {r['scenario']['scale']}: {r['scenario']['scaled']['sample_rows']:,} samples; "
      f"floor {floor / 2**30:.2f} GiB")
walls = {}
for run in r["runs"]:
    kind = run["status"]["kind"]
    peak = run.get("peak_bytes") or run["sampled_peak_bytes"]
    walls[run["strategy"]] = run["wall_s"]
    print(f"  {run['strategy']:10} {kind:10} peak {peak / 2**30:6.2f} GiB  "
          f"{peak / floor:5.2f} x floor  wall {run['wall_s']:6.2f} s")
if "streaming" in walls and "optimized" in walls:
    print(f"  streaming wall / optimized wall = {walls['streaming'] / walls['optimized']:.2f}")
PY
