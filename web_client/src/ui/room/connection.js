// The room's connection: the credential from the address, the socket, and what every server
// notice does to the page; being out for good.
import { io } from "socket.io-client";
import { RoomClient } from "../../lib/room/protocol.js";
import { $ } from "../dom.js";
import { loadHistory, onMessageDeleted, onTyping, renderChatControls, stopTyping, upsertMessage } from "./chat.js";
import { renderRecording } from "./consent.js";
import { onKeysShared, reveal } from "./e2ee.js";
import { afterAdmission, leaveRoomView, onJoined, onRoomState, updateJoinButton } from "./lobby.js";
import { onMuteRequested, stopMedia } from "./media.js";
import { notify, notifyError } from "./notices.js";
import { forgetToken, keepToken, keptToken, log } from "./state.js";
import { blockWith, clearStatus, CODE_STATES, setConnection, setStatus } from "./status.js";
import { renderTiles } from "./tiles.js";
import { renderAll } from "./view.js";
import { onHandLowered } from "./hands.js";
import { onShareStopped } from "./screenshare.js";

/** @typedef {import("./state.js").RoomPageState} RoomPageState */

const LINK_RE = /^jln_[A-Za-z0-9_\-.~]{8,512}$/;
export const SESSION_RE = /^ses_[0-9a-f]{32}$/;

/**
 * The join link from the fragment (removed from the address bar at once; "" when malformed) or the
 * one this browser keeps (a reload, or /room opened in another tab), and `?session=`.
 * @param {RoomPageState} state
 * @returns {{token: string | null, session: string | null}}
 */
export function parseLocation(state) {
  const hash = location.hash.startsWith("#") ? location.hash.slice(1) : "";
  let token = null;
  if (hash) {
    token = LINK_RE.test(hash) ? hash : "";
    // The token never stays in the address bar (nor in history, nor in a Referer).
    history.replaceState(null, "", location.pathname + location.search);
  }
  if (token) keepToken(token);
  const session = state.params.get("session");
  if (token === null && !session) {
    const kept = keptToken();
    token = kept && LINK_RE.test(kept) ? kept : null;
  }
  return { token, session };
}

/**
 * Open the room's socket with the party's link or the staff session's cookie.
 * @param {RoomPageState} state
 */
export function connect(state) {
  const client = new RoomClient({ io: /** @type {any} */ (io) });
  state.client = client;
  wireClient(state, client);
  setConnection(state, "connecting");
  updateJoinButton(state);
  client.connect({ token: state.token, sessionId: state.sessionId }).catch((err) => onRefused(state, err.code));
  if (state.debug) {
    window.__room = {
      client,
      get mesh() {
        return state.mesh;
      },
      state,
      media: state.media,
    };
  }
}

/**
 * A refused connection or join: retry for what may pass later, otherwise out for good.
 * @param {RoomPageState} state
 * @param {string} code
 */
export function onRefused(state, code) {
  const stateName = CODE_STATES[code] || "error";
  if (["locked", "rate-limited", "connection-refused", "unavailable"].includes(stateName)) {
    state.joining = false;
    blockWith(state, stateName, {
      actions: [{ label: "action.retry", primary: true, testid: "retry", run: () => retryConnect(state) }, wayBack(state, stateName)],
    });
    setConnection(state, "offline");
    updateJoinButton(state);
    return;
  }
  terminate(state, stateName);
}

/** @param {RoomPageState} state */
function retryConnect(state) {
  clearStatus(state, "block");
  state.phase = state.self ? state.phase : "prejoin";
  renderAll(state);
  setConnection(state, "connecting");
  state.client.reconnect().catch((err) => onRefused(state, err.code));
}

/**
 * The page's reactions to the client's events and the server's notices.
 * @param {RoomPageState} state
 * @param {RoomClient} client
 */
function wireClient(state, client) {
  client.on("connected", () => {
    state.everConnected = true;
    setConnection(state, "online");
    clearStatus(state, "conn");
    updateJoinButton(state);
  });
  client.on("disconnected", ({ willReconnect }) => {
    if (client.terminated) return;
    stopTyping(state, { send: false });
    setConnection(state, willReconnect ? "reconnecting" : "offline");
    setStatus(state, "conn", {
      state: "disconnected",
      busy: willReconnect,
      detail: willReconnect ? "status.disconnected.reconnecting" : "status.disconnected.manual",
      actions: willReconnect
        ? []
        : [{ label: "action.reconnect", primary: true, testid: "reconnect", run: () => retryConnect(state) }],
    });
    updateJoinButton(state);
    renderTiles(state);
  });
  client.on("reconnecting", () => setConnection(state, "reconnecting"));
  client.on("connect_error", (info) => {
    if (info.refused) {
      onRefused(state, info.code);
      return;
    }
    setConnection(state, state.everConnected ? "reconnecting" : "connecting");
    setStatus(state, "conn", {
      state: "disconnected",
      busy: true,
      title: state.everConnected ? "status.disconnected.title" : "status.unreachable.title",
      detail: state.everConnected ? "status.disconnected.reconnecting" : "status.unreachable.detail",
    });
  });
  client.on("joined", (result, options) => onJoined(state, result, options));
  client.on("rejoin_failed", (err) => {
    if (CODE_STATES[err.code]) onRefused(state, err.code);
    else notifyError(state, err);
  });
  client.on("room_state", (room) => onRoomState(state, room));
  client.on("admitted", () => {
    state.status = "admitted";
    notify(state, state.t("notice.admitted"), { key: "admission" });
    afterAdmission(state);
  });
  client.on("returned_to_lobby", ({ reason }) => {
    state.status = "lobby";
    const key = reason === "mediator_left" ? "notice.returned.mediator_left" : "notice.returned.mediator";
    notify(state, state.t(key), { tone: "warning", key: "admission" });
    leaveRoomView(state);
  });
  client.on("refused", ({ reason }) => terminate(state, "refused", { reason: typeof reason === "string" ? reason : "" }));
  client.on("removed", ({ reason }) => terminate(state, "removed", { reason: typeof reason === "string" ? reason : "" }));
  client.on("session_ended", () => terminate(state, "ended"));
  // The mediator let this participant's other device take its place.
  client.on("device_replaced", () => terminate(state, "device-replaced"));
  // The credential or the authority this socket entered with was revoked (docs/protocol.md, "Revocation").
  client.on("access_revoked", ({ code }) => terminate(state, CODE_STATES[code] || "error"));
  client.on("chat_message", (msg) => {
    reveal(state, msg).then((shown) => upsertMessage(state, shown));
  });
  client.on("keys_shared", (notice) => onKeysShared(state, notice));
  client.on("message_deleted", ({ seq }) => onMessageDeleted(state, seq));
  client.on("typing", (body) => onTyping(state, body));
  client.on("caucus_started", ({ members }) => {
    state.caucusExcluded = false;
    state.caucusMembers = Array.isArray(members) ? members : [];
    notify(state, state.t("caucus.started"), { key: "caucus" });
    renderAll(state);
  });
  client.on("caucus_in_progress", () => {
    state.caucusExcluded = true;
    state.caucusMembers = null;
    renderAll(state);
  });
  client.on("caucus_ended", () => {
    const wasInvolved = state.caucusExcluded || state.caucusMembers;
    state.caucusExcluded = false;
    state.caucusMembers = null;
    if (wasInvolved) notify(state, state.t("caucus.ended"), { key: "caucus" });
    loadHistory(state);
    renderAll(state);
  });
  client.on("media_isolation", () => renderTiles(state));
  client.on("chat_muted", ({ muted }) => {
    state.chatMuted = Boolean(muted);
    notify(state, state.t(muted ? "notice.chatMuted" : "notice.chatUnmuted"), {
      tone: muted ? "warning" : "info",
      key: "chat-muted",
    });
    if (muted) stopTyping(state);
    renderChatControls(state);
  });
  client.on("mute_media_requested", (body) => onMuteRequested(state, body));
  client.on("screen_share_stopped", (body) => onShareStopped(state, body));
  client.on("hand_lowered", () => onHandLowered(state));
  client.on("error", (body) => {
    log(state, "server error notice", body);
    if (body && body.code === "replaced") {
      terminate(state, "replaced", {
        actions: [{ label: "action.rejoin", primary: true, testid: "rejoin", run: () => location.reload() }],
      });
    }
  });
  client.on("recording_started", () => {
    if (state.room) state.room = { ...state.room, recording: true };
    notify(state, state.t("notice.recording.started"), { key: "recording" });
    renderRecording(state);
  });
  client.on("recording_stopped", ({ reason }) => {
    if (state.room) state.room = { ...state.room, recording: false };
    const known = typeof reason === "string" && state.t.has(`notice.recording.stopped.${reason}`);
    const item = notify(state, state.t(known ? `notice.recording.stopped.${reason}` : "notice.recording.stopped.other"), {
      key: "recording",
      tone: reason === "mediator" || reason === "session_ended" ? "info" : "warning",
      timeout: 12000,
    });
    item.dataset.reason = known ? reason : "other";
    renderRecording(state);
  });
}

// End states whose join link is gone: the case page then opens with what the tab still holds, or asks.
const LINK_GONE = new Set(["removed", "refused", "bad-link", "not-participant", "bad-session"]);

/**
 * The way back from an end state: a party to its case page, staff to the case on the desk.
 * @param {RoomPageState} state
 * @param {string} stateName
 * @returns {import("./status.js").StatusAction}
 */
export function wayBack(state, stateName) {
  const lang = state.lang === "en" ? "?lang=en" : "";
  const caseId = (state.self && state.self.case_id) || state.caseId;
  let url;
  if (state.staff) url = `/desk${lang}${caseId ? `#/case/${caseId}` : ""}`;
  else url = `/case${lang}${state.token && !LINK_GONE.has(stateName) ? `#${state.token}` : ""}`;
  const primary = stateName === "ended";
  return { label: state.staff ? "action.backToDesk" : "action.backToCase", primary, testid: "back-to-case",
    run: () => location.assign(url) };
}

/**
 * The participant is out for good (or blocked): stop media and connections.
 * @param {RoomPageState} state
 * @param {string} stateName the status banner's state
 * @param {object} [extra] more of the status (detail, reason, actions)
 */
export function terminate(state, stateName, extra = {}) {
  state.historyGuard = false;
  if (["removed", "refused", "ended", "bad-link"].includes(stateName)) forgetToken();
  state.phase = "over";
  if (state.joinedAt && !state.endedAt) state.endedAt = Date.now();
  $("notices").replaceChildren();
  stopTyping(state);
  if (state.mesh) state.mesh.stop();
  stopMedia(state);
  clearStatus(state, "conn");
  clearStatus(state, "media");
  blockWith(state, stateName, { ...extra, actions: [...(extra.actions ?? []), wayBack(state, stateName)] });
  setConnection(state, stateName === "left" || stateName === "ended" ? "idle" : "offline");
  renderAll(state);
}
