#!/usr/bin/env bash
# Benchmark (not a test): how steady the command gate is on unchanged code.
# Blesses tests/fixtures/gate_pipeline.py (a small pandas ranking prep) at
# 20,000, 40,000 and 80,000 rows, gates the same code RUNS times against that
# one blessing, and prints every exit code and, per stage, the range of the
# peak's and the per-row cost's change and of their run-to-run spreads.
#   bench/gate-noise.sh [RUNS]   (default 10)
# Target (issue 15): unchanged code exits 0 every time on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10}"
. bench/lib.sh
pattern='^INFO \[stage\] (\S+)$'
"$bin" gate --baseline "$out/baseline.json" --update --quiet --rows 20000,40000,80000 \
  --production-rows 8532146 --stage-pattern "$pattern" \
  -- python3 tests/fixtures/gate_pipeline.py '{rows}' >/dev/null
codes=()
for i in $(seq 1 "$runs"); do
  set +e
  "$bin" gate --baseline "$out/baseline.json" --quiet --json "$out/r$i.json" >/dev/null 2>&1
  codes+=("$?")
  set -e
done
echo "exit codes of $runs gate runs (load average $(cut -d' ' -f1-3 /proc/loadavg)): ${codes[*]}"
python3 - "$out" "$runs" <<'PY'
import json, sys
out, runs = sys.argv[1], int(sys.argv[2])
agg = {}
for i in range(1, runs + 1):
    for s in json.load(open(f"{out}/r{i}.json"))["commands"][0]["stages"]:
        a = agg.setdefault(s["stage"], {"pc": [], "sc": [], "ps": [], "ss": [],
                                        "pb": s["peak"]["baseline"], "sb": s["slope"]["baseline_bytes_per_row"]})
        a["pc"].append(s["peak"]["change_pct"]); a["sc"].append(s["slope"]["change_pct"])
        a["ps"].append(s["peak_spread_bytes"]); a["ss"].append(s["slope"]["spread_bytes_per_row"])
rng = lambda v: f"{min(v):+.1f}..{max(v):+.1f}" if v else "-"
print(f"{'stage':22} {'peak':>9} {'peak change %':>14} {'spread MiB':>12} {'B/row':>6} {'B/row change %':>15} {'spread B/row':>12}")
for k, a in agg.items():
    pc = [x for x in a["pc"] if x is not None]; sc = [x for x in a["sc"] if x is not None]
    print(f"{k:22} {a['pb']/2**20:>7.1f}Mi {rng(pc):>14} {min(a['ps'])/2**20:>5.2f}..{max(a['ps'])/2**20:<5.2f}"
          f" {a['sb']:>6.0f} {rng(sc):>15} {min(a['ss']):>5.0f}..{max(a['ss']):<5.0f}")
PY
