// The page's verifier reports each tampering of the shared table (tests/fixtures/tampering.json)
// with exactly the problem codes of docs/records.md that the offline tool reports for it
// (tests/recording/compliance/test_tampering.py reads the same table and the same sealed bundle).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { Encrypter } from "age-encryption";
import { ApiError } from "../src/lib/api.js";
import { base64ToBytes, bytesToHex, concatBytes, hexToBytes, utf8 } from "../src/lib/compliance/bytes.js";
import {
  SIGNATURE_COSIGNATURE_V1, checkpointMessage, cosignatureMessage, importAuditKey, noteKeyHash, parseCheckpointBody,
  vkeyOf,
} from "../src/lib/compliance/checkpoint.js";
import { KeyRing, readIdentities } from "../src/lib/compliance/identity.js";
import { ManifestError, parseManifest } from "../src/lib/compliance/manifest.js";
import { leafHash } from "../src/lib/compliance/merkle.js";
import { openRecords } from "../src/lib/compliance/open.js";
import { CATALOGS, translator } from "../src/ui/compliance/text.js";

const TABLE = JSON.parse(readFileSync(new URL("../../tests/fixtures/tampering.json", import.meta.url), "utf8"));
const F = JSON.parse(readFileSync(new URL("./fixtures/compliance-bundle.json", import.meta.url), "utf8"));
const SPEC = readFileSync(new URL("../../docs/records.md", import.meta.url), "utf8");

function select(manifest, selector, every = false) {
  const chosen = manifest.objects.filter((entry) => Object.entries(selector).every(([k, v]) => entry[k] === v));
  if (!chosen.length || (chosen.length > 1 && !every)) {
    throw new Error(`selector ${JSON.stringify(selector)} picks ${chosen.length} objects`);
  }
  return chosen;
}

function set(target, path, op) {
  let node = target;
  for (const name of path.slice(0, -1)) node = node[name];
  if (op.delete) delete node[path.at(-1)];
  else node[path.at(-1)] = op.value;
}

/** Sorted keys, no whitespace: Python's canonical_json for the ASCII values the table uses. */
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

const b64 = (bytes) => Buffer.from(bytes).toString("base64");

/** An Ed25519 key pair from a 32-byte seed (PKCS#8 wraps it behind a fixed prefix). */
async function keyFromSeed(hex) {
  const der = concatBytes(hexToBytes("302e020100300506032b657004220420"), hexToBytes(hex));
  const privateKey = await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, true, ["sign"]);
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  return { privateKey, raw: new Uint8Array(Buffer.from(jwk.x, "base64url")) };
}

async function auditSigner() {
  const privateKey = await crypto.subtle.importKey("pkcs8", base64ToBytes(F.audit_private_key_pkcs8),
    { name: "Ed25519" }, true, ["sign"]);
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  return { privateKey, raw: new Uint8Array(Buffer.from(jwk.x, "base64url")) };
}

const sign = async (privateKey, message) => new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, privateKey,
  message));

/** The checkpoint-evidence operations of the table (see its "about"), mirroring test_tampering.py. */
const CHECKPOINT_OPS = new Set(["checkpoint_note", "flip_note_signature", "set_note", "verifier"]);

async function checkpointOp(manifest, state, op) {
  const inclusion = manifest.objects[0].inclusion;
  if (op.op === "checkpoint_note") {
    const root = hexToBytes(op.root_hash ?? inclusion.root_hash);
    const text = `${TABLE.origin}\n${inclusion.tree_size}\n${b64(root)}\n`;
    const audit = await auditSigner();
    const lines = [[TABLE.origin, await noteKeyHash(TABLE.origin, audit.raw),
      await sign(audit.privateKey, utf8.encode(text))]];
    for (const name of op.cosigners) {
      const witness = await keyFromSeed(TABLE.witness_seeds[name]);
      const time = new Uint8Array(8);
      new DataView(time.buffer).setBigUint64(0, 1700000000n);
      lines.push([name, await noteKeyHash(name, witness.raw, SIGNATURE_COSIGNATURE_V1),
        concatBytes(time, await sign(witness.privateKey, cosignatureMessage(text, 1700000000n)))]);
    }
    state.note = `${text}\n${lines.map(([n, h, p]) => `\u2014 ${n} ${b64(concatBytes(h, p))}\n`).join("")}`;
  } else if (op.op === "flip_note_signature") {
    const [text, block] = state.note.split("\n\n");
    const [first, ...rest] = block.split("\n");
    const [dash, name, signature] = first.split(" ");
    const raw = Uint8Array.from(base64ToBytes(signature));
    raw[4] ^= 1;
    state.note = `${text}\n\n${[`${dash} ${name} ${b64(raw)}`, ...rest].join("\n")}`;
  } else if (op.op === "set_note") {
    state.note = op.value;
  } else if (op.op === "verifier") {
    Object.assign(state, { witnesses: op.witnesses, quorum: op.quorum, pin: op.pin ?? null });
  }
}

async function tamper(manifest, files, op) {
  if (op.op === "set_manifest") {
    set(manifest, op.path, op);
    return;
  }
  for (const entry of select(manifest, op.object, op.all ?? false)) {
    const { key } = entry;
    if (op.op === "flip_byte") {
      const data = Uint8Array.from(files.get(key));
      data[op.offset < 0 ? data.length + op.offset : op.offset] ^= 1;
      files.set(key, data);
    } else if (op.op === "cut_bytes") {
      files.set(key, files.get(key).subarray(0, files.get(key).length - op.count));
    } else if (op.op === "append_bytes") {
      files.set(key, concatBytes(files.get(key), hexToBytes(op.hex)));
    } else if (op.op === "replace_bytes") {
      files.set(key, hexToBytes(op.hex));
    } else if (op.op === "reseal") {
      const encrypter = new Encrypter();
      encrypter.addRecipient(op.recipient);
      files.set(key, await encrypter.encrypt(op.text));
    } else if (op.op === "copy_file") {
      files.set(key, files.get(select(manifest, op.from)[0].key));
    } else if (op.op === "remove_file" || op.op === "remove_object") {
      files.delete(key);
    }
    if (op.op === "remove_entry" || op.op === "remove_object") {
      manifest.objects.splice(manifest.objects.indexOf(entry), 1);
    } else if (op.op === "duplicate_entry") {
      manifest.objects.push(structuredClone(entry));
    } else if (op.op === "set_entry") {
      set(entry, op.path, op);
    } else if (op.op === "fork_checkpoint") {
      const { inclusion } = entry;
      inclusion.root_hash = op.root_hash;
      const signer = await crypto.subtle.importKey("pkcs8", base64ToBytes(F.audit_private_key_pkcs8), { name: "Ed25519" },
        false, ["sign"]);
      const message = checkpointMessage(inclusion.tree_size, hexToBytes(op.root_hash), inclusion.signed_at);
      inclusion.checkpoint_signature = bytesToHex(new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, signer,
        message)));
    } else if (op.op === "edit_audit_entry") {
      const audit = JSON.parse(utf8.decode(base64ToBytes(entry.audit_entry)));
      set(audit, op.path, op);
      const raw = utf8.encode(canonical(audit));
      entry.audit_entry = Buffer.from(raw).toString("base64");
      if (op.rehash) entry.inclusion.leaf_hash = bytesToHex(await leafHash(raw));
    }
  }
}

async function codes(testCase) {
  const manifest = JSON.parse(F.manifest);
  const files = new Map(Object.entries(F.objects).map(([key, value]) => [key, base64ToBytes(value)]));
  const state = { note: null, witnesses: [], quorum: 0, pin: null };
  for (const op of testCase.ops) {
    if (CHECKPOINT_OPS.has(op.op)) await checkpointOp(manifest, state, op);
    else await tamper(manifest, files, op);
  }
  let pin = null;
  let evidence = null;
  if (manifest.objects.length) {
    const inclusion = manifest.objects[0].inclusion;
    const pinSize = state.pin ? inclusion.tree_size + state.pin.size_delta : null;
    if (state.pin) {
      pin = parseCheckpointBody(`${TABLE.origin}\n${pinSize}\n${b64(hexToBytes(state.pin.root_hash
        ?? inclusion.root_hash))}\n`);
    }
    if (state.note !== null) {
      evidence = { note: state.note, consistency: pinSize !== null && pinSize <= inclusion.tree_size
        ? { old_size: pinSize, proof: [] } : null };
    }
  }
  const witnessKeys = await Promise.all(state.witnesses.map(async (name) => vkeyOf(name,
    (await keyFromSeed(TABLE.witness_seeds[name])).raw, SIGNATURE_COSIGNATURE_V1)));
  let parsed;
  try {
    parsed = parseManifest(JSON.stringify(manifest));
  } catch (error) {
    if (error instanceof ManifestError) return ["manifest_error"];
    throw error;
  }
  const { keyId } = await importAuditKey(JSON.parse(F.manifest).audit_public_key_pem);
  // The case's record list as the server would give it: what the tampered store holds.
  const recordIds = new Map([...files.keys()].map((key) => [key, key]));
  const report = await openRecords({
    manifest: parsed, caseId: F.case_id, recordIds, keyring: new KeyRing(await readIdentities(F.identity)),
    pinnedKeyId: keyId, evidence, pin, witnessKeys, quorum: state.quorum,
    download: async (recordId) => {
      if (!files.has(recordId)) throw new ApiError("not_found", `case has no record ${recordId}`, { status: 404 });
      return files.get(recordId);
    },
  });
  return [...new Set(report.problems.map((p) => p.code))].sort();
}

for (const testCase of TABLE.cases) {
  test(`tampering ${testCase.name}: reported as ${testCase.codes.join(", ") || "nothing"}`, async () => {
    assert.deepEqual(await codes(testCase), [...testCase.codes].sort());
  });
}

test("tampering table codes are the spec's, and the page words every code of the spec", () => {
  const spec = new Set([...SPEC.matchAll(/^\| `([a-z0-9_]+)` \| (problem|warning) \|/gm)].map((m) => `${m[2]}.${m[1]}`));
  assert.ok(spec.size > 30, "docs/records.md lists the problem codes in its table");
  for (const { codes: listed } of TABLE.cases) {
    for (const code of listed) assert.ok(spec.has(`problem.${code}`), `${code} is not in docs/records.md`);
  }
  for (const key of spec) {
    for (const lang of Object.keys(CATALOGS)) assert.ok(translator(lang).has(key), `${lang} lacks ${key}`);
  }
});
