// Spec: docs/records.md (the record format and the problem codes both verifiers report).
// Checking that a leaf is in an RFC 6962 Merkle tree, and that one tree extends another: the verifier's
// half only (RFC 9162 §2.1.3.2, §2.1.4.2). Mirrors recording/records/merkle.py (verify_inclusion,
// verify_consistency) step for step. No DOM access here.

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

/**
 * Whether `proof` shows the tree (`oldSize`, `oldRoot`) is a prefix of (`newSize`, `newRoot`).
 * RFC 9162 §2.1.4.2, extended as recording/records/merkle.py (verify_consistency) is, step for step:
 * equal sizes need an empty proof and equal roots. Resolves false, never rejects, on bad input.
 * @param {number} oldSize
 * @param {number} newSize
 * @param {Uint8Array} oldRoot
 * @param {Uint8Array} newRoot
 * @param {Uint8Array[]} proof
 * @returns {Promise<boolean>}
 */
export async function verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof) {
  if (!isIndex(oldSize) || !isIndex(newSize) || oldSize > newSize || !Array.isArray(proof)) return false;
  if (oldRoot.length !== HASH_SIZE || newRoot.length !== HASH_SIZE || proof.some((p) => p.length !== HASH_SIZE)) {
    return false;
  }
  if (oldSize === 0) return proof.length === 0 && equalBytes(oldRoot, await sha256(new Uint8Array(0)));
  if (oldSize === newSize) return proof.length === 0 && equalBytes(oldRoot, newRoot);
  if (!proof.length) return false;
  const path = [...proof];
  if (Number.isInteger(Math.log2(oldSize))) path.unshift(oldRoot); // a power of two: the old tree is one node
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equalBytes(fr, oldRoot) && equalBytes(sr, newRoot);
}
