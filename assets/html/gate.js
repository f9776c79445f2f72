/* oomlab report.html, a gate result: the verdict, then each stage of each
 * strategy and command with its verdict, figures and reasons. */
"use strict";
OOMLAB.run(function (main, body) {
  var O = OOMLAB, el = O.el;
  var failing = (body.regressed || []).length;
  main.appendChild(el("p", { class: body.passed ? "banner good" : "banner", "data-passed": String(body.passed) },
    body.updated ? "Blessed into " + body.baseline + "." :
      body.passed ? "Passed: no stage regressed." : "Failed: " + failing + " stage(s) regressed, appeared or disappeared."));
  (body.notes || []).forEach(function (n) { main.appendChild(el("p", { class: "note" }, n)); });

  function verdictCell(v) {
    return { text: String(v).toUpperCase(), class: "verdict-" + v };
  }
  function check(c) {
    if (!c) return "-";
    var base = c.baseline != null ? c.baseline : c.baseline_bytes;
    var now = c.now != null ? c.now : (c.median != null ? c.median : c.now_bytes);
    if (base == null && now == null) return JSON.stringify(c);
    return O.fmtBytes(base) + " \u2192 " + O.fmtBytes(now) + (c.change_pct != null ? " (" + O.fmtPct(c.change_pct) + ")" : "");
  }

  (body.strategies || []).forEach(function (s) {
    var label = s.strategy === s.baseline_strategy ? s.strategy : s.strategy + " (as " + s.baseline_strategy + ")";
    main.appendChild(el("h2", null, s.scenario + ": " + label));
    main.appendChild(O.table(["stage", "verdict", "peak RSS (baseline \u2192 now)", "heap peak", "reasons"],
      (s.stages || []).map(function (st) {
        return [st.stage, verdictCell(st.verdict), check(st.rss), check(st.heap_peak), (st.reasons || []).join("; ")];
      })));
  });
  (body.commands || []).forEach(function (c) {
    main.appendChild(el("h2", null, "Command: " + c.command));
    main.appendChild(el("p", { class: "note" }, "Against " + c.against + ", sizes " + (c.rows || []).map(O.fmtCount).join(", ") + " rows."));
    main.appendChild(O.table(["stage", "verdict", "peak at the largest size (baseline \u2192 now)", "bytes per row (baseline \u2192 now)", "reasons"],
      (c.stages || []).map(function (st) {
        var sl = st.slope;
        var slope = sl ? sl.baseline_bytes_per_row.toFixed(0) + " \u2192 " + sl.now_bytes_per_row.toFixed(0) +
          (sl.change_pct != null ? " (" + O.fmtPct(sl.change_pct) + ")" : "") : "-";
        return [st.stage, verdictCell(st.verdict), check(st.peak), slope, (st.reasons || []).join("; ")];
      })));
  });
  if (!(body.strategies || []).length && !(body.commands || []).length) {
    main.appendChild(el("p", { class: "note" }, "Nothing was judged."));
  }
});
