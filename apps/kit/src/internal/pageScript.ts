/**
 * The browser side of the run page, shared by the HTML report and the live
 * status page: plain ES2017 for any current browser, no build step. It reads
 * a `RunView` (JSON) and renders it with the DOM (`textContent`, never
 * markup from data) and Chart.js (`window.Chart`, inlined before it):
 *
 * - `#fedguard-view` (a JSON `<script>`): the report's view, rendered once;
 * - otherwise the live page: `GET events` (Server-Sent Events, one view per
 *   `data:` line) read with `fetch`, so a bearer token taken from the page's
 *   `#token=…` fragment (never sent in a URL, never written into the page by
 *   the server) can go in the `Authorization` header. It reconnects after a
 *   second when the stream ends.
 *
 * `window.fedguard` exposes `render`, the last `view`, the Chart.js `charts`
 * and `kindOf` (an exclusion reason's colour class), for tests and curious
 * people; each chart's canvas carries `data-points` (one per round or span).
 */
export const pageScript = String.raw`(function () {
  "use strict";
  var COLORS = {
    online: "#2e9d5b", offline: "#d62728", stalled: "#ff7f0e", straggler: "#9467bd",
    "send-failed": "#8c564b", rejected: "#e377c2", replaced: "#17becf", "never-joined": "#7f7f7f",
    refused: "#393b79", left: "#1f77b4", other: "#bcbd22"
  };
  var KINDS = ["offline", "stalled", "straggler", "send-failed", "rejected", "replaced"];
  function kindOf(reason) {
    var head = String(reason).split(":")[0].trim();
    return KINDS.indexOf(head) >= 0 ? head : "other";
  }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "className") node.className = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }
  function replace(id, children) {
    var node = document.getElementById(id);
    while (node.firstChild) node.removeChild(node.firstChild);
    children.forEach(function (child) { if (child) node.appendChild(child); });
  }
  function seconds(ms) { return (ms / 1000).toFixed(ms < 10000 ? 1 : 0) + " s"; }
  function age(view, at) { return at === null || at === undefined ? "never" : seconds(Math.max(0, view.now - at)) + " ago"; }
  function clock(at) { return at === null || at === undefined ? "" : new Date(at).toISOString().slice(11, 19); }
  function mib(bytes) { return (bytes / 1048576).toFixed(1) + " MiB"; }
  function badge(text, kind) { return el("span", { className: "badge", "data-kind": kind, style: "background:" + (COLORS[kind] || COLORS.other), text: text }); }
  function list(ids) { return ids.length === 0 ? "none" : ids.join(", "); }
  function table(head, rows, attrs) {
    return el("table", attrs || {}, [
      el("thead", {}, [el("tr", {}, head.map(function (h) { return el("th", { text: h }); }))]),
      el("tbody", {}, rows)
    ]);
  }

  function header(view) {
    var job = view.job ? view.job.state + (view.job.reason ? " (" + view.job.reason + ")" : "") : "not started";
    var q = view.quorum;
    var quorum = q.state + (q.alive === null ? "" : ": " + q.alive + " alive, " + q.minClients + " needed");
    document.getElementById("title").textContent = view.title;
    replace("summary", [
      el("span", { id: "job-state", text: "job " + job }),
      badge("quorum " + quorum, q.state === "lost" ? "offline" : q.state === "reached" ? "online" : "never-joined"),
      el("span", { id: "quorum-state", "data-state": q.state, hidden: "hidden" }),
      el("span", { text: view.rounds.length + " rounds completed" + (view.finalAccuracy === null ? "" : ", final accuracy " + view.finalAccuracy.toFixed(4)) }),
      el("span", { text: (view.finished ? "finished " : "updated ") + new Date(view.now).toISOString().replace("T", " ").slice(0, 19) + " UTC" })
    ]);
  }

  function clients(view) {
    var rows = view.clients.map(function (c) {
      var excluded = c.marks.filter(function (m) { return m.kind === "excluded"; }).length;
      return el("tr", { "data-client": c.id, "data-state": c.state }, [
        el("td", { text: c.id }),
        el("td", {}, [badge(c.state, c.state === "online" ? "online" : c.state === "offline" ? "offline" : c.state)]),
        el("td", { className: "last-seen", text: age(view, c.lastSeenAt) }),
        el("td", { text: String(c.spans.length) }),
        el("td", { text: String(excluded) })
      ]);
    });
    replace("clients", [view.clients.length === 0 ? el("p", { text: "No client has connected yet." })
      : table(["client", "state", "last seen", "sessions", "exclusions"], rows, { id: "clients-table" })]);
  }

  function current(view) {
    var parts = [];
    if (view.paused) parts.push(el("p", { className: "warn", id: "paused", text: "Round " + view.paused.round + " is paused: " + view.paused.online + " of " + view.paused.minClients + " clients online." }));
    var r = view.current;
    if (r) {
      parts.push(el("p", { text: "Round " + r.round + (view.finished ? " (last)" : "") + ", started " + clock(r.startedAt) + ", with " + list(r.participants) }));
      parts.push(el("ul", { id: "current-round", "data-round": String(r.round) }, [
        el("li", { "data-group": "pending", text: "pending: " + list(r.pending) }),
        el("li", { "data-group": "accepted", text: "accepted: " + list(r.accepted) }),
        el("li", { "data-group": "excluded" }, [document.createTextNode("excluded: " + (r.excluded.length === 0 ? "none" : ""))].concat(
          r.excluded.map(function (x) { return badge(x.id + ": " + x.reason, kindOf(x.reason)); })))
      ]));
    } else if (!view.paused) parts.push(el("p", { text: "No round has started yet." }));
    replace("current", parts);
  }

  function roundsChart(view) {
    var canvas = document.getElementById("rounds-chart");
    canvas.setAttribute("data-points", String(view.rounds.length));
    var labels = view.rounds.map(function (r) { return r.round; });
    var acc = view.rounds.map(function (r) { return r.testAccuracy; });
    var loss = view.rounds.map(function (r) { return r.testLoss; });
    var chart = charts.rounds;
    if (!chart) {
      chart = charts.rounds = new Chart(canvas, {
        type: "line",
        data: { labels: labels, datasets: [
          { label: "test accuracy", data: acc, yAxisID: "accuracy", borderColor: "#1f77b4", backgroundColor: "#1f77b4" },
          { label: "test loss", data: loss, yAxisID: "loss", borderColor: "#d62728", backgroundColor: "#d62728", borderDash: [6, 3] }
        ] },
        options: {
          animation: false, responsive: true, maintainAspectRatio: false,
          scales: {
            x: { title: { display: true, text: "round" } },
            accuracy: { position: "left", min: 0, max: 1, title: { display: true, text: "accuracy" } },
            loss: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, title: { display: true, text: "loss" } }
          }
        }
      });
    } else {
      chart.data.labels = labels;
      chart.data.datasets[0].data = acc;
      chart.data.datasets[1].data = loss;
      chart.update("none");
    }
  }

  function timelineData(view) {
    var t = function (at) { return (at - view.startedAt) / 1000; };
    var spans = [];
    var marks = {};
    view.clients.forEach(function (c) {
      c.spans.forEach(function (s) { spans.push({ x: [t(s.from), t(s.to === null ? view.now : s.to)], y: c.id }); });
      c.marks.forEach(function (m) {
        var kind = m.kind === "excluded" ? kindOf(m.reason) : m.kind;
        var label = m.kind === "excluded" ? "excluded: " + kind : m.kind;
        (marks[label] = marks[label] || { kind: kind, excluded: m.kind === "excluded", points: [] }).points.push({
          x: t(m.at), y: c.id, reason: (m.round === null ? "" : "round " + m.round + ": ") + m.reason
        });
      });
    });
    var datasets = [{ type: "bar", label: "online", data: spans, backgroundColor: COLORS.online + "aa", borderColor: COLORS.online, borderWidth: 1, grouped: false, barPercentage: 0.5, categoryPercentage: 1 }];
    Object.keys(marks).sort().forEach(function (label) {
      var m = marks[label];
      datasets.push({ type: "scatter", label: label, data: m.points, pointStyle: m.excluded ? "triangle" : "crossRot", radius: 7, borderWidth: 2,
        backgroundColor: COLORS[m.kind] || COLORS.other, borderColor: COLORS[m.kind] || COLORS.other });
    });
    // The axis starts at the first thing that happened (whole seconds), not at the server's start:
    // loading data before anyone joins is not worth a blank band.
    var times = spans.map(function (s) { return s.x[0]; });
    Object.keys(marks).forEach(function (label) { marks[label].points.forEach(function (p) { times.push(p.x); }); });
    var first = times.length === 0 ? 0 : Math.max(0, Math.floor(Math.min.apply(null, times)));
    return { labels: view.clients.map(function (c) { return c.id; }), datasets: datasets, spans: spans.length, first: first };
  }

  function timelineChart(view) {
    var canvas = document.getElementById("timeline-chart");
    canvas.parentNode.style.height = Math.max(160, 60 + 36 * view.clients.length) + "px";
    var data = timelineData(view);
    canvas.setAttribute("data-points", String(data.spans));
    if (charts.timeline) {
      charts.timeline.data.labels = data.labels;
      charts.timeline.data.datasets = data.datasets;
      charts.timeline.options.scales.x.min = data.first;
      charts.timeline.update("none");
      return;
    }
    charts.timeline = new Chart(canvas, {
      type: "bar",
      data: { labels: data.labels, datasets: data.datasets },
      options: {
        indexAxis: "y", animation: false, responsive: true, maintainAspectRatio: false,
        scales: { x: { type: "linear", min: data.first, title: { display: true, text: "seconds since the server started" } }, y: { type: "category" } },
        plugins: { tooltip: { callbacks: { label: function (ctx) {
          return ctx.raw && ctx.raw.reason ? ctx.dataset.label + " — " + ctx.raw.reason
            : "online " + ctx.raw.x[0].toFixed(1) + "–" + ctx.raw.x[1].toFixed(1) + " s";
        } } } }
      }
    });
  }

  function events(view) {
    var stalls = view.stalls.map(function (s) {
      return el("tr", { "data-stall": s.id }, [el("td", { text: s.id }), el("td", { text: clock(s.at) }),
        el("td", { text: seconds(s.oldestPendingMs) + " × " + s.checks + " checks" }),
        el("td", { text: s.closed ? "closed" : s.clearedAt === null ? "not cleared" : "cleared " + clock(s.clearedAt) })]);
    });
    var cleanups = view.cleanups.map(function (c) {
      return el("tr", { "data-cleanup": c.trigger }, [el("td", { text: clock(c.at) }), el("td", { text: c.trigger + (c.round === undefined ? "" : " after round " + c.round) }),
        el("td", { text: mib(c.before.rss) + " → " + mib(c.after.rss) }), el("td", { text: mib(c.before.heapUsed) + " → " + mib(c.after.heapUsed) }),
        el("td", { text: c.steps.map(function (s) { return s.name + " " + s.status; }).join(", ") })]);
    });
    replace("stalls", [stalls.length === 0 ? el("p", { text: "No stall." }) : table(["client", "at", "oldest pending send", "outcome"], stalls)]);
    replace("cleanups", [cleanups.length === 0 ? el("p", { text: "No memory cleanup ran." }) : table(["at", "trigger", "RSS", "heap used", "steps"], cleanups)]);
  }

  function diagnostics(view) {
    if (view.diagnostics === null) {
      replace("diagnostics", [el("p", { className: "muted", id: "diagnostics-absent", text: "This server has no diagnostics receiver: clients' diagnostics are not collected here." })]);
      return;
    }
    replace("diagnostics", view.diagnostics.length === 0 ? [el("p", { text: "No diagnostics received yet." })] : view.diagnostics.map(function (d) {
      var counts = d.messages + " messages, " + d.rejected + " rejected, " + d.dropped + " dropped, last " + age(view, d.receivedAt);
      return el("details", { "data-client": d.id }, [el("summary", { text: d.id + " — " + counts + (d.lastRejection ? " (last rejection: " + d.lastRejection + ")" : "") }),
        el("table", {}, [el("tbody", {}, d.reports.map(function (r) {
          return el("tr", {}, [el("td", { text: r.collector }), el("td", { text: clock(r.at) }), el("td", {}, [el("pre", { text: JSON.stringify(r.data, null, 2) })])]);
        }))])]);
    }));
  }

  function settings(view) {
    if (view.settings === null) { replace("settings", [el("p", { text: "Not known yet." })]); return; }
    var rows = Object.keys(view.settings).sort().map(function (key) {
      var value = view.settings[key];
      return el("tr", {}, [el("td", { text: key }), el("td", { text: typeof value === "string" ? value : JSON.stringify(value) })]);
    });
    replace("settings", [table(["setting", "value"], rows, { id: "settings-table" })]);
  }

  var charts = {};
  function render(view) {
    window.fedguard.view = view;
    header(view); clients(view); current(view); roundsChart(view); timelineChart(view);
    events(view); diagnostics(view); settings(view);
    document.body.setAttribute("data-rendered", String(view.rounds.length));
  }
  window.fedguard = { render: render, kindOf: kindOf, charts: charts, view: null };

  function connection(text, kind) {
    var node = document.getElementById("connection");
    node.textContent = text;
    node.setAttribute("data-state", kind);
  }
  function live() {
    var match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    var headers = match ? { Authorization: "Bearer " + decodeURIComponent(match[1]) } : {};
    var again = function () { setTimeout(live, 1000); };
    fetch("events", { headers: headers, cache: "no-store" }).then(function (response) {
      if (response.status === 401) { connection("unauthorized: open this page with #token=… in its address", "unauthorized"); return; }
      if (!response.ok || !response.body) { connection("the server answered " + response.status, "error"); again(); return; }
      connection("live", "live");
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      var pump = function () {
        return reader.read().then(function (chunk) {
          if (chunk.done) { connection("the server closed the stream (run over?); reconnecting", "closed"); again(); return; }
          buffer += decoder.decode(chunk.value, { stream: true });
          var messages = buffer.split("\n\n");
          buffer = messages.pop();
          messages.forEach(function (message) {
            var data = message.split("\n").filter(function (line) { return line.indexOf("data: ") === 0; })
              .map(function (line) { return line.slice(6); }).join("\n");
            if (data) render(JSON.parse(data));
          });
          return pump();
        });
      };
      return pump();
    }).catch(function () { connection("cannot reach the server; retrying", "error"); again(); });
  }

  var embedded = document.getElementById("fedguard-view");
  if (embedded) render(JSON.parse(embedded.textContent));
  else live();
})();
`

/**
 * The page's style sheet: one column, readable without the charts.
 */
export const pageStyle = `
:root { font-family: system-ui, sans-serif; color: #222; background: #fafafa; }
body { max-width: 1100px; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.5rem; margin: 0.5rem 0; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 0.5rem; border-bottom: 1px solid #ddd; }
#summary { display: flex; flex-wrap: wrap; gap: 0.5rem 1.25rem; align-items: center; }
.badge { display: inline-block; color: #fff; border-radius: 0.6rem; padding: 0.05rem 0.55rem; margin: 0 0.25rem 0.2rem 0; font-size: 0.85rem; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { text-align: left; padding: 0.2rem 0.8rem 0.2rem 0; border-bottom: 1px solid #eee; vertical-align: top; }
.chart { position: relative; height: 280px; background: #fff; border: 1px solid #eee; padding: 0.5rem; }
.warn { color: #a94400; font-weight: 600; }
.muted { color: #777; }
#connection { font-size: 0.85rem; color: #777; }
pre { font-size: 0.8rem; background: #fff; border: 1px solid #eee; padding: 0.5rem; overflow: auto; max-height: 20rem; }
`

/**
 * The page's body: the sections the script fills.
 */
export const pageBody = `
<h1 id="title">fedguard</h1>
<div id="connection" data-state="static"></div>
<div id="summary"></div>
<h2>Clients</h2><div id="clients"></div>
<h2>Current round</h2><div id="current"></div>
<h2>Accuracy and loss per round</h2><div class="chart"><canvas id="rounds-chart" role="img" aria-label="test accuracy and loss per round"></canvas></div>
<h2>Liveness timeline</h2><div class="chart"><canvas id="timeline-chart" role="img" aria-label="online spans, offline marks and exclusions per client"></canvas></div>
<h2>Stalls</h2><div id="stalls"></div>
<h2>Memory cleanups</h2><div id="cleanups"></div>
<h2>Client diagnostics</h2><div id="diagnostics"></div>
<h2>Settings</h2><div id="settings"></div>
`
