// Rating the mediation after the case is closed (a party, or the bank representative for the lender).
import { busy, h } from "./dom.js";

const drafts = new Map(); // case_id -> {rating, comment}: survives a redraw (language switch)

function given(caseId) {
  try {
    return sessionStorage.getItem(`mediation.feedback.${caseId}`) === "1";
  } catch {
    return false;
  }
}

function markGiven(caseId) {
  try {
    sessionStorage.setItem(`mediation.feedback.${caseId}`, "1");
  } catch {
    /* only this page will know */
  }
}

export function feedbackForm(page, api, caseId) {
  const { t } = page;
  if (given(caseId)) return h("p", { class: "callout callout-ok", testid: "feedback-thanks", text: t("feedback.thanks") });
  const draft = drafts.get(caseId) ?? { rating: 0, comment: "" };
  drafts.set(caseId, draft);
  const error = h("p", { class: "form-error", role: "alert", testid: "feedback-error", hidden: true });
  const stars = h("div", { class: "rating", role: "radiogroup", "aria-label": t("feedback.rating") },
    [1, 2, 3, 4, 5].map((value) => h("label", { class: "rating-option" },
      h("input", { type: "radio", name: `rating-${caseId}`, value, checked: draft.rating === value, testid: `rating-${value}`,
        on: { change: () => {
          draft.rating = value;
          // "Pick a rating first" is answered by picking one.
          error.hidden = true;
          error.textContent = "";
        } } }),
      h("span", { class: "rating-value", text: String(value) }),
      h("span", { class: "rating-label", text: t(`feedback.rating${value}`) }))));
  const comment = h("textarea", { id: `feedback-comment-${caseId}`, rows: "3", maxlength: "2000", testid: "feedback-comment",
    on: { input: (event) => { draft.comment = event.target.value; } } });
  comment.value = draft.comment;
  const submit = h("button", { type: "submit", class: "btn btn-primary", testid: "feedback-submit", text: t("feedback.submit") });
  const form = h("form", { class: "form feedback-form", testid: "feedback-form", novalidate: true },
    h("p", { class: "muted", text: t("feedback.lead") }),
    h("fieldset", { class: "field" }, h("legend", { text: t("feedback.rating") }), stars),
    h("div", { class: "field" }, h("label", { for: comment.id, text: t("feedback.comment") }), comment),
    error, h("div", { class: "actions" }, submit));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!draft.rating) {
      error.textContent = t("feedback.pickRating");
      error.hidden = false;
      return;
    }
    busy(submit, async () => {
      try {
        await api.post(`/api/cases/${caseId}/feedback`, { rating: draft.rating, comment: draft.comment.trim() });
      } catch (failure) {
        if (failure.code !== "already_given") {
          error.textContent = page.error(failure);
          error.hidden = false;
          return;
        }
      }
      markGiven(caseId);
      drafts.delete(caseId);
      page.toast("ok", t("feedback.thanks"));
      form.replaceWith(h("p", { class: "callout callout-ok", testid: "feedback-thanks", text: t("feedback.thanks") }));
    });
  });
  return form;
}
