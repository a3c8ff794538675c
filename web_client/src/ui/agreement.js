// The repayment agreement as each signer sees it: the exact terms, signature status, signing on
// this device, and the signed copy. Shared by the party's case page and the staff desk.
import { formatDate, formatDateTime } from "../lib/dates.js";
import { formatMinor } from "../lib/money.js";
import { canonicalMatches, keyFingerprint, signAgreement } from "../lib/signing.js";
import { ensureEnrolled, PossessionCancelled } from "./possession.js";
import { busy, fill, h } from "./dom.js";

/** The fingerprint people can read out to each other: the first 16 hex digits of the SHA-256, in fours. */
export function fingerprint(sha256) {
  return (sha256 || "").slice(0, 16).match(/.{1,4}/g)?.join(" ") ?? "";
}

/** The terms of `document` as a table and paragraphs; every value from the document is text. */
export function agreementTerms(t, document) {
  const currency = document.currency;
  const money = (minor) => formatMinor(minor, currency, t.lang);
  const instalments = Array.isArray(document.instalments) ? document.instalments : [];
  const total = instalments.reduce((sum, item) => sum + item.amount_minor, 0);
  return h("div", { class: "agreement-terms", testid: "agreement-terms" },
    h("dl", { class: "facts facts-2" },
      fact(t("agreement.caseNumber"), document.case_number),
      fact(t("agreement.loanReference"), document.loan_reference),
      fact(t("agreement.borrower"), document.borrower, "agreement-borrower"),
      fact(t("agreement.lender"), document.lender, "agreement-lender"),
      fact(t("agreement.settled"), money(document.settled_amount_minor), "agreement-settled"),
      fact(t("agreement.waived"), money(document.waived_penalties_minor ?? 0), "agreement-waived")),
    h("table", { class: "table instalments", testid: "agreement-instalments" },
      h("caption", { text: t("agreement.schedule") }),
      h("thead", {}, h("tr", {}, h("th", { scope: "col", text: t("agreement.number") }),
        h("th", { scope: "col", text: t("agreement.dueDate") }),
        h("th", { scope: "col", class: "num", text: t("agreement.amount") }))),
      h("tbody", {}, instalments.map((item, i) => h("tr", { testid: "agreement-instalment" },
        h("td", { text: String(i + 1) }), h("td", { text: formatDate(item.due_date, t.lang) }),
        h("td", { class: "num", text: money(item.amount_minor) })))),
      h("tfoot", {}, h("tr", {}, h("th", { scope: "row", colspan: "2", text: t("agreement.total") }),
        h("td", { class: "num", text: money(total) })))),
    h("h4", { class: "subhead", text: t("agreement.terms") }),
    document.terms
      ? h("p", { class: "prose", testid: "agreement-terms-text", text: document.terms })
      : h("p", { class: "muted", text: t("agreement.noTerms") }),
    h("p", { class: "muted small", text: t("agreement.drafted", {
      name: document.drafted_by || "—", time: formatDateTime(document.drafted_at, t.lang) }) }));
}

function fact(label, value, testid) {
  return h("div", { class: "fact" }, h("dt", { text: label }), h("dd", { testid, text: value ?? "—" }));
}

/**
 * The agreement section of a case: loads GET /api/cases/{case_id}/agreement into `container`.
 * `signer` is "borrower" or "lender" when the viewer may sign (a party, or the bank representative).
 */
export class AgreementPanel {
  constructor(container, { page, api, caseId, caseNumber = "", signer = null, canSign = () => true, onChange = () => {},
    possession = null }) {
    // `possession` (src/lib/possession.js): the signer's enrolled device key signs; the server accepts no other.
    Object.assign(this, { container, page, api, caseId, caseNumber, signer, canSign, onChange, possession });
    this.agreement = null;
    this.missing = false;
    this.error = null;
    this.agreed = false;
    this.signError = null;
    this.signed = null; // the signed copy, once there is one: what verifies it is shown from it
    this.fingerprints = [];
  }

  /**
   * Read the current agreement; `exists` false (the case view's `agreement_version` is null) skips
   * the request: "none yet" is a state, not a 404 in the console.
   */
  async load(exists = true) {
    if (!exists) {
      this.agreement = null;
      this.missing = true;
      this.error = null;
      this.render();
      return null;
    }
    try {
      this.agreement = await this.api.get(`/api/cases/${this.caseId}/agreement`);
      this.missing = false;
      this.error = null;
      await this.loadSigned();
    } catch (error) {
      this.agreement = null;
      this.missing = error.code === "not_found";
      this.error = this.missing ? null : error;
    }
    this.render();
    return this.agreement;
  }

  /** The signed copy, whose keys' fingerprints are shown; without it the agreement still shows, unverified. */
  async loadSigned() {
    this.signed = null;
    this.fingerprints = [];
    if (this.agreement?.state !== "signed" || !this.agreement.countersigned) return;
    try {
      const signed = await this.api.get(`/api/cases/${this.caseId}/agreement/signed`);
      this.fingerprints = await Promise.all(signed.signatures.map((s) => keyFingerprint(s.public_key)));
      this.signed = signed;
    } catch (error) {
      this.page.fail(error);
    }
  }

  render() {
    const { t } = this.page;
    const agreement = this.agreement;
    if (this.error) {
      fill(this.container, h("p", { class: "form-error", role: "alert", text: this.page.error(this.error) }));
      return;
    }
    if (!agreement) {
      fill(this.container, h("p", { class: "muted", testid: "agreement-none", text: t("agreement.none") }));
      return;
    }
    const faithful = canonicalMatches(agreement.document, agreement.canonical);
    const signed = (who) => agreement.signatures.find((s) => s.signer === who);
    const mine = this.signer ? signed(this.signer) : null;
    const status = h("ul", { class: "signatures", testid: "signature-status" },
      ["borrower", "lender"].map((who) => {
        const entry = signed(who);
        return h("li", { class: ["signature", entry ? "is-done" : "is-pending"], dataset: { signer: who, signed: Boolean(entry) },
          testid: `signature-${who}` },
        h("span", { class: "signature-who", text: t(`signer.${who}`) }),
        h("span", { class: "signature-state", text: entry
          ? t("agreement.signedAt", { time: formatDateTime(entry.signed_at, t.lang) }) : t("agreement.notSigned") }));
      }),
      h("li", { class: ["signature", agreement.countersigned ? "is-done" : "is-pending"], testid: "countersigned",
        dataset: { signed: agreement.countersigned } },
      h("span", { class: "signature-who", text: t("agreement.countersignature") }),
      h("span", { class: "signature-state", text: agreement.countersigned ? t("agreement.countersigned") : t("agreement.notSigned") })));

    const head = h("div", { class: "agreement-head" },
      h("span", { class: `badge badge-${agreement.state}`, testid: "agreement-state", dataset: { state: agreement.state },
        text: t(`agreementState.${agreement.state}`) }),
      h("span", { class: "muted", text: t("agreement.version", { version: agreement.version }) }),
      h("span", { class: "fingerprint", title: agreement.sha256, text: t("agreement.fingerprint", { fp: fingerprint(agreement.sha256) }) }));

    const parts = [head];
    if (!faithful) {
      parts.push(h("p", { class: "callout callout-error", role: "alert", testid: "agreement-mismatch", text: t("error.canonical_mismatch") }));
    }
    parts.push(agreementTerms(t, agreement.document), h("h4", { class: "subhead", text: t("agreement.signatures") }), status);

    if (agreement.state === "void") {
      parts.push(h("p", { class: "callout callout-warn", text: t("agreement.voidNote") }));
    } else if (agreement.state === "draft" && this.signer && !mine && this.canSign()) {
      parts.push(this.signForm(faithful));
    } else if (mine && agreement.state === "draft") {
      parts.push(h("p", { class: "callout callout-ok", testid: "signed-by-me", text: t("agreement.youSigned") }));
    }
    if (agreement.state === "signed" && agreement.countersigned) {
      const pdf = h("button", { type: "button", class: "btn btn-primary", testid: "agreement-download-pdf", text: t("agreement.downloadPdf") });
      pdf.addEventListener("click", () => busy(pdf, () => this.downloadPdf()));
      const download = h("button", { type: "button", class: "btn btn-secondary", testid: "agreement-download", text: t("agreement.download") });
      download.addEventListener("click", () => busy(download, () => this.download()));
      const print = h("button", { type: "button", class: "btn btn-quiet", testid: "agreement-print", text: t("agreement.print"),
        on: { click: () => this.print() } });
      if (this.signed) parts.push(this.verification());
      parts.push(h("div", { class: "actions no-print" }, pdf, download, print));
    }
    fill(this.container, ...parts);
  }

  /** What verifies the signed agreement: each signing key's fingerprint, the countersignature, the command. */
  verification() {
    const { t } = this.page;
    const signed = this.signed;
    const counter = signed.countersignature ?? {};
    const rows = signed.signatures.map((entry, i) => h("div", { class: "fact", testid: "signature-key", dataset: { signer: entry.signer } },
      h("dt", { text: t("agreement.keyOf", { signer: t(`signer.${entry.signer}`) }) }),
      h("dd", {}, h("code", { class: "hex", testid: "key-fingerprint", text: this.fingerprints[i] ?? "" }),
        h("span", { class: "muted small", text: t("agreement.signedAt", { time: formatDateTime(entry.signed_at, t.lang) }) }))));
    return h("section", { class: "verification", testid: "agreement-verification" },
      h("h4", { class: "subhead", text: t("agreement.verifyTitle") }),
      h("dl", { class: "facts" }, rows,
        h("div", { class: "fact" }, h("dt", { text: t("agreement.textSha256") }),
          h("dd", {}, h("code", { class: "hex", testid: "agreement-sha256", text: this.agreement.sha256 }))),
        h("div", { class: "fact" }, h("dt", { text: t("agreement.countersignKey") }),
          h("dd", {}, h("code", { class: "hex", testid: "countersign-key", text: counter.key_id ?? "" }),
            h("span", { class: "muted small", text: t("agreement.signedAt", { time: formatDateTime(counter.signed_at, t.lang) }) })))),
      h("p", { class: "small", text: t("agreement.verifyHow") }),
      h("pre", { class: "command", testid: "verify-command", text: `mediation-admin verify-agreement ${this.fileName("json")}` }));
  }

  fileName(extension) {
    return `agreement-${this.caseNumber || this.caseId}-v${this.agreement.version}.${extension}`;
  }

  /** Print the agreement alone: everything else on the page is left out of the printout. */
  print() {
    const target = this.container.closest(".card") ?? this.container;
    const path = [];
    for (let node = target.parentElement; node && node !== document.body; node = node.parentElement) path.push(node);
    document.body.classList.add("printing");
    target.classList.add("print-target");
    for (const node of path) node.classList.add("print-path");
    const done = () => {
      document.body.classList.remove("printing");
      target.classList.remove("print-target");
      for (const node of path) node.classList.remove("print-path");
      window.removeEventListener("afterprint", done);
    };
    window.addEventListener("afterprint", done);
    window.print();
  }

  async downloadPdf() {
    try {
      const lang = this.page.t.lang === "en" ? "en" : "zh-CN";
      const bytes = await this.api.get(`/api/cases/${this.caseId}/agreement/signed.pdf?lang=${lang}`, { answer: "bytes" });
      this.save(new Blob([bytes], { type: "application/pdf" }), this.fileName("pdf"));
    } catch (error) {
      this.page.fail(error);
    }
  }

  save(blob, name) {
    const url = URL.createObjectURL(blob);
    const link = h("a", { href: url, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  signForm(faithful) {
    const { t } = this.page;
    const agree = h("input", { type: "checkbox", id: `agree-${this.caseId}`, testid: "agreement-consent", checked: this.agreed });
    const button = h("button", { type: "button", class: "btn btn-primary", testid: "agreement-sign",
      disabled: !faithful || !this.agreed, text: t("agreement.sign") });
    agree.addEventListener("change", () => {
      this.agreed = agree.checked;
      button.disabled = !faithful || !agree.checked;
    });
    const message = h("p", { class: "form-error", role: "alert", testid: "agreement-sign-error", hidden: !this.signError,
      text: this.signError ? this.page.error(this.signError) : "" });
    button.addEventListener("click", () => busy(button, async () => {
      this.signError = null;
      message.hidden = true;
      try {
        const pair = await ensureEnrolled(this.possession, t, this.page.error);
        const body = await signAgreement(this.agreement, pair);
        this.agreement = await this.api.post(`/api/cases/${this.caseId}/agreement/signatures`, body);
        this.page.toast("ok", t("agreement.signedToast"));
        await this.loadSigned();
        this.render();
        this.onChange(this.agreement);
      } catch (error) {
        if (error instanceof PossessionCancelled) return;
        this.signError = error;
        message.textContent = this.page.error(error);
        message.hidden = false;
        if (error.code === "agreement_changed") await this.load();
      }
    }));
    return h("div", { class: "sign-box", testid: "sign-box" },
      h("p", { class: "muted small", text: t("agreement.signExplain") }),
      h("label", { class: "check", for: `agree-${this.caseId}` }, agree, h("span", { text: t("agreement.consent") })),
      message,
      h("div", { class: "actions" }, button));
  }

  async download() {
    try {
      const text = await this.api.get(`/api/cases/${this.caseId}/agreement/signed`, { raw: true });
      this.save(new Blob([text], { type: "application/json" }), this.fileName("json"));
    } catch (error) {
      this.page.fail(error);
    }
  }
}
