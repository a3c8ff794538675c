// Static checks of the room page and its catalogs: CSP hygiene, i18n coverage, DOM-free modules.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

import { CLIENT_ERROR_CODES, CONNECT_ERROR_CODES, RECORDING_STOP_REASONS, REQUEST_ERROR_CODES } from "../src/lib/room/protocol.js";
import { CATALOGS as COMMON_CATALOGS, DEFAULT_LANGUAGE, chooseLanguage, errorMessage, makeTranslator } from "../src/lib/i18n.js";
import roomEn from "../src/lib/i18n/room.en.js";
import roomZhCN from "../src/lib/i18n/room.zh-CN.js";
import meetingEn from "../src/lib/i18n/meeting.en.js";
import meetingZhCN from "../src/lib/i18n/meeting.zh-CN.js";
import { formatDuration, parseTime } from "../src/lib/room/time.js";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const read = (rel) => readFileSync(path.join(root, rel), "utf8");
const html = read("room.html");
/** The room's own catalogs, its meeting basics' among them (merged over the common ones by the page). */
const CATALOGS = { "zh-CN": { ...roomZhCN, ...meetingZhCN }, en: { ...roomEn, ...meetingEn } };
const roomTranslator = (lang) => makeTranslator(lang, CATALOGS);
const UI_FILES = ["src/pages/room.js", ...readdirSync(path.join(root, "src/ui/room")).sort().map((name) => `src/ui/room/${name}`)];
const LIB_FILES = readdirSync(path.join(root, "src/lib/room")).sort().map((name) => `src/lib/room/${name}`);
const CATALOG_FILES = ["src/lib/i18n/room.en.js", "src/lib/i18n/room.zh-CN.js", "src/lib/i18n/meeting.en.js", "src/lib/i18n/meeting.zh-CN.js"];

/** Source without comments and string literals (template literals kept: they are code here). */
function code(src) {
  return src
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/(^|[^:\\])\/\/.*$/gm, "$1")
    .replace(/"(?:[^"\\\n]|\\.)*"/g, '""');
}
// The page's code, all of it (the page entry and its UI modules).
const roomJs = UI_FILES.map(read).join("\n");

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
    const t = roomTranslator(lang);
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
    const t = roomTranslator(lang);
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
  assert.match(roomJs, /giveConsent\(notice\.sha256, await consentProof\(state, "give_consent"\)\)/);
  assert.match(roomJs, /pickNotice\(state\.self && state\.self\.recording_notice, state\.lang\)/);
});

test("language: ?lang= first, else zh-CN (whatever the browser's language)", () => {
  assert.equal(chooseLanguage("?lang=en"), "en");
  assert.equal(chooseLanguage("?lang=zh-CN"), "zh-CN");
  assert.equal(chooseLanguage("?session=ses_x&lang=en"), "en");
  assert.equal(chooseLanguage(""), "zh-CN");
  assert.equal(chooseLanguage("?lang=fr"), "zh-CN");
});

test("translator interpolates and falls back", () => {
  const t = roomTranslator("en");
  assert.equal(t("chat.typingOne", { name: "Li" }), "Li is typing…");
  assert.equal(t("no.such.key"), "no.such.key");
  assert.equal(errorMessage(t, { code: "nope" }), CATALOGS.en["error.unknown"]);
  assert.equal(roomTranslator("xx").lang, "zh-CN");
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
  assert.match(html, /<script type="module" src="\/static\/dist\/room\.js"><\/script>/);
  assert.match(html, /href="\/static\/css\/base\.css"[\s\S]*href="\/static\/css\/room\.css"/, "the shared tokens first");
});

test("the room's code never writes HTML from strings and takes socket.io from npm through the bundle", () => {
  for (const file of [...UI_FILES, ...LIB_FILES, ...CATALOG_FILES]) {
    const src = code(read(file));
    assert.doesNotMatch(src, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(/, file);
    assert.doesNotMatch(read(file), /setAttribute\(\s*["']style["']|\.style\.|cssText/, `${file}: no inline styles`);
  }
  assert.match(roomJs, /import \{ io \} from "socket\.io-client";/);
  assert.doesNotMatch(roomJs, /\/static\/vendor\//);
});

test("src/lib/room and the room's catalogs touch no DOM", () => {
  assert.ok(LIB_FILES.includes("src/lib/room/protocol.js") && LIB_FILES.includes("src/lib/room/mesh.js"));
  for (const file of [...LIB_FILES, ...CATALOG_FILES]) {
    assert.doesNotMatch(code(read(file)), /\b(document|window|navigator|location|localStorage|sessionStorage|HTMLElement)\b/, file);
  }
});

test("a page's catalog is merged over the common one, in each language, with zh-CN as the fallback", () => {
  const en = roomTranslator("en");
  assert.equal(en("app.title"), roomEn["app.title"]);
  const commonKey = Object.keys(COMMON_CATALOGS.en).find((key) => !(key in roomEn));
  assert.ok(commonKey, "the common catalog has keys the room does not reword");
  assert.equal(en(commonKey), COMMON_CATALOGS.en[commonKey], "the common keys stay");
  assert.ok(en.has("chat.send") && en.has(commonKey));
  assert.equal(roomTranslator("zh-CN")("chat.send"), roomZhCN["chat.send"]);
  assert.equal(makeTranslator("en")("chat.send"), "chat.send", "other pages do not get the room's keys");
  const partial = makeTranslator("en", { "zh-CN": { "only.zh": "仅中文" } });
  assert.equal(partial("only.zh"), "仅中文");
});

test("no module of the room is over 650 lines", () => {
  for (const file of [...UI_FILES, ...LIB_FILES]) {
    const lines = read(file).split("\n").length;
    assert.ok(lines <= 650, `${file}: ${lines} lines`);
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
