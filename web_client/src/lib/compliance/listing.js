// Spec: docs/records.md (the record format and the problem codes both verifiers report).
// A case's sealed records (the API's list) grouped as the page shows them before anything is
// opened: per session, recordings per participant and part, chat, transcript, consents; then the
// case's agreements. Nothing here is verified: that happens when records are opened. No DOM access here.

/**
 * @typedef {object} ListedRecord A sealed record as the API lists it.
 * @property {string} kind
 * @property {string | null} [session_id]
 * @property {string | null} [participant_id]
 * @property {number | null} [part]
 * @property {number | null} [index]
 * @property {number} size
 * @property {string} created_at
 *
 * @typedef {{count: number, bytes: number}} Tally
 *
 * @typedef {object} SessionGroup
 * @property {string} sessionId
 * @property {Map<string | null | undefined, Map<number | null | undefined, Tally>>} recordings
 *   participant_id -> part -> tally
 * @property {Tally} chat
 * @property {ListedRecord | null} transcript
 * @property {Map<string | null | undefined, ListedRecord[]>} consents participant_id -> consents
 * @property {string | null} first the earliest created_at
 */

/** @param {Tally} target @param {ListedRecord} record */
function bump(target, record) {
  target.count += 1;
  target.bytes += record.size;
}

/**
 * @param {ListedRecord[]} records
 * @returns {{sessions: SessionGroup[], agreements: ListedRecord[], other: ListedRecord[]}}
 */
export function groupRecords(records) {
  /** @type {Map<string, SessionGroup>} */
  const sessions = new Map();
  /** @type {ListedRecord[]} */
  const agreements = [];
  /** @type {ListedRecord[]} */
  const other = [];
  /** @param {string} sessionId @returns {SessionGroup} */
  const session = (sessionId) => {
    if (!sessions.has(sessionId)) {
      sessions.set(sessionId, { sessionId, recordings: new Map(), chat: { count: 0, bytes: 0 }, transcript: null,
        consents: new Map(), first: null });
    }
    return /** @type {SessionGroup} */ (sessions.get(sessionId));
  };
  for (const record of records) {
    if (record.kind === "agreement") {
      agreements.push(record);
      continue;
    }
    if (typeof record.session_id !== "string") {
      other.push(record);
      continue;
    }
    const group = session(record.session_id);
    if (group.first === null || record.created_at < group.first) group.first = record.created_at;
    if (record.kind === "recording_segment") {
      if (!group.recordings.has(record.participant_id)) group.recordings.set(record.participant_id, new Map());
      const parts = /** @type {Map<number | null | undefined, Tally>} */ (group.recordings.get(record.participant_id));
      if (!parts.has(record.part)) parts.set(record.part, { count: 0, bytes: 0 });
      bump(/** @type {Tally} */ (parts.get(record.part)), record);
    } else if (record.kind === "chat_message") {
      bump(group.chat, record);
    } else if (record.kind === "transcript") {
      group.transcript = record;
    } else if (record.kind === "consent") {
      if (!group.consents.has(record.participant_id)) group.consents.set(record.participant_id, []);
      /** @type {ListedRecord[]} */ (group.consents.get(record.participant_id)).push(record);
    } else {
      other.push(record);
    }
  }
  agreements.sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
  // Every group has a first time: it is made for a record and takes that record's.
  const ordered = [...sessions.values()].sort((/** @type {any} */ a, /** @type {any} */ b) => (a.first < b.first ? -1
    : a.first > b.first ? 1 : 0));
  return { sessions: ordered, agreements, other };
}

/**
 * Names for participant ids from a case view: parties by party_id, assigned staff by user_id.
 * @param {any} caseView the API's case view
 * @returns {Map<string, {name: string, role: string}>}
 */
export function caseNames(caseView) {
  /** @type {Map<string, {name: string, role: string}>} */
  const names = new Map();
  for (const party of caseView?.parties ?? []) names.set(party.party_id, { name: party.name, role: party.role });
  for (const staff of caseView?.assignments ?? []) {
    names.set(staff.user_id, { name: staff.display_name, role: staff.role });
  }
  return names;
}
