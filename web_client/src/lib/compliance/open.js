// Spec: docs/records.md (the record format and the problem codes both verifiers report).
// Opening a case's sealed records in the page, with the rules of the offline tool
// (recording/compliance/open.py): every object is checked before its plaintext is used: the
// checkpoint's Ed25519 signature, its audit entry (inclusion proof, and that the entry commits to
// the object's key, SHA-256 and size), the downloaded ciphertext's size and SHA-256, then age
// decryption. An object failing any check contributes nothing. Every problem is reported, tied to
// the output it spoils; a spoiled output is INCOMPLETE. No DOM access here.

import { bytesToHex, sha256, utf8 } from "./bytes.js";
import { CheckpointVerifier, CryptoUnsupportedError, importAuditKey } from "./checkpoint.js";
import { checkEvidence } from "./evidence.js";
import { FIRST_INDEX, checkAuditEntry, describeObject } from "./manifest.js";
import { reveal, sessionKeys } from "./e2eekeys.js";
import { chatSeqs, cleanText, declaredParts, readTranscript, recordingGaps } from "./transcript.js";

/** @typedef {import("./types.js").Problem} Problem */
/** @typedef {import("./manifest.js").Manifest} Manifest */
/** @typedef {import("./manifest.js").ManifestObject} ManifestObject */
/** @typedef {import("./manifest.js").MalformedEntry} MalformedEntry */
/** @typedef {import("./transcript.js").Transcript} Transcript */
/** @typedef {import("./identity.js").KeyRing} KeyRing */
/** @typedef {import("./checkpoint.js").CheckpointHead} CheckpointHead */
/** @typedef {import("./checkpoint.js").LogKey} LogKey */

/**
 * @typedef {string[]} Group the output an object belongs to, e.g. ["recording", session, participant, part]
 * @typedef {{group: Group | null, code: string, params: Record<string, unknown>}} GroupProblem
 * @typedef {{code: string, params: Record<string, unknown>}} Warning
 * @typedef {{kind: string | null, sessionId: string | null}} Selectable what `include` is asked about
 * @typedef {(recordId: string) => Promise<Uint8Array<ArrayBuffer>>} Download resolves a record's ciphertext
 * @typedef {{data: Uint8Array<ArrayBuffer>, problem?: undefined} | {problem: Problem, data?: undefined}} Fetched
 *
 * @typedef {object} Recording A verified recording part: its segments' plaintext in order.
 * @property {Group} group
 * @property {string} sessionId
 * @property {string | null} participantId
 * @property {number | null} part
 * @property {Uint8Array[]} chunks
 * @property {(number | null)[]} segments
 * @property {number | null} clockZeroMs epoch ms of the file's time zero, from its verified audit entries
 * @property {[number, number][]} media the block times (ms on the file's clock) its verified segments hold
 * @property {boolean} [spoiled]
 */
/** @typedef {import("./evidence.js").CheckpointEvidence} CheckpointEvidence */

// Keys first: they decrypt the chat of transcripts and messages. Then transcripts: the segment counts
// they declare decide whether a recording is complete.
const KIND_ORDER = ["e2ee_key", "transcript", "chat_message", "consent", "agreement", "recording_segment"];
const DOWNLOADS_AT_ONCE = 4;
const DOWNLOAD_WINDOW = 8;

/** @param {number} value @param {number} width */
const pad = (value, width) => String(value).padStart(width, "0");

/**
 * The output an object belongs to (an array), or null if its fields do not say.
 * @param {unknown} kind @param {unknown} sessionId @param {unknown} participantId @param {unknown} index
 * @param {any} [part]
 * @returns {Group | null}
 */
export function groupOf(kind, sessionId, participantId, index, part = null) {
  /** @param {unknown} v @returns {v is string | null | undefined} */
  const okId = (v) => v === null || v === undefined || typeof v === "string";
  if (!okId(sessionId) || !okId(participantId)) return null;
  const session = sessionId || "-";
  if (kind === "recording_segment" && participantId && Number.isSafeInteger(part)) {
    return ["recording", session, participantId, pad(part, 4)];
  }
  if (kind === "chat_message") return ["chat", session];
  if (kind === "transcript") return ["transcript", session];
  if (kind === "consent" && participantId) return ["consent", session, participantId, String(index)];
  if (kind === "e2ee_key" && participantId) return ["keys", session, participantId, String(index)];
  if (kind === "agreement") return ["agreement", String(index)];
  return null;
}

/**
 * @param {string} kind @param {string | null | undefined} sessionId @param {string | null | undefined} participantId
 * @param {number | null | undefined} part
 * @returns {string[]}
 */
function sequenceKey(kind, sessionId, participantId, part) {
  if (kind === "recording_segment") return [kind, sessionId || "-", participantId || "-", pad(part || 0, 4)];
  if (kind === "consent" || kind === "e2ee_key") return [kind, sessionId || "-", participantId || "-"];
  return [kind, sessionId || "-"];
}

/** Indices compactly: [0, 1, 2, 5] -> "0-2, 5". @param {number[]} indices */
export function ranges(indices) {
  const ordered = [...new Set(indices)].sort((a, b) => a - b);
  if (!ordered.length) return "—";
  const parts = [];
  let start = ordered[0];
  let prev = ordered[0];
  for (const value of ordered.slice(1)) {
    if (value !== prev + 1) {
      parts.push(start === prev ? `${start}` : `${start}-${prev}`);
      start = value;
    }
    prev = value;
  }
  parts.push(start === prev ? `${start}` : `${start}-${prev}`);
  return parts.join(", ");
}

/** @param {Group} a @param {Group} b */
const sameGroup = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

/** Problems (each tied to the output it spoils, or to everything: group null), warnings, outputs. */
export class Report {
  constructor() {
    /** @type {GroupProblem[]} */
    this.problems = [];
    /** @type {Warning[]} */
    this.warnings = [];
    this.listed = 0;
    this.verified = 0;
    /** @type {Map<string, Transcript>} */
    this.transcripts = new Map(); // session -> verified transcript (v1 form)
    /** @type {Map<string, Record<string, any>[]>} */
    this.chat = new Map(); // session -> [message, …] (room `chat_message` shape, plus seq)
    /** @type {Map<string, Map<number, string>>} */
    this.chatMissing = new Map(); // session -> Map(seq -> reason code)
    /** @type {{sessionId: string, participantId: string | null, index: number | null, value: any, text: string | null}[]} */
    this.consents = []; // {sessionId, participantId, index, value | null, text}
    /** @type {{index: number | null, value: any, text: string | null}[]} */
    this.agreements = []; // {index, value | null, text}
    /** @type {Map<string, Recording>} */
    this.recordings = new Map(); // JSON(group) -> {sessionId, participantId, part, chunks: [Uint8Array], segments}
    /** @type {string | null} */
    this.acceptedNote = null; // the checkpoint note to pin, set by openRecords
  }

  /** @param {Group | null} group @param {string} code @param {Record<string, unknown>} [params] */
  problem(group, code, params = {}) {
    this.problems.push({ group, code, params });
  }

  /** @param {string} code @param {Record<string, unknown>} [params] */
  warning(code, params = {}) {
    this.warnings.push({ code, params });
  }

  /**
   * Whether a problem touches this output: its own, its scope's, or everything's (group null).
   * Scopes: ["session", id] spoils every output of that session, ["recordings", id] every
   * recording of that session.
   * @param {Group} group
   */
  spoiled(group) {
    return this.problems.some(({ group: g }) => g === null || sameGroup(g, group)
      || (g[0] === "session" && group[1] === g[1])
      || (g[0] === "recordings" && group[0] === "recording" && group[1] === g[1]));
  }

  /** Problems tied to exactly this output or to its recording's parts (for showing beside it). @param {Group} group */
  problemsOf(group) {
    return this.problems.filter(({ group: g }) => g !== null && (sameGroup(g, group)
      || (group[0] === "recording" && g[0] === "recording-parts" && g[1] === group[1] && g[2] === group[2])));
  }

  get complete() {
    return this.problems.length === 0;
  }
}

/**
 * The audit keys to trust: the key shipped in the manifest, unless the officer gave the id the
 * mediation body publishes (`pinnedKeyId`), in which case only a shipped key with that id.
 * Resolves a Map keyId -> CryptoKey and records problems and warnings in `report`.
 * @param {string | null | undefined} pem
 * @param {string | null | undefined} pinnedKeyId
 * @param {Report} report
 * @returns {Promise<Map<string, CryptoKey>>}
 */
export async function trustedKeys(pem, pinnedKeyId, report) {
  /** @type {Map<string, CryptoKey>} */
  const trusted = new Map();
  /** @type {{key: CryptoKey, keyId: string} | null} */
  let shipped = null;
  if (pem) {
    try {
      shipped = await importAuditKey(pem);
    } catch (/** @type {any} */ error) {
      if (error instanceof CryptoUnsupportedError) report.problem(null, "ed25519_unsupported");
      else report.problem(null, "audit_key_unusable", { message: error.message });
    }
  }
  const pinned = (pinnedKeyId || "").trim().toLowerCase();
  if (pinned) {
    if (shipped && shipped.keyId === pinned) trusted.set(shipped.keyId, shipped.key);
    else if (shipped) report.warning("audit_key_not_the_pinned_one", { keyId: shipped.keyId, pinned });
  } else if (shipped) {
    trusted.set(shipped.keyId, shipped.key);
    report.warning("audit_key_not_pinned", { keyId: shipped.keyId });
  }
  if (!pem) report.problem(null, "no_audit_key");
  return trusted;
}

class Opening {
  /**
   * @param {{manifest: Manifest, recordIds: Map<string, string>, download: Download,
   *   keyring: KeyRing, verifier: CheckpointVerifier, report: Report,
   *   onProgress?: (done: number, total: number) => void}} options
   */
  constructor({ manifest, recordIds, download, keyring, verifier, report, onProgress }) {
    this.manifest = manifest;
    this.recordIds = recordIds; // storage key -> record id
    this.download = download;
    this.keyring = keyring;
    this.verifier = verifier;
    this.report = report;
    this.onProgress = onProgress;
    /** @type {Map<string, {key: string[], indices: number[]}>} */
    this.indices = new Map(); // JSON(sequence key) -> {key, indices: []}
    /** @type {Map<string, {session: string, participant: string, parts: Set<number>}>} */
    this.parts = new Map(); // JSON([session, participant]) -> {session, participant, parts: Set}
    /** @type {Map<string, [unknown, {sessionId: string, participantId: string | null}][]>} */
    this.keys = new Map(); // session -> its decrypted e2ee_key records, with where each was filed
  }

  /**
   * @param {string} kind @param {string | null | undefined} sessionId @param {string | null | undefined} participantId
   * @param {number} index @param {number | null | undefined} part
   */
  listed(kind, sessionId, participantId, index, part) {
    const key = sequenceKey(kind, sessionId, participantId, part);
    const id = JSON.stringify(key);
    if (!this.indices.has(id)) this.indices.set(id, { key, indices: [] });
    /** @type {{key: string[], indices: number[]}} */ (this.indices.get(id)).indices.push(index);
    if (kind === "recording_segment") {
      const pid = JSON.stringify([sessionId || "-", participantId || "-"]);
      if (!this.parts.has(pid)) this.parts.set(pid, { session: sessionId || "-", participant: participantId || "-", parts: new Set() });
      /** @type {{parts: Set<number>}} */ (this.parts.get(pid)).parts.add(part || 0);
    }
  }

  /** @param {string} session @param {number} seq @param {string} reason */
  missingChat(session, seq, reason) {
    if (!this.report.chatMissing.has(session)) this.report.chatMissing.set(session, new Map());
    /** @type {Map<number, string>} */ (this.report.chatMissing.get(session)).set(seq, reason);
  }

  /** @param {ManifestObject[]} objects @param {MalformedEntry[]} malformed */
  async run(objects, malformed) {
    const { report } = this;
    for (const entry of malformed) {
      const { hint } = entry;
      const group = groupOf(hint.kind, hint.session_id, hint.participant_id, hint.index, hint.part);
      report.problem(group, "malformed_entry", { position: entry.position, problem: entry.problem });
      // Its index still counts as listed: reported as malformed, not as a gap too.
      if (group !== null && hint.kind in FIRST_INDEX && Number.isSafeInteger(hint.index)) {
        this.listed(hint.kind, hint.session_id, hint.participant_id, hint.index,
          Number.isSafeInteger(hint.part) ? hint.part : null);
      }
    }
    const counts = new Map();
    for (const obj of objects) counts.set(obj.key, (counts.get(obj.key) ?? 0) + 1);
    const ordered = [...objects].sort((a, b) => compare(
      [KIND_ORDER.indexOf(a.kind), a.sessionId ?? "", a.participantId ?? "", a.part ?? 0, a.index ?? -1],
      [KIND_ORDER.indexOf(b.kind), b.sessionId ?? "", b.participantId ?? "", b.part ?? 0, b.index ?? -1]));
    const fetches = this.prefetch(ordered.filter((obj) => counts.get(obj.key) === 1));
    let done = 0;
    for (const obj of ordered) {
      if (obj.index !== null) this.listed(obj.kind, obj.sessionId, obj.participantId, obj.index, obj.part);
      const group = groupOf(obj.kind, obj.sessionId, obj.participantId, obj.index, obj.part);
      if (counts.get(obj.key) > 1) {
        report.problem(group, "listed_twice", { ...describeObject(obj), count: counts.get(obj.key) });
        if (obj.kind === "chat_message" && obj.index !== null) this.missingChat(obj.sessionId || "-", obj.index, "listed_twice");
      } else {
        const plaintext = await this.verifyAndOpen(obj, group, fetches.get(obj));
        fetches.consumed();
        if (plaintext !== null) {
          report.verified += 1;
          this.route(obj, group, plaintext);
        }
      }
      done += 1;
      this.onProgress?.(done, ordered.length);
    }
    for (const fork of this.verifier.forks) report.problem(null, fork.code, fork.params);
    await this.decryptChat();
    this.checkSequences();
    this.checkParts();
    reportGaps(report);
    for (const recording of report.recordings.values()) {
      recording.spoiled = report.spoiled(recording.group);
    }
    for (const { key } of this.indices.values()) {
      if (key[0] === "recording_segment" && !report.recordings.has(JSON.stringify(["recording", ...key.slice(1)]))) {
        report.warning("recording_nothing_verified", { where: key.slice(1).join("/") });
      }
    }
  }

  /** The ciphertext of one object: resolves {data} or {problem}, never rejects. @param {ManifestObject} obj @returns {Promise<Fetched>} */
  async fetchOne(obj) {
    const recordId = this.recordIds.get(obj.key);
    if (recordId === undefined) return { problem: { code: "not_on_case", params: {} } };
    try {
      return { data: await this.download(recordId) };
    } catch (/** @type {any} */ error) {
      return { problem: { code: "download_failed", params: { status: error?.status ?? null, error: error?.code ?? null,
        message: String(error?.message ?? error) } } };
    }
  }

  /**
   * Downloads objects a few at a time, in the order they are used, at most WINDOW ahead of the
   * one being checked (so ciphertext waiting in memory stays bounded).
   * @param {ManifestObject[]} objects
   */
  prefetch(objects) {
    const pending = objects.map((obj) => {
      /** @type {(fetched: Fetched) => void} */
      let resolve = () => {};
      /** @type {Promise<Fetched>} */
      const promise = new Promise((r) => { resolve = r; });
      return { obj, promise, resolve };
    });
    const byObject = new Map(pending.map((p) => [p.obj, p.promise]));
    /** @type {((value?: unknown) => void)[]} */
    const waiting = [];
    let next = 0;
    let consumed = 0;
    const worker = async () => {
      while (next < pending.length) {
        if (next - consumed >= DOWNLOAD_WINDOW) {
          await new Promise((r) => waiting.push(r));
          continue;
        }
        const item = pending[next];
        next += 1;
        item.resolve(await this.fetchOne(item.obj));
      }
    };
    for (let i = 0; i < DOWNLOADS_AT_ONCE; i += 1) worker();
    return {
      get: (/** @type {ManifestObject} */ obj) => /** @type {Promise<Fetched>} */ (byObject.get(obj)),
      consumed: () => {
        consumed += 1;
        for (const wake of waiting.splice(0)) wake();
      },
    };
  }

  /**
   * @param {ManifestObject} obj @param {Group | null} group @param {Promise<Fetched>} fetched
   * @returns {Promise<Uint8Array | null>}
   */
  async verifyAndOpen(obj, group, fetched) {
    /** @type {Problem[]} */
    const problems = [];
    const signature = await this.verifier.check(obj.checkpoint);
    if (signature) problems.push(signature);
    problems.push(...await checkAuditEntry(obj, this.manifest.caseId));
    const { data, problem } = await fetched;
    if (problem) problems.push(problem);
    let plaintext = null;
    if (data) {
      if (data.length < obj.size) {
        problems.push({ code: "truncated", params: { found: data.length, expected: obj.size } });
      } else if (data.length > obj.size) {
        problems.push({ code: "too_long", params: { found: data.length, expected: obj.size } });
      } else {
        const digest = bytesToHex(await sha256(data));
        if (digest !== obj.sha256) problems.push({ code: "sha256_mismatch", params: { found: digest, expected: obj.sha256 } });
      }
      // Decrypted even when a check failed, to report every fault; then the plaintext is dropped. Not
      // when it is too long, as the offline tool reads no more than size + 1 bytes (docs/records.md).
      if (data.length <= obj.size) {
        const opened = await this.keyring.open(data, obj.recipients);
        if (opened.problem) problems.push(opened.problem);
        else plaintext = opened.plaintext;
      }
    }
    for (const p of problems) this.report.problem(group, p.code, { ...describeObject(obj), ...p.params });
    if (problems.length && obj.kind === "chat_message" && obj.index !== null) {
      this.missingChat(obj.sessionId || "-", obj.index, "failed_verification");
    }
    return problems.length ? null : plaintext;
  }

  /** @param {ManifestObject} obj @param {Group | null} group @param {Uint8Array} plaintext */
  route(obj, group, plaintext) {
    const { report } = this;
    const session = obj.sessionId || "-";
    if (obj.kind === "recording_segment") {
      if (group === null) return;
      const id = JSON.stringify(group);
      if (!report.recordings.has(id)) {
        report.recordings.set(id, { group, sessionId: session, participantId: obj.participantId, part: obj.part,
          chunks: [], segments: [], clockZeroMs: null, media: [] });
      }
      const recording = /** @type {Recording} */ (report.recordings.get(id));
      recording.chunks.push(plaintext);
      recording.segments.push(obj.index);
      const timing = segmentTiming(obj.auditEntry);
      if (recording.clockZeroMs === null && timing.clockZeroMs !== null) recording.clockZeroMs = timing.clockZeroMs;
      recording.media.push(...timing.media);
      return;
    }
    let text = null;
    let value = null;
    try {
      text = utf8.decode(plaintext);
      value = JSON.parse(text);
    } catch {
      value = null;
    }
    if (obj.kind === "transcript") {
      try {
        report.transcripts.set(session, readTranscript(value));
      } catch (/** @type {any} */ error) {
        report.problem(group, "bad_transcript", { ...describeObject(obj), message: error.message });
      }
    } else if (obj.kind === "chat_message") {
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        report.problem(group, "bad_chat_message", describeObject(obj));
        this.missingChat(session, /** @type {number} */ (obj.index), "unreadable");
      } else {
        if (!report.chat.has(session)) report.chat.set(session, []);
        /** @type {Record<string, any>[]} */ (report.chat.get(session)).push({ ...value, seq: obj.index });
      }
    } else if (obj.kind === "e2ee_key") {
      if (!this.keys.has(session)) this.keys.set(session, []);
      /** @type {[unknown, {sessionId: string, participantId: string | null}][]} */ (this.keys.get(session))
        .push([value, { sessionId: session, participantId: obj.participantId ?? null }]);
    } else if (obj.kind === "consent") {
      report.consents.push({ sessionId: session, participantId: obj.participantId, index: obj.index, value, text });
    } else if (obj.kind === "agreement") {
      report.agreements.push({ index: obj.index, value, text });
    }
  }

  /** End-to-end encrypted chat, in transcripts and messages, gets its text from the session's key records. */
  async decryptChat() {
    const { report } = this;
    const sessions = new Set([...report.transcripts.keys(), ...report.chat.keys()]);
    for (const session of sessions) {
      let keys = new Map();
      try {
        keys = sessionKeys(this.keys.get(session) ?? []);
      } catch (/** @type {any} */ error) {
        report.problem(["chat", session], "bad_key_record", { session, message: String(error?.message ?? error) });
      }
      const doc = report.transcripts.get(session);
      const inTranscript = doc ? doc.events.filter((/** @type {any} */ e) => e.type === "chat_message") : [];
      for (const [group, messages] of /** @type {[Group, Record<string, any>[]][]} */ ([
        [["transcript", session], inTranscript], [["chat", session], report.chat.get(session) ?? []]])) {
        for (const seq of await reveal(messages, keys, session)) {
          report.problem(group, "undecryptable_chat", { session, seq });
        }
      }
    }
  }

  checkSequences() {
    const { report } = this;
    // What a verified transcript says was sealed must be there too: this alone catches objects
    // missing from the END of a sequence, which leave no gap.
    /** @type {Map<string, number>} */
    const declared = new Map();
    /** @param {string[]} key */
    const ensure = (key) => {
      const id = JSON.stringify(key);
      if (!this.indices.has(id)) this.indices.set(id, { key, indices: [] });
      return id;
    };
    for (const [session, doc] of report.transcripts) {
      for (const [participantId, counts] of declaredParts(doc) ?? []) {
        counts.forEach((count, part) => {
          if (count) declared.set(ensure(sequenceKey("recording_segment", session, participantId, part)), count);
        });
      }
      if (chatSeqs(doc).size) ensure(sequenceKey("chat_message", session, null, null));
    }
    const entries = [...this.indices.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [id, { key, indices }] of entries) {
      const [kind, session] = key;
      const first = FIRST_INDEX[kind];
      let end = Math.max(Math.max(first - 1, ...indices) + 1, first + (declared.get(id) ?? 0));
      if (kind === "chat_message" && report.transcripts.has(session)) {
        end = Math.max(end, Math.max(0, ...chatSeqs(/** @type {Transcript} */ (report.transcripts.get(session)))) + 1);
      }
      const have = new Set(indices);
      const missing = [];
      for (let i = first; i < end; i += 1) if (!have.has(i)) missing.push(i);
      if (!missing.length) continue;
      // A missing consent or agreement spoils no other output, but the result all the same.
      const group = kind === "recording_segment" ? ["recording", ...key.slice(1)]
        : groupOf(kind, session, key.length > 2 ? key[2] : null, null);
      report.problem(group, "missing_indices", { kind, where: key.slice(1).join("/"), missing: ranges(missing),
        present: ranges(indices) });
      if (kind === "chat_message") for (const seq of missing) this.missingChat(session, seq, "not_in_manifest");
    }
  }

  checkParts() {
    const { report } = this;
    /** @type {Map<string, number[]>} */
    const declared = new Map();
    for (const [session, doc] of report.transcripts) {
      for (const [participantId, counts] of declaredParts(doc) ?? []) {
        const id = JSON.stringify([session, participantId]);
        declared.set(id, counts);
        if (!this.parts.has(id)) this.parts.set(id, { session, participant: participantId, parts: new Set() });
      }
    }
    const entries = [...this.parts.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [id, { session, participant, parts }] of entries) {
      const present = new Set();
      for (const { key } of this.indices.values()) {
        if (key[0] === "recording_segment" && key[1] === session && key[2] === participant) present.add(Number(key[3]));
      }
      const top = Math.max(-1, ...present, ...parts);
      const empty = new Set((declared.get(id) ?? []).map((count, part) => (count ? null : part)));
      const missing = [];
      for (let part = 0; part <= top; part += 1) if (!present.has(part) && !empty.has(part)) missing.push(part);
      if (missing.length) {
        report.problem(["recording-parts", session, participant], "missing_parts",
          { where: `${session}/${participant}`, missing: ranges(missing) });
      }
    }
    const recorded = new Set([...this.parts.values()].map((p) => p.session));
    const sessions = new Set(recorded);
    for (const { key } of this.indices.values()) if (key[0] === "chat_message") sessions.add(key[1]);
    for (const session of [...sessions].sort()) {
      if (!report.transcripts.has(session)) {
        report.problem(["session", session], "no_transcript", { session });
      } else if (recorded.has(session) && declaredParts(/** @type {Transcript} */ (report.transcripts.get(session))) === null) {
        report.problem(["recordings", session], "transcript_no_recordings", { session });
      }
    }
  }
}

/**
 * Every gap a verified transcript names (the recorder's measured losses) as the problem
 * `recording_gap`, tied to the participant's file (or, unreadable, to the session's recordings).
 * @param {Report} report
 */
export function reportGaps(report) {
  for (const [session, doc] of [...report.transcripts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    for (const gap of recordingGaps(doc)) {
      const group = gap.participantId !== null && gap.part !== null
        ? ["recording", session, gap.participantId, String(gap.part).padStart(4, "0")] : ["recordings", session];
      report.problem(group, "recording_gap", { where: `${session}/${cleanText(gap.participantId ?? "?")}`,
        part: gap.part ?? "?", range: gap.range, length: gap.length, fileRange: gap.fileRange, reason: gap.reason });
    }
  }
}

/**
 * What a verified segment's audit entry says of its time (docs/records.md, "Recording gaps"): the
 * file's time zero (`clock_zero_ms`, epoch ms) and the block times it holds (`media`); nulls and
 * nothing where the entry does not say (an entry written before media times were filed).
 * @param {Uint8Array} auditEntry the entry's canonical JSON, already checked against the log
 * @returns {{clockZeroMs: number | null, media: [number, number][]}}
 */
export function segmentTiming(auditEntry) {
  /** @type {any} */
  let detail = null;
  try {
    detail = JSON.parse(utf8.decode(auditEntry))?.detail;
  } catch {
    detail = null;
  }
  const zero = detail?.clock_zero_ms;
  const media = Array.isArray(detail?.media) ? detail.media : [];
  return {
    clockZeroMs: Number.isSafeInteger(zero) ? zero : null,
    media: media.filter((/** @type {unknown} */ r) => Array.isArray(r) && r.length === 2
      && r.every((n) => Number.isSafeInteger(n)) && r[0] <= r[1]).map((/** @type {[number, number]} */ r) => [r[0], r[1]]),
  };
}

/** @param {any[]} a @param {any[]} b */
function compare(a, b) {
  for (let i = 0; i < a.length; i += 1) {
    if (a[i] < b[i]) return -1;
    if (a[i] > b[i]) return 1;
  }
  return 0;
}

/**
 * Verify and open the manifest's objects that `include(obj or hint)` selects; resolves a Report.
 *
 * `recordIds` maps storage keys to record ids (the case's record list); `download(recordId)`
 * resolves the ciphertext (each download is audited by the server); `keyring` opens age files;
 * `pinnedKeyId` is the audit key id the mediation body publishes, if the officer gave it.
 * @param {object} options
 * @param {Manifest} options.manifest
 * @param {string} options.caseId
 * @param {(what: Selectable) => boolean} [options.include]
 * @param {Map<string, string>} options.recordIds
 * @param {(Selectable & {key: string})[]} [options.listedKeys] the case's record list, to warn of records the manifest leaves out
 * @param {Download} options.download
 * @param {KeyRing} options.keyring
 * @param {string} [options.pinnedKeyId]
 * @param {(done: number, total: number) => void} [options.onProgress]
 * @param {CheckpointEvidence | null} [options.evidence] the checkpoint evidence (see checkEvidence)
 * @param {CheckpointHead | null} [options.pin] this browser's pin for the log, if any
 * @param {string[]} [options.witnessKeys] the witnesses' verifier keys
 * @param {number} [options.quorum] cosignatures required
 * @returns {Promise<Report>}
 */
export async function openRecords({ manifest, caseId, include = () => true, recordIds, listedKeys = [], download,
  keyring, pinnedKeyId = "", onProgress, evidence = null, pin = null, witnessKeys = [], quorum = 0 }) {
  const report = new Report();
  if (manifest.caseId !== caseId) report.problem(null, "manifest_wrong_case", { found: manifest.caseId, caseId });
  const objects = manifest.objects.filter((obj) => include({ kind: obj.kind, sessionId: obj.sessionId }));
  const malformed = manifest.malformed.filter((m) => include({ kind: m.hint.kind ?? null,
    sessionId: typeof m.hint.session_id === "string" ? m.hint.session_id : null }));
  report.listed = objects.length + malformed.length;
  const trusted = await trustedKeys(manifest.auditPublicKeyPem, pinnedKeyId, report);
  if (report.listed === 0) report.problem(null, "nothing_listed");
  const inManifest = new Set(manifest.objects.map((obj) => obj.key));
  const unvouched = listedKeys.filter((r) => include(r) && !inManifest.has(r.key));
  if (unvouched.length) report.warning("listed_not_in_manifest", { count: unvouched.length });
  report.acceptedNote = await checkEvidence({ evidence, pin, witnessKeys, quorum, manifest, trusted, report });
  const opening = new Opening({ manifest, recordIds, download, keyring, verifier: new CheckpointVerifier(trusted),
    report, onProgress });
  await opening.run(objects, malformed);
  return report;
}
