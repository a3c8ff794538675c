// The API client: JSON in and out, errors as ApiError with the API's code, field and the state a 409 names.
import { test } from "node:test";
import assert from "node:assert/strict";

import { ApiError, createApi, query } from "../src/lib/api.js";
import { createComplianceApi } from "../src/lib/compliance/api.js";

function fakeFetch(status, body, headers = {}) {
  const calls = [];
  const fetchImpl = async (url, init) => {
    calls.push({ url, init });
    const text = body === undefined ? "" : typeof body === "string" ? body : JSON.stringify(body);
    return new Response(status === 204 ? null : text, { status, headers: { "Content-Type": "application/json", ...headers } });
  };
  return { fetchImpl, calls };
}

test("a call sends JSON with the bearer token and returns the parsed answer", async () => {
  const { fetchImpl, calls } = fakeFetch(201, { case_id: "cas_1" });
  const api = createApi({ token: "rcp_x", fetchImpl });
  assert.deepEqual(await api.post("/api/applications", { a: 1 }), { case_id: "cas_1" });
  assert.equal(calls[0].url, "/api/applications");
  assert.equal(calls[0].init.method, "POST");
  assert.equal(calls[0].init.headers.Authorization, "Bearer rcp_x");
  assert.equal(calls[0].init.headers["Content-Type"], "application/json");
  assert.equal(calls[0].init.body, '{"a":1}');
  assert.equal(calls[0].init.credentials, "same-origin");
});

test("staff calls carry no Authorization header (the session cookie goes by itself)", async () => {
  const { fetchImpl, calls } = fakeFetch(200, { ok: true });
  await createApi({ fetchImpl }).get("/api/auth/me");
  assert.equal(calls[0].init.headers.Authorization, undefined);
  assert.equal(calls[0].init.body, undefined);
});

test("a 204 answers null; raw text is returned as is", async () => {
  assert.equal(await createApi(fakeFetch(204)).post("/api/cases/x/feedback", {}), null);
  assert.equal(await createApi(fakeFetch(200, '{"b": 1,  "a": 2}')).get("/x", { raw: true }), '{"b": 1,  "a": 2}');
});

test("a JSON error becomes an ApiError with code, field, status and the state it names", async () => {
  const api = createApi(fakeFetch(422, { error: "invalid_field", message: "borrower.email: bad", field: "borrower.email" }));
  const error = await api.post("/api/applications", {}).catch((e) => e);
  assert.ok(error instanceof ApiError);
  assert.deepEqual([error.code, error.field, error.status, error.message], ["invalid_field", "borrower.email", 422, "borrower.email: bad"]);
  const conflict = await createApi(fakeFetch(409, { error: "illegal_transition",
    message: 'case cas_1 is in state "closed"; cannot close (allowed in: accepted, scheduled)', state: "closed" })).post("/x").catch((e) => e);
  assert.equal(conflict.code, "illegal_transition");
  assert.equal(conflict.state, "closed");
  // The state is the body's field, never read out of the message text.
  const unnamed = await createApi(fakeFetch(409, { error: "illegal_transition", message: 'case is in state "closed"' }))
    .post("/x").catch((e) => e);
  assert.equal(unnamed.state, null);
  const internal = await createApi(fakeFetch(500, { error: "internal", message: "internal error", request_id: "abc123" })).get("/x").catch((e) => e);
  assert.equal(internal.requestId, "abc123");
});

test("no answer, or an answer that is not JSON, still gives a code", async () => {
  const offline = createApi({ fetchImpl: async () => { throw new TypeError("Failed to fetch"); } });
  assert.equal((await offline.get("/x").catch((e) => e)).code, "network");
  const proxy = createApi(fakeFetch(502, "<html>Bad gateway</html>", { "Content-Type": "text/html" }));
  const error = await proxy.get("/x").catch((e) => e);
  assert.deepEqual([error.code, error.status], ["http_502", 502]);
  assert.equal((await createApi(fakeFetch(200, "<html>")).get("/x").catch((e) => e)).code, "bad_response");
});

test("query leaves out empty values", () => {
  assert.equal(query({ state: "", page: 2, per_page: 10, x: null }), "?page=2&per_page=10");
  assert.equal(query({}), "");
});

test("bytes answers are the exact bytes; a failed bytes call is still an ApiError", async () => {
  const fetchImpl = async () => new Response(new Uint8Array([0, 255, 10]), { status: 200 });
  assert.deepEqual(await createApi({ fetchImpl }).get("/x", { answer: "bytes" }), new Uint8Array([0, 255, 10]));
  const error = await createApi(fakeFetch(404, { error: "not_found", message: "no record" })).get("/x", { answer: "bytes" })
    .catch((e) => e);
  assert.ok(error instanceof ApiError);
  assert.deepEqual([error.code, error.status], ["not_found", 404]);
});

test("the compliance calls go through the one client: cookie session, strict UTF-8 manifest, audited downloads", async () => {
  const calls = [];
  const fetchImpl = async (url, init) => {
    calls.push({ url, init });
    if (url.endsWith("/manifest")) return new Response(new Uint8Array([0x7b, 0xff, 0x7d]), { status: 200 });
    if (url.includes("/records/")) return new Response(new Uint8Array([1, 2, 3]), { status: 200 });
    return new Response(JSON.stringify({ cases: [] }), { status: 200, headers: { "Content-Type": "application/json" } });
  };
  const api = createComplianceApi(createApi({ fetchImpl }));
  assert.deepEqual(await api.listCases({ state: "closed", page: 2 }), { cases: [] });
  assert.equal(calls[0].url, "/api/cases?page=2&per_page=20&state=closed");
  assert.equal(calls[0].init.headers.Authorization, undefined);
  assert.deepEqual(await api.download("cas 1", "rec/1"), new Uint8Array([1, 2, 3]));
  assert.equal(calls[1].url, "/api/cases/cas%201/records/rec%2F1");
  assert.equal(calls[1].init.headers.Accept, "application/octet-stream");
  await assert.rejects(api.manifest("cas_1"), TypeError, "a manifest that is not UTF-8 is refused, not repaired");
  await api.registerRecipient("age1xyz");
  assert.equal(calls.at(-1).init.method, "PUT");
  assert.equal(calls.at(-1).init.body, '{"recipient":"age1xyz"}');
});
