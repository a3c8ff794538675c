// Language choice and translation for the application, case, desk and room pages.
// No DOM here; the catalogs are in ./i18n/.
import en from "./i18n/en.js";
import zhCN from "./i18n/zh-CN.js";

export const DEFAULT_LANGUAGE = "zh-CN";
export const LANGUAGES = Object.freeze(["zh-CN", "en"]);
export const CATALOGS = Object.freeze({ "zh-CN": zhCN, en });

/** "en", "en-GB" -> "en"; "zh", "zh-CN", "zh-Hans" -> "zh-CN"; anything else -> null. */
export function normaliseLanguage(tag) {
  if (typeof tag !== "string" || !tag.trim()) return null;
  const lower = tag.trim().toLowerCase();
  if (lower === "en" || lower.startsWith("en-")) return "en";
  if (lower === "zh" || lower.startsWith("zh-")) return "zh-CN";
  return null;
}

/** `?lang=en|zh-CN` wins; otherwise the default, Chinese. */
export function chooseLanguage(search = "") {
  return normaliseLanguage(new URLSearchParams(search).get("lang")) ?? DEFAULT_LANGUAGE;
}

/**
 * `t(key, params)`: `{name}` placeholders filled from params; a missing key falls back to zh-CN, then
 * shows itself. `extra` maps a language to a page's own catalog, merged over the common one.
 */
export function makeTranslator(lang, extra = {}) {
  const chosen = CATALOGS[lang] ? lang : DEFAULT_LANGUAGE;
  const catalog = { ...CATALOGS[chosen], ...extra[chosen] };
  const fallback = { ...CATALOGS[DEFAULT_LANGUAGE], ...extra[DEFAULT_LANGUAGE] };
  const t = (key, params = {}) => {
    const template = catalog[key] ?? fallback[key] ?? key;
    return template.replace(/\{(\w+)\}/g, (match, name) =>
      Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : match);
  };
  t.lang = chosen;
  t.has = (key) => Object.prototype.hasOwnProperty.call(catalog, key);
  return t;
}

/**
 * The message for a failed call (an ApiError or SigningError): its code translated, with the
 * state a 409 names translated too. Unknown codes get a generic message that still names the code.
 */
export function errorMessage(t, error) {
  const code = error && typeof error.code === "string" ? error.code : "unknown";
  const state = error && typeof error.state === "string" ? error.state : null;
  const stateKey = state && ["state", "sessionState", "agreementState"].map((group) => `${group}.${state}`).find(t.has);
  const params = {
    code,
    state: stateKey ? t(stateKey) : state ?? t("error.someState"),
    requestId: error?.requestId ?? "",
    field: error?.field ?? "",
  };
  if (t.has(`error.${code}`)) return t(`error.${code}`, params);
  if (error?.status >= 500) return t("error.server", params);
  return t("error.unknown", params);
}
