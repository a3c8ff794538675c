// Recording and consent (docs/protocol.md, "Recording and consent"): a party's notice, choice and
// header chip; the recording indicator; the mediator's start and stop and why start is blocked.
import { createApi } from "../../lib/api.js";
import { Possession } from "../../lib/possession.js";
import { missingConsents, pickNotice } from "../../lib/room/protocol.js";
import { $ } from "../dom.js";
import { PossessionCancelled, proveAct } from "../possession.js";
import { icon } from "./icons.js";
import { confirmDialog, notify, notifyError } from "./notices.js";
import { errorText, isMediator, isParty, listNames, participant, recordingApplies, recordsSealed, roleLabel, selfId } from "./state.js";
import { renderAll } from "./view.js";

/**
 * @typedef {import("./state.js").RoomPageState} RoomPageState
 * @typedef {import("../../lib/room/types.js").Participant} Participant
 */

/** The recording indicator follows the room's `recording` flag (room_state, recording_* notices). */
export function renderRecording(state) {
  const recording = Boolean(state.room && state.room.recording) && state.phase !== "over";
  $("recording-indicator").hidden = !recording;
  document.body.dataset.recording = String(recording);
  renderConsent(state);
  renderRecordingControls(state);
}

/** @param {RoomPageState} state */
function currentNotice(state) {
  return pickNotice(state.self && state.self.recording_notice, state.lang);
}

/** @param {RoomPageState} state */
function selfConsented(state) {
  const me = participant(state, selfId(state));
  return Boolean(me && me.consented);
}

/** Our own roster entry's `consented`, until the next room_state says the same. */
function setOwnConsent(state, consented) {
  if (!state.room || !Array.isArray(state.room.participants)) return;
  state.room = {
    ...state.room,
    participants: state.room.participants.map((p) => (p.participant_id === selfId(state) ? { ...p, consented } : p)),
  };
}

/**
 * "Li Wei (Borrower), Bank (Bank representative)" in the page's language.
 * @param {RoomPageState} state
 * @param {Participant[]} list
 */
function nameList(state, list) {
  return listNames(state, list.map((p) => state.t("recording.who", { name: p.name, role: roleLabel(state, p.role) })));
}

/** A party's notice and consent: the full notice until it chooses, then a chip in the header. */
function renderConsent(state) {
  const t = state.t;
  const notice = currentNotice(state);
  const show = (state.phase === "lobby" || state.phase === "room") && isParty(state) && recordingApplies(state) && Boolean(notice);
  const consented = show && selfConsented(state);
  const ask = show && !consented && !state.consentDeclined;
  const panel = $("consent-panel");
  panel.hidden = !ask;
  if (ask) {
    const text = $("consent-notice");
    text.textContent = notice.text;
    text.lang = notice.language;
    text.dataset.sha256 = notice.sha256;
    $("consent-accept").disabled = state.consentBusy;
    $("consent-decline").disabled = state.consentBusy;
    $("consent-accept").textContent = t(state.consentBusy ? "consent.sending" : "consent.accept");
  }
  const chip = $("consent-chip");
  chip.hidden = !show || ask;
  chip.dataset.state = show && !ask ? (consented ? "consented" : "declined") : "";
  $("consent-chip-label").textContent = consented ? t("consent.chip.consented") : t("consent.chip.declined");
  chip.title = consented ? t("consent.state.consented") : t("consent.state.declined");
  $("consent-chip-icon").replaceChildren(icon(consented ? "check" : "info"));
  $("consent-withdraw").hidden = !consented;
  $("consent-withdraw").disabled = state.consentBusy;
  $("consent-review").hidden = consented;
}

/** @type {Possession | null} */
let possession = null;

/**
 * The party's possession proof for a consent act: this device's enrolled key signs a challenge (a code to
 * the party's verified contact enrols it the first time). Over HTTP with the room's own credential.
 * @param {RoomPageState} state
 * @param {"give_consent" | "withdraw_consent"} act
 */
async function consentProof(state, act) {
  const self = /** @type {{case_id: string, session_id: string}} */ (/** @type {unknown} */ (state.self));
  if (!possession || possession.caseId !== self.case_id) {
    possession = new Possession({ api: createApi({ token: state.token }), caseId: self.case_id });
  }
  return proveAct(possession, state.t, (err) => errorText(state, err && err.code ? err.code : "unknown"), act, self.session_id);
}

/** @param {RoomPageState} state */
export async function giveConsent(state) {
  const notice = currentNotice(state);
  if (!notice || state.consentBusy || !state.client) return;
  state.consentBusy = true;
  renderConsent(state);
  try {
    await state.client.giveConsent(notice.sha256, await consentProof(state, "give_consent"));
    setOwnConsent(state, true);
    state.consentDeclined = false;
    notify(state, state.t("consent.given"), { key: "consent" });
  } catch (err) {
    if (!(err instanceof PossessionCancelled)) notifyError(state, err);
  } finally {
    state.consentBusy = false;
    renderAll(state);
  }
}

/** @param {RoomPageState} state */
export function declineConsent(state) {
  state.consentDeclined = true;
  notify(state, state.t("consent.declinedNotice"), { key: "consent", timeout: 10000 });
  renderAll(state);
}

/** @param {RoomPageState} state */
export function reviewConsent(state) {
  state.consentDeclined = false;
  renderAll(state);
  $("consent-panel").focus();
}

/** @param {RoomPageState} state */
export async function withdrawConsent(state) {
  if (state.consentBusy || !state.client) return;
  const answer = await confirmDialog(state, {
    title: state.t("dialog.withdraw.title"),
    text: state.t("dialog.withdraw.text"),
    confirmLabel: state.t("dialog.withdraw.confirm"),
    danger: true,
  });
  if (!answer.confirmed) return;
  state.consentBusy = true;
  renderConsent(state);
  // While recording, the server's recording_stopped (reason consent_withdrawn) says it: one notice.
  const recording = Boolean(state.room && state.room.recording);
  try {
    await state.client.withdrawConsent(await consentProof(state, "withdraw_consent"));
    setOwnConsent(state, false);
    state.consentDeclined = true;
    if (!recording) notify(state, state.t("consent.withdrawn"), { key: "consent" });
  } catch (err) {
    if (err instanceof PossessionCancelled) {
      // the party closed the code dialog: nothing changed
    } else if (err && err.code === "no_consent") {
      setOwnConsent(state, false); // the server has none on record: show it so
      state.consentDeclined = true;
    } else {
      notifyError(state, err);
    }
  } finally {
    state.consentBusy = false;
    renderAll(state);
  }
}

/** The mediator's start/stop controls and why starting is not possible yet. */
function renderRecordingControls(state) {
  const t = state.t;
  const mediator = isMediator(state) && state.phase === "room";
  const sealed = recordsSealed(state);
  const canRecord = mediator && sealed && state.mode === "video";
  const recording = Boolean(state.room && state.room.recording);
  const missing = canRecord && !recording ? missingConsents(state.room) : [];
  const start = $("start-recording");
  const stop = $("stop-recording");
  start.hidden = !canRecord || recording;
  stop.hidden = !canRecord || !recording;
  start.disabled = missing.length > 0 || state.recordingBusy;
  stop.disabled = state.recordingBusy;
  const blocked = $("recording-blocked-reason");
  blocked.hidden = missing.length === 0;
  blocked.textContent = missing.length ? t("recording.blocked", { names: nameList(state, missing) }) : "";
  start.title = missing.length ? blocked.textContent : "";
  // Nothing is recorded or sealed without a compliance key: a discreet note for the mediator only.
  const unavailable = mediator && !sealed;
  $("recording-unavailable").hidden = !unavailable;
  const note = $("recording-note");
  note.hidden = blocked.hidden && !unavailable;
  note.dataset.kind = missing.length ? "blocked" : "unavailable";
  $("recording-note-icon").replaceChildren(icon(missing.length ? "alert" : "info"));
}

/** @param {RoomPageState} state */
export async function startRecording(state) {
  if (state.recordingBusy || !state.client) return;
  state.recordingBusy = true;
  renderRecordingControls(state);
  try {
    await state.client.startRecording();
  } catch (err) {
    const missing = missingConsents(state.room);
    if (err && err.code === "consent_missing" && missing.length) {
      notify(state, state.t("recording.error.consentMissing", { names: nameList(state, missing) }), { tone: "error", key: "recording" });
    } else {
      if (err && err.code === "recording_active" && state.room) state.room = { ...state.room, recording: true };
      notifyError(state, err);
    }
  } finally {
    state.recordingBusy = false;
    renderAll(state);
  }
}

/** @param {RoomPageState} state */
export async function stopRecording(state) {
  if (state.recordingBusy || !state.client) return;
  state.recordingBusy = true;
  renderRecordingControls(state);
  try {
    await state.client.stopRecording();
  } catch (err) {
    if (err && err.code === "not_recording" && state.room) state.room = { ...state.room, recording: false };
    notifyError(state, err);
  } finally {
    state.recordingBusy = false;
    renderAll(state);
  }
}
