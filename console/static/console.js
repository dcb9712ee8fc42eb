// Draws the charts of a page: each <div data-chart="ID"> reads <script type="application/json" id="ID">,
// {"x": [unix seconds...], "series": [{"label": name, "values": [...]}, ...]}. The tables beside them carry the same numbers,
// so the pages say everything without JavaScript.
"use strict";
(function () {
  var colors = ["#0969da", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#57606a"];
  function draw(el) {
    var src = document.getElementById(el.getAttribute("data-chart"));
    if (!src || typeof uPlot === "undefined") return;
    var data = JSON.parse(src.textContent);
    if (!data.x || data.x.length === 0) { el.textContent = "No data in this range."; return; }
    var series = [{}].concat(data.series.map(function (s, i) {
      return { label: s.label, stroke: colors[i % colors.length], width: 1.5 };
    }));
    var cols = [data.x].concat(data.series.map(function (s) { return s.values; }));
    var opts = { width: Math.max(320, el.clientWidth || 900), height: 220, series: series,
                 scales: { x: { time: true } }, tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); }, axes: [{}, { label: el.getAttribute("data-y") || "" }] };
    new uPlot(opts, cols, el);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-chart]").forEach(draw);
  });
})();
