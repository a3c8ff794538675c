// The party's possession factor in the browser (server/possession.py): one-time codes to the party's verified
// contact, this device's enrolled Ed25519 key, and the proofs acts with legal weight carry. No DOM here.
//
// The device key is made by WebCrypto as non-extractable and kept, as its CryptoKeyPair (structured-cloneable),
// in IndexedDB under the party's id; only its public key ever leaves the browser. Enrolling it takes a code
// sent to the party's verified e-mail or phone; afterwards each act is proved silently by signing a
// single-use challenge, and the agreement is signed with the same key.
import { base64url, fromBase64url } from "./signing.js";

/** @typedef {import("./api.js").Api} Api */

/**
 * @typedef {"confirm_session" | "give_consent" | "withdraw_consent" | "sign_agreement"} Act
 * @typedef {{challenge_id: string, signature: string} | {code_id: string, code: string}} Proof
 * @typedef {{enrolment_id: string, fingerprint: string, public_key: string, channel: string, enrolled_at: string}} Enrolment
 * @typedef {{party_id: string, role: string, channels: {channel: string, to: string}[], enrolments: Enrolment[]}} PossessionState
 * @typedef {{code_id: string, channel: string, to: string, expires_at: string}} SentCode
 */

/** A possession step the page explains: webcrypto_unsupported, ed25519_unsupported, bad_code, not_enrolled. */
export class PossessionError extends Error {
  /** @param {string} code @param {string} [message] */
  constructor(code, message) {
    super(message || code);
    this.name = "PossessionError";
    this.code = code;
  }
}

/** The codes the server refuses a one-time code with: the page asks for the code again (or a new one). */
export const CODE_ERRORS = Object.freeze(["code_wrong", "code_expired", "code_spent"]);

/**
 * Where device keys are kept.
 * @typedef {object} KeyStore
 * @property {(name: string) => Promise<CryptoKeyPair | null>} get
 * @property {(name: string, pair: CryptoKeyPair) => Promise<void>} put
 * @property {(name: string) => Promise<void>} remove
 */

/** A KeyStore in memory (a browser without IndexedDB, and tests). @returns {KeyStore} */
export function memoryKeyStore() {
  /** @type {Map<string, CryptoKeyPair>} */
  const keys = new Map();
  return {
    get: async (name) => keys.get(name) ?? null,
    put: async (name, pair) => { keys.set(name, pair); },
    remove: async (name) => { keys.delete(name); },
  };
}

const DATABASE = "mediation-devices";
const STORE = "keys";

/**
 * A KeyStore in IndexedDB: the CryptoKeyPair is stored as a structured clone, its private key still
 * non-extractable (the browser never hands its bytes to a script).
 * @param {IDBFactory} [factory]
 * @returns {KeyStore}
 */
export function indexedDbKeyStore(factory = globalThis.indexedDB) {
  /** @returns {Promise<IDBDatabase>} */
  function open() {
    return new Promise((resolve, reject) => {
      const request = factory.open(DATABASE, 1);
      request.onupgradeneeded = () => { request.result.createObjectStore(STORE); };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  /**
   * @template T
   * @param {IDBTransactionMode} mode
   * @param {(store: IDBObjectStore) => IDBRequest} step
   * @returns {Promise<T>}
   */
  async function run(mode, step) {
    const db = await open();
    try {
      return await new Promise((resolve, reject) => {
        const request = step(db.transaction(STORE, mode).objectStore(STORE));
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
    } finally {
      db.close();
    }
  }
  return {
    get: async (name) => (await run("readonly", (store) => store.get(name))) ?? null,
    put: async (name, pair) => { await run("readwrite", (store) => store.put(pair, name)); },
    remove: async (name) => { await run("readwrite", (store) => store.delete(name)); },
  };
}

/** The KeyStore of this browser: IndexedDB when there is one. @returns {KeyStore} */
export function defaultKeyStore() {
  return globalThis.indexedDB ? indexedDbKeyStore() : memoryKeyStore();
}

/**
 * Lower-case hex SHA-256 of bytes. @param {BufferSource} bytes @param {SubtleCrypto} subtle
 * @returns {Promise<string>}
 */
async function sha256Hex(bytes, subtle) {
  const digest = new Uint8Array(await subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The raw public key of a pair, base64url. @param {CryptoKeyPair} pair @param {SubtleCrypto} subtle */
export async function publicKeyOf(pair, subtle = globalThis.crypto.subtle) {
  return base64url(new Uint8Array(await subtle.exportKey("raw", pair.publicKey)));
}

/** One party's possession factor on this device, for one case, through the party's own credential. */
export class Possession {
  /**
   * @param {{api: Api, caseId: string, store?: KeyStore, subtle?: SubtleCrypto}} options
   */
  constructor({ api, caseId, store = defaultKeyStore(), subtle = globalThis.crypto?.subtle }) {
    this.api = api;
    this.caseId = caseId;
    this.store = store;
    this.subtle = subtle;
    /** @type {PossessionState | null} */
    this.known = null;
  }

  /** @param {string} tail */
  path(tail) {
    return `/api/cases/${this.caseId}/possession${tail}`;
  }

  /** The party's masked contacts and enrolled devices, as the server knows them. @returns {Promise<PossessionState>} */
  async state() {
    this.known = /** @type {PossessionState} */ (await this.api.get(this.path("")));
    return this.known;
  }

  /** @param {PossessionState} state */
  static keyName(state) {
    return `device:${state.party_id}`;
  }

  /**
   * This device's key if the server has it enrolled for the party, else null (a key it no longer knows is
   * dropped, so the next act enrols afresh).
   * @returns {Promise<CryptoKeyPair | null>}
   */
  async enrolledKey() {
    const state = this.known ?? await this.state();
    const pair = await this.store.get(Possession.keyName(state));
    if (!pair) return null;
    const subtle = this.requireSubtle();
    const fingerprint = await sha256Hex(fromBase64url(await publicKeyOf(pair, subtle)), subtle);
    if (state.enrolments.some((e) => e.fingerprint === fingerprint)) return pair;
    await this.store.remove(Possession.keyName(state));
    return null;
  }

  /**
   * Send a fresh code to the party's verified contact (the first by default).
   * @param {{purpose: "enrol" | "act", act?: Act, sessionId?: string, channel?: string}} request
   * @returns {Promise<SentCode>}
   */
  requestCode({ purpose, act, sessionId, channel }) {
    /** @type {Record<string, string>} */
    const body = { purpose };
    if (act) body.act = act;
    if (sessionId) body.session_id = sessionId;
    if (channel) body.channel = channel;
    return this.api.post(this.path("/codes"), body);
  }

  /**
   * Enrol this device with the code the party read: a new non-extractable Ed25519 key, its public half sent.
   * @param {string} codeId
   * @param {string} code
   * @returns {Promise<Enrolment>}
   */
  async enrol(codeId, code) {
    const digits = code.replace(/\s+/g, "");
    if (!/^[0-9]{8}$/.test(digits)) throw new PossessionError("bad_code", "a code is 8 digits");
    const subtle = this.requireSubtle();
    /** @type {CryptoKeyPair} */
    let pair;
    try {
      pair = /** @type {CryptoKeyPair} */ (await subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]));
    } catch (error) {
      throw new PossessionError("ed25519_unsupported", `Ed25519 key generation failed: ${error instanceof Error ? error.message : error}`);
    }
    const enrolment = /** @type {Enrolment} */ (await this.api.post(this.path("/enrolments"),
      { code_id: codeId, code: digits, public_key: await publicKeyOf(pair, subtle) }));
    const state = this.known ?? await this.state();
    await this.store.put(Possession.keyName(state), pair);
    this.known = { ...state, enrolments: [...state.enrolments, enrolment] };
    return enrolment;
  }

  /**
   * The proof for `act` by the enrolled key: it signs a fresh single-use challenge. PossessionError
   * "not_enrolled" when this device has no enrolled key.
   * @param {Act} act
   * @param {string} [sessionId]
   * @returns {Promise<Proof>}
   */
  async proof(act, sessionId) {
    const pair = await this.enrolledKey();
    if (!pair) throw new PossessionError("not_enrolled", "this device is not enrolled for the party");
    /** @type {Record<string, string>} */
    const body = { act };
    if (sessionId) body.session_id = sessionId;
    const challenge = /** @type {{challenge_id: string, to_sign: string}} */ (await this.api.post(this.path("/challenges"), body));
    const signature = await this.requireSubtle().sign({ name: "Ed25519" }, pair.privateKey, fromBase64url(challenge.to_sign));
    return { challenge_id: challenge.challenge_id, signature: base64url(new Uint8Array(signature)) };
  }

  requireSubtle() {
    if (!this.subtle) throw new PossessionError("webcrypto_unsupported", "this browser has no WebCrypto (a secure context is needed)");
    return this.subtle;
  }
}
