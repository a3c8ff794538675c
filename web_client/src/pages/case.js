// The party's own case: opened with the private receipt (#rcp_…) or a join link (#jln_…).
import { createApi } from "../lib/api.js";
import { Possession } from "../lib/possession.js";
import { formatDateTime } from "../lib/dates.js";
import { AgreementPanel } from "../ui/agreement.js";
import { $, busy, definitionList, fill, h } from "../ui/dom.js";
import { feedbackForm } from "../ui/feedback.js";
import { progress, roomSession, sessionSummary, stateBadge } from "../ui/case.js";
import en from "../lib/i18n/case.en.js";
import zhCN from "../lib/i18n/case.zh-CN.js";
import { liveConnection } from "../ui/live.js";
import { startPage, takeFragmentToken } from "../ui/page.js";
import { PossessionCancelled, proveAct } from "../ui/possession.js";
import { recoveryForm } from "../ui/recovery.js";

const TOKEN = /^(rcp|jln)_[A-Za-z0-9_-]{43}$/;
const STORAGE_KEY = "mediation.case.token";

let token = takeFragmentToken(STORAGE_KEY, TOKEN);
let api = token ? createApi({ token }) : null;
let view = null;
let loadError = null;
let agreementPanel = null;
let possession = null; // this device's possession factor for the party, once the case is known
const agreementBox = h("div", { class: "agreement", testid: "agreement" });

const page = startPage({ title: "case.title", catalogs: { en, "zh-CN": zhCN }, render: () => render() });

/** @type {{badge: HTMLElement, close: () => void} | null} */
let live = null;

/** Follow the case's changes: the case is fetched again whenever the server says it changed. */
function goLive() {
  live?.close();
  live = api ? liveConnection(page, { token, refetch: () => load() }) : null;
}

let confirmingForget = false;

/** "Forget this link" asks first: without the link this device cannot open the case again. */
function forgetControl(t, cls) {
  if (!confirmingForget) {
    return h("button", { type: "button", class: `btn btn-quiet ${cls}`, testid: "forget", text: t("case.forget"),
      on: { click: () => { confirmingForget = true; render(); } } });
  }
  return h("div", { class: "confirm-box", testid: "forget-confirm-box", role: "group" },
    h("p", { text: t("case.forgetSure") }),
    h("div", { class: "actions" },
      h("button", { type: "button", class: "btn btn-danger btn-small", testid: "forget-confirm", text: t("case.forgetConfirm"),
        on: { click: forget } }),
      h("button", { type: "button", class: "btn btn-quiet btn-small", testid: "forget-cancel", text: t("common.cancel"),
        on: { click: () => { confirmingForget = false; render(); } } })));
}

function forget() {
  confirmingForget = false;
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    /* nothing kept */
  }
  token = null;
  api = null;
  view = null;
  possession = null;
  loadError = null;
  live?.close();
  live = null;
  render();
}

async function load() {
  if (!api) return render();
  try {
    view = await api.get("/api/party/case");
    loadError = null;
  } catch (error) {
    view = null;
    loadError = error;
  }
  if (view && (!possession || possession.caseId !== view.case_id)) possession = new Possession({ api, caseId: view.case_id });
  if (view && ["scheduled", "closed"].includes(view.state)) {
    if (!agreementPanel || agreementPanel.caseId !== view.case_id) {
      agreementPanel = new AgreementPanel(agreementBox, {
        page, api, caseId: view.case_id, caseNumber: view.case_number, signer: view.party.role,
        canSign: () => view.state === "scheduled", onChange: () => render(), possession,
      });
    }
    await agreementPanel.load(view.agreement_version != null);
  }
  render();
}

function roomUrl(link) {
  // The join link's token is in its fragment; open it on this site whatever host the server named.
  try {
    const fragment = new URL(link, location.href).hash.replace(/^#/, "");
    if (TOKEN.test(fragment) && fragment.startsWith("jln_")) return `${page.href("/room")}#${fragment}`;
  } catch {
    /* not a URL */
  }
  return null;
}

function noticeText(t, notice) {
  const key = `notice.${notice.kind}`;
  return t.has(key) ? t(key, { caseNumber: view.case_number }) : notice.text;
}

function sessionsCard(t) {
  const party = view.party;
  const items = view.sessions.map((session) => {
    const mine = session.confirmed_by.includes(party.party_id);
    const actions = [];
    if (session.state === "proposed" && !mine && ["accepted", "scheduled"].includes(view.state)) {
      const button = h("button", { type: "button", class: "btn btn-primary", testid: "confirm-session",
        dataset: { sessionId: session.session_id }, text: t("session.confirm") });
      button.addEventListener("click", () => busy(button, async () => {
        try {
          // An act with legal weight: this device's enrolled key proves it (a code enrols it the first time).
          const proof = await proveAct(possession, page.t, page.error, "confirm_session", session.session_id);
          await api.post(`/api/cases/${view.case_id}/sessions/${session.session_id}/confirm`, { proof });
          page.toast("ok", t("session.confirmedToast"));
          await load();
        } catch (error) {
          if (!(error instanceof PossessionCancelled)) page.fail(error);
        }
      }));
      actions.push(button);
    }
    const note = session.state === "cancelled" ? null
      : mine ? t("session.youConfirmed") : session.state === "proposed" ? t("session.awaitingYou") : null;
    return sessionSummary(t, session, { note, actions, testid: "party-session" });
  });
  const join = token.startsWith("jln_") && view.state === "scheduled" && roomSession(view.sessions)
    ? h("a", { class: "btn btn-primary", href: `${page.href("/room")}#${token}`, testid: "join-room", text: t("notice.join") }) : null;
  return h("section", { class: "card", testid: "sessions" },
    h("h2", { class: "card-title", text: t("session.title") }),
    items.length ? h("ul", { class: "session-list" }, items)
      : h("p", { class: "muted", text: view.state === "submitted" ? t("session.noneYetReview") : t("session.noneYet") }),
    join && h("div", { class: "actions" }, join));
}

function noticesCard(t) {
  const notices = [...view.notices].reverse();
  // One way into the room: the newest link, while a confirmed session has not ended. Links sent for
  // earlier (rescheduled or past) sessions stay listed without a button.
  const newest = roomSession(view.sessions) ? notices.find((notice) => notice.link && roomUrl(notice.link)) : null;
  return h("section", { class: "card", testid: "notices" },
    h("h2", { class: "card-title", text: t("notice.title") }),
    notices.length ? h("ol", { class: "notice-list" }, notices.map((notice) => {
      // Closing the case revokes every join link: only a scheduled case offers one.
      const url = notice === newest && view.state === "scheduled" ? roomUrl(notice.link) : null;
      return h("li", { class: "notice", testid: "notice", dataset: { kind: notice.kind } },
        h("div", { class: "notice-body" },
          h("p", { class: "notice-text", text: noticeText(t, notice) }),
          h("time", { class: "muted small", datetime: notice.created_at, text: formatDateTime(notice.created_at, t.lang) })),
        url && h("a", { class: "btn btn-primary btn-small", href: url, testid: "notice-join", text: t("notice.join") }));
    })) : h("p", { class: "muted", text: t("notice.none") }));
}

function stateExplanation(t) {
  const parts = [h("p", { class: "state-text", testid: "state-text", text: t(`case.state.${view.state}`) })];
  if (view.state === "rejected" && view.rejection_reason) {
    parts.push(h("p", { class: "callout callout-warn" }, h("strong", { text: `${t("case.reason")}: ` }),
      h("span", { class: "prose", testid: "rejection-reason", text: view.rejection_reason })));
  }
  if (view.state === "closed" && view.outcome) {
    parts.push(h("p", { class: "callout", testid: "outcome", text: `${t("case.outcome")}: ${t(`outcome.${view.outcome}`)}` }));
  }
  return parts;
}

let openInvalid = false;

function renderOpenError() {
  $("open-error").hidden = !openInvalid;
  $("open-error").textContent = openInvalid ? page.t("case.openInvalid") : "";
}

/** The lost-receipt form, below the open form: a new receipt opens the case on this page. */
function renderRecovery() {
  const box = $("recover-box");
  if (!box || token || box.dataset.lang === page.t.lang) return; // built once per language: typing is kept
  box.dataset.lang = page.t.lang;
  fill(box, recoveryForm(page, (receipt) => openWith(receipt)));
}

function render() {
  const { t } = page;
  renderOpenError();
  renderRecovery();
  $("no-token").hidden = Boolean(token);
  const root = $("case-root");
  root.hidden = !token;
  if (!token) return;
  if (loadError) {
    const expired = loadError.code === "bad_token" || loadError.status === 401;
    fill(root, h("section", { class: "card card-narrow", testid: "case-error" },
      h("h1", { class: "card-title", text: expired ? t("case.badLinkTitle") : t("case.errorTitle") }),
      h("p", { text: expired ? t("case.badLink") : page.error(loadError) }),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "btn btn-secondary", text: t("common.retry"), on: { click: () => load() } }),
        forgetControl(t, ""))));
    return;
  }
  if (!view) {
    fill(root, h("p", { class: "loading", text: t("common.loading") }));
    return;
  }
  const refresh = h("button", { type: "button", class: "btn btn-secondary btn-small", testid: "refresh", text: t("common.refresh") });
  refresh.addEventListener("click", () => busy(refresh, load));
  const party = view.party;
  const grid = [sessionsCard(t), noticesCard(t)];
  if (["scheduled", "closed"].includes(view.state)) {
    if (agreementPanel) agreementPanel.render();
    grid.push(h("section", { class: "card card-span", testid: "agreement-card" },
      h("h2", { class: "card-title", text: t("agreement.title") }), agreementBox));
  }
  if (view.state === "closed") {
    grid.push(h("section", { class: "card card-span", testid: "feedback-card" },
      h("h2", { class: "card-title", text: t("feedback.title") }),
      feedbackForm(page, api, view.case_id)));
  }
  grid.push(h("section", { class: "card", testid: "details" },
    h("h2", { class: "card-title", text: t("case.details") }),
    definitionList([
      [t("case.yourRole"), t(`signer.${party.role}`)],
      [t("apply.name"), party.name, "party-name"],
      [t("apply.email"), party.email],
      [t("apply.phone"), party.phone],
      [t("case.identity"), party.verified_at ? t("case.verified", { time: formatDateTime(party.verified_at, t.lang) }) : t("case.notVerified")],
      [t("apply.lender"), view.lender, "case-lender"],
    ])));
  fill(root,
    h("div", { class: "page-head page-head-row" },
      h("div", {},
        h("p", { class: "eyebrow", text: t("case.caseNumber") }),
        h("h1", { class: "case-number", testid: "case-number", text: view.case_number }),
        h("div", { class: "head-meta" }, stateBadge(t, view.state), h("span", { class: "muted", text: view.lender }))),
      h("div", { class: "actions" }, live?.badge, refresh, forgetControl(t, "btn-small"))),
    progress(t, view.state, { agreementState: agreementPanel?.agreement?.state ?? null }),
    ...stateExplanation(t),
    h("div", { class: "grid-2" }, grid));
}

$("open-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("open-token").value.trim();
  let candidate = text;
  try {
    if (text.includes("#")) candidate = decodeURIComponent(new URL(text, location.href).hash.replace(/^#/, ""));
  } catch {
    candidate = text;
  }
  openInvalid = !TOKEN.test(candidate);
  renderOpenError();
  if (openInvalid) return;
  openWith(candidate);
});

/** Open the case with a receipt or link (typed in, or just recovered). @param {string} candidate */
function openWith(candidate) {
  try {
    sessionStorage.setItem(STORAGE_KEY, candidate);
  } catch {
    /* the token lives in this page only */
  }
  token = candidate;
  api = createApi({ token });
  render();
  load();
  goLive();
}

render();
load();
goLive();
