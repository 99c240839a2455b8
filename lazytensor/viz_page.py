'''The VIZ page's HTML skeleton, stylesheet and script (no external resources).

viz_render fills the %NAME% slots: the title, the schedule picker, the reason legend, one section
per schedule (the pre-drawn SVGs) and the kernel data as JSON. The script adds pan and zoom,
selection (click a kernel: details and source in the side panel), search and a sortable table,
and records any JavaScript error in the page itself (`body[data-js-error]`, `#js-errors`) so a
headless browser test can see it.
'''

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>%TITLE% - lazytensor VIZ</title>
<script>
window.onerror = function (message, source, line) {
  var text = String(message) + " (line " + line + ")";
  document.documentElement.setAttribute("data-js-error", text);
  var box = document.getElementById("js-errors");
  if (box) { box.textContent += text + "\n"; box.hidden = false; }
};
</script>
<style>
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: #212121; background: #fafafa; }
body { display: flex; flex-direction: column; overflow: hidden; }
header { display: flex; flex-wrap: wrap; gap: 8px 14px; align-items: center; padding: 8px 12px;
  background: #263238; color: #eceff1; }
header h1 { font-size: 16px; margin: 0; font-weight: 600; }
header select, header input, header button { font: inherit; padding: 3px 6px; border-radius: 4px;
  border: 1px solid #90a4ae; background: #fff; color: #212121; }
header button.active { background: #ffb74d; border-color: #ffb74d; }
#summary { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; color: #cfd8dc; }
#legend { display: flex; flex-wrap: wrap; gap: 4px; padding: 4px 12px; background: #eceff1;
  border-bottom: 1px solid #cfd8dc; }
.chip { color: #fff; border-radius: 10px; padding: 1px 8px; font-size: 11px; }
main { display: flex; flex: 1; min-height: 0; }
#stage { flex: 1; position: relative; overflow: hidden; }
.schedule, .view { position: absolute; inset: 0; }
.view { overflow: hidden; cursor: grab; }
.view.tview { overflow: auto; cursor: default; padding: 8px; }
.hidden { display: none !important; }
aside { width: 40%; max-width: 640px; min-width: 320px; border-left: 1px solid #cfd8dc; background: #fff;
  overflow: auto; padding: 10px 14px; }
aside h2 { font-size: 15px; margin: 2px 0 6px; word-break: break-all; }
aside dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 10px; margin: 0 0 8px; }
aside dt { color: #607d8b; }
aside dd { margin: 0; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
.reason { color: #fff; padding: 2px 6px; border-radius: 3px; }
pre.source { background: #263238; color: #eceff1; padding: 8px; font-size: 11.5px; line-height: 1.35;
  overflow: auto; border-radius: 4px; white-space: pre; }
pre.source .ln { color: #78909c; user-select: none; }
svg text { font-family: ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 11px; }
.edge path { fill: none; stroke: #90a4ae; stroke-width: 1.2; }
.edge .elabel { fill: #546e7a; font-size: 9.5px; }
.edge.hot path { stroke: #e65100; stroke-width: 2.4; }
.edge.hot .elabel { fill: #e65100; font-weight: bold; }
.knode { cursor: pointer; }
.knode .kbox { stroke: #455a64; stroke-width: 1; }
.knode.out .kbox { stroke: #2e7d32; stroke-width: 2.5; }
.knode .ktext tspan:first-child { font-weight: bold; }
.knode .rtext { fill: #fff; font-size: 10.5px; }
.knode.selected .kbox { stroke: #e65100; stroke-width: 4; }
.knode.dim, .onode.dim { opacity: 0.25; }
.bnode rect { fill: #eceff1; stroke: #90a4ae; stroke-dasharray: 4 2; }
.btext { fill: #37474f; }
.onode { cursor: pointer; }
.onode rect { stroke: #78909c; }
.onode.out rect { stroke: #2e7d32; stroke-width: 2.5; }
.onode.multi rect { stroke: #c62828; stroke-dasharray: 5 2; stroke-width: 2; }
.onode.selected rect { stroke: #e65100; stroke-width: 3.5; }
table.ktable { border-collapse: collapse; width: 100%; font-size: 12px; }
table.ktable th { position: sticky; top: 0; background: #cfd8dc; cursor: pointer; text-align: left; padding: 4px; }
table.ktable td { border-bottom: 1px solid #eceff1; padding: 3px 4px; vertical-align: top; }
table.ktable tr:hover td { background: #fff3e0; cursor: pointer; }
table.ktable td.num { text-align: right; font-family: ui-monospace, Menlo, Consolas, monospace; }
#js-errors { position: fixed; bottom: 0; left: 0; right: 0; background: #b71c1c; color: #fff;
  padding: 6px 12px; white-space: pre-wrap; margin: 0; }
.hint { color: #607d8b; font-size: 12px; }
</style>
</head>
<body>
<header>
  <h1>%TITLE%</h1>
  <select id="pick" title="schedules recorded (one per realize)">%OPTIONS%</select>
  <button data-view="kview" class="active">kernel graph</button>
  <button data-view="oview">op graph</button>
  <button data-view="tview">kernel table</button>
  <button id="fit" title="fit the graph in the window">fit</button>
  <input id="search" type="search" placeholder="search ops, names, reasons">
  <span id="summary"></span>
</header>
<div id="legend"><b>kernel boundary:</b> %LEGEND%</div>
<main>
  <div id="stage">%SECTIONS%</div>
  <aside id="panel"><p class="hint">Click a kernel (or an op) for its fused ops, inputs, boundary reason,
  time and generated source. Drag to pan, wheel to zoom. Box fill: share of the schedule's time
  (white: little, red: most). Op graph: each op in its kernel's color; a dashed red border marks an op
  recomputed in several kernels.</p></aside>
</main>
<pre id="js-errors" hidden></pre>
<script id="viz-data" type="application/json">%DATA%</script>
<script>
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("viz-data").textContent);
  var current = 0, view = "kview", selected = null;
  var zoom = {};   // per view element: {s, x, y}

  function section(i) { return document.querySelector('.schedule[data-s="' + i + '"]'); }
  function activeView() { return section(current).querySelector("." + view); }
  function fmtTime(s) {
    if (s === null || s === undefined) return "-";
    return s >= 1e-3 ? (s * 1e3).toFixed(3) + " ms" : (s * 1e6).toFixed(1) + " us";
  }
  function fmtCount(n, unit) {
    var scales = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "K"]];
    for (var i = 0; i < scales.length; i++) {
      if (Math.abs(n) >= scales[i][0]) return (n / scales[i][0]).toFixed(1) + " " + scales[i][1] + unit;
    }
    return n + " " + unit;
  }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // ---- pan and zoom: a transform on the svg's <g class="world"> ----
  function apply(v) {
    var z = zoom[v.dataset.key], world = v.querySelector("g.world"), svg = v.querySelector("svg");
    if (!world) return;
    world.setAttribute("transform", "translate(" + z.x + "," + z.y + ") scale(" + z.s + ")");
    svg.setAttribute("width", v.clientWidth); svg.setAttribute("height", v.clientHeight);
  }
  function fit(v, wholeGraph) {
    var svg = v.querySelector("svg");
    if (!svg) return;
    var w = +svg.dataset.w, h = +svg.dataset.h;
    var s = Math.min(1, (v.clientWidth - 10) / w);
    if (wholeGraph) s = Math.min(s, (v.clientHeight - 10) / h);
    s = Math.max(s, 0.02);
    zoom[v.dataset.key] = {s: s, x: Math.max(5, (v.clientWidth - w * s) / 2), y: 5};
    apply(v);
  }
  function setupPanZoom(v, key) {
    v.dataset.key = key;
    var drag = null;
    v.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var z = zoom[key], r = v.getBoundingClientRect();
      var f = Math.exp(-ev.deltaY * 0.0015), px = ev.clientX - r.left, py = ev.clientY - r.top;
      var s = Math.min(4, Math.max(0.02, z.s * f));
      z.x = px - (px - z.x) * s / z.s; z.y = py - (py - z.y) * s / z.s; z.s = s;
      apply(v);
    }, {passive: false});
    v.addEventListener("mousedown", function (ev) { drag = {x: ev.clientX, y: ev.clientY, moved: false}; });
    window.addEventListener("mousemove", function (ev) {
      if (!drag) return;
      var z = zoom[key];
      z.x += ev.clientX - drag.x; z.y += ev.clientY - drag.y;
      if (Math.abs(ev.clientX - drag.x) + Math.abs(ev.clientY - drag.y) > 0) drag.moved = true;
      drag.x = ev.clientX; drag.y = ev.clientY;
      apply(v);
    });
    window.addEventListener("mouseup", function () { drag = null; });
  }
  function centerOn(v, node) {
    var z = zoom[v.dataset.key], box = node.getBBox();
    z.s = Math.max(z.s, 0.9);
    z.x = v.clientWidth / 2 - (box.x + box.width / 2) * z.s;
    z.y = v.clientHeight / 3 - (box.y + box.height / 2) * z.s;
    apply(v);
  }

  // ---- selection: details and source in the side panel ----
  function select(k, center) {
    var s = data.schedules[current], kernel = s.kernels[k];
    selected = k;
    var sec = section(current);
    sec.querySelectorAll(".knode, .onode").forEach(function (n) {
      n.classList.toggle("selected", +n.dataset.k === k && n.hasAttribute("data-k"));
    });
    sec.querySelectorAll(".kview .edge").forEach(function (e) {
      e.classList.toggle("hot", e.dataset.from === "k" + k || e.dataset.to === "k" + k);
    });
    var panel = document.getElementById("panel");
    panel.innerHTML = "";
    panel.appendChild(el("h2", {}, "#" + k + " " + kernel.name));
    var reason = el("span", {"class": "reason", style: "background:" + kernel.color}, kernel.reason);
    panel.appendChild(el("p")).appendChild(reason);
    var dl = el("dl");
    var total = s.kernels.reduce(function (a, x) { return a + (x.seconds || 0); }, 0);
    var rows = [["output", kernel.out + (kernel.isOutput ? "  (a result of realize)" : "")],
                ["fused ops", kernel.ops || "-"],
                ["inputs", kernel.inputs.join("\n") || "-"],
                ["read by", kernel.readers.map(function (r) { return "#" + r; }).join(", ") || "-"],
                ["time", fmtTime(kernel.seconds) + (kernel.seconds && total ? "  (" +
                  (100 * kernel.seconds / total).toFixed(1) + "% of the schedule)" : "")],
                ["FLOPs (est.)", fmtCount(kernel.flops, "FLOP") + (kernel.seconds ? "  = " +
                  (kernel.flops / kernel.seconds / 1e9).toFixed(2) + " GFLOP/s" : "")],
                ["bytes (est.)", fmtCount(kernel.bytes, "B") + (kernel.seconds ? "  = " +
                  (kernel.bytes / kernel.seconds / 1e9).toFixed(2) + " GB/s" : "")],
                ["program", kernel.compile || (s.ran ? "-" : "compiled for display, not run")]];
    rows.forEach(function (r) {
      dl.appendChild(el("dt", {}, r[0]));
      var dd = el("dd", {}, r[1]); dd.style.whiteSpace = "pre-wrap"; dl.appendChild(dd);
    });
    panel.appendChild(dl);
    var pre = el("pre", {"class": "source"});
    kernel.source.split("\n").forEach(function (line, i) {
      pre.appendChild(el("span", {"class": "ln"}, String(i + 1).padStart(4, " ") + "  "));
      pre.appendChild(document.createTextNode(line + "\n"));
    });
    panel.appendChild(pre);
    if (center) {
      var node = sec.querySelector("." + view + ' [data-k="' + k + '"]');
      if (node) centerOn(activeView(), node);
    }
  }

  // ---- the kernel table ----
  function buildTable(i) {
    var s = data.schedules[i], body = section(i).querySelector("table.ktable tbody");
    var total = s.kernels.reduce(function (a, x) { return a + (x.seconds || 0); }, 0);
    var rows = s.kernels.map(function (k) {
      return {k: k, index: k.index, name: k.name, seconds: k.seconds || 0,
              share: total ? (k.seconds || 0) / total : 0,
              gflops: k.seconds ? k.flops / k.seconds / 1e9 : 0,
              gbs: k.seconds ? k.bytes / k.seconds / 1e9 : 0, ops: k.ops, reason: k.reason};
    });
    function fill(key, descending) {
      rows.sort(function (a, b) {
        var x = a[key], y = b[key];
        var c = typeof x === "string" ? x.localeCompare(y) : x - y;
        return descending ? -c : c;
      });
      body.innerHTML = "";
      rows.forEach(function (r) {
        var tr = el("tr", {"class": "krow", "data-k": r.index});
        tr.appendChild(el("td", {"class": "num"}, r.index));
        tr.appendChild(el("td", {}, r.name));
        tr.appendChild(el("td", {"class": "num"}, fmtTime(r.k.seconds)));
        tr.appendChild(el("td", {"class": "num"}, total ? (100 * r.share).toFixed(1) : "-"));
        tr.appendChild(el("td", {"class": "num"}, r.k.seconds ? r.gflops.toFixed(2) : "-"));
        tr.appendChild(el("td", {"class": "num"}, r.k.seconds ? r.gbs.toFixed(2) : "-"));
        tr.appendChild(el("td", {}, r.ops));
        var td = el("td"); td.appendChild(el("span", {"class": "reason", style: "background:" + r.k.color}, r.reason));
        tr.appendChild(td);
        tr.addEventListener("click", function () { showView("kview"); select(r.index, true); });
        body.appendChild(tr);
      });
    }
    var order = {};
    section(i).querySelectorAll("table.ktable th").forEach(function (th) {
      th.addEventListener("click", function () {
        var key = th.dataset.key;
        order[key] = !order[key];
        fill(key, order[key]);
      });
    });
    fill(s.ran ? "seconds" : "index", s.ran);
  }

  function showView(name) {
    view = name;
    var sec = section(current);
    sec.querySelectorAll(".view").forEach(function (v) { v.classList.toggle("hidden", !v.classList.contains(name)); });
    document.querySelectorAll("header button[data-view]").forEach(function (b) {
      b.classList.toggle("active", b.dataset.view === name);
    });
    var v = activeView();
    if (name === "tview") return;
    if (zoom[v.dataset.key] !== undefined) { apply(v); return; }
    fit(v, false);
    // a big graph fitted to the window is too small to read: start at reading size on the selection
    var node = selected === null ? null : sec.querySelector("." + name + ' [data-k="' + selected + '"]');
    if (zoom[v.dataset.key].s < 0.6 && node) centerOn(v, node);
  }
  function showSchedule(i) {
    current = i;
    document.querySelectorAll(".schedule").forEach(function (s) { s.classList.toggle("hidden", +s.dataset.s !== i); });
    var s = data.schedules[i];
    document.getElementById("summary").textContent = s.summary;
    var first = 0;
    if (s.ran) {
      s.kernels.forEach(function (k) { if ((k.seconds || 0) > (s.kernels[first].seconds || 0)) first = k.index; });
    }
    selected = null;
    if (s.kernels.length) select(first, false);
    showView(view);
  }
  function search(text) {
    text = text.trim().toLowerCase();
    var s = data.schedules[current], sec = section(current);
    sec.querySelectorAll(".knode, .onode").forEach(function (n) {
      if (!text || !n.hasAttribute("data-k")) { n.classList.remove("dim"); return; }
      var k = s.kernels[+n.dataset.k];
      var hay = (k.name + " " + k.ops + " " + k.reason + " " + k.out + " " + n.textContent).toLowerCase();
      n.classList.toggle("dim", hay.indexOf(text) < 0);
    });
  }

  document.querySelectorAll(".schedule").forEach(function (sec) {
    var i = +sec.dataset.s;
    sec.querySelectorAll(".view").forEach(function (v, j) { if (j < 2) setupPanZoom(v, i + "-" + j); });
    sec.addEventListener("click", function (ev) {
      var node = ev.target.closest("[data-k]");
      if (node && !node.classList.contains("krow")) select(+node.dataset.k, false);
    });
    buildTable(i);
  });
  document.querySelectorAll("header button[data-view]").forEach(function (b) {
    b.addEventListener("click", function () { showView(b.dataset.view); });
  });
  document.getElementById("fit").addEventListener("click", function () { fit(activeView(), true); });
  document.getElementById("pick").addEventListener("change", function (ev) { showSchedule(+ev.target.value); });
  document.getElementById("search").addEventListener("input", function (ev) { search(ev.target.value); });
  window.addEventListener("resize", function () { var v = activeView(); if (zoom[v.dataset.key]) apply(v); });
  showSchedule(0);
  document.documentElement.setAttribute("data-ready", String(data.schedules.length));
  document.documentElement.setAttribute("data-kernel-rows", String(document.querySelectorAll(".krow").length));
})();
</script>
</body>
</html>
"""
