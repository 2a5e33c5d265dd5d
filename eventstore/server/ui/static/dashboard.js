/* The dashboard: draw the charts from the JSON the server computed (database aggregates). */
(function () {
  "use strict";
  var holder = document.getElementById("dashboard-data");
  if (!holder || typeof Chart === "undefined") { return; }
  var data = JSON.parse(holder.textContent);
  var BLUE = "#1f5fa8", ORANGE = "#b35900", GREEN = "#2e7d32", RED = "#b3261e";
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.color = "#1f2328";

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas) { return; }
    new Chart(canvas, config);
  }
  function bar(id, labels, label, values, color) {
    draw(id, {type: "bar", data: {labels: labels, datasets: [{label: label, data: values, backgroundColor: color}]},
      options: {plugins: {legend: {display: false}}, scales: {y: {beginAtZero: true, ticks: {precision: 0}}}}});
  }

  draw("chart-per-day", {type: "line", data: {labels: data.days, datasets: [
    {label: "Conversations", data: data.conversations_per_day, borderColor: BLUE, backgroundColor: BLUE},
    {label: "Sessions", data: data.sessions_per_day, borderColor: ORANGE, backgroundColor: ORANGE}]},
    options: {scales: {y: {beginAtZero: true, ticks: {precision: 0}}}}});
  draw("chart-intents", {type: "bar", data: {labels: data.top_intents.labels,
    datasets: [{label: "User messages", data: data.top_intents.counts, backgroundColor: BLUE}]},
    options: {indexAxis: "y", plugins: {legend: {display: false}}, scales: {x: {beginAtZero: true, ticks: {precision: 0}}}}});
  bar("chart-confidence", data.confidence.labels, "User messages", data.confidence.counts, GREEN);
  draw("chart-rates", {type: "line", data: {labels: data.days, datasets: [
    {label: "Fallback %", data: data.fallback_rate, borderColor: RED, backgroundColor: RED, spanGaps: true},
    {label: "Escalation %", data: data.escalation_rate, borderColor: ORANGE, backgroundColor: ORANGE, spanGaps: true}]},
    options: {scales: {y: {beginAtZero: true}}}});
  bar("chart-turns", data.turns_per_session.labels, "Sessions", data.turns_per_session.counts, ORANGE);
  bar("chart-hours", data.busiest_hours.labels, "User messages", data.busiest_hours.counts, BLUE);
  document.body.dataset.chartsDrawn = "true";
})();
