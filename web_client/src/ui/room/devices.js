// Camera and microphone choice and the microphone level meter.
import { $, h } from "../dom.js";
import { liveTrack, switchDevice } from "./media.js";
import { fillSpeakers, wireSpeakers } from "./speakers.js";
import { log } from "./state.js";

/** @typedef {import("./state.js").RoomPageState} RoomPageState */

/**
 * Fill the camera and microphone lists, selecting the devices in use.
 * @param {RoomPageState} state
 */
export async function refreshDevices(state) {
  const cameraSelect = $("camera-select");
  const micSelect = $("mic-select");
  if (!cameraSelect || !micSelect) return;
  /** @type {MediaDeviceInfo[]} */
  let devices = [];
  try {
    devices = navigator.mediaDevices && navigator.mediaDevices.enumerateDevices
      ? await navigator.mediaDevices.enumerateDevices()
      : [];
  } catch {
    devices = [];
  }
  /**
   * @param {HTMLSelectElement} select
   * @param {MediaDeviceKind} kind
   * @param {string | null | undefined} current
   */
  const fillSelect = (select, kind, current) => {
    const list = devices.filter((d) => d.kind === kind && d.deviceId);
    const options = list.map((d, i) =>
      h("option", { value: d.deviceId,
        text: d.label || state.t("devices.unnamed", { kind: state.t(`devices.kind.${kind}`), n: i + 1 }) }));
    if (!options.length) options.push(h("option", { value: "", text: state.t("devices.none") }));
    select.replaceChildren(...options);
    select.disabled = !list.length;
    if (current && list.some((d) => d.deviceId === current)) select.value = current;
  };
  /** @param {"audio" | "video"} kind */
  const inUse = (kind) => {
    const track = liveTrack(state, kind);
    const settings = track && typeof track.getSettings === "function" ? track.getSettings() : {};
    return settings.deviceId || (kind === "audio" ? state.media.audioDeviceId : state.media.videoDeviceId);
  };
  fillSelect(cameraSelect, "videoinput", inUse("video"));
  fillSelect(micSelect, "audioinput", inUse("audio"));
  fillSpeakers(state, devices);
}

/**
 * Microphone level meter (pre-join and settings), so a party can see the microphone works.
 * @param {RoomPageState} state
 */
export function startMeter(state) {
  stopMeter(state);
  const track = liveTrack(state, "audio");
  const AudioCtx = window.AudioContext || window.webkitAudioContext;
  if (!track || !AudioCtx) return;
  try {
    const ctx = state.media.meter && state.media.meter.ctx ? state.media.meter.ctx : new AudioCtx();
    const source = ctx.createMediaStreamSource(new MediaStream([track]));
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 512;
    source.connect(analyser);
    const data = new Uint8Array(analyser.fftSize);
    const meter = { ctx, source, analyser, frame: 0 };
    state.media.meter = meter;
    const tick = () => {
      if (state.media.meter !== meter) return;
      const bar = $("mic-meter-bar");
      if (bar && bar.offsetParent !== null) {
        analyser.getByteTimeDomainData(data);
        let sum = 0;
        for (const v of data) sum += (v - 128) * (v - 128);
        const rms = Math.sqrt(sum / data.length) / 128;
        const on = track.enabled && track.readyState === "live";
        bar.dataset.level = String(on ? Math.min(10, Math.round(rms * 40)) : 0);
      }
      meter.frame = requestAnimationFrame(tick);
    };
    meter.frame = requestAnimationFrame(tick);
  } catch (err) {
    log(state, "meter unavailable", err);
  }
}

/** @param {RoomPageState} state */
export function stopMeter(state) {
  const meter = state.media.meter;
  if (!meter) return;
  cancelAnimationFrame(meter.frame);
  try {
    if (meter.source) meter.source.disconnect();
  } catch {
    // already disconnected
  }
  state.media.meter = { ctx: meter.ctx };
}

/**
 * The device choice, made from its template once, moves between pre-join, lobby and room settings.
 * @param {RoomPageState} state
 * @param {string} containerId
 */
export function moveDevices(state, containerId) {
  let devices = $("devices");
  if (!devices) {
    devices = $("tpl-devices").content.firstElementChild.cloneNode(true);
    for (const node of devices.querySelectorAll("[data-i18n]")) node.textContent = state.t(node.dataset.i18n);
    devices.querySelector("#camera-select").addEventListener("change", (e) => switchDevice(state, "video", e.target.value));
    devices.querySelector("#mic-select").addEventListener("change", (e) => switchDevice(state, "audio", e.target.value));
    wireSpeakers(state, devices);
  }
  const container = $(containerId);
  if (container && devices.parentNode !== container) container.append(devices);
}
