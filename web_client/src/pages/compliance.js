// The compliance page: sign in, make or register an age key, list cases and their sealed records,
// and open them in this page (verify against the signed audit log, decrypt, play, read).
//
// The officer's secret key is held only in this module's memory (`keyring`, `generated`): it is
// never sent, never written to storage, and dropped on sign-out and on pagehide. Every record text
// reaches the DOM as a text node (h()/textContent), never as markup.

import { ApiError, ComplianceApi } from "../lib/compliance/api.js";
import { IdentityError, KeyRing, generateKeyPair, isRecipient, keyFileText, readIdentities } from "../lib/compliance/identity.js";
import { caseNames, groupRecords } from "../lib/compliance/listing.js";
import { ManifestError, parseManifest } from "../lib/compliance/manifest.js";
import { openRecords } from "../lib/compliance/open.js";
import { People, participants as transcriptParticipants, parseTime, timeline, cleanText } from "../lib/compliance/transcript.js";
import { chooseLanguage, errorText, makeTranslator, problemParts, problemText } from "../lib/i18n/compliance.js";
import { $, fill, h } from "../ui/dom.js";

const STATES = ["submitted", "accepted", "scheduled", "rejected", "closed"];
const PER_PAGE = 20;
const MAX_KEY_FILE = 64 * 1024;

const api = new ComplianceApi();
const state = {
  t: makeTranslator(chooseLanguage(location.search)),
  me: null,
  filter: "",
  page: 1,
  list: null,
  listError: null,
  caseView: null,
  records: null,
  opened: null, // {scope, status: working|done|failed, done, total, report, error}
  keyStatus: null, // {tone, key, params}
  identityStatus: null,
};

// Secrets: in memory only, never rendered except the one-time display of a generated key.
let keyring = null; // KeyRing of the officer's identities, for opening records
let generated = null; // {identity, recipient} just generated and not yet registered or discarded
// Decrypted recordings: blob URLs and their video elements, kept across re-renders (language switch).
const videos = new Map();

// --- language and static text --------------------------------------------------------------------

function translateStatic() {
  const { t } = state;
  document.documentElement.lang = t.lang;
  document.title = `${t("app.title")} · ${t("app.brand")}`;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) node.placeholder = t(node.dataset.i18nPlaceholder);
  $("lang-select").value = t.lang;
}

function setLanguage(lang) {
  state.t = makeTranslator(lang);
  const url = new URL(location.href);
  if (state.t.lang === "zh-CN") url.searchParams.delete("lang");
  else url.searchParams.set("lang", state.t.lang);
  history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  renderAll();
}

function renderAll() {
  translateStatic();
  renderWho();
  renderKeys();
  renderIdentity();
  renderFilter();
  renderCases();
  renderCase();
  renderOpened();
}

// --- formatting ----------------------------------------------------------------------------------

function formatTime(value, style = "medium") {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) return value ? String(value) : "—";
  return new Intl.DateTimeFormat(state.t.lang, { dateStyle: style, timeStyle: "medium" }).format(date);
}

function formatClock(date) {
  return new Intl.DateTimeFormat(state.t.lang, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false })
    .format(date);
}

function formatDay(date) {
  return new Intl.DateTimeFormat(state.t.lang, { dateStyle: "full" }).format(date);
}

function formatSize(bytes) {
  const { t } = state;
  const number = (n, digits) => new Intl.NumberFormat(t.lang, { maximumFractionDigits: digits }).format(n);
  if (bytes < 1024) return t("size.bytes", { n: number(bytes, 0) });
  if (bytes < 1024 * 1024) return t("size.kb", { n: number(bytes / 1024, 1) });
  return t("size.mb", { n: number(bytes / (1024 * 1024), 1) });
}

function formatMoney(minor, currency) {
  if (!Number.isSafeInteger(minor) || typeof currency !== "string" || !/^[A-Z]{3}$/.test(currency)) {
    return cleanText(JSON.stringify(minor ?? null));
  }
  const format = new Intl.NumberFormat(state.t.lang, { style: "currency", currency });
  const digits = format.resolvedOptions().maximumFractionDigits;
  return format.format(minor / 10 ** digits);
}

function formatDuration(seconds) {
  const total = Math.round(seconds);
  const pad = (n) => String(n).padStart(2, "0");
  return `${Math.floor(total / 60)}:${pad(total % 60)}`;
}

function roleLabel(role) {
  const { t } = state;
  return role && t.has(`role.${role}`) ? t(`role.${role}`) : cleanText(role ?? "");
}

/** "Name (role)" for a participant: from the transcript if it names them, else from the case. */
function personLabel(who) {
  const { t } = state;
  if (!who || !who.participantId) return t("person.nobody");
  let { name, role } = who;
  if (name === who.participantId) name = null; // the room log names nobody: only an id
  if (!name) {
    const known = caseNames(state.caseView).get(who.participantId);
    if (known) ({ name, role } = { name: cleanText(known.name), role: known.role });
  }
  if (!name) return role ? roleLabel(role) : t("person.unknown", { id: who.participantId });
  return role ? t("person.named", { name, role: roleLabel(role) }) : name;
}

function personById(participantId, people = null) {
  const who = people ? people.who(participantId) : { participantId, name: null, role: null };
  return personLabel(who);
}

// --- session -------------------------------------------------------------------------------------

function show(section) {
  $("signin").hidden = section !== "signin";
  $("wrong-role").hidden = section !== "wrong-role";
  $("workspace").hidden = section !== "workspace";
  document.body.dataset.phase = section;
}

async function start() {
  translateStatic();
  try {
    const me = await api.me();
    await signedIn(me);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) show("signin");
    else showSigninError(error);
  }
}

function showSigninError(error) {
  show("signin");
  const node = $("signin-error");
  node.textContent = errorText(state.t, error);
  node.hidden = false;
}

async function signedIn(me) {
  if (me.kind !== "staff" || me.role !== "compliance_officer") {
    state.me = null;
    $("wrong-role-text").textContent = state.t("role.wrong", { role: roleLabel(me.role) });
    show("wrong-role");
    $("who").hidden = false;
    $("who-name").textContent = me.user?.display_name ?? "";
    return;
  }
  state.me = me.user;
  show("workspace");
  renderWho();
  renderKeys();
  renderIdentity();
  renderFilter();
  await loadCases();
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const username = $("signin-username").value.trim();
  const password = $("signin-password").value;
  const error = $("signin-error");
  if (!username || !password) {
    error.textContent = state.t("signin.missing");
    error.hidden = false;
    return;
  }
  const button = $("signin-submit");
  button.disabled = true;
  try {
    await api.login(username, password);
    $("signin-password").value = "";
    error.hidden = true;
    await signedIn(await api.me());
  } catch (failure) {
    error.textContent = errorText(state.t, failure);
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
});

$("signout").addEventListener("click", async () => {
  forgetSecrets();
  try {
    await api.logout();
  } catch {
    /* the session may have expired already; the page forgets it either way */
  }
  Object.assign(state, { me: null, list: null, caseView: null, records: null, opened: null, keyStatus: null,
    identityStatus: null });
  $("who").hidden = true;
  $("signin-username").value = "";
  renderAll();
  show("signin");
});

/** Drop every secret and every plaintext this page holds. */
function forgetSecrets() {
  keyring = null;
  generated = null;
  $("secret-key").textContent = "";
  $("secret-recipient").textContent = "";
  $("secret-panel").hidden = true;
  $("identity-text").value = "";
  $("identity-file").value = "";
  $("paste-recipient").value = "";
  for (const { url, element } of videos.values()) {
    element.removeAttribute("src");
    element.load();
    URL.revokeObjectURL(url);
  }
  videos.clear();
  state.opened = null;
  fill($("opened-body"));
  $("opened").hidden = true;
}

// Leaving the page (or having it put in the back/forward cache) forgets the key and the plaintext.
window.addEventListener("pagehide", () => {
  forgetSecrets();
  renderIdentity();
});

function sessionExpired(error) {
  if (error instanceof ApiError && error.status === 401) {
    forgetSecrets();
    state.me = null;
    $("who").hidden = true;
    showSigninError(error);
    return true;
  }
  return false;
}

function renderWho() {
  const who = $("who");
  if (!state.me) return;
  who.hidden = false;
  $("who-name").textContent = state.t("who.signedIn", { name: state.me.display_name });
}

// --- keys ----------------------------------------------------------------------------------------

function setKeyStatus(tone, key, params = {}) {
  state.keyStatus = { tone, key, params };
  renderKeys();
}

function renderKeys() {
  const { t } = state;
  const recipient = state.me?.age_recipient ?? null;
  $("registered-recipient").textContent = recipient ?? "";
  $("registered-recipient").hidden = !recipient;
  $("no-recipient").hidden = Boolean(recipient);
  $("secret-panel").hidden = generated === null;
  $("key-actions").hidden = generated !== null;
  $("register-generated").disabled = !$("secret-saved").checked;
  const status = $("key-status");
  if (state.keyStatus) {
    status.hidden = false;
    status.className = `notice notice-${state.keyStatus.tone}`;
    status.textContent = state.keyStatus.text ?? t(state.keyStatus.key, state.keyStatus.params);
  } else {
    status.hidden = true;
  }
}

function keyFileName() {
  const day = new Date().toISOString().slice(0, 10).replace(/-/g, "");
  const user = (state.me?.username ?? "officer").replace(/[^A-Za-z0-9_-]/g, "_");
  return `age-identity-${user}-${day}.txt`;
}

$("generate-key").addEventListener("click", async () => {
  generated = await generateKeyPair();
  $("secret-key").textContent = generated.identity;
  $("secret-recipient").textContent = generated.recipient;
  $("secret-saved").checked = false;
  $("secret-downloaded").hidden = true;
  state.keyStatus = null;
  renderKeys();
  $("secret-panel").scrollIntoView({ block: "nearest" });
});

$("download-secret").addEventListener("click", () => {
  if (!generated) return;
  const name = keyFileName();
  const url = URL.createObjectURL(new Blob([keyFileText(generated)], { type: "text/plain" }));
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
  const note = $("secret-downloaded");
  note.textContent = state.t("secret.downloaded", { file: name });
  note.hidden = false;
});

$("secret-saved").addEventListener("change", () => renderKeys());

function dropGenerated() {
  generated = null;
  $("secret-key").textContent = "";
  $("secret-recipient").textContent = "";
  $("secret-saved").checked = false;
  $("secret-downloaded").hidden = true;
}

async function register(recipient, button) {
  button.disabled = true;
  try {
    state.me = await api.registerRecipient(recipient);
    return true;
  } catch (error) {
    if (!sessionExpired(error)) {
      state.keyStatus = { tone: "error", text: errorText(state.t, error) };
      renderKeys();
    }
    return false;
  } finally {
    button.disabled = false;
  }
}

$("register-generated").addEventListener("click", async () => {
  if (!generated || !$("secret-saved").checked) return;
  // Only the public half leaves the page.
  if (await register(generated.recipient, $("register-generated"))) {
    dropGenerated();
    setKeyStatus("ok", "keys.registeredOk");
    renderIdentity();
  }
});

$("discard-generated").addEventListener("click", () => {
  dropGenerated();
  setKeyStatus("info", "keys.discarded");
});

$("paste-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("paste-recipient");
  const value = input.value.trim();
  if (/AGE-SECRET-KEY-/i.test(value)) {
    // A secret key pasted into the public-key field is never sent.
    input.value = "";
    setKeyStatus("error", "keys.paste.secret");
    return;
  }
  if (!isRecipient(value)) {
    setKeyStatus("error", "keys.paste.invalid");
    return;
  }
  if (await register(value, $("register-pasted"))) {
    input.value = "";
    setKeyStatus("ok", "keys.registeredOk");
    renderIdentity();
  }
});

// --- the officer's identity (for opening) ---------------------------------------------------------

function renderIdentity() {
  const { t } = state;
  const loaded = keyring !== null;
  $("identity-panel").dataset.state = loaded ? "loaded" : "empty";
  $("identity-empty").hidden = loaded;
  $("identity-loaded").hidden = !loaded;
  if (loaded) {
    $("identity-recipient").textContent = keyring.recipients.join("\n");
    const registered = state.me?.age_recipient;
    const match = $("identity-match");
    const matches = registered && keyring.recipients.includes(registered);
    match.textContent = matches ? t("identity.matches") : t("identity.mismatch");
    match.className = matches ? "small ok" : "small warn";
  } else {
    $("identity-recipient").textContent = "";
  }
  const status = $("identity-status");
  if (state.identityStatus) {
    status.hidden = false;
    status.className = `notice notice-${state.identityStatus.tone}`;
    status.textContent = t(state.identityStatus.key, state.identityStatus.params);
  } else {
    status.hidden = true;
  }
  for (const button of document.querySelectorAll("[data-needs-identity]")) button.setAttribute("aria-disabled", String(!loaded));
}

async function loadIdentity(text) {
  try {
    keyring = new KeyRing(await readIdentities(text));
    state.identityStatus = null;
  } catch (error) {
    keyring = null;
    const code = error instanceof IdentityError ? error.code : "identity_invalid";
    state.identityStatus = { tone: "error", key: `identity.error.${code}`, params: error.params ?? {} };
  }
  renderIdentity();
  renderCase();
}

$("identity-file").addEventListener("change", async (event) => {
  const input = event.target;
  const file = input.files?.[0];
  input.value = ""; // the selection is not kept; the text below lives only in memory
  if (!file) return;
  if (file.size > MAX_KEY_FILE) {
    state.identityStatus = { tone: "error", key: "identity.error.identity_too_large", params: {} };
    renderIdentity();
    return;
  }
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(await file.arrayBuffer());
  } catch {
    state.identityStatus = { tone: "error", key: "identity.error.identity_not_text", params: {} };
    renderIdentity();
    return;
  }
  await loadIdentity(text);
});

$("identity-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("identity-text");
  const text = input.value;
  input.value = "";
  await loadIdentity(text);
});

$("identity-forget").addEventListener("click", () => {
  keyring = null;
  state.identityStatus = { tone: "info", key: "identity.forgotten", params: {} };
  renderIdentity();
  renderCase();
});

// --- cases ---------------------------------------------------------------------------------------

function renderFilter() {
  const { t } = state;
  const select = $("state-filter");
  fill(select, h("option", { value: "", text: t("cases.all") }),
    STATES.map((s) => h("option", { value: s, text: t(`state.${s}`) })));
  select.value = state.filter;
}

$("state-filter").addEventListener("change", async (event) => {
  state.filter = event.target.value;
  state.page = 1;
  await loadCases();
});

$("page-prev").addEventListener("click", async () => {
  if (state.page > 1) {
    state.page -= 1;
    await loadCases();
  }
});

$("page-next").addEventListener("click", async () => {
  state.page += 1;
  await loadCases();
});

async function loadCases() {
  try {
    state.list = await api.listCases({ state: state.filter, page: state.page, perPage: PER_PAGE });
    state.listError = null;
  } catch (error) {
    if (sessionExpired(error)) return;
    state.listError = error;
  }
  renderCases();
}

function stateBadge(value) {
  return h("span", { class: `badge badge-${value}`, text: state.t(`state.${value}`) });
}

function renderCases() {
  const { t } = state;
  const rows = $("case-rows");
  const list = state.list;
  const empty = $("cases-empty");
  if (state.listError) {
    fill(rows);
    empty.hidden = false;
    empty.textContent = errorText(t, state.listError);
    return;
  }
  if (!list) {
    fill(rows);
    empty.hidden = false;
    empty.textContent = t("cases.loading");
    return;
  }
  fill(rows, list.cases.map((c) => h("tr", { testid: "case-row", dataset: { caseId: c.case_id, state: c.state } },
    h("td", { class: "mono", text: c.case_number }),
    h("td", {}, stateBadge(c.state)),
    h("td", { text: c.lender }),
    h("td", { text: formatTime(c.created_at, "short") }),
    h("td", { class: "actions" }, h("button", { type: "button", class: "btn btn-secondary btn-small", testid: "case-open",
      dataset: { caseId: c.case_id }, text: t("cases.open"), on: { click: () => openCase(c.case_id) } })))));
  empty.hidden = list.cases.length > 0;
  empty.textContent = t("cases.empty");
  const pages = Math.max(1, Math.ceil(list.total / list.per_page));
  $("page-info").textContent = t("cases.page", { page: list.page, pages, total: list.total });
  $("page-prev").disabled = list.page <= 1;
  $("page-next").disabled = list.page >= pages;
}

// --- one case and its records --------------------------------------------------------------------

async function openCase(caseId) {
  try {
    const [caseView, records] = await Promise.all([api.readCase(caseId), api.listRecords(caseId)]);
    state.caseView = caseView;
    state.records = records.records;
  } catch (error) {
    if (!sessionExpired(error)) {
      state.caseView = null;
      state.records = null;
      state.listError = error;
      renderCases();
    }
    return;
  }
  closeOpened();
  $("cases").hidden = true;
  renderCase();
  $("case-detail").scrollIntoView({ block: "start" });
}

$("case-back").addEventListener("click", () => {
  state.caseView = null;
  state.records = null;
  closeOpened();
  renderCase();
  $("cases").hidden = false;
  loadCases();
});

function fact(label, value, testid) {
  return h("div", { class: "fact" }, h("dt", { text: label }), h("dd", { testid }, value));
}

function renderCase() {
  const { t } = state;
  const view = state.caseView;
  const section = $("case-detail");
  section.hidden = !view;
  if (!view) return;
  section.dataset.caseId = view.case_id;
  $("case-title").textContent = t("case.title", { number: view.case_number });
  fill($("case-facts"),
    fact(t("cases.state"), stateBadge(view.state)),
    fact(t("cases.lender"), view.lender),
    fact(t("cases.created"), formatTime(view.created_at, "short")));
  const groups = groupRecords(state.records ?? []);
  const body = $("record-groups");
  if (!(state.records ?? []).length) {
    fill(body, h("p", { class: "muted", testid: "no-records", text: t("case.noRecords") }));
    return;
  }
  const needKey = keyring === null ? h("p", { class: "small warn", text: t("case.needIdentity") }) : null;
  fill(body,
    groups.sessions.map((group) => sessionCard(group, needKey?.cloneNode(true) ?? null)),
    groups.agreements.length ? agreementsCard(groups.agreements, needKey?.cloneNode(true) ?? null) : null,
    groups.other.length ? h("section", { class: "record-group" },
      h("h3", { class: "group-title", text: t("case.other") }),
      h("ul", { class: "plain" }, groups.other.map((r) => h("li", { class: "mono small", text: `${r.kind} ${r.key}` }))))
      : null);
}

function row(label, ...value) {
  return h("div", { class: "fact" }, h("dt", { text: label }), h("dd", {}, ...value));
}

function sessionCard(group, needKey) {
  const { t } = state;
  const recordings = [...group.recordings.entries()].map(([participantId, parts]) => {
    const list = [...parts.values()];
    const segments = list.reduce((n, p) => n + p.count, 0);
    const bytes = list.reduce((n, p) => n + p.bytes, 0);
    return h("li", { testid: "listed-recording", dataset: { participantId } },
      h("span", { class: "person", text: personById(participantId) }), " ",
      h("span", { class: "muted", text: t("case.recordingParts", { parts: parts.size, segments, size: formatSize(bytes) }) }));
  });
  const consents = [...group.consents.entries()].map(([participantId, list]) => h("li", {},
    h("span", { class: "person", text: personById(participantId) }), " ",
    h("span", { class: "muted", text: t("case.consentCount", { count: list.length }) })));
  const working = state.opened?.status === "working";
  return h("section", { class: "record-group", testid: "session-group", dataset: { sessionId: group.sessionId } },
    h("div", { class: "group-head" },
      h("h3", { class: "group-title" }, `${t("case.session")} `, h("span", { class: "mono", text: group.sessionId })),
      group.first ? h("span", { class: "muted small", text: t("case.sessionFirst", { time: formatTime(group.first, "short") }) }) : null),
    h("dl", { class: "facts facts-wide" },
      row(t("case.recordings"), recordings.length ? h("ul", { class: "plain" }, recordings) : t("case.noRecordings")),
      row(t("case.chat"), t("case.chatCount", { count: group.chat.count, size: formatSize(group.chat.bytes) })),
      row(t("case.transcript"), group.transcript ? t("case.transcriptYes") : t("case.transcriptNo")),
      row(t("case.consents"), consents.length ? h("ul", { class: "plain" }, consents) : "—")),
    h("div", { class: "group-actions" },
      h("button", { type: "button", class: "btn btn-primary", testid: "open-session", dataset: { sessionId: group.sessionId,
        needsIdentity: "" }, disabled: keyring === null || working, text: t("case.openSession"),
      on: { click: () => openScope({ kind: "session", sessionId: group.sessionId }) } }),
      needKey));
}

function agreementsCard(agreements, needKey) {
  const { t } = state;
  const working = state.opened?.status === "working";
  return h("section", { class: "record-group", testid: "agreements-group" },
    h("h3", { class: "group-title", text: t("case.agreements") }),
    h("ul", { class: "plain" }, agreements.map((r) => h("li", { text: t("case.agreementVersion",
      { version: r.index, size: formatSize(r.size) }) }))),
    h("div", { class: "group-actions" },
      h("button", { type: "button", class: "btn btn-primary", testid: "open-agreements", dataset: { needsIdentity: "" },
        disabled: keyring === null || working, text: t("case.openAgreements"),
        on: { click: () => openScope({ kind: "agreements" }) } }),
      needKey));
}

// --- opening -------------------------------------------------------------------------------------

function closeOpened() {
  for (const { url, element } of videos.values()) {
    element.removeAttribute("src");
    element.load();
    URL.revokeObjectURL(url);
  }
  videos.clear();
  state.opened = null;
  renderOpened();
}

async function openScope(scope) {
  if (!keyring || !state.caseView || state.opened?.status === "working") return;
  closeOpened();
  const caseId = state.caseView.case_id;
  const ring = keyring;
  state.opened = { scope, status: "working", done: 0, total: 0, report: null, error: null };
  renderOpened();
  renderCase();
  $("opened").scrollIntoView({ block: "start" });
  try {
    const [text, listed] = await Promise.all([api.manifest(caseId), api.listRecords(caseId)]);
    state.records = listed.records;
    let manifest;
    try {
      manifest = parseManifest(text);
    } catch (error) {
      if (error instanceof ManifestError) throw Object.assign(error, { problem: "manifest_error" });
      throw error;
    }
    const include = scope.kind === "session"
      ? (o) => o.sessionId === scope.sessionId
      : (o) => o.kind === "agreement";
    const report = await openRecords({
      manifest, caseId, include, keyring: ring, pinnedKeyId: $("audit-key-pin").value,
      recordIds: new Map(listed.records.map((r) => [r.key, r.record_id])),
      listedKeys: listed.records.map((r) => ({ key: r.key, kind: r.kind, sessionId: r.session_id })),
      download: (recordId) => api.download(caseId, recordId),
      onProgress: (done, total) => {
        if (state.opened?.scope !== scope) return;
        Object.assign(state.opened, { done, total });
        const progress = $("open-progress");
        if (progress) progress.textContent = state.t("open.working", { done, total });
      },
    });
    if (state.opened?.scope !== scope) return; // closed, or signed out, meanwhile
    state.opened.report = report;
    state.opened.status = "done";
  } catch (error) {
    if (sessionExpired(error)) return;
    if (state.opened?.scope !== scope) return;
    state.opened.status = "failed";
    state.opened.error = error;
  }
  renderOpened();
  renderCase();
}

$("opened-close").addEventListener("click", () => {
  closeOpened();
  renderCase();
});

function problemList(items, testid, itemTestid, render) {
  return h("ul", { class: "problem-list", testid }, items.map((item) => h("li", { testid: itemTestid,
    dataset: { code: item.code }, text: render(item) })));
}

function problemItems(problems, testid, itemTestid) {
  const { t } = state;
  return h("ul", { class: "problem-list", testid }, problems.map((problem) => {
    const { subject, message } = problemParts(t, problem);
    return h("li", { testid: itemTestid, dataset: { code: problem.code } },
      subject ? h("span", { class: "problem-what", text: subject }) : null, h("span", { text: message }));
  }));
}

function renderOpened() {
  const { t } = state;
  const opened = state.opened;
  const section = $("opened");
  section.hidden = !opened;
  if (!opened) {
    fill($("opened-body"));
    return;
  }
  $("opened-title").textContent = opened.scope.kind === "session"
    ? t("open.scopeSession", { session: opened.scope.sessionId }) : t("open.scopeAgreements");
  section.dataset.scope = opened.scope.kind;
  if (opened.status === "working") {
    section.dataset.state = "working";
    fill($("opened-body"), h("div", { class: "banner banner-working", testid: "verification", dataset: { state: "working" } },
      h("span", { class: "spinner", "aria-hidden": "true" }),
      h("span", { id: "open-progress", role: "status",
        text: opened.total ? t("open.working", { done: opened.done, total: opened.total }) : t("open.starting") })));
    return;
  }
  if (opened.status === "failed") {
    section.dataset.state = "incomplete";
    const message = opened.error?.problem === "manifest_error"
      ? problemText(t, { code: "manifest_error", params: { message: opened.error.message } })
      : errorText(t, opened.error);
    fill($("opened-body"), h("div", { class: "banner banner-bad", testid: "verification", dataset: { state: "incomplete" },
      role: "alert" }, h("strong", { text: t("open.incompleteBadge") }), " ", t("open.failed", { message })));
    return;
  }
  const { report } = opened;
  section.dataset.state = report.complete ? "complete" : "incomplete";
  const banner = report.complete
    ? h("div", { class: "banner banner-ok", testid: "verification", dataset: { state: "complete" }, role: "status" },
      h("strong", { text: t("open.completeBadge") }), " ", t("open.complete", { verified: report.verified }))
    : h("div", { class: "banner banner-bad", testid: "verification", dataset: { state: "incomplete" }, role: "alert" },
      h("strong", { text: t("open.incompleteBadge") }), " ", t("open.incomplete", { count: report.problems.length }));
  fill($("opened-body"),
    banner,
    h("p", { class: "muted small", testid: "open-summary", text: t("open.summary", { listed: report.listed, verified: report.verified }) }),
    report.problems.length ? h("details", { class: "problems", open: true },
      h("summary", { text: t("open.problems", { count: report.problems.length }) }),
      problemItems(report.problems, "problems", "problem")) : null,
    report.warnings.length ? h("details", { class: "warnings", open: true },
      h("summary", { text: t("open.warnings", { count: report.warnings.length }) }),
      problemList(report.warnings, "warnings", "warning", (w) => t(`warning.${w.code}`, w.params))) : null,
    opened.scope.kind === "session" ? sessionResults(report, opened.scope.sessionId) : agreementResults(report));
}

function incompleteBadge() {
  return h("span", { class: "badge badge-incomplete", testid: "incomplete-badge", text: state.t("open.incompleteBadge") });
}

function sessionResults(report, sessionId) {
  const doc = report.transcripts.get(sessionId) ?? null;
  const people = doc ? new People(doc.participants) : null;
  return [
    recordingsSection(report, people),
    timelineSection(report, sessionId, doc),
    chatSection(report, sessionId, people),
    consentsSection(report, people),
  ];
}

// --- recordings ----------------------------------------------------------------------------------

function videoFor(recording) {
  const id = JSON.stringify(recording.group);
  if (videos.has(id)) return videos.get(id);
  // The verified segments of one part, in index order, are one playable WebM.
  const blob = new Blob(recording.chunks, { type: "video/webm" });
  recording.chunks = null; // the Blob holds the plaintext now
  const url = URL.createObjectURL(blob);
  const element = h("video", { class: "recording", controls: true, preload: "metadata", playsinline: true,
    testid: "recording-video", dataset: { participantId: recording.participantId, part: recording.part,
      complete: String(!recording.spoiled), segments: recording.segments.length } });
  const entry = { url, element, blob, duration: null, error: false };
  // The recorder writes a live (unknown-length) WebM: the browser learns its duration only after
  // seeking to the end once, so seek far ahead, then back to the start.
  let probing = false;
  element.addEventListener("loadedmetadata", () => {
    if (element.duration === Infinity || Number.isNaN(element.duration)) {
      probing = true;
      element.currentTime = Number.MAX_SAFE_INTEGER;
    } else {
      entry.duration = element.duration;
      element.dataset.duration = String(element.duration);
      renderDuration(entry);
    }
  });
  element.addEventListener("durationchange", () => {
    if (Number.isFinite(element.duration) && element.duration > 0) {
      entry.duration = element.duration;
      element.dataset.duration = String(element.duration);
      renderDuration(entry);
      if (probing) {
        probing = false;
        element.currentTime = 0;
      }
    }
  });
  element.addEventListener("error", () => {
    entry.error = true;
    element.dataset.error = String(element.error?.code ?? "unknown");
    renderDuration(entry);
  });
  element.src = url;
  entry.download = `${recording.sessionId}-${recording.participantId}-${String(recording.part).padStart(4, "0")}`
    + `${recording.spoiled ? ".INCOMPLETE" : ""}.webm`;
  entry.info = h("span", { class: "muted small" });
  videos.set(id, entry);
  return entry;
}

function renderDuration(entry) {
  const { t } = state;
  if (entry.error) {
    entry.info.textContent = t("results.videoError");
    entry.info.className = "warn small";
  } else if (entry.duration !== null) {
    entry.info.textContent = t("results.duration", { duration: formatDuration(entry.duration) });
  } else {
    entry.info.textContent = "";
  }
}

function recordingsSection(report, people) {
  const { t } = state;
  const recordings = [...report.recordings.values()].sort((a, b) =>
    (a.participantId < b.participantId ? -1 : a.participantId > b.participantId ? 1 : a.part - b.part));
  const items = recordings.map((recording) => {
    const entry = videoFor(recording);
    renderDuration(entry);
    const own = report.problemsOf(recording.group);
    return h("figure", { class: ["recording-card", recording.spoiled && "is-incomplete"], testid: "recording",
      dataset: { participantId: recording.participantId, part: recording.part, complete: String(!recording.spoiled) } },
    entry.element,
    h("figcaption", {},
      h("strong", { class: "caption-name", text: personById(recording.participantId, people) }),
      h("div", { class: "caption-line" },
        h("span", { class: "muted", text: `${t("results.part", { part: recording.part + 1 })} · `
          + t("results.segments", { count: recording.segments.length }) }),
        entry.info,
        recording.spoiled ? incompleteBadge() : null),
      h("a", { class: "link small", href: entry.url, download: entry.download, text: t("results.download") }),
      own.length ? problemItems(own, null, "recording-problem") : null));
  });
  return h("section", { class: "result-section", testid: "recordings" },
    h("h3", { class: "section-title", text: t("results.recordings") }),
    items.length ? h("div", { class: "recording-grid" }, items)
      : h("p", { class: "muted", text: t("results.noRecordings") }));
}

// --- transcript timeline -------------------------------------------------------------------------

function eventText(entry) {
  const { t } = state;
  const actor = entry.actor ? personLabel(entry.actor) : t("ev.theMediator");
  const subject = entry.subject ? personLabel(entry.subject) : t("person.nobody");
  const reason = entry.reason
    ? t("ev.reason", { reason: t.has(`reason.${entry.reason}`) ? t(`reason.${entry.reason}`) : entry.reason }) : "";
  switch (entry.type) {
    case "participant_joined":
      return entry.status
        ? t("ev.joinedStatus", { subject, status: t.has(`status.${entry.status}`) ? t(`status.${entry.status}`) : entry.status })
        : t("ev.joined", { subject });
    case "participant_left": return t("ev.left", { subject, reason });
    case "admitted": return t("ev.admitted", { actor, subject });
    case "refused": return t("ev.refused", { actor, subject, reason });
    case "returned_to_lobby":
      return entry.actor ? t("ev.returnedBy", { actor, subject, reason }) : t("ev.returned", { subject, reason });
    case "removed": return t("ev.removed", { actor, subject, reason });
    case "message_deleted":
      return t("ev.deleted", { actor, seq: entry.seq ?? "?",
        author: entry.author ? t("ev.deletedAuthor", { author: personLabel(entry.author) }) : "" });
    case "chat_muted": return t(entry.muted ? "ev.muted" : "ev.unmuted", { actor, subject });
    case "mute_media_requested": {
      const what = entry.audio && entry.video ? "ev.mediaBoth" : entry.audio ? "ev.mediaAudio"
        : entry.video ? "ev.mediaVideo" : "ev.mediaNothing";
      return t("ev.mediaMute", { actor, subject, what: t(what) });
    }
    case "room_locked": return t(entry.locked ? "ev.locked" : "ev.unlocked", { actor });
    case "caucus_started":
      return t("ev.caucusStarted", { actor, names: entry.members ? entry.members.map(personLabel).join(t("ev.listSep")) : "?" });
    case "caucus_ended": return entry.actor ? t("ev.caucusEndedBy", { actor }) : t("ev.caucusEnded");
    case "consent_given":
      return t("ev.consentGiven", { subject }) + (entry.notice ? t("ev.consentNotice", { notice: entry.notice }) : "");
    case "consent_withdrawn": return t("ev.consentWithdrawn", { subject });
    case "recording_started": return t("ev.recordingStarted");
    case "recording_stopped": return t("ev.recordingStopped", { reason });
    case "session_ended": return entry.actor ? t("ev.sessionEndedBy", { actor }) : t("ev.sessionEnded");
    default:
      return t("ev.unknown", { type: cleanText(entry.type),
        fields: entry.fields?.length ? `: ${entry.fields.map(([k, v]) => `${k}=${v}`).join(", ")}` : "" });
  }
}

/** English sentences start with a capital even when they start with a role ("recorder joined"). */
function sentence(text) {
  return state.t.lang === "en" && text ? text[0].toUpperCase() + text.slice(1) : text;
}

function chatLine(entry, name) {
  const { t } = state;
  return [
    h("span", { class: "chat-who", text: name }),
    entry.channel === "caucus" ? h("span", { class: "badge badge-caucus", text: t("ev.chatCaucus") }) : null,
    h("span", { class: "chat-seq", text: `#${entry.seq ?? "?"}` }),
    h("span", { class: "chat-text", testid: "chat-text", text: entry.text }),
  ];
}

function timelineSection(report, sessionId, doc) {
  const { t } = state;
  const spoiled = report.spoiled(["transcript", sessionId]);
  if (!doc) {
    return h("section", { class: "result-section", testid: "timeline-section" },
      h("h3", { class: "section-title" }, t("timeline.title"), " ", incompleteBadge()),
      h("p", { class: "warn", text: t("timeline.none") }));
  }
  const people = new People(doc.participants);
  const declared = doc.recordings && typeof doc.recordings === "object" ? Object.entries(doc.recordings) : null;
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone ?? "";
  const items = [];
  let day = null;
  for (const entry of timeline(doc)) {
    if (entry.at) {
      const key = entry.at.toDateString();
      if (key !== day) {
        day = key;
        items.push(h("li", { class: "day", text: formatDay(entry.at) }));
      }
    }
    const when = h("time", { class: "when", datetime: entry.at ? entry.at.toISOString() : null,
      title: entry.atText ?? null, text: entry.at ? formatClock(entry.at) : t("timeline.noTime") });
    const body = entry.type === "chat_message"
      ? h("div", { class: "what what-chat" }, chatLine(entry, personLabel(entry.subject)))
      : h("div", { class: "what", text: sentence(eventText(entry)) });
    items.push(h("li", { class: ["event", `event-${entry.type.replace(/[^a-z_]/g, "")}`], testid: "timeline-entry",
      dataset: entry.seq === undefined || entry.seq === null ? { type: entry.type } : { type: entry.type, seq: entry.seq } },
    when, body));
  }
  return h("section", { class: "result-section", testid: "timeline-section" },
    h("h3", { class: "section-title" }, t("timeline.title"), " ", spoiled ? incompleteBadge() : null),
    h("dl", { class: "facts" },
      row(t("timeline.started"), formatTime(doc.started_at)),
      row(t("timeline.ended"), doc.ended_at ? formatTime(doc.ended_at) : t("timeline.notEnded")),
      row(t("timeline.participants"), h("ul", { class: "plain" }, transcriptParticipants(doc).map((p) =>
        h("li", {}, personLabel(p), " ", h("span", { class: "mono muted small", text: p.participantId }))))),
      row(t("results.recordings"), declared === null ? t("timeline.noDeclared") : h("ul", { class: "plain" },
        declared.map(([participantId, value]) => {
          const parts = Array.isArray(value?.parts) ? value.parts : [];
          return h("li", { text: t("timeline.declared", { name: personById(participantId, people), parts: parts.length,
            counts: parts.join(", ") || "0" }) });
        })))),
    h("p", { class: "muted small", text: t("timeline.zone", { zone }) }),
    h("ol", { class: "timeline", testid: "timeline" }, items));
}

// --- chat, consents, agreements ------------------------------------------------------------------

function chatSection(report, sessionId, people) {
  const { t } = state;
  const messages = report.chat.get(sessionId) ?? [];
  const missing = report.chatMissing.get(sessionId) ?? new Map();
  const items = [
    ...messages.map((m) => ({ seq: m.seq, message: m })),
    ...[...missing.entries()].map(([seq, reason]) => ({ seq, reason })),
  ].sort((a, b) => a.seq - b.seq);
  const spoiled = report.spoiled(["chat", sessionId]);
  const list = items.map((item) => {
    if (item.reason) {
      return h("li", { class: "chat-missing", testid: "chat-missing", dataset: { seq: item.seq },
        text: t("chat.missing", { seq: item.seq, reason: t(`chat.reason.${item.reason}`) }) });
    }
    const m = item.message;
    const name = m.name ? (m.role ? t("person.named", { name: cleanText(m.name), role: roleLabel(m.role) }) : cleanText(m.name))
      : personById(m.participant_id, people);
    const at = parseTime(m.sent_at);
    const deleted = m.deleted && typeof m.deleted === "object"
      ? h("div", { class: "chat-deleted small", text: t("chat.deleted", { by: personById(m.deleted.by, people),
        time: formatTime(m.deleted.at) }) }) : null;
    return h("li", { class: ["chat-entry", m.channel === "caucus" && "is-caucus"], testid: "chat-entry",
      dataset: { seq: m.seq } },
    h("time", { class: "when", datetime: at ? at.toISOString() : null, text: at ? formatClock(at) : t("timeline.noTime") }),
    h("div", { class: "what what-chat" }, chatLine({ seq: m.seq, channel: m.channel, text: cleanText(m.text ?? "", { newlines: true }) }, name), deleted));
  });
  return h("section", { class: "result-section", testid: "chat-section" },
    h("h3", { class: "section-title" }, t("chat.title"), " ", spoiled ? incompleteBadge() : null),
    list.length ? h("ol", { class: "timeline chat-log", testid: "chat-log" }, list) : h("p", { class: "muted", text: t("chat.none") }));
}

function rawDetails(label, text) {
  return h("details", { class: "raw" }, h("summary", { text: label }), h("pre", { text: text ?? "" }));
}

function consentsSection(report, people) {
  const { t } = state;
  const items = [...report.consents].sort((a, b) => (a.participantId < b.participantId ? -1
    : a.participantId > b.participantId ? 1 : a.index - b.index)).map((c) => {
    const v = c.value && typeof c.value === "object" ? c.value : {};
    const action = v.action === "withdrawn" ? t("consent.withdrawn") : t("consent.given");
    return h("li", { class: "consent", testid: "consent", dataset: { participantId: c.participantId } },
      h("div", { class: "consent-line" },
        h("strong", { text: personById(c.participantId, people) }), h("span", { text: action }),
        h("span", { class: "muted", text: formatTime(v.at ?? v.given_at) })),
      v.notice_sha256 ? h("div", { class: "small" }, `${t("consent.noticeHash")}: `,
        h("span", { class: "mono", text: cleanText(v.notice_sha256) })) : null,
      typeof v.notice_text === "string" ? h("details", { class: "raw" },
        h("summary", { text: t("consent.notice", { language: cleanText(v.notice_language ?? "?") }) }),
        h("p", { class: "prewrap", text: cleanText(v.notice_text, { newlines: true }) })) : null,
      rawDetails(t("consent.raw"), c.text === null ? "" : cleanText(c.text, { newlines: true })));
  });
  return h("section", { class: "result-section", testid: "consents-section" },
    h("h3", { class: "section-title", text: t("consents.title") }),
    items.length ? h("ul", { class: "plain consents" }, items) : h("p", { class: "muted", text: t("consents.none") }));
}

function agreementResults(report) {
  const { t } = state;
  const items = [...report.agreements].sort((a, b) => a.index - b.index).map((a) => {
    const spoiled = report.spoiled(["agreement", String(a.index)]);
    const doc = a.value?.document && typeof a.value.document === "object" ? a.value.document : {};
    const instalments = Array.isArray(doc.instalments) ? doc.instalments : [];
    const signatures = Array.isArray(a.value?.signatures) ? a.value.signatures : [];
    const counter = a.value?.countersignature;
    return h("article", { class: "agreement", testid: "agreement", dataset: { version: a.index } },
      h("h4", {}, t("agreement.version", { version: a.index }), " ", spoiled ? incompleteBadge() : null),
      h("dl", { class: "facts" },
        row(t("agreement.settled"), formatMoney(doc.settled_amount_minor, doc.currency)),
        row(t("agreement.waived"), formatMoney(doc.waived_penalties_minor ?? 0, doc.currency)),
        row(t("agreement.instalments"), h("ol", { class: "plain" }, instalments.map((i) =>
          h("li", { text: `${cleanText(i?.due_date ?? "?")} · ${formatMoney(i?.amount_minor, doc.currency)}` })))),
        row(t("agreement.terms"), h("span", { class: "prewrap", text: cleanText(doc.terms ?? "", { newlines: true }) })),
        row(t("agreement.signatures"), h("ul", { class: "plain" }, signatures.map((s) => h("li", {
          text: t("agreement.signedBy", { signer: roleLabel(s?.signer), time: formatTime(s?.signed_at) }) })),
        counter && typeof counter === "object"
          ? h("li", { testid: "countersigned", text: t("agreement.countersigned", { time: formatTime(counter.signed_at),
            keyId: cleanText(counter.key_id ?? "?") }) })
          : h("li", { class: "warn", text: t("agreement.notCountersigned") })))),
      rawDetails(t("agreement.raw"), a.text === null ? "" : cleanText(a.text, { newlines: true })));
  });
  return h("section", { class: "result-section", testid: "agreements-section" },
    h("h3", { class: "section-title", text: t("agreements.title") }), items);
}

// --- start ---------------------------------------------------------------------------------------

$("lang-select").addEventListener("change", (event) => setLanguage(event.target.value));
start();
