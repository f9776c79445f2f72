/* oomlab report.html, a postmortem: the verdict, the memory curve up to the
 * kill, the facts with the line each came from, the cap and its .env. */
"use strict";
OOMLAB.run(function (main, body) {
  var O = OOMLAB, el = O.el;
  main.appendChild(el("p", { class: "banner" }, body.verdict));
  (body.notes || []).forEach(function (n) { main.appendChild(el("p", { class: "note" }, n)); });

  main.appendChild(el("h2", null, "Memory up to the kill"));
  var c = body.curve;
  if (c && c.t_s.length) {
    var head = el("div", { class: "run-head" }, el("h3", null, c.container));
    if (body.peak_usage_bytes != null) {
      head.appendChild(el("span", { class: "peak", "data-peak-bytes": body.peak_usage_bytes },
        "peak " + O.fmtExact(body.peak_usage_bytes)));
    }
    if (body.limit_bytes != null) {
      head.appendChild(el("span", { class: "muted" }, "limit " + O.fmtBytes(body.limit_bytes) + " (" + body.limit_source + ")"));
    }
    main.appendChild(head);
    // Stage log lines become lanes: each stage lasts until the next line.
    var lanes = [];
    var end = c.kill_t_s != null ? c.kill_t_s : c.t_s[c.t_s.length - 1];
    c.stages.forEach(function (s, i) {
      var next = i + 1 < c.stages.length ? c.stages[i + 1][0] : end;
      lanes.push({ name: s[1], start: Math.max(0, s[0]), end: Math.max(s[0], next), peak: null });
    });
    var yMax = body.limit_bytes || 0;
    c.usage_bytes.forEach(function (b) { if (b > yMax) yMax = b; });
    O.timeChart(main, {
      t: c.t_s,
      bytes: c.usage_bytes,
      lanes: lanes,
      hlines: body.limit_bytes ? [{ bytes: body.limit_bytes, label: "limit " + O.fmtBytes(body.limit_bytes), color: "#b0151d" }] : [],
      vlines: c.kill_t_s != null ? [{ t: c.kill_t_s, label: "killed", color: "#b0151d" }] : [],
      yMaxBytes: yMax,
      what: "memory",
      xLabel: c.timed ? "time since the first reading" : "time (row number x the stats interval)"
    });
    main.appendChild(el("p", { class: "note" }, c.source + " readings of " + c.container + (c.path ? " (" + c.path + ")" : "") + (c.timed ? "" : ", rows without times spaced by --stats-interval") + "." +
      (c.unplaced ? " The log's times (stages, the kill) fall outside these readings, so they are not placed on the curve: is the stats file of the same run?" : "")));
  } else {
    main.appendChild(el("p", { class: "note" }, "No memory curve: none was given (--docker-stats, --prometheus), or none reaches the kill (the verdict says which)."));
  }

  main.appendChild(el("h2", null, "The facts, and where each was read"));
  var rows = body.facts.map(function (f) {
    return [f.what, f.value, f.from, { text: f.text || "", class: "mono" }];
  });
  if (body.kill) rows.push(["4. the kill", body.kill.value, body.kill.from, { text: body.kill.text || "", class: "mono" }]);
  main.appendChild(O.table(["fact", "value", "from", "the line"], rows, "facts"));

  main.appendChild(el("h2", null, "The cap"));
  var cap = body.cap;
  if (cap.setting != null) {
    main.appendChild(el("p", null, el("strong", { "data-cap": cap.setting }, "MAX_RANKING_SAMPLES=" + cap.setting),
      " (" + (cap.setting === 0 ? "no limit" : O.fmtCount(cap.setting) + " rows") + "): " + cap.basis.replace(/\.$/, "") + "."));
  } else {
    main.appendChild(el("p", null, "No setting shown safe" + (cap.none_because ? ": " + cap.none_because : "") + ". " + cap.basis + "."));
  }
  if (cap.env) {
    main.appendChild(el("p", { class: "note" }, "The .env lines to paste:"));
    main.appendChild(el("pre", { class: "env" }, cap.env));
  }

  function lines(title, list) {
    if (!list.length) return;
    var d = el("details", null, el("summary", null, title + " (" + list.length + ")"));
    d.appendChild(el("pre", null, list.map(function (l) { return l.line + ": " + l.text; }).join("\n")));
    main.appendChild(d);
  }
  lines("Log lines before the kill", body.before_kill);
  lines("Log lines after the kill", body.after_kill);
});
