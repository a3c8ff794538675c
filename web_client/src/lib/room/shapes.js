// What the room protocol's answers mean, read from their raw shapes: the recording notice to show, who
// holds up a recording, what a refused connection says. No DOM and no socket here (./protocol.js uses them).

import { CONNECT_ERROR_CODES, PARTY_ROLES } from "./codes.js";

/**
 * @typedef {import("./types.js").ConnectErrorInfo} ConnectErrorInfo
 * @typedef {import("./types.js").Participant} Participant
 * @typedef {import("./types.js").RecordingNotice} RecordingNotice
 * @typedef {import("./types.js").RoomState} RoomState
 */

/**
 * @param {unknown} value
 * @returns {value is Record<string, any>}
 */
export function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * The `{code, message, refused}` of a connect_error, whatever shape the server or transport gave it.
 * `refused`: the server answered with a refusal (socket.io does not retry then); otherwise the
 * server was not reached and socket.io keeps retrying. `socket` (optional) tells the two apart when
 * the refusal carries no code: socket.io destroys the socket on a refusal (`active` false).
 *
 * @param {any} err socket.io's connect_error
 * @param {{active?: boolean} | null} [socket]
 * @returns {ConnectErrorInfo}
 */
export function connectErrorInfo(err, socket = null) {
  const data = err && isObject(err.data) ? err.data : null;
  if (data && typeof data.code === "string") {
    return { code: data.code, message: typeof data.message === "string" ? data.message : "", refused: true };
  }
  // A server may put the bare code in the message (ConnectionRefusedError("bad_token")).
  const message = err && typeof err.message === "string" ? err.message : "";
  if (CONNECT_ERROR_CODES.includes(message)) return { code: message, message, refused: true };
  if (socket && socket.active === false) return { code: "connect_refused", message, refused: true };
  return { code: "connect_failed", message, refused: false };
}

/**
 * The recording notice to show in `lang`, from join_room's `recording_notice` ([{language, text,
 * sha256}]): that language, else zh-CN, else the first one. Null when there is none usable.
 * Consent is given to the notice shown, so its `sha256` is the one sent with give_consent.
 *
 * @param {unknown} notices
 * @param {string} lang
 * @returns {RecordingNotice | null}
 */
export function pickNotice(notices, lang) {
  if (!Array.isArray(notices)) return null;
  const usable = notices.filter(
    (n) => isObject(n) && typeof n.text === "string" && n.text.trim() && typeof n.sha256 === "string" && /^[0-9a-f]{64}$/.test(n.sha256),
  );
  return (
    usable.find((n) => n.language === lang) ||
    usable.find((n) => n.language === "zh-CN") ||
    usable[0] ||
    null
  );
}

/**
 * Admitted parties of a room_state who have not consented: who holds up `start_recording`
 * (the server's rule: every admitted borrower, lender and bank representative consents).
 *
 * @param {RoomState | null | undefined} room
 * @returns {Participant[]}
 */
export function missingConsents(room) {
  const list = room && Array.isArray(room.participants) ? room.participants : [];
  return list.filter((p) => p && p.status === "admitted" && PARTY_ROLES.includes(p.role) && !p.consented);
}
