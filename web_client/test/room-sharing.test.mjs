// The meeting basics without a browser: reading getStats() into a level and a quality, the speaker's
// hysteresis, and telling a shared screen's track from the camera's.
import { test } from "node:test";
import assert from "node:assert/strict";

import { SpeakerDetector, quality, readStats, worse } from "../src/lib/room/stats.js";
import { parseScreenShare, remoteScreen, takeScreenTrack } from "../src/lib/room/screen.js";

const pair = (rtt, bitrate) => ({ type: "candidate-pair", nominated: true, state: "succeeded", currentRoundTripTime: rtt, availableOutgoingBitrate: bitrate });
const audioIn = (lost, received, energy, duration, level = 0) => ({ type: "inbound-rtp", kind: "audio", packetsLost: lost, packetsReceived: received, totalAudioEnergy: energy, totalSamplesDuration: duration, audioLevel: level });
const videoIn = (dropped, frames) => ({ type: "inbound-rtp", kind: "video", packetsLost: 0, packetsReceived: 0, framesDropped: dropped, framesReceived: frames });

test("a reading measures loss, dropped frames and loudness over the interval, not since the start", () => {
  const first = readStats(new Map([["a", pair(0.05, 2e6)], ["b", audioIn(100, 900, 0, 10)], ["c", videoIn(50, 100)]]));
  const next = readStats([pair(0.08, 1.5e6), audioIn(101, 1000, 0.25, 11), videoIn(51, 200)], first.counters);
  assert.equal(next.rtt, 0.08);
  assert.equal(next.outgoingBitrate, 1.5e6);
  assert.ok(Math.abs(/** @type {number} */ (next.loss) - 1 / 101) < 1e-9);
  assert.equal(next.dropped, 1 / 100);
  assert.ok(Math.abs(/** @type {number} */ (next.level) - 0.5) < 1e-9); // sqrt(0.25 / 1 s)
  assert.equal(quality(next), "good");
});

test("quality: poor past a hard limit, fair past a soft one, unknown before any measure", () => {
  const base = { rtt: 0.05, loss: 0, outgoingBitrate: 2e6, dropped: 0 };
  assert.equal(quality(base), "good");
  assert.equal(quality({ ...base, rtt: 0.3 }), "fair");
  assert.equal(quality({ ...base, loss: 0.1 }), "poor");
  assert.equal(quality({ ...base, outgoingBitrate: 100_000 }), "poor");
  assert.equal(quality({ ...base, dropped: 0.1 }), "fair");
  assert.equal(quality({ rtt: null, loss: null, outgoingBitrate: null, dropped: null }), "unknown");
  assert.equal(worse("good", "poor"), "poor");
  assert.equal(worse("unknown", "fair"), "fair");
  assert.equal(worse("fair", "unknown"), "fair");
  // The remote's report of our own packets counts as loss too.
  assert.equal(quality(readStats([{ type: "remote-inbound-rtp", fractionLost: 0.2, roundTripTime: 0.1 }])), "poor");
});

test("the speaker: starts at once, holds through short pauses, yields only when quiet or outspoken", () => {
  const speakers = new SpeakerDetector({ on: 0.04, off: 0.015, holdMs: 1500, switchMs: 1000 });
  assert.equal(speakers.update(new Map([["a", 0.2], ["b", 0]]), 0), "a");
  assert.equal(speakers.update(new Map([["a", 0], ["b", 0]]), 1000), "a"); // a pause between words
  assert.equal(speakers.update(new Map([["a", 0], ["b", 0.1]]), 1400), "a"); // b starts: a still holds
  assert.equal(speakers.update(new Map([["a", 0], ["b", 0.1]]), 2600), "b"); // a quiet for 1.6 s
  assert.equal(speakers.update(new Map([["a", 0.3], ["b", 0.1]]), 2700), "b"); // a louder, not for long yet
  assert.equal(speakers.update(new Map([["a", 0.3], ["b", 0.1]]), 3800), "a");
  assert.equal(speakers.update(new Map([["a", 0], ["b", 0]]), 4000), "a");
  assert.equal(speakers.update(new Map([["a", 0], ["b", 0]]), 6000), null);
  assert.equal(speakers.update(new Map(), 7000), null);
});

test("a shared screen's track is told from the camera by the stream the room announced", () => {
  const emitted = [];
  const peer = /** @type {any} */ ({ id: "pty_a", pc: {} });
  const mesh = /** @type {any} */ ({ peers: new Map([["pty_a", peer]]), screen: null, screenShare: null, reconcile() {}, emit: (name, body) => emitted.push([name, body]) });
  const camera = { id: "cam-stream" };
  const screen = { id: "screen-stream" };
  const track = { kind: "video" };
  assert.equal(takeScreenTrack(mesh, peer, /** @type {any} */ ({ streams: [screen], track })), false); // nobody shares yet
  mesh.screenShare = parseScreenShare({ participant_id: "pty_a", stream_id: "screen-stream" });
  assert.equal(takeScreenTrack(mesh, peer, /** @type {any} */ ({ streams: [camera], track })), false);
  assert.equal(takeScreenTrack(mesh, peer, /** @type {any} */ ({ streams: [screen], track })), true);
  assert.deepEqual(emitted.map(([name]) => name), ["remote_screen"]);
  assert.equal(remoteScreen(mesh, mesh.screenShare), screen);
  assert.equal(remoteScreen(mesh, { participant_id: "pty_a", stream_id: "another" }), null);
  assert.equal(parseScreenShare({ participant_id: 5, stream_id: "x" }), null);
  assert.equal(parseScreenShare(null), null);
});
