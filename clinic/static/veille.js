// Shared by the clinic's pages: API calls, small DOM helpers, time and value formatting.
// Plain JavaScript, no build step and no third-party code (ward networks have no internet).
"use strict";

const Veille = (() => {
  const API = "/api/v1";

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message || `request failed (${status})`);
      this.status = status;
      this.code = code;
    }
  }

  // State-changing requests send JSON with a custom header: a cross-site form cannot, and
  // the session cookie is SameSite=Strict anyway.
  async function api(method, path, body) {
    const headers = { Accept: "application/json", "X-Veille-Request": "1" };
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(API + path, init);
    if (response.status === 401 && path !== "/session") {
      window.location.assign("/");
      throw new ApiError(401, "unauthenticated", "signed out");
    }
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new ApiError(response.status, error.code, error.message);
    }
    return data;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("data-")) node.setAttribute(key, value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    return node;
  }

  function pad(n) {
    return String(n).padStart(2, "0");
  }

  // "42 s", "3 min 05 s", "2 h 07 min": how long an alert has been waiting.
  function elapsed(since, now) {
    const s = Math.max(0, Math.floor(((now || Date.now()) - since) / 1000));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
    return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
  }

  function clock(date) {
    return `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  }

  const LABELS = {
    heart_rate: "Heart rate", pulse_rate: "Pulse rate", spo2: "SpO₂",
    respiration_rate: "Respiration rate", systolic_bp: "Systolic BP",
    diastolic_bp: "Diastolic BP", mean_bp: "Mean BP", body_temperature: "Temperature",
    glucose: "Glucose", inhaled_oxygen_flow: "O₂ flow", consciousness: "Consciousness",
    news2: "NEWS2",
  };

  function metricLabel(metric) {
    return LABELS[metric] || metric.replaceAll("_", " ");
  }

  function value(v) {
    if (v === null || v === undefined) return "no signal";
    return Number.isInteger(v) ? String(v) : v.toFixed(1);
  }

  // NEWS2 badge: "NEWS2 7 · high", or what is missing.
  function news2Badge(score) {
    if (!score) return el("span", { class: "news2 unknown", text: "NEWS2 …" });
    if (score.total === null) {
      return el("span", {
        class: "news2 unknown", text: "NEWS2 incomplete",
        title: `no recent ${score.missing.map((m) => m.replaceAll("_", " ")).join(", ")}`,
      });
    }
    return el("span", {
      class: `news2 band-${score.band}`, text: `NEWS2 ${score.total} · ${score.band}`,
      title: score.red_parameters.length ? `red: ${score.red_parameters.join(", ")}` : null,
    });
  }

  async function news2(patients) {
    if (!patients.length) return new Map();
    const query = patients.map((p) => `patient=${encodeURIComponent(p)}`).join("&");
    const data = await api("GET", `/news2?${query}`);
    return new Map(data.scores.map((s) => [s.patient, s]));
  }

  // Who the patients are (their care team only: the API leaves out the others).
  async function identities(patients) {
    if (!patients.length) return new Map();
    const query = patients.map((p) => `patient=${encodeURIComponent(p)}`).join("&");
    const data = await api("GET", `/identities?${query}`);
    return new Map(data.identities.map((i) => [i.patient, i]));
  }

  function notice(text, isError) {
    const box = document.getElementById("notice");
    if (!box) return;
    box.textContent = text || "";
    box.hidden = !text;
    box.classList.toggle("error", Boolean(isError));
  }

  function wireSignOut() {
    const button = document.getElementById("sign-out");
    if (!button) return;
    button.addEventListener("click", async () => {
      try {
        await api("DELETE", "/session");
      } finally {
        window.location.assign("/");
      }
    });
  }

  return { ApiError, api, el, svg, elapsed, clock, metricLabel, value, news2Badge, news2,
           identities, notice, wireSignOut };
})();
