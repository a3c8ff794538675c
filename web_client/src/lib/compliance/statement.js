// Spec: docs/records.md ("Recipient statement"). The signed statement of who records are sealed
// to: check its Ed25519 signature by the audit key before trusting the set. Mirrors
// recording/records/statement.py (statement_message, verify_statement). No DOM access here.

import { hexToBytes, utf8 } from "./bytes.js";
import { importAuditKey } from "./checkpoint.js";

export const STATEMENT_TYPE = "mediation-recipient-statement/v1";
export const STATEMENT_CONTEXT = "mediation-recipient-statement/v1\n";

/** A statement that must not be trusted: `code` names why (i18n "statement.error.<code>"). */
export class StatementError extends Error {
  /** @param {string} code @param {Record<string, unknown>} [params] */
  constructor(code, params = {}) {
    super(`${code} ${JSON.stringify(params)}`);
    this.code = code;
    this.params = params;
  }
}

/**
 * The exact bytes the server signs: the context line, then the statement's canonical JSON.
 * @param {string} statement
 */
export function statementMessage(statement) {
  return utf8.encode(STATEMENT_CONTEXT + statement);
}

/**
 * Verify a statement as GET /api/compliance/recipients serves it: {statement, key_id, signature,
 * public_key_pem}. With `pinnedKeyId` (the audit key id the mediation body publishes) only that key
 * is trusted; without it the served key is, and the result says it was not pinned.
 * Resolves {statement, pinned}; rejects with a StatementError.
 * @param {any} served
 * @param {string} [pinnedKeyId]
 */
export async function verifyStatement(served, pinnedKeyId = "") {
  if (!served || typeof served.statement !== "string" || typeof served.signature !== "string"
      || typeof served.key_id !== "string") {
    throw new StatementError("statement_malformed");
  }
  let imported;
  let signature;
  try {
    imported = await importAuditKey(served.public_key_pem);
    signature = hexToBytes(served.signature);
  } catch (error) {
    throw new StatementError("statement_malformed", { message: String(/** @type {{message?: unknown}} */ (error)?.message ?? error) });
  }
  const pinned = pinnedKeyId.trim().toLowerCase();
  if (imported.keyId !== served.key_id || (pinned && imported.keyId !== pinned)) {
    throw new StatementError("statement_untrusted_key", { keyId: served.key_id, pinned });
  }
  const valid = await crypto.subtle.verify({ name: "Ed25519" }, imported.key, signature,
    statementMessage(served.statement));
  if (!valid) throw new StatementError("statement_bad_signature", { keyId: served.key_id });
  let statement;
  try {
    statement = JSON.parse(served.statement);
  } catch (error) {
    throw new StatementError("statement_malformed", { message: String(/** @type {{message?: unknown}} */ (error)?.message ?? error) });
  }
  if (statement?.type !== STATEMENT_TYPE || !Array.isArray(statement.recipients)
      || !statement.recipients.every((/** @type {any} */ entry) => typeof entry?.recipient === "string")) {
    throw new StatementError("statement_malformed", { message: "not a recipient statement" });
  }
  return { statement, pinned: Boolean(pinned) };
}
