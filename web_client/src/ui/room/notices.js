// Transient notices, the confirmation dialog, and requests whose failure becomes a notice.
import { $, h } from "../dom.js";
import { errorText, log } from "./state.js";

/**
 * @typedef {import("./state.js").RoomPageState} RoomPageState
 * @typedef {{label: string, testid?: string, run: () => void}} NoticeAction
 */

/**
 * A transient notice (`notice`, or `testid`); one per `key` (a newer one replaces it), at most four.
 * @param {RoomPageState} state
 * @param {string} text
 * @param {{tone?: string, actions?: NoticeAction[], timeout?: number, testid?: string, key?: string}} [options]
 * @returns {HTMLElement}
 */
export function notify(state, text, { tone = "info", actions = [], timeout = 7000, testid = "notice", key } = {}) {
  const list = $("notices");
  if (key) {
    const existing = list.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (existing) existing.remove();
  }
  // Each notice is its own live region (status, or alert for an error): the container is a plain div.
  const item = h("div", { class: "notice", testid, role: tone === "error" ? "alert" : "status",
    dataset: key ? { tone, key } : { tone } }, h("p", { class: "notice-text", text }));
  const box = h("div", { class: "notice-actions" });
  const close = () => item.remove();
  for (const action of actions) {
    box.append(h("button", { type: "button", class: "btn", text: action.label, testid: action.testid, on: { click: () => {
      close();
      action.run();
    } } }));
  }
  box.append(h("button", { type: "button", class: "btn", text: state.t("notice.dismiss"), on: { click: close } }));
  item.append(box);
  list.append(item);
  while (list.children.length > 4) list.firstElementChild?.remove();
  if (timeout) setTimeout(close, timeout);
  return item;
}

/**
 * @param {RoomPageState} state
 * @param {string} key
 */
export function dismissNotice(state, key) {
  const item = $("notices").querySelector(`[data-key="${CSS.escape(key)}"]`);
  if (item) item.remove();
}

/**
 * A failed request's message, unless the participant is out already.
 * @param {RoomPageState} state
 * @param {any} err a ProtocolError (its `code`)
 */
export function notifyError(state, err) {
  const code = err && err.code ? err.code : "unknown";
  log(state, "request failed", code, err);
  // Once out (e.g. end_session: the server disconnects before its ack), errors are noise.
  if (state.phase === "over" || (state.client && state.client.terminated)) return;
  notify(state, errorText(state, code), { tone: "error" });
}

/**
 * The confirmation dialog (`dialog`); resolves with the choice and the optional reason typed.
 * @param {RoomPageState} state
 * @param {{title: string, text: string, confirmLabel: string, danger?: boolean, withReason?: boolean}} options
 * @returns {Promise<{confirmed: boolean, reason: string}>}
 */
export function confirmDialog(state, { title, text, confirmLabel, danger = false, withReason = false }) {
  const dialog = $("dialog");
  $("dialog-title").textContent = title;
  $("dialog-text").textContent = text;
  $("dialog-reason-field").hidden = !withReason;
  $("dialog-reason").value = "";
  const confirm = $("dialog-confirm");
  confirm.textContent = confirmLabel;
  confirm.className = `btn ${danger ? "btn-danger" : "btn-primary"}`;
  if (typeof dialog.showModal !== "function") {
    return Promise.resolve({ confirmed: window.confirm(`${title}\n\n${text}`), reason: "" });
  }
  return new Promise((resolve) => {
    const onClose = () => {
      dialog.removeEventListener("close", onClose);
      resolve({ confirmed: dialog.returnValue === "confirm", reason: $("dialog-reason").value.trim() });
    };
    dialog.returnValue = "";
    dialog.addEventListener("close", onClose);
    dialog.showModal();
    (withReason ? $("dialog-reason") : $("dialog-cancel")).focus();
  });
}

/**
 * Run a request; a failure becomes a notice (and null), a success optionally one too.
 * @template T
 * @param {RoomPageState} state
 * @param {() => Promise<T>} run
 * @param {{successKey?: string}} [options]
 * @returns {Promise<T | null>}
 */
export async function act(state, run, { successKey } = {}) {
  try {
    const result = await run();
    if (successKey) notify(state, state.t(successKey));
    return result;
  } catch (err) {
    notifyError(state, err);
    return null;
  }
}
