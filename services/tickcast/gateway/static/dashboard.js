// The tickcast dashboard: latest values from /v1/predictions, live updates from the SSE stream /v1/stream,
// pipeline health from /v1/pipeline. Everything is served by the gateway itself (no network at runtime).
//
// A gateway with a clients file wants "Authorization: Bearer <token>" on every /v1 request. The page takes the
// token from its URL's fragment (/#token=...), which browsers never send to a server (so it is in no access log
// and no Referer), keeps it for the tab (sessionStorage) and removes it from the address bar. EventSource
// cannot send headers, so the stream is read with fetch() and parsed here.
"use strict";

const MAX_POINTS = 300;           // points kept per symbol for the chart
const STALE_MS = 10000;           // a symbol with no prediction for this long is shown as stale
const rows = new Map();           // symbol -> latest prediction
const series = new Map();         // symbol -> {t: [], price: [], forecast: [], pending: []}
let selected = new URLSearchParams(location.search).get("symbol");
let plot = null;
const TOKEN_KEY = "tickcast-token";
const token = takeToken();

function takeToken() {
  const found = new URLSearchParams(location.hash.slice(1)).get("token");
  if (found) {
    sessionStorage.setItem(TOKEN_KEY, found);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

function authHeaders() {
  return token ? {Authorization: "Bearer " + token} : {};
}

class Unauthorized extends Error {}

function refused() {
  const badge = document.getElementById("connection");
  badge.textContent = token ? "token refused (wrong or revoked)" : "token needed: open this page as /#token=<your token>";
  badge.className = "badge down";
  badge.dataset.unauthorized = "true";
}

async function api(path) {
  const answer = await fetch(path, {headers: authHeaders()});
  if (answer.status === 401) { refused(); throw new Unauthorized(path); }
  return answer.json();
}

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
    const h = await api("/v1/pipeline");
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

// One SSE event (the fields of the lines before a blank line) to the page.
function dispatch(type, data, badge) {
  if (type === "prediction") remember(JSON.parse(data));
  else if (type === "reset") badge.textContent = "resynced (missed data)";
}

async function connect(lastId) {
  // The stream as EventSource would read it, with the token: resumes with Last-Event-ID after any end or error.
  const badge = document.getElementById("connection");
  let last = lastId, retryMs = 1000;
  try {
    const headers = authHeaders();
    if (last) headers["Last-Event-ID"] = last;
    const answer = await fetch("/v1/stream", {headers, cache: "no-store"});
    if (answer.status === 401) { refused(); return; }  // a new token needs a reload of the page
    if (!answer.ok || !answer.body) throw new Error("stream answered " + answer.status);
    badge.textContent = "live"; badge.className = "badge live";
    const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "", type = "message", data = [], id = null;
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      const lines = (buffer + value).split("\n");
      buffer = lines.pop();
      for (const line of lines) {
        if (line === "") {
          if (id !== null) last = id;
          if (data.length) dispatch(type, data.join("\n"), badge);
          type = "message"; data = []; id = null;
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") data.push(text);
        else if (field === "event") type = text;
        else if (field === "id") id = text;
        else if (field === "retry" && /^\d+$/.test(text)) retryMs = Number(text);
      }
    }
  } catch (e) { /* the gateway went away or is restarting: reconnect below */ }
  badge.textContent = "reconnecting"; badge.className = "badge down";
  setTimeout(() => connect(last), retryMs);
}

// Batches of symbols the gateway takes in one query: at most its default TICKCAST_GATEWAY_MAX_QUERY_SYMBOLS
// and the length of its symbols parameter. A batch it still refuses (a lower limit, a symbol of another
// producer's) is asked for one symbol at a time: a refusal left the page without its table and its stream.
const BATCH_SYMBOLS = 200, BATCH_CHARS = 4096;

async function fillLatest(known) {
  let batch = [];
  const flush = async () => {
    if (!batch.length) return;
    const answer = await api("/v1/predictions?symbols=" + batch.join(","));
    if (Array.isArray(answer.predictions)) answer.predictions.forEach(remember);
    else {
      for (const name of batch) {
        const one = await api("/v1/predictions/" + name);
        if (one.symbol === name) remember(one);
      }
    }
    batch = [];
  };
  for (const name of known) {
    if (batch.length === BATCH_SYMBOLS || batch.join(",").length + 1 + name.length > BATCH_CHARS) await flush();
    batch.push(name);
  }
  await flush();
}

async function start() {
  try {
    await fillLatest((await api("/v1/symbols")).symbols.map((s) => s.symbol));
  } catch (e) {
    if (e instanceof Unauthorized) return;  // nothing to show without a token the gateway knows
    throw e;
  }
  connect(null);
  setInterval(() => { renderTable(); renderChart(); }, 500);
  setInterval(refreshHealth, 2000);
  renderTable(); renderChart(); refreshHealth();
}

start();
