// bannertrack dashboard: niceties on top of a page that works without this file.
// - the range form submits when a preset is picked and shows dates only for "custom";
// - copy buttons for the snippets;
// - cache actions with the admin token, kept in this tab's sessionStorage only;
// - the cache panel refreshes itself while the tab is visible.
"use strict";

(function () {
  const TOKEN_KEY = "bannertrack.adminToken";

  function setupRange(form) {
    const select = form.querySelector("[data-range-select]");
    const custom = form.querySelector("[data-custom-dates]");
    if (!select || !custom) return;
    const sync = () => {
      const isCustom = select.value === "custom";
      custom.hidden = !isCustom;
      for (const input of custom.querySelectorAll("input")) input.disabled = !isCustom;
    };
    sync();
    select.addEventListener("change", () => {
      sync();
      if (select.value !== "custom") form.requestSubmit();
    });
  }

  function setupCopy() {
    const status = document.querySelector("[data-copy-status]");
    for (const button of document.querySelectorAll("[data-copy]")) {
      const source = document.getElementById(button.dataset.copy);
      if (!source) continue;
      button.hidden = false;
      button.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(source.value);
          if (status) status.textContent = "Copied to the clipboard.";
        } catch (err) {
          source.select();
          if (status) status.textContent = "Selected: press Ctrl+C (or ⌘C) to copy.";
        }
      });
    }
  }

  async function refreshPanel(panel) {
    const response = await fetch("/dashboard/cache", { headers: { Accept: "text/html" } });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const part of panel.querySelectorAll("[data-refresh]")) {
      const next = fresh.querySelector(`[data-refresh="${part.dataset.refresh}"]`);
      if (next) part.replaceWith(document.importNode(next, true));
    }
  }

  function describe(action, body) {
    if (action === "clear") return `Cleared ${body.cleared} entries.`;
    if (action === "warm") return `Warmed: ${body.loaded} entries loaded in ${body.seconds} s.`;
    if (action === "namespace") return `Invalidated ${body.namespace}: ${body.removed} entries dropped.`;
    return `Invalidated banner ${body.banner_id}: ${body.removed} entries dropped.`;
  }

  function keepFresh(panel) {
    const seconds = Number(panel.dataset.interval) || 10;
    window.setInterval(() => {
      if (document.visibilityState === "visible") refreshPanel(panel).catch(() => {});
    }, seconds * 1000);
  }

  function setupCache(panel) {
    const actions = panel.querySelector("[data-cache-actions]");
    const tokenInput = panel.querySelector("[data-admin-token]");
    const status = panel.querySelector("[data-cache-status]");
    if (!actions || !tokenInput || !status) return;
    actions.hidden = false;
    tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || "";
    tokenInput.addEventListener("input", () => {
      if (tokenInput.value) sessionStorage.setItem(TOKEN_KEY, tokenInput.value);
      else sessionStorage.removeItem(TOKEN_KEY);
    });
    const say = (text, ok) => {
      status.textContent = text;
      status.className = "status " + (ok ? "ok" : "err");
    };
    const urls = {
      clear: () => "/api/v1/cache/clear",
      warm: () => "/api/v1/cache/warm",
      namespace: () =>
        `/api/v1/cache/namespace/${encodeURIComponent(panel.querySelector("[data-namespace-select]").value)}/invalidate`,
      banner: () => {
        const id = panel.querySelector("[data-banner-input]").value.trim();
        return /^[1-9][0-9]*$/.test(id) ? `/api/v1/cache/banner/${id}/invalidate` : null;
      },
    };
    for (const button of panel.querySelectorAll("[data-cache-action]")) {
      button.addEventListener("click", async () => {
        const action = button.dataset.cacheAction;
        const url = urls[action]();
        if (!url) return say("Enter a banner id (a positive whole number).", false);
        const headers = { Accept: "application/json" };
        if (tokenInput.value) headers.Authorization = `Bearer ${tokenInput.value}`;
        button.disabled = true;
        try {
          const response = await fetch(url, { method: "POST", headers });
          const body = await response.json().catch(() => ({}));
          if (response.ok) {
            say(describe(action, body), true);
            await refreshPanel(panel);
          } else {
            const why = body.error ? body.error.message : response.statusText;
            say(`Refused (${response.status}): ${why}.`, false);
          }
        } catch (err) {
          say("The server did not answer.", false);
        } finally {
          button.disabled = false;
        }
      });
    }
  }

  document.querySelectorAll("[data-range-form]").forEach(setupRange);
  setupCopy();
  const panel = document.querySelector("[data-cache-panel]");
  if (panel) {
    setupCache(panel);
    keepFresh(panel);
  }
})();
