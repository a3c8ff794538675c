// The checkpoint message and its Ed25519 signature, against what recording/records/checkpoint.py signs and checks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { hexToBytes } from "../src/lib/compliance/bytes.js";
import { CheckpointVerifier, checkpointMessage, importAuditKey, pythonIsoformat } from "../src/lib/compliance/checkpoint.js";

const fixture = JSON.parse(readFileSync(new URL("./fixtures/compliance-checkpoint.json", import.meta.url), "utf8"));
const decode = (bytes) => new TextDecoder().decode(bytes);

test("checkpoint message renders signed_at exactly as Python's isoformat, or refuses it as Python does", () => {
  const root = hexToBytes(fixture.root_hash);
  for (const { signed_at: signedAt, message } of fixture.spellings) {
    if (message === null) {
      assert.throws(() => checkpointMessage(fixture.tree_size, root, signedAt), TypeError, signedAt);
    } else {
      assert.equal(decode(checkpointMessage(fixture.tree_size, root, signedAt)), message, signedAt);
    }
  }
});

test("checkpoint time: Z and +00:00 and a shorter fraction render alike", () => {
  assert.equal(pythonIsoformat("2026-11-28T15:48:59.12Z"), "2026-11-28T15:48:59.120000+00:00");
  assert.equal(pythonIsoformat("2026-11-28T15:48:59.120000+00:00"), "2026-11-28T15:48:59.120000+00:00");
  assert.throws(() => pythonIsoformat(1764344939), TypeError);
});

function checkpoint(overrides = {}) {
  const s = fixture.signed;
  return { treeSize: s.tree_size, rootHash: hexToBytes(s.root_hash), signedAt: s.signed_at, keyId: s.key_id,
    signature: hexToBytes(s.signature), ...overrides };
}

test("checkpoint signed by the audit key verifies, also with its time spelled with Z", async () => {
  const { key, keyId } = await importAuditKey(fixture.signed.public_key_pem);
  assert.equal(keyId, fixture.signed.key_id);
  const verifier = new CheckpointVerifier([[keyId, key]]);
  assert.equal(await verifier.check(checkpoint()), null);
  assert.equal(await verifier.check(checkpoint({ signedAt: fixture.signed.signed_at.replace("+00:00", "Z") })), null);
  assert.deepEqual(verifier.forks, []);
});

test("checkpoint with a changed size, root, time or signature is a bad signature", async () => {
  const { key, keyId } = await importAuditKey(fixture.signed.public_key_pem);
  const verifier = new CheckpointVerifier([[keyId, key]]);
  const signature = hexToBytes(fixture.signed.signature);
  signature[10] ^= 4;
  const root = hexToBytes(fixture.signed.root_hash);
  root[0] ^= 1;
  for (const changed of [{ treeSize: 8 }, { rootHash: root }, { signedAt: "2026-11-28T15:48:59.13+00:00" },
    { signature }]) {
    const problem = await verifier.check(checkpoint(changed));
    assert.equal(problem?.code, "checkpoint_bad_signature", JSON.stringify(Object.keys(changed)));
  }
});

test("checkpoint by an unknown key is untrusted; two signed roots of one size are a fork", async () => {
  const { key, keyId } = await importAuditKey(fixture.signed.public_key_pem);
  const untrusted = new CheckpointVerifier([]);
  assert.equal((await untrusted.check(checkpoint())).code, "checkpoint_untrusted_key");
  const verifier = new CheckpointVerifier([[keyId, key]]);
  await verifier.check(checkpoint());
  // The same size with another root but a valid signature cannot be forged here; the verifier
  // remembers roots only of validly signed checkpoints, so a forged one is a bad signature instead.
  const root = hexToBytes(fixture.signed.root_hash);
  root[5] ^= 1;
  assert.equal((await verifier.check(checkpoint({ rootHash: root }))).code, "checkpoint_bad_signature");
  assert.deepEqual(verifier.forks, []);
});

test("checkpoint key: a PEM that is not an Ed25519 public key is refused", async () => {
  await assert.rejects(importAuditKey("not a pem"), TypeError);
  await assert.rejects(importAuditKey("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), TypeError);
});
