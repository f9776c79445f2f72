/* oomlab report.html, a model: fitted lines with the points and the held-out
 * point, the production prediction (an interval) and the headroom grid. */
"use strict";
OOMLAB.run(function (main, body) {
  var O = OOMLAB, el = O.el;
  var COLORS = ["#2a62a8", "#b8461b", "#1d7a3a", "#7b3fa0", "#8a6d00", "#00838f"];
  var budget = body.budget;
  /* The budget as it was given (decimal GB when it is a whole number of them). */
  var budgetText = budget.bytes % 1e9 === 0 ? (budget.bytes / 1e9) + " GB (" + O.fmtBytes(budget.bytes) + ")" : O.fmtBytes(budget.bytes);

  (body.notes || []).forEach(function (n) { main.appendChild(el("p", { class: "note" }, n)); });

  // Production prediction first: the answer a reader came for.
  main.appendChild(el("h2", null, "At production: " + O.fmtCount(body.production_rows) + " rows, " + body.columns + " columns"));
  main.appendChild(O.table(
    ["strategy", "predicted peak", "interval (held-out error)", "stage", "against the " + budgetText + " budget"],
    body.variants.map(function (v) {
      var p = v.production;
      return [
        v.name,
        { text: O.fmtBytes(p.peak_bytes), class: "num peak", data: { "prediction-bytes": Math.round(p.peak_bytes), variant: v.name } },
        p.low_bytes != null
          ? { text: O.fmtBytes(p.low_bytes) + " to " + O.fmtBytes(p.high_bytes) + " (±" + Math.abs(p.error_pct).toFixed(2) + "%)", class: "num" }
          : "no held-out check",
        p.stage,
        p.fits_budget ? { text: "fits", class: "fits" } : { text: "does not fit", class: "nofit" }
      ];
    })));
  main.appendChild(el("p", { class: "note" }, "Budget: " + O.fmtExact(budget.bytes) + ", " + budget.source + "."));

  // The chart: rows loaded against peak, both logarithmic.
  main.appendChild(el("h2", null, "Peak against rows loaded"));
  var xs = {};
  function addX(r) { if (r > 0) xs[r] = true; }
  body.variants.forEach(function (v) {
    v.line.forEach(function (p) { addX(p.rows_in); });
    v.points.forEach(function (p) { addX(p.rows_in); });
    v.held_out.forEach(function (h) { addX(h.rows_in); });
    addX(v.production.rows_in);
  });
  var x = Object.keys(xs).map(Number).sort(function (a, b) { return a - b; });
  var at = {};
  x.forEach(function (r, i) { at[r] = i; });
  function column(pairs) {
    var c = new Array(x.length).fill(null);
    pairs.forEach(function (p) { if (p[1] > 0 && at[p[0]] != null) c[at[p[0]]] = p[1]; });
    return c;
  }
  var data = [x];
  var series = [{ label: "rows loaded", value: function (u, v) { return v == null ? "-" : O.fmtCount(v); } }];
  var bytesValue = function (u, v) { return v == null ? "-" : O.fmtBytes(v); };
  var yMin = Infinity, yMax = budget.bytes;
  function seen(v) { if (v > 0) { yMin = Math.min(yMin, v); yMax = Math.max(yMax, v); } }
  body.variants.forEach(function (v, i) {
    var color = COLORS[i % COLORS.length];
    data.push(column(v.line.map(function (p) { seen(p.bytes); return [p.rows_in, p.bytes]; })));
    series.push({ label: v.name + " (fitted)", stroke: color, width: 2, spanGaps: true, points: { show: false }, value: bytesValue });
    data.push(column(v.points.map(function (p) { seen(p.bytes); return [p.rows_in, p.bytes]; })));
    series.push({ label: v.name + " (measured)", stroke: color, width: 0, paths: function () { return null; },
      points: { show: true, size: 7, fill: color, stroke: color }, value: bytesValue });
    data.push(column(v.held_out.map(function (h) { seen(h.measured_bytes); return [h.rows_in, h.measured_bytes]; })));
    series.push({ label: v.name + " (held out, measured" + (v.held_out.length ? " at " + v.held_out[0].columns + " columns" : "") + ")", stroke: color, width: 0, paths: function () { return null; },
      points: { show: true, size: 13, width: 2, fill: "#fff", stroke: color }, value: bytesValue });
    data.push(column([[v.production.rows_in, v.production.peak_bytes]]));
    seen(v.production.peak_bytes);
    series.push({ label: v.name + " (production prediction)", stroke: "#1d2430", width: 0, paths: function () { return null; },
      points: { show: true, size: 11, width: 2, fill: color, stroke: "#1d2430" }, value: bytesValue });
  });
  if (!isFinite(yMin)) yMin = 1;

  var chartBox = el("div", { class: "chart" });
  main.appendChild(chartBox);
  var PX = O.PX;
  var opts = {
    width: O.chartWidth(main),
    height: 460,
    scales: {
      x: { time: false, distr: 3 },
      y: { distr: 3, range: [yMin / 2, yMax * 2] }
    },
    axes: [
      { label: "rows loaded (log)", values: function (u, s) { return s.map(function (v) { return v == null ? "" : O.fmtCount(v); }); }, size: 50 },
      { label: "peak (log)", values: function (u, s) { return s.map(function (v) { return v == null ? "" : O.fmtBytes(v); }); }, size: 80 }
    ],
    series: series,
    legend: { live: true },
    cursor: { points: { size: 9 } },
    hooks: {
      draw: [function (u) {
        var ctx = u.ctx, b = u.bbox;
        ctx.save();
        ctx.textAlign = "left";
        var yy = u.valToPos(budget.bytes, "y", true);
        ctx.strokeStyle = "#b0151d";
        ctx.fillStyle = "#b0151d";
        ctx.lineWidth = 1.5 * PX;
        ctx.setLineDash([8 * PX, 4 * PX]);
        ctx.beginPath();
        ctx.moveTo(b.left, yy);
        ctx.lineTo(b.left + b.width, yy);
        ctx.stroke();
        ctx.font = "600 " + Math.round(11 * PX) + "px system-ui, 'DejaVu Sans', sans-serif";
        ctx.textBaseline = "bottom";
        ctx.fillText("budget " + budgetText, b.left + 6 * PX, yy - 3 * PX);
        // Production rows: a vertical rule.
        var xx = u.valToPos(body.production_rows, "x", true);
        ctx.strokeStyle = "#5b6473";
        ctx.fillStyle = "#5b6473";
        ctx.setLineDash([3 * PX, 3 * PX]);
        ctx.beginPath();
        ctx.moveTo(xx, b.top);
        ctx.lineTo(xx, b.top + b.height);
        ctx.stroke();
        ctx.textBaseline = "top";
        ctx.fillText("production", Math.max(b.left, xx - 70 * PX), b.top + 4 * PX);
        ctx.restore();
      }]
    }
  };
  new uPlot(opts, data, chartBox);
  main.appendChild(el("p", { class: "note" },
    "Lines: the model at " + body.columns + " columns without MAX_RANKING_SAMPLES. Filled dots: the runs it was fitted on " +
    "(measured " + O.fmtCount(body.measured_rows[0]) + " to " + O.fmtCount(body.measured_rows[1]) + " rows). Rings: the held-out run, " +
    "measured. Dark-edged dots: the production prediction. Hover for the figures; click a legend entry to hide it."));

  main.appendChild(el("h2", null, "Held-out check"));
  var held = [];
  body.variants.forEach(function (v) {
    v.held_out.forEach(function (h) {
      held.push([v.name, { text: O.fmtCount(h.rows_in), class: "num" }, { text: String(h.columns), class: "num" },
        { text: O.fmtBytes(h.measured_bytes), class: "num" }, { text: O.fmtBytes(h.predicted_bytes), class: "num" },
        { text: O.fmtPct(h.error_pct), class: "num" }, h.stage]);
    });
  });
  main.appendChild(held.length
    ? O.table(["strategy", "rows", "columns", "measured", "predicted (fitted without it)", "error", "stage"], held)
    : el("p", { class: "note" }, "No held-out point."));
  if (body.production_checks.length) {
    main.appendChild(el("h3", null, "Measured at production size"));
    main.appendChild(O.table(["run", "rows", "measured", "predicted", "error"], body.production_checks.map(function (h) {
      return [h.stage, { text: O.fmtCount(h.rows_in), class: "num" }, { text: O.fmtBytes(h.measured_bytes), class: "num" },
        { text: O.fmtBytes(h.predicted_bytes), class: "num" }, { text: O.fmtPct(h.error_pct), class: "num" }];
    })));
  }

  main.appendChild(el("h2", null, "Headroom: rows x columns against the " + budgetText + " budget"));
  main.appendChild(el("p", { class: "note" },
    "Each cell is the predicted peak with the rows grown by the factor and the feature columns by the number added; " +
    "\u2713 fits the budget, \u2717 does not."));
  body.variants.forEach(function (v) {
    var g = v.grid;
    main.appendChild(el("h3", null, v.name));
    var headers = ["rows"].concat(g.columns_added.map(function (c, j) {
      var cols = g.cells.length && g.cells[0][j] ? g.cells[0][j].columns : c;
      return "+" + c + " columns (" + cols + ")";
    }));
    var rows = g.cells.map(function (row, i) {
      return ["x" + g.rows_factors[i] + " (" + O.fmtCount(row.length ? row[0].rows_in : 0) + ")"].concat(row.map(function (c) {
        return { text: (c.fits ? "\u2713 " : "\u2717 ") + O.fmtBytes(c.peak_bytes), class: "num " + (c.fits ? "fits" : "nofit"),
          title: c.stage };
      }));
    });
    main.appendChild(O.table(headers, rows, "headroom"));
  });
});
