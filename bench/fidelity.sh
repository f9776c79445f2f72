#!/usr/bin/env bash
# Benchmark (not a test): issue 10's acceptance figures. The pandas reference
# and the replay in pandas memory mode on the production column mix, the
# reference run 3 times per point; prints per strategy the per-row costs of
# both sides and their ratio (target: within 15%), the legacy/optimized
# per-row ratios (target: within 15% of pandas'), and the held-out check of
# the calibrated replay at 2x the largest fitted scale (target: within 10%).
#   bench/fidelity.sh [SCALES] [extra fidelity flags...]
# Default scales 0.02,0.04,0.08,0.16 (pandas' legacy peaks near 14 GiB at 0.16;
# about 4 minutes). Run it on an otherwise quiet machine: the pandas process's
# peaks move with CPU contention.
set -euo pipefail
cd "$(dirname "$0")/.."
scales="${1:-0.02,0.04,0.08,0.16}"; shift || true
. bench/lib.sh
start=$(date +%s)
"$bin" fidelity --quiet --scenario scenarios/production.toml --scales "$scales" \
  --out "$out/f" "$@" >/dev/null
python3 - "$out/f/fidelity.json" "$(( $(date +%s) - start ))" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))
print(f"fidelity, production, scales {f['scales']}, replay in {f['memory_mode']} mode, "
      f"{sys.argv[2]} s")
per_row = {}
for s in f["strategies"]:
    p = s["per_row"]
    per_row[s["strategy"]] = (p["oomlab_bytes_per_row"], p["pandas_bytes_per_row"])
    print(f"  {s['strategy']:9} per row: pandas {p['pandas_bytes_per_row']:7.0f} B ({p['pandas_stage']}), "
          f"oomlab {p['oomlab_bytes_per_row']:7.0f} B ({p['oomlab_stage']}), ratio {p['ratio']:.2f}")
    h = s.get("calibrated_holdout")
    if h:
        print(f"  {'':9} calibrated replay at {h['rows']:,} rows (fitted on {h['fitted_scales']}): "
              f"{h['error'] * 100:+.1f}%")
if "legacy" in per_row and "optimized" in per_row:
    o = per_row["legacy"][0] / per_row["optimized"][0]
    p = per_row["legacy"][1] / per_row["optimized"][1]
    print(f"  legacy/optimized per row: oomlab {o:.2f}, pandas {p:.2f} ({o / p * 100:.0f}% of pandas')")
PY
