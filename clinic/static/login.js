// Sign-in: POST /api/v1/session sets the HttpOnly session cookie, then the board.
"use strict";

(() => {
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");
  const tenant = document.getElementById("tenant");
  const fromQuery = new URLSearchParams(window.location.search).get("tenant");
  tenant.value = fromQuery || window.localStorage.getItem("veille.tenant") || "";
  (tenant.value ? document.getElementById("username") : tenant).focus();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const button = document.getElementById("sign-in");
    button.disabled = true;
    const body = {
      tenant: tenant.value.trim(),
      username: document.getElementById("username").value.trim(),
      password: document.getElementById("password").value,
    };
    try {
      await Veille.api("POST", "/session", body);
      window.localStorage.setItem("veille.tenant", body.tenant);
      window.location.assign("/board");
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
      button.disabled = false;
    }
  });
})();
