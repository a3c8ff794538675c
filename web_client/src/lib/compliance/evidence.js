// Spec: docs/records.md ("Pinning"). The checkpoint evidence a bundle carries (the signed note with
// the witnesses' cosignatures, and the consistency proof from the officer's pinned checkpoint),
// checked before any object is trusted. Mirrors recording/compliance/pinning.py. No DOM access here.

import { base64ToBytes, bytesToHex } from "./bytes.js";
import { checkPinned, parseNote, parseVkey, verifyNote } from "./checkpoint.js";

/** @typedef {import("./types.js").Problem} Problem */
/** @typedef {import("./manifest.js").Manifest} Manifest */
/** @typedef {import("./checkpoint.js").CheckpointHead} CheckpointHead */
/** @typedef {import("./checkpoint.js").LogKey} LogKey */
/** @typedef {import("./open.js").Report} Report */

/**
 * @typedef {object} CheckpointEvidence The checkpoint's signed note, and the proof from the pinned size.
 * @property {string} note
 * @property {{old_size: number, proof: string[]} | null} [consistency]
 */

/**
 * The checkpoint evidence (docs/records.md, "Pinning"): `evidence` is {note, consistency: {old_size,
 * proof: [base64]} | null} or null; `pin` {origin, treeSize, rootHash} or null; `witnessKeys` vkey
 * strings; `quorum` cosignatures required. Records problems and warnings in `report`; resolves the
 * note's text to pin when it passed, else null. Mirrors recording/compliance/pinning.py.
 * @param {object} options
 * @param {CheckpointEvidence | null} options.evidence
 * @param {CheckpointHead | null} options.pin
 * @param {string[]} options.witnessKeys
 * @param {number} options.quorum
 * @param {Manifest} options.manifest
 * @param {Map<string, CryptoKey>} options.trusted
 * @param {Report} options.report
 * @returns {Promise<string | null>}
 */
export async function checkEvidence({ evidence, pin, witnessKeys, quorum, manifest, trusted, report }) {
  if (!evidence) {
    if (pin || quorum) report.problem(null, "no_checkpoint_note");
    return null;
  }
  if (!pin) report.warning("checkpoint_not_pinned");
  let note;
  let witnesses;
  try {
    note = parseNote(evidence.note);
    witnesses = await Promise.all(witnessKeys.map(parseVkey));
  } catch (error) {
    report.problem(null, "checkpoint_note_malformed", {
      message: String(/** @type {{message?: unknown} | null | undefined} */ (error)?.message ?? error) });
    return null;
  }
  const { head } = note;
  /** @type {LogKey | null} */
  let logKey = null;
  for (const key of trusted.values()) {
    const raw = new Uint8Array(await crypto.subtle.exportKey("raw", key));
    if (await verifyNote(note, head.origin, raw, key)) logKey = { raw, key };
  }
  /** @type {Uint8Array[]} */
  let proof = [];
  /** @type {Problem[]} */
  const problems = [];
  if (pin) {
    const consistency = evidence.consistency;
    try {
      if (!consistency || consistency.old_size !== pin.treeSize || !Array.isArray(consistency.proof)) {
        throw new TypeError("no consistency proof from the pinned size");
      }
      proof = consistency.proof.map(base64ToBytes);
    } catch {
      problems.push({ code: "checkpoint_inconsistent", params: { size: head.treeSize, pinned: pin.treeSize } });
    }
  }
  problems.push(...await checkPinned(pin, note, logKey, proof, witnesses, quorum));
  const root = bytesToHex(head.rootHash);
  const others = manifest.objects.filter((o) => o.checkpoint.treeSize !== head.treeSize
    || bytesToHex(o.checkpoint.rootHash) !== root);
  if (others.length) {
    problems.push({ code: "checkpoint_inconsistent", params: { size: head.treeSize, pinned: pin?.treeSize ?? "—" } });
  }
  for (const { code, params } of problems) report.problem(null, code, params);
  return problems.length ? null : evidence.note;
}
