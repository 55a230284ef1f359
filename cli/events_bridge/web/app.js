// The foxml-events dashboard: plain JS, no build step. Run state always comes from the bridge's
// REST endpoints (the C++ tracker is the one place it is computed); the WebSocket only says when
// to fetch again and feeds the live log panel.
"use strict";

(() => {
  const STATUSES = ["running", "completed", "failed", "cancelled", "stale", "killed"];
  const ICONS = { running: "\u25B6", completed: "\u2714", failed: "\u2716", cancelled: "\u2298", stale: "\u26A0", killed: "\u2620" };
  const LEVELS = { debug: 10, info: 20, warning: 30, warn: 30, error: 40, critical: 50, fatal: 50 };
  const MIN_REFETCH_MS = 250;       // at most 4 fetches a second per view
  const LIST_REFETCH_MS = 1000;     // the run list (also watched for notifications) at most once a second
  const POLL_MS = 5000;             // fetch anyway: a run turns stale by *not* sending events
  const MAX_LOG_LINES = 1000;
  const WS_MAX_HZ = 5;              // progress/metrics/resources coalesced by the bridge (lifecycle never)
  const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 10000];
  const TRAIN_COLOUR = "#2563eb", VAL_COLOUR = "#ea580c";

  const $ = (id) => document.getElementById(id);

  // --- auth: opened once as `/?token=T`, the bridge answers with an HttpOnly cookie that every
  // later request (fetch, the WebSocket upgrade) carries; the page only drops the token from the
  // address bar and history, and never holds it itself.
  {
    const params = new URLSearchParams(location.search);
    if (params.has("token")) {
      params.delete("token");
      const rest = params.toString();
      history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : "") + location.hash);
    }
  }

  // The custom header marks the page's own POSTs (no cross-site form can send it).
  function headers(extra) {
    return Object.assign({ "X-Foxml-Events": "1" }, extra || {});
  }

  async function api(path, init) {
    const response = await fetch(path, Object.assign({ headers: headers(), cache: "no-store" }, init || {}));
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (!response.ok) {
      const message = (body && body.error) || `${response.status} ${response.statusText}`;
      const error = new Error(message);
      error.status = response.status;
      if (response.status === 401) setConnection("offline", "token needed: open this page as /?token=T");
      throw error;
    }
    return body;
  }

  // --- formatting -------------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("data-") || key.startsWith("aria-") || ["title", "href", "id", "style"].includes(key)) node.setAttribute(key, value);
      else node[key] = value;
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "\u2014";
    seconds = Math.max(0, Math.round(seconds));
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    if (h) return `${h}h ${String(m).padStart(2, "0")}m ${String(s).padStart(2, "0")}s`;
    if (m) return `${m}m ${String(s).padStart(2, "0")}s`;
    return `${s}s`;
  }

  function number(value) {
    if (value === null || value === undefined) return "\u2014";
    if (typeof value !== "number") return String(value);
    if (!isFinite(value)) return String(value);
    if (value !== 0 && (Math.abs(value) < 1e-3 || Math.abs(value) >= 1e6)) return value.toExponential(3);
    if (Number.isInteger(value)) return String(value);
    return value.toPrecision(4).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
  }

  function bytes(value) {
    if (value === null || value === undefined) return "\u2014";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (value >= 1024 && i < units.length - 1) { value /= 1024; i++; }
    return `${value.toFixed(i ? 1 : 0)} ${units[i]}`;
  }

  function clock(unixSeconds) {
    if (!unixSeconds) return "\u2014";
    const d = new Date(unixSeconds * 1000);
    const today = new Date();
    return d.toDateString() === today.toDateString() ? d.toLocaleTimeString() : d.toLocaleString();
  }

  function ago(unixSeconds) {
    if (!unixSeconds) return "\u2014";
    return `${duration(Date.now() / 1000 - unixSeconds)} ago`;
  }

  function badge(status, id) {
    return el("span", { class: "badge", "data-status": status, id },
      el("span", { class: "icon", "aria-hidden": "true", text: ICONS[status] || "?" }), status);
  }

  // Targets end `success`, `failed` or `skipped`: coloured like the run statuses they resemble.
  function targetBadge(status) {
    const look = { success: "completed", failed: "failed", skipped: "cancelled" }[status] || "stale";
    return el("span", { class: "badge", "data-status": look },
      el("span", { class: "icon", "aria-hidden": "true", text: ICONS[look] }), status);
  }

  function setBadge(node, status) {
    node.replaceChildren(el("span", { class: "icon", text: ICONS[status] || "?" }), status);
    node.setAttribute("data-status", status);
  }

  // --- time that moves between fetches ----------------------------------------------------------
  // Elapsed times and ETAs tick every second from the value the bridge gave and when it gave it.
  function ticking(node, baseSeconds, fetchedAt, direction) {
    node.dataset.tickBase = baseSeconds === null || baseSeconds === undefined ? "" : String(baseSeconds);
    node.dataset.tickAt = String(fetchedAt);
    node.dataset.tickDir = String(direction);
    renderTick(node);
    return node;
  }

  function renderTick(node) {
    if (node.dataset.tickBase === "") { node.textContent = "\u2014"; return; }
    const base = Number(node.dataset.tickBase), dir = Number(node.dataset.tickDir);
    const moved = (Date.now() - Number(node.dataset.tickAt)) / 1000;
    node.textContent = duration(Math.max(0, base + dir * moved));
  }

  setInterval(() => {
    document.querySelectorAll("[data-tick-at]").forEach(renderTick);
    document.querySelectorAll("[data-ago]").forEach((n) => { n.textContent = ago(Number(n.dataset.ago)); });
  }, 1000);

  // --- notifications on every status transition ---------------------------------------------------
  // run_id -> last status seen. Runs there when the page opened notify nothing; a run that shows up
  // later does (it may already have ended between two fetches: that is a transition too).
  const knownStatus = new Map();
  let seeded = false;

  function toast(text, attrs) {
    const node = el("div", Object.assign({ class: "toast" }, attrs || {}), text);
    $("toasts").append(node);
    setTimeout(() => node.remove(), 7000);
  }

  function noteStatus(run) {
    const before = knownStatus.get(run.run_id);
    knownStatus.set(run.run_id, run.status);
    if (before === run.status || (before === undefined && !seeded)) return;
    const text = before === undefined ? `${run.name || run.run_id}: new run, ${run.status}`
      : `${run.name || run.run_id}: ${before} \u2192 ${run.status}`;
    toast(text, { "data-status": run.status, "data-run-id": run.run_id });
    if ("Notification" in window && Notification.permission === "granted") {
      try { new Notification("foxml-events", { body: text, tag: `${run.run_id}-${run.status}` }); } catch (_) { /* not in this context */ }
    }
  }

  if ("Notification" in window && Notification.permission === "default") {
    const button = $("notify-button");
    button.hidden = false;
    button.addEventListener("click", async () => {
      await Notification.requestPermission();
      button.hidden = Notification.permission !== "default";
    });
  }

  // --- shared state -----------------------------------------------------------------------------
  const state = {
    view: null,        // "runs" | "run"
    runId: null,
    runs: [],
    counts: {},
    run: null,         // the full to_json of the run page's run
    runFetchedAt: 0,
    cancelling: new Set(),
    logs: [],          // the run page's log lines, oldest first, deduplicated
    logKeys: new Set(),
    logsClearedAt: -Infinity,
  };
  const charts = {};   // metric group -> Chart
  let resourceChart = null;

  // A fetcher per view: one request in flight, at most one queued, spaced MIN_REFETCH_MS apart.
  function throttled(fn, spacingMs) {
    let running = false, again = false, last = 0, timer = null;
    const go = async () => {
      timer = null;
      if (running) { again = true; return; }
      running = true;
      last = Date.now();
      try { await fn(); } catch (e) { console.warn(e); }
      running = false;
      if (again) { again = false; schedule(); }
    };
    const schedule = () => {
      if (timer) return;
      timer = setTimeout(go, Math.max(0, last + spacingMs - Date.now()));
    };
    return schedule;
  }

  const refreshList = throttled(loadRuns, LIST_REFETCH_MS);
  const refreshRun = throttled(loadRun, MIN_REFETCH_MS);
  setInterval(() => { refreshList(); if (state.view === "run") refreshRun(); }, POLL_MS);

  // --- run list ---------------------------------------------------------------------------------
  async function loadRuns() {
    const body = await api("/api/runs");
    state.runs = body.runs || [];
    state.counts = body.counts || {};
    state.runsFetchedAt = Date.now();
    for (const run of state.runs) noteStatus(run);
    seeded = true;
    if (state.view === "runs") renderRuns();
  }

  function latestLoss(run) {
    const metrics = run.metrics || {};
    const groups = run.metric_groups;
    if (groups && groups.loss) {
      const name = groups.loss.train || groups.loss.val;
      if (name in metrics) return metrics[name];
    }
    if ("loss" in metrics) return metrics.loss;
    const name = Object.keys(metrics).find((n) => /loss/i.test(n));
    return name === undefined ? null : metrics[name];
  }

  function elapsedOf(run, fetchedAt) {
    // Without the tracker's elapsed_s (older bridges): first to last event seen.
    if (typeof run.elapsed_s === "number") return run.elapsed_s;
    if (typeof run.duration_s === "number" && !run.running) return run.duration_s;
    const end = run.running ? fetchedAt / 1000 : run.last_seen;
    return Math.max(0, end - run.first_seen);
  }

  function searchable(run) {
    return [run.run_id, run.name, run.stage, run.host, run.status, ...(run.tags || [])]
      .filter(Boolean).join(" ").toLowerCase();
  }

  function renderRuns() {
    const query = $("run-search").value.trim().toLowerCase();
    const wanted = $("status-filter").value;
    const counts = $("status-counts");
    counts.replaceChildren(
      el("button", { type: "button", class: wanted === "" ? "active" : "", "data-status": "" },
        "All ", el("span", { class: "n", text: String(state.runs.length) })),
      ...STATUSES.map((s) => el("button", { type: "button", class: wanted === s ? "active" : "", "data-status": s },
        badge(s), el("span", { class: "n", "data-count": s, text: String(state.counts[s] || 0) }))));

    const shown = state.runs.filter((r) => (!wanted || r.status === wanted) && (!query || searchable(r).includes(query)));
    $("runs-empty").hidden = state.runs.length !== 0;
    $("runs-no-match").hidden = state.runs.length === 0 || shown.length !== 0;
    $("runs-table").hidden = shown.length === 0;
    const at = state.runsFetchedAt;
    // Newest first: the run someone just started is the one they look for.
    const rows = shown.slice().reverse().map((run) => {
      const pct = Math.max(0, Math.min(100, run.progress_pct || 0));
      const running = run.status === "running" || run.status === "stale";
      const loss = latestLoss(run);
      return el("tr", { "data-run-id": run.run_id, "data-status": run.status },
        el("td", {}, badge(run.status)),
        el("td", {}, el("div", { class: "run-title" }, el("a", { href: `#/runs/${encodeURIComponent(run.run_id)}`, text: run.name || run.run_id })),
          run.name ? el("div", { class: "run-id", text: run.run_id }) : null),
        el("td", { text: run.stage || "\u2014" }),
        el("td", {}, el("div", { class: "progress-cell" },
          el("div", { class: "progress" }, el("div", { class: "bar", "data-status": run.status, style: `width:${pct}%` })),
          el("span", { class: "pct", text: `${pct.toFixed(1)}%` }))),
        el("td", { text: run.step === null || run.step === undefined ? "\u2014" : (run.total_steps ? `${run.step} / ${run.total_steps}` : String(run.step)) }),
        el("td", { text: run.epoch === null || run.epoch === undefined ? "\u2014" : (run.total_epochs ? `${run.epoch} / ${run.total_epochs}` : String(run.epoch)) }),
        el("td", { class: "loss", text: number(loss) }),
        ticking(el("td", { class: "elapsed" }), elapsedOf(run, at), at, running ? 1 : 0),
        ticking(el("td", { class: "eta" }), run.status === "running" ? run.eta_s : null, at, -1),
        el("td", { "data-ago": String(run.last_seen), text: ago(run.last_seen) }));
    });
    $("runs-body").replaceChildren(...rows);
  }

  $("run-search").addEventListener("input", () => renderRuns());
  $("status-filter").addEventListener("change", () => renderRuns());
  $("status-counts").addEventListener("click", (e) => {
    const button = e.target.closest("button");
    if (!button) return;
    $("status-filter").value = button.dataset.status || "";
    renderRuns();
  });
  $("runs-body").addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-run-id]");
    if (row && !e.target.closest("a")) location.hash = `#/runs/${encodeURIComponent(row.dataset.runId)}`;
  });

  // --- run page ---------------------------------------------------------------------------------
  async function loadRun() {
    if (state.view !== "run") return;
    const id = state.runId;
    let run;
    try {
      run = await api(`/api/runs/${encodeURIComponent(id)}`);
    } catch (e) {
      if (e.status === 404 && state.runId === id && !state.run) {
        $("run-missing").hidden = false;
        $("view-run").dataset.missing = "1";
        return;
      }
      throw e;
    }
    if (state.view !== "run" || state.runId !== id) return;
    $("run-missing").hidden = true;
    delete $("view-run").dataset.missing;
    state.run = run;
    state.runFetchedAt = Date.now();
    noteStatus(run);
    if (run.status !== "running" && run.status !== "stale") state.cancelling.delete(run.run_id);
    let added = false;
    for (const line of run.logs || []) added = addLog(line) || added;
    renderRun(added);
  }

  function meta(label, value) {
    return el("div", {}, el("dt", { text: label }), el("dd", {}, value));
  }

  function renderRun(logsChanged) {
    const run = state.run, at = state.runFetchedAt;
    if (!run) return;
    document.title = `${run.name || run.run_id} \u00b7 foxml-events`;
    $("run-name").textContent = run.name || run.run_id;
    setBadge($("run-status"), run.status);
    const live = run.status === "running" || run.status === "stale";
    const cancelling = state.cancelling.has(run.run_id);
    $("cancel-state").hidden = !cancelling;
    const cancel = $("cancel-button");
    cancel.hidden = !live;
    cancel.disabled = cancelling;
    cancel.textContent = cancelling ? "Cancelling\u2026" : "Cancel run";

    $("run-tags").replaceChildren(...(run.tags || []).map((t) => el("span", { class: "tag", text: t })));
    const rankCount = Object.keys(run.ranks || {}).length;
    const config = run.config && typeof run.config === "object" ? run.config : null;
    const elapsed = elapsedOf(run, at);
    const items = [
      meta("Run id", run.run_id),
      meta("Host", run.host || firstRankHost(run) || "\u2014"),
      meta("Ranks", run.world_size > 1 ? `${rankCount} of ${run.world_size}` : String(Math.max(rankCount, 1))),
      meta("Started", clock(run.started || run.first_seen)),
      meta("Elapsed", ticking(el("span", { id: "run-elapsed" }), elapsed, at, live ? 1 : 0)),
      meta("Last event", el("span", { "data-ago": String(run.last_seen), text: ago(run.last_seen) })),
    ];
    if (!live && typeof run.duration_s === "number") items.push(meta("Duration", duration(run.duration_s)));
    if (run.final_status) items.push(meta("Final status", run.final_status));
    if (config && typeof config.price_per_hour === "number") {
      const cost = el("span", { id: "run-cost" });
      const price = config.price_per_hour, currency = typeof config.currency === "string" ? `${config.currency} ` : "";
      const show = () => {
        const seconds = elapsed + (live ? (Date.now() - at) / 1000 : 0);
        cost.textContent = `${currency}${(price * seconds / 3600).toFixed(2)} (at ${price}/h)`;
      };
      show();
      cost.dataset.costPrice = String(price);
      costUpdater = show;
      items.push(meta("Estimated cost", cost));
    } else {
      costUpdater = null;
    }
    $("run-meta").replaceChildren(...items);

    const pct = Math.max(0, Math.min(100, run.progress_pct || 0));
    const bar = $("progress-bar");
    bar.style.width = `${pct}%`;
    bar.setAttribute("data-status", run.status);
    $("progress-pct").textContent = `${pct.toFixed(1)}%`;
    $("progress-pct").dataset.value = String(pct);
    $("run-step").textContent = run.step === null || run.step === undefined ? "step \u2014"
      : `step ${run.step}${run.total_steps ? ` / ${run.total_steps}` : ""}`;
    $("run-epoch").textContent = run.epoch === null || run.epoch === undefined ? "epoch \u2014"
      : `epoch ${run.epoch}${run.total_epochs ? ` / ${run.total_epochs}` : ""}`;
    ticking($("run-eta"), run.status === "running" ? run.eta_s : null, at, -1);
    $("run-throughput").textContent = typeof run.steps_per_s === "number" ? number(run.steps_per_s) : "\u2014";
    $("run-target").textContent = run.targets_total ? `targets ${run.targets_complete} / ${run.targets_total}`
      + (run.current_target ? ` (now ${run.current_target})` : "") : "";

    renderStages(run, at);
    renderMetrics(run);
    renderResources(run);
    renderTargets(run);
    renderErrors(run);
    if (logsChanged) renderLogs();  // up to MAX_LOG_LINES nodes: only when a line came
    renderConfig(config);
    renderRanks(run);
  }

  let costUpdater = null;
  setInterval(() => { if (costUpdater) costUpdater(); }, 1000);

  function firstRankHost(run) {
    const ranks = Object.values(run.ranks || {});
    return ranks.length ? ranks[0].host : null;
  }

  // Stages the tracker saw, in order ("idle", between stages, is left out); stages the run's config
  // plans (`config.stages`, a list of names) and it has not entered yet are `pending`.
  function renderStages(run, at) {
    const spans = (run.stages || []).filter((s) => s.name && s.name !== "idle");
    const ended = !(run.status === "running" || run.status === "stale");
    const failed = run.status === "failed" || run.status === "killed";
    const items = spans.map((span, i) => {
      const last = i === spans.length - 1;
      let stateName = "completed";
      if (last && failed) stateName = "failed";
      else if (span.end === null || span.end === undefined) stateName = ended ? "completed" : "active";
      const time = ticking(el("span", { class: "stage-duration" }), span.duration_s, at, stateName === "active" && run.status === "running" ? 1 : 0);
      return el("li", { "data-state": stateName, "data-stage": span.name },
        el("div", { class: "stage-name", text: span.name }),
        el("div", { class: "stage-info" }, `${stateName} \u00b7 `, time));
    });
    const planned = run.config && Array.isArray(run.config.stages) ? run.config.stages.filter((s) => typeof s === "string") : [];
    const seen = new Set(spans.map((s) => s.name));
    for (const name of planned) {
      if (seen.has(name)) continue;
      seen.add(name);
      items.push(el("li", { "data-state": "pending", "data-stage": name },
        el("div", { class: "stage-name", text: name }), el("div", { class: "stage-info", text: ended ? "pending (not reached)" : "pending" })));
    }
    if (!items.length) items.push(el("li", { "data-state": "pending", class: "muted" }, el("div", { class: "stage-name", text: "no stage yet" })));
    $("stage-tracker").replaceChildren(...items);
  }

  // Pairs come from the tracker's metric_groups (one place for the train/val rule); without it,
  // every metric is its own chart.
  function groupsOf(run) {
    if (run.metric_groups && typeof run.metric_groups === "object") return run.metric_groups;
    const groups = {};
    for (const name of Object.keys(run.metric_history || run.metrics || {})) groups[name] = { train: name, val: null };
    return groups;
  }

  function renderMetrics(run) {
    const latest = run.metrics || {};
    const groups = groupsOf(run);
    const cards = [];
    for (const [base, pair] of Object.entries(groups)) {
      for (const [kind, name] of [["train", pair.train], ["val", pair.val]]) {
        if (!name || !(name in latest)) continue;
        cards.push(el("div", { class: "metric-card", "data-metric": name },
          el("div", { class: "label", title: name, text: name }),
          el("div", { class: `value ${kind}`, text: number(latest[name]) })));
      }
    }
    $("metric-cards").replaceChildren(...(cards.length ? cards : [el("span", { class: "muted", text: "No metrics yet." })]));

    const box = $("metric-charts");
    const filter = $("metric-filter").value.trim().toLowerCase();
    const history = run.metric_history || {};
    // Losses first (what people look at), then the tracker's order.
    const names = Object.keys(groups).sort((a, b) => /loss/i.test(b) - /loss/i.test(a));
    $("metric-charts-empty").hidden = names.length !== 0;
    for (const base of names) {
      const pair = groups[base];
      let card = box.querySelector(`[data-group="${CSS.escape(base)}"]`);
      if (!card) {
        const canvas = el("canvas", {});
        card = el("div", { class: "chart-card", "data-group": base }, el("h3", { text: base }), el("div", { class: "chart-box" }, canvas));
        box.append(card);
        if (window.Chart) charts[base] = lineChart(canvas, "step", [
          { label: pair.train || `${base} (train)`, colour: TRAIN_COLOUR },
          { label: pair.val || `${base} (val)`, colour: VAL_COLOUR },
        ], { y: {} });
      }
      card.hidden = filter !== "" && !`${base} ${pair.train || ""} ${pair.val || ""}`.toLowerCase().includes(filter);
      const chart = charts[base];
      if (!chart) continue;
      chart.data.datasets[0].data = pair.train ? (history[pair.train] || []) : [];
      chart.data.datasets[1].data = pair.val ? (history[pair.val] || []) : [];
      chart.data.datasets[0].absent = !pair.train;
      chart.data.datasets[1].absent = !pair.val;
      chart.update("none");
    }
  }

  function lineChart(canvas, xTitle, series, scales) {
    const yScales = {};
    for (const [id, extra] of Object.entries(scales)) {
      yScales[id] = Object.assign({ type: "linear", position: id === "y" ? "left" : "right", grid: { drawOnChartArea: id === "y" } }, extra);
    }
    return new Chart(canvas, {
      type: "line",
      data: {
        datasets: series.map((s) => ({
          label: s.label, data: [], borderColor: s.colour, backgroundColor: s.colour, yAxisID: s.axis || "y",
          borderWidth: 1.5, pointRadius: 0, pointHitRadius: 6, tension: 0.15, spanGaps: false,
        })),
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        // Data are the bridge's [x, y] pairs as they come (Chart.js reads arrays as x, y).
        interaction: { mode: "nearest", axis: "x", intersect: false },
        scales: Object.assign({ x: { type: "linear", title: { display: true, text: xTitle } } }, yScales),
        plugins: { legend: { labels: { boxWidth: 12, filter: (item, data) => !data.datasets[item.datasetIndex].absent } }, tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${number(c.parsed.y)}` } } },
      },
    });
  }

  function renderResources(run) {
    const now = run.resources;
    const hist = run.resource_history || {};
    const has = now || Object.keys(hist).length;
    $("resources-empty").hidden = !!has;
    $("resources-box").hidden = !has;
    const facts = [];
    if (now) {
      if (typeof now.cpu_pct === "number") facts.push(["CPU", `${now.cpu_pct.toFixed(0)}%`]);
      if (typeof now.rss_bytes === "number") facts.push(["RSS", bytes(now.rss_bytes)]);
      if (typeof now.mem_used_bytes === "number") facts.push(["Memory", `${bytes(now.mem_used_bytes)} / ${bytes(now.mem_total_bytes)}`]);
      for (const gpu of now.gpus || []) {
        const parts = [];
        if (typeof gpu.util_pct === "number") parts.push(`${gpu.util_pct.toFixed(0)}%`);
        if (typeof gpu.mem_used_bytes === "number") parts.push(`${bytes(gpu.mem_used_bytes)} / ${bytes(gpu.mem_total_bytes)}`);
        if (typeof gpu.temperature_c === "number") parts.push(`${gpu.temperature_c.toFixed(0)}\u00b0C`);
        if (typeof gpu.power_w === "number") parts.push(`${gpu.power_w.toFixed(0)} W`);
        facts.push([`GPU ${gpu.index}${gpu.name ? ` (${gpu.name})` : ""}`, parts.join(" \u00b7 ")]);
      }
    }
    $("resources-now").replaceChildren(...facts.map(([k, v]) => el("span", {}, `${k} `, el("b", { text: v }))));
    if (!has || !window.Chart) return;
    if (!resourceChart) {
      resourceChart = lineChart($("resources-chart"), "seconds since start", [
        { label: "CPU %", colour: "#2563eb", axis: "y" },
        { label: "GPU util % (mean)", colour: "#16a34a", axis: "y" },
        { label: "RSS GiB", colour: "#9333ea", axis: "y1" },
        { label: "GPU memory GiB (sum)", colour: "#ea580c", axis: "y1" },
      ], { y: { min: 0, title: { display: true, text: "%" } }, y1: { min: 0, title: { display: true, text: "GiB" } } });
    }
    const origin = run.started || run.first_seen || 0;
    const series = (key, scale) => (hist[key] || []).map(([t, v]) => [t - origin, v === null ? null : v / scale]);
    const chart = resourceChart;
    const data = [series("cpu_pct", 1), series("gpu_util_pct", 1), series("rss_bytes", 2 ** 30), series("gpu_mem_used_bytes", 2 ** 30)];
    data.forEach((d, i) => { chart.data.datasets[i].data = d; chart.data.datasets[i].absent = d.length === 0; });
    chart.update("none");
  }

  function renderTargets(run) {
    const rows = (run.targets || []).map((t) => el("tr", { "data-target": t.target },
      el("td", { text: t.target }), el("td", {}, targetBadge(t.status)),
      el("td", { text: String(t.models_trained) }), el("td", { text: number(t.best_auc) }),
      el("td", { text: Object.entries(t.metrics || {}).map(([k, v]) => `${k}=${number(v)}`).join("  ") })));
    $("targets-table").tBodies[0].replaceChildren(...rows);
    $("targets-table").hidden = rows.length === 0;
    $("targets-empty").hidden = rows.length !== 0;
  }

  function renderErrors(run) {
    const items = (run.errors || []).map((e) => el("li", {},
      el("span", { class: "etype", text: e.error_type || "error" }), ` ${e.error_message || ""} `,
      el("span", { class: "muted", text: `(${e.recoverable ? "recoverable" : "unrecoverable"}, rank ${e.rank}, ${clock(e.time)})` })));
    $("errors-list").replaceChildren(...items);
    $("errors-empty").hidden = items.length !== 0;
  }

  function renderConfig(config) {
    const rows = [];
    const walk = (prefix, value) => {
      if (value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length) {
        for (const [k, v] of Object.entries(value)) walk(prefix ? `${prefix}.${k}` : k, v);
      } else {
        rows.push(el("tr", { "data-key": prefix }, el("td", { text: prefix }),
          el("td", { text: typeof value === "string" ? value : JSON.stringify(value) })));
      }
    };
    if (config) walk("", config);
    $("config-table").tBodies[0].replaceChildren(...rows);
    $("config-empty").hidden = rows.length !== 0;
    $("config-json").textContent = config ? JSON.stringify(config, null, 2) : "null";
  }

  function renderRanks(run) {
    const rows = Object.values(run.ranks || {}).map((r) => el("tr", { "data-rank": String(r.rank) },
      el("td", { text: String(r.rank) }), el("td", {}, badge(r.status)), el("td", { text: r.host }), el("td", { text: String(r.pid) }),
      el("td", { text: r.stage || "\u2014" }), el("td", { text: `${(r.progress_pct || 0).toFixed(1)}%` }),
      el("td", { text: r.step === null || r.step === undefined ? "\u2014" : String(r.step) }), el("td", { text: String(r.events) }),
      el("td", { "data-ago": String(r.last_seen), text: ago(r.last_seen) })));
    $("ranks-table").tBodies[0].replaceChildren(...rows);
  }

  // --- the live log panel -----------------------------------------------------------------------
  // Lines come from the run's `logs` (REST: the newest the tracker keeps) and from log events on the
  // WebSocket; both carry the event's time, so one key deduplicates them across the seam.
  // Milliseconds: a WebSocket line's time comes from its timestamp text (ms), a REST line's from
  // the tracker (us), so the same line must compare equal at ms.
  function logMillis(time) {
    return Math.floor(time * 1000 + 1e-3);
  }

  function logKey(line) {
    return `${logMillis(line.time)}|${line.rank}|${line.level}|${line.message}`;
  }

  function addLog(line) {
    // A line cleared from the panel comes back in the next refetch of the run's `logs`: keep it out.
    if (logMillis(line.time) <= logMillis(state.logsClearedAt)) return false;
    const key = logKey(line);
    if (state.logKeys.has(key)) return false;
    state.logKeys.add(key);
    const logs = state.logs;
    let i = logs.length;
    while (i > 0 && logs[i - 1].time > line.time) i--;  // arrivals are almost always in order
    logs.splice(i, 0, line);
    if (logs.length > MAX_LOG_LINES) {
      for (const old of logs.splice(0, logs.length - MAX_LOG_LINES)) state.logKeys.delete(logKey(old));
    }
    return true;
  }

  function renderLogs() {
    const box = $("log-lines");
    const floor = LEVELS[$("log-level").value] || 0;
    const shown = state.logs.filter((l) => (LEVELS[l.level] || 20) >= floor);
    box.replaceChildren(...shown.map((l) => el("div", { class: "log-line", "data-level": l.level },
      el("span", { class: "t", text: new Date(l.time * 1000).toLocaleTimeString() }), " ",
      el("span", { class: "lv", text: l.level }), l.rank ? `[rank ${l.rank}] ` : "", l.message)));
    $("log-count").textContent = `(${shown.length})`;
    if ($("log-autoscroll").checked) box.scrollTop = box.scrollHeight;
  }

  $("log-level").addEventListener("change", renderLogs);
  $("log-clear").addEventListener("click", () => {
    state.logsClearedAt = state.logs.length ? state.logs[state.logs.length - 1].time : Date.now() / 1000;
    state.logs = [];
    state.logKeys.clear();
    renderLogs();
  });
  $("metric-filter").addEventListener("input", () => { if (state.run) renderMetrics(state.run); });

  document.querySelector(".tabs").addEventListener("click", (e) => {
    const button = e.target.closest("button[data-tab]");
    if (!button) return;
    for (const b of document.querySelectorAll(".tabs button")) b.classList.toggle("active", b === button);
    for (const tab of ["overview", "config", "ranks"]) $(`tab-${tab}`).hidden = tab !== button.dataset.tab;
  });

  // --- cancel -----------------------------------------------------------------------------------
  $("cancel-button").addEventListener("click", () => $("cancel-dialog").showModal());
  $("cancel-dialog").addEventListener("close", async () => {
    if ($("cancel-dialog").returnValue !== "cancel" || !state.run) return;
    const id = state.run.run_id;
    state.cancelling.add(id);
    renderRun();
    try {
      await api(`/api/runs/${encodeURIComponent(id)}/commands`, {
        method: "POST",
        headers: headers({ "Content-Type": "application/json" }),
        body: JSON.stringify({ command: "cancel" }),
      });
      toast(`cancel sent to ${id}; waiting for the trainer to end the run`, { "data-run-id": id });
    } catch (e) {
      // 409: it ended meanwhile; 404: unknown; 504: the trainer did not answer in time.
      state.cancelling.delete(id);
      toast(`cancel failed: ${e.message}`, { "data-kind": "error", "data-run-id": id });
    }
    if (state.run && state.run.run_id === id) renderRun();
    refreshRun();
  });

  // --- WebSocket: when to refetch, live logs, resume from the cursor after a restart ---------------
  let nextCursor = null;   // the ring position of the next event to receive
  let attempt = 0;
  let socket = null;

  function setConnection(stateName, text) {
    const node = $("connection");
    node.dataset.state = stateName;
    node.textContent = text;
  }

  function connect() {
    const params = new URLSearchParams();
    if (nextCursor !== null) params.set("since", String(nextCursor));
    params.set("max_hz", String(WS_MAX_HZ));
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    setConnection(attempt ? "reconnecting" : "connecting", attempt ? `reconnecting (try ${attempt + 1})` : "connecting");
    socket = new WebSocket(`${scheme}://${location.host}/ws/training?${params}`);
    socket.onopen = () => {
      attempt = 0;
      setConnection("live", "live");
      // Whatever happened while we were away is in the tracker: fetch it whole.
      refreshList();
      if (state.view === "run") refreshRun();
    };
    socket.onmessage = (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch (_) { return; }
      onEvent(event);
    };
    socket.onclose = () => {
      socket = null;
      const wait = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
      attempt++;
      setConnection("offline", `offline, retrying in ${(wait / 1000).toFixed(1)} s`);
      setTimeout(connect, wait);
    };
  }

  function onEvent(event) {
    if (typeof event.cursor === "number") {
      // Not a running maximum: a restarted bridge numbers its ring afresh.
      if (event.type === "ping") nextCursor = event.cursor;
      else if (event.type === "missed") { refreshList(); if (state.view === "run") refreshRun(); }
      else nextCursor = event.cursor + 1;
    }
    if (!event.event_type) return;
    refreshList();
    if (state.view === "run" && event.run_id === state.runId) {
      if (event.event_type === "log" && typeof event.message === "string") {
        const time = Date.parse(String(event.timestamp).replace(/(\.\d{3})\d*/, "$1")) / 1000;
        if (addLog({ time, level: event.level || "info", message: event.message, rank: event.rank || 0 })) renderLogs();
      }
      refreshRun();
    }
  }

  // --- routing ----------------------------------------------------------------------------------
  function route() {
    const match = location.hash.match(/^#\/runs\/(.+)$/);
    const id = match ? decodeURIComponent(match[1]) : null;
    if (id !== state.runId) {
      for (const [name, chart] of Object.entries(charts)) { chart.destroy(); delete charts[name]; }
      if (resourceChart) { resourceChart.destroy(); resourceChart = null; }
    }
    if (match) {
      if (state.runId !== id) {
        state.run = null;
        state.logs = [];
        state.logKeys.clear();
        state.logsClearedAt = -Infinity;
        $("metric-charts").replaceChildren();
        renderLogs();
        for (const field of ["run-name", "progress-pct", "run-step", "run-epoch"]) $(field).textContent = "";
      }
      state.view = "run";
      state.runId = id;
      $("view-runs").hidden = true;
      $("view-run").hidden = false;
      refreshRun();
    } else {
      state.view = "runs";
      state.runId = null;
      document.title = "foxml-events";
      $("view-run").hidden = true;
      $("view-runs").hidden = false;
      renderRuns();
      refreshList();
    }
  }

  window.addEventListener("hashchange", route);

  // For tests and the curious: the live charts and how many points each series holds.
  window.foxmlDashboard = {
    charts,
    state,
    // {metrics: {group: {series label: points}}, resources: {series label: points}}
    chartPoints() {
      const count = (chart) => Object.fromEntries(chart.data.datasets.map((d) => [d.label, d.data.length]));
      const metrics = {};
      for (const [name, chart] of Object.entries(charts)) metrics[name] = count(chart);
      return { metrics, resources: resourceChart ? count(resourceChart) : {} };
    },
    connection: () => $("connection").dataset.state,
  };

  route();
  connect();
})();
