// What the mesh tests share: participants, a room over the fake server with a Mesh per member,
// and checks of a pair's connection.
import assert from "node:assert/strict";

import { RoomClient } from "../../src/lib/room/protocol.js";
import { Mesh, sdpFingerprint } from "../../src/lib/room/mesh.js";
import { FakeMediaStream, FakeRTCPeerConnection, FakeTrack } from "./room-rtc-fakes.mjs";
import { FakeRoomServer, settle } from "./room-socket-fakes.mjs";

export const MEDIATOR = { participant_id: "usr_mediator", role: "mediator", name: "Mediator", status: "admitted" };
export const BORROWER = { participant_id: "pty_borrower", role: "borrower", name: "Borrower", status: "admitted" };
export const BANK = { participant_id: "usr_bank", role: "bank_representative", name: "Bank", status: "admitted" };

// Every mesh a test made is stopped afterwards (each test file calls `stopMeshes` after each test),
// also when the test failed half-way: a mesh left running (a watchdog replacing a connection that
// can never connect) would keep Node alive.
const liveMeshes = [];
export function stopMeshes() {
  for (const mesh of liveMeshes.splice(0)) mesh.stop();
}

/** Let callbacks run until `predicate()` holds (at most `timeoutMs`), for checks on a busy machine. */
export async function until(predicate, { timeoutMs = 5000, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  await settle();
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await settle(5);
  }
}

export function avStream() {
  return new FakeMediaStream([new FakeTrack("audio"), new FakeTrack("video")]);
}

/** Join `participant` through a real RoomClient over the fake server, with a Mesh on top. */
export async function join(server, participant, { stream = avStream(), meshOptions = {} } = {}) {
  const client = new RoomClient({ io: server.io(participant), ackTimeoutMs: 1000 });
  await client.connect({ token: "jln_test_token_0000" });
  const mesh = new Mesh({
    client,
    RTCPeerConnection: FakeRTCPeerConnection,
    localStream: stream,
    connectTimeoutMs: 0,
    ...meshOptions,
  });
  liveMeshes.push(mesh);
  const events = [];
  for (const name of ["remote_stream", "remote_stream_removed", "peer_created", "peer_closed", "offer_refused", "error"]) {
    mesh.on(name, (body) => events.push({ name, ...body }));
  }
  await client.joinRoom();
  return { client, mesh, events, id: participant.participant_id, socket: server.socket(participant.participant_id) };
}

/** Everyone joins, then the server announces the full roster (as it does on every change). */
export async function room(participants, options = {}) {
  const server = new FakeRoomServer(options.server);
  const members = [];
  for (const p of participants) members.push(await join(server, p, options));
  server.broadcastState();
  await settle();
  return { server, members };
}

export function pcOf(member, otherId) {
  const peer = member.mesh.peers.get(otherId);
  return peer ? peer.pc : null;
}

export function assertConnected(a, b) {
  const ab = pcOf(a, b.id);
  const ba = pcOf(b, a.id);
  assert.ok(ab && ba, `${a.id} <-> ${b.id}: both ends hold a connection`);
  assert.equal(ab.signalingState, "stable");
  assert.equal(ba.signalingState, "stable");
  assert.equal(ab.connectionState, "connected");
  assert.equal(ba.connectionState, "connected");
  // Each end's remote description is the other end's connection (no stale pairing).
  assert.equal(sdpFingerprint(ab.remoteDescription.sdp), sdpFingerprint(ba.localDescription.sdp));
  assert.equal(sdpFingerprint(ba.remoteDescription.sdp), sdpFingerprint(ab.localDescription.sdp));
}
