// merkle.js verifyConsistency and checkpoint.js notes against what the server's Python makes
// (fixtures: python -m tests.web.compliance_fixtures).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { hexToBytes } from "../src/lib/compliance/bytes.js";
import { checkPinned, countCosignatures, parseNote, parseVkey, verifyNote } from "../src/lib/compliance/checkpoint.js";
import { verifyConsistency } from "../src/lib/compliance/merkle.js";

const vectors = JSON.parse(readFileSync(new URL("./fixtures/compliance-consistency.json", import.meta.url), "utf8"));
const cases = vectors.consistency.map((c) => ({ ...c, oldRoot: hexToBytes(c.old_root), newRoot: hexToBytes(c.new_root),
  proof: c.proof.map(hexToBytes) }));

function flip(bytes) {
  const copy = Uint8Array.from(bytes);
  copy[0] ^= 1;
  return copy;
}

test("consistency every server proof verifies, and fails for a changed root or path", async () => {
  assert.ok(cases.length > 80, `only ${cases.length} vectors`);
  for (const c of cases) {
    const where = `${c.old_size} -> ${c.new_size}`;
    assert.equal(await verifyConsistency(c.old_size, c.new_size, c.oldRoot, c.newRoot, c.proof), true, where);
    if (c.old_size === 0) continue;
    assert.equal(await verifyConsistency(c.old_size, c.new_size, flip(c.oldRoot), c.newRoot, c.proof), false, where);
    assert.equal(await verifyConsistency(c.old_size, c.new_size, c.oldRoot, flip(c.newRoot), c.proof), false, where);
    if (c.proof.length) {
      assert.equal(await verifyConsistency(c.old_size, c.new_size, c.oldRoot, c.newRoot,
        [flip(c.proof[0]), ...c.proof.slice(1)]), false, where);
      assert.equal(await verifyConsistency(c.old_size, c.new_size, c.oldRoot, c.newRoot, c.proof.slice(1)), false,
        where);
    }
  }
});

test("consistency a note signed and cosigned in Python verifies here, and an edited one does not", async () => {
  const note = parseNote(vectors.note);
  const log = await parseVkey(vectors.log_vkey);
  const witness = await parseVkey(vectors.witness_vkey);
  assert.equal(note.head.treeSize, 100);
  assert.equal(await verifyNote(note, log.name, log.raw, log.key), true);
  assert.deepEqual(await countCosignatures(note, [witness]), [witness.name]);
  const edited = parseNote(vectors.note.replace("\n100\n", "\n101\n"));
  assert.equal(await verifyNote(edited, log.name, log.raw, log.key), false);
  assert.deepEqual(await countCosignatures(edited, [witness]), []);
  const last = cases.findLast((c) => c.new_size === 100 && c.old_size === 50);
  const pin = { origin: note.head.origin, treeSize: 50, rootHash: last.oldRoot };
  assert.deepEqual(await checkPinned(pin, note, log, last.proof, [witness], 1), []);
  const rewritten = { ...pin, rootHash: flip(last.oldRoot) };
  assert.deepEqual((await checkPinned(rewritten, note, log, last.proof, [witness], 1)).map((p) => p.code),
    ["checkpoint_inconsistent"]);
  assert.deepEqual((await checkPinned(pin, note, log, last.proof, [witness], 2)).map((p) => p.code),
    ["checkpoint_not_witnessed"]);
});
