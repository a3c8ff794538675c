// The key layer of end-to-end encryption (docs/protocol.md, "End-to-end encryption"): this join's X25519
// device key, a base key per channel and epoch made here and wrapped to each member of the channel, the
// base keys other members wrapped to us, chat under keys derived from them, and the security code.
// DOM-free: the page hands in the transport (`share`) and the compliance sealing (`seal`).

import { base64url, fromBase64url } from "../signing.js";

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
const NONCE_BYTES = 12;
export const MAX_KID = 2 ** 48 - 1;
export const CHAT_INFO = "mediation chat v1";
const WRAP_INFO = "mediation key wrap v1";
const CODE_CONTEXT = "mediation security code v1";

/**
 * @typedef {"main" | "caucus"} Channel
 * @typedef {{kid: number, epoch: number, key: CryptoKey}} SendKey
 * @typedef {{participantId: string, channel: string, epoch: number, key: CryptoKey}} ReceiveKey
 * @typedef {{participant_id: string, public_key?: string | null, status?: string, role?: string,
 *   connected?: boolean, in_caucus?: boolean}} RosterEntry
 * @typedef {{participants?: RosterEntry[], caucus?: {active?: boolean, members?: string[]}}} RosterState
 * @typedef {{channel: Channel, epoch: number, kid: number, keys: {participant_id: string, wrapped: string}[]}} SharePayload
 * @typedef {{participant_id: string, public_key: string, channel: string, epoch: number, kid: number, wrapped: string}} KeysShared
 * @typedef {{kid: number, channel: Channel, epoch: number, participantId: string, publicKey: string,
 *   sessionId: string, baseKey: Uint8Array}} KeyToSeal
 */

/** Whether this browser's WebCrypto has X25519 (else it joins without a key: the visible fallback). */
export async function e2eeSupported(subtle = globalThis.crypto?.subtle) {
  if (!subtle) return false;
  try {
    await subtle.generateKey({ name: "X25519" }, false, ["deriveBits"]);
    return true;
  } catch {
    return false;
  }
}

/** A random KID, 0 ≤ KID < 2^48. */
function randomKid() {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return bytes.reduce((value, byte) => value * 256 + byte, 0);
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

/** base64url to bytes backed by a plain ArrayBuffer, as WebCrypto takes them. @param {string} text */
function bytesOf(text) {
  return new Uint8Array(fromBase64url(text));
}

/** @param {Uint8Array} a @param {Uint8Array} b */
function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** The lines a wrapped key's tag covers (docs/protocol.md). @param {(string | number)[]} parts */
function lines(...parts) {
  return utf8.encode(parts.map(String).join("\n"));
}

/**
 * The security code of a roster: five groups of five digits from the admitted members' device keys.
 * @param {RosterEntry[]} participants
 */
export async function securityCode(participants, subtle = globalThis.crypto.subtle) {
  const keyed = participants
    .filter((p) => p.status === "admitted" && p.role !== "recorder" && typeof p.public_key === "string")
    .sort((a, b) => (a.participant_id < b.participant_id ? -1 : a.participant_id > b.participant_id ? 1 : 0));
  const text = CODE_CONTEXT + keyed.map((p) => `\n${p.participant_id} ${p.public_key}`).join("");
  const digest = new Uint8Array(await subtle.digest("SHA-256", utf8.encode(text)));
  const groups = [];
  for (let i = 0; i < 15; i += 3) {
    const value = (digest[i] * 65536 + digest[i + 1] * 256 + digest[i + 2]) % 100000;
    groups.push(String(value).padStart(5, "0"));
  }
  return groups.join(" ");
}

export class E2eeSession extends EventTarget {
  /**
   * @param {{sessionId: string, share: (payload: SharePayload) => Promise<unknown>,
   *   seal?: ((key: KeyToSeal) => Promise<void>) | null, subtle?: SubtleCrypto}} options
   *   `share` sends share_keys; `seal` seals a new base key to the compliance recipients and files it,
   *   and must resolve before the key is shared or used (null: the room records nothing).
   */
  constructor({ sessionId, share, seal = null, subtle = globalThis.crypto.subtle }) {
    super();
    this.sessionId = sessionId;
    this._share = share;
    this._seal = seal;
    this._subtle = subtle;
    /** @type {CryptoKeyPair | null} */
    this._pair = null;
    /** base64url of this join's raw X25519 public key */
    this.publicKey = "";
    this.participantId = "";
    /** @type {Map<string, SendKey>} channel -> the key this page sends with now */
    this._send = new Map();
    /** @type {Map<string, number>} channel -> its last epoch here */
    this._epochs = new Map();
    /** @type {Map<number, ReceiveKey>} every key made or received in this join, for chat history */
    this._keys = new Map();
    /** @type {Map<number, ReceiveKey>} the keys in force: dropped when their sender leaves the channel */
    this._live = new Map();
    /** @type {Map<string, string>} participant id -> public key, as on the roster */
    this._roster = new Map();
    /** @type {KeysShared[]} wrapped keys whose sender's key is not (yet) on the roster */
    this._pending = [];
    /** @type {Map<string, string>} channel -> the membership its current send key was made for */
    this._members = new Map();
    this.code = "";
    /** @type {Promise<void>} one roster change at a time, in order */
    this._queue = Promise.resolve();
  }

  /** Make this join's key pair; the private key never leaves WebCrypto. */
  async start() {
    this._pair = /** @type {CryptoKeyPair} */ (
      await this._subtle.generateKey({ name: "X25519" }, false, ["deriveBits"]));
    this.publicKey = base64url(new Uint8Array(await this._subtle.exportKey("raw", this._pair.publicKey)));
    return this.publicKey;
  }

  /** @param {string} channel @returns {SendKey | null} */
  currentSendKey(channel) {
    return this._send.get(channel) || null;
  }

  /** @param {number} kid @returns {ReceiveKey | undefined} */
  receiveKey(kid) {
    return this._live.get(kid);
  }

  /**
   * Take a roster (room_state): the security code, keys waiting for their sender, and a new base key for
   * `channel` when its members (who, with which key, connected) changed. Runs in order.
   * @param {RosterState} room @param {Channel} channel
   */
  updateRoster(room, channel) {
    const next = this._queue.then(() => this._updateRoster(room, channel));
    this._queue = next.catch(() => {});
    return next;
  }

  /** @param {RosterState} room @param {Channel} channel */
  async _updateRoster(room, channel) {
    const participants = Array.isArray(room.participants) ? room.participants : [];
    this._roster = new Map(participants.filter((p) => typeof p.public_key === "string")
      .map((p) => [p.participant_id, /** @type {string} */ (p.public_key)]));
    const code = await securityCode(participants, this._subtle);
    if (code !== this.code) {
      this.code = code;
      this.dispatchEvent(new CustomEvent("securitycode", { detail: { code } }));
    }
    const caucus = Array.isArray(room.caucus?.members) ? room.caucus.members : [];
    const members = participants.filter((p) => p.status === "admitted" && p.role !== "recorder"
      && p.participant_id !== this.participantId && typeof p.public_key === "string" && p.connected !== false
      && (channel === "caucus" ? caucus.includes(p.participant_id) : !caucus.includes(p.participant_id)));
    // Whether a caucus runs is part of the main channel's membership: those left out rotate when it opens.
    const fingerprint = JSON.stringify([Boolean(room.caucus?.active),
      members.map((p) => `${p.participant_id} ${p.public_key}`).sort()]);
    this._dropLeft(participants, channel, caucus);
    const pending = this._pending;
    this._pending = [];
    for (const notice of pending) await this.acceptShared(notice);
    if (this._members.get(channel) !== fingerprint) {
      this._members.set(channel, fingerprint);
      try {
        await this._rotate(channel, members);
      } catch (error) {
        this._members.delete(channel); // not filed or not shared: the next roster (or send) tries again
        throw error;
      }
    }
  }

  /**
   * Keys of senders no longer on the roster (or not in our channel) leave the keys in force.
   * @param {RosterEntry[]} participants @param {Channel} channel @param {string[]} caucus
   */
  _dropLeft(participants, channel, caucus) {
    for (const [kid, key] of this._live) {
      const sender = participants.find((p) => p.participant_id === key.participantId);
      const stillIn = sender && sender.status === "admitted" && sender.public_key === this._roster.get(key.participantId)
        && key.channel === channel
        && (channel === "caucus" || !caucus.includes(key.participantId));
      if (!stillIn && key.participantId !== this.participantId) {
        this._live.delete(kid);
        this.dispatchEvent(new CustomEvent("dropkey", { detail: { kid } }));
      }
    }
  }

  /**
   * A new epoch: a fresh base key, sealed for compliance, wrapped to each member.
   * @param {Channel} channel @param {RosterEntry[]} members
   */
  async _rotate(channel, members) {
    if (!this._pair || !this.participantId) return;
    const epoch = (this._epochs.get(channel) ?? -1) + 1;
    this._epochs.set(channel, epoch);
    let kid = randomKid();
    while (this._keys.has(kid)) kid = randomKid();
    const raw = crypto.getRandomValues(new Uint8Array(32));
    try {
      if (this._seal) {
        await this._seal({ kid, channel, epoch, participantId: this.participantId, publicKey: this.publicKey,
          sessionId: this.sessionId, baseKey: raw });
      }
      const key = await this._subtle.importKey("raw", raw, "HKDF", false, ["deriveBits", "deriveKey"]);
      const keys = [];
      for (const member of members) {
        const wrapped = await this._wrap(raw, member.participant_id, /** @type {string} */ (member.public_key),
          channel, epoch, kid);
        keys.push({ participant_id: member.participant_id, wrapped });
      }
      const mine = { participantId: this.participantId, channel, epoch, key };
      this._keys.set(kid, mine);
      this._live.set(kid, mine);
      this._send.set(channel, { kid, epoch, key });
      this.dispatchEvent(new CustomEvent("sendkey", { detail: { channel, kid, epoch, key } }));
      if (keys.length) await this._share({ channel, epoch, kid, keys });
    } finally {
      raw.fill(0);
    }
  }

  /** The AES-GCM key wrapping base keys between us and `peerPublic`. @param {string} peerPublic */
  async _wrapKey(peerPublic) {
    if (!this._pair) throw new Error("E2eeSession.start() was not called");
    const peer = await this._subtle.importKey("raw", bytesOf(peerPublic), { name: "X25519" }, false, []);
    const shared = await this._subtle.deriveBits({ name: "X25519", public: peer }, this._pair.privateKey, 256);
    const ikm = await this._subtle.importKey("raw", shared, "HKDF", false, ["deriveKey"]);
    return this._subtle.deriveKey({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: utf8.encode(WRAP_INFO) },
      ikm, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  }

  /**
   * @param {Uint8Array<ArrayBuffer>} raw @param {string} to @param {string} toPublic @param {string} channel
   * @param {number} epoch @param {number} kid
   */
  async _wrap(raw, to, toPublic, channel, epoch, kid) {
    const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
    const aad = lines(WRAP_INFO, this.sessionId, this.participantId, this.publicKey, to, toPublic, channel, epoch, kid);
    const sealed = await this._subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad },
      await this._wrapKey(toPublic), raw);
    return base64url(concat(nonce, new Uint8Array(sealed)));
  }

  /**
   * A keys_shared notice: unwrap the sender's base key, if the sender's key is the one on our roster
   * (what the security code covers) and its KID is not another member's. Resolves whether it was taken.
   * @param {KeysShared} notice
   */
  async acceptShared(notice) {
    const { participant_id: from, channel, epoch, kid } = notice;
    if (!Number.isInteger(kid) || kid < 0 || kid > MAX_KID || !Number.isInteger(epoch)) return false;
    const known = this._roster.get(from);
    if (known === undefined) {
      this._pending.push(notice); // the roster naming this sender has not arrived yet
      return false;
    }
    if (known !== notice.public_key) return false; // not the key everyone's code covers
    const taken = this._keys.get(kid);
    if (taken && taken.participantId !== from) return false; // a KID is one member's
    if (taken) return true;
    let raw;
    try {
      const data = bytesOf(notice.wrapped);
      const aad = lines(WRAP_INFO, this.sessionId, from, known, this.participantId, this.publicKey, channel, epoch, kid);
      raw = new Uint8Array(await this._subtle.decrypt({ name: "AES-GCM", iv: data.slice(0, NONCE_BYTES), additionalData: aad },
        await this._wrapKey(known), data.slice(NONCE_BYTES)));
    } catch {
      return false; // not wrapped for this device by that sender
    }
    const key = await this._subtle.importKey("raw", raw, "HKDF", false, ["deriveBits", "deriveKey"]);
    raw.fill(0);
    const received = { participantId: from, channel, epoch, key };
    this._keys.set(kid, received);
    this._live.set(kid, received);
    this.dispatchEvent(new CustomEvent("receivekey", { detail: { participantId: from, channel, kid, epoch, key } }));
    return true;
  }

  /** @param {CryptoKey} base @param {number} kid */
  _chatKey(base, kid) {
    return this._subtle.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: concat(utf8.encode(CHAT_INFO), kidBytes(kid)) },
      base, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  }

  /**
   * send_chat's payload for `text` (already normalised) under our current key of `channel`.
   * @param {Channel} channel @param {string} text
   */
  async encryptChat(channel, text) {
    const current = this._send.get(channel);
    if (!current) throw new Error(`no key for the ${channel} channel yet`);
    const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
    const aad = lines(CHAT_INFO, this.sessionId, this.participantId, channel, current.kid);
    const sealed = await this._subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad },
      await this._chatKey(current.key, current.kid), utf8.encode(text));
    return { ciphertext: base64url(concat(nonce, new Uint8Array(sealed))), kid: current.kid, channel };
  }

  /**
   * The text of an encrypted chat_message, or null when this join holds no key for it from its sender
   * and channel, or it does not decrypt.
   * @param {{participant_id: string, channel?: string, kid?: number, ciphertext?: string}} message
   */
  async decryptChat(message) {
    const { kid, ciphertext } = message;
    const channel = message.channel || "main";
    if (typeof kid !== "number" || typeof ciphertext !== "string") return null;
    const key = this._keys.get(kid);
    if (!key || key.participantId !== message.participant_id || key.channel !== channel) return null;
    try {
      const data = bytesOf(ciphertext);
      const aad = lines(CHAT_INFO, this.sessionId, message.participant_id, channel, kid);
      const plain = await this._subtle.decrypt({ name: "AES-GCM", iv: data.slice(0, NONCE_BYTES), additionalData: aad },
        await this._chatKey(key.key, kid), data.slice(NONCE_BYTES));
      return utf8Decoder.decode(plain);
    } catch {
      return null;
    }
  }
}
