// bannertrack dashboard: niceties on top of pages that work without this file.
// - the range form submits when a preset is picked and shows dates only for "custom";
// - copy buttons for the snippets;
// - the live view and the cache panel refresh themselves while the tab is visible;
// - the banner form previews the image URL as it is typed.
// No token or other secret is ever kept here: sign-in is a server-side session.
"use strict";

(function () {
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

  // Replace a section with its fresh rendering from data-refresh-url, every data-interval s.
  function keepFresh(section) {
    const seconds = Number(section.dataset.interval) || 10;
    const url = section.dataset.refreshUrl;
    let current = section;
    const refresh = async () => {
      const response = await fetch(url, { headers: { Accept: "text/html" } });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      const next = fresh.body.firstElementChild;
      if (!next) return;
      // Keep what the reader opened (a details table) open.
      const open = [...current.querySelectorAll("details[open] summary")].map((s) => s.textContent);
      for (const d of next.querySelectorAll("details")) {
        if (open.includes(d.querySelector("summary").textContent)) d.open = true;
      }
      const imported = document.importNode(next, true);
      current.replaceWith(imported);
      current = imported;
    };
    window.setInterval(() => {
      if (document.visibilityState === "visible") refresh().catch(() => {});
    }, seconds * 1000);
  }

  function setupPreview() {
    const source = document.querySelector("[data-preview-source]");
    const image = document.querySelector("[data-preview]");
    if (!source || !image) return;
    source.addEventListener("change", () => {
      const url = source.value.trim();
      if (url.startsWith("https://")) image.src = url;
    });
  }

  document.querySelectorAll("[data-range-form]").forEach(setupRange);
  setupCopy();
  setupPreview();
  document.querySelectorAll("[data-refresh-url]").forEach(keepFresh);
})();
