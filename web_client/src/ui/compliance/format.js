// Dates, sizes, money, people and small pieces of view for the compliance page, in the page's language.
import { caseNames } from "../../lib/compliance/listing.js";
import { cleanText, parseTime } from "../../lib/compliance/transcript.js";
import { h } from "../dom.js";
import { state } from "./context.js";

export function formatTime(value, style = "medium") {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) return value ? String(value) : "—";
  return new Intl.DateTimeFormat(state.t.lang, { dateStyle: style, timeStyle: "medium" }).format(date);
}

export function formatClock(date) {
  return new Intl.DateTimeFormat(state.t.lang, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false })
    .format(date);
}

export function formatDay(date) {
  return new Intl.DateTimeFormat(state.t.lang, { dateStyle: "full" }).format(date);
}

export function formatSize(bytes) {
  const { t } = state;
  const number = (n, digits) => new Intl.NumberFormat(t.lang, { maximumFractionDigits: digits }).format(n);
  if (bytes < 1024) return t("size.bytes", { n: number(bytes, 0) });
  if (bytes < 1024 * 1024) return t("size.kb", { n: number(bytes / 1024, 1) });
  return t("size.mb", { n: number(bytes / (1024 * 1024), 1) });
}

export function formatMoney(minor, currency) {
  if (!Number.isSafeInteger(minor) || typeof currency !== "string" || !/^[A-Z]{3}$/.test(currency)) {
    return cleanText(JSON.stringify(minor ?? null));
  }
  const format = new Intl.NumberFormat(state.t.lang, { style: "currency", currency });
  const digits = format.resolvedOptions().maximumFractionDigits;
  return format.format(minor / 10 ** digits);
}

export function formatDuration(seconds) {
  const total = Math.round(seconds);
  const pad = (n) => String(n).padStart(2, "0");
  return `${Math.floor(total / 60)}:${pad(total % 60)}`;
}

export function roleLabel(role) {
  const { t } = state;
  return role && t.has(`role.${role}`) ? t(`role.${role}`) : cleanText(role ?? "");
}

/** "Name (role)" for a participant: from the transcript if it names them, else from the case. */
export function personLabel(who) {
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

export function personById(participantId, people = null) {
  const who = people ? people.who(participantId) : { participantId, name: null, role: null };
  return personLabel(who);
}

export function fact(label, value, testid) {
  return h("div", { class: "fact" }, h("dt", { text: label }), h("dd", { testid }, value));
}

export function row(label, ...value) {
  return h("div", { class: "fact" }, h("dt", { text: label }), h("dd", {}, ...value));
}

export function stateBadge(value) {
  return h("span", { class: `badge badge-${value}`, text: state.t(`state.${value}`) });
}

export function incompleteBadge() {
  return h("span", { class: "badge badge-incomplete", testid: "incomplete-badge", text: state.t("open.incompleteBadge") });
}
