// The compliance page's words: its catalogs over the common ones, and problems and warnings in words.
// No DOM here: the verifier's tests render problems with it under Node.
import { makeTranslator } from "../../lib/i18n.js";
import en from "../../lib/i18n/compliance.en.js";
import zhCN from "../../lib/i18n/compliance.zh-CN.js";

/** @typedef {import("../../lib/i18n.js").Translator} Translator */

/** The compliance page's own catalogs (merged over the common ones by the translator). */
export const CATALOGS = Object.freeze({ "zh-CN": zhCN, en });

/** The one translator with this page's catalogs. @param {string} lang */
export const translator = (lang) => makeTranslator(lang, CATALOGS);

/**
 * A problem {code, params} in words: the object it concerns (if any), then what is wrong.
 * @param {Translator} t
 * @param {{code: string, params?: Record<string, any>}} problem
 */
export function problemText(t, problem) {
  const { subject, message } = problemParts(t, problem);
  return subject + message;
}

/**
 * A problem as {subject: "kind key: " or "", message}, to show the object apart from the fault.
 * @param {Translator} t
 * @param {{code: string, params?: Record<string, any>}} problem
 */
export function problemParts(t, { code, params = {} }) {
  const subject = params.key ? t("problem.object", { kind: t(`kind.${params.kind}`), key: params.key }) : "";
  let key = `problem.${code}`;
  if (code === "download_failed" && params.error === "record_corrupt") key = "problem.download_failed.record_corrupt";
  else if (code === "download_failed" && params.error === "network") key = "problem.download_failed.network";
  else if (code === "not_sealed_to_you" && !params.listed) key = "problem.not_sealed_to_you.unlisted";
  /** @type {Record<string, unknown>} */
  const words = { ...params };
  if (params.kind) words.kindLabel = t(`kind.${params.kind}`);
  for (const [name, value] of Object.entries(words)) {
    if (value !== null && typeof value === "object") words[name] = JSON.stringify(value);
  }
  return { subject, message: t(t.has(key) ? key : "problem.generic", { ...words, code }) };
}
