// What a verified session or agreement says: the transcript as a timeline, the chat, the consents
// and the agreements. Record text reaches the page only as text nodes.
import { People, cleanText, parseTime, participants as transcriptParticipants, timeline } from "../../lib/compliance/transcript.js";
import { h } from "../dom.js";
import { state } from "./context.js";
import { formatClock, formatDay, formatMoney, formatTime, incompleteBadge, personById, personLabel, roleLabel, row } from "./format.js";

export function eventText(entry) {
  const { t } = state;
  const actor = entry.actor ? personLabel(entry.actor) : t("ev.theMediator");
  const subject = entry.subject ? personLabel(entry.subject) : t("person.nobody");
  const reason = entry.reason
    ? t("ev.reason", { reason: t.has(`reason.${entry.reason}`) ? t(`reason.${entry.reason}`) : entry.reason }) : "";
  switch (entry.type) {
    case "participant_joined":
      return (entry.status
        ? t("ev.joinedStatus", { subject, status: t.has(`status.${entry.status}`) ? t(`status.${entry.status}`) : entry.status })
        : t("ev.joined", { subject })) + (entry.unencrypted ? t("ev.unencrypted") : "");
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
    case "recording_gap": {
      const { gap } = entry;
      const clock = (date) => (date ? formatClock(date) : "?");
      return t("ev.recordingGap", { subject, part: gap.part === null ? "?" : gap.part + 1, from: clock(gap.from),
        to: clock(gap.to), seconds: gap.from && gap.to ? ((gap.to - gap.from) / 1000).toFixed(1) : "?",
        reason: t.has(`gap.${gap.reason}`) ? t(`gap.${gap.reason}`) : gap.reason || "?" });
    }
    default:
      return t("ev.unknown", { type: cleanText(entry.type),
        fields: entry.fields?.length ? `: ${entry.fields.map(([k, v]) => `${k}=${v}`).join(", ")}` : "" });
  }
}

/** English sentences start with a capital even when they start with a role ("recorder joined"). */
export function sentence(text) {
  return state.t.lang === "en" && text ? text[0].toUpperCase() + text.slice(1) : text;
}

export function chatLine(entry, name) {
  const { t } = state;
  return [
    h("span", { class: "chat-who", text: name }),
    entry.channel === "caucus" ? h("span", { class: "badge badge-caucus", text: t("ev.chatCaucus") }) : null,
    h("span", { class: "chat-seq", text: `#${entry.seq ?? "?"}` }),
    h("span", { class: "chat-text", testid: "chat-text", text: entry.undecrypted ? t("ev.undecrypted") : entry.text }),
  ];
}

/** The transcript as a timeline; with a review (the player), each line seeks it. */
export function timelineSection(report, sessionId, doc, review = null) {
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
    const cell = h("div", { class: "when-cell" }, when);
    const line = h("li", { class: ["event", `event-${entry.type.replace(/[^a-z_]/g, "")}`], testid: "timeline-entry",
      dataset: entry.seq === undefined || entry.seq === null ? { type: entry.type } : { type: entry.type, seq: entry.seq } },
    cell, body);
    const seek = review ? review.line(line, entry) : null; // the player seeks to the line's time
    if (seek) cell.append(seek);
    items.push(line);
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

export function chatSection(report, sessionId, people) {
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

export function rawDetails(label, text) {
  return h("details", { class: "raw" }, h("summary", { text: label }), h("pre", { text: text ?? "" }));
}

export function consentsSection(report, people) {
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

export function agreementResults(report) {
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
          ? h("li", { testid: "countersigned", text: t("agreement.countersignedBy", { time: formatTime(counter.signed_at),
            keyId: cleanText(counter.key_id ?? "?") }) })
          : h("li", { class: "warn", text: t("agreement.notCountersigned") })))),
      rawDetails(t("agreement.raw"), a.text === null ? "" : cleanText(a.text, { newlines: true })));
  });
  return h("section", { class: "result-section", testid: "agreements-section" },
    h("h3", { class: "section-title", text: t("agreements.title") }), items);
}
