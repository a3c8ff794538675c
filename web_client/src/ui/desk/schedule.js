// Session times (propose, confirm, cancel, open the room) and personal join links on the desk.
import { formatDateTime, localInputToIso, toLocalInput } from "../../lib/dates.js";
import { roomSession, sessionSummary } from "../case.js";
import { Possession } from "../../lib/possession.js";
import { h } from "../dom.js";
import { PossessionCancelled, proveAct } from "../possession.js";

const SCHEDULERS = ["case_officer", "mediator"];

function partyLabel(t, view, partyId) {
  const party = view.parties.find((p) => p.party_id === partyId);
  return party ? t(`signer.${party.role}`) : partyId;
}

export function sessionsCard(d, t, view) {
  const { api, page, drafts } = d.ctx;
  const role = d.role;
  const open = ["accepted", "scheduled"].includes(view.state);
  const lender = view.parties.find((p) => p.role === "lender");
  const current = roomSession(view.sessions);
  const items = view.sessions.map((session) => {
    const actions = [];
    if (role === "bank_representative" && open && session.state === "proposed" && lender && !session.confirmed_by.includes(lender.party_id)) {
      const confirm = h("button", { type: "button", class: "btn btn-primary btn-small", testid: "confirm-session", text: t("session.confirmLender") });
      // The bank representative confirms for the lender with the lender's possession factor (a code to the
      // lender's verified contact enrols this device the first time).
      confirm.addEventListener("click", async () => {
        if (d.possession?.caseId !== d.caseId) d.possession = new Possession({ api, caseId: d.caseId });
        let proof;
        try {
          proof = await proveAct(d.possession, page.t, page.error, "confirm_session", session.session_id);
        } catch (error) {
          if (!(error instanceof PossessionCancelled)) page.fail(error);
          return;
        }
        d.act(confirm, "sessions", () => api.post(`/api/cases/${d.caseId}/sessions/${session.session_id}/confirm`, { proof }),
          "session.confirmedToast");
      });
      actions.push(confirm);
    }
    if (["mediator", "bank_representative"].includes(role) && view.state === "scheduled" && session === current) {
      // `mode=chat` only spares the pre-join a camera check; the room's join result says the mode.
      const room = `/room?session=${session.session_id}${session.mode === "chat" ? "&mode=chat" : ""}`;
      actions.push(h("a", { class: "btn btn-primary btn-small", href: page.href(room), target: "_blank",
        rel: "noopener", testid: "open-room", text: t("session.openRoom") }));
    }
    if (SCHEDULERS.includes(role) && open && session.state !== "cancelled") {
      const cancel = h("button", { type: "button", class: "btn btn-quiet btn-small", testid: "cancel-session", text: t("session.cancel") });
      cancel.addEventListener("click", () => d.act(cancel, "sessions",
        () => api.post(`/api/cases/${d.caseId}/sessions/${session.session_id}/cancel`, {}), "session.cancelledToast"));
      actions.push(cancel);
    }
    const confirmations = h("ul", { class: "confirmations", testid: "confirmations" }, view.parties.map((party) => {
      const done = session.confirmed_by.includes(party.party_id);
      return h("li", { class: done ? "is-done" : "is-pending", dataset: { role: party.role, confirmed: done } },
        h("span", { class: "tick", "aria-hidden": "true", text: done ? "✓" : "…" }),
        h("span", { text: t(done ? "session.partyConfirmed" : "session.partyWaiting", { party: t(`signer.${party.role}`) }) }));
    }));
    return sessionSummary(t, session, { actions, extra: session.state === "cancelled" ? null : confirmations });
  });

  let form = null;
  if (SCHEDULERS.includes(role) && open) {
    const key = `propose.${d.caseId}`;
    const start = drafts.input(`${key}.start`, { type: "datetime-local", id: `propose-start-${d.caseId}`, testid: "propose-start",
      min: toLocalInput(new Date()) });
    const duration = drafts.input(`${key}.duration`, { type: "number", initial: "60", min: "15", max: "480", step: "15",
      id: `propose-duration-${d.caseId}`, testid: "propose-duration", class: "input-short" });
    const mode = drafts.input(`${key}.mode`, { tag: "select", initial: "video", id: `propose-mode-${d.caseId}`, testid: "propose-mode",
      options: [["video", t("mode.video")], ["chat", t("mode.chat")]] });
    const submit = h("button", { type: "button", class: "btn btn-primary", testid: "propose-submit", text: t("session.propose") });
    submit.addEventListener("click", () => {
      const startsAt = localInputToIso(start.value);
      const minutes = Number(duration.value);
      let problem = null;
      if (!startsAt) problem = "propose_start_missing";
      else if (Date.parse(startsAt) <= Date.now()) problem = "propose_start_past";
      else if (!Number.isInteger(minutes) || minutes < 15 || minutes > 480) problem = "propose_duration";
      if (problem) {
        d.cardErrors.sessions = { code: problem };
        d.redraw();
        return;
      }
      d.act(submit, "sessions", () => api.post(`/api/cases/${d.caseId}/sessions`, { starts_at: startsAt, duration_minutes: minutes, mode: mode.value }),
        "session.proposedToast").then((ok) => ok && drafts.clear(key));
    });
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    form = h("div", { class: "propose" },
      h("h3", { class: "subhead", text: t("session.proposeTitle") }),
      h("div", { class: "field-row field-row-3" },
        h("div", { class: "field" }, h("label", { for: start.id, text: t("session.start") }), start),
        h("div", { class: "field" }, h("label", { for: duration.id, text: t("session.duration") }), duration),
        h("div", { class: "field" }, h("label", { for: mode.id, text: t("session.mode") }), mode)),
      h("p", { class: "hint", text: t("session.zone", { zone }) }),
      h("div", { class: "actions" }, submit));
  }
  return h("section", { class: "card card-span", testid: "sessions" },
    h("h2", { class: "card-title", text: t("session.title") }),
    items.length ? h("ul", { class: "session-list" }, items) : h("p", { class: "muted", text: t("session.noneYet") }),
    d.cardError("sessions"), form);
}

/** One badge per channel a link went out over: sent, pending, or failed with the failure's class. */
function deliveryBadges(t, link) {
  if (!link.deliveries?.length) return h("span", { class: "muted", text: "—" });
  return h("span", { class: "deliveries" }, link.deliveries.map((delivery) => {
    const state = t(`links.delivery.${delivery.status}`);
    const text = `${t(`links.channel.${delivery.channel}`)}: ${state}${delivery.error ? ` (${delivery.error})` : ""}`;
    return h("span", { class: `badge badge-delivery-${delivery.status}`, testid: "delivery", text,
      dataset: { channel: delivery.channel, status: delivery.status, error: delivery.error ?? "" } });
  }));
}

export function linksCard(d, t, view) {
  const { api, drafts } = d.ctx;
  const confirmed = view.sessions.filter((s) => s.state === "confirmed");
  const parts = [h("h2", { class: "card-title", text: t("links.title") })];
  if (view.state === "scheduled" && confirmed.length) {
    const sessionSelect = drafts.input(`links.${d.caseId}.session`, { tag: "select", testid: "link-session", id: `link-session-${d.caseId}`,
      initial: confirmed[confirmed.length - 1].session_id,
      options: confirmed.map((s) => [s.session_id, formatDateTime(s.starts_at, t.lang)]) });
    const buttons = view.parties.map((party) => {
      const button = h("button", { type: "button", class: "btn btn-secondary btn-small", testid: `issue-link-${party.role}`,
        text: t("links.issueFor", { party: t(`signer.${party.role}`) }) });
      button.addEventListener("click", () => d.act(button, "links", async () => {
        // The answer says where the link went; the link itself goes only to the party.
        const issued = await api.post(`/api/cases/${d.caseId}/join-links`, { party_id: party.party_id, session_id: sessionSelect.value });
        d.issued = { ...issued, party };
        await d.loadLinks();
      }, "links.issued"));
      return button;
    });
    parts.push(h("p", { class: "muted small", text: t("links.lead") }),
      h("div", { class: "field" }, h("label", { for: sessionSelect.id, text: t("links.session") }), sessionSelect),
      h("div", { class: "actions" }, buttons));
  }
  // A link revoked since (or by closing the case) is not worth reporting on any more.
  if (d.issued && !(d.links ?? []).some((link) => link.link_id === d.issued.link_id && link.status === "active")) d.issued = null;
  if (d.issued) {
    const listed = (d.links ?? []).find((link) => link.link_id === d.issued.link_id) ?? d.issued;
    const failed = listed.deliveries.some((delivery) => delivery.status === "failed");
    parts.push(h("div", { class: "issued", testid: "issued-link", dataset: { role: d.issued.party.role, linkId: d.issued.link_id } },
      h("p", { class: "issued-title", text: t("links.issuedFor", { party: t(`signer.${d.issued.party.role}`), name: d.issued.party.name }) }),
      h("p", {}, deliveryBadges(t, listed)),
      h("p", { class: `callout small ${failed ? "callout-warn" : ""}`, text: t(failed ? "links.someFailed" : "links.delivered") }),
      h("button", { type: "button", class: "btn btn-quiet btn-small", testid: "issued-link-dismiss", text: t("links.dismiss"),
        on: { click: () => { d.issued = null; d.redraw(); } } })));
  }
  const links = d.links ?? [];
  const sessionTime = (id) => {
    const session = view.sessions.find((s) => s.session_id === id);
    return session ? formatDateTime(session.starts_at, t.lang, { short: true }) : "—";
  };
  if (links.length) {
    parts.push(h("div", { class: "table-wrap" }, h("table", { class: "table table-links", testid: "links-table" },
      h("thead", {}, h("tr", {}, ["links.party", "links.sessionCol", "links.issuedAt", "links.expires", "links.status", "links.deliveryCol", "links.actions"]
        .map((key) => h("th", { scope: "col", text: t(key) })))),
      h("tbody", {}, links.map((link) => {
        const actions = [];
        if (link.status === "active") {
          const revoke = h("button", { type: "button", class: "btn btn-quiet btn-small", testid: "revoke-link", text: t("links.revoke") });
          revoke.addEventListener("click", () => d.act(revoke, "links", async () => {
            await api.del(`/api/cases/${d.caseId}/join-links/${link.link_id}`);
            if (d.issued?.link_id === link.link_id) d.issued = null;
            await d.loadLinks();
          }, "links.revoked"));
          // The server keeps only the link's hash, so sending again means a fresh link replacing this one.
          const retry = h("button", { type: "button", class: "btn btn-quiet btn-small", testid: "retry-link", text: t("links.retry"),
            title: t("links.retryHint") });
          retry.addEventListener("click", () => d.act(retry, "links", async () => {
            const fresh = await api.post(`/api/cases/${d.caseId}/join-links/${link.link_id}/retry`, {});
            const party = view.parties.find((p) => p.party_id === link.party_id);
            d.issued = party ? { ...fresh, party } : null;
            await d.loadLinks();
          }, "links.retried"));
          actions.push(retry, revoke);
        }
        return h("tr", { testid: "link-row", dataset: { status: link.status, role: link.role, linkId: link.link_id } },
          h("td", { text: partyLabel(t, view, link.party_id) }),
          h("td", { class: "nowrap", text: sessionTime(link.session_id) }),
          h("td", { class: "nowrap", text: formatDateTime(link.issued_at, t.lang, { short: true }) }),
          h("td", { class: "nowrap", text: formatDateTime(link.expires_at, t.lang, { short: true }) }),
          h("td", {}, h("span", { class: `badge badge-link-${link.status}`, testid: "link-status", text: t(`links.state.${link.status}`) })),
          h("td", {}, deliveryBadges(t, link)),
          h("td", {}, h("span", { class: "actions" }, actions)));
      })))));
  } else {
    parts.push(h("p", { class: "muted", testid: "links-empty", text: t("links.none") }));
  }
  parts.push(d.cardError("links"));
  return h("section", { class: "card card-span", testid: "links" }, parts);
}
