// The mediator's agreement draft: settled amount, waived penalties, instalments, free-text terms,
// with a live check that the instalments add up, then PUT /api/cases/{case_id}/agreement.
import { buildAgreement, MAX_INSTALMENTS, splitEvenly, sumMinor, TERMS_MAX } from "../../lib/agreement.js";
import { addMonths, toLocalDate } from "../../lib/dates.js";
import { formatMinor, minorToDecimal, parseMinor } from "../../lib/money.js";
import { busy, fill, h } from "../dom.js";

function initialState(caseView, agreement) {
  const document = agreement?.document;
  const currency = caseView.currency;
  if (document) {
    return {
      baseVersion: agreement.version, dirty: false, showErrors: false, confirming: false,
      settled: minorToDecimal(document.settled_amount_minor, currency),
      waived: document.waived_penalties_minor ? minorToDecimal(document.waived_penalties_minor, currency) : "",
      rows: document.instalments.map((item) => ({ due_date: item.due_date, amount: minorToDecimal(item.amount_minor, currency) })),
      terms: document.terms ?? "", splitCount: String(document.instalments.length), splitFirst: document.instalments[0]?.due_date ?? "",
    };
  }
  const first = addMonths(toLocalDate(new Date()), 1);
  return {
    baseVersion: 0, dirty: false, showErrors: false, confirming: false,
    settled: minorToDecimal(caseView.overdue_minor, currency), waived: "", rows: [{ due_date: first, amount: "" }], terms: "",
    splitCount: "3", splitFirst: first,
  };
}

export class AgreementEditor {
  constructor(ctx, { caseView, onSaved }) {
    Object.assign(this, { ctx, caseView, onSaved });
    this.root = h("div", { class: "editor", testid: "agreement-editor" });
    this.error = null;
  }

  get state() {
    return this.ctx.drafts.get(`agreement.${this.caseView.case_id}`, null);
  }

  /** Start from the current agreement (once per version, unless the mediator is mid-edit). */
  sync(agreement) {
    const state = this.state;
    const version = agreement?.version ?? 0;
    if (!state || (!state.dirty && state.baseVersion !== version)) {
      this.ctx.drafts.set(`agreement.${this.caseView.case_id}`, initialState(this.caseView, agreement));
    }
    this.agreement = agreement;
  }

  values() {
    const state = this.state;
    return { currency: this.caseView.currency, settled: state.settled, waived: state.waived, instalments: state.rows, terms: state.terms };
  }

  edited() {
    this.state.dirty = true;
    this.updateCheck();
  }

  render() {
    const { t } = this.ctx.page;
    const state = this.state;
    const currency = this.caseView.currency;
    const result = buildAgreement(this.values(), { today: toLocalDate(new Date()) });
    const errorFor = (field) => (state.showErrors && result.errors[field] ? this.message(field, result.errors[field]) : null);
    const fieldError = (field, testid) => {
      const text = errorFor(field);
      return h("p", { class: "field-error", testid, dataset: { key: field }, hidden: !text, text: text ?? "" });
    };
    const bind = (key, props) => {
      const node = h(props.tag ?? "input", { ...props, tag: undefined });
      node.value = state[key];
      node.addEventListener("input", () => {
        state[key] = node.value;
        this.edited();
      });
      return node;
    };

    const rows = state.rows.map((row, i) => {
      const date = h("input", { type: "date", testid: `instalment-date-${i}`, "aria-label": t("editor.dueDateN", { n: i + 1 }) });
      date.value = row.due_date;
      date.addEventListener("input", () => {
        row.due_date = date.value;
        this.edited();
      });
      const amount = h("input", { inputmode: "decimal", testid: `instalment-amount-${i}`, autocomplete: "off",
        "aria-label": t("editor.amountN", { n: i + 1 }) });
      amount.value = row.amount;
      amount.addEventListener("input", () => {
        row.amount = amount.value;
        this.edited();
      });
      const remove = h("button", { type: "button", class: "btn btn-quiet btn-small", testid: `instalment-remove-${i}`,
        disabled: state.rows.length <= 1, "aria-label": t("editor.removeN", { n: i + 1 }), text: t("editor.remove") });
      remove.addEventListener("click", () => {
        state.rows.splice(i, 1);
        this.edited();
        this.render();
      });
      return h("tr", { testid: "instalment-row" },
        h("td", { class: "muted", text: String(i + 1) }),
        h("td", {}, date, fieldError(`instalments.${i}.due_date`)),
        h("td", {}, amount, fieldError(`instalments.${i}.amount`)),
        h("td", {}, remove));
    });
    const add = h("button", { type: "button", class: "btn btn-secondary btn-small", testid: "instalment-add",
      disabled: state.rows.length >= MAX_INSTALMENTS, text: t("editor.add") });
    add.addEventListener("click", () => {
      const last = state.rows[state.rows.length - 1]?.due_date;
      state.rows.push({ due_date: /^\d{4}-\d{2}-\d{2}$/.test(last ?? "") ? addMonths(last, 1) : "", amount: "" });
      this.edited();
      this.render();
    });

    const splitCount = bind("splitCount", { inputmode: "numeric", class: "input-short", testid: "split-count", "aria-label": t("editor.splitCount") });
    const splitFirst = bind("splitFirst", { type: "date", testid: "split-first", "aria-label": t("editor.splitFirst") });
    const split = h("button", { type: "button", class: "btn btn-secondary btn-small", testid: "split-apply", text: t("editor.split") });
    split.addEventListener("click", () => {
      let settled = null;
      try {
        settled = parseMinor(state.settled, currency);
      } catch {
        settled = null;
      }
      const count = Number.parseInt(state.splitCount, 10);
      const rowsSplit = settled && count >= 1 && count <= MAX_INSTALMENTS && /^\d{4}-\d{2}-\d{2}$/.test(state.splitFirst)
        ? splitEvenly(settled, count, state.splitFirst) : [];
      if (!rowsSplit.length) {
        this.ctx.page.toast("error", t("editor.splitInvalid"));
        return;
      }
      state.rows = rowsSplit.map((item) => ({ due_date: item.due_date, amount: minorToDecimal(item.amount_minor, currency) }));
      this.edited();
      this.render();
    });

    this.check = h("p", { class: "sum-check", testid: "sum-check", "aria-live": "polite" });
    const save = h("button", { type: "button", class: "btn btn-primary", testid: "agreement-save", text: t("editor.save") });
    save.addEventListener("click", () => this.save(save));
    const signatures = this.agreement?.state === "draft" ? this.agreement.signatures.length : 0;
    const confirm = state.confirming ? h("div", { class: "confirm-box", testid: "agreement-save-confirm-box" },
      h("p", { text: t("editor.voidWarning", { version: this.agreement.version, count: signatures }) }),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "btn btn-danger", testid: "agreement-save-confirm", text: t("editor.saveAnyway"),
          on: { click: (event) => this.save(event.currentTarget, true) } }),
        h("button", { type: "button", class: "btn btn-quiet", text: t("common.cancel"),
          on: { click: () => { state.confirming = false; this.render(); } } }))) : null;

    fill(this.root,
      h("p", { class: "muted small", text: t("editor.lead", { currency: t.has(`currency.${currency}`) ? t(`currency.${currency}`) : currency }) }),
      h("div", { class: "field-row" },
        h("div", { class: "field" }, h("label", { for: `settled-${this.caseView.case_id}`, text: t("editor.settled") }),
          bind("settled", { id: `settled-${this.caseView.case_id}`, inputmode: "decimal", testid: "agreement-settled-input", autocomplete: "off" }),
          fieldError("settled", "error-settled")),
        h("div", { class: "field" }, h("label", { for: `waived-${this.caseView.case_id}`, text: t("editor.waived") }),
          bind("waived", { id: `waived-${this.caseView.case_id}`, inputmode: "decimal", testid: "agreement-waived-input", autocomplete: "off",
            placeholder: "0" }),
          fieldError("waived", "error-waived"))),
      h("div", { class: "split-tool" },
        h("span", { class: "inline-label", text: t("editor.splitLabel") }), splitCount,
        h("span", { class: "inline-label", text: t("editor.splitFrom") }), splitFirst, split),
      h("div", { class: "table-wrap" }, h("table", { class: "table table-editor" },
        h("caption", { class: "visually-hidden", text: t("agreement.schedule") }),
        h("thead", {}, h("tr", {}, h("th", { scope: "col", text: t("agreement.number") }), h("th", { scope: "col", text: t("agreement.dueDate") }),
          h("th", { scope: "col", text: t("editor.amountIn", { currency }) }), h("th", { scope: "col", class: "visually-hidden-cell", text: t("editor.actions") }))),
        h("tbody", {}, rows))),
      h("div", { class: "editor-row" }, add, this.check),
      h("div", { class: "field" }, h("label", { for: `terms-${this.caseView.case_id}`, text: t("editor.terms") }),
        bind("terms", { tag: "textarea", id: `terms-${this.caseView.case_id}`, rows: "5", maxlength: String(TERMS_MAX), testid: "agreement-terms-input",
          placeholder: t("editor.termsPlaceholder") }),
        fieldError("terms", "error-terms")),
      this.error ? h("p", { class: "form-error", role: "alert", testid: "agreement-save-error", text: this.error }) : null,
      confirm ?? h("div", { class: "actions" }, save,
        this.agreement && this.agreement.state !== "void"
          ? h("span", { class: "muted small", text: t("editor.newVersion", { version: this.agreement.version + 1 }) }) : null));
    this.updateCheck();
    return this.root;
  }

  message(field, key) {
    const { t } = this.ctx.page;
    if (key.startsWith("agreement.")) return t(`editor.error.${key.slice("agreement.".length)}`);
    const labels = { settled: "editor.settled", waived: "editor.waived", terms: "editor.terms" };
    const label = labels[field] ?? (field.endsWith(".due_date") ? "agreement.dueDate" : "agreement.amount");
    return t(`field.${key}`, { field: t(label), max: TERMS_MAX });
  }

  /** "Instalments add up to ¥X of ¥Y": recomputed on every keystroke without redrawing the inputs. */
  updateCheck() {
    if (!this.check) return;
    const { t } = this.ctx.page;
    const currency = this.caseView.currency;
    const money = (minor) => formatMinor(minor, currency, t.lang);
    const amounts = this.state.rows.map((row) => {
      try {
        return parseMinor(row.amount, currency);
      } catch {
        return null;
      }
    });
    let settled = null;
    try {
      settled = parseMinor(this.state.settled, currency);
    } catch {
      settled = null;
    }
    const total = sumMinor(amounts);
    const unreadable = amounts.some((a) => a === null);
    let tone = "bad";
    let text;
    if (settled === null) text = t("editor.sumNoSettled", { total: money(total) });
    else if (unreadable) text = t("editor.sumIncomplete", { total: money(total), settled: money(settled) });
    else if (total === settled) {
      tone = "ok";
      text = t("editor.sumOk", { total: money(total), settled: money(settled) });
    } else {
      text = t(total < settled ? "editor.sumShort" : "editor.sumOver", {
        total: money(total), settled: money(settled), diff: money(Math.abs(settled - total)) });
    }
    this.check.textContent = text;
    this.check.dataset.tone = tone;
    if (this.state.showErrors) {
      // Field messages follow the edits once a save was attempted.
      const result = buildAgreement(this.values(), { today: toLocalDate(new Date()) });
      for (const node of this.root.querySelectorAll(".field-error[data-key]")) {
        const key = result.errors[node.dataset.key];
        node.hidden = !key;
        node.textContent = key ? this.message(node.dataset.key, key) : "";
      }
    }
  }

  async save(button, confirmed = false) {
    const { t } = this.ctx.page;
    const state = this.state;
    const result = buildAgreement(this.values(), { today: toLocalDate(new Date()) });
    if (!result.body) {
      state.showErrors = true;
      this.error = result.errors.instalments ? this.message("instalments", result.errors.instalments) : t("editor.fixErrors");
      this.render();
      return;
    }
    if (!confirmed && this.agreement?.state === "draft" && this.agreement.signatures.length > 0) {
      state.confirming = true;
      this.render();
      return;
    }
    await busy(button, async () => {
      try {
        const saved = await this.ctx.api.put(`/api/cases/${this.caseView.case_id}/agreement`, result.body);
        this.error = null;
        this.ctx.drafts.set(`agreement.${this.caseView.case_id}`, initialState(this.caseView, saved));
        this.ctx.page.toast("ok", t("editor.saved", { version: saved.version }));
        await this.onSaved(saved);
      } catch (error) {
        state.confirming = false;
        this.error = this.ctx.page.error(error);
        this.render();
      }
    });
  }
}
