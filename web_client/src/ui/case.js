// Pieces of a case shown on both the party's page and the desk: state, progress, a session.
import { formatDateTime } from "../lib/dates.js";
import { h } from "./dom.js";

const STEPS = ["apply", "review", "schedule", "mediate", "agree", "close"];
// The step each state is at (the steps before it are done).
const CURRENT = { submitted: 1, accepted: 2, scheduled: 3, rejected: 1, closed: 6 };

export function stateBadge(t, state, testid = "case-state") {
  return h("span", { class: `badge badge-${state}`, testid, dataset: { state }, text: t(`state.${state}`) });
}

/**
 * The six steps of the mediation process, marked done / current / to do for `state`; in a
 * scheduled case, a drafted agreement means "agree" is under way and a signed one that it is done.
 */
export function progress(t, state, { agreementState = null } = {}) {
  let current = CURRENT[state] ?? 0;
  if (state === "scheduled" && agreementState) current = agreementState === "signed" ? 5 : 4;
  return h("ol", { class: "progress", testid: "progress", "aria-label": t("progress.label") },
    STEPS.map((step, i) => {
      const status = i < current ? "done" : i === current ? (state === "rejected" ? "stopped" : "current") : "todo";
      return h("li", { class: `progress-step is-${status}`, "aria-current": status === "current" ? "step" : null },
        h("span", { class: "progress-dot", "aria-hidden": "true", text: status === "done" ? "✓" : String(i + 1) }),
        h("span", { class: "progress-label", text: t(`progress.${step}`) }));
    }));
}

/** One proposed, confirmed or cancelled session time, with a note and actions. */
/** How long after its scheduled end a session's room is still offered (a mediation may run over). */
const ROOM_GRACE_MS = 3 * 60 * 60 * 1000;

/**
 * The one confirmed session whose room the pages offer now: the earliest that has not ended (by its
 * schedule, with ROOM_GRACE_MS to run over); null when none. Earlier, rescheduled sessions get no button.
 */
export function roomSession(sessions, now = Date.now()) {
  const open = sessions.filter((s) => s.state === "confirmed"
    && Date.parse(s.starts_at) + s.duration_minutes * 60_000 + ROOM_GRACE_MS > now);
  open.sort((a, b) => Date.parse(a.starts_at) - Date.parse(b.starts_at));
  return open[0] ?? null;
}

export function sessionSummary(t, session, { note = null, actions = [], extra = null, testid = "session" } = {}) {
  return h("li", { class: ["session", `session-${session.state}`], testid, dataset: { sessionId: session.session_id, state: session.state } },
    h("div", { class: "session-main" },
      h("p", { class: "session-time", text: formatDateTime(session.starts_at, t.lang, { zone: true }) }),
      h("p", { class: "muted small", text: t("session.meta", { minutes: session.duration_minutes, mode: t(`mode.${session.mode}`) }) }),
      note && h("p", { class: "session-note", text: note }),
      extra),
    h("div", { class: "session-side" },
      h("span", { class: `badge badge-${session.state}`, testid: "session-state", text: t(`sessionState.${session.state}`) }),
      actions.length ? h("div", { class: "actions" }, actions) : null));
}
