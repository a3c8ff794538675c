// The page as a whole: drawing every area from the state, the static texts and language switch,
// and wiring the markup's controls.
import { $ } from "../dom.js";
import { renderBasics, tickBasics } from "./basics.js";
import { onChatInput, renderChatControls, renderChatList, renderTyping, renderUnread, selectPanel, sendChat } from "./chat.js";
import { declineConsent, giveConsent, renderRecording, reviewConsent, startRecording, stopRecording, withdrawConsent } from "./consent.js";
import { moveDevices, refreshDevices } from "./devices.js";
import { renderHeader, tickTimer } from "./header.js";
import { join, leave, renderLobby, updateJoinButton } from "./lobby.js";
import { toggleAudio, toggleVideo } from "./media.js";
import { endSession, renderCaucus, renderMediatorControls, toggleLock } from "./moderation.js";
import { act } from "./notices.js";
import { renderRoster } from "./roster.js";
import { armGuard, wireLeaveGuards } from "./guard.js";
import { renderSchedule, tickSchedule } from "./schedule.js";
import { submitSignIn } from "./signin.js";
import { translatorFor } from "./state.js";
import { renderStatus, setConnection } from "./status.js";
import { renderTiles, reportLayout } from "./tiles.js";
import { renderHands, toggleHand } from "./hands.js";
import { renderNetwork, watchNetwork } from "./network.js";
import { renderShare, stopOthersShare, toggleShare } from "./screenshare.js";

/** @typedef {import("./state.js").RoomPageState} RoomPageState */

/**
 * The markup's own texts (`data-i18n`, `data-i18n-placeholder`) in the page's language.
 * @param {RoomPageState} state
 */
export function applyStaticText(state) {
  const t = state.t;
  document.documentElement.lang = state.lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(/** @type {HTMLElement} */ (node).dataset.i18n ?? "");
  for (const node of document.querySelectorAll("[data-i18n-aria-label]")) {
    node.setAttribute("aria-label", t(/** @type {HTMLElement} */ (node).dataset.i18nAriaLabel ?? ""));
  }
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
    node.setAttribute("placeholder", t(/** @type {HTMLElement} */ (node).dataset.i18nPlaceholder ?? ""));
  }
  $("lang-select").value = state.lang;
}

/**
 * Switch language without leaving the room: everything is drawn again.
 * @param {RoomPageState} state
 * @param {string} lang
 */
function setLanguage(state, lang) {
  state.t = translatorFor(lang);
  state.lang = state.t.lang;
  const url = new URL(location.href);
  url.searchParams.set("lang", state.lang);
  history.replaceState(null, "", url.pathname + url.search);
  applyStaticText(state);
  setConnection(state, $("connection").dataset.state || "idle");
  renderAll(state);
  renderChatList(state);
  renderStatus(state);
  refreshDevices(state);
}

/**
 * Draw the whole page from the state (cheap enough to do on every change).
 * @param {RoomPageState} state
 */
export function renderAll(state) {
  const phase = state.phase;
  document.body.dataset.phase = state.statuses.block ? "over" : phase;
  $("view-signin").hidden = phase !== "signin";
  $("view-waiting").hidden = phase !== "prejoin" && phase !== "lobby";
  $("view-room").hidden = phase !== "room";
  $("view-room").dataset.mode = state.mode || "video";
  const chatOnly = state.mode === "chat";
  document.body.dataset.mode = state.mode || "";
  $("preview-pane").hidden = chatOnly;
  $("lobby-devices").hidden = chatOnly;
  $("devices-home").hidden = chatOnly;
  $("view-waiting").dataset.preview = chatOnly ? "off" : "on";

  const controls = $("control-media");
  if (phase === "room") {
    if (controls.parentNode !== $("control-bar")) $("control-bar").prepend(controls);
    moveDevices(state, "devices-room");
  } else {
    if (controls.parentNode !== $("preview-controls")) $("preview-controls").append(controls);
    moveDevices(state, phase === "lobby" ? "devices-lobby" : "devices-home");
    $("settings-panel").hidden = true;
    $("toggle-settings").setAttribute("aria-expanded", "false");
  }

  renderHeader(state);
  renderSchedule(state);
  // Entering the lobby on a phone: from the top, where the schedule says when the session starts.
  if (phase !== state.drawnPhase && phase === "lobby") window.scrollTo(0, 0);
  state.drawnPhase = phase;
  armGuard(state);
  renderRecording(state);
  renderLobby(state);
  renderTiles(state);
  if (phase === "room") {
    renderRoster(state);
    renderCaucus(state);
    renderMediatorControls(state);
    renderTyping(state);
  } else {
    renderMediatorControls(state);
    renderCaucus(state);
  }
  renderChatControls(state);
  renderUnread(state);
  updateJoinButton(state);
  renderStatus(state);
  renderBasics(state);
  renderMeeting(state);
}

/**
 * The meeting basics: the shared screen, raised hands, network and speaker marks on the tiles.
 * @param {RoomPageState} state
 */
export function renderMeeting(state) {
  renderShare(state);
  renderHands(state);
  renderNetwork(state);
}

/**
 * The markup's controls, wired once.
 * @param {RoomPageState} state
 */
export function wireStaticControls(state) {
  $("lang-select").addEventListener("change", (event) => setLanguage(state, /** @type {HTMLSelectElement} */ (event.target).value));
  $("signin-form").addEventListener("submit", (event) => submitSignIn(state, event));
  $("join-button").addEventListener("click", () => join(state));
  $("lobby-leave").addEventListener("click", () => leave(state));
  $("leave").addEventListener("click", () => leave(state));
  $("toggle-audio").addEventListener("click", () => toggleAudio(state));
  $("toggle-video").addEventListener("click", () => toggleVideo(state));
  $("toggle-settings").addEventListener("click", () => {
    const panel = $("settings-panel");
    panel.hidden = !panel.hidden;
    $("toggle-settings").setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) refreshDevices(state);
  });
  $("settings-close").addEventListener("click", () => {
    $("settings-panel").hidden = true;
    $("toggle-settings").setAttribute("aria-expanded", "false");
  });
  $("lock-room").addEventListener("click", () => toggleLock(state));
  $("end-session").addEventListener("click", () => endSession(state));
  $("start-recording").addEventListener("click", () => startRecording(state));
  $("stop-recording").addEventListener("click", () => stopRecording(state));
  $("consent-accept").addEventListener("click", () => giveConsent(state));
  $("consent-decline").addEventListener("click", () => declineConsent(state));
  $("consent-withdraw").addEventListener("click", () => withdrawConsent(state));
  $("consent-review").addEventListener("click", () => reviewConsent(state));
  $("close-caucus").addEventListener("click", () => act(state, async () => state.client?.closeCaucus()));
  $("chat-form").addEventListener("submit", (event) => sendChat(state, event));
  const input = $("chat-input");
  input.addEventListener("input", () => onChatInput(state));
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      sendChat(state);
    }
  });
  for (const tab of document.querySelectorAll(".side-tab")) {
    tab.addEventListener("click", () => selectPanel(state, /** @type {HTMLElement} */ (tab).dataset.panel === "people" ? "people" : "chat"));
  }
  $("chat-list").addEventListener("scroll", () => renderUnread(state));
  $("dialog-cancel").addEventListener("click", () => /** @type {HTMLDialogElement} */ ($("dialog")).close("cancel"));
  if (navigator.mediaDevices && typeof navigator.mediaDevices.addEventListener === "function") {
    navigator.mediaDevices.addEventListener("devicechange", () => refreshDevices(state));
  }
  wireLeaveGuards(state);
  $("toggle-share").addEventListener("click", () => toggleShare(state));
  $("screen-stop").addEventListener("click", () => stopOthersShare(state));
  $("raise-hand").addEventListener("click", () => toggleHand(state));
  watchNetwork(state);
  setInterval(() => {
    tickTimer(state);
    tickSchedule(state);
    reportLayout(state);
    tickBasics(state);
  }, 1000);
}
