/* oomlab report.html: what every page kind shares. The data is the JSON
 * embedded in #oomlab-data; charts are uPlot (vendored, inlined). Nothing
 * is fetched. Each page kind's script calls OOMLAB.run(render). */
"use strict";
var OOMLAB = (function () {
  var started = performance.now();
  var KIB = 1024;

  function fmtBytes(b) {
    if (b == null || !isFinite(b)) return "-";
    var neg = b < 0 ? "-" : "";
    b = Math.abs(b);
    if (b >= KIB * KIB * KIB * KIB) return neg + (b / (KIB * KIB * KIB * KIB)).toFixed(2) + " TiB";
    if (b >= KIB * KIB * KIB) return neg + (b / (KIB * KIB * KIB)).toFixed(2) + " GiB";
    if (b >= KIB * KIB) return neg + (b / (KIB * KIB)).toFixed(1) + " MiB";
    if (b >= KIB) return neg + (b / KIB).toFixed(1) + " KiB";
    return neg + Math.round(b) + " B";
  }

  /* 1234567 -> "1,234,567" (as oomlab's tables write counts). */
  function fmtCount(n) {
    if (n == null || !isFinite(n)) return "-";
    var s = String(Math.round(Math.abs(n)));
    var out = "";
    for (var i = 0; i < s.length; i++) {
      if (i > 0 && (s.length - i) % 3 === 0) out += ",";
      out += s[i];
    }
    return (n < 0 ? "-" : "") + out;
  }

  /* An exact figure beside its readable one: "1.58 GiB (1,694,687,232 B)". */
  function fmtExact(b) {
    return b == null ? "-" : fmtBytes(b) + " (" + fmtCount(b) + " B)";
  }

  function fmtSec(t) {
    return t == null || !isFinite(t) ? "-" : t.toFixed(3) + " s";
  }

  /* An axis tick in the unit the whole axis reads best in. */
  function fmtTick(v, span) {
    if (span >= 7200) return +(v / 3600).toFixed(2) + " h";
    if (span >= 300) return +(v / 60).toFixed(1) + " min";
    return +v.toFixed(3) + " s";
  }

  function fmtPct(p) {
    return p == null || !isFinite(p) ? "-" : (p > 0 ? "+" : "") + p.toFixed(2) + "%";
  }

  /* el("td", {class: "num"}, "text", childNode, ...) */
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        if (attrs[k] == null) continue;
        if (k === "text") node.textContent = attrs[k];
        else node.setAttribute(k, attrs[k]);
      }
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c == null) continue;
      node.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return node;
  }

  /* A table from header strings and rows of cells (strings, nodes, or
   * {text, class, title} objects). */
  function table(headers, rows, cls) {
    var t = el("table", cls ? { class: cls } : null);
    var thead = el("thead");
    var tr = el("tr");
    headers.forEach(function (h) { tr.appendChild(el("th", null, h)); });
    thead.appendChild(tr);
    if (headers.some(function (h) { return h !== ""; })) t.appendChild(thead);
    var tbody = el("tbody");
    rows.forEach(function (row) {
      var r = el("tr");
      row.forEach(function (cell) {
        if (cell != null && typeof cell === "object" && !(cell instanceof Node)) {
          var td = el("td", { class: cell.class, title: cell.title });
          if (cell.node) td.appendChild(cell.node);
          else td.textContent = cell.text == null ? "" : String(cell.text);
          if (cell.data) for (var k in cell.data) td.setAttribute("data-" + k, cell.data[k]);
          r.appendChild(td);
        } else {
          r.appendChild(el("td", null, cell == null ? "" : cell));
        }
      });
      tbody.appendChild(r);
    });
    t.appendChild(tbody);
    return t;
  }

  function provenance(facts) {
    var footer = document.getElementById("provenance");
    footer.appendChild(el("h2", null, "What produced these figures"));
    footer.appendChild(table(["", ""], facts.map(function (f) {
      return [{ node: el("strong", null, f.label) }, { text: f.value, class: "mono" }];
    })));
    footer.appendChild(el("p", { class: "note" },
      "A self-contained page written by oomlab: the figures are embedded (JSON in this file), the charts are drawn by uPlot " +
      "(MIT, inlined); nothing is fetched."));
  }

  /* Bytes in a unit that reads well for a chart's axis: MiB or GiB. */
  function axisUnit(maxBytes) {
    return maxBytes >= 2 * KIB * KIB * KIB ? { div: KIB * KIB * KIB, name: "GiB" } : { div: KIB * KIB, name: "MiB" };
  }

  var PX = typeof uPlot !== "undefined" && uPlot.pxRatio ? uPlot.pxRatio : (window.devicePixelRatio || 1);

  function chartWidth(container) {
    return Math.max(480, Math.min(1180, (container.clientWidth || document.body.clientWidth || 1000) - 4));
  }

  /* A memory-over-time chart with stage lanes, per-stage peak lines, other
   * horizontal lines (limits), vertical markers (a kill) and a readout of
   * the sample under the cursor (time, RSS, stage).
   *   o.t, o.bytes    samples (seconds, bytes), drawn as they are
   *   o.lanes         [{name, start, end, peak}] stage spans (peak: exact, bytes)
   *   o.hlines        [{bytes, label, color}]
   *   o.vlines        [{t, label, color}]
   *   o.yMaxBytes     a shared top for charts to compare
   *   o.what          what a sample is ("RSS", "memory usage") */
  function timeChart(container, o) {
    var maxB = o.yMaxBytes || 1;
    var unit = axisUnit(maxB);
    var y = new Float64Array(o.bytes.length);
    for (var i = 0; i < o.bytes.length; i++) y[i] = o.bytes[i] / unit.div;
    var x = Float64Array.from(o.t);
    var tMax = x.length ? x[x.length - 1] : 1;
    (o.lanes || []).forEach(function (l) { if (isFinite(l.end) && l.end > tMax) tMax = l.end; });
    (o.vlines || []).forEach(function (v) { if (isFinite(v.t) && v.t > tMax) tMax = v.t; });
    var what = o.what || "RSS";
    var chartDiv = el("div", { class: "chart" });
    var readout = el("div", { class: "readout", role: "status", "aria-live": "polite" });
    container.appendChild(chartDiv);
    container.appendChild(readout);

    function stageAt(t) {
      var lanes = o.lanes || [];
      for (var k = lanes.length - 1; k >= 0; k--) {
        if (t >= lanes[k].start && t <= lanes[k].end) return lanes[k].name;
      }
      return null;
    }

    function font(px, bold) {
      return (bold ? "600 " : "") + Math.round(px * PX) + "px system-ui, 'DejaVu Sans', sans-serif";
    }

    function drawLanes(u) {
      var ctx = u.ctx, b = u.bbox;
      ctx.save();
      ctx.beginPath();
      ctx.rect(b.left, b.top, b.width, b.height);
      ctx.clip();
      (o.lanes || []).forEach(function (l, k) {
        var x0 = u.valToPos(l.start, "x", true), x1 = u.valToPos(l.end, "x", true);
        ctx.fillStyle = k % 2 ? "rgba(70,110,160,0.16)" : "rgba(70,110,160,0.07)";
        ctx.fillRect(x0, b.top, Math.max(1, x1 - x0), b.height);
      });
      ctx.restore();
    }

    function drawMarks(u) {
      var ctx = u.ctx, b = u.bbox;
      ctx.save();
      ctx.beginPath();
      ctx.rect(b.left, b.top, b.width, b.height);
      ctx.clip();
      ctx.textBaseline = "top";
      ctx.textAlign = "left";
      // Stage names at the top of each lane, where they fit.
      ctx.fillStyle = "#3b4656";
      ctx.font = font(11);
      (o.lanes || []).forEach(function (l, k) {
        var x0 = u.valToPos(l.start, "x", true), x1 = u.valToPos(l.end, "x", true);
        var w = ctx.measureText(l.name).width;
        if (x1 - x0 > w + 6 * PX) ctx.fillText(l.name, x0 + 3 * PX, b.top + (3 + (k % 2) * 13) * PX);
      });
      // Exact stage peaks: a short line across the stage at its peak.
      ctx.strokeStyle = "#b8461b";
      ctx.lineWidth = 2 * PX;
      ctx.setLineDash([6 * PX, 3 * PX]);
      (o.lanes || []).forEach(function (l) {
        if (l.peak == null) return;
        var yy = u.valToPos(l.peak / unit.div, "y", true);
        var x0 = u.valToPos(l.start, "x", true), x1 = u.valToPos(l.end, "x", true);
        ctx.beginPath();
        ctx.moveTo(x0, yy);
        ctx.lineTo(Math.max(x0 + 2 * PX, x1), yy);
        ctx.stroke();
      });
      // The run's peak: labelled once.
      if (o.peak) {
        var py = u.valToPos(o.peak.bytes / unit.div, "y", true);
        var px = u.valToPos(o.peak.t, "x", true);
        ctx.setLineDash([]);
        ctx.fillStyle = "#b8461b";
        ctx.font = font(12, true);
        var label = "exact peak " + fmtBytes(o.peak.bytes) + (o.peak.stage ? " (" + o.peak.stage + ")" : "");
        var lw = ctx.measureText(label).width;
        var lx = Math.min(Math.max(px - lw / 2, b.left + 4 * PX), b.left + b.width - lw - 4 * PX);
        ctx.fillText(label, lx, Math.max(b.top + 30 * PX, py - 18 * PX));
      }
      ctx.setLineDash([8 * PX, 4 * PX]);
      ctx.lineWidth = 1.5 * PX;
      ctx.font = font(11, true);
      (o.hlines || []).forEach(function (h) {
        var yy = u.valToPos(h.bytes / unit.div, "y", true);
        ctx.strokeStyle = h.color || "#b0151d";
        ctx.fillStyle = h.color || "#b0151d";
        ctx.beginPath();
        ctx.moveTo(b.left, yy);
        ctx.lineTo(b.left + b.width, yy);
        ctx.stroke();
        var w = ctx.measureText(h.label).width;
        ctx.fillText(h.label, b.left + b.width - w - 4 * PX, yy + 3 * PX);
      });
      (o.vlines || []).forEach(function (v) {
        var xx = u.valToPos(v.t, "x", true);
        ctx.strokeStyle = v.color || "#b0151d";
        ctx.fillStyle = v.color || "#b0151d";
        ctx.beginPath();
        ctx.moveTo(xx, b.top);
        ctx.lineTo(xx, b.top + b.height);
        ctx.stroke();
        var w = ctx.measureText(v.label).width;
        ctx.fillText(v.label, Math.max(b.left + 2 * PX, xx - w - 4 * PX), b.top + b.height - 18 * PX);
      });
      ctx.restore();
    }

    function showCursor(u) {
      var idx = u.cursor.idx;
      if (idx == null || idx < 0 || idx >= o.t.length) {
        readout.textContent = "";
        return;
      }
      var t = o.t[idx], b = o.bytes[idx], st = stageAt(t);
      readout.textContent = "";
      readout.appendChild(el("span", { class: "ro-time", "data-t": t }, "t " + fmtSec(t)));
      readout.appendChild(document.createTextNode(" · "));
      readout.appendChild(el("span", { class: "ro-bytes", "data-bytes": b }, what + " " + fmtExact(b)));
      readout.appendChild(document.createTextNode(" · "));
      readout.appendChild(el("span", { class: "ro-stage" }, "stage " + (st || "-")));
    }

    var yTop = (maxB * 1.12) / unit.div;
    var opts = {
      width: chartWidth(container),
      height: o.height || 300,
      legend: { show: false },
      cursor: { drag: { x: true, y: false }, points: { size: 8 } },
      scales: {
        x: { time: false, range: [0, tMax > 0 ? tMax : 1] },
        y: { range: [0, yTop > 0 ? yTop : 1] }
      },
      axes: [
        { label: o.xLabel || "time since start",
          // Whole minutes and hours on long timelines (uPlot's own steps are decimal).
          incrs: tMax >= 300 ? [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800] : undefined,
          values: function (u, s) { return s.map(function (v) { return v == null ? "" : fmtTick(v, tMax); }); } },
        { label: what + " (" + unit.name + ")", size: 60 }
      ],
      series: [
        {},
        { label: what, stroke: "#2a62a8", width: 1.5, fill: "rgba(42,98,168,0.10)", points: { show: false } }
      ],
      hooks: { drawClear: [drawLanes], draw: [drawMarks], setCursor: [showCursor] }
    };
    var u = new uPlot(opts, [x, y], chartDiv);
    window.addEventListener("resize", function () { u.setSize({ width: chartWidth(container), height: opts.height }); });
    return { plot: u, readout: readout };
  }

  function run(render) {
    var data = JSON.parse(document.getElementById("oomlab-data").textContent);
    var parsed = performance.now();
    var main = document.getElementById("main");
    main.textContent = "";
    render(main, data.body, data);
    provenance(data.provenance || []);
    var drawn = performance.now();
    window.oomlabTiming = {
      script_start_ms: started,
      parsed_ms: parsed,
      drawn_ms: drawn,
      parse_ms: parsed - started,
      draw_ms: drawn - parsed
    };
    document.body.setAttribute("data-drawn-ms", drawn.toFixed(1));
    document.body.setAttribute("data-ready", "1");
  }

  window.addEventListener("error", function (e) {
    var main = document.getElementById("main");
    if (main) main.insertBefore(el("p", { class: "banner" }, "This page failed to draw: " + e.message), main.firstChild);
  });

  return {
    el: el, table: table, fmtBytes: fmtBytes, fmtCount: fmtCount, fmtExact: fmtExact,
    fmtSec: fmtSec, fmtPct: fmtPct, timeChart: timeChart, run: run, axisUnit: axisUnit, PX: PX,
    chartWidth: chartWidth
  };
})();
