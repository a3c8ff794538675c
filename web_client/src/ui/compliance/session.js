// The compliance page's session: sign in, sign out, a session that expires, and who is signed in.
import { ApiError } from "../../lib/api.js";
import { errorMessage } from "../../lib/i18n.js";
import { $ } from "../dom.js";
import { loadCases, renderFilter } from "./cases.js";
import { api, state } from "./context.js";
import { roleLabel } from "./format.js";
import { forgetKeys, loadApprovals, renderIdentity, renderKeys } from "./keys.js";
import { closeOpened } from "./opening.js";

export function show(section) {
  $("signin").hidden = section !== "signin";
  $("wrong-role").hidden = section !== "wrong-role";
  $("workspace").hidden = section !== "workspace";
  document.body.dataset.phase = section;
}

export async function start() {
  try {
    const session = await api.signInState();
    if (session.signed_in && session.me) await signedIn(session.me);
    else show("signin");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) show("signin");
    else showSigninError(error);
  }
}

export function showSigninError(error) {
  show("signin");
  const node = $("signin-error");
  node.textContent = errorMessage(state.t, error);
  node.hidden = false;
}

export async function signedIn(me) {
  if (me.kind !== "staff" || me.role !== "compliance_officer") {
    state.me = null;
    $("wrong-role-text").textContent = state.t("role.wrong", { role: roleLabel(me.role) });
    show("wrong-role");
    $("who").hidden = false;
    $("who-name").textContent = me.user?.display_name ?? "";
    return;
  }
  state.me = me.user;
  show("workspace");
  renderWho();
  renderKeys();
  renderIdentity();
  renderFilter();
  await Promise.all([loadApprovals(), loadCases()]);
}

/** Drop every secret and every plaintext this page holds. */
export function forgetSecrets() {
  forgetKeys();
  closeOpened();
}

/** A 401 means the session ended: forget everything and ask to sign in again. @param {unknown} error */
export function sessionExpired(error) {
  if (error instanceof ApiError && error.status === 401) {
    forgetSecrets();
    state.me = null;
    $("who").hidden = true;
    showSigninError(error);
    return true;
  }
  return false;
}

export function renderWho() {
  const who = $("who");
  if (!state.me) return;
  who.hidden = false;
  $("who-name").textContent = state.t("who.signedIn", { name: state.me.display_name });
}

/** Wire sign-in and sign-out (once, at start); `renderAll` redraws every area. @param {() => void} renderAll */
export function wire(renderAll) {
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = $("signin-username").value.trim();
    const password = $("signin-password").value;
    const error = $("signin-error");
    if (!username || !password) {
      error.textContent = state.t("signin.missing");
      error.hidden = false;
      return;
    }
    const button = $("signin-submit");
    button.disabled = true;
    try {
      await api.login(username, password);
      $("signin-password").value = "";
      error.hidden = true;
      await signedIn(await api.me());
    } catch (failure) {
      error.textContent = errorMessage(state.t, failure);
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });

  $("signout").addEventListener("click", async () => {
    forgetSecrets();
    try {
      await api.logout();
    } catch {
      /* the session may have expired already; the page forgets it either way */
    }
    Object.assign(state, { me: null, list: null, caseView: null, records: null, opened: null, keyStatus: null,
      identityStatus: null });
    $("who").hidden = true;
    $("signin-username").value = "";
    renderAll();
    show("signin");
  });

  // Leaving the page (or having it put in the back/forward cache) forgets the key and the plaintext.
  window.addEventListener("pagehide", () => {
    forgetSecrets();
    renderIdentity();
  });
}
