// Static checks of the landing, application, case and desk pages: CSP hygiene, no HTML from
// strings, and every message (and every error code the server sends) in both languages.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { CURRENCIES } from "../src/lib/money.js";
import { CATALOGS, chooseLanguage, DEFAULT_LANGUAGE, errorMessage, makeTranslator } from "../src/lib/i18n.js";
import { ApiError } from "../src/lib/api.js";
import applyEn from "../src/lib/i18n/apply.en.js";
import applyZh from "../src/lib/i18n/apply.zh-CN.js";
import caseEn from "../src/lib/i18n/case.en.js";
import caseZh from "../src/lib/i18n/case.zh-CN.js";
import deskEn from "../src/lib/i18n/desk.en.js";
import deskZh from "../src/lib/i18n/desk.zh-CN.js";
import indexEn from "../src/lib/i18n/index.en.js";
import indexZh from "../src/lib/i18n/index.zh-CN.js";
import complianceEn from "../src/lib/i18n/compliance.en.js";
import complianceZh from "../src/lib/i18n/compliance.zh-CN.js";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const read = (rel) => readFileSync(path.join(root, rel), "utf8");
const PAGES = ["index.html", "apply.html", "case.html", "desk.html"];
const walk = (dir) => readdirSync(path.join(root, dir), { withFileTypes: true })
  .flatMap((entry) => (entry.isDirectory() ? walk(`${dir}/${entry.name}`) : [`${dir}/${entry.name}`]));
// The modules of these pages (the compliance page's live in src/lib/compliance and src/pages/compliance.js,
// the room's in src/ui/room with its own catalogs: test/room-page.test.mjs).
const SOURCES = [
  ...walk("src/ui").filter((file) => !file.startsWith("src/ui/room/")), ...["index", "apply", "case", "desk"].map((p) => `src/pages/${p}.js`),
  ...["api", "money", "dates", "signing", "application", "agreement", "i18n"].map((m) => `src/lib/${m}.js`),
];
const zh = CATALOGS["zh-CN"];
/** Each page's own catalogs, merged over the common ones. */
const PAGE_CATALOGS = {
  index: { en: indexEn, "zh-CN": indexZh }, apply: { en: applyEn, "zh-CN": applyZh }, case: { en: caseEn, "zh-CN": caseZh },
  desk: { en: deskEn, "zh-CN": deskZh }, compliance: { en: complianceEn, "zh-CN": complianceZh },
};

/** The modules a page's bundle holds: its entry and every relative import, followed. */
function pageModules(name) {
  const seen = new Set();
  const stack = [`src/pages/${name}.js`];
  while (stack.length) {
    const file = stack.pop();
    if (seen.has(file)) continue;
    seen.add(file);
    for (const match of read(file).matchAll(/from "(\.[^"]+)"/g)) stack.push(path.posix.normalize(path.posix.join(path.posix.dirname(file), match[1])));
  }
  return [...seen].filter((file) => !file.startsWith("src/lib/i18n"));
}

/** Every error code the HTTP API can answer with, read from the server's source. */
function serverErrorCodes() {
  const codes = new Set();
  const dir = path.join(root, "..", "server");
  for (const file of readdirSync(dir).filter((name) => name.endsWith(".py"))) {
    const source = readFileSync(path.join(dir, file), "utf8");
    for (const pattern of [/code="([a-z_]+)"/g, /status, code = \d+, "([a-z_]+)"/g, /\{"error": "([a-z_]+)"/g,
      /_HTTP_CODES\.get\([^,]+, "([a-z_]+)"\)/g]) {
      for (const match of source.matchAll(pattern)) codes.add(match[1]);
    }
    const table = /_HTTP_CODES = \{([^}]*)\}/.exec(source);
    if (table) for (const match of table[1].matchAll(/"([a-z_]+)"/g)) codes.add(match[1]);
  }
  return codes;
}

test("both catalogs have exactly the same keys, none empty, placeholders alike (common and every page's)", () => {
  const holes = (text) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
  for (const [name, catalogs] of [["common", CATALOGS], ...Object.entries(PAGE_CATALOGS)]) {
    assert.deepEqual(Object.keys(catalogs.en).sort(), Object.keys(catalogs["zh-CN"]).sort(), name);
    for (const [lang, catalog] of Object.entries(catalogs)) {
      for (const [key, value] of Object.entries(catalog)) assert.ok(value.trim(), `${name} ${lang}: ${key} is empty`);
    }
    for (const key of Object.keys(catalogs["zh-CN"])) assert.deepEqual(holes(catalogs.en[key]), holes(catalogs["zh-CN"][key]), `${name}: ${key}`);
  }
});

test("a page catalog rewords a common key or adds its own, never repeats the common words", () => {
  for (const [name, catalogs] of Object.entries(PAGE_CATALOGS)) {
    const repeated = Object.keys(catalogs.en).filter((key) => CATALOGS.en[key] === catalogs.en[key] && zh[key] === catalogs["zh-CN"][key]);
    assert.deepEqual(repeated, [], name);
    assert.deepEqual(Object.keys(catalogs.en).filter((key) => key.startsWith("error.")), [], `${name}: errors are common`);
  }
  const t = makeTranslator("en", PAGE_CATALOGS.compliance);
  assert.equal(t("role.mediator"), "mediator");
  assert.equal(makeTranslator("en")("role.mediator"), "Mediator");
  assert.equal(t("app.brand"), CATALOGS.en["app.brand"]);
  assert.ok(t.has("problem.generic") && !makeTranslator("en").has("problem.generic"));
  assert.equal(makeTranslator("fr", PAGE_CATALOGS.compliance)("problem.generic", { code: "x" }).includes("x"), true);
});

test("every error code the server sends has a message in both languages", () => {
  const codes = serverErrorCodes();
  for (const expected of ["illegal_transition", "parties_unverified", "invalid_field", "bad_credentials", "internal", "http_error"]) {
    assert.ok(codes.has(expected), `the scan of server/*.py missed ${expected}`);
  }
  const client = ["network", "bad_response", "canonical_mismatch", "webcrypto_unsupported", "ed25519_unsupported", "bad_base64url",
    "verify_reference_missing", "reject_reason_missing", "assign_nothing", "propose_start_missing", "propose_start_past", "propose_duration"];
  for (const lang of Object.keys(CATALOGS)) {
    const t = makeTranslator(lang);
    for (const code of [...codes, ...client]) assert.ok(t.has(`error.${code}`), `${lang}: error.${code}`);
  }
});

test("a 409 names the state it found, translated", () => {
  const error = new ApiError("illegal_transition", 'case cas_1 is in state "closed"; cannot close (allowed in: accepted, scheduled)',
    { status: 409, state: "closed" });
  assert.equal(errorMessage(makeTranslator("zh-CN"), error), "案件当前处于“已结案”状态，不能进行此操作。请刷新页面查看最新状态。");
  assert.match(errorMessage(makeTranslator("en"), error), /The case is “Closed”/);
  const session = new ApiError("session_not_confirmed", 'session ses_1 is in state "proposed"; links are issued only for confirmed sessions',
    { status: 409, state: "proposed" });
  assert.match(errorMessage(makeTranslator("en"), session), /“Proposed”/);
  assert.match(errorMessage(makeTranslator("en"), new ApiError("something_new", "x", { status: 400 })), /something_new/);
  assert.match(errorMessage(makeTranslator("zh-CN"), new ApiError("http_502", "x", { status: 502 })), /服务器出错/);
});

test("the language: ?lang=en chooses English, anything else the default Chinese", () => {
  assert.equal(DEFAULT_LANGUAGE, "zh-CN");
  assert.equal(chooseLanguage("?lang=en"), "en");
  assert.equal(chooseLanguage("?lang=en-GB"), "en");
  assert.equal(chooseLanguage("?lang=zh-CN"), "zh-CN");
  assert.equal(chooseLanguage("?lang=fr"), "zh-CN");
  assert.equal(chooseLanguage(""), "zh-CN");
  assert.equal(makeTranslator("en", PAGE_CATALOGS.desk)("pager.text", { page: 1, pages: 2, total: 11 }), "Page 1 of 2 · 11 in all");
});

test("every message key the pages use exists in the common catalog or the page's own", () => {
  let total = 0;
  for (const name of ["index", "apply", "case", "desk"]) {
    const catalog = { ...zh, ...PAGE_CATALOGS[name]["zh-CN"] };
    const prefixes = new Set(Object.keys(catalog).map((key) => key.split(".")[0]));
    const used = new Set();
    for (const match of read(`${name}.html`).matchAll(/data-i18n(?:-placeholder|-aria-label)?="([^"]+)"/g)) used.add(match[1]);
    for (const file of pageModules(name).filter((f) => f.startsWith("src/ui/") || f.startsWith("src/pages/"))) {
      for (const match of read(file).matchAll(/"([a-z][a-zA-Z0-9_]*(?:\.[a-zA-Z0-9_]+)+)"/g)) {
        if (prefixes.has(match[1].split(".")[0])) used.add(match[1]);
      }
    }
    total += used.size;
    assert.deepEqual([...used].filter((key) => !(key in catalog)).sort(), [], name);
  }
  assert.ok(total > 250, `found only ${total} keys`);
  // Keys built at run time.
  const used = new Set();
  const families = {
    state: ["submitted", "accepted", "scheduled", "rejected", "closed"], "case.state": ["submitted", "accepted", "scheduled", "rejected", "closed"],
    sessionState: ["proposed", "confirmed", "cancelled"], agreementState: ["draft", "signed", "void"],
    bucket: ["short", "medium", "long"], mode: ["video", "chat"], outcome: ["settled", "not_settled", "withdrawn"],
    method: ["id_card", "passport", "bank_authorization", "video_check", "other"],
    role: ["case_officer", "mediator", "bank_representative", "compliance_officer", "administrator"], signer: ["borrower", "lender"],
    progress: ["label", "apply", "review", "schedule", "mediate", "agree", "close"],
    "list.lead": ["case_officer", "mediator", "bank_representative", "compliance_officer"], "links.state": ["active", "expired", "revoked"],
    feedback: ["rating1", "rating2", "rating3", "rating4", "rating5"], currency: CURRENCIES,
    notice: ["receipt", "accepted", "rejected", "schedule", "join_link", "closed"],
    "editor.error": ["noInstalments", "tooManyInstalments", "pastDate", "dateOrder", "sumMismatch"],
    field: ["required", "tooLong", "control", "email", "phone", "contact", "loanReference", "positive", "days", "server",
      "username", "password", "amount.invalid", "amount.decimals", "amount.tooLarge", "amount.empty"],
  };
  for (const [family, names] of Object.entries(families)) for (const name of names) used.add(`${family}.${name}`);
  const desk = { ...zh, ...PAGE_CATALOGS.desk["zh-CN"] }; // the desk's families are its own; the rest are common
  assert.deepEqual([...used].filter((key) => !(key in (/^(list|links|editor)\./.test(key) ? desk : zh))).sort(), []);
});

test("pages load only our own module and stylesheet: no inline script or style (CSP)", () => {
  for (const page of PAGES) {
    const html = read(page);
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    assert.equal(scripts.length, 1, page);
    assert.match(scripts[0][1], new RegExp(`type="module" src="/static/dist/${page.replace(".html", "")}\\.js"`), page);
    assert.equal(scripts[0][2].trim(), "", `${page}: inline script`);
    assert.doesNotMatch(html, /<style\b/i, `${page}: <style>`);
    assert.doesNotMatch(html, /\sstyle=/i, `${page}: style attribute`);
    assert.doesNotMatch(html, /\son[a-z]+=/i, `${page}: inline event handler`);
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//i, `${page}: another origin`);
    assert.match(html, /<link rel="stylesheet" href="\/static\/css\/base\.css">\s*<link rel="stylesheet" href="\/static\/css\/pages\.css">/, page);
    assert.match(html, /<html lang="zh-CN">/, page);
    assert.match(html, /id="lang-select"/, page);
    assert.match(html, /id="toasts"/, page);
  }
});

test("the pages' modules never turn strings into HTML or code", () => {
  for (const file of SOURCES) {
    const source = read(file);
    for (const banned of [/\.innerHTML\b/, /\.outerHTML\b/, /insertAdjacentHTML/, /document\.write/, /\beval\(/, /new Function\(/,
      /\.style\.cssText/, /setAttribute\(\s*"style"/, /createContextualFragment/]) {
      assert.doesNotMatch(source, banned, `${file}: ${banned}`);
    }
  }
  // The lib modules have no DOM, so they run under Node too.
  for (const file of SOURCES.filter((f) => f.startsWith("src/lib/"))) {
    assert.doesNotMatch(read(file), /(^|[^.\w])(document|window)\./m, file);
  }
});

test("one set of design tokens: base.css defines every custom property the stylesheets use, and only it defines any", () => {
  const sheets = readdirSync(path.join(root, "css")).filter((name) => name.endsWith(".css"));
  assert.ok(sheets.includes("base.css") && sheets.length >= 4, sheets.join(" "));
  const defined = (css) => new Set([...css.matchAll(/(?:^|[{;\s])(--[a-z0-9-]+)\s*:/g)].map((m) => m[1]));
  const base = defined(read("css/base.css"));
  assert.ok(base.size >= 25, `base.css defines only ${base.size} properties`);
  for (const sheet of sheets) {
    const css = read(`css/${sheet}`);
    const used = [...new Set([...css.matchAll(/var\(\s*(--[a-z0-9-]+)/g)].map((m) => m[1]))];
    assert.deepEqual(used.filter((name) => !base.has(name)), [], `${sheet} uses a property base.css does not define`);
    if (sheet !== "base.css") assert.deepEqual([...defined(css)], [], `${sheet} defines its own properties`);
  }
  for (const page of [...PAGES, "compliance.html"]) {
    const links = [...read(page).matchAll(/<link rel="stylesheet" href="\/static\/css\/([a-z]+\.css)">/g)].map((m) => m[1]);
    assert.equal(links[0], "base.css", `${page} loads base.css first`);
    assert.equal(links.length, 2, `${page}: base.css and the page's own stylesheet`);
  }
});
