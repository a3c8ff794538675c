// merkle.js against inclusion proofs made by the server's own recording/records/merkle.py
// (fixtures: python -m tests.web.compliance_fixtures).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { bytesToHex, hexToBytes } from "../src/lib/compliance/bytes.js";
import { leafHash, nodeHash, verifyInclusion } from "../src/lib/compliance/merkle.js";

const vectors = JSON.parse(readFileSync(new URL("./fixtures/compliance-merkle.json", import.meta.url), "utf8"));
const cases = vectors.inclusion.map((c) => ({ ...c, leaf: hexToBytes(c.leaf), root: hexToBytes(c.root),
  proof: c.proof.map(hexToBytes) }));

test("merkle leaf and node hashes match RFC 6962 as the server computes them", async () => {
  assert.equal(bytesToHex(await leafHash(hexToBytes(vectors.leaf_data_hex))), vectors.leaf_hash);
  assert.equal(bytesToHex(await nodeHash(hexToBytes(vectors.node_left), hexToBytes(vectors.node_right))),
    vectors.node_hash);
});

test("merkle every server proof verifies, for trees of 1 to 127 leaves", async () => {
  assert.ok(cases.length > 200, `only ${cases.length} vectors`);
  for (const c of cases) {
    assert.equal(await verifyInclusion(c.leaf, c.index, c.size, c.proof, c.root), true, `size ${c.size} index ${c.index}`);
  }
});

function flip(bytes) {
  const copy = Uint8Array.from(bytes);
  copy[copy.length - 1] ^= 1;
  return copy;
}

test("merkle a proof fails for another leaf, index, size, root or a changed path", async () => {
  for (const c of cases.filter((x) => x.size > 1)) {
    const where = `size ${c.size} index ${c.index}`;
    assert.equal(await verifyInclusion(flip(c.leaf), c.index, c.size, c.proof, c.root), false, where);
    assert.equal(await verifyInclusion(c.leaf, c.index, c.size, c.proof, flip(c.root)), false, where);
    assert.equal(await verifyInclusion(c.leaf, (c.index + 1) % c.size, c.size, c.proof, c.root), false, where);
    assert.equal(await verifyInclusion(c.leaf, c.index, c.size, [...c.proof, c.leaf], c.root), false, where);
    if (c.proof.length) {
      assert.equal(await verifyInclusion(c.leaf, c.index, c.size, c.proof.slice(1), c.root), false, where);
      const changed = [...c.proof];
      changed[0] = flip(changed[0]);
      assert.equal(await verifyInclusion(c.leaf, c.index, c.size, changed, c.root), false, where);
    }
  }
});

test("merkle nonsense never throws, only fails", async () => {
  const c = cases.find((x) => x.size === 17 && x.index === 9);
  assert.equal(await verifyInclusion(c.leaf, -1, c.size, c.proof, c.root), false);
  assert.equal(await verifyInclusion(c.leaf, c.size, c.size, c.proof, c.root), false);
  assert.equal(await verifyInclusion(c.leaf, 0, 0, [], c.root), false);
  assert.equal(await verifyInclusion(c.leaf, 1.5, c.size, c.proof, c.root), false);
  assert.equal(await verifyInclusion(c.leaf.subarray(1), c.index, c.size, c.proof, c.root), false);
  assert.equal(await verifyInclusion(c.leaf, c.index, c.size, [c.proof[0].subarray(2), ...c.proof.slice(1)], c.root), false);
  const single = cases.find((x) => x.size === 1);
  assert.equal(await verifyInclusion(single.leaf, 0, 1, [], single.root), true);
  assert.equal(await verifyInclusion(single.leaf, 0, 1, [single.leaf], single.root), false);
});
