// The page's live connection: the change stream opened and kept, a visible state beside the page's head,
// and the refetch it triggers (one at a time; changes that arrive meanwhile cause one more).
import { openChangeFeed } from "../lib/changes.js";
import { h } from "./dom.js";

/**
 * Start the live connection. `refetch(event)` reloads what the page shows; it is called for "ready"
 * (each (re)connection: whatever changed while away), "case_changed", "resync" and "access_revoked".
 * Returns `{badge, close}`: the badge is one node the page places in its head on every render.
 */
export function liveConnection(page, { token = null, refetch }) {
  let state = "connecting";
  const dot = h("span", { class: "live-dot", "aria-hidden": "true" });
  const label = h("span", { class: "live-text" });
  const badge = h("span", { class: "live-state", role: "status", testid: "live-state" }, dot, label);

  function draw() {
    const { t } = page;
    badge.dataset.state = state;
    label.textContent = t(`live.${state}`);
    badge.setAttribute("aria-label", t("live.label", { state: t(`live.${state}`) }));
    badge.title = t(`live.${state}.hint`);
  }

  let running = null;
  let pending = null;
  function run(event) {
    if (running) {
      pending = event;
      return;
    }
    running = Promise.resolve(refetch(event)).catch(() => {}).finally(() => {
      running = null;
      if (pending) {
        const next = pending;
        pending = null;
        run(next);
      }
    });
  }

  const feed = openChangeFeed({
    token,
    onEvent: (event) => run(event),
    onState: (next) => {
      state = next;
      draw();
    },
  });
  page.onLanguage(draw);
  draw();
  return { badge, close: () => feed.close() };
}
