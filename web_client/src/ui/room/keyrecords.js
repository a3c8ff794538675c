// Filing this page's base keys for compliance: sealed here to the recipients of the signed statement,
// then filed with file_key before the key is shared or used (docs/protocol.md, "End-to-end encryption").
import { createApi } from "../../lib/api.js";
import { sealingRecipients, sealKeyRecord } from "../../lib/e2ee/records.js";
import { base64url } from "../../lib/signing.js";
import { notify } from "./notices.js";

/** @typedef {import("./state.js").RoomPageState} RoomPageState */

// The audit key id this browser first saw sign the statement: a later statement signed by another key is refused.
const PIN_KEY = "mediation-room-audit-key";

/** @param {RoomPageState} state */
async function loadRecipients(state) {
  const api = createApi({ token: state.staff ? null : state.token });
  const served = await api.get("/api/compliance/recipients");
  let pinned = "";
  try {
    pinned = localStorage.getItem(PIN_KEY) || "";
  } catch {
    pinned = ""; // no storage: the served key is checked, unpinned
  }
  const trusted = await sealingRecipients(served, pinned);
  if (!pinned) {
    try {
      localStorage.setItem(PIN_KEY, trusted.keyId);
    } catch {
      // nothing to pin to
    }
  }
  return trusted.recipients;
}

/**
 * Seal one new base key to the compliance recipients and file it; rejects (and the key is not used)
 * when the statement does not check out or the node refuses the filing.
 * @param {RoomPageState} state
 * @param {import("../../lib/e2ee/keys.js").KeyToSeal} key
 */
export async function sealKeyForCompliance(state, key) {
  if (!state.self || !state.self.records_sealed || !state.client) return; // nothing of this room is recorded
  if (!state.sealingRecipients) state.sealingRecipients = loadRecipients(state);
  let recipients;
  try {
    recipients = await state.sealingRecipients;
  } catch (err) {
    state.sealingRecipients = null;
    notify(state, state.t("e2ee.statementRefused"), { tone: "error", key: "e2ee-statement" });
    throw err;
  }
  const sealed = await sealKeyRecord(key, recipients);
  await state.client.fileKey({ channel: key.channel, epoch: key.epoch, kid: key.kid, recipients,
    sealed: base64url(sealed) });
}
