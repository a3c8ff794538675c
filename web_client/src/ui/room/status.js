// The status banner (blocking > connection > media) and the connection indicator.
import { $, h } from "../dom.js";
import { icon } from "./icons.js";

/**
 * @typedef {import("./state.js").RoomPageState} RoomPageState
 * @typedef {{label: string, testid: string, primary?: boolean, run: () => void}} StatusAction
 * @typedef {{state: string, title?: string, detail?: string, reason?: string, busy?: boolean, actions?: StatusAction[]}} StatusInfo
 */

/** The status banner's states (its `data-state`): tone, whether it blocks the page, icon and texts. */
const STATUS = {
  "bad-link": { tone: "error", blocking: true, icon: "alert", title: "status.badLink.title", detail: "status.badLink.detail" },
  "not-participant": { tone: "error", blocking: true, icon: "alert", title: "status.notParticipant.title", detail: "status.notParticipant.detail" },
  "bad-session": { tone: "error", blocking: true, icon: "alert", title: "status.badSession.title", detail: "status.badSession.detail" },
  removed: { tone: "error", blocking: true, icon: "door", title: "status.removed.title", detail: "status.removed.detail" },
  refused: { tone: "error", blocking: true, icon: "door", title: "status.refused.title", detail: "status.refused.detail" },
  ended: { tone: "info", blocking: true, icon: "check", title: "status.ended.title", detail: "status.ended.detail" },
  left: { tone: "info", blocking: true, icon: "door", title: "status.left.title", detail: "status.left.detail" },
  locked: { tone: "warning", blocking: true, icon: "lock", title: "status.locked.title", detail: "status.locked.detail" },
  "rate-limited": { tone: "warning", blocking: true, icon: "alert", title: "status.rateLimited.title", detail: "status.rateLimited.detail" },
  replaced: { tone: "info", blocking: true, icon: "door", title: "status.replaced.title", detail: "status.replaced.detail" },
  "device-replaced": { tone: "warning", blocking: true, icon: "door", title: "status.deviceReplaced.title", detail: "status.deviceReplaced.detail" },
  unavailable: { tone: "warning", blocking: true, icon: "alert", title: "status.unavailable.title", detail: "status.unavailable.detail" },
  "connection-refused": { tone: "error", blocking: true, icon: "alert", title: "status.refusedConnection.title", detail: "status.refusedConnection.detail" },
  unsupported: { tone: "error", blocking: false, icon: "alert", title: "status.unsupported.title", detail: "status.unsupported.detail" },
  error: { tone: "error", blocking: true, icon: "alert", title: "status.error.title", detail: "status.error.detail" },
  disconnected: { tone: "warning", blocking: false, icon: "wifiOff", title: "status.disconnected.title", detail: "status.disconnected.reconnecting" },
  "permission-denied": { tone: "warning", blocking: false, icon: "camOff", title: "status.permissionDenied.title", detail: "status.permissionDenied.detail" },
  "media-unavailable": { tone: "warning", blocking: false, icon: "camOff", title: "status.mediaUnavailable.title", detail: "status.mediaUnavailable.detail" },
};

/** code of a refused connection / failed join -> status state */
export const CODE_STATES = {
  bad_token: "bad-link",
  not_a_participant: "not-participant",
  bad_session: "bad-session",
  removed: "removed",
  room_locked: "locked",
  session_ended: "ended",
  rate_limited: "rate-limited",
  connect_refused: "connection-refused",
  unavailable: "unavailable",
};

/**
 * category: block | conn | state.media. info: {state, detail?, reason?, busy?, actions?: [{label, testid, primary, run}]}
 *
 * Show a status; the banner shows the first set of block > conn > media.
 * @param {RoomPageState} state
 * @param {"block" | "conn" | "media"} category
 * @param {StatusInfo} info
 */
export function setStatus(state, category, info) {
  state.statuses[category] = info;
  renderStatus(state);
}

/**
 * @param {RoomPageState} state
 * @param {"block" | "conn" | "media"} category
 */
export function clearStatus(state, category) {
  if (!state.statuses[category]) return;
  state.statuses[category] = null;
  renderStatus(state);
}

/** @param {RoomPageState} state */
export function renderStatus(state) {
  const info = state.statuses.block || state.statuses.conn || state.statuses.media;
  const box = $("status");
  if (!info) {
    box.hidden = true;
    box.dataset.state = "";
    return;
  }
  const def = STATUS[info.state] || STATUS.error;
  const t = state.t;
  box.hidden = false;
  box.dataset.state = info.state;
  box.dataset.tone = def.tone;
  box.dataset.blocking = String(Boolean(def.blocking && info === state.statuses.block));
  box.dataset.busy = String(Boolean(info.busy));
  const iconBox = box.querySelector(".status-icon");
  iconBox.replaceChildren(info.busy ? "" : icon(def.icon));
  $("status-title").textContent = t(info.title || def.title);
  const detail = [t(info.detail || def.detail)];
  if (info.reason) detail.push(t("status.reason", { reason: info.reason }));
  $("status-detail").textContent = detail.join(" ");
  const actions = $("status-actions");
  actions.replaceChildren(
    ...(info.actions || []).map((action) =>
      h("button", { type: "button", class: `btn ${action.primary ? "btn-primary" : "btn-secondary"}`, text: t(action.label),
        testid: action.testid, on: { click: action.run } }),
    ),
  );
  document.body.dataset.phase = state.statuses.block && def.blocking ? "over" : state.phase;
}

/**
 * @param {RoomPageState} state
 * @param {string} stateName
 * @param {Partial<StatusInfo>} [extra]
 */
export function blockWith(state, stateName, extra = {}) {
  setStatus(state, "block", { state: stateName, ...extra });
}

/**
 * The connection indicator: idle | connecting | online | reconnecting | offline.
 * @param {RoomPageState} state
 * @param {string} connState
 */
export function setConnection(state, connState) {
  const box = $("connection");
  box.dataset.state = connState;
  $("connection-label").textContent = state.t(`connection.${connState}`);
}
