// Progressive enhancement only: every form works without this script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // A "select every row" box for the bulk form; hidden until the script runs.
  for (const all of document.querySelectorAll("input.select-all")) {
    all.hidden = false;
    const form = all.closest("form");
    all.addEventListener("change", () => {
      for (const box of form.querySelectorAll("input[name=id]")) box.checked = all.checked;
    });
  }
  // Ask before destructive actions; without the script they run at once.
  document.addEventListener("submit", (event) => {
    const button = event.submitter;
    const question = button && button.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });
});

// Polling: a page served with `?refresh=N` (N bounded by the server) fetches
// itself every N seconds and swaps in its `[data-poll]` fragments by id. It
// skips while the tab is hidden and catches up when the tab is shown again.
document.addEventListener("DOMContentLoaded", () => {
  const seconds = Number(document.body.dataset.refresh);
  if (!(seconds >= 2)) return;
  let busy = false;
  const refresh = async () => {
    if (busy || document.visibilityState !== "visible") return;
    busy = true;
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin" });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const old of document.querySelectorAll("[data-poll][id]")) {
        const next = fresh.getElementById(old.id);
        if (next) old.replaceWith(document.importNode(next, true));
      }
      document.body.dataset.refreshed = String(Date.now());
    } catch (error) {
      // The store or the network is down: keep the page as it is, try again later.
    } finally {
      busy = false;
    }
  };
  window.setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", refresh);
});
