// incidentflow pages: countdowns, and live sections refreshed when the server's ETag changes.
// Shipped in the package; no build step. The page works without it (reload to refresh).
"use strict";

(function () {
  function shown(seconds) {
    let left = Math.abs(Math.round(seconds));
    const days = Math.floor(left / 86400); left -= days * 86400;
    const hours = Math.floor(left / 3600); left -= hours * 3600;
    const minutes = Math.floor(left / 60); const secs = left - minutes * 60;
    if (days) return days + "d " + hours + "h";
    if (hours) return hours + "h " + minutes + "m";
    return minutes + "m " + secs + "s";
  }

  let loadedAt = Date.now();
  function tick() {
    const elapsed = (Date.now() - loadedAt) / 1000;
    for (const el of document.querySelectorAll("[data-countdown]")) {
      const seconds = Number(el.dataset.seconds) - elapsed;
      const left = el.querySelector(".left");
      if (!left) continue;
      left.textContent = seconds >= 0 ? shown(seconds) + " left" : "overdue by " + shown(seconds);
      el.classList.toggle("overdue", seconds < 0);
      el.classList.toggle("open", seconds >= 0);
    }
  }

  async function refresh() {
    const page = document.body.dataset.pageUrl || window.location.href;
    const response = await fetch(page, { cache: "no-store", headers: { "Accept": "text/html" } });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const el of document.querySelectorAll("[data-live]")) {
      const replacement = fresh.getElementById(el.id);
      // Never pull a form out from under someone typing into it.
      if (!replacement || el.contains(document.activeElement)) continue;
      el.replaceWith(document.importNode(replacement, true));
    }
    loadedAt = Date.now();
    tick();
  }

  function poll() {
    const body = document.body;
    const url = body.dataset.stateUrl;
    if (!url) return;
    let etag = body.dataset.etag;
    const every = Number(body.dataset.pollMs) || 2000;
    async function ask() {
      try {
        const response = await fetch(url, { cache: "no-store", headers: { "If-None-Match": etag } });
        if (response.status === 200) {
          const next = response.headers.get("ETag");
          if (next && next !== etag) {
            etag = next;
            body.dataset.etag = next;
            await refresh();
          }
        }
      } catch (error) {
        // The server is away for a moment: ask again next time.
      }
      window.setTimeout(ask, every);
    }
    window.setTimeout(ask, every);
  }

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    window.setInterval(tick, 1000);
    poll();
  });
})();
