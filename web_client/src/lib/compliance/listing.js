// Spec: docs/records.md (the record format and the problem codes both verifiers report).
// A case's sealed records (the API's list) grouped as the page shows them before anything is
// opened: per session, recordings per participant and part, chat, transcript, consents; then the
// case's agreements. Nothing here is verified: that happens when records are opened. No DOM access here.

function bump(target, record) {
  target.count += 1;
  target.bytes += record.size;
}

export function groupRecords(records) {
  const sessions = new Map();
  const agreements = [];
  const other = [];
  const session = (sessionId) => {
    if (!sessions.has(sessionId)) {
      sessions.set(sessionId, { sessionId, recordings: new Map(), chat: { count: 0, bytes: 0 }, transcript: null,
        consents: new Map(), first: null });
    }
    return sessions.get(sessionId);
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
      const parts = group.recordings.get(record.participant_id);
      if (!parts.has(record.part)) parts.set(record.part, { count: 0, bytes: 0 });
      bump(parts.get(record.part), record);
    } else if (record.kind === "chat_message") {
      bump(group.chat, record);
    } else if (record.kind === "transcript") {
      group.transcript = record;
    } else if (record.kind === "consent") {
      if (!group.consents.has(record.participant_id)) group.consents.set(record.participant_id, []);
      group.consents.get(record.participant_id).push(record);
    } else {
      other.push(record);
    }
  }
  agreements.sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
  const ordered = [...sessions.values()].sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  return { sessions: ordered, agreements, other };
}

/** Names for participant ids from a case view: parties by party_id, assigned staff by user_id. */
export function caseNames(caseView) {
  const names = new Map();
  for (const party of caseView?.parties ?? []) names.set(party.party_id, { name: party.name, role: party.role });
  for (const staff of caseView?.assignments ?? []) {
    names.set(staff.user_id, { name: staff.display_name, role: staff.role });
  }
  return names;
}
