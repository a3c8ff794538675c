import { afterEach, beforeEach, test } from "node:test";
import assert from "node:assert/strict";

import { RoomClient } from "../src/lib/room/protocol.js";
import { Mesh, isPolite, sdpFingerprint } from "../src/lib/room/mesh.js";
import {
  FakeMediaStream,
  FakeRTCPeerConnection,
  FakeRoomServer,
  FakeTrack,
  settle,
  sleep,
} from "./support/room-fakes.mjs";

const MEDIATOR = { participant_id: "usr_mediator", role: "mediator", name: "Mediator", status: "admitted" };
const BORROWER = { participant_id: "pty_borrower", role: "borrower", name: "Borrower", status: "admitted" };
const BANK = { participant_id: "usr_bank", role: "bank_representative", name: "Bank", status: "admitted" };

beforeEach(() => FakeRTCPeerConnection.reset());

// Every mesh a test made is stopped afterwards, also when the test failed half-way: a mesh left
// running (a watchdog replacing a connection that can never connect) would keep Node alive.
const liveMeshes = [];
afterEach(() => {
  for (const mesh of liveMeshes.splice(0)) mesh.stop();
});

/** Let callbacks run until `predicate()` holds (at most `timeoutMs`), for checks on a busy machine. */
async function until(predicate, { timeoutMs = 5000, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  await settle();
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await settle(5);
  }
}

function avStream() {
  return new FakeMediaStream([new FakeTrack("audio"), new FakeTrack("video")]);
}

/** Join `participant` through a real RoomClient over the fake server, with a Mesh on top. */
async function join(server, participant, { stream = avStream(), meshOptions = {} } = {}) {
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
async function room(participants, options = {}) {
  const server = new FakeRoomServer(options.server);
  const members = [];
  for (const p of participants) members.push(await join(server, p, options));
  server.broadcastState();
  await settle();
  return { server, members };
}

function pcOf(member, otherId) {
  const peer = member.mesh.peers.get(otherId);
  return peer ? peer.pc : null;
}

function assertConnected(a, b) {
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

test("polite is the lexicographically larger participant_id", () => {
  assert.equal(isPolite("usr_mediator", "pty_borrower"), true);
  assert.equal(isPolite("pty_borrower", "usr_mediator"), false);
  assert.equal(isPolite("usr_bank", "usr_mediator"), false);
});

test("sdpFingerprint reads the DTLS fingerprint", () => {
  assert.equal(sdpFingerprint("v=0\r\na=fingerprint:sha-256 AA:BB\r\nm=audio"), "a=fingerprint:sha-256 aa:bb");
  assert.equal(sdpFingerprint("v=0\r\n"), null);
  assert.equal(sdpFingerprint(undefined), null);
});

test("a new connection is opened by the impolite end; the polite end answers (no initial glare)", async () => {
  const { members, server } = await room([MEDIATOR, BORROWER]);
  const [mediator, borrower] = members;
  assertConnected(mediator, borrower);
  const politePc = pcOf(mediator, borrower.id); // usr_mediator > pty_borrower
  const impolitePc = pcOf(borrower, mediator.id);
  assert.deepEqual(
    server.signals.filter((s) => s.kind !== "ice_candidate").map((s) => `${s.from} ${s.kind}`),
    ["pty_borrower offer", "usr_mediator answer"],
  );
  assert.ok(!politePc.log.includes("rollback"));
  assert.equal(FakeRTCPeerConnection.instances.length, 2, "no connection was replaced");
  assert.ok(politePc.candidates.length > 0 && impolitePc.candidates.length > 0, "candidates exchanged");
  assert.deepEqual(mediator.events.filter((e) => e.name === "error"), []);
  assert.deepEqual(borrower.events.filter((e) => e.name === "error"), []);
});

test("glare on renegotiation: both ends offer at once; the polite end rolls back, one connection remains", async () => {
  const server = new FakeRoomServer();
  const mStream = new FakeMediaStream([new FakeTrack("audio")]);
  const bStream = new FakeMediaStream([new FakeTrack("audio")]);
  const mediator = await join(server, MEDIATOR, { stream: mStream });
  const borrower = await join(server, BORROWER, { stream: bStream });
  server.broadcastState();
  await settle();
  assertConnected(mediator, borrower);
  const politePc = pcOf(mediator, borrower.id);
  const impolitePc = pcOf(borrower, mediator.id);
  server.signals.length = 0;

  // Both turn their cameras on at the same moment: both renegotiate. The relay holds the offers
  // until both are out, so that they cross whatever the timer order on a busy machine.
  const mCam = new FakeTrack("video");
  const bCam = new FakeTrack("video");
  mStream.addTrack(mCam);
  bStream.addTrack(bCam);
  server.hold();
  await Promise.all([mediator.mesh.replaceTrack("video", mCam), borrower.mesh.replaceTrack("video", bCam)]);
  await settle();
  server.release();
  await settle();

  const offers = server.signals.filter((s) => s.kind === "offer").map((s) => s.from);
  assert.ok(offers.includes(mediator.id) && offers.includes(borrower.id), "both offered");
  assert.ok(politePc.log.includes("rollback"), "the polite end rolled back its offer");
  assert.ok(!impolitePc.log.includes("rollback"), "the impolite end never rolls back");
  assertConnected(mediator, borrower);
  assert.equal(pcOf(mediator, borrower.id), politePc, "same connections");
  assert.equal(pcOf(borrower, mediator.id), impolitePc);
  assert.ok(politePc.getSenders().some((x) => x.track === mCam) && impolitePc.getSenders().some((x) => x.track === bCam));
  // Everything either end wanted is negotiated in the end (no renegotiation left pending).
  assert.equal(politePc.signalingState, "stable");
  assert.equal(impolitePc.signalingState, "stable");
});

test("candidates that arrive before their description are kept and applied afterwards", async () => {
  const server = new FakeRoomServer();
  const mediator = await join(server, MEDIATOR);
  const borrower = await join(server, BORROWER);
  server.broadcastState();
  await settle();
  const pc = pcOf(mediator, borrower.id);
  assertConnected(mediator, borrower);
  // A replaced connection on the borrower's side: its candidates overtake its offer.
  const next = new FakeRTCPeerConnection({});
  const cand = { candidate: "candidate:9 1 udp 1 192.0.2.9 9 typ host", sdpMid: "0", sdpMLineIndex: 0, usernameFragment: next.ufrag };
  mediator.mesh._closePeer(borrower.id, "test");
  mediator.mesh._createPeer(borrower.id, { announce: false });
  const fresh = pcOf(mediator, borrower.id);
  mediator.socket.serverEmit("signal", { from: borrower.id, kind: "ice_candidate", payload: cand });
  await settle(3);
  assert.deepEqual(mediator.events.filter((e) => e.name === "error"), []);
  next.addTransceiver("audio", { direction: "recvonly" });
  await next.setLocalDescription();
  mediator.socket.serverEmit("signal", { from: borrower.id, kind: "offer", payload: next.localDescription });
  await settle();
  assert.ok(fresh.candidates.some((c) => c.candidate === cand.candidate), "the early candidate was applied");
  assert.notEqual(fresh, pc);
});

test("the polite end offers itself when no offer comes within initialOfferWaitMs", async () => {
  const server = new FakeRoomServer();
  const mediator = await join(server, MEDIATOR, { meshOptions: { initialOfferWaitMs: 30 } });
  // The borrower's client is silent: it never offers.
  const silent = new RoomClient({ io: server.io(BORROWER) });
  await silent.connect({});
  server.broadcastState();
  await settle(3);
  const pc = pcOf(mediator, BORROWER.participant_id);
  assert.ok(!pc.log.includes("local offer"), "waits first");
  await sleep(50);
  await settle(3);
  assert.ok(pc.log.includes("local offer"), "then offers");
  assert.ok(server.signals.some((x) => x.from === MEDIATOR.participant_id && x.kind === "offer"));
  mediator.mesh.stop();
});

test("ICE servers come from the join result", async () => {
  const iceServers = [{ urls: "turn:turn.example.org:3478", username: "1700000000:pty_borrower", credential: "c2VjcmV0" }];
  await room([MEDIATOR, BORROWER], { server: { iceServers } });
  for (const pc of FakeRTCPeerConnection.instances) assert.deepEqual(pc.config.iceServers, iceServers);
});

test("full mesh of three: one connection per other admitted participant, remote streams per participant", async () => {
  const { members } = await room([MEDIATOR, BORROWER, BANK]);
  const [mediator, borrower, bank] = members;
  assertConnected(mediator, borrower);
  assertConnected(mediator, bank);
  assertConnected(borrower, bank);
  assert.equal(FakeRTCPeerConnection.instances.length, 6);
  for (const m of members) {
    assert.equal(m.mesh.peers.size, 2);
    const from = new Set(m.events.filter((e) => e.name === "remote_stream").map((e) => e.participantId));
    assert.deepEqual([...from].sort(), members.filter((o) => o !== m).map((o) => o.id).sort());
    for (const e of m.events.filter((x) => x.name === "remote_stream")) assert.ok(e.stream && e.track);
  }
  assert.equal(mediator.mesh.remoteStream(borrower.id), pcOf(mediator, borrower.id).remoteStream);
});

test("lobby members, disconnected members and oneself get no connection", async () => {
  const server = new FakeRoomServer();
  const mediator = await join(server, MEDIATOR);
  const borrower = await join(server, { ...BORROWER, status: "lobby" });
  const bank = await join(server, BANK);
  bank.socket.serverDisconnect("transport close"); // its place is kept, shown as connected: false
  server.set(BANK.participant_id, { connected: false });
  server.broadcastState();
  await settle();
  assert.deepEqual([...mediator.mesh.peers.keys()], []);
  assert.deepEqual([...borrower.mesh.peers.keys()], [], "a lobby member holds no connection");
  assert.equal(bank.mesh.peers.size, 0);
  assert.ok(!server.signals.some((s) => s.from === borrower.id));

  // Admission: the room_state that shows the borrower admitted starts the connection.
  server.set(BORROWER.participant_id, { status: "admitted" });
  server.broadcastState();
  await settle();
  assertConnected(mediator, borrower);
});

test("room_state: a participant who leaves or goes back to the lobby loses its connection", async () => {
  const { members, server } = await room([MEDIATOR, BORROWER, BANK]);
  const [mediator, borrower, bank] = members;
  const old = pcOf(mediator, borrower.id);
  server.set(BORROWER.participant_id, { status: "lobby" });
  borrower.socket.serverEmit("returned_to_lobby", { reason: "mediator" });
  server.broadcastState();
  await settle();
  assert.equal(old.closed, true);
  assert.equal(mediator.mesh.peers.has(borrower.id), false);
  assert.equal(bank.mesh.peers.has(borrower.id), false);
  assert.equal(borrower.mesh.peers.size, 0, "back in the lobby: no connections at all");
  assert.ok(mediator.events.some((e) => e.name === "remote_stream_removed" && e.participantId === borrower.id));
  assertConnected(mediator, bank);

  // Admitted again: connected again with fresh connections.
  server.set(BORROWER.participant_id, { status: "admitted" });
  server.broadcastState();
  await settle();
  assertConnected(mediator, borrower);
  assertConnected(bank, borrower);
  assert.notEqual(pcOf(mediator, borrower.id), old);
});

test("media_isolation closes the listed connections and refuses their offers until lifted", async () => {
  const { members, server } = await room([MEDIATOR, BORROWER, BANK]);
  const [mediator, borrower, bank] = members;
  const toBank = pcOf(mediator, bank.id);
  const borrowerToBank = pcOf(borrower, bank.id);
  const mediatorToBorrower = pcOf(mediator, borrower.id);

  // Caucus mediator + borrower; the bank is left out.
  server.block(MEDIATOR.participant_id, BANK.participant_id);
  server.block(BORROWER.participant_id, BANK.participant_id);
  mediator.socket.serverEmit("media_isolation", { stop_sending_to: [bank.id] });
  borrower.socket.serverEmit("media_isolation", { stop_sending_to: [bank.id] });
  bank.socket.serverEmit("media_isolation", { stop_sending_to: [mediator.id, borrower.id] });
  await settle();

  assert.equal(toBank.closed, true, "mediator -> bank closed");
  assert.equal(borrowerToBank.closed, true, "borrower -> bank closed");
  assert.equal(mediator.mesh.peers.has(bank.id), false);
  assert.equal(borrower.mesh.peers.has(bank.id), false);
  assert.equal(bank.mesh.peers.size, 0);
  assert.equal(mediatorToBorrower.closed, false, "the caucus pair stays connected");
  assert.equal(pcOf(mediator, borrower.id), mediatorToBorrower);

  // An offer from the isolated side (say relayed just before the server's block) is refused.
  const pcsBefore = FakeRTCPeerConnection.instances.length;
  const signalsBefore = server.signals.length;
  mediator.socket.serverEmit("signal", { from: bank.id, kind: "offer", payload: { type: "offer", sdp: "v=0\r\na=fingerprint:sha-256 ZZ\r\n" } });
  mediator.socket.serverEmit("signal", { from: bank.id, kind: "ice_candidate", payload: { candidate: "candidate:1 1 udp 1 192.0.2.1 1 typ host", sdpMid: "0", sdpMLineIndex: 0 } });
  await settle();
  assert.equal(FakeRTCPeerConnection.instances.length, pcsBefore, "no connection created for the isolated side");
  assert.equal(server.signals.length, signalsBefore, "no answer sent");
  assert.ok(mediator.events.some((e) => e.name === "offer_refused" && e.participantId === bank.id));

  // A room_state during the caucus does not bring the isolated connections back.
  server.broadcastState();
  await settle();
  assert.equal(mediator.mesh.peers.has(bank.id), false);

  // Lifted: everybody reconnects.
  server.unblockAll();
  for (const m of members) m.socket.serverEmit("media_isolation", { stop_sending_to: [] });
  await settle();
  assertConnected(mediator, bank);
  assertConnected(borrower, bank);
  assertConnected(mediator, borrower);
  assert.equal(pcOf(mediator, borrower.id), mediatorToBorrower, "the untouched pair was not renegotiated");
});

test("a signal refused by the server with `isolated` stops that connection until the caucus changes", async () => {
  const { members, server } = await room([MEDIATOR, BORROWER]);
  const [mediator, borrower] = members;
  server.block(MEDIATOR.participant_id, BORROWER.participant_id);
  // The borrower has not heard of the caucus: it renegotiates (e.g. an ICE restart) and is refused.
  pcOf(borrower, mediator.id).restartIce();
  await settle();
  assert.equal(borrower.mesh.peers.has(mediator.id), false);
  assert.ok(borrower.mesh.refusedByServer.has(mediator.id));
  server.broadcastState();
  await settle();
  assert.equal(borrower.mesh.peers.has(mediator.id), false, "not re-created while refused");
  server.unblockAll();
  borrower.socket.serverEmit("caucus_ended", {});
  mediator.socket.serverEmit("media_isolation", { stop_sending_to: [] });
  await settle();
  assertConnected(mediator, borrower);
});

test("chat-only session: no peer connections, offers ignored", async () => {
  const { members, server } = await room([MEDIATOR, BORROWER], { server: { mode: "chat" } });
  const [mediator] = members;
  assert.equal(FakeRTCPeerConnection.instances.length, 0);
  assert.equal(server.signals.length, 0);
  mediator.socket.serverEmit("signal", { from: BORROWER.participant_id, kind: "offer", payload: { type: "offer", sdp: "v=0" } });
  await settle();
  assert.equal(FakeRTCPeerConnection.instances.length, 0);
  assert.equal(mediator.mesh.active, false);
});

test("a new connection on the other side (reload) replaces ours: detected by the DTLS fingerprint", async () => {
  const { members, server } = await room([MEDIATOR, BORROWER]);
  const [mediator, borrower] = members;
  const oldMediatorPc = pcOf(mediator, borrower.id);
  // The borrower's page reloads: its old mesh is gone, a new one joins with a new connection.
  borrower.mesh.stop();
  const reloaded = await join(server, BORROWER);
  server.broadcastState();
  await settle();
  assert.equal(oldMediatorPc.closed, true, "the stale connection was replaced");
  assert.ok(mediator.events.some((e) => e.name === "peer_closed" && e.reason === "remote_restart"));
  assertConnected(mediator, reloaded);
});

test("our socket drops: connections close; after the automatic re-join they are rebuilt", async () => {
  const { members, server } = await room([MEDIATOR, BORROWER]);
  const [mediator, borrower] = members;
  const old = pcOf(borrower, mediator.id);
  borrower.socket.serverDisconnect("transport close");
  await settle();
  assert.equal(old.closed, true);
  assert.equal(borrower.mesh.peers.size, 0);
  borrower.socket.serverConnect(); // socket.io reconnected; RoomClient re-joins by itself
  await settle();
  assert.equal(borrower.client.joined, true);
  assertConnected(mediator, borrower);
  assert.equal(server.members.size, 2);
});

test("a party without camera or microphone still connects and receives (receive-only offer)", async () => {
  const { members } = await room([MEDIATOR, { ...BORROWER }], {});
  const [mediator, borrower] = members;
  assertConnected(mediator, borrower);

  const server = new FakeRoomServer();
  FakeRTCPeerConnection.reset();
  const m2 = await join(server, MEDIATOR);
  const b2 = await join(server, BORROWER, { stream: new FakeMediaStream() }); // impolite, no media
  server.broadcastState();
  await settle();
  assertConnected(m2, b2);
  assert.ok(pcOf(b2, m2.id).log.some((l) => l.startsWith("addTransceiver(video, recvonly)")));
  assert.ok(b2.events.some((e) => e.name === "remote_stream" && e.participantId === m2.id), "receives the mediator");
});

test("replaceTrack switches devices without renegotiation; adding a new kind renegotiates", async () => {
  const audioOnly = new FakeMediaStream([new FakeTrack("audio")]);
  const server = new FakeRoomServer();
  const mediator = await join(server, MEDIATOR);
  const borrower = await join(server, BORROWER, { stream: audioOnly });
  server.broadcastState();
  await settle();
  assertConnected(mediator, borrower);
  const pc = pcOf(borrower, mediator.id);
  const offersBefore = server.signals.filter((s) => s.kind === "offer").length;

  const newMic = new FakeTrack("audio");
  await borrower.mesh.replaceTrack("audio", newMic);
  await settle();
  const audioSender = pc.getSenders().find((s) => s.track && s.track.kind === "audio");
  assert.equal(audioSender.track, newMic);
  assert.equal(server.signals.filter((s) => s.kind === "offer").length, offersBefore, "no renegotiation");

  const camera = new FakeTrack("video");
  audioOnly.addTrack(camera);
  await borrower.mesh.replaceTrack("video", camera);
  await settle();
  assert.ok(pc.getSenders().some((s) => s.track === camera), "camera sent");
  assert.ok(server.signals.filter((s) => s.kind === "offer").length > offersBefore, "renegotiated");
  assertConnected(mediator, borrower);
  assert.equal(pcOf(borrower, mediator.id), pc, "same connection");
});

test("watchdog: a polite end without media announces itself, then replaces a connection that never connects", async () => {
  const server = new FakeRoomServer();
  const mediator = await join(server, MEDIATOR, { stream: new FakeMediaStream(), meshOptions: { connectTimeoutMs: 40 } });
  // The borrower joins but its client is silent (it never offers nor answers).
  const borrowerSocket = new RoomClient({ io: server.io(BORROWER) });
  await borrowerSocket.connect({});
  server.broadcastState();
  await settle(3);
  const first = pcOf(mediator, BORROWER.participant_id);
  assert.ok(first, "connection created");
  assert.equal(first.transceivers.length, 0, "polite, no media: waits for the other end's offer");
  await sleep(60);
  await settle(3);
  assert.ok(first.log.includes("local offer"), "announced itself with a receive-only offer");
  await sleep(60);
  await settle(3);
  assert.equal(first.closed, true, "replaced after the timeout");
  const second = pcOf(mediator, BORROWER.participant_id);
  assert.ok(second && second !== first);
  assert.ok(mediator.events.some((e) => e.name === "peer_closed" && e.reason === "timeout"));
  mediator.mesh.stop();
});

test("a failed connection restarts ICE first, then is replaced", async () => {
  const server = new FakeRoomServer();
  const mediator = await join(server, MEDIATOR, { meshOptions: { iceRestartTimeoutMs: 30 } });
  const borrower = await join(server, BORROWER);
  server.broadcastState();
  await settle();
  const pc = pcOf(mediator, borrower.id);
  // Make the borrower unresponsive, so that the ICE restart cannot succeed.
  server.block(MEDIATOR.participant_id, "nobody");
  borrower.mesh.stop();
  pc.setConnectionState("failed");
  await settle(2);
  assert.ok(pc.log.includes("restartIce"));
  await sleep(50);
  await settle(2);
  assert.equal(pc.closed, true);
  assert.ok(mediator.events.some((e) => e.name === "peer_closed" && e.reason === "failed"));
  mediator.mesh.stop();
});

test("terminal notices stop the mesh", async () => {
  const { members } = await room([MEDIATOR, BORROWER]);
  const [mediator, borrower] = members;
  borrower.socket.serverEmit("session_ended", {});
  await settle();
  assert.equal(borrower.mesh.stopped, true);
  assert.equal(borrower.mesh.peers.size, 0);
  mediator.socket.serverEmit("removed", { reason: "x" });
  await settle();
  assert.equal(mediator.mesh.peers.size, 0);
});

test("room_state.isolated_from is applied like media_isolation (e.g. after a re-join during a caucus)", async () => {
  const { members, server } = await room([MEDIATOR, BORROWER, BANK]);
  const [mediator, borrower, bank] = members;
  const toBank = pcOf(borrower, bank.id);
  const state = server.roomState();
  borrower.socket.serverEmit("room_state", { ...state, caucus: { active: true, members: [mediator.id, borrower.id] }, isolated_from: [bank.id] });
  await settle();
  assert.equal(toBank.closed, true);
  assert.equal(borrower.mesh.peers.has(bank.id), false);
  assertConnected(mediator, borrower);
  borrower.socket.serverEmit("signal", { from: bank.id, kind: "offer", payload: { type: "offer", sdp: "v=0\r\n" } });
  await settle();
  assert.ok(borrower.events.some((e) => e.name === "offer_refused" && e.participantId === bank.id));
  borrower.socket.serverEmit("room_state", { ...state, isolated_from: [] });
  await settle();
  assertConnected(borrower, bank);
});

test("the recorder: we always offer (it only answers), and only when we have media to send", async () => {
  const RECORDER = { participant_id: "rcd_recorder", role: "recorder", name: "Recorder", status: "admitted" };
  const server = new FakeRoomServer();
  // The mediator (usr_… > rcd_…) is the polite end, yet must not wait for the recorder's offer.
  const mediator = await join(server, MEDIATOR, { meshOptions: { initialOfferWaitMs: 60_000 } });
  const noMedia = await join(server, BANK, { stream: new FakeMediaStream() });
  // A recorder that answers offers and never offers itself.
  const recorderClient = new RoomClient({ io: server.io(RECORDER) });
  await recorderClient.connect({});
  recorderClient.on("signal", async ({ from, kind, payload }) => {
    if (kind !== "offer") return;
    const pc = new FakeRTCPeerConnection({});
    pc.onicecandidate = ({ candidate }) => candidate && recorderClient.signal(from, "ice_candidate", candidate.toJSON());
    await pc.setRemoteDescription(payload);
    await pc.setLocalDescription();
    recorderClient.signal(from, "answer", pc.localDescription);
  });
  await recorderClient.joinRoom();
  server.broadcastState();
  await settle();
  const toRecorder = pcOf(mediator, RECORDER.participant_id);
  assert.ok(toRecorder, "connected to the recorder");
  assert.equal(toRecorder.connectionState, "connected");
  assert.ok(server.signals.some((x) => x.from === MEDIATOR.participant_id && x.to === RECORDER.participant_id && x.kind === "offer"));
  assert.equal(noMedia.mesh.peers.has(RECORDER.participant_id), false, "nothing to send: no connection");
  assert.ok(!mediator.events.some((e) => e.name === "remote_stream" && e.participantId === RECORDER.participant_id));

  // Media appears: now the recorder gets it.
  const mic = new FakeTrack("audio");
  noMedia.mesh.localStream.addTrack(mic);
  await noMedia.mesh.replaceTrack("audio", mic);
  await settle();
  assert.equal(pcOf(noMedia, RECORDER.participant_id).connectionState, "connected");
  mediator.mesh.stop();
});

// --- the recorder (docs/protocol.md: role "recorder") ---------------------------------------------

const RECORDER = { participant_id: "rcd_recorder", role: "recorder", name: "Recorder", status: "admitted" };
const LENDER = { participant_id: "pty_lender", role: "lender", name: "Lender", status: "admitted" };

function connectedTo(member, otherId) {
  const pc = pcOf(member, otherId);
  return Boolean(pc && pc.connectionState === "connected" && pc.signalingState === "stable");
}

function allConnected(list) {
  return list.every((a) => list.every((b) => a === b || connectedTo(a, b.id)));
}

/**
 * A recorder that behaves like recording/worker.py: it never offers and sends no media; it answers
 * every offer with a brand-new connection (closing the one it had with that sender), and takes the
 * sender's ICE candidates.
 */
async function joinRecorder(server, participant = RECORDER) {
  const client = new RoomClient({ io: server.io(participant), ackTimeoutMs: 1000 });
  const recorder = { id: participant.participant_id, client, offers: [], current: new Map(), closed: [] };
  await client.connect({});
  client.on("signal", async ({ from, kind, payload }) => {
    if (kind === "offer") {
      recorder.offers.push({ from, sdp: payload.sdp });
      const previous = recorder.current.get(from);
      if (previous) {
        previous.close();
        recorder.closed.push(from);
      }
      const pc = new FakeRTCPeerConnection({});
      recorder.current.set(from, pc);
      await pc.setRemoteDescription(payload);
      await pc.setLocalDescription();
      client.signal(from, "answer", { type: "answer", sdp: pc.localDescription.sdp });
    } else if (kind === "ice_candidate" && payload.candidate) {
      const pc = recorder.current.get(from);
      if (pc && !pc.closed) await pc.addIceCandidate(payload).catch(() => {});
    }
  });
  await client.joinRoom();
  recorder.offersFrom = (id) => recorder.offers.filter((o) => o.from === id);
  return recorder;
}

/** The m-line directions of an SDP, e.g. ["audio sendonly", "video sendonly"]. */
function mediaLines(sdp) {
  const out = [];
  for (const line of sdp.split("\r\n")) {
    if (line.startsWith("m=")) out.push(line.slice(2).split(" ")[0]);
    else if (/^a=(sendrecv|sendonly|recvonly|inactive)$/.test(line) && out.length) out[out.length - 1] += ` ${line.slice(2)}`;
  }
  return out;
}

test("the recorder: every admitted participant offers it camera and microphone send-only; nothing comes back", async () => {
  const server = new FakeRoomServer();
  // usr_mediator and usr_bank are the polite end towards rcd_…, pty_borrower the impolite one:
  // whatever the politeness, each offers at once (no wait for an offer that never comes).
  const opts = { meshOptions: { initialOfferWaitMs: 60_000 } };
  const mediator = await join(server, MEDIATOR, opts);
  const bank = await join(server, BANK, opts);
  const borrower = await join(server, BORROWER, opts);
  const lobby = await join(server, { ...LENDER, status: "lobby" }, opts);
  const recorder = await joinRecorder(server);
  server.broadcastState();
  await until(() => [mediator, bank, borrower].every((m) => connectedTo(m, recorder.id)) && allConnected([mediator, bank, borrower]),
    { what: "everyone connected to the recorder and to each other" });

  for (const member of [mediator, bank, borrower]) {
    const pc = pcOf(member, recorder.id);
    assert.ok(pc, `${member.id} holds a connection to the recorder`);
    assert.equal(pc.connectionState, "connected", member.id);
    const offers = recorder.offersFrom(member.id);
    assert.equal(offers.length, 1, `${member.id}: one offer`);
    assert.deepEqual(mediaLines(offers[0].sdp), ["audio sendonly", "video sendonly"], member.id);
    assert.deepEqual(pc.getTransceivers().map((t) => t.sender.track && t.sender.track.kind), ["audio", "video"]);
    assert.ok(!member.events.some((e) => e.name === "remote_stream" && e.participantId === recorder.id), "no media back");
  }
  assert.equal(lobby.mesh.peers.has(recorder.id), false, "a lobby member sends nothing");
  assert.equal(recorder.offersFrom(lobby.id).length, 0);
  assert.ok(!server.signals.some((s) => s.from === recorder.id && s.kind === "offer"), "the recorder never offers");
  // The mesh between the people is untouched by the recorder.
  assertConnected(mediator, borrower);
  assertConnected(bank, borrower);

  // An offer claiming to come from the recorder is not taken (it only answers).
  const before = FakeRTCPeerConnection.instances.length;
  borrower.socket.serverEmit("signal", { from: recorder.id, kind: "offer", payload: { type: "offer", sdp: "v=0\r\na=fingerprint:sha-256 EE\r\n" } });
  await settle();
  assert.equal(FakeRTCPeerConnection.instances.length, before);
  assert.equal(pcOf(borrower, recorder.id).connectionState, "connected");
  for (const m of [mediator, bank, borrower, lobby]) m.mesh.stop();
});

test("the recorder in a caucus: caucus members close their connection to it; it is offered afresh afterwards", async () => {
  const { members, server } = await room([MEDIATOR, BORROWER, BANK]);
  const [mediator, borrower, bank] = members;
  const recorder = await joinRecorder(server);
  server.broadcastState();
  await until(() => members.every((m) => connectedTo(m, recorder.id)), { what: "connections to the recorder" });
  const first = { mediator: pcOf(mediator, recorder.id), borrower: pcOf(borrower, recorder.id), bank: pcOf(bank, recorder.id) };
  for (const pc of Object.values(first)) assert.equal(pc.connectionState, "connected");

  // Caucus mediator + borrower: the recorder is outside it, with the bank.
  mediator.socket.serverEmit("media_isolation", { stop_sending_to: [bank.id, recorder.id] });
  borrower.socket.serverEmit("media_isolation", { stop_sending_to: [bank.id, recorder.id] });
  bank.socket.serverEmit("media_isolation", { stop_sending_to: [mediator.id, borrower.id] });
  recorder.client.socket.serverEmit("media_isolation", { stop_sending_to: [mediator.id, borrower.id] });
  await settle();
  assert.equal(first.mediator.closed, true);
  assert.equal(first.borrower.closed, true);
  assert.equal(mediator.mesh.peers.has(recorder.id), false);
  assert.ok(borrower.events.some((e) => e.name === "peer_closed" && e.participantId === recorder.id && e.reason === "isolated"));
  assert.equal(first.bank.closed, false, "the party outside the caucus keeps sending to the recorder");
  assert.equal(bank.mesh.peers.get(recorder.id).pc, first.bank);
  // A room_state during the caucus does not bring it back.
  server.broadcastState();
  await settle();
  assert.equal(mediator.mesh.peers.has(recorder.id), false);
  assert.equal(recorder.offersFrom(mediator.id).length, 1);

  // The caucus closes: the members offer the recorder a fresh connection (a new file part).
  for (const m of [...members, { socket: recorder.client.socket }]) m.socket.serverEmit("media_isolation", { stop_sending_to: [] });
  await until(() => [mediator, borrower].every((m) => connectedTo(m, recorder.id) && pcOf(m, recorder.id) !== first.mediator && pcOf(m, recorder.id) !== first.borrower),
    { what: "fresh connections to the recorder" });
  for (const member of [mediator, borrower]) {
    const pc = pcOf(member, recorder.id);
    assert.ok(pc && pc !== first[member === mediator ? "mediator" : "borrower"], `${member.id}: a new connection`);
    assert.equal(pc.connectionState, "connected");
    assert.equal(recorder.offersFrom(member.id).length, 2, `${member.id} offered again`);
  }
  assert.equal(recorder.offersFrom(bank.id).length, 1, "the bank's connection was never interrupted");
  for (const m of members) m.mesh.stop();
});

test("the recorder leaves (recording stopped): connections close; a new recorder is offered at once", async () => {
  const { members, server } = await room([MEDIATOR, BORROWER]);
  const [mediator, borrower] = members;
  const recorder = await joinRecorder(server);
  server.broadcastState();
  await until(() => members.every((m) => connectedTo(m, recorder.id)), { what: "connections to the recorder" });
  const old = pcOf(borrower, recorder.id);
  assert.equal(old.connectionState, "connected");

  recorder.client.socket.serverDisconnect("io server disconnect");
  server.members.delete(recorder.id);
  server.broadcastState();
  await settle();
  assert.equal(old.closed, true);
  assert.equal(borrower.mesh.peers.has(recorder.id), false);
  assert.equal(mediator.mesh.peers.has(recorder.id), false);
  assert.ok(borrower.events.some((e) => e.name === "peer_closed" && e.participantId === recorder.id && e.reason === "left"));
  assertConnected(mediator, borrower);

  // The mediator starts again: the server brings a new recorder (a new participant id).
  const second = await joinRecorder(server, { ...RECORDER, participant_id: "rcd_second" });
  server.broadcastState();
  await until(() => members.every((m) => connectedTo(m, second.id)), { what: "connections to the new recorder" });
  for (const member of members) {
    assert.equal(pcOf(member, second.id).connectionState, "connected", member.id);
    assert.equal(second.offersFrom(member.id).length, 1);
  }
  for (const m of members) m.mesh.stop();
});

test("towards the recorder a new kind of track or a failure replaces the connection instead of renegotiating", async () => {
  const server = new FakeRoomServer();
  const stream = new FakeMediaStream([new FakeTrack("audio")]);
  const borrower = await join(server, BORROWER, { stream });
  const recorder = await joinRecorder(server);
  server.broadcastState();
  await until(() => connectedTo(borrower, recorder.id), { what: "the connection to the recorder" });
  const first = pcOf(borrower, recorder.id);
  assert.equal(first.connectionState, "connected");
  assert.deepEqual(mediaLines(recorder.offers[0].sdp), ["audio sendonly"]);

  // The camera comes on: a new connection with both kinds, not a renegotiation of the old one
  // (the recorder would answer from a new connection of its own).
  const cam = new FakeTrack("video");
  stream.addTrack(cam);
  await borrower.mesh.replaceTrack("video", cam);
  await until(() => first.closed && connectedTo(borrower, recorder.id), { what: "the replacement connection" });
  assert.equal(first.log.filter((l) => l === "local offer").length, 1, "the old connection never re-offered");
  assert.ok(borrower.events.some((e) => e.name === "peer_closed" && e.participantId === recorder.id && e.reason === "renegotiate"));
  const second = pcOf(borrower, recorder.id);
  assert.equal(second.connectionState, "connected");
  assert.equal(recorder.offers.length, 2);
  assert.deepEqual(mediaLines(recorder.offers[1].sdp), ["audio sendonly", "video sendonly"]);

  // Camera off and on again: the track is swapped on the same connection, no new offer.
  const cam2 = new FakeTrack("video");
  stream.removeTrack(cam);
  await borrower.mesh.replaceTrack("video", null);
  stream.addTrack(cam2);
  await borrower.mesh.replaceTrack("video", cam2);
  await settle();
  assert.equal(pcOf(borrower, recorder.id), second);
  assert.equal(recorder.offers.length, 2);

  // A failed connection to the recorder is replaced at once (an ICE restart would renegotiate).
  second.setConnectionState("failed");
  await until(() => second.closed && connectedTo(borrower, recorder.id), { what: "the connection after the failure" });
  assert.ok(!second.log.includes("restartIce"));
  assert.equal(second.closed, true);
  assert.equal(pcOf(borrower, recorder.id).connectionState, "connected");
  assert.equal(recorder.offers.length, 3);
  borrower.mesh.stop();
});

test("chat-only session: no connection to the recorder, no media signaling at all", async () => {
  const server = new FakeRoomServer({ mode: "chat" });
  const mediator = await join(server, MEDIATOR);
  const borrower = await join(server, BORROWER);
  const recorder = await joinRecorder(server);
  server.broadcastState();
  await settle();
  assert.equal(mediator.mesh.peers.size, 0);
  assert.equal(borrower.mesh.peers.size, 0);
  assert.equal(recorder.offers.length, 0);
  assert.deepEqual(server.signals, []);
  mediator.mesh.stop();
  borrower.mesh.stop();
});
