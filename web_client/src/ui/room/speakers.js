// Speaker (audio output) choice and test. The choice lists the browser's audio outputs where it can
// route a media element to one (HTMLMediaElement.setSinkId; the list is hidden elsewhere), is
// remembered in this browser, and applies to every remote participant's tile. "Test speaker" plays
// a short generated tone (WebAudio, no sound file) on the chosen output.
import { $, h } from "../dom.js";
import { SPEAKER_KEY, localStore, playNotes, remember, soundContext } from "./meeting.js";
import { log } from "./state.js";

/** @typedef {import("./state.js").RoomPageState} RoomPageState */

// The test tone: a rising three-note chime, clearly audible and short.
const TEST_NOTES = /** @type {Array<[number, number]>} */ ([[523.25, 0.35], [659.25, 0.35], [783.99, 0.6]]);

/** Whether this browser can send a media element's sound to a chosen output. */
export function canChooseSpeaker() {
  return typeof HTMLMediaElement !== "undefined" && "setSinkId" in HTMLMediaElement.prototype;
}

/**
 * The speaker controls inside the device choice (made once from its template).
 * @param {RoomPageState} state
 * @param {HTMLElement} root the devices fieldset
 */
export function wireSpeakers(state, root) {
  const select = /** @type {HTMLSelectElement} */ (root.querySelector("#speaker-select"));
  const field = /** @type {HTMLElement} */ (root.querySelector("#speaker-choice"));
  field.hidden = !canChooseSpeaker();
  select.addEventListener("change", () => chooseSpeaker(state, select.value));
  root.querySelector("#speaker-test")?.addEventListener("click", () => testSpeaker(state));
}

/**
 * Fill the speaker list from `devices` (enumerateDevices), selecting the remembered one.
 * @param {RoomPageState} state
 * @param {MediaDeviceInfo[]} devices
 */
export function fillSpeakers(state, devices) {
  const select = /** @type {HTMLSelectElement | null} */ ($("speaker-select"));
  if (!select || !canChooseSpeaker()) return;
  // "default" is the system's own choice: listed once, as the first option.
  const outputs = devices.filter((d) => d.kind === "audiooutput" && d.deviceId && d.deviceId !== "default");
  const options = [h("option", { value: "", text: state.t("speaker.default") })];
  outputs.forEach((d, i) => options.push(h("option", { value: d.deviceId, text: d.label || state.t("speaker.unnamed", { n: i + 1 }) })));
  select.replaceChildren(...options);
  const known = state.meeting.speaker === "" || outputs.some((d) => d.deviceId === state.meeting.speaker);
  // A remembered speaker that is not plugged in now: the default plays meanwhile, the choice is kept.
  select.value = known ? state.meeting.speaker : "";
  applySpeaker(state);
}

/**
 * @param {RoomPageState} state
 * @param {string} deviceId
 */
function chooseSpeaker(state, deviceId) {
  state.meeting.speaker = deviceId;
  remember(localStore(), SPEAKER_KEY, deviceId || null);
  applySpeaker(state);
}

/**
 * The output the page plays on: the remembered speaker if it is listed now, else the default.
 * @param {RoomPageState} state
 */
function currentSink(state) {
  const select = /** @type {HTMLSelectElement | null} */ ($("speaker-select"));
  if (!select) return state.meeting.speaker;
  return [...select.options].some((o) => o.value === state.meeting.speaker) ? state.meeting.speaker : "";
}

/**
 * Route a media element to the chosen speaker (nothing where the browser cannot).
 * @param {RoomPageState} state
 * @param {HTMLMediaElement} element
 */
async function routeTo(state, element) {
  const sink = currentSink(state);
  const el = /** @type {HTMLMediaElement & {sinkId?: string, setSinkId?: (id: string) => Promise<void>}} */ (element);
  if (!canChooseSpeaker() || typeof el.setSinkId !== "function" || el.sinkId === sink) return;
  try {
    await el.setSinkId(sink);
  } catch (err) {
    log(state, "setSinkId failed", err);
  }
}

/**
 * Every remote tile plays on the chosen speaker (cheap: only elements on another output change).
 * @param {RoomPageState} state
 */
export function applySpeaker(state) {
  if (!canChooseSpeaker()) return;
  for (const [id, tile] of state.tiles) if (id !== "self" && tile.video) routeTo(state, tile.video);
}

/**
 * Play the test tone on the chosen speaker; the button and a status line say that it plays.
 * @param {RoomPageState} state
 */
async function testSpeaker(state) {
  if (state.meeting.speakerTesting) return;
  const button = $("speaker-test");
  const status = $("speaker-test-status");
  const ctx = soundContext(state);
  if (!ctx) {
    status.textContent = state.t("speaker.failed");
    return;
  }
  state.meeting.speakerTesting = true;
  button.setAttribute("aria-disabled", "true");
  button.dataset.state = "playing";
  status.textContent = state.t("speaker.testing");
  // Through an <audio> element, so the tone goes where the participants' voices go.
  const destination = ctx.createMediaStreamDestination();
  const audio = /** @type {HTMLAudioElement} */ (h("audio", { hidden: true, "data-testid": "speaker-test-audio" }));
  audio.srcObject = destination.stream;
  document.body.append(audio);
  let ok = true;
  try {
    await routeTo(state, audio);
    await audio.play();
    await playNotes(ctx, destination, TEST_NOTES, 0.25);
  } catch (err) {
    ok = false;
    log(state, "test tone failed", err);
  } finally {
    audio.pause();
    audio.srcObject = null;
    audio.remove();
    state.meeting.speakerTesting = false;
    button.removeAttribute("aria-disabled");
    button.dataset.state = ok ? "done" : "failed";
    status.textContent = state.t(ok ? "speaker.tested" : "speaker.failed");
  }
}
