// End-to-end encryption of a page's media frames: SFrame (RFC 9605, AES_128_GCM_SHA256_128) in
// encoded transforms. Each sender's encoded frames are encrypted, and each receiver's decrypted,
// in one worker (src/workers/sframe.js, state in ./transform.js, format in ./frame.js) before the
// packetizer and after the depacketizer: nodes, Janus and the recorder carry only ciphertext.
//
// The key layer (E2eeSession, ./keys.js) gives the keys; the room's connection code calls
// protectSender / protectReceiver on every RTCRtpSender / RTCRtpReceiver it makes. Wiring the
// two, a few lines (`bindKeySource` below):
//   sendkey {kid, key}    -> setSendKey(kid, key)
//   receivekey {kid, key} -> addReceiveKey(kid, key)
//   dropkey {kid}         -> removeReceiveKey(kid)

export const WORKER_URL = "/dist/workers/sframe.js";

/**
 * @typedef {import("./transform.js").Counters} Counters
 */

/**
 * True when this browser can run the transforms (it has RTCRtpScriptTransform and workers).
 * @returns {boolean}
 */
export function mediaEncryptionSupported() {
  return typeof globalThis.RTCRtpScriptTransform === "function" && typeof globalThis.Worker === "function";
}

export class MediaEncryption {
  /**
   * @param {object} [options]
   * @param {string | URL} [options.workerUrl] where the bundled worker is served
   */
  constructor({ workerUrl = WORKER_URL } = {}) {
    if (!mediaEncryptionSupported()) {
      throw new Error("this browser has no RTCRtpScriptTransform: media cannot be end-to-end encrypted");
    }
    this.worker = new Worker(workerUrl, { name: "sframe" });
    /** @type {Map<number, {resolve: (value: any) => void, reject: (error: Error) => void}>} */
    this._pending = new Map();
    this._nextId = 1;
    /** @type {string[]} transforms that stopped with an error (the worker says so) */
    this.failures = [];
    this.closed = false;
    this.worker.onmessage = (event) => this._onMessage(event.data);
    this.worker.onerror = (event) => {
      const error = new Error(`media-encryption worker failed: ${event.message}`);
      for (const { reject } of this._pending.values()) reject(error);
      this._pending.clear();
    };
  }

  /**
   * Frames we send from now on are encrypted with this key (CTR from 0 for a new KID).
   * @param {number} kid
   * @param {CryptoKey} baseKey HKDF key, usages deriveBits and deriveKey (may be non-extractable)
   * @returns {Promise<void>}
   */
  setSendKey(kid, baseKey) {
    return this._request({ op: "setSendKey", kid, baseKey });
  }

  /**
   * Frames carrying `kid` decrypt with this key once the promise resolves.
   * @param {number} kid
   * @param {CryptoKey} baseKey
   * @returns {Promise<void>}
   */
  addReceiveKey(kid, baseKey) {
    return this._request({ op: "addReceiveKey", kid, baseKey });
  }

  /**
   * Frames carrying `kid` are dropped from now on.
   * @param {number} kid
   */
  removeReceiveKey(kid) {
    this._request({ op: "removeReceiveKey", kid }).catch(() => {});
  }

  /**
   * What the worker encrypted, decrypted and dropped so far.
   * @returns {Promise<Counters>}
   */
  stats() {
    return this._request({ op: "stats" });
  }

  /**
   * Encrypt every frame `sender` sends; without a send key its frames are dropped, never sent clear.
   * @param {RTCRtpSender} sender
   */
  protectSender(sender) {
    this._attach(sender, "send");
  }

  /**
   * Decrypt every frame `receiver` gets; a frame that does not authenticate never reaches the decoder.
   * @param {RTCRtpReceiver} receiver
   */
  protectReceiver(receiver) {
    this._attach(receiver, "receive");
  }

  /** Stops the worker: protected senders and receivers stop passing frames. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.worker.terminate();
    const error = new Error("media encryption closed");
    for (const { reject } of this._pending.values()) reject(error);
    this._pending.clear();
  }

  /**
   * @param {RTCRtpSender | RTCRtpReceiver} endpoint
   * @param {"send" | "receive"} side
   */
  _attach(endpoint, side) {
    if (this.closed) throw new Error('Cannot protect a sender or receiver in media-encryption state "closed"');
    const target = /** @type {{transform: unknown}} */ (/** @type {unknown} */ (endpoint));
    if (target.transform) return; // already protected (a renegotiation hands us the same one again)
    target.transform = new RTCRtpScriptTransform(this.worker, { side });
  }

  /**
   * @param {import("./transform.js").Command} command
   * @returns {Promise<any>}
   */
  _request(command) {
    if (this.closed) return Promise.reject(new Error('media encryption is in state "closed"'));
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      this._pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, command });
    });
  }

  /** @param {any} message */
  _onMessage(message) {
    if (!message || typeof message !== "object") return;
    if (message.event === "transform_failed") {
      this.failures.push(String(message.message));
      return;
    }
    const waiting = this._pending.get(message.id);
    if (!waiting) return;
    this._pending.delete(message.id);
    if (typeof message.error === "string") waiting.reject(new Error(message.error));
    else waiting.resolve(message.result);
  }
}

/**
 * Keeps `media`'s keys in step with a key source's events (the E2eeSession of the key layer),
 * for one channel; returns the function that stops listening.
 * @param {MediaEncryption} media
 * @param {EventTarget} keys fires `sendkey` {channel, kid, key}, `receivekey` {kid, key}, `dropkey` {kid}
 * @param {string} channel the channel whose send key we use ("main", or "caucus" while in one)
 * @param {(error: unknown) => void} [onError]
 * @returns {() => void}
 */
export function bindKeySource(media, keys, channel, onError = () => {}) {
  /** @type {Record<string, (event: Event) => void>} */
  const handlers = {
    sendkey: (event) => {
      const detail = /** @type {CustomEvent} */ (event).detail;
      if (detail.channel === channel) media.setSendKey(detail.kid, detail.key).catch(onError);
    },
    receivekey: (event) => {
      const detail = /** @type {CustomEvent} */ (event).detail;
      media.addReceiveKey(detail.kid, detail.key).catch(onError);
    },
    dropkey: (event) => media.removeReceiveKey(/** @type {CustomEvent} */ (event).detail.kid),
  };
  for (const [name, handler] of Object.entries(handlers)) keys.addEventListener(name, handler);
  return () => {
    for (const [name, handler] of Object.entries(handlers)) keys.removeEventListener(name, handler);
  };
}
