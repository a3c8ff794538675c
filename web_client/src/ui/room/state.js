// The room page's state: one object, made here and passed explicitly to every function of the
// page's modules (no module keeps state of its own), and the questions asked of it. No DOM here.
import { chooseLanguage, errorMessage, makeTranslator } from "../../lib/i18n.js";
import roomEn from "../../lib/i18n/room.en.js";
import roomZhCN from "../../lib/i18n/room.zh-CN.js";
import meetingEn from "../../lib/i18n/meeting.en.js";
import meetingZhCN from "../../lib/i18n/meeting.zh-CN.js";
import { createMeetingState } from "./meeting.js";
import { PARTY_ROLES } from "../../lib/room/protocol.js";

/** The room's own catalogs, merged over the common ones. */
const ROOM_CATALOGS = Object.freeze({ "zh-CN": { ...roomZhCN, ...meetingZhCN }, en: { ...roomEn, ...meetingEn } });

/** @param {string} lang */
export const translatorFor = (lang) => makeTranslator(lang, ROOM_CATALOGS);

/**
 * @typedef {object} LocalMedia
 * @property {MediaStream | null} stream the one local stream; tracks come and go
 * @property {boolean} audioOn
 * @property {"av" | "audio" | "none"} choice camera and microphone, microphone only, or neither (chat only)
 * @property {string | null} audioDeviceId
 * @property {string | null} videoDeviceId
 * @property {boolean} starting
 * @property {string | null} lastSent the last media_state sent (JSON)
 * @property {{ctx?: AudioContext, source?: MediaStreamAudioSourceNode, analyser?: AnalyserNode, frame?: number} | null} meter
 */

/**
 * @typedef {object} RoomPageState
 * @property {string} lang
 * @property {ReturnType<typeof makeTranslator>} t
 * @property {boolean} debug `?debug=1`: `window.__room` and console.debug
 * @property {URLSearchParams} params
 * @property {boolean} staff signed-in staff (not a party with a join link)
 * @property {string | null} token
 * @property {string | null} sessionId
 * @property {string | null} caseId the case, once known (a party's case view, or join_room)
 * @property {import("../../lib/room/types.js").Schedule | null} prejoinSchedule a party's schedule before join_room
 * @property {boolean} historyGuard a history entry stands in front of the room (Back asks first)
 * @property {string} drawnPhase the phase the page was last drawn in
 * @property {import("../../lib/room/protocol.js").RoomClient | null} client
 * @property {import("../../lib/room/mesh.js").Mesh | import("../../lib/room/sfu.js").Sfu | null} mesh the room's media (mesh or SFU)
 * @property {import("../../lib/e2ee/sframe.js").MediaEncryption | null} mediaEncryption end-to-end encryption
 *   of the page's media frames, handed to the mesh or SFU when it is made (null: frames as encoded)
 * @property {"init" | "signin" | "prejoin" | "lobby" | "room" | "over"} phase
 * @property {boolean} joining
 * @property {import("../../lib/room/types.js").JoinResult | null} self the join_room result
 * @property {import("../../lib/room/types.js").RoomState | null} room the last room_state
 * @property {"lobby" | "admitted" | null} status
 * @property {"video" | "chat" | null} mode
 * @property {number | null} joinedAt
 * @property {number | null} endedAt
 * @property {boolean} everConnected
 * @property {Map<number, import("../../lib/room/types.js").ChatMessage>} messages by seq
 * @property {number} unread
 * @property {Map<string, {timer: ReturnType<typeof setTimeout>}>} typing by participant_id
 * @property {boolean} typingActive
 * @property {ReturnType<typeof setTimeout> | null} typingTimer
 * @property {boolean} chatMuted
 * @property {boolean} caucusExcluded
 * @property {string[] | null} caucusMembers
 * @property {Set<string>} knownLobby
 * @property {Set<string>} knownDevices participants whose waiting second device the mediator was told of
 * @property {{block: any, conn: any, media: any}} statuses the status banner shows the first one set
 * @property {"chat" | "people"} sidePanel
 * @property {boolean} consentDeclined this party chose "I do not consent" (or withdrew): the notice is folded
 * @property {boolean} consentBusy give_consent / withdraw_consent under way
 * @property {boolean} recordingBusy start_recording / stop_recording under way
 * @property {LocalMedia} media
 * @property {Map<string, any>} tiles participant_id -> tile parts ("self" for the local preview)
 * @property {Map<string, MediaStream | null>} pendingStreams remote streams that came before their tile
 * @property {import("./meeting.js").MeetingState} meeting speaker, self-view, blur, time warnings, lobby cue
 * @property {import("../../lib/e2ee/keys.js").E2eeSession | null | undefined} e2ee the key layer; null: this
 *   browser cannot encrypt; undefined: not made yet
 * @property {string} securityCode the code of the current members' keys ("" before the first)
 * @property {Promise<string[]> | null} sealingRecipients the checked compliance recipients, once asked for
 */

/**
 * The state of a page just opened at `search`.
 * @param {string} search
 * @returns {RoomPageState}
 */
export function createRoomState(search) {
  const params = new URLSearchParams(search);
  const lang = chooseLanguage(search);
  return {
    lang,
    t: translatorFor(lang),
    debug: params.get("debug") === "1",
    params,
    staff: false,
    token: null,
    sessionId: null,
    caseId: null,
    prejoinSchedule: null,
    historyGuard: false,
    drawnPhase: "init",
    client: null,
    mesh: null,
    mediaEncryption: null,
    phase: "init",
    joining: false,
    self: null,
    room: null,
    status: null,
    mode: null,
    joinedAt: null,
    endedAt: null,
    everConnected: false,
    messages: new Map(),
    unread: 0,
    typing: new Map(),
    typingActive: false,
    typingTimer: null,
    chatMuted: false,
    caucusExcluded: false,
    caucusMembers: null,
    knownLobby: new Set(),
    knownDevices: new Set(),
    statuses: { block: null, conn: null, media: null },
    sidePanel: "chat",
    consentDeclined: false,
    consentBusy: false,
    recordingBusy: false,
    media: {
      stream: typeof MediaStream === "function" ? new MediaStream() : null,
      audioOn: true,
      choice: "av",
      audioDeviceId: null,
      videoDeviceId: null,
      starting: false,
      lastSent: null,
      meter: null,
    },
    tiles: new Map(),
    pendingStreams: new Map(),
    meeting: createMeetingState(),
    e2ee: undefined,
    securityCode: "",
    sealingRecipients: null,
  };
}

/**
 * The message for a protocol or client error code.
 * @param {RoomPageState} state
 * @param {string} code
 */
export function errorText(state, code) {
  return errorMessage(state.t, { code });
}

/**
 * Names joined the way the page's language lists them.
 * @param {RoomPageState} state
 * @param {string[]} names
 */
export function listNames(state, names) {
  return names.join(state.lang === "en" ? ", " : "、");
}

/** The key under which a party's join link is kept in this browser (every tab of the site). */
export const TOKEN_KEY = "mediation.joinLink";
/** How long a kept join link is offered to a new tab; the server still decides whether it is valid. */
const TOKEN_KEEP_MS = 12 * 60 * 60 * 1000;

/**
 * Keep the join link for this browser's other tabs and reloads. localStorage, not a cookie or the
 * address: it never travels to the server in a request line, a log or a Referer.
 * @param {string} token
 */
export function keepToken(token) {
  try {
    localStorage.setItem(TOKEN_KEY, JSON.stringify({ token, kept_at: Date.now() }));
  } catch {
    // storage unavailable: a new tab will need the link again
  }
}

/**
 * The join link kept by `keepToken`, unless it is older than TOKEN_KEEP_MS.
 * @returns {string | null}
 */
export function keptToken() {
  try {
    const kept = JSON.parse(localStorage.getItem(TOKEN_KEY) ?? "null");
    if (kept && typeof kept.token === "string" && Date.now() - Number(kept.kept_at) < TOKEN_KEEP_MS) return kept.token;
    localStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage unavailable or unreadable
  }
  return null;
}

/** Forget the kept join link (the session is over for this participant, or the link is refused). */
export function forgetToken() {
  try {
    localStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage unavailable
  }
}

/**
 * Initials for an avatar: a CJK family name, or the first letters of two words.
 * @param {string} name
 */
export function initials(name) {
  const trimmed = (name || "").trim();
  if (!trimmed) return "?";
  const chars = [...trimmed];
  if (/[\u3400-\u9fff]/.test(chars[0])) return chars[0];
  const words = trimmed.split(/\s+/).filter(Boolean);
  return words
    .slice(0, 2)
    .map((w) => [...w][0])
    .join("");
}

/**
 * @param {RoomPageState} state
 * @param {string} role
 */
export function roleLabel(state, role) {
  const key = `role.${role}`;
  return state.t.has(key) ? state.t(key) : state.t("role.unknown");
}

/** @param {RoomPageState} state */
export function participants(state) {
  return state.room && Array.isArray(state.room.participants) ? state.room.participants : [];
}

/**
 * @param {RoomPageState} state
 * @param {string | null} id
 */
export function participant(state, id) {
  return participants(state).find((p) => p.participant_id === id) || null;
}

/** @param {RoomPageState} state */
export function selfId(state) {
  return state.self ? state.self.participant_id : null;
}

/** @param {RoomPageState} state */
export function isMediator(state) {
  return Boolean(state.self && state.self.role === "mediator");
}

/**
 * A participant's name from the roster, else from their messages, else the id.
 * @param {RoomPageState} state
 * @param {string} id
 */
export function nameOf(state, id) {
  const p = participant(state, id);
  if (p) return p.name;
  const msg = [...state.messages.values()].find((m) => m.participant_id === id);
  return msg ? msg.name : id;
}

/**
 * console.debug with `?debug=1`.
 * @param {RoomPageState} state
 * @param {...any} args
 */
export function log(state, ...args) {
  if (state.debug) console.debug("[room]", ...args);
}

/** @param {RoomPageState} state */
export function isParty(state) {
  return Boolean(state.self && PARTY_ROLES.includes(state.self.role));
}

/** @param {RoomPageState} state */
export function recordsSealed(state) {
  return Boolean(state.self && state.self.records_sealed);
}

/** Whether this session can be recorded at all: sealed records and a video session. */
export function recordingApplies(state) {
  return recordsSealed(state) && state.mode === "video";
}
