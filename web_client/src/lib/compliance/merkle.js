// Spec: docs/records.md (the record format and the problem codes both verifiers report).
// Checking that a leaf is in an RFC 6962 Merkle tree: the verifier's half only (RFC 9162 §2.1.3.2).
// Mirrors recording/records/merkle.py (verify_inclusion) step for step. No DOM access here.

import { concatBytes, equalBytes, sha256 } from "./bytes.js";

const HASH_SIZE = 32;
const LEAF_PREFIX = Uint8Array.of(0);
const NODE_PREFIX = Uint8Array.of(1);

/** SHA-256(0x00 || data). @param {Uint8Array} data */
export function leafHash(data) {
  return sha256(concatBytes(LEAF_PREFIX, data));
}

/** SHA-256(0x01 || left || right). @param {Uint8Array} left @param {Uint8Array} right */
export function nodeHash(left, right) {
  return sha256(concatBytes(NODE_PREFIX, left, right));
}

/** @param {any} value @returns {value is number} */
function isIndex(value) {
  return Number.isSafeInteger(value) && value >= 0;
}

/**
 * Whether `proof` shows `leaf` (a leaf hash) at `index` in the tree of `treeSize` leaves with `root`.
 * Resolves false, never rejects, for an index outside the tree, a proof of the wrong length, or
 * hashes that are not 32 bytes.
 * @param {Uint8Array} leaf
 * @param {number} index
 * @param {number} treeSize
 * @param {Uint8Array[]} proof
 * @param {Uint8Array} root
 * @returns {Promise<boolean>}
 */
export async function verifyInclusion(leaf, index, treeSize, proof, root) {
  if (!isIndex(index) || !isIndex(treeSize) || index >= treeSize) return false;
  if (!Array.isArray(proof)) return false;
  if (leaf.length !== HASH_SIZE || root.length !== HASH_SIZE || proof.some((p) => p.length !== HASH_SIZE)) {
    return false;
  }
  // Shifts below stay in 32-bit integers only up to 2^31 leaves; divide instead to keep every size exact.
  let fn = index;
  let sn = treeSize - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false; // the proof is longer than the path to the root
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equalBytes(r, root);
}
