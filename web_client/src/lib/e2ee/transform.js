// The media-encryption worker's state and its frame transforms: the send key with its counter,
// the receive keys with their replay windows, and the counters of what was dropped. One instance
// per worker, shared by every RTCRtpScriptTransform of a page's MediaEncryption (./sframe.js),
// so that one send key's CTR is never used twice across connections and kinds. No DOM here.

import { deriveFrameKey, protectMediaFrame, splitMediaFrame, unprotectMediaFrame } from "./frame.js";

// How far back (in CTR values) a frame may arrive after a later one of the same KID. One counter
// runs over every frame a page sends (audio and video, to every peer and the recorder), so a
// receiver sees gaps and video arrives behind audio: a few seconds of a busy sender's frames.
export const REPLAY_WINDOW = 8192;
export const MAX_KID = 2 ** 48; // the key layer's KIDs are below it (shared e2ee design)

/** @typedef {import("./frame.js").FrameKey} FrameKey */
/** @typedef {import("./frame.js").Bytes} Bytes */

/**
 * @typedef {object} ReceiveKey
 * @property {FrameKey} frameKey
 * @property {number} highest the largest CTR authenticated so far (-1: none)
 * @property {Set<number>} seen authenticated CTRs within the window below `highest`
 */

/**
 * @typedef {object} Counters
 * @property {number} encrypted
 * @property {number} decrypted
 * @property {number} droppedNoSendKey frames not sent: no send key yet (never sent in clear)
 * @property {number} droppedNoKey received frames of a KID we hold no key for
 * @property {number} droppedAuth received frames that did not authenticate
 * @property {number} droppedReplay received frames whose CTR was already used or is too old
 * @property {number} droppedMalformed received frames too short for a header and a tag
 * @property {number} droppedError frames a crypto call failed on unexpectedly (dropped, the stream goes on)
 */

/**
 * @typedef {{op: "setSendKey", kid: number, baseKey: CryptoKey}
 *   | {op: "addReceiveKey", kid: number, baseKey: CryptoKey}
 *   | {op: "removeReceiveKey", kid: number}
 *   | {op: "stats"}} Command
 */

/**
 * @param {unknown} kid
 * @returns {number}
 */
export function checkKid(kid) {
  if (typeof kid !== "number" || !Number.isSafeInteger(kid) || kid < 0 || kid >= MAX_KID) {
    throw new RangeError(`KID must be an integer in [0, 2^48), not ${String(kid)}`);
  }
  return kid;
}

/**
 * "video" for an RTCEncodedVideoFrame (it has a `type`: key, delta or empty), "audio" otherwise.
 * @param {{type?: unknown}} frame
 * @returns {"audio" | "video"}
 */
export function frameKind(frame) {
  return typeof frame.type === "string" ? "video" : "audio";
}

export class FrameCrypto {
  constructor() {
    /** @type {FrameKey | null} */
    this.sendKey = null;
    /** @type {Map<number, number>} KID -> next CTR; kept for every KID ever sent with */
    this.nextCtr = new Map();
    /** @type {Map<number, ReceiveKey>} */
    this.receiveKeys = new Map();
    /** @type {Counters} */
    this.counters = {
      encrypted: 0, decrypted: 0, droppedNoSendKey: 0, droppedNoKey: 0, droppedAuth: 0, droppedReplay: 0,
      droppedMalformed: 0, droppedError: 0,
    };
  }

  /**
   * @param {number} kid
   * @param {CryptoKey} baseKey
   */
  async setSendKey(kid, baseKey) {
    const frameKey = await deriveFrameKey(baseKey, checkKid(kid));
    if (this.receiveKeys.has(kid)) throw new Error(`KID ${kid} is a receive key; a key is for sending or receiving`);
    this.sendKey = frameKey;
    if (!this.nextCtr.has(kid)) this.nextCtr.set(kid, 0);
  }

  /**
   * @param {number} kid
   * @param {CryptoKey} baseKey
   */
  async addReceiveKey(kid, baseKey) {
    const frameKey = await deriveFrameKey(baseKey, checkKid(kid));
    if (this.nextCtr.has(kid)) throw new Error(`KID ${kid} is our send key; a key is for sending or receiving`);
    const known = this.receiveKeys.get(kid);
    // A key added again keeps its window: a replayed frame stays refused.
    this.receiveKeys.set(kid, { frameKey, highest: known ? known.highest : -1, seen: known ? known.seen : new Set() });
  }

  /** @param {number} kid */
  removeReceiveKey(kid) {
    this.receiveKeys.delete(kid);
  }

  /**
   * One frame to send, protected; null when there is no send key (it is dropped, never sent clear).
   * @param {"audio" | "video"} kind
   * @param {Bytes} data
   * @returns {Promise<Bytes | null>}
   */
  async encrypt(kind, data) {
    const frameKey = this.sendKey;
    if (!frameKey) {
      this.counters.droppedNoSendKey++;
      return null;
    }
    const kid = Number(frameKey.kid);
    // Taken before any await: concurrent transforms never share a CTR.
    const ctr = /** @type {number} */ (this.nextCtr.get(kid));
    if (!Number.isSafeInteger(ctr + 1)) throw new Error(`CTR of KID ${kid} exhausted`);
    this.nextCtr.set(kid, ctr + 1);
    const out = await protectMediaFrame(kind, frameKey, ctr, data);
    this.counters.encrypted++;
    return out;
  }

  /**
   * One received frame, authenticated and decrypted; null (and counted) when it must be dropped.
   * @param {"audio" | "video"} kind
   * @param {Bytes} data
   * @returns {Promise<Bytes | null>}
   */
  async decrypt(kind, data) {
    const parts = splitMediaFrame(kind, data);
    if (!parts) {
      this.counters.droppedMalformed++;
      return null;
    }
    const kid = Number(parts.header.kid);
    const ctr = Number(parts.header.ctr);
    const entry = this.receiveKeys.get(kid);
    if (!entry || parts.header.kid >= BigInt(MAX_KID)) {
      this.counters.droppedNoKey++;
      return null;
    }
    if (!Number.isSafeInteger(ctr) || this._replayed(entry, ctr)) {
      this.counters.droppedReplay++;
      return null;
    }
    let plain;
    try {
      plain = await unprotectMediaFrame(entry.frameKey, parts);
    } catch {
      this.counters.droppedAuth++;
      return null;
    }
    // Checked again: another transform may have taken the same CTR while we decrypted.
    if (this._replayed(entry, ctr)) {
      this.counters.droppedReplay++;
      return null;
    }
    this._accept(entry, ctr);
    this.counters.decrypted++;
    return plain;
  }

  /**
   * @param {ReceiveKey} entry
   * @param {number} ctr
   */
  _replayed(entry, ctr) {
    return entry.seen.has(ctr) || ctr <= entry.highest - REPLAY_WINDOW;
  }

  /**
   * @param {ReceiveKey} entry
   * @param {number} ctr
   */
  _accept(entry, ctr) {
    entry.seen.add(ctr);
    if (ctr > entry.highest) entry.highest = ctr;
    if (entry.seen.size > 2 * REPLAY_WINDOW) {
      const floor = entry.highest - REPLAY_WINDOW;
      for (const old of entry.seen) if (old <= floor) entry.seen.delete(old);
    }
  }

  /**
   * A worker message from MediaEncryption; the reply's `result` or `error` answers it.
   * @param {Command} command
   * @returns {Promise<unknown>}
   */
  async handle(command) {
    switch (command.op) {
      case "setSendKey":
        return this.setSendKey(command.kid, command.baseKey);
      case "addReceiveKey":
        return this.addReceiveKey(command.kid, command.baseKey);
      case "removeReceiveKey":
        return this.removeReceiveKey(command.kid);
      case "stats":
        return { ...this.counters };
      default:
        throw new Error(`unknown media-encryption command ${JSON.stringify(/** @type {any} */ (command).op)}`);
    }
  }

  /**
   * Runs one RTCRtpScriptTransform: every frame of `transformer.readable` goes through encrypt
   * (side "send") or decrypt (side "receive"); a frame that yields null is not passed on.
   * @param {{readable: ReadableStream<any>, writable: WritableStream<any>, options?: any}} transformer
   * @returns {Promise<void>}
   */
  run(transformer) {
    const side = transformer.options && transformer.options.side;
    if (side !== "send" && side !== "receive") {
      return Promise.reject(new Error(`transform side must be "send" or "receive", not ${JSON.stringify(side)}`));
    }
    const step = side === "send" ? this.encrypt.bind(this) : this.decrypt.bind(this);
    return transformer.readable
      .pipeThrough(new TransformStream({
        transform: async (frame, controller) => {
          let out;
          try {
            out = await step(frameKind(frame), new Uint8Array(frame.data));
          } catch {
            // One failed call must not end the stream (and with it every later frame); the frame is
            // dropped, never passed on unprotected or undecrypted.
            this.counters.droppedError++;
            return;
          }
          if (!out) return;
          frame.data = out.buffer.byteLength === out.byteLength ? out.buffer : out.slice().buffer;
          controller.enqueue(frame);
        },
      }))
      .pipeTo(transformer.writable);
  }
}
