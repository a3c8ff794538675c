// The officer's keys: make or register an age key pair, and load the identity that opens records.
//
// The secret key is held only in this module's memory (`keyring`, `generated`): it is never sent,
// never written to storage, and dropped on sign-out and on pagehide (forgetKeys). Only the public
// half (the recipient) ever goes to the server.
import { IdentityError, KeyRing, generateKeyPair, isRecipient, keyFileText, readIdentities } from "../../lib/compliance/identity.js";
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
    state.me = await api.registerRecipient(recipient);
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
      setKeyStatus("ok", "keys.registeredOk");
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
      setKeyStatus("ok", "keys.registeredOk");
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
