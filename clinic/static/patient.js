// One patient: NEWS2, active alerts and a trend chart per vital sign over the last six
// hours, drawn as inline SVG from /api/v1/patients/{p}/vitals (1-minute buckets: the mean
// as a line, the min-max range as a band). Reloaded every minute and on this patient's
// alert events.
"use strict";

(() => {
  const HOURS = 6;
  const RELOAD_MS = 60000;
  const W = 640; // SVG user units; the chart scales to the screen width
  const H = 170;
  const PAD = { left: 46, right: 10, top: 10, bottom: 24 };
  const GAP_MS = 3 * 60000; // no bucket for longer than this: the line breaks

  const pseudonym = decodeURIComponent(window.location.pathname.split("/").pop());
  const charts = document.getElementById("charts");
  document.getElementById("patient-name").textContent = pseudonym;
  document.title = `Veille: ${pseudonym}`;

  function niceRange(low, high) {
    if (low === high) return [low - 1, high + 1];
    const margin = (high - low) * 0.08;
    return [low - margin, high + margin];
  }

  function chart(series, latest, since, until) {
    const points = series.points.filter((p) => p.mean !== null);
    const t0 = Date.parse(since);
    const t1 = Date.parse(until);
    const lows = points.map((p) => p.min);
    const highs = points.map((p) => p.max);
    const [y0, y1] = points.length ? niceRange(Math.min(...lows), Math.max(...highs)) : [0, 1];
    const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
    const y = (v) => H - PAD.bottom - ((v - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);

    const root = Veille.svg("svg", {
      viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
      "aria-label": `${Veille.metricLabel(series.metric)} over the last ${HOURS} hours`,
    });
    for (const v of [y0, (y0 + y1) / 2, y1]) {
      root.append(Veille.svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v),
                                       class: "grid" }));
      const label = Veille.svg("text", { x: PAD.left - 6, y: y(v) + 4, class: "axis end" });
      label.textContent = Veille.value(Math.round(v * 10) / 10);
      root.append(label);
    }
    for (let t = Math.ceil(t0 / 3600000) * 3600000; t <= t1; t += 3600000) {
      root.append(Veille.svg("line", { x1: x(t), x2: x(t), y1: PAD.top, y2: H - PAD.bottom,
                                       class: "grid" }));
      const label = Veille.svg("text", { x: x(t), y: H - 6, class: "axis middle" });
      label.textContent = Veille.clock(new Date(t));
      root.append(label);
    }
    // Runs of consecutive buckets: a gap in the data is a gap in the drawing.
    const runs = [];
    let run = [];
    for (const p of points) {
      const t = Date.parse(p.bucket);
      if (run.length && t - run[run.length - 1].t > GAP_MS) {
        runs.push(run);
        run = [];
      }
      run.push({ t, p });
    }
    if (run.length) runs.push(run);
    for (const r of runs) {
      const upper = r.map(({ t, p }) => `${x(t).toFixed(1)},${y(p.max).toFixed(1)}`);
      const lower = r.map(({ t, p }) => `${x(t).toFixed(1)},${y(p.min).toFixed(1)}`).reverse();
      root.append(Veille.svg("polygon", { points: [...upper, ...lower].join(" "), class: "band" }));
      root.append(Veille.svg("polyline", {
        points: r.map(({ t, p }) => `${x(t).toFixed(1)},${y(p.mean).toFixed(1)}`).join(" "),
        class: "mean",
      }));
      if (r.length === 1) {
        const { t, p } = r[0];
        root.append(Veille.svg("circle", { cx: x(t), cy: y(p.mean), r: 3, class: "dot" }));
      }
    }
    const noSignal = series.points.reduce((n, p) => n + p.no_signal, 0);
    const now = latest
      ? `${Veille.value(latest.value)} ${latest.value === null ? "" : latest.unit} at ${Veille.clock(new Date(latest.measured_at))}`
      : "no recent value";
    return Veille.el(
      "figure", { class: "metric", "data-metric": series.metric },
      Veille.el("figcaption", {},
                Veille.el("strong", { text: Veille.metricLabel(series.metric) }),
                Veille.el("span", { class: "latest", text: now }),
                noSignal ? Veille.el("span", { class: "nosignal", text: `${noSignal} without signal` }) : null),
      root,
    );
  }

  async function loadVitals() {
    const p = encodeURIComponent(pseudonym);
    const vitals = await Veille.api("GET", `/patients/${p}/vitals?hours=${HOURS}&resolution=1m`);
    const latest = new Map(vitals.latest.map((l) => [l.metric, l]));
    const figures = vitals.series.map((s) => chart(s, latest.get(s.metric), vitals.since, vitals.until));
    charts.replaceChildren(...(figures.length ? figures
      : [Veille.el("p", { class: "empty", text: `No readings in the last ${HOURS} hours.` })]));
    document.getElementById("updated").textContent = `updated ${Veille.clock(new Date())}`;
  }

  async function loadAlerts() {
    const data = await Veille.api("GET", "/alerts?state=active&limit=1000");
    const mine = data.alerts.filter((a) => a.patient === pseudonym);
    const list = document.getElementById("patient-alerts");
    list.replaceChildren(...(mine.length ? mine.map((a) => Veille.el(
      "li", { class: `alert-line priority-${a.priority}` },
      Veille.el("span", { class: "priority", text: a.priority.toUpperCase() }),
      Veille.el("span", { text: `${a.message} (${a.state}, ${Veille.elapsed(Date.parse(a.opened_at))})` }),
    )) : [Veille.el("li", { class: "empty", text: "None." })]));
    const scores = await Veille.news2([pseudonym]);
    document.getElementById("news2").replaceWith(
      Object.assign(Veille.news2Badge(scores.get(pseudonym)), { id: "news2" }));
  }

  async function loadIdentity() {
    let who = null;
    try {
      who = await Veille.api("GET", `/patients/${encodeURIComponent(pseudonym)}/identity`);
    } catch (e) {
      if (e.status !== 404) throw e; // not admitted, or not to be named here: the pseudonym
    }
    const shared = who?.shared_until ? ` · shared with your unit until ${Veille.clock(new Date(who.shared_until))}` : "";
    document.getElementById("patient-name").textContent = who ? who.display : pseudonym;
    document.getElementById("patient-id").textContent = who ? `${pseudonym}${shared}` : "";
    document.title = `Veille: ${who ? `${who.family_name.toUpperCase()} ${who.given_names}` : pseudonym}`;
  }

  async function load() {
    try {
      await Promise.all([loadVitals(), loadAlerts(), loadIdentity()]);
      Veille.notice("");
    } catch (e) {
      if (e.status === 404) Veille.notice(`${pseudonym} is not a patient of your care units.`, true);
      else if (e.status !== 401) Veille.notice(`Could not load: ${e.message}`, true);
    }
  }

  let soon = null;
  function loadSoon() {
    if (soon === null) soon = window.setTimeout(() => { soon = null; load(); }, 1500);
  }

  Veille.wireSignOut();
  load();
  window.setInterval(load, RELOAD_MS);
  const stream = new EventSource("/api/v1/alerts/stream");
  stream.addEventListener("alert", (e) => {
    if (JSON.parse(e.data).patient === pseudonym) loadSoon();
  });
  stream.addEventListener("signed_out", () => window.location.assign("/"));
})();
