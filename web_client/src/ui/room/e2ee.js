// End-to-end encryption on the room page: the device key made before joining, the key layer fed with the
// roster and the keys others share, chat encrypted before sending and decrypted on arrival, the security
// code and the "not end-to-end encrypted" notice (docs/protocol.md, "End-to-end encryption").
import { E2eeSession, e2eeSupported } from "../../lib/e2ee/keys.js";
import { $ } from "../dom.js";
import { notify } from "./notices.js";
import { listNames, log, participants, selfId } from "./state.js";
import { sealKeyForCompliance } from "./keyrecords.js";

/**
 * @typedef {import("./state.js").RoomPageState} RoomPageState
 * @typedef {import("../../lib/room/types.js").ChatMessage} ChatMessage
 */

/**
 * Make this page's device key before its first join_room; a browser without X25519 joins without one.
 * @param {RoomPageState} state
 */
export async function prepareE2ee(state) {
  if (state.e2ee !== undefined || !state.client) return;
  if (!(await e2eeSupported())) {
    state.e2ee = null;
    log(state, "WebCrypto has no X25519: joining without a device key (not end-to-end encrypted)");
    return;
  }
  const client = state.client;
  const session = new E2eeSession({
    sessionId: "",
    share: (payload) => client.shareKeys(payload),
    seal: (key) => sealKeyForCompliance(state, key),
  });
  client.publicKey = await session.start();
  session.addEventListener("securitycode", (event) => {
    const { code } = /** @type {CustomEvent<{code: string}>} */ (event).detail;
    const first = !state.securityCode;
    state.securityCode = code;
    renderE2ee(state);
    if (!first && state.status === "admitted") {
      notify(state, state.t("e2ee.codeChanged", { code }), { tone: "warning", key: "security-code" });
    }
  });
  session.addEventListener("receivekey", (event) => {
    const { kid } = /** @type {CustomEvent<{kid: number}>} */ (event).detail;
    retryUndecryptable(state, kid);
  });
  state.e2ee = session;
}

/** @param {RoomPageState} state @param {import("../../lib/room/types.js").JoinResult} result */
export function onE2eeJoined(state, result) {
  if (!state.e2ee) return;
  state.e2ee.sessionId = result.session_id || "";
  state.e2ee.participantId = result.participant_id;
}

/** @param {RoomPageState} state @returns {"main" | "caucus"} */
function channelOf(state) {
  const members = state.room?.caucus?.members;
  return Array.isArray(members) && members.includes(selfId(state)) ? "caucus" : "main";
}

/**
 * A roster change: the key layer rotates when our channel's members changed; the notice follows.
 * @param {RoomPageState} state
 */
export function onE2eeRoster(state) {
  renderE2ee(state);
  if (!state.e2ee || !state.room || state.status !== "admitted") return;
  state.e2ee.updateRoster(state.room, channelOf(state)).catch((err) => log(state, "key rotation failed", err));
}

/** @param {RoomPageState} state @param {any} notice */
export function onKeysShared(state, notice) {
  if (!state.e2ee || !notice || typeof notice !== "object") return;
  state.e2ee.acceptShared(notice).catch((err) => log(state, "keys_shared refused", err));
}

/**
 * A delivered or historical message with its text: decrypted here, or marked undecryptable.
 * @param {RoomPageState} state @param {ChatMessage} msg @returns {Promise<ChatMessage>}
 */
export async function reveal(state, msg) {
  if (typeof msg.ciphertext !== "string") return msg;
  const text = state.e2ee ? await state.e2ee.decryptChat(msg) : null;
  return text === null ? { ...msg, text: "", undecryptable: true } : { ...msg, text, undecryptable: false };
}

/** @type {(state: RoomPageState, msg: ChatMessage) => void} set by the chat panel */
let redraw = () => {};

/** @param {(state: RoomPageState, msg: ChatMessage) => void} fn */
export function onRevealed(fn) {
  redraw = fn;
}

/** @param {RoomPageState} state @param {number} kid */
function retryUndecryptable(state, kid) {
  for (const msg of state.messages.values()) {
    if (msg.undecryptable && msg.kid === kid) {
      reveal(state, msg).then((shown) => { if (!shown.undecryptable) redraw(state, shown); });
    }
  }
}

/**
 * What send_chat carries for `text`: ciphertext in an end-to-end encrypted room, else the text.
 * @param {RoomPageState} state @param {string} text
 */
export async function chatContent(state, text) {
  if (!state.room?.end_to_end) return text;
  if (!state.e2ee) throw Object.assign(new Error("this browser cannot encrypt"), { code: "no_device_key" });
  await state.e2ee.updateRoster(state.room, channelOf(state));
  return state.e2ee.encryptChat(channelOf(state), text);
}

/** The notice: encrypted with the security code, or not end-to-end encrypted and why. @param {RoomPageState} state */
export function renderE2ee(state) {
  const status = $("e2ee-status");
  const codeLine = $("security-code-line");
  if (!state.room || state.status !== "admitted") {
    status.hidden = true;
    codeLine.hidden = true;
    return;
  }
  const encrypted = Boolean(state.room.end_to_end);
  const without = participants(state)
    .filter((p) => p.status === "admitted" && p.role !== "recorder" && !p.public_key).map((p) => p.name);
  status.hidden = false;
  status.dataset.encrypted = String(encrypted);
  $("e2ee-text").textContent = encrypted ? state.t("e2ee.on")
    : state.t("e2ee.off", { names: listNames(state, without) });
  codeLine.hidden = !encrypted || !state.securityCode;
  $("security-code").textContent = state.securityCode || "";
}
