// Model Manager dashboard: draws the charts (uPlot) and refreshes the page's sections by
// polling its JSON twin (data-api) every data-refresh seconds, without reloading.
(function () {
  "use strict";
  var COLORS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777",
    "#65a30d", "#ea580c", "#4f46e5", "#0d9488", "#be123c"];
  var plots = {};

  function seriesOptions(spec) {
    return [{}].concat(spec.series.map(function (s, i) {
      var filled = s.values.filter(function (v) { return v !== null; }).length;
      return { label: s.label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true,
        points: { show: filled < 10, size: 5 } };
    }));
  }

  function draw(spec) {
    var slot = document.getElementById("chart-" + spec.id);
    if (!slot) { return; }
    var columns = [spec.x].concat(spec.series.map(function (s) { return s.values; }));
    var key = spec.series.map(function (s) { return s.label; }).join("\u0000");
    var known = plots[spec.id];
    if (known && known.key === key) { known.plot.setData(columns); return; }
    if (known) { known.plot.destroy(); }
    slot.textContent = "";
    if (!spec.series.length || !spec.x.length) {
      slot.innerHTML = "<h3></h3><p class=\"empty\">No data in this window yet.</p>";
      slot.firstChild.textContent = spec.title;
      plots[spec.id] = undefined;
      return;
    }
    var options = {
      title: spec.title, width: Math.max(slot.clientWidth, 320), height: 220,
      scales: { x: { time: spec.time } }, series: seriesOptions(spec),
      axes: [{}, { size: 64, values: function (u, splits) { return splits.map(short); } }],
      legend: { live: true }
    };
    plots[spec.id] = { key: key, plot: new uPlot(options, columns, slot) };
  }

  function short(value) {
    if (value === null || value === undefined) { return ""; }
    if (value === 0) { return "0"; }
    return Math.abs(value) >= 1000 ? value.toLocaleString() : String(Number(value.toPrecision(3)));
  }

  function drawAll(specs) { specs.forEach(draw); }

  function stamp(text) {
    var el = document.getElementById("updated");
    if (el) { el.textContent = text; }
  }

  function refresh(api) {
    fetch(api + window.location.search, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401) { window.location.assign("/dashboard/login"); return null; }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (body) {
        if (!body) { return; }
        Object.keys(body.sections).forEach(function (id) {
          var el = document.getElementById(id);
          if (el) { el.innerHTML = body.sections[id]; }
        });
        drawAll(body.charts);
        document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
        stamp("updated " + new Date().toLocaleTimeString());
      })
      .catch(function (error) { stamp("refresh failed: " + error.message); });
  }

  var api = document.body.dataset.api;
  var data = document.getElementById("charts-data");
  drawAll(data ? JSON.parse(data.textContent) : []);
  if (api) { window.setInterval(function () { refresh(api); }, 1000 * Number(document.body.dataset.refresh || 5)); }
  window.addEventListener("resize", function () {
    Object.keys(plots).forEach(function (id) {
      var known = plots[id], slot = document.getElementById("chart-" + id);
      if (known && slot) { known.plot.setSize({ width: Math.max(slot.clientWidth, 320), height: 220 }); }
    });
  });
})();
