// The one translator of the web client: language choice, catalogs, messages for failed calls.
// The common catalogs (./i18n/common.<lang>.js) hold what every page says: brand, states, roles,
// errors. Each page passes its own catalogs (./i18n/<page>.<lang>.js), merged over the common
// ones, so a page may reword a common key for itself. No DOM here.
import en from "./i18n/common.en.js";
import zhCN from "./i18n/common.zh-CN.js";

/** @typedef {"zh-CN" | "en"} Language */
/** @typedef {Readonly<Record<string, string>>} Catalog */
/** Page catalogs by language, merged over the common ones. @typedef {Partial<Record<Language, Catalog>>} PageCatalogs */

/**
 * `t(key, params)`: the text for `key`, with `{name}` placeholders filled from params.
 * @typedef {((key: string, params?: Record<string, unknown>) => string) & {lang: Language, has: (key: string) => boolean}} Translator
 */

/** @type {Language} */
export const DEFAULT_LANGUAGE = "zh-CN";
/** @type {readonly Language[]} */
export const LANGUAGES = Object.freeze(/** @type {Language[]} */ (["zh-CN", "en"]));
/** The common catalogs. @type {Readonly<Record<Language, Catalog>>} */
export const CATALOGS = Object.freeze({ "zh-CN": zhCN, en });

/**
 * "en", "en-GB" -> "en"; "zh", "zh-CN", "zh-Hans" -> "zh-CN"; anything else -> null.
 * @param {unknown} tag
 * @returns {Language | null}
 */
export function normaliseLanguage(tag) {
  if (typeof tag !== "string" || !tag.trim()) return null;
  const lower = tag.trim().toLowerCase();
  if (lower === "en" || lower.startsWith("en-")) return "en";
  if (lower === "zh" || lower.startsWith("zh-")) return "zh-CN";
  return null;
}

/**
 * `?lang=en|zh-CN` wins; otherwise the default, Chinese.
 * @param {string} [search] the page address's query
 * @returns {Language}
 */
export function chooseLanguage(search = "") {
  return normaliseLanguage(new URLSearchParams(search).get("lang")) ?? DEFAULT_LANGUAGE;
}

/**
 * A translator for `lang` (an unknown language gets the default): the page's catalog for that
 * language over the common one; a key missing there falls back to zh-CN, then shows itself.
 * @param {string} lang
 * @param {PageCatalogs} [extra] the page's own catalogs
 * @returns {Translator}
 */
export function makeTranslator(lang, extra = {}) {
  /** @type {Language} */
  const chosen = lang === "en" || lang === "zh-CN" ? lang : DEFAULT_LANGUAGE;
  /** @type {Catalog} */
  const catalog = { ...CATALOGS[chosen], ...extra[chosen] };
  /** @type {Catalog} */
  const fallback = { ...CATALOGS[DEFAULT_LANGUAGE], ...extra[DEFAULT_LANGUAGE] };
  const own = (/** @type {object} */ table, /** @type {string} */ key) => Object.prototype.hasOwnProperty.call(table, key);
  /** @param {string} key @param {Record<string, unknown>} [params] */
  const translate = (key, params = {}) => {
    const template = own(catalog, key) ? catalog[key] : own(fallback, key) ? fallback[key] : key;
    return template.replace(/\{(\w+)\}/g, (match, name) => (own(params, name) ? String(params[name]) : match));
  };
  return Object.assign(translate, { lang: chosen, has: (/** @type {string} */ key) => own(catalog, key) });
}

/**
 * What a failed call looks like to the translator: an ApiError, a SigningError, or anything thrown.
 * @typedef {{code?: unknown, state?: unknown, status?: unknown, requestId?: unknown, field?: unknown}} Failure
 */

/**
 * The message for a failed call: its code translated, with the state a 409 names translated too.
 * Unknown codes get a generic message that still names the code.
 * @param {Translator} t
 * @param {unknown} error
 */
export function errorMessage(t, error) {
  const failure = /** @type {Failure} */ (error && typeof error === "object" ? error : {});
  const code = typeof failure.code === "string" ? failure.code : "unknown";
  const state = typeof failure.state === "string" ? failure.state : null;
  const stateKey = state && ["state", "sessionState", "agreementState"].map((group) => `${group}.${state}`).find(t.has);
  const params = {
    code,
    state: stateKey ? t(stateKey) : state ?? t("error.someState"),
    requestId: failure.requestId ?? "",
    field: failure.field ?? "",
  };
  if (t.has(`error.${code}`)) return t(`error.${code}`, params);
  if (typeof failure.status === "number" && failure.status >= 500) return t("error.server", params);
  return t("error.unknown", params);
}
