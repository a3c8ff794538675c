// The possession factor on the device: enrolment with a code, a non-extractable key kept in the store,
// silent proofs by signing the server's challenge, and the agreement signed with the same key.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, createPublicKey, randomBytes, verify, webcrypto } from "node:crypto";

import { ApiError, createApi } from "../src/lib/api.js";
import { CODE_ERRORS, memoryKeyStore, Possession, PossessionError } from "../src/lib/possession.js";
import { canonicalJson, sha256Hex, signAgreement } from "../src/lib/signing.js";

const { subtle } = webcrypto;
const CASE = "cas_0123456789abcdef0123456789abcdef";
const SESSION = "ses_0123456789abcdef0123456789abcdef";

/** The possession routes as server/possession.py answers them, over a fetch the API client calls. */
function possessionServer() {
  const server = { code: "48151623", codeId: "pcd_00000000000000000000000000000001", enrolments: [], challenges: new Map(),
    requests: [] };
  const answer = (status, body) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
  server.fetchImpl = async (url, init) => {
    const body = init.body ? JSON.parse(init.body) : undefined;
    server.requests.push({ url, method: init.method, body });
    const path = url.replace(`/api/cases/${CASE}/possession`, "");
    if (path === "" && init.method === "GET") {
      return answer(200, { party_id: "pty_1", role: "borrower", channels: [{ channel: "email", to: "l***@example.cn" }],
        enrolments: server.enrolments });
    }
    if (path === "/codes") return answer(201, { code_id: server.codeId, channel: "email", to: "l***@example.cn", expires_at: "2030-01-01T00:00:00Z" });
    if (path === "/enrolments") {
      if (body.code !== server.code) return answer(422, { error: "code_wrong", message: "wrong code; 4 attempts left" });
      const raw = Buffer.from(body.public_key, "base64url");
      const enrolment = { enrolment_id: `enr_${server.enrolments.length}`, fingerprint: createHash("sha256").update(raw).digest("hex"),
        public_key: body.public_key, channel: "email", enrolled_at: "2030-01-01T00:00:00Z" };
      server.enrolments.push(enrolment);
      return answer(201, enrolment);
    }
    if (path === "/challenges") {
      const challengeId = `chl_${randomBytes(16).toString("hex")}`;
      const toSign = randomBytes(48);
      server.challenges.set(challengeId, { toSign, act: body.act, session: body.session_id });
      return answer(201, { challenge_id: challengeId, to_sign: toSign.toString("base64url"), expires_at: "2030-01-01T00:00:00Z" });
    }
    return answer(404, { error: "not_found", message: path });
  };
  /** Whether `proof` is an enrolled key's signature of the challenge it names, for `act` (and spends it). */
  server.verifies = (proof, act) => {
    const challenge = server.challenges.get(proof.challenge_id);
    server.challenges.delete(proof.challenge_id);
    if (!challenge || challenge.act !== act) return false;
    return server.enrolments.some((e) => verify(null, challenge.toSign,
      createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: e.public_key }, format: "jwk" }),
      Buffer.from(proof.signature, "base64url")));
  };
  return server;
}

function possessionOf(server, store = memoryKeyStore()) {
  return new Possession({ api: createApi({ token: "rcp_x", fetchImpl: server.fetchImpl }), caseId: CASE, store, subtle });
}

test("a device not enrolled is asked to enrol; a wrong code is the server's code_wrong and enrols nothing", async () => {
  const server = possessionServer();
  const possession = possessionOf(server);
  await assert.rejects(possession.proof("confirm_session", SESSION), (e) => e instanceof PossessionError && e.code === "not_enrolled");
  const sent = await possession.requestCode({ purpose: "enrol" });
  assert.deepEqual(server.requests.at(-1).body, { purpose: "enrol" });
  await assert.rejects(possession.enrol(sent.code_id, "1234567"), (e) => e instanceof PossessionError && e.code === "bad_code");
  await assert.rejects(possession.enrol(sent.code_id, "00000000"), (e) => e instanceof ApiError && CODE_ERRORS.includes(e.code));
  assert.equal(server.enrolments.length, 0);
  assert.equal(await possession.enrolledKey(), null);
});

test("enrolment keeps a non-extractable key; later acts are proved silently by signing the challenge", async () => {
  const server = possessionServer();
  const store = memoryKeyStore();
  const possession = possessionOf(server, store);
  const sent = await possession.requestCode({ purpose: "enrol" });
  const enrolment = await possession.enrol(sent.code_id, " 4815 1623 ");
  assert.equal(server.requests.find((r) => r.url.endsWith("/enrolments")).body.code, server.code);
  const pair = await store.get("device:pty_1");
  assert.ok(pair && pair.privateKey.extractable === false, "the private key never leaves WebCrypto");
  await assert.rejects(subtle.exportKey("pkcs8", pair.privateKey));
  assert.equal(enrolment.public_key, Buffer.from(await subtle.exportKey("raw", pair.publicKey)).toString("base64url"));
  // A page opened later (a new Possession over the same store) finds the key and proves without a code.
  const later = possessionOf(server, store);
  const proof = await later.proof("give_consent", SESSION);
  assert.deepEqual(server.requests.at(-1).body, { act: "give_consent", session_id: SESSION });
  assert.ok(server.verifies(proof, "give_consent"));
  assert.ok(!server.verifies(proof, "give_consent"), "a challenge is spent once");
  const other = await later.proof("confirm_session", SESSION);
  assert.ok(!server.verifies(other, "give_consent"), "a proof for one act is not one for another");
});

test("a stored key the server no longer lists is dropped: the next act enrols afresh", async () => {
  const server = possessionServer();
  const store = memoryKeyStore();
  const possession = possessionOf(server, store);
  await possession.enrol((await possession.requestCode({ purpose: "enrol" })).code_id, server.code);
  server.enrolments.length = 0;
  const fresh = possessionOf(server, store);
  assert.equal(await fresh.enrolledKey(), null);
  assert.equal(await store.get("device:pty_1"), null);
});

test("the agreement is signed with the enrolled key: its public key is the enrolment's", async () => {
  const server = possessionServer();
  const possession = possessionOf(server);
  const enrolment = await possession.enrol((await possession.requestCode({ purpose: "enrol" })).code_id, server.code);
  const document = { type: "mediation-repayment-agreement/v1", version: 1, case_id: CASE, terms: "one instalment" };
  const canonical = canonicalJson(document);
  const agreement = { version: 1, document, canonical, sha256: await sha256Hex(canonical, subtle) };
  const pair = await possession.enrolledKey();
  assert.ok(pair);
  const body = await signAgreement(agreement, pair, { subtle });
  assert.equal(body.public_key, enrolment.public_key);
  const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: body.public_key }, format: "jwk" });
  assert.ok(verify(null, Buffer.from(canonical, "utf8"), key, Buffer.from(body.signature, "base64url")));
});
