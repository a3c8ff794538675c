// The page reads only the v1 transcript (docs/records.md, "Transcript"), whose event types are the
// room's socket notices; the legacy room-log form is refused, as the offline tool refuses it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { chatSeqs, readTranscript, timeline } from "../src/lib/compliance/transcript.js";

const F = JSON.parse(readFileSync(new URL("./fixtures/compliance-bundle.json", import.meta.url), "utf8"));

test("transcript room-log form (no format, audit entries and messages) refused", () => {
  assert.throws(() => readTranscript({ case_id: "cas_1", session_id: "ses_1", events: [], messages: [] }),
    /transcript format is undefined/);
});

test("transcript events named as notices become typed timeline entries", () => {
  const doc = readTranscript({
    format: "mediation-transcript/v1", case_id: "cas_1", session_id: "ses_1", started_at: null, ended_at: null,
    participants: [{ participant_id: "pty_b", name: "Li Wei", role: "borrower" }],
    events: [
      { at: "2026-03-01T10:00:00+00:00", type: "participant_joined", participant_id: "pty_b", status: "again" },
      { at: "2026-03-01T10:00:01+00:00", type: "chat_message", seq: 4, participant_id: "pty_b", text: "hi\u202e", channel: "caucus" },
      { at: "2026-03-01T10:00:02+00:00", type: "mute_media_requested", participant_id: "pty_b", by: "usr_m", audio: true, video: false },
      { at: "2026-03-01T10:00:03+00:00", type: "participant_left", participant_id: "pty_b", reason: "disconnected" },
    ],
  });
  const [joined, chat, mute, left] = timeline(doc);
  assert.equal(joined.status, "again");
  assert.equal(joined.subject.name, "Li Wei");
  assert.deepEqual([chat.seq, chat.text, chat.channel], [4, "hi\\u202e", "caucus"]);
  assert.deepEqual([mute.audio, mute.video], [true, false]);
  assert.equal(left.reason, "disconnected");
  assert.equal(left.fields, undefined, "a known type is not shown generically");
  assert.deepEqual([...chatSeqs(doc)], [4]);
});

test("transcript of the sealed bundle fixture names its events as notices", () => {
  const types = new Set(readTranscript(F.transcript).events.map((e) => e.type));
  for (const type of ["participant_joined", "admitted", "chat_message", "message_deleted", "participant_left"]) {
    assert.ok(types.has(type), type);
  }
  assert.ok(!types.has("joined") && !types.has("chat"));
});
