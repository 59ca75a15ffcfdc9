// The Backstage dashboard: polls /api/snapshot and draws it. No framework, no build step.
"use strict";
(function () {
  const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
  const WINDOW = 600; // seconds of history drawn
  const series = new Map(); // Act key -> [[wall, rps], ...]
  let since = 0, interval = 2, open = null;
  let token = sessionStorage.getItem("backstage-token") || "";
  const $ = (id) => document.getElementById(id);

  function headers() { return token ? { Authorization: "Bearer " + token } : {}; }
  function say(text, kind) { const m = $("message"); m.textContent = text; m.className = kind || ""; }
  function size(n) {
    for (const [u, s] of [["G", 2 ** 30], ["M", 2 ** 20], ["K", 2 ** 10]]) if (n >= s) return (n / s).toFixed(1) + u;
    return String(n);
  }
  function cell(tr, text, cls) { const td = tr.insertCell(); td.textContent = text; if (cls) td.className = cls; return td; }
  function fill(tbody, rows, draw) { tbody.replaceChildren(); for (const row of rows) draw(tbody.insertRow(), row); }

  async function getJSON(url) {
    const r = await fetch(url, { headers: headers(), cache: "no-store" });
    const data = await r.json();
    if (!r.ok) throw new Error(data.error || r.statusText);
    return data;
  }

  function drawActs(acts) {
    fill($("acts").tBodies[0], acts, (tr, a) => {
      tr.dataset.key = a.key;
      if (a.key === open) tr.className = "open";
      const r = a.responses || {};
      cell(tr, a.key);
      const state = cell(tr, a.state, a.state);
      if (a.reason) state.title = a.reason;  // what is wrong and what to do, on hover
      cell(tr, a.busy + "/" + a.workers);
      cell(tr, a.rps === null ? "-" : a.rps.toFixed(1));
      cell(tr, a.requests);
      cell(tr, r["2xx"] ?? "-"); cell(tr, r["4xx"] ?? "-"); cell(tr, r["5xx"] ?? "-");
      cell(tr, a.avg_rt ? (a.avg_rt / 1000).toFixed(1) + " ms" : "-");
      cell(tr, size(a.rss)); cell(tr, a.gigs.join(" "));
      tr.onclick = () => { open = a.key; showDetail(); drawActs(acts); };
    });
  }

  function drawChart(now) {
    const svg = $("chart"), W = 800, H = 200, ns = "http://www.w3.org/2000/svg";
    svg.replaceChildren();
    let top = 1, oldest = now;
    for (const pts of series.values()) for (const [t, v] of pts) { top = Math.max(top, v); oldest = Math.min(oldest, t); }
    // the last minute at least, the last WINDOW seconds at most
    const span = Math.min(WINDOW, Math.max(60, now - oldest));
    const ranked = [...series.entries()]
      .map(([k, pts]) => [k, pts, pts.reduce((s, [, v]) => s + v, 0)])
      .sort((a, b) => b[2] - a[2] || a[0].localeCompare(b[0])).slice(0, COLOURS.length);
    $("legend").replaceChildren();
    ranked.forEach(([key, pts], i) => {
      const line = document.createElementNS(ns, "polyline");
      line.setAttribute("points", pts.map(([t, v]) =>
        ((W * (t - (now - span))) / span).toFixed(1) + "," + (H - (H * v) / top).toFixed(1)).join(" "));
      line.setAttribute("fill", "none"); line.setAttribute("stroke", COLOURS[i]);
      line.setAttribute("stroke-width", "2"); line.setAttribute("data-act", key);
      svg.appendChild(line);
      const item = document.createElement("span"), swatch = document.createElement("i");
      swatch.style.background = COLOURS[i]; item.append(swatch, key); $("legend").appendChild(item);
    });
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", 4); label.setAttribute("y", 14); label.setAttribute("font-size", 12);
    label.textContent = top.toFixed(1) + " req/s, last " + Math.round(span / 60) + " min"; svg.appendChild(label);
  }

  async function showDetail() {
    if (!open) return;
    try {
      const a = await getJSON("/api/acts/" + open.split("/").map(encodeURIComponent).join("/"));
      $("detail").hidden = false;
      $("detail-title").textContent = a.key + " (" + a.state + ", pid " + (a.pid ?? "-") + ", port " + a.port + ")"
        + (a.reason ? ": " + a.reason : "");
      fill($("workers").tBodies[0], a.workers_detail, (tr, w) => {
        cell(tr, w.id); cell(tr, w.pid); cell(tr, w.status); cell(tr, w.requests);
        cell(tr, w.rps === null ? "-" : w.rps.toFixed(1)); cell(tr, w.exceptions);
        cell(tr, (w.avg_rt / 1000).toFixed(1) + " ms"); cell(tr, size(w.rss)); cell(tr, w.respawns);
      });
      $("log").textContent = a.log_tail.join("\n");
    } catch (e) { say(e.message, "error"); }
  }

  async function act(action) {
    if (!open) return;
    say(action + " " + open + "…");
    const r = await fetch("/api/acts/" + open.split("/").map(encodeURIComponent).join("/") + "/" + action,
      { method: "POST", headers: headers() });
    const data = await r.json();
    if (r.ok) say(action + " " + open + ": done", "ok");
    else say(action + " " + open + " refused: " + data.error, "error");
    refresh();
  }

  async function refresh() {
    try {
      const s = await getJSON("/api/snapshot?since=" + since);
      interval = s.interval;
      $("production").textContent = s.production;
      $("stage").textContent = s.emperor.running ? "Stage: uWSGI " + s.emperor.version + " (pid " + s.emperor.pid + ")" : "Stage: down";
      $("stage").className = s.emperor.running ? "" : "down";
      $("router").textContent = s.router ? "Router " + s.router.address + ": " + (s.router.running ? "running" : "down") : "";
      for (const [wall, rates] of s.history) {
        for (const [key, v] of Object.entries(rates)) {
          if (!series.has(key)) series.set(key, []);
          series.get(key).push([wall, v]);
        }
        since = Math.max(since, wall);
      }
      for (const [key, pts] of series) {
        while (pts.length && pts[0][0] < s.wall - WINDOW) pts.shift();
        if (!pts.length) series.delete(key);
      }
      drawActs(s.acts); drawChart(s.wall);
      fill($("gigs").tBodies[0], s.gigs, (tr, g) => {
        cell(tr, g.host + ({tls: " \u{1F512}", "tls!": " \u26A0"}[g.tls] || ""));
        cell(tr, g.acts.join(" ") || "not playing (booked: " + (g.booked.join(" ") || "-") + ")");
        cell(tr, g.nodes.length); cell(tr, g.requests);
      });
      if (open) showDetail();
      document.body.dataset.loaded = "yes";
    } catch (e) { say(e.message, "error"); }
  }

  $("token").value = token;
  $("token-form").onsubmit = (ev) => {
    ev.preventDefault(); token = $("token").value.trim();
    sessionStorage.setItem("backstage-token", token); say(token ? "token set" : "token cleared"); refresh();
  };
  for (const b of document.querySelectorAll("#actions button")) b.onclick = () => act(b.dataset.action);
  refresh();
  (function loop() { setTimeout(() => refresh().then(loop, loop), interval * 1000); })();
})();
