// The officer's key in the page, against the Debian `age` command line (scripts/setup.sh installs it):
// files the CLI encrypts open here, and keys made here work with the CLI.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";

import { IdentityError, KeyRing, generateKeyPair, isRecipient, keyFileText, readIdentities } from "../src/lib/compliance/identity.js";

function binary(name) {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/bin"])) {
    const candidate = path.join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`${name} is not installed: run scripts/setup.sh (Debian package 'age')`);
}

const AGE = binary("age");
const KEYGEN = binary("age-keygen");

async function withDir(run) {
  const dir = mkdtempSync(path.join(tmpdir(), "compliance-age-"));
  try {
    return await run(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("age file encrypted by the age CLI decrypts in the page with an age-keygen identity file", async () => {
  await withDir(async (dir) => {
    const keyFile = path.join(dir, "key.txt");
    execFileSync(KEYGEN, ["-o", keyFile], { stdio: "pipe" });
    const recipient = execFileSync(KEYGEN, ["-y", keyFile]).toString().trim();
    const plaintext = randomBytes(200_000); // several 64 KiB STREAM chunks
    const ciphertext = execFileSync(AGE, ["-r", recipient], { input: plaintext });
    const identities = await readIdentities(readFileSync(keyFile, "utf8"));
    assert.deepEqual(identities.map((i) => i.recipient), [recipient]);
    const opened = await new KeyRing(identities).open(new Uint8Array(ciphertext), [recipient]);
    assert.ok(opened.plaintext, JSON.stringify(opened.problem));
    assert.deepEqual(Buffer.from(opened.plaintext), plaintext);
  });
});

test("age key generated in the page is an identity file the age CLI reads", async () => {
  await withDir(async (dir) => {
    const pair = await generateKeyPair();
    assert.match(pair.identity, /^AGE-SECRET-KEY-1[0-9A-Z]{58}$/);
    assert.ok(isRecipient(pair.recipient), pair.recipient);
    const text = keyFileText(pair, new Date("2026-11-28T15:48:59Z"));
    assert.match(text, /^# created: 2026-11-28T\d\d:\d\d:59(Z|[+-]\d\d:\d\d)\n# public key: age1[a-z0-9]{58}\nAGE-SECRET-KEY-1/);
    const keyFile = path.join(dir, "generated.txt");
    writeFileSync(keyFile, text, { mode: 0o600 });
    assert.equal(execFileSync(KEYGEN, ["-y", keyFile]).toString().trim(), pair.recipient);
    const ciphertext = execFileSync(AGE, ["-r", pair.recipient], { input: "sealed to a page key" });
    assert.equal(execFileSync(AGE, ["-d", "-i", keyFile], { input: ciphertext }).toString(), "sealed to a page key");
    const opened = await new KeyRing(await readIdentities(text)).open(new Uint8Array(ciphertext));
    assert.equal(new TextDecoder().decode(opened.plaintext), "sealed to a page key");
  });
});

test("age file for someone else is not sealed to you; an altered one fails authentication", async () => {
  const mine = await generateKeyPair();
  const theirs = await generateKeyPair();
  const ring = new KeyRing([mine]);
  const forThem = new Uint8Array(execFileSync(AGE, ["-r", theirs.recipient], { input: randomBytes(1000) }));
  assert.deepEqual((await ring.open(forThem, [theirs.recipient])).problem, { code: "not_sealed_to_you", params: { listed: false } });
  assert.deepEqual((await ring.open(forThem, [mine.recipient])).problem, { code: "not_sealed_to_you", params: { listed: true } });
  const forMe = new Uint8Array(execFileSync(AGE, ["-r", mine.recipient], { input: randomBytes(1000) }));
  const altered = Uint8Array.from(forMe);
  altered[altered.length - 20] ^= 1;
  assert.equal((await ring.open(altered)).problem.code, "decrypt_auth_failed");
  assert.equal((await ring.open(forMe.subarray(0, forMe.length - 10))).problem.code, "decrypt_auth_failed");
  const header = Uint8Array.from(forMe);
  header[60] ^= 1; // inside the recipient stanza or MAC: the header no longer opens
  assert.ok((await ring.open(header)).problem);
});

test("age identity text errors name a line number, never its content", async () => {
  const pair = await generateKeyPair();
  const cases = [
    ["", "identity_empty"],
    ["# only a comment\n", "identity_empty"],
    [`# key\n${pair.recipient}\n`, "identity_is_public"],
    ["AGE-SECRET-KEY-1NOTAKEY\n", "identity_invalid"],
    ["AGE-PLUGIN-YUBIKEY-1ABC\n", "identity_plugin"],
    ["age-encryption.org/v1\n-> X25519 abc\n", "identity_encrypted"],
  ];
  for (const [text, code] of cases) {
    await assert.rejects(readIdentities(text), (error) => {
      assert.ok(error instanceof IdentityError);
      assert.equal(error.code, code);
      assert.ok(!JSON.stringify(error.params).includes("AGE-"), "the error must not quote the key");
      return true;
    });
  }
  const two = await generateKeyPair();
  const both = await readIdentities(`# first\n${pair.identity}\r\n\n${two.identity}\n`);
  assert.deepEqual(both.map((i) => i.recipient), [pair.recipient, two.recipient]);
});
