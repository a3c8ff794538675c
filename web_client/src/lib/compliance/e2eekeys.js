// End-to-end encryption keys as the compliance page opens them: the e2ee_key records browsers sealed
// (docs/records.md), and the chat they decrypt. Mirrors recording/compliance/e2eekeys.py. No DOM access here.

import { fromBase64url } from "../signing.js";

const CHAT_INFO = "mediation chat v1";
const NONCE_BYTES = 12;
const MAX_KID = 2 ** 48 - 1;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** @typedef {{participantId: string, channel: string, epoch: number, baseKey: Uint8Array}} SessionKey */

/** A key record that does not parse, or a KID claimed twice. */
export class KeyRecordError extends Error {}

/**
 * The key in one decrypted e2ee_key record, checked against where it was filed.
 * @param {unknown} value the parsed JSON @param {{sessionId?: string | null, participantId?: string | null}} where
 * @returns {{kid: number} & SessionKey}
 */
export function parseKeyRecord(value, where = {}) {
  const doc = /** @type {Record<string, any>} */ (value);
  if (!doc || typeof doc !== "object" || doc.type !== "mediation-e2ee-key/v1") {
    throw new KeyRecordError("not a mediation-e2ee-key/v1 document");
  }
  const { kid, epoch, channel } = doc;
  if (!Number.isSafeInteger(kid) || kid < 0 || kid > MAX_KID) throw new KeyRecordError(`kid ${kid} out of range`);
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new KeyRecordError(`epoch ${epoch} is not a count`);
  if (channel !== "main" && channel !== "caucus") throw new KeyRecordError(`channel ${channel} unknown`);
  if (where.sessionId && doc.session_id !== where.sessionId) throw new KeyRecordError("filed under another session");
  if (where.participantId && doc.participant_id !== where.participantId) {
    throw new KeyRecordError("filed under another participant");
  }
  let baseKey;
  try {
    baseKey = fromBase64url(String(doc.base_key));
  } catch {
    throw new KeyRecordError("base_key is not base64url");
  }
  if (baseKey.length !== 32) throw new KeyRecordError("base_key is not 32 bytes");
  return { kid, participantId: String(doc.participant_id), channel, epoch, baseKey };
}

/**
 * KID → key for a session, from its decrypted key records as [value, where] pairs.
 * @param {[unknown, {sessionId?: string | null, participantId?: string | null}][]} records
 * @returns {Map<number, SessionKey>}
 */
export function sessionKeys(records) {
  /** @type {Map<number, SessionKey>} */
  const keys = new Map();
  for (const [value, where] of records) {
    const { kid, ...key } = parseKeyRecord(value, where);
    const earlier = keys.get(kid);
    if (earlier && (earlier.participantId !== key.participantId
        || earlier.baseKey.some((byte, i) => byte !== key.baseKey[i]))) {
      throw new KeyRecordError(`KID ${kid} names two different keys`);
    }
    keys.set(kid, key);
  }
  return keys;
}

/** @param {number} kid */
function kidBytes(kid) {
  const out = new Uint8Array(8);
  let value = kid;
  for (let i = 7; i >= 0; i -= 1) {
    out[i] = value % 256;
    value = Math.floor(value / 256);
  }
  return out;
}

/**
 * The text of one encrypted message under `key`, or null when it does not decrypt.
 * @param {SessionKey} key @param {number} kid @param {string} sessionId @param {string} ciphertext
 */
export async function decryptChat(key, kid, sessionId, ciphertext, subtle = globalThis.crypto.subtle) {
  try {
    const data = new Uint8Array(fromBase64url(ciphertext));
    const info = new Uint8Array([...utf8.encode(CHAT_INFO), ...kidBytes(kid)]);
    const base = await subtle.importKey("raw", new Uint8Array(key.baseKey), "HKDF", false, ["deriveKey"]);
    const aes = await subtle.deriveKey({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info }, base,
      { name: "AES-GCM", length: 256 }, false, ["decrypt"]);
    const aad = utf8.encode([CHAT_INFO, sessionId, key.participantId, key.channel, kid].join("\n"));
    const plain = await subtle.decrypt({ name: "AES-GCM", iv: data.slice(0, NONCE_BYTES), additionalData: aad }, aes,
      data.slice(NONCE_BYTES));
    return utf8Decoder.decode(plain);
  } catch {
    return null;
  }
}

/**
 * Give each encrypted message (kid + ciphertext, no text) its text, in place; resolves the seqs of those
 * that could not be opened (no key, another sender's or channel's key, or not decrypting).
 * @param {Record<string, any>[]} messages @param {Map<number, SessionKey>} keys @param {string} sessionId
 */
export async function reveal(messages, keys, sessionId) {
  /** @type {unknown[]} */
  const unopened = [];
  for (const message of messages) {
    if ("text" in message || typeof message.ciphertext !== "string") continue;
    const key = keys.get(message.kid);
    const text = key && key.participantId === message.participant_id && key.channel === (message.channel || "main")
      ? await decryptChat(key, message.kid, sessionId, message.ciphertext) : null;
    if (text === null) unopened.push(message.seq);
    else message.text = text;
  }
  return unopened;
}
