// The case list: paged, filterable by state; a mediator or bank representative sees their own cases.
import { query } from "../../lib/api.js";
import { formatDateTime } from "../../lib/dates.js";
import { stateBadge } from "../case.js";
import { fill, h } from "../dom.js";

export const STATES = ["submitted", "accepted", "scheduled", "rejected", "closed"];
const PER_PAGE = 10;

export function pager(t, { page, perPage, total, go, testid = "pager" }) {
  const pages = Math.max(1, Math.ceil(total / perPage));
  const prev = h("button", { type: "button", class: "btn btn-secondary btn-small", testid: `${testid}-prev`, disabled: page <= 1,
    text: t("pager.prev"), on: { click: () => go(page - 1) } });
  const next = h("button", { type: "button", class: "btn btn-secondary btn-small", testid: `${testid}-next`, disabled: page >= pages,
    text: t("pager.next"), on: { click: () => go(page + 1) } });
  return h("nav", { class: "pager", testid, "aria-label": t("pager.label") }, prev,
    h("span", { class: "pager-text", testid: `${testid}-text`, text: t("pager.text", { page, pages, total }) }), next);
}

export function caseList(ctx, root, routeInfo) {
  const { api, page } = ctx;
  const state = STATES.includes(routeInfo.params.get("state")) ? routeInfo.params.get("state") : "";
  const pageNumber = Math.max(1, Number.parseInt(routeInfo.params.get("page") ?? "1", 10) || 1);
  let result = null;
  let error = null;

  const go = (nextState, nextPage) => {
    const params = new URLSearchParams();
    if (nextState) params.set("state", nextState);
    if (nextPage > 1) params.set("page", String(nextPage));
    const search = params.toString();
    ctx.navigate(`#/cases${search ? `?${search}` : ""}`);
  };

  function draw() {
    const { t } = page;
    const role = ctx.me.role;
    const filter = h("select", { id: "state-filter", testid: "state-filter" },
      h("option", { value: "", text: t("list.allStates") }),
      STATES.map((s) => h("option", { value: s, text: t(`state.${s}`) })));
    filter.value = state;
    filter.addEventListener("change", () => go(filter.value, 1));
    const refresh = h("button", { type: "button", class: "btn btn-secondary btn-small", testid: "refresh", text: t("common.refresh"),
      on: { click: () => load() } });
    let body;
    if (error) body = h("p", { class: "form-error", role: "alert", text: page.error(error) });
    else if (!result) body = h("p", { class: "loading", text: t("common.loading") });
    else if (!result.cases.length) body = h("p", { class: "empty", testid: "cases-empty", text: state ? t("list.emptyState") : t("list.empty") });
    else {
      body = h("div", { class: "table-wrap" }, h("table", { class: "table table-cases", testid: "case-table" },
        h("thead", {}, h("tr", {},
          ["list.caseNumber", "list.state", "list.lender", "list.bucket", "list.created"].map((key) => h("th", { scope: "col", text: t(key) })))),
        h("tbody", {}, result.cases.map((c) => h("tr", { testid: "case-row", dataset: { caseId: c.case_id, state: c.state } },
          h("td", {}, h("a", { href: `#/case/${c.case_id}`, class: "case-link", testid: "case-link", text: c.case_number })),
          h("td", {}, stateBadge(t, c.state, "row-state")),
          h("td", { class: "cell-text", text: c.lender }),
          h("td", { text: t(`bucket.${c.overdue_bucket}`) }),
          h("td", { class: "nowrap", text: formatDateTime(c.created_at, t.lang, { short: true }) }))))));
    }
    fill(root,
      h("div", { class: "page-head page-head-row" },
        h("div", {}, h("h1", { text: role === "case_officer" || role === "compliance_officer" ? t("list.title") : t("list.titleMine") }),
          h("p", { class: "muted", text: t(`list.lead.${role}`) })),
        h("div", { class: "toolbar" },
          h("label", { class: "inline-label", for: "state-filter", text: t("list.filter") }), filter, refresh)),
      h("section", { class: "card card-flush" }, body,
        result && result.total > 0 ? pager(t, { page: result.page, perPage: result.per_page, total: result.total,
          go: (p) => go(state, p) }) : null));
  }

  async function load() {
    draw();
    try {
      result = await api.get(`/api/cases${query({ state, page: pageNumber, per_page: PER_PAGE })}`);
      error = null;
    } catch (failure) {
      error = failure;
    }
    draw();
  }

  return { draw, load };
}
