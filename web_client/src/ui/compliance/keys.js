// The officer's keys: make or register an age key pair, and load the identity that opens records.
//
// The secret key is held only in this module's memory (`keyring`, `generated`): it is never sent,
// never written to storage, and dropped on sign-out and on pagehide (forgetKeys). Only the public
// half (the recipient) ever goes to the server.
import { IdentityError, KeyRing, generateKeyPair, isRecipient, keyFileText, readIdentities } from "../../lib/compliance/identity.js";
import { StatementError, verifyStatement } from "../../lib/compliance/statement.js";
import { errorMessage } from "../../lib/i18n.js";
import { $, h } from "../dom.js";
import { renderCase } from "./cases.js";
import { api, state } from "./context.js";
import { sessionExpired } from "./session.js";

const MAX_KEY_FILE = 64 * 1024;

/** @type {KeyRing | null} the officer's identities, for opening records */
let keyring = null;
/** @type {{identity: string, recipient: string} | null} just generated, not yet registered or discarded */
let generated = null;

/** The loaded identities, or null: what opening a record needs. */
export function currentKeyring() {
  return keyring;
}

/** Drop the secret key (loaded or just generated) and every field that held one. */
export function forgetKeys() {
  keyring = null;
  generated = null;
  $("secret-key").textContent = "";
  $("secret-recipient").textContent = "";
  $("secret-panel").hidden = true;
  $("identity-text").value = "";
  $("identity-file").value = "";
  $("paste-recipient").value = "";
}

export function setKeyStatus(tone, key, params = {}) {
  state.keyStatus = { tone, key, params };
  renderKeys();
}

export function renderKeys() {
  const { t } = state;
  const recipient = state.me?.age_recipient ?? null;
  $("registered-recipient").textContent = recipient ?? "";
  $("registered-recipient").hidden = !recipient;
  $("no-recipient").hidden = Boolean(recipient);
  $("secret-panel").hidden = generated === null;
  $("key-actions").hidden = generated !== null;
  $("register-generated").disabled = !$("secret-saved").checked;
  const status = $("key-status");
  if (state.keyStatus) {
    status.hidden = false;
    status.className = `notice notice-${state.keyStatus.tone}`;
    status.textContent = state.keyStatus.text ?? t(state.keyStatus.key, state.keyStatus.params);
  } else {
    status.hidden = true;
  }
  renderApprovals();
}

export function keyFileName() {
  const day = new Date().toISOString().slice(0, 10).replace(/-/g, "");
  const user = (state.me?.username ?? "officer").replace(/[^A-Za-z0-9_-]/g, "_");
  return `age-identity-${user}-${day}.txt`;
}

export function dropGenerated() {
  generated = null;
  $("secret-key").textContent = "";
  $("secret-recipient").textContent = "";
  $("secret-saved").checked = false;
  $("secret-downloaded").hidden = true;
}

export async function register(recipient, button) {
  button.disabled = true;
  try {
    await api.registerRecipient(recipient); // a proposal: my key in force changes only once approved
    await loadApprovals();
    return true;
  } catch (error) {
    if (!sessionExpired(error)) {
      state.keyStatus = { tone: "error", text: errorMessage(state.t, error) };
      renderKeys();
    }
    return false;
  } finally {
    button.disabled = false;
  }
}

// --- two-person control: the signed statement in force and the keys awaiting a second person ---------

/** @type {{status: "loading" | "verified" | "failed" | "none", statement?: any, pinned?: boolean, error?: any} | null} */
let statement = null;
/** @type {any[]} */
let proposals = [];

/** Fetch and verify the recipient statement, and the key proposals; then redraw the key panel. */
export async function loadApprovals() {
  if (!state.me) return;
  statement = { status: "loading" };
  try {
    state.me = (await api.me()).user ?? state.me; // my key in force changes only by someone else's approval
  } catch (error) {
    if (sessionExpired(error)) return;
  }
  try {
    const served = await api.recipientStatement();
    const verified = await verifyStatement(served, $("audit-key-pin").value);
    statement = { status: "verified", statement: verified.statement, pinned: verified.pinned };
  } catch (error) {
    if (error?.status === 404) statement = { status: "none" };
    else if (!sessionExpired(error)) statement = { status: "failed", error };
  }
  try {
    proposals = (await api.keyProposals()).proposals;
  } catch (error) {
    proposals = [];
    if (!sessionExpired(error)) state.keyStatus = { tone: "error", text: errorMessage(state.t, error) };
  }
  renderKeys();
}

/** The recipients of the verified statement in force; empty unless its signature checked out. */
export function trustedRecipients() {
  return statement?.status === "verified" ? statement.statement.recipients.map((r) => r.recipient) : [];
}

function decide(action, proposal, button) {
  button.disabled = true;
  const call = action === "approve" ? api.approveKey : api.rejectKey;
  call(proposal.proposal_id).then(async () => {
    setKeyStatus("ok", action === "approve" ? "approvals.approvedOk" : "approvals.rejectedOk",
      { name: proposal.username });
    await loadApprovals();
  }, (error) => {
    button.disabled = false;
    if (!sessionExpired(error)) {
      state.keyStatus = { tone: "error", text: errorMessage(state.t, error) };
      renderKeys();
    }
  });
}

function renderApprovals() {
  const { t } = state;
  const root = $("key-approvals");
  if (!root) return;
  const parts = [];
  if (!statement || statement.status === "loading") {
    parts.push(h("p", { class: "small muted", text: t("statement.loading") }));
  } else if (statement.status === "none") {
    parts.push(h("p", { class: "notice notice-warn small", testid: "statement-none", text: t("statement.none") }));
  } else if (statement.status === "failed") {
    const code = statement.error instanceof StatementError ? statement.error.code : null;
    parts.push(h("p", { class: "notice notice-error small", role: "alert", testid: "statement-error",
      text: code ? t(`statement.error.${code}`, statement.error.params) : errorMessage(t, statement.error) }));
  } else {
    const { version, recipients } = statement.statement;
    parts.push(h("p", { class: "small ok", testid: "statement-verified",
      text: t(statement.pinned ? "statement.verifiedPinned" : "statement.verified", { version, n: recipients.length }) }));
    parts.push(h("ul", { class: "plain small" }, recipients.map((entry) => h("li", { testid: "statement-recipient",
      dataset: { recipient: entry.recipient } },
      h("span", { text: entry.username ?? t(`statement.kind.${entry.kind === "escrow" ? "escrow" : "officer"}`) }),
      " ", h("code", { class: "key", text: entry.recipient })))));
  }
  const pending = proposals.filter((p) => p.state === "pending");
  const mine = pending.filter((p) => p.user_id === state.me?.user_id);
  for (const proposal of mine) {
    parts.push(h("p", { class: "notice notice-info small", testid: "key-pending",
      text: t(`approvals.minePending.${proposal.needs}`, { recipient: proposal.recipient }) }));
  }
  const others = pending.filter((p) => p.user_id !== state.me?.user_id);
  if (others.length) {
    parts.push(h("h3", { class: "secret-title", text: t("approvals.title") }));
    for (const proposal of others) {
      const approve = h("button", { type: "button", class: "btn btn-small btn-primary", testid: "approve-key",
        text: t("approvals.approve") });
      const reject = h("button", { type: "button", class: "btn btn-small btn-quiet", testid: "reject-key",
        text: t("approvals.reject") });
      approve.addEventListener("click", () => decide("approve", proposal, approve));
      reject.addEventListener("click", () => decide("reject", proposal, reject));
      parts.push(h("div", { class: "field-static", testid: "proposal-row", dataset: { username: proposal.username } },
        h("span", { class: "label", text: t("approvals.proposedBy", { name: proposal.username }) }),
        h("code", { class: "key", text: proposal.recipient }), h("div", { class: "row" }, approve, reject)));
    }
  }
  root.replaceChildren(...parts);
}

// --- the officer's identity (for opening) ---------------------------------------------------------

export function renderIdentity() {
  const { t } = state;
  const loaded = keyring !== null;
  $("identity-panel").dataset.state = loaded ? "loaded" : "empty";
  $("identity-empty").hidden = loaded;
  $("identity-loaded").hidden = !loaded;
  if (loaded) {
    $("identity-recipient").textContent = keyring.recipients.join("\n");
    const registered = state.me?.age_recipient;
    const match = $("identity-match");
    const matches = registered && keyring.recipients.includes(registered);
    match.textContent = matches ? t("identity.matches") : t("identity.mismatch");
    match.className = matches ? "small ok" : "small warn";
  } else {
    $("identity-recipient").textContent = "";
  }
  const status = $("identity-status");
  if (state.identityStatus) {
    status.hidden = false;
    status.className = `notice notice-${state.identityStatus.tone}`;
    status.textContent = t(state.identityStatus.key, state.identityStatus.params);
  } else {
    status.hidden = true;
  }
  for (const button of document.querySelectorAll("[data-needs-identity]")) button.setAttribute("aria-disabled", String(!loaded));
}

export async function loadIdentity(text) {
  try {
    keyring = new KeyRing(await readIdentities(text));
    state.identityStatus = null;
  } catch (error) {
    keyring = null;
    const code = error instanceof IdentityError ? error.code : "identity_invalid";
    state.identityStatus = { tone: "error", key: `identity.error.${code}`, params: error.params ?? {} };
  }
  renderIdentity();
  renderCase();
}

/** Wire the key and identity panels (once, at start). */
export function wire() {
  $("key-status").before(h("div", { id: "key-approvals", testid: "key-approvals" }));
  $("audit-key-pin").addEventListener("change", () => loadApprovals());
  $("generate-key").addEventListener("click", async () => {
    generated = await generateKeyPair();
    $("secret-key").textContent = generated.identity;
    $("secret-recipient").textContent = generated.recipient;
    $("secret-saved").checked = false;
    $("secret-downloaded").hidden = true;
    state.keyStatus = null;
    renderKeys();
    $("secret-panel").scrollIntoView({ block: "nearest" });
  });

  $("download-secret").addEventListener("click", () => {
    if (!generated) return;
    const name = keyFileName();
    const url = URL.createObjectURL(new Blob([keyFileText(generated)], { type: "text/plain" }));
    const link = h("a", { href: url, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
    const note = $("secret-downloaded");
    note.textContent = state.t("secret.downloaded", { file: name });
    note.hidden = false;
  });

  $("secret-saved").addEventListener("change", () => renderKeys());

  $("register-generated").addEventListener("click", async () => {
    if (!generated || !$("secret-saved").checked) return;
    // Only the public half leaves the page.
    if (await register(generated.recipient, $("register-generated"))) {
      dropGenerated();
      setKeyStatus("ok", "keys.proposedOk");
      renderIdentity();
    }
  });

  $("discard-generated").addEventListener("click", () => {
    dropGenerated();
    setKeyStatus("info", "keys.discarded");
  });

  $("paste-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("paste-recipient");
    const value = input.value.trim();
    if (/AGE-SECRET-KEY-/i.test(value)) {
      // A secret key pasted into the public-key field is never sent.
      input.value = "";
      setKeyStatus("error", "keys.paste.secret");
      return;
    }
    if (!isRecipient(value)) {
      setKeyStatus("error", "keys.paste.invalid");
      return;
    }
    if (await register(value, $("register-pasted"))) {
      input.value = "";
      setKeyStatus("ok", "keys.proposedOk");
      renderIdentity();
    }
  });

  $("identity-file").addEventListener("change", async (event) => {
    const input = event.target;
    const file = input.files?.[0];
    input.value = ""; // the selection is not kept; the text below lives only in memory
    if (!file) return;
    if (file.size > MAX_KEY_FILE) {
      state.identityStatus = { tone: "error", key: "identity.error.identity_too_large", params: {} };
      renderIdentity();
      return;
    }
    let text;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(await file.arrayBuffer());
    } catch {
      state.identityStatus = { tone: "error", key: "identity.error.identity_not_text", params: {} };
      renderIdentity();
      return;
    }
    await loadIdentity(text);
  });

  $("identity-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("identity-text");
    const text = input.value;
    input.value = "";
    await loadIdentity(text);
  });

  $("identity-forget").addEventListener("click", () => {
    keyring = null;
    state.identityStatus = { tone: "info", key: "identity.forgotten", params: {} };
    renderIdentity();
    renderCase();
  });
}
