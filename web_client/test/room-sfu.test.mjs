import { afterEach, beforeEach, test } from "node:test";
import assert from "node:assert/strict";

import { Emitter } from "../src/lib/room/emitter.js";
import { Sfu, layoutFeeds, streamOwners } from "../src/lib/room/sfu.js";
import { FakeMediaStream, FakeRTCPeerConnection, FakeTrack } from "./support/room-rtc-fakes.mjs";

const SELF = "pty_00000000000000000000000000000001";
const MEDIATOR = "usr_00000000000000000000000000000002";
const BANK = "usr_00000000000000000000000000000003";

/** A RoomClient stand-in that records what the page sends and answers as the server does. */
class FakeClient extends Emitter {
  constructor() {
    super();
    this.sent = [];
    this.self = null;
    this.joined = false;
    this.holdPublish = null;
  }

  async publishMedia(offer) {
    this.sent.push(["publish_media", offer]);
    if (this.holdPublish) await this.holdPublish;
    const sections = offer.sdp.split("\r\n").filter((l) => l.startsWith("m=")).map((l) => `${l}\r\na=recvonly`);
    return { answer: { type: "answer", sdp: `v=0\r\na=fingerprint:sha-256 JA:NU:S0\r\n${sections.join("\r\n")}\r\n` } };
  }

  async answerMedia(answer) {
    this.sent.push(["answer_media", answer]);
    return {};
  }

  async mediaCandidate(target, candidate) {
    this.sent.push(["media_candidate", { target, candidate }]);
    return {};
  }

  async signal() {
    return {};
  }

  async mediaLayout(feeds) {
    this.sent.push(["media_layout", feeds]);
    return {};
  }

  joinAs(status) {
    this.self = { participant_id: SELF, role: "borrower", name: "b", status, mode: "video", media: "sfu",
      room: roomState(status) };
    this.joined = true;
    this.emit("joined", this.self);
  }

  sentOf(name) {
    return this.sent.filter(([event]) => event === name).map(([, body]) => body);
  }
}

function roomState(status, extra = {}) {
  return {
    mode: "video",
    participants: [
      { participant_id: SELF, role: "borrower", name: "b", status },
      { participant_id: MEDIATOR, role: "mediator", name: "m", status: "admitted" },
      { participant_id: BANK, role: "bank_representative", name: "k", status: "admitted" },
    ],
    ...extra,
  };
}

/** A subscription offer as Janus makes it: audio and video per publisher, in order. */
function mediaOffer(owners) {
  const lines = ["v=0", "a=fingerprint:sha-256 JA:NU:S1"];
  const streams = [];
  owners.forEach((participantId, index) => {
    for (const [offset, kind] of [[0, "audio"], [1, "video"]]) {
      lines.push(`m=${kind} 9 UDP/TLS/RTP/SAVPF 96`, participantId ? "a=sendonly" : "a=inactive");
      if (participantId) streams.push({ mid: String(index * 2 + offset), kind, participant_id: participantId });
    }
  });
  return { offer: { type: "offer", sdp: `${lines.join("\r\n")}\r\n` }, streams };
}

const settle = (ms = 20) => new Promise((resolve) => setTimeout(resolve, ms));

let made = [];
beforeEach(() => FakeRTCPeerConnection.reset());
afterEach(() => {
  for (const sfu of made) sfu.stop();
  made = [];
});

function sfuFor(client, stream = new FakeMediaStream([new FakeTrack("audio"), new FakeTrack("video")])) {
  const sfu = new Sfu({ client, RTCPeerConnection: FakeRTCPeerConnection, localStream: stream,
    MediaStream: FakeMediaStream, retryMs: 10 });
  made.push(sfu);
  const events = [];
  for (const name of ["remote_stream", "remote_stream_removed", "error"]) sfu.on(name, (body) => events.push([name, body]));
  return { sfu, events };
}

test("an admitted member publishes once, sending its camera and microphone on one up connection", async () => {
  const client = new FakeClient();
  const { sfu } = sfuFor(client);
  client.joinAs("admitted");
  await settle();
  assert.equal(client.sentOf("publish_media").length, 1);
  assert.equal(FakeRTCPeerConnection.instances.length, 1);
  const up = sfu.up;
  const senders = up.getTransceivers().map((t) => [t.direction, t.sender.track && t.sender.track.kind]);
  assert.deepEqual(senders, [["sendonly", "audio"], ["sendonly", "video"]]);
  assert.equal(sfu.published, true);
});

test("the up connection's candidates wait for publish_media's ack, then go with target publish", async () => {
  const client = new FakeClient();
  let release;
  client.holdPublish = new Promise((resolve) => {
    release = resolve;
  });
  sfuFor(client);
  client.joinAs("admitted");
  await settle(30);
  assert.deepEqual(client.sentOf("media_candidate"), [], "nothing before the server has the publisher");
  release();
  await settle();
  const candidates = client.sentOf("media_candidate");
  assert.ok(candidates.length > 0);
  assert.ok(candidates.every((c) => c.target === "publish"));
});

test("a lobby member publishes nothing; admission starts it, return to the lobby closes both connections", async () => {
  const client = new FakeClient();
  const { sfu } = sfuFor(client);
  client.joinAs("lobby");
  await settle();
  assert.equal(client.sentOf("publish_media").length, 0);
  client.emit("admitted", {});
  await settle();
  assert.equal(client.sentOf("publish_media").length, 1);
  client.emit("media_offer", mediaOffer([MEDIATOR]));
  await settle();
  assert.ok(sfu.down);
  client.emit("returned_to_lobby", {});
  await settle();
  assert.equal(sfu.up, null);
  assert.equal(sfu.down, null);
  assert.equal(sfu.remoteStream(MEDIATOR), null);
});

test("media_offer: answered, each participant's tracks shown as one stream; a feed dropped is removed", async () => {
  const client = new FakeClient();
  const { sfu, events } = sfuFor(client);
  client.joinAs("admitted");
  await settle();
  client.emit("media_offer", mediaOffer([MEDIATOR, BANK]));
  await settle();
  assert.equal(client.sentOf("answer_media").length, 1);
  assert.equal(client.sentOf("answer_media")[0].type, "answer");
  assert.equal(sfu.remoteStream(MEDIATOR).getTracks().length, 2);
  assert.equal(sfu.remoteStream(BANK).getTracks().length, 2);
  assert.deepEqual(new Set(events.filter(([n]) => n === "remote_stream").map(([, b]) => b.participantId)),
    new Set([MEDIATOR, BANK]));

  // A caucus: the server unsubscribed us from the bank; its m-lines go inactive.
  client.emit("media_offer", mediaOffer([MEDIATOR, null]));
  await settle();
  assert.equal(client.sentOf("answer_media").length, 2);
  assert.equal(sfu.remoteStream(BANK), null);
  assert.ok(events.some(([n, b]) => n === "remote_stream_removed" && b.participantId === BANK));
  assert.ok(sfu.remoteStream(MEDIATOR));
  assert.equal(FakeRTCPeerConnection.instances.length, 2, "one connection up, one down, whatever the changes");
});

test("media_reset: both connections close and the member publishes again", async () => {
  const client = new FakeClient();
  const { sfu } = sfuFor(client);
  client.joinAs("admitted");
  await settle();
  client.emit("media_offer", mediaOffer([MEDIATOR]));
  await settle();
  const firstUp = sfu.up;
  client.emit("media_reset", { reason: "sfu_lost" });
  await settle(40);
  assert.equal(client.sentOf("publish_media").length, 2);
  assert.notEqual(sfu.up, firstUp);
  assert.equal(firstUp.closed, true);
  assert.equal(sfu.down, null, "the next media_offer opens a new down connection");
});

test("a refused publication is tried again after retryMs", async () => {
  const client = new FakeClient();
  let refusals = 1;
  const publish = client.publishMedia.bind(client);
  client.publishMedia = async (offer) => {
    if (refusals > 0) {
      refusals -= 1;
      client.sent.push(["publish_media", offer]);
      throw Object.assign(new Error("the media server did not take your media"), { code: "sfu_unavailable" });
    }
    return publish(offer);
  };
  const { sfu, events } = sfuFor(client);
  client.joinAs("admitted");
  await settle(60);
  assert.equal(client.sentOf("publish_media").length, 2);
  assert.equal(sfu.published, true);
  assert.equal(events.filter(([n]) => n === "error").length, 1);
});

test("streamOwners keeps well-formed entries only", () => {
  const owners = streamOwners([
    { mid: "0", kind: "audio", participant_id: MEDIATOR },
    { mid: "1", kind: "data", participant_id: MEDIATOR },
    { mid: 2, kind: "video", participant_id: MEDIATOR },
    null,
    { mid: "3", kind: "video", participant_id: BANK },
  ]);
  assert.deepEqual([...owners], [["0", { participantId: MEDIATOR, kind: "audio" }], ["3", { participantId: BANK, kind: "video" }]]);
  assert.equal(streamOwners("nope").size, 0);
});

test("the camera goes up in three simulcast layers, highest first; the microphone in one", async () => {
  const client = new FakeClient();
  const { sfu } = sfuFor(client);
  client.joinAs("admitted");
  await settle();
  const [audio, video] = sfu.up.getTransceivers();
  assert.equal(audio.sendEncodings, null);
  assert.deepEqual(video.sendEncodings.map((e) => [e.rid, e.scaleResolutionDownBy || 1]), [["h", 1], ["m", 2], ["l", 4]]);
});

test("tile sizes go to the server once published, again only when they change, and after a new publication", async () => {
  const client = new FakeClient();
  let release;
  client.holdPublish = new Promise((resolve) => {
    release = resolve;
  });
  const { sfu } = sfuFor(client);
  client.joinAs("admitted");
  const small = [{ participant_id: MEDIATOR, width: 300, height: 169 }, { participant_id: BANK, width: 300, height: 169 }];
  sfu.setLayout(small);
  await settle();
  assert.deepEqual(client.sentOf("media_layout"), [], "nothing before the server has our media");
  release();
  await settle();
  assert.deepEqual(client.sentOf("media_layout"), [small]);
  sfu.setLayout([...small].reverse());
  await settle();
  assert.equal(client.sentOf("media_layout").length, 1, "the same tiles in another order are no change");
  const large = [{ participant_id: MEDIATOR, width: 1280, height: 720 }, small[1]];
  sfu.setLayout(large);
  await settle();
  assert.deepEqual(client.sentOf("media_layout"), [small, large]);
  client.emit("media_reset", { reason: "sfu_lost" });
  await settle(50);
  assert.equal(client.sentOf("publish_media").length, 2);
  assert.deepEqual(client.sentOf("media_layout"), [small, large, large], "a new publication starts without a layout");
});

test("layoutFeeds keeps the protocol's bounds: integers 0-8192, each participant once, at most 16", () => {
  const feeds = layoutFeeds([
    { participant_id: BANK, width: 99999, height: -3 },
    { participant_id: BANK, width: 1, height: 1 },
    { participant_id: MEDIATOR, width: 320.6, height: Number.NaN },
    { participant_id: 7, width: 1, height: 1 },
    null,
  ]);
  assert.deepEqual(feeds, [
    { participant_id: MEDIATOR, width: 321, height: 0 },
    { participant_id: BANK, width: 8192, height: 0 },
  ]);
  const many = Array.from({ length: 20 }, (_, i) => ({ participant_id: `pty_${String(i).padStart(32, "0")}`, width: 1, height: 1 }));
  assert.equal(layoutFeeds(many).length, 16);
  assert.deepEqual(layoutFeeds("nope"), []);
});

test("with a protection, every sender up and every receiver down is protected", async () => {
  const client = new FakeClient();
  const senders = new Set();
  const receivers = new Set();
  const protection = { protectSender: (s) => senders.add(s), protectReceiver: (r) => receivers.add(r) };
  const sfu = new Sfu({ client, RTCPeerConnection: FakeRTCPeerConnection, MediaStream: FakeMediaStream, retryMs: 10,
    localStream: new FakeMediaStream([new FakeTrack("audio"), new FakeTrack("video")]), protection });
  made.push(sfu);
  client.joinAs("admitted");
  await settle();
  client.emit("media_offer", mediaOffer([MEDIATOR, BANK]));
  await settle();
  const up = sfu.up.getTransceivers();
  const down = sfu.down.getTransceivers();
  assert.equal(up.length, 2);
  assert.equal(down.length, 4);
  assert.ok(up.every((t) => senders.has(t.sender)), "every sender up");
  assert.ok(down.every((t) => receivers.has(t.receiver)), "every receiver down");
});

test("a recording adds no connection: the recorder gets nothing from the page, Janus forwards to it", async () => {
  const RECORDER = "rcd_00000000000000000000000000000004";
  const client = new FakeClient();
  const { sfu } = sfuFor(client);
  client.joinAs("admitted");
  await settle();
  const recorder = { participant_id: RECORDER, role: "recorder", name: "Recorder", status: "admitted", connected: true };
  const recording = roomState("admitted", { recording: true });
  recording.participants.push(recorder);
  client.emit("room_state", recording);
  client.emit("recording_started", {});
  client.emit("media_offer", mediaOffer([MEDIATOR, BANK]));
  await settle(50);
  await sfu.setLocalStream(new FakeMediaStream([new FakeTrack("audio"), new FakeTrack("video")]));
  await settle(30);
  assert.equal(FakeRTCPeerConnection.instances.length, 2, "the up and the down connection, nothing else");
  assert.deepEqual(client.sentOf("signal"), []);
  assert.equal(client.sentOf("publish_media").length, 1);
});
