// What every page shares: language (with the switch in the header), static translations, notices.
import { chooseLanguage, errorMessage, makeTranslator } from "../lib/i18n.js";
import { $, h } from "./dom.js";

/**
 * Start a page: choose the language, translate the static markup, wire the language switch.
 * `catalogs` are the page's own (./lib/i18n/<page>.<lang>.js), merged over the common ones.
 * `render` is called again after every language change (the page redraws what it built).
 */
export function startPage({ title, catalogs = {}, render = () => {} }) {
  const page = { t: makeTranslator(chooseLanguage(location.search), catalogs), renderers: [render] };

  function translateStatic() {
    const { t } = page;
    document.documentElement.lang = t.lang;
    document.title = `${t(title)} · ${t("app.brand")}`;
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    for (const node of document.querySelectorAll("[data-i18n-placeholder]")) node.placeholder = t(node.dataset.i18nPlaceholder);
    for (const node of document.querySelectorAll("[data-i18n-aria-label]")) node.setAttribute("aria-label", t(node.dataset.i18nAriaLabel));
    // Links to our other pages keep the language.
    for (const link of document.querySelectorAll("a[data-page-link]")) link.href = page.href(link.dataset.pageLink);
    const switcher = $("lang-select");
    if (switcher) switcher.value = t.lang;
  }

  page.href = (path) => (page.t.lang === "en" ? `${path}${path.includes("?") ? "&" : "?"}lang=en` : path);

  page.setLanguage = (lang) => {
    page.t = makeTranslator(lang, catalogs);
    const url = new URL(location.href);
    if (page.t.lang === "zh-CN") url.searchParams.delete("lang");
    else url.searchParams.set("lang", page.t.lang);
    history.replaceState(history.state, "", url.pathname + url.search + url.hash);
    translateStatic();
    for (const renderer of page.renderers) renderer(page.t);
  };

  page.onLanguage = (renderer) => page.renderers.push(renderer);

  /** A transient notice: tone "ok" | "error" | "info". */
  page.toast = (tone, text) => {
    const stack = $("toasts");
    if (!stack) return;
    const item = h("div", { class: `toast toast-${tone}`, role: tone === "error" ? "alert" : "status", testid: "toast",
      dataset: { tone } }, h("span", { class: "toast-text", text }),
    h("button", { type: "button", class: "toast-close", "aria-label": page.t("common.dismiss"), text: "×",
      on: { click: () => item.remove() } }));
    stack.append(item);
    setTimeout(() => item.remove(), tone === "error" ? 12000 : 6000);
  };
  page.fail = (error) => page.toast("error", errorMessage(page.t, error));
  page.error = (error) => errorMessage(page.t, error);

  $("lang-select")?.addEventListener("change", (event) => page.setLanguage(event.target.value));
  translateStatic();
  return page;
}

/** Keep a bearer token out of the address bar: read from the fragment, then kept for this tab only. */
export function takeFragmentToken(storageKey, pattern) {
  const fragment = decodeURIComponent(location.hash.replace(/^#/, ""));
  if (fragment) {
    history.replaceState(history.state, "", location.pathname + location.search);
    if (pattern.test(fragment)) {
      try {
        sessionStorage.setItem(storageKey, fragment);
      } catch {
        /* storage disabled: the token lives only in this page */
      }
      return fragment;
    }
  }
  try {
    const kept = sessionStorage.getItem(storageKey);
    return kept && pattern.test(kept) ? kept : null;
  } catch {
    return null;
  }
}
