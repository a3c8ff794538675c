// The mediator's moderation: admit, refuse, remove, lock, end the session; the caucus banner.
import { PARTY_ROLES } from "../../lib/room/protocol.js";
import { $ } from "../dom.js";
import { icon } from "./icons.js";
import { act, confirmDialog } from "./notices.js";
import { isMediator, listNames, nameOf, selfId } from "./state.js";

/**
 * @typedef {import("./state.js").RoomPageState} RoomPageState
 * @typedef {import("../../lib/room/types.js").Participant} Participant
 */

/**
 * refuse a lobby member, after a confirmation with an optional reason.
 * @param {RoomPageState} state
 * @param {Participant} p
 */
export async function refuse(state, p) {
  const answer = await confirmDialog(state, {
    title: state.t("dialog.refuse.title", { name: p.name }),
    text: state.t("dialog.refuse.text"),
    confirmLabel: state.t("dialog.refuse.confirm"),
    danger: true,
    withReason: true,
  });
  if (answer.confirmed) await act(state, () => state.client.refuse(p.participant_id, answer.reason));
}

/**
 * remove_participant, after a confirmation with an optional reason.
 * @param {RoomPageState} state
 * @param {Participant} p
 */
export async function remove(state, p) {
  const answer = await confirmDialog(state, {
    title: state.t("dialog.remove.title", { name: p.name }),
    text: state.t("dialog.remove.text"),
    confirmLabel: state.t("dialog.remove.confirm"),
    danger: true,
    withReason: true,
  });
  if (answer.confirmed) await act(state, () => state.client.removeParticipant(p.participant_id, answer.reason));
}

/**
 * Admit; while recording, admitting a party without consent stops the recording: ask first.
 * @param {RoomPageState} state
 * @param {Participant} p
 */
export async function admitParticipant(state, p) {
  if (state.room && state.room.recording && PARTY_ROLES.includes(p.role) && !p.consented) {
    const answer = await confirmDialog(state, {
      title: state.t("dialog.admitUnconsented.title", { name: p.name }),
      text: state.t("dialog.admitUnconsented.text", { name: p.name }),
      confirmLabel: state.t("dialog.admitUnconsented.confirm"),
    });
    if (!answer.confirmed) return;
  }
  await act(state, () => state.client.admit(p.participant_id));
}

/**
 * Lock and end-session buttons (mediator), the lock badge (everyone in the room).
 * @param {RoomPageState} state
 */
export function renderMediatorControls(state) {
  const mediator = isMediator(state) && state.phase === "room";
  const locked = Boolean(state.room && state.room.locked);
  const lock = $("lock-room");
  lock.hidden = !mediator;
  lock.dataset.locked = String(locked);
  lock.textContent = state.t(locked ? "mediator.unlock" : "mediator.lock");
  $("end-session").hidden = !mediator;
  $("lock-indicator").hidden = !(locked && state.phase === "room");
}

/**
 * The caucus banner: `member` names the others, `excluded` names no one.
 * @param {RoomPageState} state
 */
export function renderCaucus(state) {
  const banner = $("caucus-banner");
  const active = state.phase === "room" && (state.caucusExcluded || Boolean(state.caucusMembers));
  banner.hidden = !active;
  $("chat-channel-hint").hidden = !(active && !state.caucusExcluded);
  // The consent panel's place over the stage depends on it (room.css).
  document.body.dataset.caucus = active ? (state.caucusExcluded ? "excluded" : "member") : "";
  if (!active) {
    banner.dataset.state = "none";
    return;
  }
  banner.querySelector(".caucus-icon")?.replaceChildren(icon("users"));
  if (state.caucusExcluded) {
    banner.dataset.state = "excluded";
    $("caucus-text").textContent = state.t("caucus.excluded");
    $("close-caucus").hidden = true;
    return;
  }
  banner.dataset.state = "member";
  const others = (state.caucusMembers ?? []).filter((id) => id !== selfId(state)).map((id) => nameOf(state, id));
  $("caucus-text").textContent = others.length
    ? state.t("caucus.member", { names: listNames(state, others) })
    : state.t("caucus.memberNoNames");
  $("close-caucus").hidden = !isMediator(state);
}

/** @param {RoomPageState} state */
export async function toggleLock(state) {
  const locked = Boolean(state.room && state.room.locked);
  await act(state, () => state.client.lockRoom(!locked));
}

/**
 * end_session, after a confirmation.
 * @param {RoomPageState} state
 */
export async function endSession(state) {
  const answer = await confirmDialog(state, {
    title: state.t("dialog.end.title"),
    text: state.t("dialog.end.text"),
    confirmLabel: state.t("dialog.end.confirm"),
    danger: true,
  });
  if (answer.confirmed) await act(state, () => state.client.endSession());
}
