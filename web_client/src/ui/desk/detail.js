// One case on the desk: what it is, and what the signed-in role may do with it now.
import { Possession } from "../../lib/possession.js";
import { formatDateTime } from "../../lib/dates.js";
import { formatMinor } from "../../lib/money.js";
import { AgreementPanel } from "../agreement.js";
import { progress, stateBadge } from "../case.js";
import { busy, definitionList, fill, h } from "../dom.js";
import { feedbackForm } from "../feedback.js";
import { AgreementEditor } from "./editor.js";
import { linksCard, sessionsCard } from "./schedule.js";

const METHODS = ["id_card", "passport", "bank_authorization", "video_check", "other"];
const OUTCOMES = ["settled", "not_settled", "withdrawn"];
export const SCHEDULERS = ["case_officer", "mediator"];

export function caseDetail(ctx, root, { caseId }) {
  const { api, page, drafts } = ctx;
  const role = ctx.me.role;
  const d = {
    ctx, caseId, role, view: null, error: null, staff: null, links: null, issued: null, receipt: null, cardErrors: {}, confirming: {},
  };
  const agreementBox = h("div", { class: "agreement", testid: "agreement" });
  let panel = null;
  let editor = null;

  /** Run an action: success and failure are both said; the case is reloaded after a success. */
  d.act = (button, card, work, successKey) => busy(button, async () => {
    try {
      const result = await work();
      delete d.cardErrors[card];
      page.toast("ok", page.t(successKey));
      await load(result);
      return true;
    } catch (error) {
      // Said once, in the card the action belongs to (every card shows its error), not in a toast too.
      d.cardErrors[card] = error;
      draw();
      return false;
    }
  });
  d.cardError = (card) => {
    const error = d.cardErrors[card];
    return error ? h("p", { class: "form-error", role: "alert", testid: `${card}-error`, text: page.error(error) }) : null;
  };
  d.redraw = () => draw();

  async function loadLinks() {
    try {
      d.links = (await api.get(`/api/cases/${caseId}/join-links`)).links;
    } catch (error) {
      d.links = null;
      d.cardErrors.links = error;
    }
  }
  d.loadLinks = loadLinks;

  async function load(updated) {
    if (!d.view) draw();
    try {
      d.view = updated && updated.case_id === caseId && updated.parties ? updated : await api.get(`/api/cases/${caseId}`);
      d.error = null;
    } catch (error) {
      d.error = error;
    }
    const view = d.view;
    const tasks = [];
    if (view && role === "case_officer" && d.staff === null) {
      tasks.push(api.get("/api/staff").then((r) => { d.staff = r.staff; }, (error) => { d.cardErrors.assign = error; }));
    }
    if (view && SCHEDULERS.includes(role) && ["scheduled", "closed"].includes(view.state)) tasks.push(loadLinks());
    if (view && role === "case_officer") {
      tasks.push(api.get(`/api/cases/${caseId}/receipt`).then((r) => { d.receipt = r; }, (error) => { d.cardErrors.receipt = error; }));
    }
    if (view && ["scheduled", "closed"].includes(view.state)) {
      if (!panel) {
        panel = new AgreementPanel(agreementBox, {
          page, api, caseId, caseNumber: view.case_number, signer: role === "bank_representative" ? "lender" : null,
          canSign: () => d.view?.state === "scheduled", onChange: () => draw(),
          possession: role === "bank_representative"
            ? (d.possession = d.possession?.caseId === caseId ? d.possession : new Possession({ api, caseId })) : null,
        });
      }
      tasks.push(panel.load(view.agreement_version != null));
    }
    await Promise.all(tasks);
    draw();
  }

  function summaryCard(t, view) {
    const money = (minor) => formatMinor(minor, view.currency, t.lang);
    const assigned = (who) => view.assignments.find((a) => a.role === who)?.display_name ?? t("case.unassigned");
    return h("section", { class: "card card-span", testid: "summary" },
      h("h2", { class: "card-title", text: t("detail.summary") }),
      definitionList([
        [t("apply.lender"), view.lender, "detail-lender"],
        [t("apply.loanReference"), view.loan_reference],
        [t("apply.principal"), money(view.principal_minor), "detail-principal"],
        [t("apply.overdue"), money(view.overdue_minor), "detail-overdue"],
        [t("apply.days"), t("detail.days", { days: view.days_overdue, bucket: t(`bucket.${view.overdue_bucket}`) }), "detail-days"],
        [t("role.mediator"), assigned("mediator"), "detail-mediator"],
        [t("role.bank_representative"), assigned("bank_representative"), "detail-bank"],
        [t("detail.created"), formatDateTime(view.created_at, t.lang)],
        [t("detail.updated"), formatDateTime(view.updated_at, t.lang)],
      ], "facts facts-3"),
      h("h3", { class: "subhead", text: t("detail.proposal") }),
      view.proposal ? h("p", { class: "prose quote", testid: "detail-proposal", text: view.proposal })
        : h("p", { class: "muted", text: t("detail.noProposal") }),
      view.rejection_reason ? h("div", { class: "callout callout-warn", testid: "detail-rejection" },
        h("strong", { text: t("case.reason") }), h("p", { class: "prose", text: view.rejection_reason })) : null,
      view.outcome ? h("div", { class: "callout", testid: "detail-outcome" },
        h("strong", { text: `${t("case.outcome")}: ${t(`outcome.${view.outcome}`)}` }),
        view.closing_note ? h("p", { class: "prose", text: view.closing_note }) : null) : null);
  }

  function partiesCard(t, view) {
    const canVerify = role === "case_officer" && view.state === "submitted";
    return h("section", { class: "card", testid: "parties" },
      h("h2", { class: "card-title", text: t("detail.parties") }),
      view.parties.map((party) => {
        const key = `verify.${caseId}.${party.party_id}`;
        let action = null;
        if (!party.verified_at && canVerify) {
          const method = drafts.input(`${key}.method`, { tag: "select", initial: "id_card", testid: `verify-method-${party.role}`,
            "aria-label": t("verify.method"), options: METHODS.map((m) => [m, t(`method.${m}`)]) });
          const reference = drafts.input(`${key}.reference`, { maxlength: "120", testid: `verify-reference-${party.role}`,
            placeholder: t("verify.referencePlaceholder"), "aria-label": t("verify.reference") });
          // A party with no contact on file (the lender) gets the one this check confirmed: its join links go there.
          const contact = party.email || party.phone ? null : drafts.input(`${key}.email`, { type: "email", maxlength: "254",
            testid: `verify-email-${party.role}`, placeholder: t("verify.emailPlaceholder"), "aria-label": t("verify.email") });
          const button = h("button", { type: "button", class: "btn btn-primary btn-small", testid: `verify-${party.role}`, text: t("verify.submit") });
          button.addEventListener("click", () => {
            const body = { method: method.value, reference: reference.value.trim() };
            if (contact && contact.value.trim()) body.email = contact.value.trim();
            if (!body.reference) {
              d.cardErrors[`verify-${party.role}`] = { code: "verify_reference_missing" };
              draw();
              return;
            }
            d.act(button, `verify-${party.role}`, () => api.post(`/api/cases/${caseId}/parties/${party.party_id}/verify`, body),
              "verify.done").then((ok) => ok && drafts.clear(key));
          });
          action = h("div", { class: "verify-form" }, h("div", { class: "field-row field-row-tight" }, method, reference, contact, button),
            d.cardError(`verify-${party.role}`));
        }
        return h("div", { class: "party", testid: `party-${party.role}`, dataset: { verified: Boolean(party.verified_at) } },
          h("div", { class: "party-head" },
            h("span", { class: "party-role", text: t(`signer.${party.role}`) }),
            h("span", { class: "party-name", testid: "party-name", text: party.name }),
            h("span", { class: `badge ${party.verified_at ? "badge-ok" : "badge-pending"}`, testid: "party-verified",
              text: party.verified_at ? t("detail.verified") : t("detail.unverified") })),
          definitionList([
            [t("apply.email"), party.email],
            [t("apply.phone"), party.phone],
            [t("verify.method"), party.verification_method ? t(`method.${party.verification_method}`) : null],
            [t("detail.verifiedAt"), party.verified_at ? formatDateTime(party.verified_at, t.lang) : null],
          ], "facts facts-compact"),
          action, party.role === "borrower" ? receiptRow(t) : null);
      }));
  }

  /** The borrower's receipt as a case officer sees it: its state and a revoke action, never the receipt. */
  function receiptRow(t) {
    if (role !== "case_officer" || !d.receipt) return null;
    let revoke = null;
    if (d.receipt.status !== "revoked") {
      revoke = h("button", { type: "button", class: "btn btn-quiet btn-small", testid: "revoke-receipt", text: t("receipt.revoke"),
        title: t("receipt.revokeHint") });
      revoke.addEventListener("click", () => d.act(revoke, "receipt", async () => {
        d.receipt = await api.post(`/api/cases/${caseId}/receipt/revoke`, {});
      }, "receipt.revoked"));
    }
    return h("div", { class: "receipt-row", testid: "receipt", dataset: { status: d.receipt.status } },
      h("span", { text: `${t("receipt.label")}: ` }),
      h("span", { class: `badge badge-receipt-${d.receipt.status}`, testid: "receipt-status", text: t(`receipt.state.${d.receipt.status}`) }),
      revoke, d.cardError("receipt"));
  }

  function reviewCard(t, view) {
    const unverified = view.parties.filter((p) => !p.verified_at);
    const accept = h("button", { type: "button", class: "btn btn-primary", testid: "accept", text: t("review.accept") });
    accept.addEventListener("click", () => d.act(accept, "review", () => api.post(`/api/cases/${caseId}/accept`, {}), "review.accepted"));
    const reason = drafts.input(`reject.${caseId}`, { tag: "textarea", rows: "3", maxlength: "2000", id: `reject-${caseId}`, testid: "reject-reason" });
    // Rejecting cannot be undone: it asks first, as closing does.
    let rejectActions;
    if (d.confirming.reject) {
      const confirm = h("button", { type: "button", class: "btn btn-danger", testid: "reject-confirm", text: t("review.rejectConfirm") });
      confirm.addEventListener("click", () => d.act(confirm, "review",
        () => api.post(`/api/cases/${caseId}/reject`, { reason: reason.value.trim() }), "review.rejected")
        .then((ok) => {
          d.confirming.reject = false;
          if (ok) drafts.clear(`reject.${caseId}`);
        }));
      rejectActions = h("div", { class: "confirm-box" }, h("p", { text: t("review.rejectSure") }),
        h("div", { class: "actions" }, confirm,
          h("button", { type: "button", class: "btn btn-quiet", testid: "reject-cancel", text: t("common.cancel"),
            on: { click: () => { d.confirming.reject = false; draw(); } } })));
    } else {
      const reject = h("button", { type: "button", class: "btn btn-danger", testid: "reject", text: t("review.reject") });
      reject.addEventListener("click", () => {
        if (!reason.value.trim()) {
          d.cardErrors.review = { code: "reject_reason_missing" };
          draw();
          return;
        }
        delete d.cardErrors.review;
        d.confirming.reject = true;
        draw();
      });
      rejectActions = h("div", { class: "actions" }, reject);
    }
    return h("section", { class: "card", testid: "review" },
      h("h2", { class: "card-title", text: t("review.title") }),
      unverified.length ? h("p", { class: "callout callout-warn", testid: "review-unverified",
        text: t("review.unverified", { parties: unverified.map((p) => t(`signer.${p.role}`)).join(t("list.separator")) }) })
        : h("p", { class: "muted", text: t("review.ready") }),
      h("div", { class: "actions" }, accept),
      h("div", { class: "reject-box" },
        h("div", { class: "field" }, h("label", { for: `reject-${caseId}`, text: t("review.reason") }), reason),
        rejectActions),
      d.cardError("review"));
  }

  function assignCard(t, view) {
    const editable = role === "case_officer" && ["accepted", "scheduled"].includes(view.state);
    const current = (who) => view.assignments.find((a) => a.role === who);
    const rows = [];
    const selects = {};
    for (const who of ["mediator", "bank_representative"]) {
      const assigned = current(who);
      if (editable) {
        const candidates = (d.staff ?? []).filter((u) => u.role === who && !u.disabled);
        const options = [["", t("assign.choose")], ...candidates.map((u) => [u.user_id, `${u.display_name} (${u.username})`])];
        selects[who] = drafts.input(`assign.${caseId}.${who}`, { tag: "select", initial: assigned?.user_id ?? "", testid: `assign-${who}`,
          id: `assign-${who}-${caseId}`, options });
        rows.push(h("div", { class: "field" }, h("label", { for: `assign-${who}-${caseId}`, text: t(`role.${who}`) }), selects[who],
          candidates.length ? null : h("p", { class: "hint", text: t("assign.noneAvailable", { role: t(`role.${who}`) }) })));
      } else {
        rows.push(definitionList([[t(`role.${who}`), assigned?.display_name ?? t("case.unassigned")]]));
      }
    }
    let save = null;
    if (editable) {
      save = h("button", { type: "button", class: "btn btn-primary", testid: "assign-save", text: t("assign.save") });
      save.addEventListener("click", () => {
        const body = {};
        const mediator = selects.mediator.value;
        const bank = selects.bank_representative.value;
        if (mediator && mediator !== current("mediator")?.user_id) body.mediator_id = mediator;
        if (bank && bank !== current("bank_representative")?.user_id) body.bank_representative_id = bank;
        if (!Object.keys(body).length) {
          d.cardErrors.assign = { code: "assign_nothing" };
          draw();
          return;
        }
        d.act(save, "assign", () => api.put(`/api/cases/${caseId}/assignments`, body), "assign.saved");
      });
    }
    return h("section", { class: "card", testid: "assign" },
      h("h2", { class: "card-title", text: t("assign.title") }),
      editable ? h("p", { class: "muted small", text: t("assign.lead") }) : null,
      h("div", { class: "field-row" }, rows),
      save ? h("div", { class: "actions" }, save) : null,
      d.cardError("assign"));
  }

  function agreementCard(t, view) {
    const parts = [h("h2", { class: "card-title", text: t("agreement.title") })];
    const agreement = panel?.agreement ?? null;
    if (role === "mediator" && view.state === "scheduled" && agreement?.state !== "signed") {
      if (!editor) editor = new AgreementEditor(ctx, { caseView: view, onSaved: () => load() });
      editor.caseView = view;
      editor.sync(agreement);
      parts.push(h("h3", { class: "subhead", text: agreement ? t("editor.titleRevise") : t("editor.title") }), editor.render(),
        h("h3", { class: "subhead", text: t("editor.current") }));
    } else if (role === "mediator" && view.state !== "closed" && !agreement) {
      parts.push(h("p", { class: "muted", text: t("editor.whenScheduled") }));
    }
    if (panel) panel.render();
    parts.push(agreementBox);
    return h("section", { class: "card card-span", testid: "agreement-card" }, parts);
  }

  function closeCard(t, view) {
    const outcome = drafts.input(`close.${caseId}.outcome`, { tag: "select", initial: "settled", testid: "close-outcome",
      id: `close-outcome-${caseId}`, options: OUTCOMES.map((o) => [o, t(`outcome.${o}`)]) });
    const note = drafts.input(`close.${caseId}.note`, { tag: "textarea", rows: "2", maxlength: "2000", testid: "close-note", id: `close-note-${caseId}` });
    const unsigned = view.state === "scheduled" && panel?.agreement && panel.agreement.state !== "signed";
    let actions;
    if (d.confirming.close) {
      const confirm = h("button", { type: "button", class: "btn btn-danger", testid: "close-confirm", text: t("close.confirm") });
      confirm.addEventListener("click", () => d.act(confirm, "close",
        () => api.post(`/api/cases/${caseId}/close`, { outcome: outcome.value, note: note.value.trim() }), "close.done")
        .then((ok) => {
          d.confirming.close = false;
          if (ok) drafts.clear(`close.${caseId}`);
        }));
      actions = h("div", { class: "confirm-box" }, h("p", { text: t("close.areYouSure", { outcome: t(`outcome.${outcome.value}`) }) }),
        h("div", { class: "actions" }, confirm,
          h("button", { type: "button", class: "btn btn-quiet", text: t("common.cancel"), on: { click: () => { d.confirming.close = false; draw(); } } })));
    } else {
      const close = h("button", { type: "button", class: "btn btn-secondary", testid: "close-submit", text: t("close.submit") });
      close.addEventListener("click", () => {
        d.confirming.close = true;
        draw();
      });
      actions = h("div", { class: "actions" }, close);
    }
    return h("section", { class: "card", testid: "close" },
      h("h2", { class: "card-title", text: t("close.title") }),
      unsigned ? h("p", { class: "callout callout-warn", text: t("close.unsigned") }) : null,
      h("div", { class: "field" }, h("label", { for: `close-outcome-${caseId}`, text: t("close.outcome") }), outcome),
      h("div", { class: "field" }, h("label", { for: `close-note-${caseId}`, text: t("close.note") }), note),
      actions, d.cardError("close"));
  }

  function draw() {
    const { t } = page;
    const back = h("a", { href: "#/cases", class: "back-link", testid: "back", text: t("detail.back") });
    if (d.error) {
      fill(root, back, h("section", { class: "card card-narrow" }, h("p", { class: "form-error", role: "alert", testid: "detail-error",
        text: page.error(d.error) })));
      return;
    }
    const view = d.view;
    if (!view) {
      fill(root, back, h("p", { class: "loading", text: t("common.loading") }));
      return;
    }
    const refresh = h("button", { type: "button", class: "btn btn-secondary btn-small", testid: "refresh", text: t("common.refresh") });
    refresh.addEventListener("click", () => busy(refresh, () => load()));
    const cards = [summaryCard(t, view), partiesCard(t, view)];
    if (role === "case_officer" && view.state === "submitted") cards.push(reviewCard(t, view));
    if (["accepted", "scheduled", "closed"].includes(view.state)) cards.push(assignCard(t, view));
    if (["accepted", "scheduled", "closed"].includes(view.state)) cards.push(sessionsCard(d, t, view));
    if (SCHEDULERS.includes(role) && ["scheduled", "closed"].includes(view.state)) cards.push(linksCard(d, t, view));
    if (["scheduled", "closed"].includes(view.state)) cards.push(agreementCard(t, view));
    if (SCHEDULERS.includes(role) && ["accepted", "scheduled"].includes(view.state)) cards.push(closeCard(t, view));
    if (role === "bank_representative" && view.state === "closed") {
      cards.push(h("section", { class: "card", testid: "feedback-card" }, h("h2", { class: "card-title", text: t("feedback.titleBank") }),
        feedbackForm(page, api, caseId)));
    }
    fill(root, back,
      h("div", { class: "page-head page-head-row" },
        h("div", {},
          h("p", { class: "eyebrow", text: t("case.caseNumber") }),
          h("h1", { class: "case-number", testid: "case-number", text: view.case_number }),
          h("div", { class: "head-meta" }, stateBadge(t, view.state), h("span", { class: "muted cell-text", text: view.lender }))),
        h("div", { class: "actions" }, refresh)),
      progress(t, view.state, { agreementState: panel?.agreement?.state ?? null }),
      h("div", { class: "grid-2" }, cards));
  }

  return { draw, load: () => load() };
}
