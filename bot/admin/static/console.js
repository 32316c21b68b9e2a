// The console's live parts: the dashboard's charts (Chart.js) and a campaign's progress bar,
// which polls its counts until nothing is left to send. No inline scripts: the CSP forbids them.
"use strict";

function drawCharts() {
  const source = document.getElementById("chart-data");
  if (!source || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  const soles = (series) => ({ labels: series.labels, datasets: [{ label: "S/", data: series.soles }] });
  const options = { responsive: true, aspectRatio: 2, animation: false, plugins: { legend: { display: false } } };
  new Chart(document.getElementById("chart-days"), { type: "bar", data: soles(data.days), options });
  new Chart(document.getElementById("chart-channels"), { type: "doughnut", data: soles(data.channels), options: { aspectRatio: 2, animation: false } });
  new Chart(document.getElementById("chart-products"), { type: "bar", data: soles(data.products), options: { ...options, indexAxis: "y" } });
  new Chart(document.getElementById("chart-states"), {
    type: "bar", options,
    data: { labels: data.states.labels, datasets: [{ label: "pedidos", data: data.states.counts }] },
  });
}

function showProgress(box, progress) {
  document.getElementById("bar").style.width = progress.percent + "%";
  for (const key of ["percent", "done", "total"]) {
    document.getElementById(key).textContent = progress[key];
  }
  document.getElementById("campaign-state").textContent = progress.state_label;
  for (const [state, count] of Object.entries(progress.counts)) {
    document.getElementById("count-" + state).textContent = count;
  }
  box.dataset.finished = String(progress.state !== "sending" || !progress.running);
}

async function followProgress() {
  const box = document.getElementById("progress");
  if (!box) return;
  for (;;) {
    const answer = await fetch(box.dataset.url, { credentials: "same-origin" });
    if (!answer.ok) return;
    const progress = await answer.json();
    showProgress(box, progress);
    if (progress.state !== "sending" || !progress.running) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

drawCharts();
followProgress();
