// Which recipients a room page seals its base keys to, and the sealed key record an officer opens.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Decrypter, generateX25519Identity, identityToRecipient } from "age-encryption";

import { importAuditKey } from "../src/lib/compliance/checkpoint.js";
import { StatementError, statementMessage } from "../src/lib/compliance/statement.js";
import { KEY_RECORD_TYPE, sealingRecipients, sealKeyRecord } from "../src/lib/e2ee/records.js";
import { canonicalJson } from "../src/lib/signing.js";

const OFFICER = "usr_11111111111111111111111111111111";
const APPROVER = "usr_33333333333333333333333333333333";

/** A statement of `recipients` served as the node serves it, signed by a fresh audit key. */
async function served(recipients, signer = null) {
  const pair = signer || await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const spki = Buffer.from(await crypto.subtle.exportKey("spki", pair.publicKey)).toString("base64");
  const pem = `-----BEGIN PUBLIC KEY-----\n${spki}\n-----END PUBLIC KEY-----\n`;
  const statement = canonicalJson({ issued_at: "2026-12-02T00:05:00+00:00", previous_sha256: null, recipients,
    type: "mediation-recipient-statement/v1", version: 3 });
  const signature = Buffer.from(await crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey,
    statementMessage(statement))).toString("hex");
  const { keyId } = await importAuditKey(pem);
  return { version: 3, statement, key_id: keyId, signature, public_key_pem: pem };
}

async function officer(approvedBy = [APPROVER]) {
  const identity = await generateX25519Identity();
  return { identity, entry: { approved_by: approvedBy, kind: "compliance_officer", proposal_id: "rkp_1",
    recipient: await identityToRecipient(identity), user_id: OFFICER, username: "officer.chen" } };
}

const refusedWith = (code) => (error) => error instanceof StatementError && error.code === code;

test("e2ee records: the approved officers of a signed statement are the recipients; escrow is not", async () => {
  const { entry } = await officer();
  const escrow = { kind: "escrow", recipient: (await officer()).entry.recipient };
  const result = await sealingRecipients(await served([entry, escrow]));
  assert.deepEqual(result.recipients, [entry.recipient]);
});

test("e2ee records: an officer approved by nobody, or only by itself, is refused", async () => {
  const { entry } = await officer([]);
  await assert.rejects(sealingRecipients(await served([entry])), refusedWith("recipient_unapproved"));
  const self = (await officer([OFFICER])).entry;
  await assert.rejects(sealingRecipients(await served([self])), refusedWith("recipient_unapproved"));
});

test("e2ee records: a recipient slipped into a signed statement, or a statement by another key, is refused", async () => {
  const { entry } = await officer();
  const honest = await served([entry]);
  const intruder = (await officer()).entry.recipient;
  const forged = { ...honest, statement: honest.statement.replace(entry.recipient, intruder) };
  await assert.rejects(sealingRecipients(forged), refusedWith("statement_bad_signature"));
  const resigned = await served([{ ...entry, recipient: intruder }]);
  await assert.rejects(sealingRecipients(resigned, honest.key_id), refusedWith("statement_untrusted_key"));
  await assert.rejects(sealingRecipients(await served([])), refusedWith("no_recipients"));
});

test("e2ee records: the sealed key record opens with the officer's identity and holds the base key", async () => {
  const { identity, entry } = await officer();
  const baseKey = crypto.getRandomValues(new Uint8Array(32));
  const sealed = await sealKeyRecord({ sessionId: "ses_1", participantId: "pty_1", publicKey: "pk", channel: "main",
    epoch: 2, kid: 281474976710655, baseKey }, [entry.recipient]);
  const decrypter = new Decrypter();
  decrypter.addIdentity(identity);
  const doc = JSON.parse(new TextDecoder().decode(await decrypter.decrypt(sealed)));
  assert.equal(doc.type, KEY_RECORD_TYPE);
  assert.equal(doc.kid, 281474976710655);
  assert.deepEqual(Buffer.from(doc.base_key, "base64url"), Buffer.from(baseKey));
});
