// The repayment agreement draft: amounts in minor units, instalments, and the checks the API makes.
import { addMonths } from "./dates.js";
import { MAX_MINOR, amountErrorCode, parseMinor } from "./money.js";

export const TERMS_MAX = 8000;
export const MAX_INSTALMENTS = 120;

/** @typedef {{due_date: string, amount_minor: number}} Instalment */

/**
 * Sum of minor-unit amounts (exact: every amount is a safe integer, and so is their sum); what is not one counts 0.
 * @param {Array<number | null>} amounts
 */
export function sumMinor(amounts) {
  return amounts.reduce((/** @type {number} */ total, amount) => total + (typeof amount === "number" && Number.isSafeInteger(amount) ? amount : 0), 0);
}

/**
 * `count` instalments adding up exactly to `totalMinor`, a calendar month apart from `firstDate`
 * ("YYYY-MM-DD"); the remainder of the division goes to the last instalment.
 * @param {number} totalMinor
 * @param {number} count
 * @param {string} firstDate
 * @returns {Instalment[]}
 */
export function splitEvenly(totalMinor, count, firstDate) {
  if (!Number.isSafeInteger(totalMinor) || totalMinor < count || count < 1) return [];
  const base = Math.floor(totalMinor / count);
  return Array.from({ length: count }, (_, i) => ({
    due_date: addMonths(firstDate, i),
    amount_minor: i === count - 1 ? totalMinor - base * (count - 1) : base,
  }));
}

/**
 * Draft form values -> `{body, errors}` for PUT /api/cases/{case_id}/agreement.
 * values: {currency, settled, waived, instalments: [{due_date, amount}], terms}, amounts as typed.
 * errors: {settled, waived, terms, instalments, "instalments.<i>.due_date", "instalments.<i>.amount"}
 * -> message keys; `today` ("YYYY-MM-DD") bounds the first due date as the API does.
 * @param {{currency: string, settled?: unknown, waived?: unknown, instalments?: Array<{due_date?: string, amount?: unknown}>,
 *   terms?: unknown}} values
 * @param {{today?: string}} [options]
 */
export function buildAgreement(values, { today } = {}) {
  /** @type {Record<string, string>} */
  const errors = {};
  const currency = values.currency;
  let settled = null;
  let waived = 0;
  try {
    settled = parseMinor(values.settled, currency);
    if (settled < 1) errors.settled = "positive";
  } catch (error) {
    errors.settled = amountErrorCode(error) === "amount.empty" ? "required" : amountErrorCode(error);
  }
  if (String(values.waived ?? "").trim() !== "") {
    try {
      waived = parseMinor(values.waived, currency);
    } catch (error) {
      errors.waived = amountErrorCode(error);
    }
  }
  const rows = values.instalments ?? [];
  if (rows.length === 0) errors.instalments = "agreement.noInstalments";
  if (rows.length > MAX_INSTALMENTS) errors.instalments = "agreement.tooManyInstalments";
  /** @type {Array<{due_date: string, amount_minor: number | null}>} */
  const instalments = [];
  rows.forEach((row, i) => {
    const date = String(row.due_date ?? "");
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) errors[`instalments.${i}.due_date`] = "required";
    else if (i === 0 && today && date < today) errors[`instalments.${i}.due_date`] = "agreement.pastDate";
    else if (i > 0 && /^\d{4}-\d{2}-\d{2}$/.test(rows[i - 1].due_date ?? "") && date <= String(rows[i - 1].due_date)) {
      errors[`instalments.${i}.due_date`] = "agreement.dateOrder";
    }
    try {
      const amount = parseMinor(row.amount, currency);
      if (amount < 1) errors[`instalments.${i}.amount`] = "positive";
      instalments.push({ due_date: date, amount_minor: amount });
    } catch (error) {
      errors[`instalments.${i}.amount`] = amountErrorCode(error) === "amount.empty" ? "required" : amountErrorCode(error);
      instalments.push({ due_date: date, amount_minor: null });
    }
  });
  const total = sumMinor(instalments.map((item) => item.amount_minor));
  if (settled !== null && !errors.settled && rows.length && !Object.keys(errors).some((k) => k.endsWith(".amount"))
      && total !== settled) {
    errors.instalments = "agreement.sumMismatch";
  }
  if (total > MAX_MINOR) errors.instalments = "amount.tooLarge";
  const terms = String(values.terms ?? "").trim();
  if (terms.length > TERMS_MAX) errors.terms = "tooLong";
  if (Object.keys(errors).length) return { body: null, errors, total, settled };
  return {
    errors, total, settled,
    body: { currency, settled_amount_minor: settled, waived_penalties_minor: waived, instalments, terms },
  };
}
