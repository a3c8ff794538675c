// Leaving the lobby or the room is a choice the page confirms: the Back button asks first (a history entry
// stands guard), and closing the tab or reloading asks the browser's own question.
import { leave } from "./lobby.js";

/** @typedef {import("./state.js").RoomPageState} RoomPageState */

/** @param {RoomPageState} state */
const inside = (state) => state.phase === "lobby" || state.phase === "room";

/**
 * Wire the guards once; `armGuard` is then called whenever the page may have entered the lobby or the room.
 * @param {RoomPageState} state
 */
export function wireLeaveGuards(state) {
  window.addEventListener("beforeunload", (event) => {
    if (!inside(state)) return;
    event.preventDefault();
    event.returnValue = ""; // older browsers show their question only with a value set
  });
  window.addEventListener("popstate", async () => {
    if (!state.historyGuard || !inside(state)) return;
    state.historyGuard = false; // the guard entry was just used up
    if (/** @type {HTMLDialogElement} */ (document.getElementById("dialog")).open) {
      armGuard(state); // another question is open: Back waits until it is answered
      return;
    }
    const left = await leave(state);
    if (left) history.back(); // where Back was going
    else armGuard(state);
  });
}

/**
 * Stand a history entry in front of the room, so that Back first asks.
 * @param {RoomPageState} state
 */
export function armGuard(state) {
  if (state.historyGuard || !inside(state)) return;
  history.pushState({ roomGuard: true }, "", location.pathname + location.search);
  state.historyGuard = true;
}
