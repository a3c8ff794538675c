// The public application form: checked field by field before sending, then the receipt.
import { createApi } from "../lib/api.js";
import { applicationField, buildApplication, overdueBucket, parseDays, PROPOSAL_MAX } from "../lib/application.js";
import { formatDateTime } from "../lib/dates.js";
import { CURRENCIES, formatMinor, parseMinor } from "../lib/money.js";
import { $, busy, copyText, fill, h } from "../ui/dom.js";
import en from "../lib/i18n/apply.en.js";
import zhCN from "../lib/i18n/apply.zh-CN.js";
import { startPage } from "../ui/page.js";

const api = createApi();
const form = $("apply-form");
const FIELDS = {
  "borrower.name": "f-name", "borrower.email": "f-email", "borrower.phone": "f-phone", lender: "f-lender",
  loan_reference: "f-loan_reference", currency: "f-currency", principal_minor: "f-principal",
  overdue_minor: "f-overdue", days_overdue: "f-days_overdue", proposal: "f-proposal",
};
const LABELS = {
  "borrower.name": "apply.name", "borrower.email": "apply.email", "borrower.phone": "apply.phone", lender: "apply.lender",
  loan_reference: "apply.loanReference", currency: "apply.currency", principal_minor: "apply.principal",
  overdue_minor: "apply.overdue", days_overdue: "apply.days", proposal: "apply.proposal",
};
let errors = {}; // field -> {key} (ours) or {server: message key}
let touched = new Set();
let receipt = null;
let formError = null; // {key} or {error}: redrawn in the chosen language

const page = startPage({ title: "apply.title", catalogs: { en, "zh-CN": zhCN }, render: () => renderAll() });

function values() {
  return {
    name: $("f-name").value, email: $("f-email").value, phone: $("f-phone").value, lender: $("f-lender").value,
    loan_reference: $("f-loan_reference").value, currency: $("f-currency").value, principal: $("f-principal").value,
    overdue: $("f-overdue").value, days_overdue: $("f-days_overdue").value, proposal: $("f-proposal").value,
  };
}

function fieldMessage(field, key) {
  const { t } = page;
  return t(`field.${key}`, { field: t(LABELS[field] ?? field), max: field === "proposal" ? PROPOSAL_MAX : 200 });
}

function showErrors() {
  for (const [field, inputId] of Object.entries(FIELDS)) {
    const error = errors[field];
    const node = $(`e-${field}`);
    const input = $(inputId);
    const show = error && (touched.has(field) || touched.has("*"));
    node.hidden = !show;
    node.textContent = show ? fieldMessage(field, error.key) : "";
    input.setAttribute("aria-invalid", show ? "true" : "false");
    input.closest(".field").classList.toggle("has-error", Boolean(show));
  }
}

function validate() {
  const result = buildApplication(values());
  const server = Object.fromEntries(Object.entries(errors).filter(([, e]) => e.server));
  errors = {};
  for (const [field, key] of Object.entries(result.errors)) errors[field] = { key };
  // A server complaint stays until that field is edited.
  for (const [field, error] of Object.entries(server)) if (!errors[field]) errors[field] = error;
  showErrors();
  // The summary "please correct the fields" goes once nothing is left to correct.
  if (formError?.key === "apply.fixErrors" && Object.keys(errors).length === 0) {
    formError = null;
    renderFormError();
  }
  return result;
}

function preview(inputId, previewId) {
  const currency = $("f-currency").value;
  const node = $(previewId);
  try {
    const minor = parseMinor($(inputId).value, currency);
    node.textContent = page.t("apply.amountPreview", { amount: formatMinor(minor, currency, page.t.lang) });
  } catch {
    node.textContent = "";
  }
}

function renderBucket() {
  const days = parseDays($("f-days_overdue").value);
  const node = $("bucket");
  if (days === null) {
    node.textContent = page.t("apply.bucketHint");
    node.dataset.bucket = "";
    return;
  }
  const bucket = overdueBucket(days);
  node.dataset.bucket = bucket;
  node.textContent = page.t(`bucket.${bucket}`);
}

function renderCounter() {
  const length = $("f-proposal").value.length;
  $("c-proposal").textContent = page.t("apply.counter", { count: length, max: PROPOSAL_MAX });
}

function renderCurrencies() {
  const chosen = $("f-currency").value || "CNY";
  fill($("f-currency"), ...CURRENCIES.map((code) => h("option", { value: code, text: page.t(`currency.${code}`) })));
  $("f-currency").value = chosen;
}

function renderReceipt() {
  if (!receipt) return;
  const link = `${location.origin}/case#${receipt.receipt_token}`;
  $("receipt-number").textContent = receipt.case_number;
  $("receipt-expires").textContent = formatDateTime(receipt.receipt_expires_at, page.t.lang);
  $("receipt-link").value = link;
  $("receipt-open").href = `${page.href("/case")}#${receipt.receipt_token}`;
}

function renderFormError() {
  const node = $("form-error");
  node.hidden = !formError;
  node.textContent = !formError ? "" : formError.key ? page.t(formError.key) : page.error(formError.error);
}

function renderAll() {
  renderFormError();
  renderCurrencies();
  preview("f-principal", "p-principal");
  preview("f-overdue", "p-overdue");
  renderBucket();
  renderCounter();
  showErrors();
  renderReceipt();
}

for (const [field, inputId] of Object.entries(FIELDS)) {
  const input = $(inputId);
  input.addEventListener("blur", () => {
    if (input.value.trim() !== "" || touched.has("*")) touched.add(field);
    validate();
  });
  input.addEventListener("input", () => {
    if (errors[field]?.server) delete errors[field];
    if (field === "borrower.email" || field === "borrower.phone") {
      for (const f of ["borrower.email", "borrower.phone"]) if (errors[f]?.server) delete errors[f];
    }
    if (touched.has(field) || touched.has("*")) validate();
  });
}
$("f-principal").addEventListener("input", () => preview("f-principal", "p-principal"));
$("f-overdue").addEventListener("input", () => preview("f-overdue", "p-overdue"));
$("f-currency").addEventListener("change", () => {
  preview("f-principal", "p-principal");
  preview("f-overdue", "p-overdue");
  validate();
});
$("f-days_overdue").addEventListener("input", renderBucket);
$("f-proposal").addEventListener("input", renderCounter);

form.addEventListener("submit", (event) => {
  event.preventDefault();
  touched.add("*");
  for (const f of Object.keys(FIELDS)) if (errors[f]?.server) delete errors[f];
  const { body } = validate();
  formError = null;
  renderFormError();
  if (!body) {
    formError = { key: "apply.fixErrors" };
    renderFormError();
    const first = Object.keys(FIELDS).find((field) => errors[field]);
    if (first) $(FIELDS[first]).focus();
    return;
  }
  busy($("apply-submit"), async () => {
    try {
      receipt = await api.post("/api/applications", body);
    } catch (error) {
      const field = error.status === 422 ? applicationField(error.field) : null;
      if (field) {
        errors[field] = { server: true, key: "server" };
        showErrors();
        $(FIELDS[field]).focus();
      }
      formError = field ? { key: "apply.fixErrors" } : { error };
      renderFormError();
      return;
    }
    form.hidden = true;
    document.querySelector(".page-head").hidden = true;
    $("receipt").hidden = false;
    renderReceipt();
    $("receipt").focus();
  });
});

$("receipt-copy").addEventListener("click", async () => {
  const ok = await copyText($("receipt-link").value, $("receipt-link"));
  page.toast(ok ? "ok" : "info", page.t(ok ? "common.copied" : "common.copyManual"));
});

renderAll();
