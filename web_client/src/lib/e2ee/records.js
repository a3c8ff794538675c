// Compliance for end-to-end encryption, on the sending side: which recipients a page may seal its base
// keys to (the signed statement in force, two-person approval checked), and the sealed key record
// (docs/records.md, "e2ee_key"). The opening side is src/lib/compliance/e2eekeys.js.
import { Encrypter } from "age-encryption";

import { StatementError, verifyStatement } from "../compliance/statement.js";
import { base64url, canonicalJson } from "../signing.js";

export const KEY_RECORD_TYPE = "mediation-e2ee-key/v1";

/**
 * The age recipients a page seals base keys to: the compliance officers of the statement `served`
 * (GET /api/compliance/recipients) once its signature by the audit key checks out (by `pinnedKeyId` when
 * given), each approved by someone other than the officer. The escrow key is left out: nobody approved it.
 * Resolves {recipients, keyId}; rejects with a StatementError (`statement_*`, `recipient_unapproved`,
 * `no_recipients`).
 * @param {any} served @param {string} [pinnedKeyId]
 */
export async function sealingRecipients(served, pinnedKeyId = "") {
  const { statement } = await verifyStatement(served, pinnedKeyId);
  /** @type {string[]} */
  const recipients = [];
  for (const entry of statement.recipients) {
    if (entry.kind !== "compliance_officer") continue;
    const approvers = Array.isArray(entry.approved_by) ? entry.approved_by : [];
    if (typeof entry.user_id !== "string" || approvers.length === 0
        || approvers.some((/** @type {unknown} */ a) => typeof a !== "string" || a === entry.user_id)) {
      throw new StatementError("recipient_unapproved", { recipient: entry.recipient });
    }
    if (!/^age1[02-9ac-hj-np-z]{58}$/.test(entry.recipient)) {
      throw new StatementError("statement_malformed", { message: "not an age X25519 recipient" });
    }
    recipients.push(entry.recipient);
  }
  if (!recipients.length) throw new StatementError("no_recipients");
  return { recipients, keyId: String(served.key_id).toLowerCase() };
}

/**
 * The e2ee_key record's plaintext for one base key, sealed with age to `recipients`.
 * @param {{sessionId: string, participantId: string, publicKey: string, channel: string, epoch: number,
 *   kid: number, baseKey: Uint8Array}} key
 * @param {string[]} recipients
 */
export async function sealKeyRecord(key, recipients) {
  const document = canonicalJson({
    type: KEY_RECORD_TYPE, session_id: key.sessionId, participant_id: key.participantId,
    public_key: key.publicKey, channel: key.channel, epoch: key.epoch, kid: key.kid,
    base_key: base64url(key.baseKey),
  });
  const encrypter = new Encrypter();
  for (const recipient of recipients) encrypter.addRecipient(recipient);
  return encrypter.encrypt(new TextEncoder().encode(document));
}
