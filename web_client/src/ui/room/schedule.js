// The session's schedule, first thing in the waiting view: when it starts (in the user's language and time
// zone, with a countdown) and the full case number. Joining a day early says so.
import { createApi } from "../../lib/api.js";
import { calendarDaysBetween, parseTime, untilStart } from "../../lib/room/time.js";
import { $ } from "../dom.js";

/** @typedef {import("./state.js").RoomPageState} RoomPageState */
/** @typedef {import("../../lib/room/types.js").Schedule} Schedule */

// Further away than this, the lobby says the session has not started yet and one may come back later.
const EARLY_MINUTES = 15;

/**
 * A party's schedule before it joins: its join link opens its case view, which holds that link's session only.
 * @param {RoomPageState} state
 */
export async function loadPartySchedule(state) {
  if (!state.token) return;
  try {
    const view = await createApi({ token: state.token }).get("/api/party/case");
    const session = Array.isArray(view.sessions) ? view.sessions[0] : null;
    state.caseId = typeof view.case_id === "string" ? view.case_id : null;
    if (session) {
      state.prejoinSchedule = { case_number: view.case_number, starts_at: session.starts_at, duration_minutes: session.duration_minutes };
    }
  } catch {
    return; // the socket says what is wrong with the link; the schedule comes with join_room
  }
  renderSchedule(state);
}

/**
 * @param {RoomPageState} state
 * @returns {Schedule | null}
 */
function currentSchedule(state) {
  const joined = state.self && state.self.schedule && typeof state.self.schedule === "object" ? state.self.schedule : null;
  return joined || state.prejoinSchedule || null;
}

/** @param {RoomPageState} state */
export function renderSchedule(state) {
  const box = $("lobby-schedule");
  const schedule = currentSchedule(state);
  const start = schedule ? parseTime(schedule.starts_at) : null;
  const caseNumber = schedule && typeof schedule.case_number === "string" ? schedule.case_number : "";
  box.hidden = !start && !caseNumber;
  if (box.hidden) return;
  const t = state.t;
  $("schedule-case").textContent = caseNumber;
  $("schedule-case-row").hidden = !caseNumber;
  const when = $("schedule-start");
  if (start) {
    const days = calendarDaysBetween(new Date(), start);
    const relative = Math.abs(days) <= 1 ? new Intl.RelativeTimeFormat(state.lang, { numeric: "auto" }).format(days, "day") : "";
    const full = new Intl.DateTimeFormat(state.lang, {
      year: "numeric", month: "long", day: "numeric", weekday: "long", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
      timeZoneName: "short",
    }).format(start);
    when.textContent = relative ? `${relative} · ${full}` : full;
    when.setAttribute("datetime", start.toISOString());
  } else {
    when.textContent = "";
    when.removeAttribute("datetime");
  }
  tickSchedule(state);
}

/**
 * The countdown, once a second with the header's clock.
 * @param {RoomPageState} state
 */
export function tickSchedule(state) {
  const schedule = currentSchedule(state);
  const start = schedule ? parseTime(schedule.starts_at) : null;
  const countdown = $("schedule-countdown");
  const early = $("schedule-early");
  if (!start || state.phase === "room" || state.phase === "over") {
    countdown.textContent = "";
    early.hidden = true;
    return;
  }
  const t = state.t;
  const minutes = typeof schedule?.duration_minutes === "number" ? schedule.duration_minutes : null;
  const left = untilStart(start, minutes, Date.now());
  countdown.dataset.phase = left.phase;
  let text;
  if (left.phase === "after") text = t("schedule.past");
  else if (left.phase === "during") text = t("schedule.started", { minutes: left.totalMinutes });
  else if (left.days > 0) text = t("schedule.inDays", { days: left.days, hours: left.hours });
  else if (left.hours > 0) text = t("schedule.inHours", { hours: left.hours, minutes: left.minutes });
  else if (left.minutes > 1) text = t("schedule.inMinutes", { minutes: left.minutes });
  else text = t("schedule.soon");
  if (countdown.textContent !== text) countdown.textContent = text;
  early.hidden = !(left.phase === "before" && left.totalMinutes > EARLY_MINUTES);
  early.textContent = early.hidden ? "" : t(state.staff ? "schedule.earlyStaff" : "schedule.early");
}
