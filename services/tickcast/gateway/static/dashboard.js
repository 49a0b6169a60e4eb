// The tickcast dashboard: latest values from /v1/predictions, live updates from the SSE stream /v1/stream,
// pipeline health from /v1/pipeline. Everything is served by the gateway itself (no network at runtime).
"use strict";

const MAX_POINTS = 300;           // points kept per symbol for the chart
const STALE_MS = 10000;           // a symbol with no prediction for this long is shown as stale
const rows = new Map();           // symbol -> latest prediction
const series = new Map();         // symbol -> {t: [], price: [], forecast: [], pending: []}
let selected = new URLSearchParams(location.search).get("symbol");
let plot = null;

function fmt(value, digits) {
  return value === null || value === undefined ? "-" : Number(value).toFixed(digits);
}

// The chart pairs each price with the forecast made for it: the latest forecast (shortest horizon) whose
// target time that tick reached, since a forecast is for the first trade at or after its target time. A tick
// horizon has no target time; its forecast is for the next tick.
const MAX_PENDING = 1000;         // forecasts waiting for their target time, per symbol

function remember(p) {
  let s = series.get(p.symbol);
  if (!s) { s = {t: [], price: [], forecast: [], pending: []}; series.set(p.symbol, s); }
  let resolved = null;
  while (s.pending.length && (s.pending[0].target === null || s.pending[0].target <= p.event_time)) {
    resolved = s.pending.shift().price;
  }
  s.t.push(p.event_time / 1000);
  s.price.push(p.last_price);
  s.forecast.push(resolved);
  s.pending.push({target: p.target_time ?? null, price: p.predicted_price});
  if (s.pending.length > MAX_PENDING) s.pending.shift();
  if (s.t.length > MAX_POINTS) { s.t.shift(); s.price.shift(); s.forecast.shift(); }
  rows.set(p.symbol, p);
}

function renderTable() {
  const body = document.querySelector("#symbols tbody");
  const now = Date.now();
  const names = [...rows.keys()].sort();
  body.replaceChildren(...names.map((name) => {
    const p = rows.get(name);
    const age = now - p.predicted_at / 1000;
    const tr = document.createElement("tr");
    tr.dataset.symbol = name;
    if (name === selected) tr.className = "selected";
    const cells = [
      ["symbol", name], ["price", fmt(p.last_price, 4)], ["forecast", fmt(p.predicted_price, 4)],
      ["bps", fmt(p.predicted_return_bps, 2)], ["status", p.status], ["error", fmt(p.abs_error_ewm_bps, 2)],
      ["age", (age / 1000).toFixed(1) + " s"],
    ];
    for (const [cls, text] of cells) {
      const td = document.createElement("td");
      td.className = cls + (cls === "status" ? " " + p.status : "") + (cls === "age" && age > STALE_MS ? " stale" : "");
      td.textContent = text;
      tr.appendChild(td);
    }
    tr.onclick = () => { selected = name; plot = null; renderChart(); renderTable(); };
    return tr;
  }));
}

function renderChart() {
  if (!selected && rows.size) selected = [...rows.keys()].sort()[0];
  const s = series.get(selected);
  const box = document.getElementById("chart");
  document.getElementById("chart-symbol").textContent = selected || "-";
  if (!s) return;
  const data = [s.t.slice(), s.price.slice(), s.forecast.slice()];
  if (!plot || box.dataset.symbol !== selected) {
    box.replaceChildren();
    plot = new uPlot({
      width: Math.max(480, box.clientWidth), height: 360,
      series: [{}, {label: "price", stroke: "#2b6cb0", width: 1.5}, {label: "forecast", stroke: "#dd6b20", width: 1.5, dash: [4, 3], spanGaps: true}],
      axes: [{}, {size: 70}],
      scales: {x: {time: true}},
    }, data, box);
    box.dataset.symbol = selected;
  } else {
    plot.setData(data);
  }
  box.dataset.points = String(s.t.length);
  box.dataset.lastPrice = String(s.price[s.price.length - 1]);
}

function renderWorkers(stats) {
  const box = document.getElementById("worker-stats");
  box.replaceChildren(...stats.map((w) => {
    const chip = document.createElement("span");
    chip.className = "worker" + (w.error ? " unreachable" : "");
    chip.dataset.worker = w.worker || w.url;
    chip.dataset.lag = w.lag === null ? "" : String(w.lag);
    chip.textContent = w.error
      ? w.url + ": " + w.error
      : w.worker + ": partitions " + (w.partitions.join(",") || "none") + ", lag " + (w.lag === null ? "-" : w.lag)
        + ", dead letters " + w.dead_letters;
    return chip;
  }));
}

async function refreshHealth() {
  try {
    const h = await (await fetch("/v1/pipeline")).json();
    document.getElementById("h-rate").textContent = fmt(h.predictions_per_s, 1);
    document.getElementById("h-latency").textContent = h.latency_ms === null ? "-" : fmt(h.latency_ms, 0) + " ms";
    document.getElementById("h-workers").textContent = h.workers.length + (h.workers.length ? " (" + h.workers.join(", ") + ")" : "");
    // Lag and dead letters come from the workers' own /stats when the gateway polls them (worker_stats);
    // without that, dead letters are the ones this gateway saw written since it started, and lag is unknown.
    const polled = Array.isArray(h.worker_stats) && h.worker_stats.length > 0;
    document.getElementById("h-lag").textContent = polled && h.lag !== null ? String(h.lag) : "-";
    const dead = document.getElementById("h-dead");
    dead.textContent = polled ? String(h.worker_dead_letters) : String(h.dead_letters);
    dead.title = polled ? "written by the workers since they started" : "seen by this gateway since it started";
    document.getElementById("h-reporting").textContent = polled ? h.workers_reporting + " of " + h.worker_stats.length : "-";
    renderWorkers(polled ? h.worker_stats : []);
    document.getElementById("h-symbols").textContent = h.symbols;
    document.getElementById("h-clients").textContent = h.clients;
  } catch (e) { /* the gateway is restarting: the next refresh tries again */ }
}

function connect(lastId) {
  // The browser reconnects with Last-Event-ID by itself after a dropped connection, but not after an error
  // answer (503 while the gateway starts): then reconnect here, resuming from the last id seen.
  const badge = document.getElementById("connection");
  const stream = new EventSource("/v1/stream" + (lastId ? "?resume=" + encodeURIComponent(lastId) : ""));
  let last = lastId;
  stream.addEventListener("prediction", (e) => { last = e.lastEventId || last; remember(JSON.parse(e.data)); });
  stream.addEventListener("reset", (e) => { last = e.lastEventId || last; badge.textContent = "resynced (missed data)"; });
  stream.onopen = () => { badge.textContent = "live"; badge.className = "badge live"; };
  stream.onerror = () => {
    badge.textContent = "reconnecting"; badge.className = "badge down";
    if (stream.readyState === EventSource.CLOSED) setTimeout(() => connect(last), 2000);
  };
}

async function start() {
  const known = (await (await fetch("/v1/symbols")).json()).symbols.map((s) => s.symbol);
  for (let i = 0; i < known.length; i += 200) {
    const answer = await (await fetch("/v1/predictions?symbols=" + known.slice(i, i + 200).join(","))).json();
    answer.predictions.forEach(remember);
  }
  connect(null);
  setInterval(() => { renderTable(); renderChart(); }, 500);
  setInterval(refreshHealth, 2000);
  renderTable(); renderChart(); refreshHealth();
}

start();
