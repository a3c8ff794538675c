// Spec: docs/records.md (the record format and the problem codes both verifiers report).
// Byte helpers for verification: hex, base64, UTF-8 and SHA-256 (WebCrypto). No DOM access here.

const HEX = /^(?:[0-9a-f]{2})*$/;

/** @param {Uint8Array} bytes */
export function bytesToHex(bytes) {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

/**
 * Lowercase hex to bytes; throws on anything else (upper case too: the formats are lowercase).
 * @param {unknown} text
 * @returns {Uint8Array<ArrayBuffer>}
 */
export function hexToBytes(text) {
  if (typeof text !== "string" || !HEX.test(text)) throw new TypeError("not lowercase hex");
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Strict standard base64 (Python's b64decode(validate=True)); throws on anything else.
 * @param {unknown} text
 * @returns {Uint8Array<ArrayBuffer>}
 */
export function base64ToBytes(text) {
  if (typeof text !== "string" || !B64.test(text)) throw new TypeError("not base64");
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) out[i] = binary.charCodeAt(i);
  return out;
}

/**
 * @param {...Uint8Array} parts
 * @returns {Uint8Array<ArrayBuffer>}
 */
export function concatBytes(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** @param {Uint8Array} a @param {Uint8Array} b */
export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i += 1) diff |= a[i] ^ b[i];
  return diff === 0;
}

export const utf8 = {
  /** @param {string} text */
  encode: (text) => new TextEncoder().encode(text),
  // fatal: a record that is not valid UTF-8 is reported, never shown with replacement characters.
  /** @param {Uint8Array} bytes */
  decode: (bytes) => new TextDecoder("utf-8", { fatal: true }).decode(bytes),
};

/**
 * @param {Uint8Array<ArrayBuffer>} bytes
 * @returns {Promise<Uint8Array<ArrayBuffer>>}
 */
export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** @param {Uint8Array<ArrayBuffer>} bytes */
export async function sha256Hex(bytes) {
  return bytesToHex(await sha256(bytes));
}
