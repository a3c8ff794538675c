// Spec: docs/records.md (the record format and the problem codes both verifiers report).
// The case bundle manifest (format "mediation-case-bundle/v1"): reading it
// strictly, the storage key each record must have, and checking an object's audit entry against
// the signed log. Mirrors recording/records/manifest.py and kinds.py. No DOM access here.

import { base64ToBytes, equalBytes, hexToBytes, utf8 } from "./bytes.js";
import { leafHash, verifyInclusion } from "./merkle.js";
import { describeCheckpoint, pythonIsoformat } from "./checkpoint.js";

/** @typedef {import("./checkpoint.js").Checkpoint} Checkpoint */
/** @typedef {import("./types.js").Problem} Problem */

/**
 * @typedef {object} ManifestObject One entry of the manifest, read and checked for form.
 * @property {number} position its place in the manifest's `objects`
 * @property {string} key
 * @property {string} kind
 * @property {string | null} sessionId
 * @property {string | null} participantId
 * @property {number | null} index
 * @property {number | null} part
 * @property {string} sha256
 * @property {number} size
 * @property {string | null} createdAt
 * @property {string[]} recipients
 * @property {number} auditSeq
 * @property {Uint8Array<ArrayBuffer>} auditEntry
 * @property {Uint8Array} leafHash
 * @property {Uint8Array[]} proof
 * @property {Checkpoint} checkpoint
 *
 * @typedef {object} MalformedEntry An entry that could not be read, with what it says of itself.
 * @property {number} position
 * @property {string} problem
 * @property {Record<string, any>} hint its key, kind, session_id, participant_id, index and part as found
 *
 * @typedef {object} Manifest
 * @property {string} caseId
 * @property {string} exportedAt
 * @property {string | null} auditPublicKeyPem
 * @property {ManifestObject[]} objects
 * @property {MalformedEntry[]} malformed
 *
 * @typedef {object} KeyRule
 * @property {boolean} session whether the kind belongs to a session
 * @property {boolean | null} participant true: required, false: forbidden, null: optional
 * @property {number | null} digits the index's width in the key, null when it has none
 * @property {boolean} [part]
 * @property {(fields: Record<string, string>) => string} key
 */

export const BUNDLE_FORMAT = "mediation-case-bundle/v1";

export const KINDS = Object.freeze(["recording_segment", "chat_message", "transcript", "consent", "agreement",
  "e2ee_key"]);

// Where each sequence starts: segments count from 0 within each part (segment 0 holds the
// part's WebM header) and parts from 0; chat from 1 (the room's seq); consents from 0;
// agreement versions from 1; a participant's end-to-end encryption keys from 0.
/** @type {Readonly<Record<string, number>>} */
export const FIRST_INDEX = Object.freeze({ recording_segment: 0, chat_message: 1, consent: 0, agreement: 1, e2ee_key: 0 });

const ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;
const KEY_ID = /^[0-9a-f]{16}$/;
const TOP_FIELDS = ["format", "case_id", "exported_at", "audit_public_key_pem", "objects"];
const OBJECT_FIELDS = ["key", "kind", "session_id", "participant_id", "index", "part", "sha256", "size", "created_at",
  "recipients", "audit_seq", "audit_entry", "inclusion"];
const OPTIONAL_FIELDS = new Set(["created_at", "recipients"]);
const INCLUSION_FIELDS = ["leaf_hash", "proof", "tree_size", "root_hash", "checkpoint_signature", "signed_at",
  "key_id"];

/** @type {Record<string, KeyRule>} */
const RULES = {
  recording_segment: { session: true, participant: true, digits: 6, part: true,
    key: (f) => `cases/${f.case}/sessions/${f.session}/recordings/${f.participant}/${f.part}/${f.index}.webm.age` },
  chat_message: { session: true, participant: null, digits: 8,
    key: (f) => `cases/${f.case}/sessions/${f.session}/chat/${f.index}.json.age` },
  transcript: { session: true, participant: false, digits: null,
    key: (f) => `cases/${f.case}/sessions/${f.session}/transcript.json.age` },
  consent: { session: true, participant: true, digits: 4,
    key: (f) => `cases/${f.case}/sessions/${f.session}/consents/${f.participant}/${f.index}.json.age` },
  agreement: { session: false, participant: false, digits: 4,
    key: (f) => `cases/${f.case}/agreements/${f.index}.json.age` },
  e2ee_key: { session: true, participant: true, digits: 6,
    key: (f) => `cases/${f.case}/sessions/${f.session}/keys/${f.participant}/${f.index}.json.age` },
};

export class MalformedError extends Error {}

/** @param {string} name @param {unknown} value @returns {string} */
function checkId(name, value) {
  if (typeof value !== "string" || !ID.test(value)) {
    throw new MalformedError(`${name} ${JSON.stringify(value)} is not an id of the form [a-z0-9][a-z0-9_-]{0,63}`);
  }
  return value;
}

/** @param {unknown} value @returns {value is number} */
const isInt = (value) => Number.isSafeInteger(value);

/**
 * The storage key of a record; throws MalformedError if the fields do not fit the kind.
 * @param {string} kind
 * @param {{caseId: unknown, sessionId?: unknown, participantId?: unknown, index?: unknown, part?: unknown}} fields
 */
export function recordKey(kind, { caseId, sessionId, participantId = null, index = null, part = null }) {
  const rule = RULES[kind];
  if (!rule) throw new MalformedError(`unknown record kind ${JSON.stringify(kind)}`);
  /** @type {Record<string, string>} */
  const fields = { case: checkId("case_id", caseId) };
  if (rule.session) fields.session = checkId("session_id", sessionId);
  else if (sessionId !== null) throw new MalformedError(`a ${kind} belongs to the case, not to a session`);
  if (rule.participant === true) fields.participant = checkId("participant_id", participantId);
  else if (rule.participant === false && participantId !== null) {
    throw new MalformedError(`a ${kind} has no participant`);
  } else if (participantId !== null) checkId("participant_id", participantId);
  if (rule.digits === null) {
    if (index !== null) throw new MalformedError(`a ${kind} has no index`);
  } else {
    const first = FIRST_INDEX[kind];
    const limit = 10 ** rule.digits;
    if (!isInt(index) || index < first || index >= limit) {
      throw new MalformedError(`a ${kind} needs an integer index in [${first}, ${limit}), got ${JSON.stringify(index)}`);
    }
    fields.index = String(index).padStart(rule.digits, "0");
  }
  if (rule.part) {
    if (!isInt(part) || part < 0 || part >= 10000) {
      throw new MalformedError(`a ${kind} needs an integer part in [0, 10000), got ${JSON.stringify(part)}`);
    }
    fields.part = String(part).padStart(4, "0");
  } else if (part !== null) throw new MalformedError(`a ${kind} has no part`);
  return rule.key(fields);
}

/** @param {unknown} value @returns {value is Record<string, any>} */
const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

/** @param {unknown} entry @param {string[]} allowed @param {string} what */
function exactFields(entry, allowed, what) {
  if (!isObject(entry)) throw new MalformedError(`${what} is not a JSON object`);
  const missing = allowed.filter((name) => !OPTIONAL_FIELDS.has(name) && !(name in entry)).sort();
  const unknown = Object.keys(entry).filter((name) => !allowed.includes(name)).sort();
  if (missing.length) throw new MalformedError(`${what} lacks field(s) ${missing.join(", ")}`);
  if (unknown.length) throw new MalformedError(`${what} has unknown field(s) ${unknown.join(", ")}`);
  return entry;
}

/**
 * @overload
 * @param {Record<string, any>} entry @param {string} name @param {{minimum?: number, optional?: false}} [options]
 * @returns {number}
 */
/**
 * @overload
 * @param {Record<string, any>} entry @param {string} name @param {{minimum?: number, optional: true}} options
 * @returns {number | null}
 */
/**
 * @param {Record<string, any>} entry @param {string} name @param {{minimum?: number, optional?: boolean}} [options]
 * @returns {number | null}
 */
function int(entry, name, { minimum = 0, optional = false } = {}) {
  const value = entry[name];
  if ((value === null || value === undefined) && optional) return null;
  if (!isInt(value) || value < minimum) {
    throw new MalformedError(`field ${name} must be an integer >= ${minimum}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * @overload
 * @param {Record<string, any>} entry @param {string} name @param {{optional?: false}} [options]
 * @returns {string}
 */
/**
 * @overload
 * @param {Record<string, any>} entry @param {string} name @param {{optional: true}} options
 * @returns {string | null}
 */
/**
 * @param {Record<string, any>} entry @param {string} name @param {{optional?: boolean}} [options]
 * @returns {string | null}
 */
function str(entry, name, { optional = false } = {}) {
  const value = entry[name];
  if ((value === null || value === undefined) && optional) return null;
  if (typeof value !== "string") throw new MalformedError(`field ${name} must be a string, got ${JSON.stringify(value)}`);
  return value;
}

/** @param {Record<string, any>} entry @param {string} name @param {RegExp} pattern */
function hex(entry, name, pattern) {
  const value = entry[name];
  if (typeof value !== "string" || !pattern.test(value)) {
    throw new MalformedError(`field ${name} must be lowercase hex of the right length`);
  }
  return hexToBytes(value);
}

/** @param {unknown} raw */
function parseInclusion(raw) {
  const entry = exactFields(raw, INCLUSION_FIELDS, "inclusion");
  const { proof } = entry;
  if (!Array.isArray(proof) || !proof.every((p) => typeof p === "string" && HEX64.test(p))) {
    throw new MalformedError("inclusion field proof must be a list of 64-hex hashes");
  }
  const signedAt = str(entry, "signed_at");
  try {
    pythonIsoformat(signedAt);
  } catch {
    throw new MalformedError(`inclusion field signed_at is not an ISO 8601 time with offset: ${JSON.stringify(signedAt)}`);
  }
  const keyId = str(entry, "key_id");
  if (!KEY_ID.test(keyId)) throw new MalformedError("inclusion field key_id must be 16 hex digits");
  return {
    leafHash: hex(entry, "leaf_hash", HEX64),
    proof: proof.map(hexToBytes),
    checkpoint: { treeSize: int(entry, "tree_size", { minimum: 1 }), rootHash: hex(entry, "root_hash", HEX64),
      signedAt, keyId, signature: hex(entry, "checkpoint_signature", HEX128) },
  };
}

/** @param {number} position @param {unknown} raw @param {string} caseId @returns {ManifestObject} */
function parseObject(position, raw, caseId) {
  const entry = exactFields(raw, OBJECT_FIELDS, "entry");
  const kind = str(entry, "kind");
  if (!KINDS.includes(kind)) throw new MalformedError(`unknown kind ${JSON.stringify(kind)}`);
  const key = str(entry, "key");
  const sessionId = str(entry, "session_id", { optional: true });
  const participantId = str(entry, "participant_id", { optional: true });
  const index = int(entry, "index", { optional: true });
  const part = int(entry, "part", { optional: true });
  const expected = recordKey(kind, { caseId, sessionId, participantId, index, part });
  // The key is the join order: it must be exactly what the other fields say, so a renamed
  // object cannot slip into another slot.
  if (key !== expected) {
    throw new MalformedError(`key ${key} does not match its kind, case, session, participant, part and index (${expected})`);
  }
  const sha256 = str(entry, "sha256");
  if (!HEX64.test(sha256)) throw new MalformedError("field sha256 must be 64 lowercase hex digits");
  const recipients = entry.recipients ?? [];
  if (!Array.isArray(recipients) || !recipients.every((r) => typeof r === "string")) {
    throw new MalformedError("field recipients must be a list of strings");
  }
  let auditEntry;
  try {
    auditEntry = base64ToBytes(str(entry, "audit_entry"));
  } catch (error) {
    if (error instanceof MalformedError) throw error;
    throw new MalformedError("field audit_entry is not base64");
  }
  return {
    position, key, kind, sessionId, participantId, index, part, sha256, size: int(entry, "size"),
    createdAt: str(entry, "created_at", { optional: true }), recipients, auditSeq: int(entry, "audit_seq"),
    auditEntry, ...parseInclusion(entry.inclusion),
  };
}

export class ManifestError extends Error {}

/**
 * Read a manifest (text); throws ManifestError if unusable as a whole, lists bad entries in `malformed`.
 * @param {string} text
 * @returns {Manifest}
 */
export function parseManifest(text) {
  let top;
  try {
    top = JSON.parse(text);
  } catch (/** @type {any} */ error) {
    throw new ManifestError(`manifest is not valid JSON: ${error.message}`);
  }
  let caseId;
  let pem;
  try {
    exactFields(top, TOP_FIELDS, "manifest");
    if (top.format !== BUNDLE_FORMAT) {
      throw new MalformedError(`format is ${JSON.stringify(top.format)}, this page reads ${BUNDLE_FORMAT}`);
    }
    caseId = checkId("case_id", str(top, "case_id"));
    str(top, "exported_at");
    pem = str(top, "audit_public_key_pem", { optional: true });
    if (!Array.isArray(top.objects)) throw new MalformedError("field objects is not a list");
  } catch (error) {
    if (error instanceof MalformedError) throw new ManifestError(`manifest: ${error.message}`);
    throw error;
  }
  /** @type {ManifestObject[]} */
  const objects = [];
  /** @type {MalformedEntry[]} */
  const malformed = [];
  top.objects.forEach((/** @type {unknown} */ entry, /** @type {number} */ position) => {
    try {
      objects.push(parseObject(position, entry, caseId));
    } catch (error) {
      if (!(error instanceof MalformedError)) throw error;
      /** @type {Record<string, any>} */
      const hint = {};
      if (isObject(entry)) {
        for (const name of ["key", "kind", "session_id", "participant_id", "index", "part"]) hint[name] = entry[name];
      }
      malformed.push({ position, problem: error.message, hint });
    }
  });
  return { caseId, exportedAt: top.exported_at, auditPublicKeyPem: pem, objects, malformed };
}

/** @param {ManifestObject} obj */
export function describeObject(obj) {
  return { kind: obj.kind, key: obj.key };
}

/**
 * What is wrong with the object's audit entry and its binding to the object: a list of {code, params}.
 * @param {ManifestObject} obj
 * @param {string} caseId
 * @returns {Promise<Problem[]>}
 */
export async function checkAuditEntry(obj, caseId) {
  /** @type {Problem[]} */
  const problems = [];
  const seq = obj.auditSeq;
  const recomputed = await leafHash(obj.auditEntry);
  if (!equalBytes(recomputed, obj.leafHash)) problems.push({ code: "audit_leaf_mismatch", params: { seq } });
  const { checkpoint } = obj;
  if (!await verifyInclusion(recomputed, seq, checkpoint.treeSize, obj.proof, checkpoint.rootHash)) {
    problems.push({ code: "audit_not_included", params: { seq, ...describeCheckpoint(checkpoint) } });
  }
  let entry;
  try {
    entry = JSON.parse(utf8.decode(obj.auditEntry));
  } catch {
    return [...problems, { code: "audit_entry_not_json", params: { seq } }];
  }
  if (!isObject(entry)) return [...problems, { code: "audit_entry_not_object", params: { seq } }];
  if (entry.seq !== seq) problems.push({ code: "audit_seq_mismatch", params: { seq, found: entry.seq ?? null } });
  if (entry.case_id !== caseId) {
    problems.push({ code: "audit_wrong_case", params: { seq, found: entry.case_id ?? null, caseId } });
  }
  let { detail } = entry;
  if (!isObject(detail)) return [...problems, { code: "audit_no_detail", params: { seq } }];
  if (!("key" in detail) && "storage_key" in detail) detail = { ...detail, key: detail.storage_key };
  const expected = { key: obj.key, sha256: obj.sha256, kind: obj.kind, session_id: obj.sessionId,
    participant_id: obj.participantId, index: obj.index, part: obj.part, size: obj.size };
  for (const [name, value] of Object.entries(expected)) {
    if ((name === "key" || name === "sha256") && !(name in detail)) {
      problems.push({ code: "audit_field_absent", params: { seq, name } });
    } else if (name in detail && detail[name] !== value) {
      problems.push({ code: "audit_field_mismatch", params: { seq, name, found: detail[name], expected: value } });
    }
  }
  return problems;
}
