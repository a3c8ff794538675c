// The public application: the same rules the API enforces, checked before sending. No DOM here.
import { amountErrorCode, parseMinor } from "./money.js";

// Patterns of server/schemas.py (BorrowerIn, ApplicationIn).
export const EMAIL = /^[^@\s\x00-\x1f]{1,64}@[A-Za-z0-9.-]{1,189}\.[A-Za-z]{2,24}$/;
export const PHONE = /^\+?[0-9][0-9 -]{5,30}$/;
export const LOAN_REFERENCE = /^[A-Za-z0-9][A-Za-z0-9/_.-]{0,63}$/;
export const CURRENCY = /^[A-Z]{3}$/;
export const PROPOSAL_MAX = 4000;
// Control characters the API refuses in one-line fields (and, but for tab and newline, in paragraphs).
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u2028\u2029]/;
const LINE_CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** short < 30 days, medium 30–90, long > 90 (server/lifecycle.py). @param {number} days */
export function overdueBucket(days) {
  if (days < 30) return "short";
  if (days <= 90) return "medium";
  return "long";
}

/** A whole number of days from its text, or null. @param {unknown} text */
export function parseDays(text) {
  const trimmed = String(text ?? "").trim();
  if (!/^\d{1,5}$/.test(trimmed)) return null;
  const days = Number(trimmed);
  return days <= 36500 ? days : null;
}

/** A parseMinor failure as a field error key. @param {unknown} error */
function amountError(error) {
  const code = amountErrorCode(error);
  return code === "amount.empty" ? "required" : code;
}

/**
 * Form values (strings) -> `{body, errors}`: `body` is the POST /api/applications body when
 * `errors` is empty; `errors` maps a field name to a message key (translated by the page).
 * Field names are the API's paths: borrower.name, borrower.email, borrower.phone, lender,
 * loan_reference, currency, principal_minor, overdue_minor, days_overdue, proposal.
 * @param {Record<string, unknown>} values
 * @returns {{body: Record<string, unknown> | null, errors: Record<string, string>}}
 */
export function buildApplication(values) {
  /** @type {Record<string, string>} */
  const errors = {};
  const text = (/** @type {string} */ name) => String(values[name] ?? "").trim();
  const name = text("name");
  const email = text("email");
  const phone = text("phone");
  const lender = text("lender");
  const loanReference = text("loan_reference");
  const currency = text("currency");
  const proposal = String(values.proposal ?? "").trim();

  if (!name) errors["borrower.name"] = "required";
  else if (name.length > 200) errors["borrower.name"] = "tooLong";
  else if (LINE_CONTROL.test(name)) errors["borrower.name"] = "control";
  if (email && (email.length > 254 || !EMAIL.test(email))) errors["borrower.email"] = "email";
  if (phone && !PHONE.test(phone)) errors["borrower.phone"] = "phone";
  if (!email && !phone) errors["borrower.email"] = "contact";
  if (!lender) errors.lender = "required";
  else if (lender.length > 200) errors.lender = "tooLong";
  else if (LINE_CONTROL.test(lender)) errors.lender = "control";
  if (!loanReference) errors.loan_reference = "required";
  else if (!LOAN_REFERENCE.test(loanReference)) errors.loan_reference = "loanReference";
  if (!CURRENCY.test(currency)) errors.currency = "required";

  let principal = null;
  let overdue = null;
  if (!errors.currency) {
    try {
      principal = parseMinor(values.principal, currency);
      if (principal < 1) errors.principal_minor = "positive";
    } catch (error) {
      errors.principal_minor = amountError(error);
    }
    try {
      overdue = parseMinor(values.overdue, currency);
    } catch (error) {
      errors.overdue_minor = amountError(error);
    }
  }
  const daysText = String(values.days_overdue ?? "").trim();
  const days = parseDays(daysText);
  if (!daysText) errors.days_overdue = "required";
  else if (days === null) errors.days_overdue = "days";
  if (proposal.length > PROPOSAL_MAX) errors.proposal = "tooLong";
  else if (CONTROL.test(proposal)) errors.proposal = "control";

  if (Object.keys(errors).length) return { body: null, errors };
  /** @type {{name: string, email?: string, phone?: string}} */
  const borrower = { name };
  if (email) borrower.email = email;
  if (phone) borrower.phone = phone;
  return {
    errors,
    body: {
      borrower, lender, loan_reference: loanReference, currency, principal_minor: principal,
      overdue_minor: overdue, days_overdue: days, proposal,
    },
  };
}

/**
 * The form field a server 422 names ("borrower.email", "borrower", "body"...) -> one of ours.
 * The API reports a missing contact on "borrower" itself.
 * @param {string | null | undefined} serverField
 * @returns {string | null}
 */
export function applicationField(serverField) {
  if (!serverField) return null;
  if (serverField === "borrower") return "borrower.email";
  const known = ["borrower.name", "borrower.email", "borrower.phone", "lender", "loan_reference", "currency",
    "principal_minor", "overdue_minor", "days_overdue", "proposal"];
  return known.find((field) => serverField === field || serverField.startsWith(`${field}.`)) ?? null;
}
