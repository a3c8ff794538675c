// The page's verifier reports each tampering of the shared table (tests/fixtures/tampering.json)
// with exactly the problem codes of docs/records.md that the offline tool reports for it
// (tests/recording/compliance/test_tampering.py reads the same table and the same sealed bundle).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { Encrypter } from "age-encryption";
import { ApiError } from "../src/lib/api.js";
import { base64ToBytes, bytesToHex, concatBytes, hexToBytes, utf8 } from "../src/lib/compliance/bytes.js";
import { checkpointMessage, importAuditKey } from "../src/lib/compliance/checkpoint.js";
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
  for (const op of testCase.ops) await tamper(manifest, files, op);
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
    pinnedKeyId: keyId,
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
