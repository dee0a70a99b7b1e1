// Draws the overview's weekly trends with Chart.js (vendor/chartjs/, served by Relance).
// The figures are in the page (#chart-data, from the KPI report); the tables under each
// chart hold the same numbers for readers without JavaScript or a screen.
(function () {
  "use strict";
  var source = document.getElementById("chart-data");
  if (!source || typeof Chart === "undefined") {
    return;
  }
  var charts = JSON.parse(source.textContent);
  var ink = "#1f2933";
  var accent = "#1d4ed8";
  var targetColour = "#b45309";
  Chart.defaults.color = ink;
  Chart.defaults.font.family = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  charts.forEach(function (c) {
    var canvas = document.getElementById("chart-" + c.key);
    if (!canvas) {
      return;
    }
    var datasets = [
      {
        label: c.label,
        data: c.values,
        type: c.key === "review_requests_sent" ? "bar" : "line",
        borderColor: accent,
        backgroundColor: c.key === "review_requests_sent" ? "rgba(29, 78, 216, 0.55)" : accent,
        borderWidth: 2,
        pointRadius: 3,
        spanGaps: true
      }
    ];
    if (c.target !== null) {
      datasets.push({
        label: c.target_label,
        data: c.labels.map(function () { return c.target; }),
        type: "line",
        borderColor: targetColour,
        borderDash: [6, 4],
        borderWidth: 2,
        pointRadius: 0
      });
    }
    var chart = new Chart(canvas, {
      type: "line",
      data: { labels: c.label_texts, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { display: c.target !== null, position: "bottom" } },
        scales: {
          y: {
            beginAtZero: true,
            suggestedMax: c.empty ? 1 : undefined,
            ticks: { precision: c.key === "review_requests_sent" ? 0 : undefined }
          },
          x: { ticks: { maxRotation: 0, autoSkip: true } }
        }
      }
    });
    canvas.dataset.drawn = chart.data.labels.length > 0 || c.empty ? "yes" : "no";
  });
})();
