// Joining: the pre-join check, join_room, the lobby, admission and return to the lobby, leaving.
import { Mesh } from "../../lib/room/mesh.js";
import { Sfu } from "../../lib/room/sfu.js";
import { $ } from "../dom.js";
import { loadHistory, stopTyping } from "./chat.js";
import { onE2eeJoined, onE2eeRoster, prepareE2ee } from "./e2ee.js";
import { onRefused, terminate } from "./connection.js";
import { resumeAudio, sendMediaState, startMedia, stopMedia } from "./media.js";
import { admitParticipant } from "./moderation.js";
import { act, confirmDialog, dismissNotice, notify, notifyError } from "./notices.js";
import { isMediator, log, participant, participants, roleLabel, selfId } from "./state.js";
import { clearStatus, CODE_STATES, setStatus } from "./status.js";
import { attachRemote } from "./tiles.js";
import { renderAll } from "./view.js";
import { renderShare } from "./screenshare.js";

/** @typedef {import("./state.js").RoomPageState} RoomPageState */

/**
 * The check before joining: camera and microphone preview, device choice.
 * @param {RoomPageState} state
 */
export function startPrejoin(state) {
  // Staff come from the desk, whose link says `mode=chat` for a chat-only session (parties: room.js
  // reads their link's session). Only the pre-join uses it; join_room's answer sets the mode.
  if (state.staff && !state.mode && state.params.get("mode") === "chat") state.mode = "chat";
  state.phase = "prejoin";
  renderAll(state);
  startMedia(state, "av");
}

/** @param {RoomPageState} state */
export function updateJoinButton(state) {
  const join = $("join-button");
  const connected = Boolean(state.client && state.client.connected);
  join.disabled = !connected || state.joining;
  join.textContent = state.t(state.joining ? "prejoin.joining" : connected ? "prejoin.join" : "prejoin.connecting");
}

/**
 * join_room; the server answers with the lobby (parties) or the room (staff).
 * @param {RoomPageState} state
 */
export async function join(state) {
  if (state.joining || !state.client) return;
  state.joining = true;
  updateJoinButton(state);
  resumeAudio(state);
  try {
    await prepareE2ee(state);
    await state.client.joinRoom();
  } catch (err) {
    if (CODE_STATES[err.code]) onRefused(state, err.code);
    else notifyError(state, err);
  } finally {
    state.joining = false;
    updateJoinButton(state);
  }
}

/**
 * @param {RoomPageState} state
 * @param {import("../../lib/room/types.js").JoinResult} result
 * @param {{rejoin?: boolean}} [options]
 */
export function onJoined(state, result, { rejoin } = {}) {
  state.self = result;
  onE2eeJoined(state, result);
  state.mode = result.mode || (result.room && result.room.mode) || "video";
  state.status = result.status;
  if (!state.joinedAt) state.joinedAt = Date.now();
  if (result.room) applyRoomState(state, result.room);
  clearStatus(state, "conn");
  if (state.mode === "chat") {
    stopMedia(state);
    clearStatus(state, "media");
  } else {
    ensureMesh(state);
  }
  state.phase = state.status === "admitted" ? "room" : "lobby";
  if (!result.second_device) sendMediaState(state, true); // a waiting second device may only leave
  if (state.status === "admitted") loadHistory(state);
  if (rejoin) notify(state, state.t("notice.reconnected"), { key: "conn" });
  renderAll(state);
}

/**
 * The WebRTC mesh, made once per page (it follows re-joins by itself).
 * @param {RoomPageState} state
 */
function ensureMesh(state) {
  if (state.mesh || typeof RTCPeerConnection !== "function") {
    if (typeof RTCPeerConnection !== "function") setStatus(state, "media", { state: "unsupported" });
    return;
  }
  const Media = state.self && state.self.media === "sfu" ? Sfu : Mesh;
  const mesh = new Media({
    client: state.client,
    RTCPeerConnection,
    localStream: state.media.stream,
    MediaStream: typeof MediaStream === "function" ? MediaStream : null,
    protection: state.mediaEncryption,
    log: state.debug ? (...args) => console.debug(...args) : null,
  });
  state.mesh = mesh;
  mesh.on("remote_stream", ({ participantId, stream }) => attachRemote(state, participantId, stream));
  mesh.on("remote_stream_removed", ({ participantId }) => attachRemote(state, participantId, null));
  mesh.on("remote_screen", () => renderShare(state));
  mesh.on("peer_state", ({ participantId, state: connState }) => {
    const tile = state.tiles.get(participantId);
    if (tile) tile.root.dataset.peer = connState;
  });
  mesh.on("error", ({ participantId, error }) => log(state, "mesh error", participantId, error));
}

/**
 * @param {RoomPageState} state
 * @param {import("../../lib/room/types.js").RoomState} room
 */
function applyRoomState(state, room) {
  state.room = room;
  const me = participants(state).find((p) => p.participant_id === selfId(state));
  if (me) {
    state.status = me.status;
    state.chatMuted = Boolean(me.chat_muted);
  }
  if (room.caucus && !room.caucus.active) {
    state.caucusExcluded = false;
    state.caucusMembers = null;
  } else if (room.caucus && room.caucus.active) {
    if (Array.isArray(room.caucus.members)) {
      state.caucusMembers = room.caucus.members;
      state.caucusExcluded = !room.caucus.members.includes(selfId(state));
    } else {
      state.caucusExcluded = true;
      state.caucusMembers = null;
    }
  }
  onE2eeRoster(state);
}

/**
 * A room_state: our own status and caucus, the mediator's lobby notices, admission or return.
 * @param {RoomPageState} state
 * @param {import("../../lib/room/types.js").RoomState} room
 */
export function onRoomState(state, room) {
  const before = state.status;
  const wasLocked = state.room ? Boolean(state.room.locked) : null;
  applyRoomState(state, room);
  if (isMediator(state)) {
    const lobby = participants(state).filter((p) => p.status === "lobby" && p.participant_id !== selfId(state));
    for (const p of lobby) {
      if (!state.knownLobby.has(p.participant_id)) {
        notify(state, state.t("mediator.newInLobby", { name: p.name }), {
          key: `lobby-${p.participant_id}`,
          actions: [
            {
              label: state.t("mediator.admit"),
              run: () => admitParticipant(state, participant(state, p.participant_id) || p),
            },
          ],
          timeout: 12000,
        });
      }
    }
    noticeSecondDevices(state);
    const stillWaiting = new Set(lobby.map((p) => p.participant_id));
    for (const id of state.knownLobby) if (!stillWaiting.has(id)) dismissNotice(state, `lobby-${id}`);
    state.knownLobby = stillWaiting;
    if (wasLocked !== null && wasLocked !== Boolean(room.locked)) {
      notify(state, state.t(room.locked ? "notice.lockedOn" : "notice.lockedOff"), { key: "lock" });
    }
  }
  const own = participant(state, selfId(state));
  if (!isMediator(state) && own && own.second_device_waiting && !room.second_device) {
    notify(state, state.t("notice.secondDeviceWaiting"), { tone: "warning", key: "second-device" });
  }
  if (before !== "admitted" && state.status === "admitted") afterAdmission(state);
  else if (before === "admitted" && state.status === "lobby") leaveRoomView(state);
  else renderAll(state);
}

/**
 * The mediator's notice for each party whose second device waits: let it take the place, or refuse it.
 * @param {RoomPageState} state
 */
function noticeSecondDevices(state) {
  const waiting = participants(state).filter((p) => p.second_device_waiting);
  for (const p of waiting) {
    if (state.knownDevices.has(p.participant_id)) continue;
    notify(state, state.t("mediator.secondDevice", { name: p.name }), {
      tone: "warning",
      key: `device-${p.participant_id}`,
      actions: [
        { label: state.t("mediator.admitDevice"), run: () => act(state, () => state.client.admitDevice(p.participant_id)) },
        { label: state.t("mediator.refuseDevice"), run: () => act(state, () => state.client.refuseDevice(p.participant_id)) },
      ],
    });
  }
  const still = new Set(waiting.map((p) => p.participant_id));
  for (const id of state.knownDevices) if (!still.has(id)) dismissNotice(state, `device-${id}`);
  state.knownDevices = still;
}

/** @param {RoomPageState} state */
export function afterAdmission(state) {
  if (state.phase === "over") return;
  state.phase = "room";
  loadHistory(state);
  renderAll(state);
}

/**
 * Back to the lobby: the chat is for admitted participants only.
 * @param {RoomPageState} state
 */
export function leaveRoomView(state) {
  if (state.phase === "over") return;
  state.phase = "lobby";
  stopTyping(state, { send: false });
  state.messages.clear();
  state.typing.clear();
  renderAll(state);
}

/** @param {RoomPageState} state */
export function renderLobby(state) {
  const t = state.t;
  const inLobby = state.phase === "lobby";
  $("prejoin-panel").hidden = inLobby;
  $("lobby-panel").hidden = !inLobby;
  if (!inLobby) {
    const chat = state.mode === "chat";
    const lead = state.staff ? (chat ? "prejoin.leadStaffChat" : "prejoin.leadStaff") : chat ? "prejoin.leadChat" : "prejoin.lead";
    $("prejoin-panel").querySelector(".card-lead").textContent = t(lead);
    return;
  }
  const present = Boolean(state.room && state.room.mediator_present);
  const presence = $("mediator-presence");
  presence.dataset.present = String(present);
  $("mediator-presence-label").textContent = t(present ? "lobby.mediatorPresent" : "lobby.mediatorAbsent");
  const self = state.self ? t("lobby.self", { name: state.self.name, role: roleLabel(state, state.self.role) }) : "";
  // A second device waits apart until the mediator lets it take the participant's place.
  const second = Boolean(state.room && state.room.second_device);
  $("lobby-self").textContent = second ? `${self} ${t("lobby.secondDevice")}` : self;
  $("lobby-self").dataset.secondDevice = String(second);
}

/**
 * leave_room after a confirmation; whether the participant left.
 * @param {RoomPageState} state
 * @returns {Promise<boolean>}
 */
export async function leave(state) {
  const answer = await confirmDialog(state, {
    title: state.t("dialog.leave.title"),
    text: state.t(state.staff ? "dialog.leave.textStaff" : "dialog.leave.text"),
    confirmLabel: state.t("dialog.leave.confirm"),
  });
  if (!answer.confirmed) return false;
  try {
    await state.client.leaveRoom();
  } catch (err) {
    log(state, "leave_room failed", err);
    state.client.disconnect();
  }
  terminate(state, "left", {
    actions: [{ label: "action.rejoin", primary: true, testid: "rejoin", run: () => location.reload() }],
  });
  return true;
}
