// Spec: docs/records.md (the record format and the problem codes both verifiers report).
// Signed audit checkpoints: the exact message the server signs, its Ed25519 key, and checking
// signatures (WebCrypto). Mirrors recording/records/checkpoint.py (checkpoint_message, CheckpointVerifier).
// No DOM access here.

import { base64ToBytes, bytesToHex, sha256, utf8 } from "./bytes.js";

/** @typedef {import("./types.js").Problem} Problem */

/**
 * @typedef {object} Checkpoint A signed tree head, as a manifest's inclusion gives it.
 * @property {number} treeSize
 * @property {Uint8Array} rootHash
 * @property {string} signedAt
 * @property {string} keyId
 * @property {Uint8Array<ArrayBuffer>} signature
 */

export const CHECKPOINT_CONTEXT = "mediation-audit-checkpoint/v1\n";

/** @param {number} value @param {number} [width] */
const pad = (value, width = 2) => String(value).padStart(width, "0");

/** @param {number} year @param {number} month */
function daysInMonth(year, month) {
  return [31, year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31,
    30, 31][month - 1];
}

// The ISO 8601 forms read here: a calendar date (extended or basic), "T", "t" or a space, a time
// of HH, HH:MM, HH:MM:SS (or basic HHMM, HHMMSS) with an optional fraction after "." or ",", and
// an offset "Z" or ±HH[:MM[:SS[.ffffff]]] (or basic ±HHMM[SS]). Python reads a few more; a time
// outside these is refused, never rendered differently from Python.
const DATE = /^(\d{4})-?(\d{2})-?(\d{2})$/;
// Each of time and offset is either all extended (with colons) or all basic (without).
const TIME = /^(\d{2})(?:(:?)(\d{2})(?:\2(\d{2})(?:[.,](\d+))?)?)?$/;
const OFFSET = /^([+-])(\d{2})(?:(:?)(\d{2})(?:\3(\d{2})(?:\.(\d{6}))?)?)?$/;

/**
 * Return `value` as Python's datetime.fromisoformat(value).isoformat() renders it, so that "Z"
 * and "+00:00" (and any other spelling of one instant and offset) sign alike. Throws a TypeError
 * for a time without an offset or in a form this reader does not know.
 * @param {unknown} value
 */
export function pythonIsoformat(value) {
  if (typeof value !== "string") throw new TypeError("a time must be a string");
  const match = /^(\d{4}-?\d{2}-?\d{2})[Tt ](.+?)(Z|z|[+-][\d:.]+)$/.exec(value);
  if (!match) throw new TypeError(`time ${JSON.stringify(value)} has no UTC offset or is not ISO 8601`);
  const date = DATE.exec(match[1]);
  const time = TIME.exec(match[2]);
  if (!date || !time) throw new TypeError(`time ${JSON.stringify(value)} is not an ISO 8601 time this page reads`);
  // Both parts must be basic or both extended, as Python requires of the date.
  if (match[1].length !== 10 && match[1].length !== 8) throw new TypeError(`bad date in ${JSON.stringify(value)}`);
  const [year, month, day] = [Number(date[1]), Number(date[2]), Number(date[3])];
  const [hour, minute, second] = [Number(time[1]), Number(time[3] ?? 0), Number(time[4] ?? 0)];
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59
      || second > 59) {
    throw new TypeError(`time ${JSON.stringify(value)} is out of range`);
  }
  // Python keeps microseconds: digits past the sixth are dropped, fewer are padded.
  const micro = Number(((time[5] ?? "") + "000000").slice(0, 6));
  let rendered = `${pad(year, 4)}-${pad(month)}-${pad(day)}T${pad(hour)}:${pad(minute)}:${pad(second)}`;
  if (micro) rendered += `.${pad(micro, 6)}`;
  return rendered + renderOffset(match[3], value);
}

/** @param {string} text @param {string} value */
function renderOffset(text, value) {
  if (text === "Z" || text === "z") return "+00:00";
  const offset = OFFSET.exec(text);
  if (!offset) throw new TypeError(`bad UTC offset in ${JSON.stringify(value)}`);
  const [hours, minutes, seconds] = [Number(offset[2]), Number(offset[4] ?? 0), Number(offset[5] ?? 0)];
  const micro = Number(offset[6] ?? 0);
  if (minutes > 59 || seconds > 59) throw new TypeError(`bad UTC offset in ${JSON.stringify(value)}`);
  const total = ((hours * 60 + minutes) * 60 + seconds) * 1e6 + micro;
  if (total >= 24 * 3600 * 1e6) throw new TypeError(`UTC offset out of range in ${JSON.stringify(value)}`);
  if (total === 0) return "+00:00";
  let out = `${offset[1]}${pad(hours)}:${pad(minutes)}`;
  if (seconds || micro) out += `:${pad(seconds)}`;
  if (micro) out += `.${pad(micro, 6)}`;
  return out;
}

/**
 * The exact bytes the server signs for a checkpoint (docs/records.md, "Checkpoint").
 * @param {number} treeSize @param {Uint8Array} rootHash @param {string} signedAt
 */
export function checkpointMessage(treeSize, rootHash, signedAt) {
  return utf8.encode(`${CHECKPOINT_CONTEXT}${treeSize}\n${bytesToHex(rootHash)}\n${pythonIsoformat(signedAt)}\n`);
}

/** The DER of a PEM "PUBLIC KEY" block; throws if there is none. @param {string | null | undefined} pem */
export function pemToDer(pem) {
  const match = /-----BEGIN PUBLIC KEY-----([A-Za-z0-9+/=\s]+)-----END PUBLIC KEY-----/.exec(pem ?? "");
  if (!match) throw new TypeError("not a PEM public key");
  return base64ToBytes(match[1].replace(/\s+/g, ""));
}

/**
 * The 16-hex-digit id the server gives its audit key: SHA-256 of the raw key, first 8 bytes.
 * @param {Uint8Array<ArrayBuffer>} raw
 */
export async function auditKeyId(raw) {
  return bytesToHex(await sha256(raw)).slice(0, 16);
}

export class CryptoUnsupportedError extends Error {}

/**
 * Import a PEM Ed25519 public key: resolves {key, keyId}; rejects with a TypeError if unusable.
 * @param {string} pem
 * @returns {Promise<{key: CryptoKey, keyId: string}>}
 */
export async function importAuditKey(pem) {
  const der = pemToDer(pem);
  let key;
  try {
    key = await crypto.subtle.importKey("spki", der, { name: "Ed25519" }, true, ["verify"]);
  } catch (/** @type {any} */ error) {
    if (error?.name === "NotSupportedError") {
      throw new CryptoUnsupportedError("this browser cannot verify Ed25519 signatures (WebCrypto)");
    }
    throw new TypeError(`not an Ed25519 public key: ${error?.message ?? error}`);
  }
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", key));
  return { key, keyId: await auditKeyId(raw) };
}

/** @param {Checkpoint} checkpoint */
export function describeCheckpoint(checkpoint) {
  return { size: checkpoint.treeSize, signedAt: checkpoint.signedAt, keyId: checkpoint.keyId };
}

/**
 * Checks checkpoint signatures against trusted keys (keyId -> CryptoKey), once each, and notices
 * forks: two validly signed checkpoints of one size with different roots.
 */
export class CheckpointVerifier {
  /** @param {Iterable<[string, CryptoKey]>} trusted */
  constructor(trusted) {
    this.trusted = new Map(trusted);
    /** @type {Map<string, Promise<Problem | null>>} */
    this.results = new Map();
    /** @type {Map<number, string>} */
    this.roots = new Map();
    /** @type {Problem[]} */
    this.forks = [];
  }

  /**
   * Resolves null if the checkpoint is validly signed by a trusted key, else a problem {code, params}.
   * @param {Checkpoint} checkpoint
   * @returns {Promise<Problem | null>}
   */
  check(checkpoint) {
    const id = [checkpoint.treeSize, bytesToHex(checkpoint.rootHash), checkpoint.signedAt, checkpoint.keyId,
      bytesToHex(checkpoint.signature)].join("|");
    if (!this.results.has(id)) this.results.set(id, this.verify(checkpoint));
    return /** @type {Promise<Problem | null>} */ (this.results.get(id));
  }

  /** @param {Checkpoint} checkpoint @returns {Promise<Problem | null>} */
  async verify(checkpoint) {
    const params = describeCheckpoint(checkpoint);
    const key = this.trusted.get(checkpoint.keyId);
    if (!key) {
      return { code: "checkpoint_untrusted_key", params: { ...params, trusted: [...this.trusted.keys()].sort() } };
    }
    let valid;
    try {
      const message = checkpointMessage(checkpoint.treeSize, checkpoint.rootHash, checkpoint.signedAt);
      valid = await crypto.subtle.verify({ name: "Ed25519" }, key, checkpoint.signature, message);
    } catch (/** @type {any} */ error) {
      return { code: "checkpoint_unverifiable", params: { ...params, message: String(error?.message ?? error) } };
    }
    if (!valid) return { code: "checkpoint_bad_signature", params };
    const root = bytesToHex(checkpoint.rootHash);
    const seen = this.roots.get(checkpoint.treeSize);
    if (seen === undefined) {
      this.roots.set(checkpoint.treeSize, root);
    } else if (seen !== root) {
      this.forks.push({ code: "audit_fork", params: { size: checkpoint.treeSize, first: seen.slice(0, 16),
        second: root.slice(0, 16) } });
    }
    return null;
  }
}
