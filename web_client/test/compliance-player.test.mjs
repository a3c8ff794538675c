// The review player's logic: files placed on the session clock from their records, gaps and
// presence laid out, the current transcript line, drift correction and the master clock.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  MasterClock, withDuration, activeTrack, clockText, correction, currentLine, gapAt, gapMarks, holdsMedia, lanes, lineTimes,
  mergeRanges, playerTracks, sessionSpan,
} from "../src/lib/compliance/player.js";
import { segmentTiming } from "../src/lib/compliance/open.js";
import { timeline } from "../src/lib/compliance/transcript.js";

const T0 = Date.parse("2026-12-02T01:00:00.000Z");
const iso = (/** @type {number} */ seconds) => new Date(T0 + seconds * 1000).toISOString();

/** A verified recording as open.js routes it. */
function recording(participantId, part, clockZeroMs, media) {
  return { group: ["recording", "ses_1", participantId, String(part).padStart(4, "0")], sessionId: "ses_1",
    participantId, part, chunks: [], segments: [0], clockZeroMs, media };
}

const DOC = {
  format: "mediation-transcript/v1", started_at: iso(0), ended_at: iso(60),
  participants: [{ participant_id: "pty_a", name: "A", role: "borrower" }, { participant_id: "usr_b", name: "B", role: "mediator" }],
  recordings: { pty_a: { parts: [3, 2] }, usr_b: { parts: [5] } },
  events: [
    { at: iso(0), type: "participant_joined", participant_id: "usr_b", role: "mediator" },
    { at: iso(10), type: "recording_started", by: "usr_b" },
    { at: iso(12), type: "chat_message", seq: 1, participant_id: "pty_a", text: "hello", channel: "main" },
    { at: iso(20.5), type: "recording_gap", participant_id: "pty_a", part: 0, from: iso(20.5), to: iso(31),
      file_from: 10.5, file_to: 21, reason: "cut_off" },
    { at: iso(40), type: "chat_message", seq: 2, participant_id: "usr_b", text: "again", channel: "main" },
    { at: iso(60), type: "session_ended", by: "usr_b" },
  ],
};
// Recording 1 started at 10 s (its files' time zero); recording 2 at 30 s.
const RECORDINGS = [
  recording("pty_a", 0, T0 + 10_000, [[1000, 6000], [6200, 10500]]),
  recording("pty_a", 1, T0 + 30_000, [[1200, 25000]]),
  recording("usr_b", 0, T0 + 10_000, [[800, 45000]]),
];

test("player: the session clock runs from the transcript's start to its end", () => {
  const span = sessionSpan(DOC, RECORDINGS);
  assert.equal(span.originMs, T0);
  assert.equal(span.duration, 60);
  // Media before the transcript's start moves the origin back; media after its end stretches it.
  const early = sessionSpan(DOC, [recording("x", 0, T0 - 5000, [[0, 70_000]])]);
  assert.equal(early.originMs, T0 - 5000);
  assert.equal(early.duration, 70);
  assert.deepEqual(sessionSpan(null, []), { originMs: 0, duration: 0 });
});

test("player: each file is placed by its clock zero, with its presence on the session clock", () => {
  const span = sessionSpan(DOC, RECORDINGS);
  const tracks = playerTracks(RECORDINGS, span);
  assert.deepEqual(tracks.map((t) => [t.participantId, t.part, t.offset, t.placed]),
    [["pty_a", 0, 10, true], ["pty_a", 1, 30, true], ["usr_b", 0, 10, true]]);
  assert.deepEqual(tracks[0].presence, [[11, 20.5]]); // a 0.2 s hole is still presence
  assert.deepEqual(tracks[1].presence, [[31.2, 55]]);
  const unplaced = playerTracks([recording("z", 0, null, [])], span)[0];
  assert.equal(unplaced.placed, false);
  assert.equal(unplaced.offset, 0);
});

test("player: a file without media times is present for as long as it plays", () => {
  const span = sessionSpan(DOC, RECORDINGS);
  const [unplaced] = playerTracks([recording("z", 0, null, [])], span);
  assert.equal(activeTrack([unplaced], 1), null);
  const known = withDuration(unplaced, 12.5);
  assert.deepEqual(known.presence, [[0, 12.5]]);
  assert.equal(activeTrack([known], 1), known);
  const [placed] = playerTracks(RECORDINGS, span);
  assert.equal(withDuration(placed, 99), placed);
});

test("player: ranges merge across short holes only", () => {
  assert.deepEqual(mergeRanges([[5, 6], [0, 1], [1.4, 2], [3, 4]]), [[0, 2], [3, 4], [5, 6]]);
  assert.deepEqual(mergeRanges([]), []);
});

test("player: gaps and presence are laid out per participant as fractions of the span", () => {
  const span = sessionSpan(DOC, RECORDINGS);
  const gaps = gapMarks(DOC, span);
  assert.equal(gaps.length, 1);
  const [gap] = gaps;
  assert.equal(gap.participantId, "pty_a");
  assert.equal(gap.reason, "cut_off");
  assert.equal(gap.from, 20.5);
  assert.equal(gap.to, 31);
  assert.ok(Math.abs(gap.left - 20.5 / 60) < 1e-9 && Math.abs(gap.width - 10.5 / 60) < 1e-9);
  const rows = lanes(playerTracks(RECORDINGS, span), gaps, span);
  assert.deepEqual(rows.map((r) => [r.participantId, r.presence.length, r.gaps.length]), [["pty_a", 2, 1], ["usr_b", 1, 0]]);
  // An unreadable gap is left off the lanes (the verifier still reports it as a problem).
  const bad = { ...DOC, events: [{ at: iso(1), type: "recording_gap", participant_id: "pty_a", from: "soon", to: iso(2) }] };
  assert.deepEqual(gapMarks(bad, span), []);
  // A gap past the span's end is clamped to it.
  const late = { ...DOC, events: [{ type: "recording_gap", participant_id: "pty_a", from: iso(50), to: iso(90) }] };
  const [clamped] = gapMarks(late, span);
  assert.ok(clamped.left + clamped.width <= 1 + 1e-9);
});

test("player: which file plays, and whether it holds media, at a session time", () => {
  const span = sessionSpan(DOC, RECORDINGS);
  const mine = playerTracks(RECORDINGS, span).filter((t) => t.participantId === "pty_a");
  assert.equal(activeTrack(mine, 5), null); // before the recording
  assert.equal(activeTrack(mine, 15)?.part, 0);
  assert.equal(activeTrack(mine, 25), null); // the gap: no file holds it
  assert.equal(activeTrack(mine, 40)?.part, 1);
  assert.equal(activeTrack(mine, 59), null); // after they left
  assert.ok(holdsMedia(mine[0], 15) && !holdsMedia(mine[0], 22));
  const gaps = gapMarks(DOC, span);
  assert.equal(gapAt(gaps, "pty_a", 25)?.reason, "cut_off");
  assert.equal(gapAt(gaps, "usr_b", 25), null);
  assert.equal(gapAt(gaps, "pty_a", 31), null);
});

test("player: the current transcript line is the last at or before the time", () => {
  const span = sessionSpan(DOC, RECORDINGS);
  const times = lineTimes(timeline(DOC), span);
  assert.deepEqual(times, [0, 10, 12, 20.5, 40, 60]);
  assert.equal(currentLine(times, -1), -1);
  assert.equal(currentLine(times, 0), 0);
  assert.equal(currentLine(times, 12), 2); // seeking to a line makes it current
  assert.equal(currentLine(times, 39.9), 3);
  assert.equal(currentLine(times, 100), 5);
  assert.equal(currentLine([null, 3, null], 5), 1); // lines without a time are never current
});

test("player: a gap in the transcript reads as its range, part and reason", () => {
  const entry = timeline(DOC).find((e) => e.type === "recording_gap");
  assert.deepEqual(entry?.gap, { from: new Date(T0 + 20_500), to: new Date(T0 + 31_000), part: 0, reason: "cut_off" });
  assert.equal(entry?.fields, undefined);
});

test("player: drift is left alone, trimmed by rate, or sought", () => {
  assert.deepEqual(correction(10.02, 10), { seek: null, rate: 1 });
  const behind = correction(9.9, 10);
  assert.equal(behind.seek, null);
  assert.ok(behind.rate > 1 && behind.rate <= 1.1);
  const ahead = correction(10.2, 10);
  assert.ok(ahead.rate < 1 && ahead.rate >= 0.9);
  assert.deepEqual(correction(12, 10), { seek: 10, rate: 1 });
  assert.deepEqual(correction(Number.NaN, 10), { seek: 10, rate: 1 });
});

test("player: the master clock plays, pauses, seeks and stops at the end", () => {
  let now = 0;
  const clock = new MasterClock(10, () => now);
  assert.equal(clock.time(), 0);
  clock.play();
  now = 2500;
  assert.equal(clock.time(), 2.5);
  clock.pause();
  now = 5000;
  assert.equal(clock.time(), 2.5);
  clock.seek(7);
  clock.play();
  now = 6000;
  assert.equal(clock.time(), 8);
  now = 20_000;
  assert.equal(clock.time(), 10);
  assert.equal(clock.playing, false);
  clock.play(); // at the end: from the start again
  assert.equal(clock.time(), 0);
  clock.seek(-3);
  assert.equal(clock.time(), 0);
  clock.seek(99);
  assert.equal(clock.time(), 10);
});

test("player: clock text", () => {
  assert.equal(clockText(0), "0:00");
  assert.equal(clockText(65.7), "1:05");
  assert.equal(clockText(3725), "1:02:05");
  assert.equal(clockText(Number.NaN), "0:00");
});

test("player: a segment's audit entry gives its clock zero and media", () => {
  const entry = new TextEncoder().encode(JSON.stringify({ detail: { clock_zero_ms: T0, media: [[0, 580], [900, 1200], ["x", 3]] } }));
  assert.deepEqual(segmentTiming(entry), { clockZeroMs: T0, media: [[0, 580], [900, 1200]] });
  assert.deepEqual(segmentTiming(new TextEncoder().encode("{}")), { clockZeroMs: null, media: [] });
  assert.deepEqual(segmentTiming(new TextEncoder().encode("not json")), { clockZeroMs: null, media: [] });
});
