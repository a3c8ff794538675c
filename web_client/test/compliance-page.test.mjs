// Static checks of the compliance page: CSP hygiene, text only as text, DOM-free modules, i18n coverage.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { CATALOGS as COMMON, chooseLanguage, makeTranslator } from "../src/lib/i18n.js";
import { CATALOGS as OWN, translator } from "../src/ui/compliance/text.js";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const read = (rel) => readFileSync(path.join(root, rel), "utf8");
const html = read("compliance.html");
// The page: its entry and its areas (src/ui/compliance/*.js), read as one source.
const uiDir = "src/ui/compliance";
const page = [read("src/pages/compliance.js"), ...readdirSync(path.join(root, uiDir)).filter((f) => f.endsWith(".js")).sort()
  .map((f) => read(`${uiDir}/${f}`))].join("\n");
const pinModule = read(`${uiDir}/pin.js`);
const pageWithoutPin = [read("src/pages/compliance.js"), ...readdirSync(path.join(root, uiDir))
  .filter((f) => f.endsWith(".js") && f !== "pin.js").sort().map((f) => read(`${uiDir}/${f}`))].join("\n");
/** What the compliance page can say: its own catalogs over the common ones. */
const CATALOGS = Object.fromEntries(Object.keys(OWN).map((lang) => [lang, { ...COMMON[lang], ...OWN[lang] }]));
const libDir = "src/lib/compliance";
const lib = Object.fromEntries(readdirSync(path.join(root, libDir)).filter((f) => f.endsWith(".js"))
  .map((f) => [f, read(`${libDir}/${f}`)]));
const withoutComments = (src) => src.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:\\])\/\/.*$/gm, "$1");

test("compliance catalogs have the same keys in both languages, none empty", () => {
  const zh = Object.keys(CATALOGS["zh-CN"]).sort();
  assert.deepEqual(Object.keys(CATALOGS.en).sort(), zh);
  for (const [lang, catalog] of Object.entries(CATALOGS)) {
    for (const [key, value] of Object.entries(catalog)) assert.ok(value.trim(), `${lang}: ${key} is empty`);
  }
  assert.equal(chooseLanguage(""), "zh-CN");
  assert.equal(chooseLanguage("?lang=en"), "en");
  assert.equal(makeTranslator("fr").lang, "zh-CN");
  assert.equal(translator("fr").lang, "zh-CN");
  assert.equal(translator("en")("app.title"), OWN.en["app.title"]);
});

test("compliance page: one translator, one API client, one shell (no second copy of any)", () => {
  assert.match(read("src/pages/compliance.js"), /startPage\(/);
  assert.doesNotMatch(page, /class \w*ApiError|function makeTranslator|function chooseLanguage|function translateStatic/);
  assert.doesNotMatch(read("src/lib/compliance/api.js"), /class |fetch\(/);
  for (const file of ["src/pages/compliance.js", ...readdirSync(path.join(root, uiDir)).map((f) => `${uiDir}/${f}`)]) {
    assert.ok(read(file).split("\n").length <= 600, `${file} is over 600 lines`);
  }
});

test("compliance page markup: no inline script or style, the bundle and stylesheet from our origin", () => {
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, "inline script");
  assert.doesNotMatch(html, /<style/i);
  assert.doesNotMatch(html, /\sstyle=/i);
  assert.doesNotMatch(html, /\son[a-z]+=/i, "inline event handler");
  assert.match(html, /<script type="module" src="\/static\/dist\/compliance.js"><\/script>/);
  assert.match(html, /<link rel="stylesheet" href="\/static\/css\/base.css">\s*<link rel="stylesheet" href="\/static\/css\/compliance.css">/);
  assert.doesNotMatch(html, /https?:\/\//, "nothing from another origin");
});

test("compliance page text: every data-i18n key and every literal t() key exists", () => {
  const keys = new Set(Object.keys(CATALOGS["zh-CN"]));
  for (const [, key] of html.matchAll(/data-i18n(?:-placeholder)?="([^"]+)"/g)) assert.ok(keys.has(key), key);
  for (const [, key] of page.matchAll(/\bt\(\s*"([a-zA-Z][\w.]*)"/g)) assert.ok(keys.has(key), key);
  for (const [, key] of page.matchAll(/key: "([a-z][\w.]+)"/g)) assert.ok(keys.has(key), key);
  for (const [, key] of page.matchAll(/setKeyStatus\("\w+", "([\w.]+)"/g)) assert.ok(keys.has(key), key);
});

test("compliance every problem and warning code the library reports has words in both languages", () => {
  const source = Object.values(lib).join("\n");
  const problems = new Set([...source.matchAll(/code: "([a-z_0-9]+)"/g)].map((m) => m[1]));
  for (const [, code] of source.matchAll(/report\.problem\([^,]+, "([a-z_0-9]+)"/g)) problems.add(code);
  for (const [, code] of source.matchAll(/new IdentityError\("([a-z_]+)"/g)) problems.add(`identity:${code}`);
  const warnings = new Set([...source.matchAll(/report\.warning\("([a-z_0-9]+)"/g)].map((m) => m[1]));
  assert.ok(problems.size > 30 && warnings.size >= 4, `${problems.size} problems, ${warnings.size} warnings`);
  for (const catalog of Object.values(CATALOGS)) {
    for (const code of problems) {
      const key = code.startsWith("identity:") ? `identity.error.${code.slice(9)}` : `problem.${code}`;
      assert.ok(catalog[key], key);
    }
    for (const code of warnings) assert.ok(catalog[`warning.${code}`], `warning.${code}`);
  }
});

test("compliance record text reaches the DOM only as text; the library never touches the DOM", () => {
  for (const [name, src] of [["page", page], ...Object.entries(lib)]) {
    assert.doesNotMatch(withoutComments(src), /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/,
      name);
  }
  for (const [name, src] of Object.entries(lib)) {
    assert.doesNotMatch(withoutComments(src), /\bdocument\.|\bwindow\.|localStorage|sessionStorage/, name);
  }
  assert.doesNotMatch(withoutComments(pageWithoutPin), /localStorage|sessionStorage|indexedDB|document\.cookie/,
    "the page stores nothing: the secret key lives in memory only");
  // The one exception, the pinned audit checkpoint (public data), is kept by pin.js, which touches no key ring.
  assert.doesNotMatch(withoutComments(pinModule), /sessionStorage|indexedDB|document\.cookie|keyring|identity|secret/i);
  assert.deepEqual([...withoutComments(pinModule).matchAll(/localStorage\.(\w+)\(PIN_PREFIX \+ origin/g)]
    .map((m) => m[1]).sort(), ["getItem", "setItem"]);
  assert.equal([...withoutComments(pinModule).matchAll(/localStorage/g)].length, 2);
});

test("compliance the secret key is never sent: only the recipient goes to the registration call", () => {
  const calls = [...page.matchAll(/registerRecipient\(([^)]*)\)/g)].map((m) => m[1]);
  assert.deepEqual(calls, ["recipient"]);
  const registrations = [...page.matchAll(/await register\(([^,]+),/g)].map((m) => m[1].trim());
  assert.deepEqual(registrations.sort(), ["generated.recipient", "value"]);
});
