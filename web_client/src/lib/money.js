// Amounts: typed in major units as decimal strings, kept and sent as integer minor units.
// Parsing never goes through floating point: "0.1" + "0.2" style errors cannot happen.

export const MAX_MINOR = 10 ** 15; // the API's upper bound for every amount
export const CURRENCIES = Object.freeze(["CNY", "HKD", "USD", "EUR", "GBP", "JPY"]);

/** @type {Map<string, number>} */
const exponents = new Map();

/**
 * Digits after the decimal point of `currency` (ISO 4217 via Intl): CNY 2, JPY 0, KWD 3.
 * @param {string} currency
 * @returns {number}
 */
export function minorDigits(currency) {
  let digits = exponents.get(currency);
  if (digits === undefined) {
    try {
      digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ?? 2;
    } catch {
      digits = 2;
    }
    exponents.set(currency, digits);
  }
  return digits;
}

/**
 * "1,234.56" in `currency` -> 123456. Throws an Error whose `.code` is one of
 * amount.empty, amount.invalid, amount.decimals (more decimals than the currency has), amount.tooLarge.
 * Accepts digits with optional thousands separators (, or space or the full-width ，) and one decimal point.
 * @param {unknown} text
 * @param {string} currency
 * @returns {number}
 */
export function parseMinor(text, currency) {
  const fail = (/** @type {string} */ code) => Object.assign(new Error(code), { code });
  const cleaned = String(text ?? "").trim().replace(/[\s,，\u00a0\u202f]/g, "").replace(/^[¥$€£]/, "").replace("．", ".");
  if (cleaned === "") throw fail("amount.empty");
  const match = /^(\d+)(?:\.(\d*))?$/.exec(cleaned);
  if (!match) throw fail("amount.invalid");
  const digits = minorDigits(currency);
  const fraction = (match[2] ?? "").replace(/0+$/, "");
  if (fraction.length > digits) throw fail("amount.decimals");
  const minor = BigInt(match[1]) * 10n ** BigInt(digits) + BigInt((fraction || "0").padEnd(digits, "0") || "0");
  if (minor > BigInt(MAX_MINOR)) throw fail("amount.tooLarge");
  return Number(minor);
}

/**
 * The message key of a parseMinor failure (amount.empty, amount.invalid, ...); anything else is amount.invalid.
 * @param {unknown} error
 * @returns {string}
 */
export function amountErrorCode(error) {
  const code = error && typeof error === "object" ? /** @type {{code?: unknown}} */ (error).code : null;
  return typeof code === "string" ? code : "amount.invalid";
}

/**
 * 123456 in CNY -> "1234.56": the plain decimal string of a minor-unit amount (for inputs).
 * @param {number | bigint} minor
 * @param {string} currency
 */
export function minorToDecimal(minor, currency) {
  const digits = minorDigits(currency);
  const value = BigInt(minor);
  const negative = value < 0n;
  const absolute = (negative ? -value : value).toString().padStart(digits + 1, "0");
  const whole = absolute.slice(0, absolute.length - digits);
  const fraction = digits ? `.${absolute.slice(absolute.length - digits)}` : "";
  return `${negative ? "-" : ""}${whole}${fraction}`;
}

/**
 * 123456 in CNY, zh-CN -> "¥1,234.56"; in en -> "CN¥1,234.56". Exact for every amount the API allows.
 * @param {number | bigint} minor
 * @param {string} currency
 * @param {string} lang
 */
export function formatMinor(minor, currency, lang) {
  const decimal = minorToDecimal(minor, currency);
  const digits = minorDigits(currency);
  let format;
  try {
    format = new Intl.NumberFormat(lang, { style: "currency", currency, minimumFractionDigits: digits, maximumFractionDigits: digits });
  } catch {
    return `${currency} ${decimal}`;
  }
  // A numeric string is formatted as an exact decimal (Intl.NumberFormat v3), never as a double.
  return format.format(/** @type {Intl.StringNumericLiteral} */ (decimal));
}
