// The self-view on a phone: the local tile folds into a small "my video" pill and back, by a tap,
// the keyboard or a screen reader (one button, with its state in aria-expanded). The choice lasts for
// the browser tab's session. On a wide screen the tile stays as it is (the button is not shown).
import { h } from "../dom.js";
import { icon } from "./icons.js";
import { SELFVIEW_KEY, remember, sessionStore } from "./meeting.js";

/** @typedef {import("./state.js").RoomPageState} RoomPageState */

/**
 * The fold button on the local tile, and the tile's folded state.
 * @param {RoomPageState} state
 */
export function renderSelfView(state) {
  const tile = state.tiles.get("self");
  if (!tile) return;
  let button = /** @type {HTMLButtonElement | null} */ (tile.root.querySelector(".selfview-toggle"));
  if (!button) {
    button = /** @type {HTMLButtonElement} */ (h("button", { type: "button", class: "selfview-toggle", testid: "selfview-toggle",
      on: { click: () => toggleSelfView(state) } },
    h("span", { class: "selfview-icon", "aria-hidden": "true" }),
    h("span", { class: "selfview-pill-text" })));
    tile.root.append(button);
  }
  const inRoom = state.phase === "room" && state.mode === "video";
  const folded = inRoom && state.meeting.selfMinimised;
  button.hidden = !inRoom;
  tile.root.dataset.minimised = String(folded);
  button.setAttribute("aria-expanded", String(!folded));
  button.setAttribute("aria-label", state.t(folded ? "selfview.restore" : "selfview.minimise"));
  button.title = state.t(folded ? "selfview.restore" : "selfview.minimise");
  /** @type {HTMLElement} */ (button.querySelector(".selfview-pill-text")).textContent = folded ? state.t("selfview.pill") : "";
  /** @type {HTMLElement} */ (button.querySelector(".selfview-icon")).replaceChildren(icon(folded ? "cam" : "minimise"));
}

/**
 * @param {RoomPageState} state
 */
function toggleSelfView(state) {
  state.meeting.selfMinimised = !state.meeting.selfMinimised;
  remember(sessionStore(), SELFVIEW_KEY, state.meeting.selfMinimised ? "1" : null);
  renderSelfView(state);
  // The same button stays under the finger and keeps the focus, now saying the other thing.
  const button = /** @type {HTMLElement | null} */ (state.tiles.get("self")?.root.querySelector(".selfview-toggle"));
  button?.focus();
}
