// The planned end of the session (join_room's `schedule`: starts_at + duration_minutes): everyone in
// the room is told, politely and once each, when about 10 and 5 minutes remain and when the planned
// time is over (a live region reads it out; a notice shows it). The mediator's header shows the time
// remaining, or how far over it is.
import { formatDuration, parseTime } from "../../lib/room/time.js";
import { $, h } from "../dom.js";
import { remember, sessionStore, stored } from "./meeting.js";
import { notify } from "./notices.js";
import { isMediator } from "./state.js";

/** @typedef {import("./state.js").RoomPageState} RoomPageState */

/** The warnings, from the earliest: minutes before the planned end (0: the end itself). */
const WARNINGS = /** @type {const} */ ([["10", 10], ["5", 5], ["over", 0]]);

/**
 * The planned end in milliseconds since the epoch, or null without a usable schedule.
 * @param {RoomPageState} state
 * @returns {number | null}
 */
export function plannedEnd(state) {
  const schedule = state.self && state.self.schedule && typeof state.self.schedule === "object" ? state.self.schedule : null;
  const start = schedule ? parseTime(schedule.starts_at) : null;
  const minutes = schedule ? schedule.duration_minutes : null;
  if (!start || typeof minutes !== "number" || !Number.isInteger(minutes) || minutes <= 0) return null;
  return start.getTime() + minutes * 60000;
}

/**
 * Which warning is due `left` ms before the end: the latest one whose time has come, or null.
 * @param {number} left
 * @returns {"10" | "5" | "over" | null}
 */
export function dueWarning(left) {
  let due = null;
  for (const [name, minutes] of WARNINGS) if (left <= minutes * 60000) due = name;
  return due;
}

/** @param {RoomPageState} state */
function warnedKey(state) {
  return `mediation.timeWarned.${state.sessionId || (state.self && state.self.session_id) || ""}`;
}

/**
 * Once a second (with the header's clock): the remaining time in the mediator's header, and any
 * warning now due.
 * @param {RoomPageState} state
 */
export function tickMeetingClock(state) {
  const end = plannedEnd(state);
  const item = remainingItem(state);
  const inRoom = state.phase === "room";
  item.hidden = !(end && inRoom && isMediator(state));
  if (!end || !inRoom) return;
  const left = end - Date.now();
  if (!item.hidden) {
    const over = left <= 0;
    item.dataset.state = over ? "over" : left <= 5 * 60000 ? "soon" : "ok";
    /** @type {HTMLElement} */ (item.querySelector("dt")).textContent = state.t(over ? "time.overrun" : "time.remaining");
    $("meta-remaining-value").textContent = formatDuration(Math.abs(left) + (over ? 0 : 999));
  }
  const due = dueWarning(left);
  if (!due) return;
  if (!state.meeting.warned.size) {
    for (const name of (stored(sessionStore(), warnedKey(state)) || "").split(",")) if (name) state.meeting.warned.add(name);
  }
  if (state.meeting.warned.has(due)) return;
  // Joining late: only the latest warning is given; the earlier ones count as given.
  for (const [name] of WARNINGS) {
    state.meeting.warned.add(name);
    if (name === due) break;
  }
  remember(sessionStore(), warnedKey(state), [...state.meeting.warned].join(","));
  announce(state, due);
}

/**
 * @param {RoomPageState} state
 * @param {"10" | "5" | "over"} due
 */
function announce(state, due) {
  const key = due === "10" ? "time.warn10" : due === "5" ? "time.warn5" : isMediator(state) ? "time.warnOverMediator" : "time.warnOver";
  const text = state.t(key);
  // The live region stands in the page before its text changes, so screen readers read it out.
  $("time-announcer").textContent = text;
  const notice = notify(state, text, { tone: due === "over" ? "warning" : "info", key: "time-warning", testid: "time-warning", timeout: 0 });
  notice.dataset.stage = due;
  notice.removeAttribute("role"); // read once, by the announcer
}

/**
 * The header's "remaining" item and the announcer, made once.
 * @param {RoomPageState} state
 * @returns {HTMLElement}
 */
function remainingItem(state) {
  let item = $("meta-remaining");
  if (!item) {
    item = h("div", { class: "meta-item", id: "meta-remaining", hidden: true },
      h("dt", { text: state.t("time.remaining") }),
      h("dd", { id: "meta-remaining-value", testid: "session-remaining" }));
    $("session-meta").append(item);
    document.body.append(h("p", { class: "visually-hidden", id: "time-announcer", testid: "time-announcer", role: "status", "aria-live": "polite" }));
  }
  return item;
}
