// The seam between the room's connections and media encryption: given a protection (a
// MediaEncryption in the page), the mesh protects every sender and receiver of every connection —
// the offerer's, the answerer's, those a later track adds — before media can flow.
import { afterEach, beforeEach, test } from "node:test";
import assert from "node:assert/strict";

import { FakeMediaStream, FakeRTCPeerConnection, FakeTrack } from "./support/room-rtc-fakes.mjs";
import { BANK, BORROWER, MEDIATOR, assertConnected, pcOf, room, stopMeshes } from "./support/room-mesh-helpers.mjs";

beforeEach(() => FakeRTCPeerConnection.reset());
afterEach(stopMeshes);

/** Records what it was asked to protect, and what was already connected when it was. */
function recordingProtection() {
  const protection = {
    senders: new Set(),
    receivers: new Set(),
    late: [],
    protectSender(sender) {
      if (sender.pc && sender.pc.connectionState === "connected" && !protection.senders.has(sender)) protection.late.push(sender);
      protection.senders.add(sender);
    },
    protectReceiver(receiver) {
      protection.receivers.add(receiver);
    },
  };
  return protection;
}

function unprotected(members, protection) {
  const missing = [];
  for (const member of members) {
    for (const [otherId, peer] of member.mesh.peers) {
      for (const transceiver of peer.pc.getTransceivers()) {
        if (!protection.senders.has(transceiver.sender)) missing.push(`${member.id} -> ${otherId} ${transceiver.kind} sender`);
        if (!protection.receivers.has(transceiver.receiver)) missing.push(`${member.id} <- ${otherId} ${transceiver.kind} receiver`);
      }
    }
  }
  return missing;
}

test("mesh_with_protection_protects_every_sender_and_receiver_of_every_connection", async () => {
  const protection = recordingProtection();
  const { members } = await room([MEDIATOR, BORROWER, BANK], { meshOptions: { protection } });
  const [mediator, borrower, bank] = members;
  assertConnected(mediator, borrower);
  assertConnected(borrower, bank);
  assert.ok(protection.senders.size >= 12, `${protection.senders.size} senders protected`);
  assert.deepEqual(unprotected(members, protection), []);
  assert.deepEqual(protection.late, []);
});

test("mesh_with_protection_protects_transceivers_a_remote_offer_or_a_later_track_adds", async () => {
  const protection = recordingProtection();
  const { members } = await room([MEDIATOR, BORROWER], { meshOptions: { protection }, stream: new FakeMediaStream() });
  const [mediator, borrower] = members;
  assertConnected(mediator, borrower);
  // The polite end without media got its transceivers from the other end's offer.
  assert.deepEqual(unprotected(members, protection), []);
  const before = pcOf(mediator, borrower.id).getTransceivers().length;
  await mediator.mesh.setLocalStream(new FakeMediaStream([new FakeTrack("audio"), new FakeTrack("video")]));
  assert.ok(pcOf(mediator, borrower.id).getTransceivers().length >= before);
  assert.deepEqual(unprotected(members, protection), []);
});

test("mesh_without_protection_sets_no_transform", async () => {
  const { members } = await room([MEDIATOR, BORROWER]);
  for (const transceiver of pcOf(members[0], members[1].id).getTransceivers()) {
    assert.equal(transceiver.sender.transform, undefined);
  }
});

test("bind_key_source_maps_e2ee_session_events_onto_media_encryption", async () => {
  const { bindKeySource } = await import("../src/lib/e2ee/sframe.js");
  const calls = [];
  const media = {
    setSendKey: async (kid, key) => calls.push(["setSendKey", kid, key]),
    addReceiveKey: async (kid, key) => calls.push(["addReceiveKey", kid, key]),
    removeReceiveKey: (kid) => calls.push(["removeReceiveKey", kid]),
  };
  const session = new EventTarget();
  const fire = (name, detail) => session.dispatchEvent(new CustomEvent(name, { detail }));
  const stop = bindKeySource(/** @type {any} */ (media), session, "main");
  fire("sendkey", { channel: "main", kid: 11, epoch: 1, key: "k11" });
  fire("sendkey", { channel: "caucus", kid: 12, epoch: 1, key: "k12" }); // another channel's: not ours to send with
  fire("receivekey", { participantId: "pty_x", channel: "main", kid: 21, epoch: 1, key: "k21" });
  fire("dropkey", { kid: 21 });
  stop();
  fire("sendkey", { channel: "main", kid: 13, epoch: 2, key: "k13" });
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(calls, [["setSendKey", 11, "k11"], ["addReceiveKey", 21, "k21"], ["removeReceiveKey", 21]]);
});
