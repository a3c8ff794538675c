// The people panel: who is in the room and in the lobby, their media, consent and the mediator's
// actions on each; the lobby callout on the stage.
import { PARTY_ROLES } from "../../lib/room/protocol.js";
import { $, h } from "../dom.js";
import { selectPanel } from "./chat.js";
import { icon } from "./icons.js";
import { admitParticipant, refuse, remove } from "./moderation.js";
import { act } from "./notices.js";
import { initials, isMediator, listNames, participants, recordingApplies, roleLabel, selfId } from "./state.js";
import { setMediaIcon } from "./tiles.js";

/**
 * @typedef {import("./state.js").RoomPageState} RoomPageState
 * @typedef {import("../../lib/room/types.js").Participant} Participant
 */

/**
 * A small button of the roster.
 * @param {string} label
 * @param {{testid?: string, onClick: () => void, cls?: string, disabled?: boolean, dataset?: Record<string, string>}} options
 */
function action(label, { testid, onClick, cls = "btn btn-small btn-secondary", disabled = false, dataset }) {
  return h("button", { type: "button", class: cls, text: label, testid, disabled, dataset, on: { click: onClick } });
}

/**
 * The mediator's buttons for one participant: admit or refuse a lobby member; return, mute chat,
 * ask to mute, open a caucus or remove an admitted one.
 * @param {RoomPageState} state
 * @param {Participant} p
 */
function rosterActions(state, p) {
  const t = state.t;
  const id = p.participant_id;
  if (!isMediator(state) || id === selfId(state) || p.role === "recorder" || state.status !== "admitted") return [];
  if (p.status === "lobby") {
    return [
      action(t("mediator.admit"), { cls: "btn btn-small btn-primary", testid: `admit-${id}`, onClick: () => admitParticipant(state, p) }),
      action(t("mediator.refuse"), { cls: "btn btn-small btn-quiet", testid: `refuse-${id}`, onClick: () => refuse(state, p) }),
    ];
  }
  const caucusActive = Boolean(state.room && state.room.caucus && state.room.caucus.active);
  return [
    action(t("mediator.return"), { testid: `return-${id}`, onClick: () => act(state, () => state.client.returnToLobby(id)) }),
    action(t(p.chat_muted ? "mediator.unmuteChat" : "mediator.muteChat"), {
      testid: `mute-chat-${id}`,
      dataset: { muted: String(Boolean(p.chat_muted)) },
      onClick: () => act(state, () => state.client.muteChat(id, !p.chat_muted)),
    }),
    state.mode === "chat"
      ? null
      : action(t("mediator.askMuteAudio"), {
          testid: `mute-audio-${id}`,
          disabled: !p.audio,
          onClick: () => act(state, () => state.client.requestMuteMedia(id, { audio: true, video: false }), { successKey: "notice.requestSent" }),
        }),
    state.mode === "chat"
      ? null
      : action(t("mediator.askStopVideo"), {
          testid: `mute-video-${id}`,
          disabled: !p.video,
          onClick: () => act(state, () => state.client.requestMuteMedia(id, { audio: false, video: true }), { successKey: "notice.requestSent" }),
        }),
    action(t("mediator.openCaucus"), {
      testid: `caucus-${id}`,
      disabled: caucusActive,
      onClick: () => act(state, () => state.client.openCaucus(id)),
    }),
    action(t("mediator.remove"), { cls: "btn btn-small btn-quiet", testid: `remove-${id}`, onClick: () => remove(state, p) }),
  ];
}

/**
 * @param {RoomPageState} state
 * @param {Participant} p
 */
function rosterEntry(state, p) {
  const t = state.t;
  const me = p.participant_id === selfId(state);
  const name = h("span", { class: "roster-name", text: p.name });
  if (me) name.append(" ", h("span", { class: "roster-you", text: t("participant.you") }));
  const meta = [roleLabel(state, p.role), t(`participant.status.${p.status === "lobby" ? "lobby" : "admitted"}`)];
  if (p.connected === false) meta.push(t("participant.disconnected"));
  if (p.chat_muted) meta.push(t("participant.chatMuted"));
  // The party left out of a caucus is not told who is in it (the server may still flag it).
  const showCaucus = p.in_caucus && !state.caucusExcluded;
  if (showCaucus) meta.push(t("participant.inCaucus"));
  // The mediator admits a browser that cannot encrypt knowing it: the room then is not end-to-end encrypted.
  if (p.role !== "recorder" && !p.public_key) meta.push(t("participant.cannotEncrypt"));
  const icons = h("span", { class: "roster-icons" });
  // Consent matters for parties while the session can be recorded (sealed records, video).
  const consentShown = recordingApplies(state) && PARTY_ROLES.includes(p.role);
  const consent = consentShown
    ? h("span", { class: "consent-badge", dataset: { consented: String(Boolean(p.consented)) },
      text: t(p.consented ? "participant.consented" : "participant.notConsented") })
    : null;
  if (state.mode !== "chat" && p.role !== "recorder") {
    const a = h("span", { class: "media-icon" });
    setMediaIcon(state, a, "audio", Boolean(p.audio));
    const v = h("span", { class: "media-icon" });
    setMediaIcon(state, v, "video", Boolean(p.video));
    icons.append(a, v);
  }
  if (p.chat_muted) {
    icons.append(h("span", { class: "media-icon", dataset: { on: "false", kind: "chat" }, title: t("participant.chatMuted") }, icon("chatOff")));
  }
  if (showCaucus) {
    icons.append(h("span", { class: "media-icon", dataset: { kind: "caucus" }, title: t("participant.inCaucus") }, icon("users")));
  }
  const avatar = h("span", { class: "avatar", text: initials(p.name), dataset: { role: p.role } });
  return h("li", {
    class: "roster-entry",
    "data-testid": "roster-entry",
    "data-participant-id": p.participant_id,
    "data-status": p.status,
    "data-role": p.role,
    "data-connected": String(p.connected !== false),
    "data-audio": String(Boolean(p.audio)),
    "data-video": String(Boolean(p.video)),
    "data-chat-muted": String(Boolean(p.chat_muted)),
    "data-encrypts": p.role === "recorder" ? null : String(Boolean(p.public_key)),
    "data-consented": consentShown ? String(Boolean(p.consented)) : null,
    "data-self": String(me),
  },
  h("div", { class: "roster-main" },
    avatar,
    h("div", { class: "roster-text" }, name, h("span", { class: "roster-meta", text: meta.join(" · ") }), consent),
    icons),
  h("div", { class: "roster-actions" }, rosterActions(state, p)));
}

/**
 * The people panel (lobby first, for the mediator), its badge, and the lobby callout on the stage.
 * @param {RoomPageState} state
 */
export function renderRoster(state) {
  const t = state.t;
  const all = participants(state);
  /** @type {Record<string, number>} */
  const order = { mediator: 0, bank_representative: 1, borrower: 2, lender: 3, recorder: 4 };
  const sorted = [...all].sort((a, b) => (order[a.role] ?? 9) - (order[b.role] ?? 9) || String(a.name).localeCompare(String(b.name)));
  const lobby = sorted.filter((p) => p.status === "lobby");
  const admitted = sorted.filter((p) => p.status !== "lobby");
  const showLobby = isMediator(state) && lobby.length > 0;
  $("roster-lobby-group").hidden = !showLobby;
  $("roster-lobby").replaceChildren(...(showLobby ? lobby.map((p) => rosterEntry(state, p)) : []));
  $("roster-lobby-count").textContent = t("roster.count", { n: lobby.length });
  $("roster-room").replaceChildren(
    ...(admitted.length ? admitted.map((p) => rosterEntry(state, p)) : [h("li", { class: "roster-empty", text: t("roster.empty") })]),
  );
  $("roster-room-count").textContent = t("roster.count", { n: admitted.length });

  const badge = $("people-badge");
  badge.hidden = !showLobby;
  badge.textContent = String(lobby.length);

  const callout = $("lobby-callout");
  callout.hidden = !showLobby;
  if (showLobby) {
    const names = listNames(state, lobby.map((p) => p.name));
    callout.replaceChildren(
      icon("users"),
      h("span", { text: t("mediator.lobbyCallout", { n: lobby.length, names }) }),
      action(t("mediator.lobbyView"), { cls: "btn btn-small btn-on-dark", onClick: () => selectPanel(state, "people") }),
    );
  }
}
