import { afterEach, beforeEach, test } from "node:test";
import assert from "node:assert/strict";

import { RoomClient } from "../src/lib/room/protocol.js";
import { isPolite, sdpFingerprint } from "../src/lib/room/mesh.js";
import { FakeMediaStream, FakeRTCPeerConnection, FakeTrack } from "./support/room-rtc-fakes.mjs";
import { FakeRoomServer, settle, sleep } from "./support/room-socket-fakes.mjs";
import { BANK, BORROWER, MEDIATOR, assertConnected, join, pcOf, room, stopMeshes } from "./support/room-mesh-helpers.mjs";

beforeEach(() => FakeRTCPeerConnection.reset());
afterEach(stopMeshes);

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
