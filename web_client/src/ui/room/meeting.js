// The meeting basics' part of the room state (speaker, self-view, background blur, time warnings,
// lobby cue), kept in one object under `state.meeting`, and the browser storage they remember in.

/**
 * @typedef {object} BlurPipeline The camera as sent with its background blurred.
 * @property {MediaStreamTrack} source the camera track
 * @property {MediaStreamTrack} output the processed track put in the local stream and sent
 * @property {"face" | "centre"} mode what is kept sharp
 * @property {() => void} stop
 */

/**
 * @typedef {object} MeetingState
 * @property {string} speaker the chosen audio output's deviceId ("" for the system default)
 * @property {boolean} speakerTesting a test tone is playing
 * @property {boolean} selfMinimised the phone self-view is folded into a pill
 * @property {boolean} blur background blur asked for
 * @property {BlurPipeline | null} blurPipeline
 * @property {Set<string>} warned time warnings given (10, 5, over)
 * @property {Set<string>} cueSeen who was waiting in the lobby when last cued
 * @property {number} lobbyWaiting how many were waiting in the lobby when last cued
 * @property {number} chimes lobby chimes played
 * @property {boolean} lobbySound the lobby chime is on
 * @property {AudioContext | null} audio the page's one context for generated sounds
 */

export const SPEAKER_KEY = "mediation.speaker";
export const LOBBY_SOUND_KEY = "mediation.lobbySound";
export const SELFVIEW_KEY = "mediation.selfMinimised";
export const BLUR_KEY = "mediation.blur";

/** @returns {MeetingState} */
export function createMeetingState() {
  return {
    speaker: stored(localStore(), SPEAKER_KEY) ?? "",
    speakerTesting: false,
    selfMinimised: stored(sessionStore(), SELFVIEW_KEY) === "1",
    blur: stored(sessionStore(), BLUR_KEY) === "1",
    blurPipeline: null,
    warned: new Set(),
    cueSeen: new Set(),
    lobbyWaiting: 0,
    chimes: 0,
    lobbySound: stored(localStore(), LOBBY_SOUND_KEY) !== "0",
    audio: null,
  };
}

/** @returns {Storage | null} */
export function localStore() {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

/** @returns {Storage | null} */
export function sessionStore() {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

/**
 * @param {Storage | null} store
 * @param {string} key
 * @returns {string | null}
 */
export function stored(store, key) {
  try {
    return store ? store.getItem(key) : null;
  } catch {
    return null;
  }
}

/**
 * @param {Storage | null} store
 * @param {string} key
 * @param {string | null} value null removes it
 */
export function remember(store, key, value) {
  try {
    if (!store) return;
    if (value === null) store.removeItem(key);
    else store.setItem(key, value);
  } catch {
    // storage full or refused: the choice lasts for this page only
  }
}

/**
 * The page's AudioContext for generated sounds, made on first use (resumed: a click made it).
 * @param {{meeting: MeetingState}} state
 * @returns {AudioContext | null}
 */
export function soundContext(state) {
  const AudioCtx = window.AudioContext || /** @type {any} */ (window).webkitAudioContext;
  if (!AudioCtx) return null;
  if (!state.meeting.audio) state.meeting.audio = new AudioCtx();
  const ctx = state.meeting.audio;
  if (ctx.state === "suspended") ctx.resume().catch(() => {});
  return ctx;
}

/**
 * A short generated tone (no sound file): `notes` of [frequency Hz, seconds], with soft edges, into
 * `destination`. Resolves when it has played.
 * @param {AudioContext} ctx
 * @param {AudioNode} destination
 * @param {Array<[number, number]>} notes
 * @param {number} [volume] peak gain, 0..1
 * @returns {Promise<void>}
 */
export function playNotes(ctx, destination, notes, volume = 0.2) {
  let at = ctx.currentTime + 0.02;
  for (const [frequency, seconds] of notes) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "sine";
    osc.frequency.value = frequency;
    gain.gain.setValueAtTime(0, at);
    gain.gain.linearRampToValueAtTime(volume, at + 0.03);
    gain.gain.setValueAtTime(volume, at + Math.max(0.03, seconds - 0.08));
    gain.gain.linearRampToValueAtTime(0, at + seconds);
    osc.connect(gain).connect(destination);
    osc.start(at);
    osc.stop(at + seconds + 0.01);
    at += seconds;
  }
  const total = at - ctx.currentTime;
  return new Promise((resolve) => setTimeout(resolve, Math.ceil(total * 1000) + 50));
}
