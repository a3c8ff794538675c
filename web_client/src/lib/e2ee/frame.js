// SFrame (RFC 9605) for one media frame: the header, the key and salt of a base key, and the
// AEAD of cipher suite AES_128_GCM_SHA256_128 (0x0004), over WebCrypto. No DOM and no WebRTC
// here: the worker (./transform.js) and the Node tests use it alike.
//
// What a protected frame looks like on the wire (docs/protocol.md, "Media frame encryption"):
//
//   clear prefix (VP8 payload header; nothing for Opus) || SFrame header || AES-GCM(frame rest) || tag
//
// The clear prefix is the SFrame "metadata" (RFC 9605 §9.4): it is authenticated as AAD after the
// header, so a node that reads it cannot alter it.

export const CIPHER_SUITE = 0x0004; // AES_128_GCM_SHA256_128
const KEY_BITS = 128; // AEAD.Nk = 16
const NONCE_BYTES = 12; // AEAD.Nn
const TAG_BITS = 128; // AEAD.Nt = 16
export const TAG_BYTES = TAG_BITS / 8;
const MAX_U64 = (1n << 64n) - 1n;

// VP8 (RFC 6386 §9.1): the 3-byte frame tag (P bit, version, show_frame, first partition size),
// and on key frames the start code 9d 01 2a and the 14-bit width and height with their scaling.
export const VP8_KEY_PREFIX = 10;
export const VP8_DELTA_PREFIX = 3;

/** @typedef {Uint8Array<ArrayBuffer>} Bytes */

const encoder = new TextEncoder();

/**
 * @param {number | bigint} value
 * @param {string} name
 * @returns {bigint}
 */
function u64(value, name) {
  const big = typeof value === "bigint" ? value : Number.isSafeInteger(value) ? BigInt(value) : -1n;
  if (big < 0n || big > MAX_U64) throw new RangeError(`${name} must be an unsigned 64-bit integer, not ${value}`);
  return big;
}

/**
 * The minimal big-endian bytes of `value` (> 0).
 * @param {bigint} value
 * @returns {number[]}
 */
function compact(value) {
  /** @type {number[]} */
  const bytes = [];
  for (let rest = value; rest > 0n; rest >>= 8n) bytes.unshift(Number(rest & 0xffn));
  return bytes;
}

/**
 * The SFrame header for `kid` and `ctr` (RFC 9605 §4.3): values 0–7 in the config byte, others in
 * the fewest big-endian bytes after it, KID first.
 * @param {number | bigint} kid
 * @param {number | bigint} ctr
 * @returns {Bytes}
 */
export function encodeHeader(kid, ctr) {
  const k = u64(kid, "KID");
  const c = u64(ctr, "CTR");
  let config = 0;
  /** @type {number[]} */
  const tail = [];
  if (k < 8n) config |= Number(k) << 4;
  else {
    const bytes = compact(k);
    config |= 0x80 | ((bytes.length - 1) << 4);
    tail.push(...bytes);
  }
  if (c < 8n) config |= Number(c);
  else {
    const bytes = compact(c);
    config |= 0x08 | (bytes.length - 1);
    tail.push(...bytes);
  }
  return Uint8Array.of(config, ...tail);
}

/**
 * @param {Bytes} data
 * @param {number} offset
 * @param {number} length
 * @returns {bigint}
 */
function readBig(data, offset, length) {
  let value = 0n;
  for (let i = 0; i < length; i++) value = (value << 8n) | BigInt(data[offset + i]);
  return value;
}

/**
 * The header at `offset` of `data`, or null when it is cut short or not minimally encoded (a
 * header this code would never write: refused rather than guessed at).
 * @param {Bytes} data
 * @param {number} [offset]
 * @returns {{kid: bigint, ctr: bigint, size: number} | null}
 */
export function parseHeader(data, offset = 0) {
  if (offset >= data.length) return null;
  const config = data[offset];
  let at = offset + 1;
  let kid = BigInt((config >> 4) & 0x07);
  if (config & 0x80) {
    const length = Number(kid) + 1;
    if (at + length > data.length) return null;
    kid = readBig(data, at, length);
    if (kid < 8n || (length > 1 && data[at] === 0)) return null;
    at += length;
  }
  let ctr = BigInt(config & 0x07);
  if (config & 0x08) {
    const length = Number(ctr) + 1;
    if (at + length > data.length) return null;
    ctr = readBig(data, at, length);
    if (ctr < 8n || (length > 1 && data[at] === 0)) return null;
    at += length;
  }
  return { kid, ctr, size: at - offset };
}

/**
 * "SFrame 1.0 Secret key " / "... salt " || KID (8 bytes, big-endian) || cipher suite (2 bytes).
 * @param {"key" | "salt"} what
 * @param {number | bigint} kid
 * @returns {Bytes}
 */
export function derivationLabel(what, kid) {
  const text = encoder.encode(`SFrame 1.0 Secret ${what} `);
  const label = new Uint8Array(text.length + 10);
  label.set(text);
  const view = new DataView(label.buffer);
  view.setBigUint64(text.length, u64(kid, "KID"));
  view.setUint16(text.length + 8, CIPHER_SUITE);
  return label;
}

/**
 * @typedef {object} FrameKey what one KID encrypts or decrypts with
 * @property {bigint} kid
 * @property {CryptoKey} key AES-GCM, 128 bits, not extractable
 * @property {Bytes} salt 12 bytes
 */

/**
 * sframe_key and sframe_salt of a base key (RFC 9605 §4.4.2): HKDF-SHA256 with an empty salt,
 * which is HKDF-Extract("", base_key) followed by HKDF-Expand with each label.
 * @param {CryptoKey} baseKey an HKDF key with the "deriveBits" and "deriveKey" usages
 * @param {number | bigint} kid
 * @param {SubtleCrypto} [subtle]
 * @returns {Promise<FrameKey>}
 */
export async function deriveFrameKey(baseKey, kid, subtle = globalThis.crypto.subtle) {
  const empty = new Uint8Array(0);
  const key = await subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: empty, info: derivationLabel("key", kid) },
    baseKey, { name: "AES-GCM", length: KEY_BITS }, false, ["encrypt", "decrypt"]);
  const salt = new Uint8Array(await subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: empty, info: derivationLabel("salt", kid) },
    baseKey, NONCE_BYTES * 8));
  return { kid: u64(kid, "KID"), key, salt };
}

/**
 * A base key given as bytes (tests, the compliance page), as the key layer holds it.
 * @param {Bytes} raw
 * @param {SubtleCrypto} [subtle]
 * @returns {Promise<CryptoKey>}
 */
export function importBaseKey(raw, subtle = globalThis.crypto.subtle) {
  return subtle.importKey("raw", raw, "HKDF", false, ["deriveBits", "deriveKey"]);
}

/**
 * nonce = salt XOR CTR, CTR as a 12-byte big-endian integer (RFC 9605 §4.4.3).
 * @param {Bytes} salt
 * @param {number | bigint} ctr
 * @returns {Bytes}
 */
export function frameNonce(salt, ctr) {
  const counter = new Uint8Array(NONCE_BYTES);
  new DataView(counter.buffer).setBigUint64(NONCE_BYTES - 8, u64(ctr, "CTR"));
  return salt.map((byte, i) => byte ^ counter[i]);
}

/**
 * @param {Bytes} a
 * @param {Bytes} b
 * @returns {Bytes}
 */
function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * SFrame encryption (RFC 9605 §4.4.3): header || AEAD(key, nonce, header || metadata, plaintext).
 * @param {FrameKey} frameKey
 * @param {number | bigint} ctr
 * @param {Bytes} metadata
 * @param {Bytes} plaintext
 * @param {SubtleCrypto} [subtle]
 * @returns {Promise<Bytes>}
 */
export async function sealFrame(frameKey, ctr, metadata, plaintext, subtle = globalThis.crypto.subtle) {
  const header = encodeHeader(frameKey.kid, ctr);
  const sealed = await subtle.encrypt(
    { name: "AES-GCM", iv: frameNonce(frameKey.salt, ctr), additionalData: concat(header, metadata),
      tagLength: TAG_BITS },
    frameKey.key, plaintext);
  return concat(header, new Uint8Array(sealed));
}

/**
 * SFrame decryption (RFC 9605 §4.4.4); throws when the frame does not authenticate.
 * @param {FrameKey} frameKey the key of the header's KID
 * @param {{kid: bigint, ctr: bigint, size: number}} header parsed from `sframe`
 * @param {Bytes} metadata
 * @param {Bytes} sframe header || ciphertext
 * @param {SubtleCrypto} [subtle]
 * @returns {Promise<Bytes>}
 */
export async function openFrame(frameKey, header, metadata, sframe, subtle = globalThis.crypto.subtle) {
  if (header.kid !== frameKey.kid) throw new Error(`frame KID ${header.kid} is not the key's KID ${frameKey.kid}`);
  if (sframe.length < header.size + TAG_BYTES) throw new Error("frame shorter than its header and tag");
  const plain = await subtle.decrypt(
    { name: "AES-GCM", iv: frameNonce(frameKey.salt, header.ctr),
      additionalData: concat(sframe.subarray(0, header.size), metadata), tagLength: TAG_BITS },
    frameKey.key, sframe.subarray(header.size));
  return new Uint8Array(plain);
}

/**
 * How many leading bytes of an encoded frame stay in clear: for VP8 the payload header the
 * packetizer, Janus and the recorder read (10 bytes of a key frame, 3 of a delta frame: the P
 * bit of the first byte tells which), nothing for Opus.
 * @param {"audio" | "video"} kind
 * @param {Bytes} data the frame as the encoder made it, or as it came off the wire
 * @returns {number}
 */
export function clearPrefixLength(kind, data) {
  if (kind !== "video" || data.length === 0) return 0;
  const keyFrame = (data[0] & 0x01) === 0;
  return Math.min(data.length, keyFrame ? VP8_KEY_PREFIX : VP8_DELTA_PREFIX);
}

/**
 * A media frame protected for the wire: clear prefix || SFrame(prefix as metadata, the rest).
 * @param {"audio" | "video"} kind
 * @param {FrameKey} frameKey
 * @param {number | bigint} ctr
 * @param {Bytes} data
 * @returns {Promise<Bytes>}
 */
export async function protectMediaFrame(kind, frameKey, ctr, data) {
  const clear = data.subarray(0, clearPrefixLength(kind, data));
  const sealed = await sealFrame(frameKey, ctr, clear, data.subarray(clear.length));
  return concat(clear, sealed);
}

/**
 * Splits a protected media frame into its clear prefix and its SFrame part; null when malformed.
 * @param {"audio" | "video"} kind
 * @param {Bytes} data
 * @returns {{clear: Bytes, sframe: Bytes, header: {kid: bigint, ctr: bigint, size: number}} | null}
 */
export function splitMediaFrame(kind, data) {
  const prefix = clearPrefixLength(kind, data);
  const sframe = data.subarray(prefix);
  const header = parseHeader(sframe);
  if (!header || sframe.length < header.size + TAG_BYTES) return null;
  return { clear: data.subarray(0, prefix), sframe, header };
}

/**
 * The media frame back from its protected form; throws when it does not authenticate.
 * @param {FrameKey} frameKey
 * @param {NonNullable<ReturnType<typeof splitMediaFrame>>} parts
 * @returns {Promise<Bytes>}
 */
export async function unprotectMediaFrame(frameKey, parts) {
  const plain = await openFrame(frameKey, parts.header, parts.clear, parts.sframe);
  return concat(parts.clear, plain);
}
