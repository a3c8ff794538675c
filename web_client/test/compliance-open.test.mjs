// Opening a whole case bundle in the page's code, with the tampering the offline tool's tests use
// (tests/recording/compliance/test_tampering.py). The bundle was sealed with an age-keygen key, audited and
// checkpointed by the server's own AuditLog (fixture: python -m tests.web.compliance_fixtures).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { Encrypter } from "age-encryption";
import { ApiError } from "../src/lib/api.js";
import { base64ToBytes, bytesToHex, concatBytes, sha256 } from "../src/lib/compliance/bytes.js";
import { checkpointMessage, importAuditKey } from "../src/lib/compliance/checkpoint.js";
import { KeyRing, generateKeyPair, readIdentities } from "../src/lib/compliance/identity.js";
import { parseManifest } from "../src/lib/compliance/manifest.js";
import { leafHash } from "../src/lib/compliance/merkle.js";
import { openRecords } from "../src/lib/compliance/open.js";
import { CATALOGS, translator as makeTranslator, problemText } from "../src/ui/compliance/text.js";

const F = JSON.parse(readFileSync(new URL("./fixtures/compliance-bundle.json", import.meta.url), "utf8"));
const SESSION = F.session_id;
const MEDIATOR = "usr_mediator01";
const BORROWER = "pty_borrower01";
const en = makeTranslator("en");
const b64 = (bytes) => Buffer.from(bytes).toString("base64");

function pristine() {
  return {
    manifest: JSON.parse(F.manifest),
    objects: new Map(Object.entries(F.objects).map(([key, value]) => [key, base64ToBytes(value)])),
  };
}

function find(manifest, kind, participantId = null, index = null, part = 0) {
  const entry = manifest.objects.find((o) => o.kind === kind && (participantId === null || o.participant_id === participantId)
    && (index === null || o.index === index) && (o.part === null || o.part === part));
  if (!entry) throw new Error(`no ${kind} ${participantId} ${index}`);
  return entry;
}

const segmentKey = (participantId, index, part = 0) =>
  `cases/${F.case_id}/sessions/${SESSION}/recordings/${participantId}/${String(part).padStart(4, "0")}/${String(index).padStart(6, "0")}.webm.age`;

async function open(bundle, { identity = F.identity, pinned = "", include } = {}) {
  const keyring = new KeyRing(await readIdentities(identity));
  // The case's record list: every object the pristine bundle holds, downloadable by its key.
  const recordIds = new Map(Object.keys(F.objects).map((key) => [key, key]));
  const report = await openRecords({
    manifest: parseManifest(JSON.stringify(bundle.manifest)), caseId: F.case_id, include, recordIds, keyring,
    pinnedKeyId: pinned,
    download: async (recordId) => {
      if (!bundle.objects.has(recordId)) throw new ApiError("not_found", `case has no record ${recordId}`, { status: 404 });
      return bundle.objects.get(recordId);
    },
  });
  report.text = report.problems.map((p) => problemText(en, p)).join("\n");
  return report;
}

function recording(report, participantId, part = 0) {
  return report.recordings.get(JSON.stringify(["recording", SESSION, participantId, String(part).padStart(4, "0")]));
}

function assertIncomplete(report, ...needles) {
  assert.equal(report.complete, false, "the result must not be called complete");
  for (const needle of needles) assert.ok(report.text.includes(needle), `${needle}\n--- in ---\n${report.text}`);
  for (const { code } of report.problems) {
    for (const [lang, catalog] of Object.entries(CATALOGS)) assert.ok(catalog[`problem.${code}`], `${lang} lacks problem.${code}`);
  }
}

function flip(bundle, key, offset) {
  const data = Uint8Array.from(bundle.objects.get(key));
  data[offset < 0 ? data.length + offset : offset] ^= 1;
  bundle.objects.set(key, data);
  return data;
}

test("open untouched bundle: complete, every recording joined byte for byte, transcript and chat read", async () => {
  const { keyId } = await importAuditKey(JSON.parse(F.manifest).audit_public_key_pem);
  const report = await open(pristine(), { pinned: keyId });
  assert.deepEqual(report.problems, []);
  assert.deepEqual(report.warnings, []);
  assert.equal(report.complete, true);
  assert.equal(report.verified, 18);
  for (const [name, data] of Object.entries(F.recordings)) {
    const [participantId, part] = name.split("/");
    const joined = recording(report, participantId, Number(part));
    assert.equal(joined.spoiled, false, name);
    assert.deepEqual(Buffer.from(concatBytes(...joined.chunks)), Buffer.from(base64ToBytes(data)), name);
  }
  assert.deepEqual(report.transcripts.get(SESSION).events, F.transcript.events);
  assert.deepEqual(report.chat.get(SESSION).map((m) => m.seq), [1, 2, 3]);
  assert.equal(report.consents.length, 1);
  assert.equal(report.agreements.length, 1);
});

test("open untouched bundle without a pinned key: complete, with the loud unpinned-key warning", async () => {
  const report = await open(pristine());
  assert.equal(report.complete, true);
  assert.deepEqual(report.warnings.map((w) => w.code), ["audit_key_not_pinned"]);
});

test("open flipped byte: SHA-256 mismatch, that recording incomplete, the others whole", async () => {
  const bundle = pristine();
  flip(bundle, segmentKey(BORROWER, 2), -20);
  const report = await open(bundle);
  assertIncomplete(report, `recordings/${BORROWER}/0000/000002.webm.age: SHA-256 MISMATCH`,
    "DECRYPTION AUTHENTICATION FAILED");
  assert.equal(recording(report, BORROWER, 0).spoiled, true);
  assert.deepEqual(recording(report, BORROWER, 0).segments, [0, 1, 3]);
  assert.equal(recording(report, MEDIATOR, 0).spoiled, false);
  assert.equal(recording(report, BORROWER, 1).spoiled, false);
});

test("open flipped byte with the manifest's hash fixed: the audit entry and decryption refuse it", async () => {
  const bundle = pristine();
  const original = find(bundle.manifest, "recording_segment", BORROWER, 2).sha256;
  const data = flip(bundle, segmentKey(BORROWER, 2), -20);
  find(bundle.manifest, "recording_segment", BORROWER, 2).sha256 = bytesToHex(await sha256(data));
  const report = await open(bundle);
  assertIncomplete(report, "DECRYPTION AUTHENTICATION FAILED", `records sha256 ${original}`);
  assert.ok(!report.text.includes("SHA-256 MISMATCH"));
  assert.equal(recording(report, BORROWER, 0).spoiled, true);
});

test("open truncated ciphertext and a missing download are reported", async () => {
  const bundle = pristine();
  const key = segmentKey(MEDIATOR, 1);
  const full = bundle.objects.get(key);
  bundle.objects.set(key, full.subarray(0, full.length - 7));
  bundle.objects.delete(segmentKey(MEDIATOR, 0));
  const report = await open(bundle);
  assertIncomplete(report, `TRUNCATED: received ${full.length - 7} bytes, the manifest says ${full.length}`,
    "download failed (HTTP 404)");
  assert.equal(recording(report, MEDIATOR, 0).spoiled, true);
});

test("open segment removed from the manifest is a gap; the last one is caught by the transcript", async () => {
  const bundle = pristine();
  bundle.manifest.objects = bundle.manifest.objects.filter((o) => o !== find(bundle.manifest, "recording_segment", BORROWER, 1)
    && o !== find(bundle.manifest, "recording_segment", MEDIATOR, 3));
  const report = await open(bundle);
  assertIncomplete(report, `recording segment ${SESSION}/${BORROWER}/0000: index(es) 1 MISSING (present: 0, 2-3)`,
    `recording segment ${SESSION}/${MEDIATOR}/0000: index(es) 3 MISSING (present: 0-2)`);
  assert.equal(recording(report, BORROWER, 0).spoiled, true);
  assert.equal(recording(report, MEDIATOR, 0).spoiled, true);
  assert.equal(recording(report, BORROWER, 1).spoiled, false);
});

test("open whole recording part removed is caught by the transcript's counts", async () => {
  const bundle = pristine();
  bundle.manifest.objects = bundle.manifest.objects.filter((o) => o.part !== 1);
  const report = await open(bundle);
  assertIncomplete(report, `recording segment ${SESSION}/${BORROWER}/0001: index(es) 0-3 MISSING`);
  assert.equal(recording(report, BORROWER, 0).spoiled, false);
});

test("open transcript removed: nothing vouches for the session, its recordings and chat are incomplete", async () => {
  const bundle = pristine();
  bundle.manifest.objects = bundle.manifest.objects.filter((o) => o.kind !== "transcript");
  const report = await open(bundle);
  assertIncomplete(report, `session ${SESSION} has no verified transcript`);
  assert.equal(recording(report, MEDIATOR, 0).spoiled, true);
  assert.equal(report.spoiled(["chat", SESSION]), true);
  assert.equal(report.spoiled(["agreement", "1"]), false);
});

test("open object listed twice is used neither time; the chat marks it missing", async () => {
  const bundle = pristine();
  bundle.manifest.objects.push(find(bundle.manifest, "chat_message", null, 1));
  const report = await open(bundle);
  assertIncomplete(report, "chat/00000001.json.age: listed 2 times in the manifest");
  assert.equal(report.chatMissing.get(SESSION).get(1), "listed_twice");
  assert.deepEqual(report.chat.get(SESSION).map((m) => m.seq), [2, 3]);
});

test("open chat message removed leaves a marked gap in the chat", async () => {
  const bundle = pristine();
  bundle.manifest.objects = bundle.manifest.objects.filter((o) => o !== find(bundle.manifest, "chat_message", null, 2));
  const report = await open(bundle);
  assertIncomplete(report, `chat message ${SESSION}: index(es) 2 MISSING`);
  assert.equal(report.chatMissing.get(SESSION).get(2), "not_in_manifest");
  assert.equal(report.spoiled(["transcript", SESSION]), false);
});

async function auditSigner() {
  return crypto.subtle.importKey("pkcs8", base64ToBytes(F.audit_private_key_pkcs8), { name: "Ed25519" }, false, ["sign"]);
}

async function sign(key, inclusion) {
  const message = checkpointMessage(inclusion.tree_size, Buffer.from(inclusion.root_hash, "hex"), inclusion.signed_at);
  return bytesToHex(new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, message)));
}

test("open two validly signed roots for one tree size are reported as a fork", async () => {
  const bundle = pristine();
  const inclusion = find(bundle.manifest, "consent").inclusion;
  inclusion.root_hash = "ee".repeat(32);
  inclusion.checkpoint_signature = await sign(await auditSigner(), inclusion);
  const report = await open(bundle);
  assertIncomplete(report, "have different roots", "the audit log was rewritten");
});

function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

test("open a valid ciphertext slipped into the store is refused by the audit log alone", async () => {
  const bundle = pristine();
  const encrypter = new Encrypter();
  encrypter.addRecipient(F.recipient);
  const forged = await encrypter.encrypt("a different recording");
  bundle.objects.set(segmentKey(BORROWER, 2), forged);
  const entry = find(bundle.manifest, "recording_segment", BORROWER, 2);
  entry.sha256 = bytesToHex(await sha256(forged));
  entry.size = forged.length;
  const audit = JSON.parse(Buffer.from(entry.audit_entry, "base64").toString());
  Object.assign(audit.detail, { sha256: entry.sha256, size: entry.size });
  const bytes = new TextEncoder().encode(canonical(audit));
  entry.audit_entry = b64(bytes);
  entry.inclusion.leaf_hash = bytesToHex(await leafHash(bytes));
  const report = await open(bundle);
  assertIncomplete(report, `recordings/${BORROWER}/0000/000002.webm.age: audit entry`,
    "is NOT in the audit log: its inclusion proof fails");
  assert.ok(!report.text.includes("DECRYPTION"), "it decrypts fine; the log alone refuses it");
});

test("open reordered segments are refused: each audit entry commits to its key", async () => {
  const bundle = pristine();
  const [a, b] = [segmentKey(MEDIATOR, 1), segmentKey(MEDIATOR, 2)];
  const [da, db] = [bundle.objects.get(a), bundle.objects.get(b)];
  bundle.objects.set(a, db);
  bundle.objects.set(b, da);
  const one = find(bundle.manifest, "recording_segment", MEDIATOR, 1);
  const two = find(bundle.manifest, "recording_segment", MEDIATOR, 2);
  for (const field of ["sha256", "size", "audit_seq", "audit_entry", "inclusion"]) [one[field], two[field]] = [two[field], one[field]];
  const report = await open(bundle);
  assertIncomplete(report, "records key", `recordings/${MEDIATOR}/0000/000002.webm.age, the manifest says`);
  assert.equal(recording(report, MEDIATOR, 0).spoiled, true);
});

test("open forged checkpoint signature: nothing verifies", async () => {
  const bundle = pristine();
  for (const entry of bundle.manifest.objects) {
    const s = entry.inclusion.checkpoint_signature;
    entry.inclusion.checkpoint_signature = (s[0] === "0" ? "1" : "0") + s.slice(1);
  }
  const report = await open(bundle);
  assertIncomplete(report, "BAD SIGNATURE: the checkpoint of size");
  assert.equal(report.verified, 0);
  assert.equal(report.recordings.size, 0);
  assert.deepEqual([...new Set(report.warnings.map((w) => w.code))].sort(), ["audit_key_not_pinned", "recording_nothing_verified"]);
});

async function resign(bundle) {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey));
  const pem = `-----BEGIN PUBLIC KEY-----\n${b64(spki)}\n-----END PUBLIC KEY-----\n`;
  const { keyId } = await importAuditKey(pem);
  bundle.manifest.audit_public_key_pem = pem;
  for (const entry of bundle.manifest.objects) {
    entry.inclusion.checkpoint_signature = await sign(pair.privateKey, entry.inclusion);
    entry.inclusion.key_id = keyId;
  }
  return keyId;
}

test("open bundle re-signed with another key: refused when the published key id is given", async () => {
  const genuine = (await importAuditKey(JSON.parse(F.manifest).audit_public_key_pem)).keyId;
  const bundle = pristine();
  const attacker = await resign(bundle);
  const report = await open(bundle, { pinned: genuine });
  assertIncomplete(report, `signed by key ${attacker}, which is not trusted`);
  assert.equal(report.verified, 0);
  assert.ok(report.warnings.some((w) => w.code === "audit_key_not_the_pinned_one"));
  const unpinned = await open(bundle);
  assert.equal(unpinned.complete, true);
  assert.deepEqual(unpinned.warnings, [{ code: "audit_key_not_pinned", params: { keyId: attacker } }]);
});

test("open checkpoint time written with Z still verifies", async () => {
  const bundle = pristine();
  for (const entry of bundle.manifest.objects) entry.inclusion.signed_at = entry.inclusion.signed_at.replace("+00:00", "Z");
  assert.equal((await open(bundle)).complete, true);
});

test("open malformed manifest entry is reported and spoils its output", async () => {
  const bundle = pristine();
  find(bundle.manifest, "chat_message", null, 3).surprise = true;
  const report = await open(bundle);
  assertIncomplete(report, "manifest entry #", "has unknown field(s) surprise");
  assert.equal(report.spoiled(["chat", SESSION]), true);
  assert.equal(report.chatMissing.get(SESSION)?.has(3) ?? false, false, "reported as malformed, not as a gap too");
});

test("open with a stranger's key: nothing is sealed to it", async () => {
  const stranger = await generateKeyPair();
  const report = await open(pristine(), { identity: stranger.identity });
  assertIncomplete(report, "NOT SEALED TO YOUR KEY", "the manifest does not list your public key");
  assert.equal(report.verified, 0);
});

test("open only the agreements: the session's checks do not apply", async () => {
  const report = await open(pristine(), { include: (o) => o.kind === "agreement" });
  assert.equal(report.listed, 1);
  assert.equal(report.complete, true, JSON.stringify(report.problems));
  assert.equal(report.agreements[0].value.instalments[0].amount_minor, 200000);
});

test("open problem messages exist in both languages and name the object", async () => {
  const bundle = pristine();
  flip(bundle, segmentKey(BORROWER, 2), -20);
  const report = await open(bundle);
  const zh = makeTranslator("zh-CN");
  for (const problem of report.problems) {
    const text = problemText(zh, problem);
    assert.ok(text.includes("000002.webm.age"), text);
    assert.ok(!text.includes("{"), text);
  }
});
