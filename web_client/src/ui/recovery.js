// Lost receipt (issue 14): the case number and the contact on file get a one-time code sent to that
// contact; the code gives a new receipt, which opens the case here. The server answers alike whether or
// not the case number and contact match, and so does this form.
import { createApi } from "../lib/api.js";
import { busy, h } from "./dom.js";

const CASE_NUMBER = /^MD-[0-9]{8}-[A-Z0-9]{6}$/;

/**
 * The recovery form; `onRecovered(receiptToken)` opens the case with the new receipt.
 * @param {{t: Function, error: Function}} page
 * @param {(receiptToken: string) => void} onRecovered
 */
export function recoveryForm(page, onRecovered) {
  const { t } = page;
  const api = createApi();
  const number = h("input", { id: "recover-number", testid: "recover-number", spellcheck: "false", autocomplete: "off",
    placeholder: "MD-20260101-ABC234" });
  const contact = h("input", { id: "recover-contact", testid: "recover-contact", spellcheck: "false", autocomplete: "email" });
  const code = h("input", { id: "recover-code", testid: "recover-code", inputmode: "numeric", autocomplete: "one-time-code",
    maxlength: "9", spellcheck: "false" });
  const codeField = h("div", { class: "field", hidden: true },
    h("label", { for: "recover-code", text: t("recover.code") }), code);
  const status = h("p", { class: "muted small", role: "status", testid: "recover-status", hidden: true });
  const error = h("p", { class: "form-error", role: "alert", testid: "recover-error", hidden: true });
  const send = h("button", { type: "button", class: "btn btn-secondary", testid: "recover-send", text: t("recover.send") });
  const open = h("button", { type: "button", class: "btn btn-primary", testid: "recover-open", text: t("recover.open"), hidden: true });
  const show = (node, text) => {
    node.hidden = !text;
    node.textContent = text || "";
  };
  const fields = () => ({ case_number: number.value.trim().toUpperCase(), contact: contact.value.trim() });
  send.addEventListener("click", () => busy(send, async () => {
    show(error, "");
    const body = fields();
    if (!CASE_NUMBER.test(body.case_number) || !body.contact) {
      show(error, t("recover.invalid"));
      return;
    }
    try {
      await api.post("/api/recovery/codes", body);
      show(status, t("recover.sent"));
      codeField.hidden = false;
      open.hidden = false;
      send.textContent = t("recover.resend");
      code.focus();
    } catch (failure) {
      show(error, page.error(failure));
    }
  }));
  open.addEventListener("click", () => busy(open, async () => {
    show(error, "");
    const digits = code.value.replace(/\s+/g, "");
    if (!/^[0-9]{8}$/.test(digits)) {
      show(error, t("possession.badCode"));
      return;
    }
    try {
      const receipt = await api.post("/api/recovery/receipts", { ...fields(), code: digits });
      onRecovered(receipt.receipt_token);
    } catch (failure) {
      show(error, page.error(failure));
    }
  }));
  return h("details", { class: "recover", testid: "recover" },
    h("summary", { text: t("recover.title") }),
    h("p", { class: "muted small", text: t("recover.lead") }),
    h("div", { class: "form" },
      h("div", { class: "field" }, h("label", { for: "recover-number", text: t("recover.caseNumber") }), number),
      h("div", { class: "field" }, h("label", { for: "recover-contact", text: t("recover.contact") }), contact),
      codeField, status, error,
      h("div", { class: "actions" }, send, open)));
}
