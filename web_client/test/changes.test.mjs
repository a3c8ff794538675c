import assert from "node:assert/strict";
import { test } from "node:test";
import { BACKOFF_MS, openChangeFeed, parseEvents } from "../src/lib/changes.js";

test("parseEvents splits events, skips comments, keeps the unfinished rest", () => {
  const { events, rest } = parseEvents('retry: 2000\nevent: ready\ndata: {}\n\n: keepalive\n\nevent: case_changed\r\ndata: {"case_id":"cas_1"}\r\n\r\nevent: resy');
  assert.deepEqual(events, [{ event: "ready", data: {} }, { event: "case_changed", data: { case_id: "cas_1" } }]);
  assert.equal(rest, "event: resy");
});

test("parseEvents drops data that is not a JSON object", () => {
  assert.deepEqual(parseEvents("event: x\ndata: [1]\n\nevent: y\ndata: nope\n\n").events, [{ event: "x", data: {} }]);
});

/** A fetch answering each call in turn: a status, or SSE text then the end of the stream. */
function fakeFetch(answers, calls) {
  return async (url, init) => {
    calls.push({ url, init });
    const answer = answers.shift() ?? { status: 401 };
    if (answer.throws) throw new TypeError("network down");
    const body = answer.text === undefined ? null : new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(answer.text));
        controller.close();
      },
    });
    return new Response(body, { status: answer.status ?? 200 });
  };
}

test("the feed reconnects with a growing delay, refetching at each ready, and stops on a 401", async () => {
  const calls = [];
  const slept = [];
  const events = [];
  const states = [];
  const done = new Promise((resolve) => {
    openChangeFeed({
      token: "rcp_x",
      fetchImpl: fakeFetch([{ throws: true }, { status: 503 }, { text: 'event: ready\ndata: {}\n\nevent: case_changed\ndata: {"case_id":"cas_1"}\n\n' },
        { throws: true }, { status: 401 }], calls),
      sleep: async (ms) => { slept.push(ms); },
      onEvent: (event) => events.push(event.event),
      onState: (state) => { states.push(state); if (state === "offline") resolve(); },
    });
  });
  await done;
  assert.equal(calls.length, 5);
  assert.equal(calls[0].init.headers.Authorization, "Bearer rcp_x");
  assert.ok(!calls[0].url.includes("rcp_x"), "the token never goes in the URL");
  assert.deepEqual(events, ["ready", "case_changed"]);
  // Two failures (1 s, 2 s), then a stream that opened starts over (1 s), then 2 s.
  assert.deepEqual(slept, [BACKOFF_MS[0], BACKOFF_MS[1], BACKOFF_MS[0], BACKOFF_MS[1]]);
  assert.deepEqual(states, ["connecting", "reconnecting", "live", "reconnecting", "offline"]);
});

test("access_revoked ends the feed: no more attempts", async () => {
  const calls = [];
  const events = [];
  await new Promise((resolve) => {
    openChangeFeed({
      fetchImpl: fakeFetch([{ text: 'event: ready\ndata: {}\n\nevent: access_revoked\ndata: {"code":"bad_token","message":"gone"}\n\n' }], calls),
      sleep: async () => {},
      onEvent: (event) => events.push(event.event),
      onState: (state) => { if (state === "offline") resolve(); },
    });
  });
  assert.equal(calls.length, 1);
  assert.deepEqual(events, ["ready", "access_revoked"]);
});
