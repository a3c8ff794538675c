// The recorder as a peer (docs/protocol.md: role "recorder"): it only answers, sends nothing back,
// and answers every offer with a brand-new connection.
import { afterEach, beforeEach, test } from "node:test";
import assert from "node:assert/strict";

import { RoomClient } from "../src/lib/room/protocol.js";
import { FakeMediaStream, FakeRTCPeerConnection, FakeTrack } from "./support/room-rtc-fakes.mjs";
import { FakeRoomServer, settle } from "./support/room-socket-fakes.mjs";
import { BANK, BORROWER, MEDIATOR, assertConnected, join, pcOf, room, stopMeshes, until } from "./support/room-mesh-helpers.mjs";

beforeEach(() => FakeRTCPeerConnection.reset());
afterEach(stopMeshes);

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
 * A recorder that behaves like recording/recorder/worker.py: it never offers and sends no media; it answers
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
