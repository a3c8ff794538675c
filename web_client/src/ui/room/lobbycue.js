// The mediator's cue that someone waits in the lobby: the tab's title counts them ("(1) 等候中 · …"),
// so a mediator in another tab sees it, and a short generated chime plays when someone new starts
// waiting. The chime can be turned off (remembered in this browser); both stop once everyone
// waiting has been admitted or refused.
import { $, h } from "../dom.js";
import { icon } from "./icons.js";
import { LOBBY_SOUND_KEY, localStore, playNotes, remember, soundContext } from "./meeting.js";
import { isMediator, log, participants, selfId } from "./state.js";

/** @typedef {import("./state.js").RoomPageState} RoomPageState */

// Two soft notes, falling: noticeable without being an alarm.
const CHIME = /** @type {Array<[number, number]>} */ ([[880, 0.16], [659.25, 0.28]]);

/**
 * The title, the chime for newcomers, and the chime switch.
 * @param {RoomPageState} state
 */
export function renderLobbyCue(state) {
  const mediator = isMediator(state) && state.phase === "room";
  const waiting = mediator
    ? participants(state).filter((p) => p.status === "lobby" && p.participant_id !== selfId(state)).map((p) => p.participant_id)
    : [];
  const base = state.t("app.title");
  const title = waiting.length ? state.t("lobbycue.title", { n: waiting.length, title: base }) : base;
  if (document.title !== title) document.title = title;
  const seen = state.meeting.cueSeen;
  const newcomer = waiting.some((id) => !seen.has(id));
  state.meeting.cueSeen = new Set(waiting);
  state.meeting.lobbyWaiting = waiting.length;
  if (newcomer && state.meeting.lobbySound) chime(state);
  renderSoundSwitch(state, mediator);
}

/**
 * @param {RoomPageState} state
 * @param {boolean} shown
 */
function renderSoundSwitch(state, shown) {
  let button = /** @type {HTMLButtonElement | null} */ ($("lobby-sound"));
  if (!button) {
    if (!shown) return;
    button = /** @type {HTMLButtonElement} */ (h("button", { type: "button", class: "btn btn-secondary btn-lobby-sound", id: "lobby-sound",
      testid: "lobby-sound", on: { click: () => toggleSound(state) } },
    h("span", { class: "btn-lobby-sound-icon", "aria-hidden": "true" }),
    h("span", { class: "btn-lobby-sound-label" })));
    $("lock-room").before(button);
  }
  button.hidden = !shown;
  const on = state.meeting.lobbySound;
  button.setAttribute("aria-pressed", String(on));
  button.dataset.on = String(on);
  /** @type {HTMLElement} */ (button.querySelector(".btn-lobby-sound-icon")).replaceChildren(icon(on ? "bell" : "bellOff"));
  /** @type {HTMLElement} */ (button.querySelector(".btn-lobby-sound-label")).textContent = state.t(on ? "lobbycue.soundOn" : "lobbycue.soundOff");
}

/** @param {RoomPageState} state */
function toggleSound(state) {
  state.meeting.lobbySound = !state.meeting.lobbySound;
  remember(localStore(), LOBBY_SOUND_KEY, state.meeting.lobbySound ? null : "0");
  renderSoundSwitch(state, true);
}

/** @param {RoomPageState} state */
function chime(state) {
  try {
    const ctx = soundContext(state);
    if (!ctx) return;
    playNotes(ctx, ctx.destination, CHIME, 0.18);
    const button = $("lobby-sound");
    state.meeting.chimes += 1;
    if (button) button.dataset.chimes = String(state.meeting.chimes);
  } catch (err) {
    log(state, "lobby chime failed", err);
  }
}
