// Signing a repayment agreement on the signer's own device (WebCrypto Ed25519, its enrolled key). No DOM here.
//
// The server sends the agreement `document` and `canonical`, the exact text to sign (RFC 8785).
// The page shows the document; before signing it recomputes the canonical JSON of that very
// document and refuses if it differs from `canonical`, so what is signed is what was shown.
import canonicalize from "canonicalize";

/** A signing failure the page explains: canonical_mismatch, webcrypto_unsupported, ed25519_unsupported. */
export class SigningError extends Error {
  /** @param {string} code @param {string} [message] */
  constructor(code, message) {
    super(message || code);
    this.name = "SigningError";
    this.code = code;
  }
}

const encoder = new TextEncoder();

/** Bytes -> base64url without padding (RFC 4648 §5). @param {Uint8Array | ArrayBuffer} bytes */
export function base64url(bytes) {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let binary = "";
  for (let i = 0; i < view.length; i += 0x8000) binary += String.fromCharCode(...view.subarray(i, i + 0x8000));
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** base64url (padding optional) -> bytes; throws on anything else. @param {string} text */
export function fromBase64url(text) {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(text) || text.replace(/=+$/, "").length % 4 === 1) {
    throw new SigningError("bad_base64url", "not base64url");
  }
  const normal = text.replace(/=+$/, "").replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(normal + "=".repeat((4 - (normal.length % 4)) % 4));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

/**
 * RFC 8785 canonical JSON of `value`.
 * @param {unknown} value
 * @returns {string | undefined} undefined for what JSON cannot hold (undefined, a function)
 */
export function canonicalJson(value) {
  return canonicalize(value);
}

/** Whether `canonical` is exactly the RFC 8785 form of `document`. @param {unknown} document @param {unknown} canonical */
export function canonicalMatches(document, canonical) {
  if (document === null || typeof document !== "object" || typeof canonical !== "string") return false;
  try {
    return canonicalJson(document) === canonical;
  } catch {
    return false;
  }
}

/**
 * Lower-case hex SHA-256 of a string's UTF-8 bytes.
 * @param {string} text
 * @param {SubtleCrypto} [subtle]
 */
export async function sha256Hex(text, subtle = globalThis.crypto?.subtle) {
  const digest = new Uint8Array(await subtle.digest("SHA-256", encoder.encode(text)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A signing key's fingerprint, as the agreement PDF prints it: the SHA-256 of the key's raw bytes, in hex,
 * in groups of four.
 * @param {string} publicKey base64url of the 32-byte Ed25519 public key
 * @param {SubtleCrypto} [subtle]
 */
export async function keyFingerprint(publicKey, subtle = globalThis.crypto?.subtle) {
  const digest = new Uint8Array(await subtle.digest("SHA-256", fromBase64url(publicKey)));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  return (hex.match(/.{4}/g) ?? []).join(" ");
}

/**
 * Sign an agreement as the API returns it (`{version, document, canonical, sha256}`) with the party's
 * enrolled device key (src/lib/possession.js): the server accepts only that key, so the signature binds to
 * the party's enrolment. Returns the body of POST /api/cases/{case_id}/agreement/signatures.
 * @param {{version: number, document: {version?: unknown}, canonical: string, sha256?: string}} agreement
 * @param {CryptoKeyPair} pair the enrolled Ed25519 key pair (its private key non-extractable)
 * @param {{subtle?: SubtleCrypto}} [options]
 * @returns {Promise<{version: number, public_key: string, signature: string}>}
 */
export async function signAgreement(agreement, pair, { subtle = globalThis.crypto?.subtle } = {}) {
  if (!subtle) throw new SigningError("webcrypto_unsupported", "this browser has no WebCrypto (a secure context is needed)");
  if (!canonicalMatches(agreement.document, agreement.canonical)) {
    throw new SigningError("canonical_mismatch", "the text to sign is not the canonical form of the agreement shown");
  }
  if (agreement.document.version !== agreement.version) {
    throw new SigningError("canonical_mismatch", "the document's version is not the agreement's version");
  }
  if (agreement.sha256 && (await sha256Hex(agreement.canonical, subtle)) !== agreement.sha256) {
    throw new SigningError("canonical_mismatch", "the text to sign does not match its SHA-256");
  }
  const message = encoder.encode(agreement.canonical);
  const signature = new Uint8Array(await subtle.sign({ name: "Ed25519" }, pair.privateKey, message));
  const publicKey = new Uint8Array(await subtle.exportKey("raw", pair.publicKey));
  return { version: agreement.version, public_key: base64url(publicKey), signature: base64url(signature) };
}

/**
 * Whether `signature` (base64url) is `public_key`'s (base64url, raw) Ed25519 signature of `canonical`.
 * @param {string} canonical
 * @param {string} publicKey
 * @param {string} signature
 * @param {{subtle?: SubtleCrypto}} [options]
 */
export async function verifySignature(canonical, publicKey, signature, { subtle = globalThis.crypto.subtle } = {}) {
  const key = await subtle.importKey("raw", fromBase64url(publicKey), { name: "Ed25519" }, false, ["verify"]);
  return subtle.verify({ name: "Ed25519" }, key, fromBase64url(signature), encoder.encode(canonical));
}
