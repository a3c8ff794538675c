// Asking the party for its possession factor before an act with legal weight: on first use a one-time code
// sent to its verified contact enrols this device; afterwards the enrolled key proves each act silently.
// Shared by the case page (confirm, sign) and the room (consent).
import { CODE_ERRORS, PossessionError } from "../lib/possession.js";
import { h } from "./dom.js";

/** The party closed the code dialog: the act is not taken (nothing to report). */
export class PossessionCancelled extends Error {
  constructor() {
    super("cancelled");
    this.name = "PossessionCancelled";
    this.code = "possession_cancelled";
  }
}

/**
 * This device's enrolled key pair, enrolling it first with a code if needed (the dialog asks for it).
 * `t` translates, `describe(error)` words an error.
 */
export async function ensureEnrolled(possession, t, describe) {
  const pair = await possession.enrolledKey();
  if (pair) return pair;
  await enrolDialog(possession, t, describe);
  const enrolled = await possession.enrolledKey();
  if (!enrolled) throw new PossessionError("not_enrolled", "enrolment did not complete");
  return enrolled;
}

/** The proof for `act` (in `sessionId`), enrolling this device first if needed. */
export async function proveAct(possession, t, describe, act, sessionId) {
  await ensureEnrolled(possession, t, describe);
  return possession.proof(act, sessionId);
}

/** The enrolment dialog: send a code to the verified contact, type it in; resolves once enrolled. */
function enrolDialog(possession, t, describe) {
  return new Promise((resolve, reject) => {
    const channels = possession.known ? possession.known.channels : [];
    let sent = null;
    const lead = h("p", { class: "dialog-text", testid: "possession-lead",
      text: channels.length ? t("possession.lead", { to: channels.map((c) => c.to).join(" / ") }) : t("possession.noContact") });
    const input = h("input", { id: "possession-code", testid: "possession-code", inputmode: "numeric", autocomplete: "one-time-code",
      maxlength: "9", spellcheck: "false", disabled: true });
    const error = h("p", { class: "form-error", role: "alert", testid: "possession-error", hidden: true });
    const send = h("button", { type: "button", class: "btn btn-secondary", testid: "possession-send", text: t("possession.send"),
      disabled: !channels.length });
    const confirm = h("button", { type: "button", class: "btn btn-primary", testid: "possession-confirm", text: t("possession.confirm"),
      disabled: true });
    const cancel = h("button", { type: "button", class: "btn btn-quiet", testid: "possession-cancel", text: t("common.cancel") });
    const dialog = h("dialog", { class: "dialog", testid: "possession-dialog", "aria-labelledby": "possession-title" },
      h("div", { class: "dialog-form" },
        h("h2", { class: "dialog-title", id: "possession-title", text: t("possession.title") }),
        lead,
        h("div", { class: "field" }, h("label", { for: "possession-code", text: t("possession.codeLabel") }), input),
        error,
        h("div", { class: "actions" }, send, confirm, cancel)));
    const show = (message) => {
      error.hidden = !message;
      error.textContent = message || "";
    };
    const close = () => {
      dialog.close();
      dialog.remove();
    };
    send.addEventListener("click", async () => {
      send.disabled = true;
      show("");
      try {
        sent = await possession.requestCode({ purpose: "enrol" });
        lead.textContent = t("possession.sent", { to: sent.to });
        input.disabled = false;
        confirm.disabled = false;
        send.textContent = t("possession.resend");
        input.focus();
      } catch (failure) {
        show(describe(failure));
      } finally {
        send.disabled = false;
      }
    });
    const submit = async () => {
      if (!sent) return;
      confirm.disabled = true;
      show("");
      try {
        await possession.enrol(sent.code_id, input.value);
        close();
        resolve(undefined);
      } catch (failure) {
        const code = failure && typeof failure === "object" ? failure.code : "";
        show(code === "bad_code" ? t("possession.badCode") : describe(failure));
        if (CODE_ERRORS.includes(code) && code !== "code_wrong") {
          sent = null; // spent or expired: a new code is needed
          input.disabled = true;
        } else {
          confirm.disabled = false;
        }
        input.select();
      }
    };
    confirm.addEventListener("click", submit);
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        submit();
      }
    });
    const cancelled = () => {
      close();
      reject(new PossessionCancelled());
    };
    cancel.addEventListener("click", cancelled);
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      cancelled();
    });
    document.body.append(dialog);
    dialog.showModal();
    send.focus();
  });
}
