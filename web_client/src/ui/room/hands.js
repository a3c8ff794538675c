// Raised hands on the room page (docs/protocol.md, "Screen sharing and raised hands"): a party's
// control, a badge on each raised hand's tile, and the mediator's queue (oldest first) with a way to
// lower each hand. The room holds the queue; this page only draws it.
import { $, h } from "../dom.js";
import { icon } from "./icons.js";
import { act, notify } from "./notices.js";
import { isMediator, isParty, nameOf, selfId } from "./state.js";

/** @typedef {import("./state.js").RoomPageState} RoomPageState */

/** @type {Set<string>} the hands drawn last, to announce new ones to the mediator */
let shown = new Set();

/**
 * The raised hands as the room last said, oldest first.
 * @param {RoomPageState} state
 * @returns {string[]}
 */
function hands(state) {
  const list = state.room && Array.isArray(state.room.hands) ? state.room.hands : [];
  return list.filter((id) => typeof id === "string");
}

/** @param {RoomPageState} state */
export function toggleHand(state) {
  const me = selfId(state);
  const raised = Boolean(me && hands(state).includes(me));
  act(state, async () => state.client?.raiseHand(!raised));
}

/** `hand_lowered`: the mediator lowered our hand. @param {RoomPageState} state */
export function onHandLowered(state) {
  notify(state, state.t("hand.loweredByMediator"), { key: "hand", testid: "hand-lowered" });
}

/** @param {RoomPageState} state */
export function renderHands(state) {
  const queue = state.phase === "room" ? hands(state) : [];
  const me = selfId(state);
  const button = $("raise-hand");
  const mine = Boolean(me && queue.includes(me));
  button.hidden = !(state.phase === "room" && state.status === "admitted" && isParty(state));
  button.dataset.active = String(mine);
  button.setAttribute("aria-pressed", String(mine));
  button.querySelector(".ctl-icon")?.replaceChildren(icon("hand"));
  $("raise-hand-label").textContent = state.t(mine ? "hand.lower" : "hand.raise");

  // A badge on each raised hand's tile, with its place in the queue.
  for (const [id, tile] of state.tiles) {
    const pid = id === "self" ? me : id;
    const place = pid ? queue.indexOf(pid) : -1;
    let badge = /** @type {HTMLElement | null} */ (tile.root.querySelector(".tile-hand"));
    if (place < 0) {
      badge?.remove();
      delete tile.root.dataset.hand;
      continue;
    }
    if (!badge) {
      badge = h("span", { class: "tile-hand", testid: "tile-hand" });
      tile.root.append(badge);
    }
    badge.replaceChildren(icon("hand"), h("span", { text: String(place + 1) }));
    badge.setAttribute("title", state.t("hand.raised"));
    tile.root.dataset.hand = String(place + 1);
  }

  const panel = $("hand-queue");
  const mediator = isMediator(state);
  panel.hidden = !(mediator && queue.length > 0);
  $("hand-queue-count").textContent = String(queue.length);
  const list = $("hand-queue-list");
  list.replaceChildren(...queue.map((id) => {
    const name = nameOf(state, id);
    return h("li", { class: "hand-item", dataset: { participantId: id }, testid: "hand-item" },
      h("span", { class: "hand-name", text: name }),
      h("button", { type: "button", class: "btn btn-small btn-on-dark", testid: "lower-hand", "aria-label": state.t("hand.lowerFor", { name }),
        dataset: { participantId: id }, on: { click: () => act(state, async () => state.client?.lowerHand(id)) } },
      state.t("hand.lowerShort")));
  }));
  // The mediator hears of each new hand once (a polite status message), not of every redraw.
  if (mediator) {
    for (const id of queue) {
      if (!shown.has(id)) notify(state, state.t("hand.raisedBy", { name: nameOf(state, id) }), { key: `hand-${id}`, testid: "hand-raised" });
    }
  }
  shown = new Set(queue);
}
