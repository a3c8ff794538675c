// Spec: docs/records.md (the record format and the problem codes both verifiers report).
// Signed audit checkpoints: the exact message the server signs, its Ed25519 key, checking
// signatures (WebCrypto), the C2SP signed note, witness cosignatures and the pin. Mirrors recording/records/checkpoint.py (checkpoint_message, CheckpointVerifier).
// No DOM access here.

import { base64ToBytes, bytesToHex, concatBytes, sha256, utf8 } from "./bytes.js";
import { verifyConsistency } from "./merkle.js";

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

// --- C2SP signed notes, tlog-checkpoint bodies, tlog-cosignatures and pins (docs/records.md, "Checkpoint
// notes" and "Pinning"); mirrors the second half of recording/records/checkpoint.py.

export const SIGNATURE_ED25519 = 0x01;
export const SIGNATURE_COSIGNATURE_V1 = 0x04;
const EM_DASH = "\u2014";
const NAME = /^[^\s+]+$/;

export class NoteError extends Error {}

/**
 * @typedef {object} CheckpointHead A tlog-checkpoint body as read: also the form of a pin.
 * @property {string} origin
 * @property {number} treeSize
 * @property {Uint8Array<ArrayBuffer>} rootHash
 *
 * @typedef {object} NoteSignature One signature line of a signed note.
 * @property {string} name
 * @property {Uint8Array<ArrayBuffer>} keyHash
 * @property {Uint8Array<ArrayBuffer>} payload
 *
 * @typedef {object} Note A signed note whose text is a tlog-checkpoint body.
 * @property {string} text
 * @property {NoteSignature[]} signatures
 * @property {CheckpointHead} head
 *
 * @typedef {object} Vkey A parsed verifier key.
 * @property {string} name
 * @property {number} type
 * @property {Uint8Array<ArrayBuffer>} raw
 * @property {Uint8Array<ArrayBuffer>} keyHash
 * @property {CryptoKey} key
 *
 * @typedef {object} LogKey The log's own key: raw bytes and the imported key.
 * @property {Uint8Array} raw
 * @property {CryptoKey} key
 */

/**
 * Read a tlog-checkpoint body: {origin, treeSize, rootHash}; throws NoteError.
 * @param {string} text
 * @returns {CheckpointHead}
 */
export function parseCheckpointBody(text) {
  const lines = text.split("\n");
  if (lines.length < 4 || lines.at(-1) !== "") throw new NoteError("a checkpoint body has at least three lines");
  const [origin, size, root] = lines;
  if (!origin) throw new NoteError("the checkpoint's origin line is empty");
  if (!/^(0|[1-9][0-9]{0,15})$/.test(size)) throw new NoteError(`tree size ${JSON.stringify(size.slice(0, 30))}`);
  let rootHash;
  try {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(root)) throw new Error("not base64");
    rootHash = base64ToBytes(root);
  } catch {
    throw new NoteError("the checkpoint's root hash is not base64");
  }
  if (rootHash.length !== 32) throw new NoteError(`the checkpoint's root hash has ${rootHash.length} bytes`);
  return { origin, treeSize: Number(size), rootHash };
}

/**
 * Split a signed note: {text, signatures: [{name, keyHash, payload}]}; throws NoteError.
 * @param {unknown} note
 * @returns {Note}
 */
export function parseNote(note) {
  if (typeof note !== "string" || note.length > 65536) throw new NoteError("not a signed note");
  const cut = note.lastIndexOf("\n\n");
  if (cut < 0 || !note.endsWith("\n")) throw new NoteError("a signed note is text, a blank line, signature lines");
  const signatures = note.slice(cut + 2, -1).split("\n").map((line) => {
    const match = new RegExp(`^${EM_DASH} ([^\\s+]+) ([A-Za-z0-9+/=]+)$`).exec(line);
    if (!match) throw new NoteError(`signature line ${JSON.stringify(line.slice(0, 80))}`);
    let raw;
    try {
      raw = base64ToBytes(match[2]);
    } catch {
      throw new NoteError(`signature line of ${match[1]} is not base64`);
    }
    if (raw.length < 5) throw new NoteError(`signature line of ${match[1]} is too short`);
    return { name: match[1], keyHash: raw.subarray(0, 4), payload: raw.subarray(4) };
  });
  const text = note.slice(0, cut + 1);
  return { text, signatures, head: parseCheckpointBody(text) };
}

/**
 * SHA-256(name || "\n" || type || raw key), first 4 bytes.
 * @param {string} name @param {Uint8Array} raw @param {number} [type]
 * @returns {Promise<Uint8Array<ArrayBuffer>>}
 */
export async function noteKeyHash(name, raw, type = SIGNATURE_ED25519) {
  return (await sha256(concatBytes(utf8.encode(`${name}\n`), Uint8Array.of(type), raw))).subarray(0, 4);
}

/**
 * The verifier key string `<name>+<hash hex>+<base64(type || raw key)>`.
 * @param {string} name @param {Uint8Array} raw @param {number} [type]
 * @returns {Promise<string>}
 */
export async function vkeyOf(name, raw, type = SIGNATURE_ED25519) {
  const encoded = btoa(String.fromCharCode(...concatBytes(Uint8Array.of(type), raw)));
  return `${name}+${bytesToHex(await noteKeyHash(name, raw, type))}+${encoded}`;
}

/**
 * Parse a verifier key: {name, type, raw, keyHash, key: CryptoKey}; throws NoteError.
 * @param {unknown} text
 * @returns {Promise<Vkey>}
 */
export async function parseVkey(text) {
  const trimmed = String(text).trim();
  const first = trimmed.indexOf("+");
  const second = trimmed.indexOf("+", first + 1);
  const name = trimmed.slice(0, first);
  if (first < 0 || second < 0 || !NAME.test(name)) throw new NoteError(`verifier key ${trimmed.slice(0, 80)}`);
  let bytes;
  try {
    bytes = base64ToBytes(trimmed.slice(second + 1));
  } catch {
    throw new NoteError(`verifier key ${name}: its key is not base64`);
  }
  if (bytes.length !== 33 || ![SIGNATURE_ED25519, SIGNATURE_COSIGNATURE_V1].includes(bytes[0])) {
    throw new NoteError(`verifier key ${name}: not an Ed25519 or cosignature/v1 key`);
  }
  const raw = bytes.subarray(1);
  const keyHash = await noteKeyHash(name, raw, bytes[0]);
  if (bytesToHex(keyHash) !== trimmed.slice(first + 1, second).toLowerCase()) {
    throw new NoteError(`verifier key ${name}: its key hash does not match its key`);
  }
  const key = await crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, true, ["verify"]);
  return { name, type: bytes[0], raw, keyHash, key };
}

/** @param {Uint8Array} a @param {Uint8Array} b */
const sameBytes = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * Whether the note carries a valid Ed25519 signature by `name`'s key (raw bytes and CryptoKey).
 * @param {Note} note @param {string} name @param {Uint8Array} raw @param {CryptoKey} key
 * @returns {Promise<boolean>}
 */
export async function verifyNote(note, name, raw, key) {
  const keyHash = await noteKeyHash(name, raw);
  for (const s of note.signatures) {
    if (s.name !== name || !sameBytes(s.keyHash, keyHash) || s.payload.length !== 64) continue;
    if (await crypto.subtle.verify({ name: "Ed25519" }, key, s.payload, utf8.encode(note.text))) return true;
  }
  return false;
}

/**
 * What a witness signs: "cosignature/v1\ntime <t>\n" then the checkpoint body.
 * @param {string} text @param {bigint | number} timestamp
 */
export function cosignatureMessage(text, timestamp) {
  return utf8.encode(`cosignature/v1\ntime ${timestamp}\n${text}`);
}

/**
 * The names of the given witnesses (parsed vkeys) whose cosignature of the note verifies.
 * @param {Note} note @param {Vkey[]} witnesses
 * @returns {Promise<string[]>}
 */
export async function countCosignatures(note, witnesses) {
  /** @type {string[]} */
  const valid = [];
  for (const w of witnesses) {
    for (const s of note.signatures) {
      if (s.name !== w.name || !sameBytes(s.keyHash, w.keyHash) || s.payload.length !== 72) continue;
      const timestamp = new DataView(s.payload.buffer, s.payload.byteOffset, 8).getBigUint64(0);
      if (await crypto.subtle.verify({ name: "Ed25519" }, w.key, s.payload.subarray(8),
        cosignatureMessage(note.text, timestamp))) {
        valid.push(w.name);
        break;
      }
    }
  }
  return valid;
}

/**
 * Check a log's signed note against a verifier's pin ({origin, treeSize, rootHash} or null):
 * the log's signature (logKey: {raw, key}), the quorum of witness cosignatures, consistency from
 * the pin. Resolves the problems [{code, params}], empty when the note may become the new pin.
 * @param {CheckpointHead | null} pin @param {Note} note @param {LogKey | null} logKey
 * @param {Uint8Array[]} proof @param {Vkey[]} witnesses @param {number} quorum
 * @returns {Promise<Problem[]>}
 */
export async function checkPinned(pin, note, logKey, proof, witnesses, quorum) {
  /** @type {Problem[]} */
  const problems = [];
  const { head } = note;
  const params = { origin: head.origin, size: head.treeSize };
  if (!logKey || !(await verifyNote(note, head.origin, logKey.raw, logKey.key))) {
    problems.push({ code: "checkpoint_note_bad_signature", params });
  }
  const cosigned = await countCosignatures(note, witnesses);
  if (cosigned.length < quorum) {
    problems.push({ code: "checkpoint_not_witnessed", params: { ...params, cosigned: cosigned.length, quorum } });
  }
  if (pin) {
    const pinned = { ...params, pinned: pin.treeSize };
    if (pin.origin !== head.origin || pin.treeSize > head.treeSize
        || !(await verifyConsistency(pin.treeSize, head.treeSize, pin.rootHash, head.rootHash, proof))) {
      problems.push({ code: "checkpoint_inconsistent", params: pinned });
    }
  }
  return problems;
}
