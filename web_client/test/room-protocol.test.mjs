import { test } from "node:test";
import assert from "node:assert/strict";
import { io as realIo } from "socket.io-client";

import {
  NOTICES,
  PARTY_ROLES,
  ProtocolError,
  REQUESTS,
  RoomClient,
  connectErrorInfo,
  missingConsents,
  pickNotice,
} from "../src/lib/room/protocol.js";
import { fakeIo, settle, sleep } from "./support/room-socket-fakes.mjs";

/** A client over a fake socket whose server acks every request with `answer(event, payload)`. */
async function connected({ answer = () => ({ ok: true }), withTimeoutApi = false, ...options } = {}) {
  const io = fakeIo({
    withTimeoutApi,
    onEmit: (event, payload, ack) => {
      const body = answer(event, payload);
      if (body !== undefined && ack) setImmediate(() => ack(body));
    },
  });
  const client = new RoomClient({ io, ackTimeoutMs: 200, ...options });
  const done = client.connect({ token: "jln_abcdefghijklmnop" });
  io.last().serverConnect();
  await done;
  return { client, socket: io.last(), io };
}

const JOIN_RESULT = {
  ok: true,
  participant_id: "pty_borrower",
  role: "borrower",
  name: "Li Hua",
  status: "lobby",
  mode: "video",
  ice_servers: [{ urls: "stun:stun.example.org" }],
  room: { session_id: "ses_1", mode: "video", participants: [] },
};

test("connect opens /room on /socket.io/ with the link token as auth", async () => {
  const io = fakeIo();
  const client = new RoomClient({ io });
  const done = client.connect({ token: "jln_abcdefghijklmnop" });
  assert.equal(io.calls.length, 1);
  const { url, options } = io.calls[0];
  assert.equal(url, "/room");
  assert.equal(options.path, "/socket.io/");
  assert.deepEqual(options.auth, { token: "jln_abcdefghijklmnop" });
  assert.equal(options.reconnection, true);
  io.last().serverConnect();
  await done;
  assert.equal(client.connected, true);
});

test("staff connect with only session_id (the cookie authenticates)", async () => {
  const io = fakeIo();
  const client = new RoomClient({ io });
  const done = client.connect({ sessionId: "ses_0123456789abcdef0123456789abcdef" });
  assert.deepEqual(io.calls[0].options.auth, { session_id: "ses_0123456789abcdef0123456789abcdef" });
  io.last().serverConnect();
  await done;
});

test("a refused connection rejects with the code from connect_error data and terminates", async () => {
  const io = fakeIo();
  const client = new RoomClient({ io });
  const events = [];
  client.on("connect_error", (info) => events.push(["connect_error", info]));
  client.on("terminated", (info) => events.push(["terminated", info]));
  const done = client.connect({ token: "jln_expiredexpired" });
  const err = Object.assign(new Error("refused"), { data: { code: "bad_token", message: "expired" } });
  io.last().connectError(err);
  await assert.rejects(done, (e) => e instanceof ProtocolError && e.code === "bad_token" && e.message === "expired");
  assert.deepEqual(events[0], ["connect_error", { code: "bad_token", message: "expired", refused: true }]);
  assert.deepEqual(events[1], ["terminated", { reason: "bad_token" }]);
  assert.equal(client.terminated, "bad_token");
});

test("room_locked and rate_limited refusals can be retried (not terminal)", async () => {
  for (const code of ["room_locked", "rate_limited"]) {
    const io = fakeIo();
    const client = new RoomClient({ io });
    const done = client.connect({ token: "jln_abcdefghijklmnop" });
    io.last().connectError(Object.assign(new Error(code), { data: { code, message: code } }));
    await assert.rejects(done, { code });
    assert.equal(client.terminated, null);
    const again = client.reconnect();
    assert.equal(io.last().connectCalls, 1);
    io.last().serverConnect();
    await again;
  }
});

test("connect_error codes are read from data, or from a bare message", () => {
  assert.deepEqual(connectErrorInfo(Object.assign(new Error("x"), { data: { code: "removed", message: "m" } })), {
    code: "removed",
    message: "m",
    refused: true,
  });
  assert.equal(connectErrorInfo(new Error("session_ended")).code, "session_ended");
  assert.deepEqual(connectErrorInfo(new Error("xhr poll error")), {
    code: "connect_failed",
    message: "xhr poll error",
    refused: false,
  });
});

test("a refusal without a documented code is still a refusal when socket.io gave up (socket inactive)", async () => {
  const io = fakeIo();
  const client = new RoomClient({ io });
  const done = client.connect({ token: "jln_abcdefghijklmnop" });
  const socket = io.last();
  socket.active = false; // socket.io destroys the socket on CONNECT_ERROR
  socket.connectError(new Error("Connection refused by server"));
  await assert.rejects(done, { code: "connect_refused" });
  assert.equal(client.terminated, null, "may be retried");
});

test("a transport failure does not reject connect; socket.io keeps retrying", async () => {
  const io = fakeIo();
  const client = new RoomClient({ io });
  const seen = [];
  client.on("connect_error", (info) => seen.push(info.code));
  client.on("reconnecting", ({ attempt }) => seen.push(`attempt ${attempt}`));
  let settled = false;
  const done = client.connect({ token: "jln_abcdefghijklmnop" }).then(() => {
    settled = true;
  });
  io.last().connectError(new Error("websocket error"));
  io.last().reconnectAttempt(1);
  await settle(3);
  assert.equal(settled, false);
  io.last().serverConnect();
  await done;
  assert.deepEqual(seen, ["connect_failed", "attempt 1"]);
});

// A possession proof as src/lib/possession.js makes it (docs/protocol.md, "Possession proofs").
const PROOF = { challenge_id: `chl_${"0".repeat(32)}`, signature: "A".repeat(86) };

const REQUEST_CASES = [
  ["joinRoom", [], "join_room", {}],
  ["leaveRoom", [], "leave_room", {}],
  ["admit", ["pty_a"], "admit", { participant_id: "pty_a" }],
  ["refuse", ["pty_a"], "refuse", { participant_id: "pty_a" }],
  ["refuse", ["pty_a", "wrong case"], "refuse", { participant_id: "pty_a", reason: "wrong case" }],
  ["returnToLobby", ["pty_a"], "return_to_lobby", { participant_id: "pty_a" }],
  ["sendChat", ["hello"], "send_chat", { text: "hello" }],
  ["admitDevice", ["pty_a"], "admit_device", { participant_id: "pty_a" }],
  ["refuseDevice", ["pty_a", "not you"], "refuse_device", { participant_id: "pty_a", reason: "not you" }],
  ["chatHistory", [], "chat_history", {}],
  ["typing", [true], "typing", { active: true }],
  ["mediaState", [{ audio: true, video: false }], "media_state", { audio: true, video: false }],
  ["signal", ["usr_b", "offer", { type: "offer", sdp: "v=0" }], "signal", { to: "usr_b", kind: "offer", payload: { type: "offer", sdp: "v=0" } }],
  ["publishMedia", [{ type: "offer", sdp: "v=0" }], "publish_media", { offer: { type: "offer", sdp: "v=0" } }],
  ["answerMedia", [{ type: "answer", sdp: "v=0" }], "answer_media", { answer: { type: "answer", sdp: "v=0" } }],
  ["mediaCandidate", ["subscribe", { candidate: null }], "media_candidate", { target: "subscribe", candidate: { candidate: null } }],
  ["mediaLayout", [[{ participant_id: "pty_a", width: 640, height: 360 }]], "media_layout", { feeds: [{ participant_id: "pty_a", width: 640, height: 360 }] }],
  ["muteChat", ["pty_a", true], "mute_chat", { participant_id: "pty_a", muted: true }],
  ["requestMuteMedia", ["pty_a", { audio: true }], "request_mute_media", { participant_id: "pty_a", audio: true, video: false }],
  ["removeParticipant", ["pty_a"], "remove_participant", { participant_id: "pty_a" }],
  ["removeParticipant", ["pty_a", "abusive"], "remove_participant", { participant_id: "pty_a", reason: "abusive" }],
  ["lockRoom", [true], "lock_room", { locked: true }],
  ["endSession", [], "end_session", {}],
  ["deleteMessage", [7], "delete_message", { seq: 7 }],
  ["openCaucus", ["pty_a"], "open_caucus", { participant_id: "pty_a" }],
  ["closeCaucus", [], "close_caucus", {}],
  ["startScreenShare", ["s-1"], "start_screen_share", { stream_id: "s-1" }],
  ["stopScreenShare", [], "stop_screen_share", {}],
  ["stopScreenShare", ["pty_a"], "stop_screen_share", { participant_id: "pty_a" }],
  ["raiseHand", [true], "raise_hand", { raised: true }],
  ["lowerHand", ["pty_a"], "lower_hand", { participant_id: "pty_a" }],
  ["giveConsent", ["ab".repeat(32), PROOF], "give_consent", { notice_sha256: "ab".repeat(32), proof: PROOF }],
  ["withdrawConsent", [PROOF], "withdraw_consent", { proof: PROOF }],
  ["startRecording", [], "start_recording", {}],
  ["stopRecording", [], "stop_recording", {}],
];

test("every client request of the protocol has a method sending the documented payload", async () => {
  const covered = new Set(REQUEST_CASES.map(([method]) => method));
  assert.deepEqual([...covered].sort(), Object.keys(REQUESTS).sort());
  for (const [method, args, event, payload] of REQUEST_CASES) {
    const { client, socket } = await connected({
      answer: (ev) => (ev === "join_room" ? JOIN_RESULT : { ok: true }),
    });
    await client[method](...args);
    const last = socket.emitted[socket.emitted.length - 1];
    assert.deepEqual(last, { event, payload }, method);
    assert.equal(REQUESTS[method], event);
  }
});

test("an ok ack resolves with the result without `ok`", async () => {
  const { client } = await connected({
    answer: (event) => (event === "send_chat" ? { ok: true, seq: 3, sent_at: "2025-01-01T10:00:00Z" } : { ok: true }),
  });
  assert.deepEqual(await client.sendChat("hi"), { seq: 3, sent_at: "2025-01-01T10:00:00Z" });
  assert.deepEqual(await client.admit("pty_a"), {});
});

test("an error ack rejects with a ProtocolError carrying code, message and event", async () => {
  const { client } = await connected({
    answer: () => ({ ok: false, error: "chat_muted", message: "the mediator muted you" }),
  });
  await assert.rejects(client.sendChat("hi"), (err) => {
    assert.ok(err instanceof ProtocolError);
    assert.ok(err instanceof Error);
    assert.equal(err.code, "chat_muted");
    assert.equal(err.message, "the mediator muted you");
    assert.equal(err.event, "send_chat");
    return true;
  });
});

test("a malformed ack rejects with bad_ack", async () => {
  const { client } = await connected({ answer: () => "yes" });
  await assert.rejects(client.lockRoom(true), { code: "bad_ack" });
});

test("no ack within the timeout rejects with code timeout (own timer and socket.timeout())", async () => {
  for (const withTimeoutApi of [false, true]) {
    const { client } = await connected({ answer: () => undefined, withTimeoutApi, ackTimeoutMs: 30 });
    const started = Date.now();
    await assert.rejects(client.endSession(), { code: "timeout", event: "end_session" });
    assert.ok(Date.now() - started >= 25);
  }
});

test("socket.timeout() is used when the socket offers it", async () => {
  const { client } = await connected({ withTimeoutApi: true, answer: () => ({ ok: true, messages: [] }) });
  assert.deepEqual(await client.chatHistory(), { messages: [] });
});

test("requests while disconnected reject at once with `disconnected` and are not buffered", async () => {
  const { client, socket } = await connected();
  socket.serverDisconnect("transport close");
  const before = socket.emitted.length;
  await assert.rejects(client.sendChat("lost?"), { code: "disconnected" });
  assert.equal(socket.emitted.length, before);
});

test("join_room result is kept, `joined` emitted; server notices are re-emitted by name", async () => {
  const { client, socket } = await connected({ answer: () => JOIN_RESULT });
  const joined = [];
  client.on("joined", (result, info) => joined.push([result, info]));
  const result = await client.joinRoom();
  assert.equal(result.participant_id, "pty_borrower");
  assert.equal(result.ok, undefined);
  assert.equal(client.self.participant_id, "pty_borrower");
  assert.equal(client.joined, true);
  assert.deepEqual(joined[0][1], { rejoin: false });

  const seen = [];
  for (const name of NOTICES) client.on(name, (body) => seen.push([name, body]));
  for (const name of NOTICES) socket.serverEmit(name, { marker: name });
  assert.deepEqual(seen.map(([name]) => name), [...NOTICES]);
  assert.deepEqual(seen[0][1], { marker: "room_state" });
  assert.deepEqual(client.room, { marker: "room_state" });
});

test("the `error` notice is an ordinary event (no throw without a listener)", async () => {
  const { socket } = await connected();
  socket.serverEmit("error", { code: "not_joined", message: "join first", event: "send_chat" });
});

test("after a dropped connection the client re-sends join_room on reconnect, before anything else", async () => {
  let joinAnswer = null;
  const { client, socket } = await connected({
    answer: (event) => {
      if (event === "join_room") {
        if (joinAnswer) return undefined; // held below
        return JOIN_RESULT;
      }
      return { ok: true, seq: 9, sent_at: "t" };
    },
  });
  await client.joinRoom();
  const events = [];
  client.on("disconnected", (info) => events.push(["disconnected", info]));
  client.on("rejoined", (r) => events.push(["rejoined", r.participant_id]));

  socket.serverDisconnect("ping timeout");
  assert.deepEqual(events[0], ["disconnected", { reason: "ping timeout", willReconnect: true }]);
  assert.equal(client.joined, false);

  // Hold the join ack, reconnect, and send a chat message meanwhile: it must wait for the join.
  joinAnswer = true;
  const originalOnEmit = socket.onEmit;
  let releaseJoin;
  socket.onEmit = (event, payload, ack) => {
    if (event === "join_room") releaseJoin = () => ack(JOIN_RESULT);
    else originalOnEmit(event, payload, ack);
  };
  socket.serverConnect();
  const chat = client.sendChat("after reconnect");
  await settle(2);
  const order = socket.emitted.slice(-1).map((e) => e.event);
  assert.deepEqual(order, ["join_room"]);
  releaseJoin();
  assert.deepEqual(await chat, { seq: 9, sent_at: "t" });
  const tail = socket.emitted.slice(-2).map((e) => e.event);
  assert.deepEqual(tail, ["join_room", "send_chat"]);
  assert.deepEqual(events[1], ["rejoined", "pty_borrower"]);
  assert.equal(client.joined, true);
});

test("a re-join presents the resume_key the last join gave, so the same device resumes its place", async () => {
  const keys = ["a".repeat(32), "b".repeat(32)];
  const { client, socket } = await connected({
    answer: (event) => (event === "join_room" ? { ...JOIN_RESULT, resume_key: keys.shift() } : { ok: true }),
  });
  await client.joinRoom();
  assert.deepEqual(socket.emitted[socket.emitted.length - 1], { event: "join_room", payload: {} });
  socket.serverDisconnect("transport close");
  socket.serverConnect();
  await settle(2);
  assert.deepEqual(socket.emitted[socket.emitted.length - 1], { event: "join_room", payload: { resume: "a".repeat(32) } });
  await client.joinRoom();
  assert.deepEqual(socket.emitted[socket.emitted.length - 1], { event: "join_room", payload: { resume: "b".repeat(32) } });
});

test("removed / refused / session_ended terminate: no re-join, the disconnect is final", async () => {
  for (const notice of ["removed", "refused", "session_ended"]) {
    const { client, socket } = await connected({ answer: () => JOIN_RESULT });
    await client.joinRoom();
    const seen = [];
    client.on("terminated", (info) => seen.push(["terminated", info.reason]));
    client.on("disconnected", (info) => seen.push(["disconnected", info.willReconnect]));
    socket.serverEmit(notice, { reason: "because" });
    socket.serverDisconnect("io server disconnect");
    assert.deepEqual(seen, [["terminated", notice], ["disconnected", false]]);
    const joins = socket.sent("join_room").length;
    socket.serverConnect();
    await settle(2);
    assert.equal(socket.sent("join_room").length, joins, `${notice}: no automatic re-join`);
  }
});

test("a failed automatic re-join is reported", async () => {
  let refuse = false;
  const { client, socket } = await connected({
    answer: (event) =>
      event === "join_room" && refuse ? { ok: false, error: "session_ended", message: "over" } : JOIN_RESULT,
  });
  await client.joinRoom();
  const failures = [];
  client.on("rejoin_failed", (err) => failures.push(err.code));
  socket.serverDisconnect("transport close");
  refuse = true;
  socket.serverConnect();
  await settle(3);
  assert.deepEqual(failures, ["session_ended"]);
  assert.equal(client.terminated, "session_ended");
});

test("an `error` notice with code `replaced` (joined from another window) terminates", async () => {
  const { client, socket } = await connected({ answer: () => JOIN_RESULT });
  await client.joinRoom();
  socket.serverEmit("error", { code: "replaced", message: "you joined from another window", event: "join_room" });
  socket.serverDisconnect("io server disconnect");
  assert.equal(client.terminated, "replaced");
  socket.serverConnect();
  await settle(2);
  assert.equal(socket.sent("join_room").length, 1, "no automatic re-join");
});

test("leave_room ends the participation (no re-join afterwards)", async () => {
  const { client, socket } = await connected({ answer: () => JOIN_RESULT });
  await client.joinRoom();
  await client.leaveRoom();
  assert.equal(client.terminated, "left");
  socket.serverDisconnect("io server disconnect");
  socket.serverConnect();
  await settle(2);
  assert.equal(socket.sent("join_room").length, 1);
});

test("a listener that throws does not break other listeners", async () => {
  const { client, socket } = await connected();
  const seen = [];
  const original = console.error;
  console.error = () => {};
  try {
    client.on("typing", () => {
      throw new Error("boom");
    });
    client.on("typing", (body) => seen.push(body.participant_id));
    socket.serverEmit("typing", { participant_id: "pty_a", active: true });
  } finally {
    console.error = original;
  }
  assert.deepEqual(seen, ["pty_a"]);
});

test("works with the npm socket.io-client `io` (unreachable server: connect_failed, then `disconnected`)", async () => {
  const client = new RoomClient({
    io: realIo,
    url: "http://127.0.0.1:9/room",
    ackTimeoutMs: 100,
    ioOptions: { reconnection: false, transports: ["websocket"], timeout: 2000 },
  });
  const failed = new Promise((resolve) => client.once("connect_error", resolve));
  const connecting = client.connect({ token: "jln_abcdefghijklmnop" });
  connecting.catch(() => {});
  const info = await failed;
  assert.equal(info.code, "connect_failed");
  assert.equal(info.refused, false);
  assert.equal(client.socket.auth.token, "jln_abcdefghijklmnop");
  await assert.rejects(client.sendChat("x"), { code: "disconnected" });
  client.disconnect();
  await sleep(10);
});

// --- recording and consent ----------------------------------------------------------------------

const NOTICE_ZH = { language: "zh-CN", text: "本次调解将被录音录像。", sha256: "a".repeat(64) };
const NOTICE_EN = { language: "en", text: "This session will be recorded.", sha256: "b".repeat(64) };

test("pickNotice: the page's language, else zh-CN, else the first usable one", () => {
  assert.equal(pickNotice([NOTICE_ZH, NOTICE_EN], "en"), NOTICE_EN);
  assert.equal(pickNotice([NOTICE_ZH, NOTICE_EN], "zh-CN"), NOTICE_ZH);
  assert.equal(pickNotice([NOTICE_EN, NOTICE_ZH], "fr"), NOTICE_ZH);
  assert.equal(pickNotice([NOTICE_EN], "zh-CN"), NOTICE_EN);
  // Unusable entries (no text, no proper hash) are never shown: consent must name a real notice.
  assert.equal(pickNotice([{ ...NOTICE_EN, sha256: "nothex" }, { ...NOTICE_ZH, text: "  " }], "en"), null);
  assert.equal(pickNotice(undefined, "en"), null);
  assert.equal(pickNotice("text", "en"), null);
});

test("missingConsents: admitted borrower, lender and bank representative without consent", () => {
  assert.deepEqual([...PARTY_ROLES].sort(), ["bank_representative", "borrower", "lender"]);
  const room = {
    participants: [
      { participant_id: "usr_m", role: "mediator", status: "admitted", consented: false },
      { participant_id: "pty_b", role: "borrower", status: "admitted", consented: false },
      { participant_id: "pty_l", role: "lender", status: "lobby", consented: false },
      { participant_id: "usr_k", role: "bank_representative", status: "admitted", consented: true },
      { participant_id: "rcd_r", role: "recorder", status: "admitted", consented: false },
    ],
  };
  assert.deepEqual(missingConsents(room).map((p) => p.participant_id), ["pty_b"]);
  assert.deepEqual(missingConsents(null), []);
  assert.deepEqual(missingConsents({ participants: "x" }), []);
});

test("consent and recording requests, and the recording notices, go by their protocol names", async () => {
  const seen = [];
  const { client, socket } = await connected({
    answer: (event, payload) => {
      seen.push([event, payload]);
      if (event === "start_recording") return { ok: false, error: "consent_missing", message: "waiting for consent from Li Wei" };
      return { ok: true };
    },
  });
  await client.giveConsent(NOTICE_ZH.sha256, PROOF);
  await client.withdrawConsent(PROOF);
  await assert.rejects(client.startRecording(), (err) => err.code === "consent_missing" && err.event === "start_recording");
  await client.stopRecording();
  assert.deepEqual(seen, [
    ["give_consent", { notice_sha256: NOTICE_ZH.sha256, proof: PROOF }],
    ["withdraw_consent", { proof: PROOF }],
    ["start_recording", {}],
    ["stop_recording", {}],
  ]);
  const got = [];
  client.on("recording_started", (body) => got.push(["started", body]));
  client.on("recording_stopped", (body) => got.push(["stopped", body]));
  socket.serverEmit("recording_started", {});
  socket.serverEmit("recording_stopped", { reason: "recorder_lost" });
  assert.deepEqual(got, [["started", {}], ["stopped", { reason: "recorder_lost" }]]);
});
