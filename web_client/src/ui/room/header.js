// The header's session facts: case number, scheduled start, planned duration, mode, elapsed time.
import { formatDuration, parseTime } from "../../lib/room/time.js";
import { $ } from "../dom.js";

/** @typedef {import("./state.js").RoomPageState} RoomPageState */

/**
 * The header: case number, scheduled start (local time) and planned duration from join_room's
 * `schedule`; the session's mode and elapsed time.
 * @param {RoomPageState} state
 */
export function renderHeader(state) {
  const t = state.t;
  const self = state.self;
  /** @type {import("../../lib/room/types.js").Schedule} */
  const schedule = self && self.schedule && typeof self.schedule === "object" ? self.schedule : {};
  const caseNumber = typeof schedule.case_number === "string" && schedule.case_number ? schedule.case_number : null;
  const start = parseTime(schedule.starts_at);
  const duration = schedule.duration_minutes;
  const minutes = typeof duration === "number" && Number.isInteger(duration) && duration > 0 ? duration : null;
  $("session-meta").hidden = !self;
  $("meta-case").hidden = !caseNumber;
  $("meta-case-value").textContent = caseNumber || "";
  $("meta-scheduled").hidden = !start;
  const scheduled = $("meta-scheduled-value");
  if (start) {
    /** @type {Intl.DateTimeFormatOptions} */
    const time = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    scheduled.textContent = new Intl.DateTimeFormat(state.lang, { month: "short", day: "numeric", weekday: "short", ...time }).format(start);
    // The full local date with its time zone, for whoever wonders which clock it is.
    scheduled.title = new Intl.DateTimeFormat(state.lang, {
      year: "numeric", month: "long", day: "numeric", weekday: "long", ...time, timeZoneName: "short",
    }).format(start);
    scheduled.dataset.startsAt = start.toISOString();
  } else {
    scheduled.textContent = "";
    scheduled.removeAttribute("title");
  }
  $("meta-duration").hidden = !minutes;
  $("meta-duration-value").textContent = minutes ? t("meta.durationValue", { minutes }) : "";
  $("meta-mode").hidden = !state.mode;
  $("meta-mode-value").textContent = state.mode ? t(`mode.${state.mode}`) : "";
  $("meta-elapsed").hidden = !state.joinedAt;
  tickTimer(state);
}

/** @param {RoomPageState} state */
export function tickTimer(state) {
  if (!state.joinedAt) return;
  $("meta-elapsed-value").textContent = formatDuration((state.endedAt || Date.now()) - state.joinedAt);
}
