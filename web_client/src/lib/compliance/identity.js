// Spec: docs/records.md (the record format and the problem codes both verifiers report).
// The officer's age identity: generating one, its key file (age-keygen's format), reading one back,
// and decrypting with it. The secret key lives only in memory here; nothing is stored or sent.
// No DOM access here.

import { Decrypter, generateX25519Identity, identityToRecipient } from "age-encryption";

/** @typedef {{identity: string, recipient: string}} KeyPair an age secret key and its public recipient */
/** @typedef {import("./types.js").Problem} Problem */

export class IdentityError extends Error {
  /** @param {string} code @param {Record<string, unknown>} [params] */
  constructor(code, params = {}) {
    super(code);
    this.code = code;
    this.params = params;
  }
}

const SECRET_PREFIX = "AGE-SECRET-KEY-1";
const RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;

/**
 * A new X25519 identity and its recipient: {identity: "AGE-SECRET-KEY-1…", recipient: "age1…"}.
 * @returns {Promise<KeyPair>}
 */
export async function generateKeyPair() {
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}

/** @param {Date} date */
function rfc3339(date) {
  // Local time with its offset, as age-keygen writes "# created:" (Go's time.RFC3339).
  const pad = (/** @type {number} */ n) => String(Math.abs(n)).padStart(2, "0");
  const offset = -date.getTimezoneOffset();
  const zone = offset === 0 ? "Z" : `${offset > 0 ? "+" : "-"}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`;
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:`
    + `${pad(date.getMinutes())}:${pad(date.getSeconds())}${zone}`;
}

/**
 * The identity file age-keygen would write: `age -d -i FILE` and the compliance tool read it.
 * @param {KeyPair} pair
 * @param {Date} [created]
 */
export function keyFileText({ identity, recipient }, created = new Date()) {
  return `# created: ${rfc3339(created)}\n# public key: ${recipient}\n${identity}\n`;
}

/** @param {unknown} text */
export function isRecipient(text) {
  return typeof text === "string" && RECIPIENT.test(text);
}

/**
 * Read X25519 identities from an identity file's text (or one pasted key); resolves
 * [{identity, recipient}]. Errors name a line number, never a line's content.
 * @param {unknown} text
 * @returns {Promise<KeyPair[]>}
 */
export async function readIdentities(text) {
  if (typeof text !== "string") throw new IdentityError("identity_not_text");
  if (text.startsWith("age-encryption.org/v1") || text.startsWith("-----BEGIN AGE ENCRYPTED FILE-----")) {
    throw new IdentityError("identity_encrypted");
  }
  const found = [];
  const lines = text.split(/\r?\n/);
  for (let number = 1; number <= lines.length; number += 1) {
    const line = lines[number - 1].trim();
    if (!line || line.startsWith("#")) continue;
    if (line.toUpperCase().startsWith("AGE-PLUGIN-")) throw new IdentityError("identity_plugin", { line: number });
    if (line.startsWith("age1")) throw new IdentityError("identity_is_public", { line: number });
    let recipient;
    try {
      if (!line.startsWith(SECRET_PREFIX)) throw new Error("not X25519");
      recipient = await identityToRecipient(line);
    } catch {
      throw new IdentityError("identity_invalid", { line: number });
    }
    found.push({ identity: line, recipient });
  }
  if (!found.length) throw new IdentityError("identity_empty");
  return found;
}

/** Opens age v1 files with the officer's identities; `recipients` lists their public keys. */
export class KeyRing {
  /** @param {KeyPair[]} identities */
  constructor(identities) {
    this.decrypter = new Decrypter();
    this.recipients = identities.map((i) => i.recipient);
    for (const { identity } of identities) this.decrypter.addIdentity(identity);
  }

  /**
   * Resolves {plaintext} or {problem: {code, params}}; `listed` are the recipients the manifest
   * says the object was sealed to (informative: age keeps no list a reader could check).
   * @param {Uint8Array} ciphertext
   * @param {string[]} [listed]
   * @returns {Promise<{plaintext: Uint8Array, problem?: undefined} | {problem: Problem, plaintext?: undefined}>}
   */
  async open(ciphertext, listed = []) {
    try {
      return { plaintext: await this.decrypt(ciphertext) };
    } catch (/** @type {any} */ error) {
      const message = String(error?.message ?? error);
      if (message.includes("no identity matched")) {
        const ours = this.recipients.some((r) => listed.includes(r));
        return { problem: { code: "not_sealed_to_you", params: { listed: ours } } };
      }
      if (/invalid tag|HMAC|final chunk|tagLength|ciphertext (is too small|size is invalid)/i.test(message)) {
        return { problem: { code: "decrypt_auth_failed", params: {} } };
      }
      return { problem: { code: "decrypt_failed", params: { message } } };
    }
  }

  /** @param {Uint8Array} ciphertext @returns {Promise<Uint8Array>} */
  async decrypt(ciphertext) {
    // The payload is read here rather than by Decrypter's own readAll: that goes through
    // Response.arrayBuffer(), which in Chromium replaces a failed authentication with an
    // unhelpful "Failed to fetch".
    const input = new ReadableStream({
      start(controller) {
        controller.enqueue(ciphertext);
        controller.close();
      },
    });
    const reader = (await this.decrypter.decrypt(input)).getReader();
    /** @type {Uint8Array[]} */
    const chunks = [];
    let length = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      length += value.length;
    }
    const out = new Uint8Array(length);
    let offset = 0;
    for (const chunk of chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }
}
