// Spec: docs/records.md ("Transcript"; the record format and the problem codes both verifiers report).
// The sealed transcript ('mediation-transcript/v1'; recording/records/transcript.py writes it):
// reading it, the segment counts it declares, and its events as a timeline of typed entries for
// the page to word. Event types are the room's socket notices. No DOM access here.

export const TRANSCRIPT_FORMAT = "mediation-transcript/v1";

/**
 * @typedef {Record<string, any>} TranscriptEvent one event as the JSON holds it (`type`, `at`, …)
 *
 * @typedef {object} Transcript A decrypted transcript that readTranscript accepted.
 * @property {string} format
 * @property {TranscriptEvent[]} events
 * @property {unknown} [participants]
 * @property {unknown} [recordings]
 *
 * @typedef {{name: string | null, role: string | null, participantId: string | null}} Person
 *
 * @typedef {object} TimelineEntry One event for the page to word; which fields are set depends on `type`.
 * @property {Date | null} at
 * @property {string | null} atText
 * @property {string} type
 * @property {Person} [actor]
 * @property {Person} [subject]
 * @property {string} [reason]
 * @property {string | null} [status]
 * @property {boolean} [unencrypted] joined from a browser that cannot encrypt: the room was not end-to-end encrypted
 * @property {number | null} [seq]
 * @property {string} [text]
 * @property {boolean} [undecrypted] end-to-end encrypted, and no key record opened it
 * @property {"caucus" | "main"} [channel]
 * @property {Person | null} [author]
 * @property {boolean} [muted]
 * @property {boolean} [audio]
 * @property {boolean} [video]
 * @property {boolean} [locked]
 * @property {Person[] | null} [members]
 * @property {string | null} [notice]
 * @property {[string, string][]} [fields] an unknown event's other fields, cleaned
 * @property {{from: Date | null, to: Date | null, part: number | null, reason: string}} [gap] a recording gap's range
 */

// Text typed by parties is shown to an officer: control characters and bidirectional overrides
// could hide or disguise what was said, so they are shown as \uXXXX escapes (as the CLI does).
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** @param {unknown} value @param {{newlines?: boolean}} [options] */
export function cleanText(value, { newlines = false } = {}) {
  let text = typeof value === "string" ? value : String(value);
  if (!newlines) text = text.replace(/\n/g, "\\n");
  return text.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).replace(/\t/g, "\\t");
}

/** @param {unknown} value @returns {value is Record<string, any>} */
const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

/** A Date for an ISO 8601 time with an offset, else null (a time without one is unreadable). @param {unknown} value */
export function parseTime(value) {
  if (typeof value !== "string" || !/(?:Z|z|[+-]\d{2}(?::?\d{2}(?::?\d{2}(?:\.\d+)?)?)?)$/.test(value)) return null;
  if (!/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}/.test(value)) return null;
  // Date.parse reads at most milliseconds: trim longer fractions, which it may refuse.
  const trimmed = value.replace(/(\.\d{3})\d+/, "$1").replace(" ", "T");
  const ms = Date.parse(trimmed);
  return Number.isNaN(ms) ? null : new Date(ms);
}

/**
 * participant_id -> segments per part from `recordings`, null if absent; throws if malformed.
 * @param {Record<string, any>} doc
 * @returns {Map<string, number[]> | null}
 */
export function declaredParts(doc) {
  if (!("recordings" in doc)) return null;
  const { recordings } = doc;
  if (!isObject(recordings)) throw new TypeError("transcript field 'recordings' is not an object");
  const declared = new Map();
  for (const [participantId, entry] of Object.entries(recordings)) {
    const parts = isObject(entry) ? entry.parts : null;
    if (!Array.isArray(parts) || !parts.every((n) => Number.isSafeInteger(n) && n >= 0)) {
      throw new TypeError(`transcript gives no valid segment counts for participant ${participantId}`);
    }
    declared.set(participantId, parts);
  }
  return declared;
}

const clock = (/** @type {Date | null} */ date) => (date ? date.toISOString().slice(11, 23) : "?");
const seconds = (/** @type {unknown} */ value) => (typeof value === "number" && Number.isFinite(value) ? `${value.toFixed(1)} s` : "? s");

/**
 * The transcript's `recording_gap` events (docs/records.md, "Recording gaps"), each worded as the
 * problem `recording_gap` carries it: {participantId, part (null if unreadable), range (UTC
 * "HH:MM:SS.mmm-HH:MM:SS.mmm"), length, fileRange, reason}.
 * @param {Transcript} doc
 */
export function recordingGaps(doc) {
  return doc.events.filter((/** @type {any} */ e) => e.type === "recording_gap").map((/** @type {any} */ gap) => {
    const from = parseTime(gap.from);
    const to = parseTime(gap.to);
    return {
      participantId: typeof gap.participant_id === "string" ? gap.participant_id : null,
      part: Number.isSafeInteger(gap.part) && gap.part >= 0 ? gap.part : null,
      range: `${clock(from)}-${clock(to)}`,
      length: from && to ? `${((to.getTime() - from.getTime()) / 1000).toFixed(1)} s` : "?",
      fileRange: `${seconds(gap.file_from)} to ${seconds(gap.file_to)}`,
      reason: typeof gap.reason === "string" ? cleanText(gap.reason) : "none given",
    };
  });
}

/** A decrypted v1 transcript; throws TypeError if it is not one. */
/**
 * A decrypted v1 transcript; throws TypeError if it is not one.
 * @param {unknown} doc
 * @returns {Transcript}
 */
export function readTranscript(doc) {
  if (!isObject(doc)) throw new TypeError("a transcript is a JSON object");
  const read = doc;
  if (read.format !== TRANSCRIPT_FORMAT) {
    throw new TypeError(`transcript format is ${JSON.stringify(read.format)}, not ${TRANSCRIPT_FORMAT}`);
  }
  if (!Array.isArray(read.events) || !read.events.every(isObject)) {
    throw new TypeError("transcript field 'events' is not a list of objects");
  }
  declaredParts(read); // throws if `recordings` is malformed
  return /** @type {Transcript} */ (read);
}

/** @param {Transcript} doc @returns {Set<number>} */
export function chatSeqs(doc) {
  return new Set(doc.events.filter((e) => e.type === "chat_message" && Number.isSafeInteger(e.seq)).map((e) => e.seq));
}

/** Display names for participant ids, from the transcript's participant list (or chat messages). */
export class People {
  /** @param {unknown} [participants] */
  constructor(participants = []) {
    /** @type {Map<string, Record<string, any>>} */
    this.byId = new Map();
    if (Array.isArray(participants)) {
      for (const entry of participants) {
        if (isObject(entry) && typeof entry.participant_id === "string") this.byId.set(entry.participant_id, entry);
      }
    }
  }

  /** {name, role, participantId} for an id (name null when unknown). @param {unknown} participantId @returns {Person} */
  who(participantId) {
    if (typeof participantId !== "string") return { name: null, role: null, participantId: null };
    const entry = this.byId.get(participantId);
    return { name: entry?.name ? cleanText(entry.name) : null, role: entry?.role ? cleanText(entry.role) : null,
      participantId: cleanText(participantId) };
  }
}

/**
 * The transcript's events as timeline entries: {at: Date|null, atText, type, ...fields}, people
 * resolved through `people`, text cleaned. Unknown types keep their fields (never dropped).
 * @param {Transcript} doc
 * @returns {TimelineEntry[]}
 */
export function timeline(doc) {
  const people = new People(doc.participants);
  const chat = new Map(doc.events.filter((e) => e.type === "chat_message" && Number.isSafeInteger(e.seq)).map((e) => [e.seq, e]));
  return doc.events.map((event) => {
    /** @type {TimelineEntry} */
    const entry = { at: parseTime(event.at), atText: event.at === undefined ? null : cleanText(event.at),
      type: typeof event.type === "string" ? event.type : String(event.type) };
    if ("by" in event) entry.actor = people.who(event.by);
    if ("participant_id" in event) entry.subject = people.who(event.participant_id);
    if (typeof event.reason === "string" && event.reason) entry.reason = cleanText(event.reason);
    switch (entry.type) {
      case "participant_joined":
        entry.status = typeof event.status === "string" ? cleanText(event.status) : null;
        entry.unencrypted = event.end_to_end === false;
        break;
      case "chat_message":
        entry.seq = Number.isSafeInteger(event.seq) ? event.seq : null;
        entry.text = cleanText(event.text ?? "", { newlines: true });
        if (event.text === undefined && typeof event.ciphertext === "string") entry.undecrypted = true;
        entry.channel = event.channel === "caucus" ? "caucus" : "main";
        break;
      case "message_deleted": {
        entry.seq = Number.isSafeInteger(event.seq) ? event.seq : null;
        const original = chat.get(event.seq);
        entry.author = original ? people.who(original.participant_id) : null;
        break;
      }
      case "chat_muted":
        entry.muted = Boolean(event.muted);
        break;
      case "mute_media_requested":
        entry.audio = Boolean(event.audio);
        entry.video = Boolean(event.video);
        break;
      case "room_locked":
        entry.locked = Boolean(event.locked);
        break;
      case "caucus_started":
        entry.members = Array.isArray(event.members) ? event.members.map((/** @type {unknown} */ m) => people.who(m)) : null;
        break;
      case "consent_given":
        entry.notice = typeof event.notice_sha256 === "string" ? cleanText(event.notice_sha256) : null;
        break;
      case "recording_gap":
        entry.gap = { from: parseTime(event.from), to: parseTime(event.to),
          part: Number.isSafeInteger(event.part) && event.part >= 0 ? event.part : null,
          reason: typeof event.reason === "string" ? cleanText(event.reason) : "" };
        break;
      case "participant_left": case "admitted": case "refused": case "returned_to_lobby": case "removed":
      case "caucus_ended": case "consent_withdrawn": case "recording_started": case "recording_stopped":
      case "session_ended":
        break;
      default:
        entry.fields = Object.entries(event).filter(([k]) => k !== "at" && k !== "type").sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([k, v]) => [cleanText(k), cleanText(typeof v === "string" ? v : JSON.stringify(v))]);
    }
    return entry;
  });
}

/** Who took part, as the transcript lists them. @param {Transcript} doc */
export function participants(doc) {
  return (Array.isArray(doc.participants) ? doc.participants : []).filter(isObject).map((p) => ({
    participantId: cleanText(p.participant_id ?? ""), name: p.name ? cleanText(p.name) : null,
    role: p.role ? cleanText(p.role) : null,
  }));
}
