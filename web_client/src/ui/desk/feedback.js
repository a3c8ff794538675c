// Feedback in aggregate, for case officers: count, average, distribution, per mediator, recent comments.
import { formatDateTime } from "../../lib/dates.js";
import { fill, h } from "../dom.js";

export function feedbackSummary(ctx, root) {
  const { api, page } = ctx;
  let summary = null;
  let error = null;

  function draw() {
    const { t } = page;
    const number = (value) => new Intl.NumberFormat(t.lang, { minimumFractionDigits: 1, maximumFractionDigits: 2 }).format(value);
    const head = h("div", { class: "page-head page-head-row" },
      h("div", {}, h("h1", { text: t("summary.title") }), h("p", { class: "muted", text: t("summary.lead") })),
      h("div", { class: "actions" }, h("button", { type: "button", class: "btn btn-secondary btn-small", testid: "refresh",
        text: t("common.refresh"), on: { click: () => load() } })));
    if (error) return fill(root, head, h("p", { class: "form-error", role: "alert", text: page.error(error) }));
    if (!summary) return fill(root, head, h("p", { class: "loading", text: t("common.loading") }));
    const max = Math.max(1, ...Object.values(summary.distribution));
    fill(root, head,
      h("div", { class: "stats" },
        h("div", { class: "stat card" }, h("p", { class: "stat-label", text: t("summary.count") }),
          h("p", { class: "stat-value", testid: "feedback-count", text: String(summary.count) })),
        h("div", { class: "stat card" }, h("p", { class: "stat-label", text: t("summary.average") }),
          h("p", { class: "stat-value", testid: "feedback-average", text: summary.average === null ? "—" : number(summary.average) }),
          h("p", { class: "muted small", text: t("summary.outOf") }))),
      h("div", { class: "grid-2" },
        h("section", { class: "card", testid: "feedback-distribution" },
          h("h2", { class: "card-title", text: t("summary.distribution") }),
          h("ul", { class: "bars" }, ["5", "4", "3", "2", "1"].map((rating) => h("li", { class: "bar-row" },
            h("span", { class: "bar-label", text: t(`feedback.rating${rating}`) }),
            h("progress", { class: "bar", max: String(max), value: String(summary.distribution[rating] ?? 0),
              "aria-label": t(`feedback.rating${rating}`) }),
            h("span", { class: "bar-count", testid: `distribution-${rating}`, text: String(summary.distribution[rating] ?? 0) }))))),
        h("section", { class: "card", testid: "feedback-mediators" },
          h("h2", { class: "card-title", text: t("summary.byMediator") }),
          summary.by_mediator.length ? h("table", { class: "table" },
            h("thead", {}, h("tr", {}, h("th", { scope: "col", text: t("role.mediator") }), h("th", { scope: "col", class: "num", text: t("summary.count") }),
              h("th", { scope: "col", class: "num", text: t("summary.average") }))),
            h("tbody", {}, summary.by_mediator.map((m) => h("tr", {}, h("td", { class: "cell-text", text: m.display_name }),
              h("td", { class: "num", text: String(m.count) }), h("td", { class: "num", text: number(m.average) })))))
            : h("p", { class: "muted", text: t("summary.none") })),
        h("section", { class: "card card-span", testid: "feedback-comments" },
          h("h2", { class: "card-title", text: t("summary.comments") }),
          summary.recent_comments.length ? h("ul", { class: "comments" }, summary.recent_comments.map((c) => h("li", { class: "comment", testid: "feedback-comment-item" },
            h("div", { class: "comment-head" }, h("span", { class: "badge badge-rating", text: t("summary.stars", { rating: c.rating }) }),
              h("time", { class: "muted small", datetime: c.created_at, text: formatDateTime(c.created_at, t.lang) })),
            h("p", { class: "prose", testid: "feedback-comment-text", text: c.comment }))))
            : h("p", { class: "muted", text: t("summary.noComments") }))));
  }

  async function load() {
    draw();
    try {
      summary = await api.get("/api/feedback/summary");
      error = null;
    } catch (failure) {
      error = failure;
    }
    draw();
  }

  return { draw, load };
}
