/* oomlab report.html, a report: the before/after table, then per run its
 * exact peak, its RSS timeline with stage lanes and per-stage peaks, and
 * its stages. */
"use strict";
OOMLAB.run(function (main, body) {
  var O = OOMLAB, el = O.el;

  (body.notes || []).forEach(function (n) { main.appendChild(el("p", { class: "banner" }, n)); });

  main.appendChild(el("h2", null, "Before / after"));
  if (body.table && body.table.headers.length) {
    main.appendChild(O.table(body.table.headers, body.table.rows, "before-after"));
  } else {
    main.appendChild(el("p", { class: "note" }, "No runs."));
  }

  // One y scale for every run, so the curves compare at a glance.
  var yMax = 1;
  body.runs.forEach(function (r) {
    yMax = Math.max(yMax, r.peak_bytes || 0, r.sampled_peak_bytes || 0, r.limit_bytes || 0);
    r.stages.forEach(function (s) { yMax = Math.max(yMax, s.exact_peak_bytes || 0); });
  });

  main.appendChild(el("h2", null, "Memory over time"));
  main.appendChild(el("p", { class: "note" },
    "Shaded lanes are the stages; the dashed line across each stage is its exact peak from the kernel (VmHWM), which a " +
    "sampled curve can miss. Drag across a chart to zoom, double-click to reset."));

  body.runs.forEach(function (r) {
    var box = el("section", { class: "run", id: "run-" + r.strategy });
    var head = el("div", { class: "run-head" }, el("h3", null, r.strategy));
    if (r.ending) head.appendChild(el("span", { class: "bad" }, r.summary));
    if (r.peak_bytes != null) {
      // A run that did not finish has exact peaks only for the stages that did.
      head.appendChild(el("span", { class: "peak", "data-peak-bytes": r.peak_bytes, "data-strategy": r.strategy },
        (r.ending ? "largest exact peak of the stages that finished " : "exact peak ") +
        O.fmtExact(r.peak_bytes) + (r.peak_stage && !r.ending ? " in " + r.peak_stage : "")));
    }
    head.appendChild(el("span", { class: "muted" }, "wall " + r.wall_s.toFixed(2) + " s"));
    box.appendChild(head);
    if (r.peak_source) box.appendChild(el("p", { class: "note" }, "Peak figure: " + r.peak_source + "."));
    if (r.ending) box.appendChild(el("p", { class: "banner" }, r.ending.text));

    var tl = r.timeline;
    var lanes = r.stages.map(function (s) {
      return { name: s.name, start: s.start_s, end: s.end_s, peak: s.exact_peak_bytes };
    });
    var peakStage = null;
    r.stages.forEach(function (s) {
      if (s.exact_peak_bytes != null && (peakStage == null || s.exact_peak_bytes > peakStage.exact_peak_bytes)) peakStage = s;
    });
    var hlines = [];
    if (r.limit_bytes) hlines.push({ bytes: r.limit_bytes, label: "memory limit " + O.fmtBytes(r.limit_bytes), color: "#b0151d" });
    var vlines = [];
    if (r.ending && r.ending.t_s != null) vlines.push({ t: r.ending.t_s, label: r.ending.kind, color: "#b0151d" });
    if (tl.t_s.length) {
      O.timeChart(box, {
        t: tl.t_s,
        bytes: tl.rss_bytes,
        lanes: lanes,
        hlines: hlines,
        vlines: vlines,
        yMaxBytes: yMax,
        peak: peakStage ? { bytes: peakStage.exact_peak_bytes, t: (peakStage.start_s + peakStage.end_s) / 2, stage: peakStage.name } : null,
        what: "RSS"
      });
      var drawnNote = tl.buckets
        ? "Drawn: " + O.fmtCount(tl.t_s.length) + " of " + O.fmtCount(tl.samples) + " samples (the smallest and largest of each of " +
          O.fmtCount(tl.buckets) + " time buckets; the sampled peak is always among them)."
        : "Drawn: all " + O.fmtCount(tl.samples) + " samples.";
      box.appendChild(el("p", { class: "note" }, drawnNote + " Sampled peak " + O.fmtExact(r.sampled_peak_bytes) + "."));
    } else {
      box.appendChild(el("p", { class: "note" }, "No RSS samples were recorded for this run."));
    }

    if (r.stages.length) {
      var rows = r.stages.map(function (s) {
        return [
          s.name,
          { text: s.start_s.toFixed(3), class: "num" },
          { text: s.end_s.toFixed(3), class: "num" },
          s.exact_peak_bytes != null
            ? { text: O.fmtExact(s.exact_peak_bytes), class: "num", data: { "stage-peak-bytes": s.exact_peak_bytes } }
            : { text: "not finished", class: "num bad" },
          { text: O.fmtBytes(s.sampled_peak_bytes), class: "num" }
        ];
      });
      var det = el("details", { open: "" }, el("summary", null, r.stages.length + " stages"));
      det.appendChild(O.table(["stage", "start (s)", "end (s)", "exact peak (kernel)", "sampled peak"], rows));
      box.appendChild(det);
    }
    main.appendChild(box);
  });
});
