// Static checks of the page and the catalogs: CSP hygiene, i18n coverage, DOM-free modules.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

import { CLIENT_ERROR_CODES, CONNECT_ERROR_CODES, RECORDING_STOP_REASONS, REQUEST_ERROR_CODES } from "../src/lib/room/protocol.js";
import { CATALOGS, DEFAULT_LANGUAGE, chooseLanguage, formatDuration, makeTranslator, parseTime } from "../js/i18n.js";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const read = (rel) => readFileSync(path.join(root, rel), "utf8");
const html = read("room.html");

/** Source without comments and string literals (template literals kept: they are code here). */
function code(src) {
  return src
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/(^|[^:\\])\/\/.*$/gm, "$1")
    .replace(/"(?:[^"\\\n]|\\.)*"/g, '""');
}
const roomJs = read("js/room.js");

test("both catalogs have exactly the same keys, none empty", () => {
  const zh = Object.keys(CATALOGS["zh-CN"]).sort();
  const en = Object.keys(CATALOGS.en).sort();
  assert.deepEqual(zh, en);
  for (const [lang, catalog] of Object.entries(CATALOGS)) {
    for (const [key, value] of Object.entries(catalog)) assert.ok(value.trim(), `${lang}: ${key} is empty`);
  }
});

test("every error code of the protocol (and of the client) has a message in both languages", () => {
  const codes = new Set([...CONNECT_ERROR_CODES, ...REQUEST_ERROR_CODES, ...CLIENT_ERROR_CODES]);
  for (const lang of Object.keys(CATALOGS)) {
    const t = makeTranslator(lang);
    for (const code of codes) assert.ok(t.has(`error.${code}`), `${lang}: error.${code}`);
  }
});

test("every key the page uses exists", () => {
  const keys = new Set();
  for (const m of html.matchAll(/data-i18n(?:-placeholder)?="([^"]+)"/g)) keys.add(m[1]);
  for (const m of roomJs.matchAll(/\bt\(\s*"([a-zA-Z0-9_.]+)"/g)) keys.add(m[1]);
  for (const m of roomJs.matchAll(/(?:title|detail|label|successKey):\s*"([a-z][a-zA-Z0-9_]*\.[a-zA-Z0-9_.]+)"/g)) keys.add(m[1]);
  for (const m of roomJs.matchAll(/\?\s*"([a-z]+\.[a-zA-Z0-9_.]+)"\s*:\s*"([a-z]+\.[a-zA-Z0-9_.]+)"/g)) {
    keys.add(m[1]);
    keys.add(m[2]);
  }
  assert.ok(keys.size > 80, `found ${keys.size} keys`);
  const catalog = CATALOGS[DEFAULT_LANGUAGE];
  const missing = [...keys].filter((k) => !(k in catalog));
  assert.deepEqual(missing, []);
  // Keys built at run time.
  for (const role of ["mediator", "bank_representative", "borrower", "lender", "recorder"]) assert.ok(`role.${role}` in catalog);
  for (const s of ["idle", "connecting", "online", "reconnecting", "offline"]) assert.ok(`connection.${s}` in catalog);
  for (const r of ["mediator", "mediator_left"]) assert.ok(`notice.returned.${r}` in catalog);
  for (const k of ["audio", "video", "both"]) assert.ok(`notice.muteRequest.${k}` in catalog);
});

test("recording: every stop reason and every recording error has a message in both languages", () => {
  for (const lang of Object.keys(CATALOGS)) {
    const t = makeTranslator(lang);
    for (const reason of [...RECORDING_STOP_REASONS, "other"]) {
      assert.ok(t.has(`notice.recording.stopped.${reason}`), `${lang}: notice.recording.stopped.${reason}`);
    }
    for (const code of ["consent_missing", "no_recipients", "chat_only", "recording_active", "not_recording", "no_consent", "unknown_notice"]) {
      assert.ok(t.has(`error.${code}`), `${lang}: error.${code}`);
    }
    assert.match(t("recording.blocked", { names: "Li Wei" }), /Li Wei/);
    assert.match(t("recording.error.consentMissing", { names: "Li Wei" }), /Li Wei/);
  }
});

test("the recording notice is put in the page with textContent, and consent sends the shown notice's sha256", () => {
  assert.match(roomJs, /\$\("consent-notice"\)[\s\S]{0,80}\.textContent = notice\.text/);
  assert.match(roomJs, /giveConsent\(notice\.sha256\)/);
  assert.match(roomJs, /pickNotice\(state\.self && state\.self\.recording_notice, state\.lang\)/);
});

test("language: ?lang= first, then a zh navigator language, else zh-CN", () => {
  assert.equal(chooseLanguage({ search: "?lang=en", navigatorLanguage: "zh-CN" }), "en");
  assert.equal(chooseLanguage({ search: "?lang=zh-CN", navigatorLanguage: "en-US" }), "zh-CN");
  assert.equal(chooseLanguage({ search: "?session=ses_x&lang=en" }), "en");
  assert.equal(chooseLanguage({ search: "", navigatorLanguage: "zh-TW" }), "zh-CN");
  assert.equal(chooseLanguage({ search: "", navigatorLanguage: "en-GB" }), "zh-CN");
  assert.equal(chooseLanguage({ search: "?lang=fr", navigatorLanguage: "" }), "zh-CN");
});

test("translator interpolates and falls back", () => {
  const t = makeTranslator("en");
  assert.equal(t("chat.typingOne", { name: "Li" }), "Li is typing…");
  assert.equal(t("no.such.key"), "no.such.key");
  assert.equal(t.error("nope"), CATALOGS.en["error.unknown"]);
  assert.equal(makeTranslator("xx").lang, "zh-CN");
  assert.equal(formatDuration(65_000), "01:05");
  assert.equal(formatDuration(3_725_000), "1:02:05");
  assert.equal(parseTime("2025-01-02T03:04:05Z").toISOString(), "2025-01-02T03:04:05.000Z");
  assert.equal(parseTime(1735787045).toISOString(), "2025-01-02T03:04:05.000Z");
  assert.equal(parseTime("garbage"), null);
});

test("room.html: no inline script, no inline style, no event-handler attributes, no external origin", () => {
  for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
    assert.match(m[1], /\bsrc="\/static\//, "scripts load from /static/");
    assert.match(m[1], /\btype="module"/);
    assert.equal(m[2].trim(), "", "no inline script body");
  }
  assert.doesNotMatch(html, /<style\b/i);
  assert.doesNotMatch(html, /\sstyle=/i);
  assert.doesNotMatch(html, /\son[a-z]+=/i);
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//i);
  assert.match(html, /<script type="module" src="\/static\/js\/room\.js"><\/script>/);
  assert.match(html, /href="\/static\/css\/room\.css"/);
});

test("room.js never writes HTML from strings and imports socket.io from our origin", () => {
  for (const file of ["js/room.js", "js/protocol.js", "js/mesh.js", "js/i18n.js"]) {
    const src = code(read(file));
    assert.doesNotMatch(src, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(/, file);
    assert.doesNotMatch(read(file), /setAttribute\(\s*["']style["']|\.style\.|cssText/, `${file}: no inline styles`);
  }
  assert.match(roomJs, /from "\/static\/vendor\/socket\.io\.esm\.min\.js"/);
});

test("protocol.js, mesh.js and i18n.js touch no DOM", () => {
  for (const file of ["js/protocol.js", "js/mesh.js", "js/i18n.js"]) {
    assert.doesNotMatch(code(read(file)), /\b(document|window|navigator|location|localStorage|sessionStorage|HTMLElement)\b/, file);
  }
});

test("the test hooks the brief asks for are present", () => {
  for (const id of [
    "join-button", "chat-input", "chat-send", "chat-list", "lobby-banner", "caucus-banner", "status", "recording-indicator", "lang-select",
    "consent-accept", "consent-decline", "consent-withdraw", "consent-notice", "start-recording", "stop-recording",
    "recording-blocked-reason", "recording-unavailable", "consent-review", "consent-panel", "meta-case", "meta-scheduled", "meta-duration",
  ]) {
    assert.match(html, new RegExp(`data-testid="${id}"`), id);
  }
  assert.match(html, /data-testid="status"[^>]*data-state=""/);
  for (const hook of ["admit-", "refuse-", "remove-", "caucus-", "return-", "mute-chat-", "mute-audio-", "mute-video-", "delete-"]) {
    assert.ok(roomJs.includes(`testid: \`${hook}`) || roomJs.includes(`"data-testid": \`${hook}`), hook);
  }
  for (const s of ["removed", "ended", "permission-denied", "disconnected", "refused", "locked", "bad-link"]) {
    assert.ok(roomJs.includes(`"${s}"`), `status state ${s}`);
  }
  assert.match(roomJs, /"data-seq"/);
  assert.match(roomJs, /"remote-video"/);
  assert.match(roomJs, /window\.__room/);
});
