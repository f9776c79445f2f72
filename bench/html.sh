#!/usr/bin/env bash
# Benchmark (not a test): how fast a report.html of a one-hour record at
# 10 ms opens in headless Chromium, and how large the file is. The report is
# synthesized from the ci fixture: one run whose timeline is 360,000 samples
# 10 ms apart (its stages stretched over the hour, the RSS interpolated with
# a seeded ±2% jitter so every pixel bucket has extremes, plus one spike of
# a single sample, which must survive the thinning as the sampled peak).
# Figures are the page's own performance.now() at the end of drawing (from
# navigation start: load, parse and draw), read by tests/browser/check_page.py.
# Targets: under 1 s, file under 5 MB.
#   bench/html.sh [RUNS] [SAMPLES]
# OOMLAB_BIN picks the binary (default: build and use the release one; bench/lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
samples="${2:-360000}"
. bench/lib.sh

python3 - tests/fixtures/reports/ci/report.json "$out/report.json" "$samples" <<'PY'
import bisect, json, random, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = json.load(open(src))
rng = random.Random(42)
run = r["runs"][0]
tl = run["timeline"]
t, b = tl["t_s"], tl["rss_bytes"]
end = max(t[-1], run["wall_s"])
stretch = (n - 1) * 0.01 / end
ts, rss = [], []
for i in range(n):
    x = i * 0.01
    y = x / stretch
    j = min(max(bisect.bisect_right(t, y), 1), len(t) - 1)
    u = min(max((y - t[j - 1]) / ((t[j] - t[j - 1]) or 1.0), 0.0), 1.0)
    v = b[j - 1] + (b[j] - b[j - 1]) * u
    ts.append(round(x, 3))
    rss.append(max(0, int(v * (1 + rng.uniform(-0.02, 0.02)))))
spike = n // 3
rss[spike] = max(rss) + 123_457
tl["t_s"], tl["rss_bytes"], tl["interval_ms"] = ts, rss, 10.0
for s in run["stages"]:
    s["start_s"] *= stretch
    s["end_s"] *= stretch
run["wall_s"] = end * stretch
run["sampled_peak_bytes"] = max(rss)
r["runs"] = [run]
r["settings"]["interval_ms"] = 10.0
json.dump(r, open(dst, "w"))
print("spike", ts[spike], rss[spike], file=open(dst + ".spike", "w"))
PY
"$bin" html "$out/report.json" -o "$out/report.html" >/dev/null
json_kib=$(( $(stat -c %s "$out/report.json") / 1024 ))
html_bytes=$(stat -c %s "$out/report.html")
echo "report.json: $samples samples at 10 ms ($(awk "BEGIN{printf \"%.1f\", $samples*0.01/3600}") h), ${json_kib} KiB"
echo "report.html: $(awk "BEGIN{printf \"%.2f\", $html_bytes/1e6}") MB"
# The spike (one sample) is among the samples the page draws: the thinning
# kept the sampled peak.
python3 - "$out/report.html" "$out/report.json.spike" <<'PY'
import json, sys
html = open(sys.argv[1]).read()
start = html.index('id="oomlab-data">') + len('id="oomlab-data">')
data = json.loads(html[start:html.index("</script>", start)])
_, t, b = open(sys.argv[2]).read().split()
tl = data["body"]["runs"][0]["timeline"]
kept = any(abs(x - float(t)) < 1e-9 and y == int(b) for x, y in zip(tl["t_s"], tl["rss_bytes"]))
print("drawn samples: %d of %d; the one-sample spike (%s B at %s s) %s" % (
    len(tl["t_s"]), tl["samples"], b, t, "is drawn" if kept else "was LOST"))
PY
start=$(date +%s.%N)
"$bin" html "$out/report.json" -o "$out/report.html" >/dev/null
echo "oomlab html (read the report, thin, write): $(awk "BEGIN{printf \"%.2f\", $(date +%s.%N)-$start}") s"

drawn=() ; walls=()
for i in $(seq 1 "$runs"); do
  python3 tests/browser/check_page.py "$out/report.html" --screenshot "$out/shot.png" > "$out/seen.json"
  read -r d w ok errs < <(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(round(s["timing"]["drawn_ms"],1), s["load_wall_s"], s["ready"], len(s["errors"]))' "$out/seen.json")
  echo "run $i: loaded and drawn at ${d} ms (page's performance.now); wall incl. polling ${w} s; ready=$ok errors=$errs"
  drawn+=("$d"); walls+=("$w")
done
[[ -n "${OOMLAB_BENCH_SHOT:-}" ]] && cp "$out/shot.png" "$OOMLAB_BENCH_SHOT"
printf '%s\n' "${drawn[@]}" | sort -n | awk '{a[NR]=$1} END {printf "median drawn: %.1f ms (min %.1f, max %.1f) over %d runs\n", a[int((NR+1)/2)], a[1], a[NR], NR}'
