// The open-alerts board: every active alert of the clinician's care units, one section per
// unit, most urgent first (priority, then the longest waiting), updated live from
// /api/v1/alerts/stream (server-sent events) and reloaded from the API on (re)connection.
"use strict";

(() => {
  const PRIORITY_RANK = { high: 0, medium: 1, low: 2 };
  const RELOAD_MS = 30000; // catches anything a dropped stream missed
  const EVENT_WINS_MS = 15000; // a live event is newer than a reload for this long (sink lag)
  const NEWS2_MS = 30000;

  const board = document.getElementById("board");
  const alerts = new Map(); // alert_id -> alert (the API's AlertSummary shape)
  const touched = new Map(); // alert_id -> {at, gone}: changed by a live event
  const pending = new Set(); // alert ids with an action on its way
  let scores = new Map(); // patient -> NEWS2
  let names = new Map(); // patient -> identity (the API's PatientIdentity)
  let units = [];
  let streamOpen = false;
  let feedLive = false;

  function sortKey(a) {
    return [PRIORITY_RANK[a.priority] ?? 3, Date.parse(a.opened_at), a.alert_id];
  }

  function compare(a, b) {
    const ka = sortKey(a);
    const kb = sortKey(b);
    for (let i = 0; i < ka.length; i += 1) {
      if (ka[i] < kb[i]) return -1;
      if (ka[i] > kb[i]) return 1;
    }
    return 0;
  }

  function row(alert) {
    const opened = Date.parse(alert.opened_at);
    const acked = alert.state === "acknowledged";
    const busy = pending.has(alert.alert_id);
    const state = acked
      ? Veille.el("span", { class: "state acked", text: `Acknowledged by ${alert.acknowledged_by || "?"}` })
      : Veille.el("span", { class: "state open", text: busy ? "Sending…" : "Open" });
    const ack = Veille.el("button", {
      type: "button", class: "ack", "data-action": "acknowledge", disabled: acked || busy,
      "aria-label": `Acknowledge ${alert.message}`, text: "Acknowledge",
    });
    const resolve = Veille.el("button", {
      type: "button", class: "resolve", "data-action": "resolve", disabled: busy,
      "aria-label": `Resolve ${alert.message}`, text: "Resolve…",
    });
    const level = alert.escalation_level > 0
      ? Veille.el("span", { class: "escalated", text: `escalated ×${alert.escalation_level}` })
      : null;
    return Veille.el(
      "article",
      { class: `alert priority-${alert.priority} state-${alert.state}`, "data-alert-id": alert.alert_id,
        "data-state": alert.state, "data-patient": alert.patient },
      Veille.el("div", { class: "priority", text: alert.priority.toUpperCase() }),
      Veille.el(
        "div", { class: "what" },
        Veille.el("a", { class: "patient", href: `/patients/${encodeURIComponent(alert.patient)}`,
                         text: names.get(alert.patient)?.display ?? alert.patient,
                         title: alert.patient }),
        Veille.news2Badge(scores.get(alert.patient)),
        Veille.el("p", { class: "message", text: alert.message }),
        Veille.el("p", { class: "meta" },
                  Veille.el("span", { text: `${Veille.metricLabel(alert.metric)} · ${alert.rule}` }),
                  level),
      ),
      Veille.el(
        "div", { class: "when" },
        Veille.el("span", { class: "since", "data-since": String(opened),
                            text: Veille.elapsed(opened) }),
        Veille.el("span", { class: "opened", text: `since ${Veille.clock(new Date(opened))}` }),
        state,
      ),
      Veille.el("div", { class: "actions" }, ack, resolve),
    );
  }

  function render() {
    const byUnit = new Map(units.map((u) => [u, []]));
    for (const alert of alerts.values()) {
      if (!byUnit.has(alert.care_unit)) byUnit.set(alert.care_unit, []);
      byUnit.get(alert.care_unit).push(alert);
    }
    const sections = [];
    for (const [unit, list] of byUnit) {
      list.sort(compare);
      const open = list.filter((a) => a.state === "open").length;
      sections.push(Veille.el(
        "section", { class: "unit", "data-unit": unit },
        Veille.el("h2", { text: `${unit} · ${open} open, ${list.length - open} acknowledged` }),
        list.length
          ? Veille.el("div", { class: "alerts" }, ...list.map(row))
          : Veille.el("p", { class: "empty", text: "No active alerts." }),
      ));
    }
    board.replaceChildren(...sections);
    document.title = `Veille: ${alerts.size} active alert${alerts.size === 1 ? "" : "s"}`;
  }

  let renderQueued = false;
  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    window.requestAnimationFrame(() => {
      renderQueued = false;
      render();
    });
  }

  function tick() {
    const now = Date.now();
    for (const span of board.querySelectorAll(".since")) {
      span.textContent = Veille.elapsed(Number(span.dataset.since), now);
    }
  }

  async function refreshNews2() {
    const patients = [...new Set([...alerts.values()].map((a) => a.patient))];
    try {
      scores = await Veille.news2(patients);
      scheduleRender();
    } catch (e) {
      if (e.status !== 401) Veille.notice(`NEWS2 unavailable: ${e.message}`, true);
    }
    try {
      names = await Veille.identities(patients);
      scheduleRender();
    } catch (e) {
      if (e.status !== 401) Veille.notice(`Patient names unavailable: ${e.message}`, true);
    }
  }

  let news2Timer = null;
  function soonNews2() {
    if (news2Timer === null) {
      news2Timer = window.setTimeout(() => {
        news2Timer = null;
        refreshNews2();
      }, 300); // the alerts of one burst come together: one request for them all
    }
  }

  async function reload() {
    try {
      const data = await Veille.api("GET", "/alerts?state=active&limit=1000");
      const now = Date.now();
      const fresh = new Map(data.alerts.map((a) => [a.alert_id, a]));
      for (const [id, mark] of touched) {
        if (now - mark.at > EVENT_WINS_MS) {
          touched.delete(id);
        } else if (mark.gone) {
          fresh.delete(id);
        } else if (alerts.has(id)) {
          fresh.set(id, alerts.get(id));
        }
      }
      alerts.clear();
      for (const [id, a] of fresh) alerts.set(id, a);
      Veille.notice("");
      render();
      refreshNews2();
    } catch (e) {
      if (e.status !== 401) Veille.notice(`Could not load the alerts: ${e.message}`, true);
    }
  }

  function apply(event) {
    const id = event.alert_id;
    const known = alerts.get(id);
    touched.set(id, { at: Date.now(), gone: event.kind === "resolved" });
    pending.delete(id);
    if (event.kind === "resolved") {
      alerts.delete(id);
    } else if (event.kind === "opened" && !known) {
      alerts.set(id, {
        alert_id: id, care_unit: event.care_unit, patient: event.patient, rule: event.rule,
        metric: event.metric, priority: event.priority, state: "open",
        escalation_level: event.level, opened_at: event.at, acknowledged_at: null,
        acknowledged_by: null, resolved_at: null, resolved_by: null,
        opening_value: event.value, message: event.message,
      });
      soonNews2();
    } else if (known && event.kind === "escalated") {
      known.priority = event.priority;
      known.escalation_level = event.level;
    } else if (known && event.kind === "acknowledged") {
      known.state = "acknowledged";
      known.acknowledged_by = event.actor;
      known.acknowledged_at = event.at;
    } else if (!known) {
      touched.delete(id);
      reload(); // an event about an alert this page has not seen: ask the database
      return;
    }
    scheduleRender();
  }

  function showLive() {
    const live = streamOpen && feedLive;
    const badge = document.getElementById("live");
    badge.textContent = live ? "● Live" : "Not live";
    badge.classList.toggle("off", !live);
    document.getElementById("not-live").hidden = live;
  }

  function connect() {
    const stream = new EventSource("/api/v1/alerts/stream");
    stream.addEventListener("open", () => {
      streamOpen = true;
      showLive();
      reload();
    });
    stream.addEventListener("error", () => {
      streamOpen = false;
      showLive();
    });
    stream.addEventListener("feed", (e) => {
      const wasLive = feedLive;
      feedLive = JSON.parse(e.data).live;
      showLive();
      if (feedLive && !wasLive) reload();
    });
    stream.addEventListener("alert", (e) => apply(JSON.parse(e.data)));
    stream.addEventListener("signed_out", () => {
      stream.close();
      window.location.assign("/");
    });
  }

  // -- actions ----------------------------------------------------------------------------

  const dialog = document.getElementById("resolve-dialog");
  const note = document.getElementById("resolve-note");
  let resolving = null;

  async function act(alertId, action, body) {
    pending.add(alertId);
    scheduleRender();
    try {
      await Veille.api("POST", `/alerts/${alertId}/${action}`, body);
      Veille.notice("");
      // The row changes when the event comes back on the stream, a second or so later.
    } catch (e) {
      pending.delete(alertId);
      Veille.notice(e.message, true);
      reload();
    }
  }

  board.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const article = button.closest("[data-alert-id]");
    const alert = alerts.get(article.dataset.alertId);
    if (!alert) return;
    if (button.dataset.action === "acknowledge") {
      act(alert.alert_id, "acknowledge", {});
    } else {
      resolving = alert;
      document.getElementById("resolve-what").textContent = `${alert.patient}: ${alert.message}`;
      note.value = "";
      dialog.showModal();
      note.focus();
    }
  });

  document.getElementById("resolve-cancel").addEventListener("click", () => dialog.close());
  document.getElementById("resolve-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = note.value.trim();
    if (!text || !resolving) return;
    dialog.close();
    act(resolving.alert_id, "resolve", { note: text });
    resolving = null;
  });

  // -- start ------------------------------------------------------------------------------

  async function start() {
    Veille.wireSignOut();
    try {
      const me = await Veille.api("GET", "/me");
      units = me.care_units;
      document.getElementById("who").textContent = `${me.display_name} (${me.role}) · ${units.join(", ")}`;
    } catch (e) {
      Veille.notice(e.message, true);
    }
    render();
    connect();
    window.setInterval(tick, 1000);
    window.setInterval(reload, RELOAD_MS);
    window.setInterval(refreshNews2, NEWS2_MS);
  }

  start();
})();
