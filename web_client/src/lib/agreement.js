// The repayment agreement draft: amounts in minor units, instalments, and the checks the API makes.
import { addMonths } from "./dates.js";
import { MAX_MINOR, parseMinor } from "./money.js";

export const TERMS_MAX = 8000;
export const MAX_INSTALMENTS = 120;

/** Sum of minor-unit amounts (exact: every amount is a safe integer, and so is their sum). */
export function sumMinor(amounts) {
  return amounts.reduce((total, amount) => total + (Number.isSafeInteger(amount) ? amount : 0), 0);
}

/**
 * `count` instalments adding up exactly to `totalMinor`, a calendar month apart from `firstDate`
 * ("YYYY-MM-DD"); the remainder of the division goes to the last instalment.
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
 */
export function buildAgreement(values, { today } = {}) {
  const errors = {};
  const currency = values.currency;
  let settled = null;
  let waived = 0;
  try {
    settled = parseMinor(values.settled, currency);
    if (settled < 1) errors.settled = "positive";
  } catch (error) {
    errors.settled = error.code === "amount.empty" ? "required" : error.code;
  }
  if (String(values.waived ?? "").trim() !== "") {
    try {
      waived = parseMinor(values.waived, currency);
    } catch (error) {
      errors.waived = error.code;
    }
  }
  const rows = values.instalments ?? [];
  if (rows.length === 0) errors.instalments = "agreement.noInstalments";
  if (rows.length > MAX_INSTALMENTS) errors.instalments = "agreement.tooManyInstalments";
  const instalments = [];
  rows.forEach((row, i) => {
    const date = String(row.due_date ?? "");
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) errors[`instalments.${i}.due_date`] = "required";
    else if (i === 0 && today && date < today) errors[`instalments.${i}.due_date`] = "agreement.pastDate";
    else if (i > 0 && /^\d{4}-\d{2}-\d{2}$/.test(rows[i - 1].due_date ?? "") && date <= rows[i - 1].due_date) {
      errors[`instalments.${i}.due_date`] = "agreement.dateOrder";
    }
    try {
      const amount = parseMinor(row.amount, currency);
      if (amount < 1) errors[`instalments.${i}.amount`] = "positive";
      instalments.push({ due_date: date, amount_minor: amount });
    } catch (error) {
      errors[`instalments.${i}.amount`] = error.code === "amount.empty" ? "required" : error.code;
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
