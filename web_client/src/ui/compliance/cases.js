// The case list (filter, pages) and one case with its sealed records grouped by session.
import { groupRecords } from "../../lib/compliance/listing.js";
import { errorMessage } from "../../lib/i18n.js";
import { $, fill, h } from "../dom.js";
import { PER_PAGE, STATES, api, state } from "./context.js";
import { fact, formatSize, formatTime, personById, row, stateBadge } from "./format.js";
import { currentKeyring } from "./keys.js";
import { closeOpened, openScope } from "./opening.js";
import { sessionExpired } from "./session.js";

export function renderFilter() {
  const { t } = state;
  const select = $("state-filter");
  fill(select, h("option", { value: "", text: t("cases.all") }),
    STATES.map((s) => h("option", { value: s, text: t(`state.${s}`) })));
  select.value = state.filter;
}

export async function loadCases() {
  try {
    state.list = await api.listCases({ state: state.filter, page: state.page, perPage: PER_PAGE });
    state.listError = null;
  } catch (error) {
    if (sessionExpired(error)) return;
    state.listError = error;
  }
  renderCases();
}

export function renderCases() {
  const { t } = state;
  const rows = $("case-rows");
  const list = state.list;
  const empty = $("cases-empty");
  if (state.listError) {
    fill(rows);
    empty.hidden = false;
    empty.textContent = errorMessage(t, state.listError);
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

export async function openCase(caseId) {
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

export function renderCase() {
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
  const needKey = currentKeyring() === null ? h("p", { class: "small warn", text: t("case.needIdentity") }) : null;
  fill(body,
    groups.sessions.map((group) => sessionCard(group, needKey?.cloneNode(true) ?? null)),
    groups.agreements.length ? agreementsCard(groups.agreements, needKey?.cloneNode(true) ?? null) : null,
    groups.other.length ? h("section", { class: "record-group" },
      h("h3", { class: "group-title", text: t("case.other") }),
      h("ul", { class: "plain" }, groups.other.map((r) => h("li", { class: "mono small", text: `${r.kind} ${r.key}` }))))
      : null);
}

export function sessionCard(group, needKey) {
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
  // Named by its scheduled time, mode and state (the case view's sessions); the id only as a tooltip.
  const session = (state.caseView?.sessions ?? []).find((s) => s.session_id === group.sessionId);
  const title = session
    ? [`${t("case.session")} ${formatTime(session.starts_at, "medium")}`,
        h("span", { class: "muted small", text: ` ${t(`mode.${session.mode}`)} · ${t(`sessionState.${session.state}`)}` })]
    : [`${t("case.session")} `, h("span", { class: "mono", text: group.sessionId })];
  return h("section", { class: "record-group", testid: "session-group", dataset: { sessionId: group.sessionId } },
    h("div", { class: "group-head" },
      h("h3", { class: "group-title", testid: "session-title", title: group.sessionId }, ...title),
      group.first ? h("span", { class: "muted small", text: t("case.sessionFirst", { time: formatTime(group.first, "short") }) }) : null),
    h("dl", { class: "facts facts-wide" },
      row(t("case.recordings"), recordings.length ? h("ul", { class: "plain" }, recordings) : t("case.noRecordings")),
      row(t("case.chat"), t("case.chatCount", { count: group.chat.count, size: formatSize(group.chat.bytes) })),
      row(t("case.transcript"), group.transcript ? t("case.transcriptYes") : t("case.transcriptNo")),
      row(t("case.consents"), consents.length ? h("ul", { class: "plain" }, consents) : "—")),
    h("div", { class: "group-actions" },
      h("button", { type: "button", class: "btn btn-primary", testid: "open-session", dataset: { sessionId: group.sessionId,
        needsIdentity: "" }, disabled: currentKeyring() === null || working, text: t("case.openSession"),
      on: { click: () => openScope({ kind: "session", sessionId: group.sessionId }) } }),
      needKey));
}

export function agreementsCard(agreements, needKey) {
  const { t } = state;
  const working = state.opened?.status === "working";
  return h("section", { class: "record-group", testid: "agreements-group" },
    h("h3", { class: "group-title", text: t("case.agreements") }),
    h("ul", { class: "plain" }, agreements.map((r) => h("li", { text: t("case.agreementVersion",
      { version: r.index, size: formatSize(r.size) }) }))),
    h("div", { class: "group-actions" },
      h("button", { type: "button", class: "btn btn-primary", testid: "open-agreements", dataset: { needsIdentity: "" },
        disabled: currentKeyring() === null || working, text: t("case.openAgreements"),
        on: { click: () => openScope({ kind: "agreements" }) } }),
      needKey));
}

/** Wire the filter, the pager and the way back to the list (once, at start). */
export function wire() {
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

  $("case-back").addEventListener("click", () => {
    state.caseView = null;
    state.records = null;
    closeOpened();
    renderCase();
    $("cases").hidden = false;
    loadCases();
  });
}
