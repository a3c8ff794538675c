// Local media: camera and microphone tracks on the one local stream, turning them on and off,
// switching devices, sending them to the mesh, media_state, and the mediator's mute requests.
import { applyBlur } from "./blur.js";
import { refreshDevices, startMeter, stopMeter } from "./devices.js";
import { notify } from "./notices.js";
import { log } from "./state.js";
import { clearStatus, setStatus } from "./status.js";
import { reattachLocal, renderLocal } from "./tiles.js";

/** @typedef {import("./state.js").RoomPageState} RoomPageState */

export function liveTrack(state, kind) {
  if (!state.media.stream) return null;
  return state.media.stream.getTracks().find((t) => t.kind === kind && t.readyState === "live") || null;
}

function stopTracks(state, kind = null) {
  if (!state.media.stream) return;
  for (const track of state.media.stream.getTracks()) {
    if (kind && track.kind !== kind) continue;
    track.stop();
    state.media.stream.removeTrack(track);
  }
}

/** @param {RoomPageState} state */
export function stopMedia(state) {
  stopTracks(state);
  state.media.choice = "none";
  stopMeter(state);
  renderLocal(state);
}

function constraintsFor(state, kind) {
  if (kind === "audio") {
    return {
      echoCancellation: true,
      noiseSuppression: true,
      autoGainControl: true,
      ...(state.media.audioDeviceId ? { deviceId: { exact: state.media.audioDeviceId } } : {}),
    };
  }
  return {
    width: { ideal: 1280 },
    height: { ideal: 720 },
    frameRate: { ideal: 24, max: 30 },
    ...(state.media.videoDeviceId ? { deviceId: { exact: state.media.videoDeviceId } } : {}),
  };
}

async function getMedia(state, { audio, video }) {
  if (!navigator.mediaDevices || typeof navigator.mediaDevices.getUserMedia !== "function") {
    const err = new Error("getUserMedia unavailable");
    err.name = "NotSupportedError";
    throw err;
  }
  return navigator.mediaDevices.getUserMedia({
    audio: audio ? constraintsFor(state, "audio") : false,
    video: video ? constraintsFor(state, "video") : false,
  });
}

function mediaFailure(state, err, choice) {
  log(state, "getUserMedia failed", err && err.name, err);
  const denied = err && (err.name === "NotAllowedError" || err.name === "SecurityError");
  const actions = [];
  if (choice === "av") {
    actions.push({ label: "action.audioOnly", testid: "continue-audio-only", run: () => startMedia(state, "audio") });
  }
  actions.push({ label: "action.chatOnly", testid: "continue-chat-only", run: () => startMedia(state, "none") });
  actions.push({ label: "action.retry", primary: true, testid: "retry-media", run: () => startMedia(state, "av") });
  setStatus(state, "media", { state: denied ? "permission-denied" : "media-unavailable", actions });
}

/**
 * Start local media. choice: av (camera + microphone), audio, none (chat-only: no media at all).
 * @param {RoomPageState} state
 * @param {"av" | "audio" | "none"} choice
 */
export async function startMedia(state, choice) {
  if (state.mode === "chat" || state.phase === "over" || !state.media.stream) {
    if (!state.media.stream && choice !== "none") setStatus(state, "media", { state: "unsupported" });
    return;
  }
  state.media.starting = true;
  renderLocal(state);
  stopTracks(state);
  state.media.choice = choice;
  if (choice !== "none") {
    try {
      const got = await getMedia(state, { audio: true, video: choice === "av" });
      if (state.phase === "over" || state.mode === "chat") {
        for (const track of got.getTracks()) track.stop();
        return;
      }
      for (const track of got.getTracks()) state.media.stream.addTrack(track);
      state.media.audioOn = true;
      clearStatus(state, "media");
    } catch (err) {
      state.media.choice = "none";
      mediaFailure(state, err, choice);
    }
  } else {
    clearStatus(state, "media");
  }
  state.media.starting = false;
  await applyBlur(state);
  await syncMeshTracks(state);
  renderLocal(state);
  sendMediaState(state);
  await refreshDevices(state);
  startMeter(state);
}

/** @param {RoomPageState} state */
async function syncMeshTracks(state) {
  if (!state.mesh) return;
  await state.mesh.replaceTrack("audio", liveTrack(state, "audio"));
  await state.mesh.replaceTrack("video", liveTrack(state, "video"));
}

/** @param {RoomPageState} state */
export async function toggleAudio(state) {
  resumeAudio(state);
  const track = liveTrack(state, "audio");
  if (!track) {
    await addTrack(state, "audio");
    return;
  }
  track.enabled = !track.enabled;
  state.media.audioOn = track.enabled;
  renderLocal(state);
  sendMediaState(state);
}

/** @param {RoomPageState} state */
export async function toggleVideo(state) {
  const track = liveTrack(state, "video");
  if (track) {
    track.stop();
    state.media.stream.removeTrack(track);
    if (state.mesh) await state.mesh.replaceTrack("video", null);
    await applyBlur(state);
    renderLocal(state);
    sendMediaState(state);
    return;
  }
  await addTrack(state, "video");
}

/** Start one kind of track (camera or microphone) and send it. */
async function addTrack(state, kind) {
  if (!state.media.stream || state.mode === "chat") return;
  try {
    const got = await getMedia(state, { audio: kind === "audio", video: kind === "video" });
    const track = got.getTracks().find((t) => t.kind === kind);
    stopTracks(state, kind);
    state.media.stream.addTrack(track);
    if (kind === "audio") {
      track.enabled = true;
      state.media.audioOn = true;
    }
    if (state.media.choice === "none") state.media.choice = kind === "video" ? "av" : "audio";
    else if (kind === "video") state.media.choice = "av";
    clearStatus(state, "media");
    if (kind === "video") await applyBlur(state); // the blurred camera is sent, not the camera
    if (state.mesh) await state.mesh.replaceTrack(kind, liveTrack(state, kind));
    if (kind === "video") reattachLocal(state);
    await refreshDevices(state);
    startMeter(state);
  } catch (err) {
    mediaFailure(state, err, kind === "video" ? "av" : "audio");
  }
  renderLocal(state);
  sendMediaState(state);
}

/** Switch camera or microphone: a new track replaces the old one on every connection. */
export async function switchDevice(state, kind, deviceId) {
  if (kind === "audio") state.media.audioDeviceId = deviceId || null;
  else state.media.videoDeviceId = deviceId || null;
  const old = liveTrack(state, kind);
  if (!old) return; // used the next time this kind starts
  const wasEnabled = old.enabled;
  old.stop(); // some devices cannot open a second camera while the first is open
  state.media.stream.removeTrack(old);
  if (kind === "video") await applyBlur(state); // a blurred camera: the camera under it closes too
  try {
    const got = await getMedia(state, { audio: kind === "audio", video: kind === "video" });
    const track = got.getTracks().find((t) => t.kind === kind);
    track.enabled = wasEnabled;
    state.media.stream.addTrack(track);
    if (kind === "video") await applyBlur(state);
    if (state.mesh) await state.mesh.replaceTrack(kind, liveTrack(state, kind));
    if (kind === "audio") startMeter(state);
    else reattachLocal(state);
  } catch (err) {
    if (state.mesh) await state.mesh.replaceTrack(kind, null);
    notify(state, state.t("status.mediaUnavailable.title"), { tone: "error", key: "device" });
    log(state, "device switch failed", err);
  }
  renderLocal(state);
  sendMediaState(state);
}

/** @param {RoomPageState} state */
function currentMediaState(state) {
  if (state.mode === "chat") return { audio: false, video: false };
  const audio = liveTrack(state, "audio");
  return { audio: Boolean(audio && audio.enabled), video: Boolean(liveTrack(state, "video")) };
}

export function sendMediaState(state, force = false) {
  if (!state.client || !state.client.joined) return;
  const now = currentMediaState(state);
  const key = JSON.stringify(now);
  if (!force && key === state.media.lastSent) return;
  state.media.lastSent = key;
  state.client.mediaState(now).catch((err) => {
    state.media.lastSent = null;
    log(state, "media_state failed", err);
  });
}

/** @param {RoomPageState} state */
export function resumeAudio(state) {
  if (state.media.meter && state.media.meter.ctx && state.media.meter.ctx.state === "suspended") {
    state.media.meter.ctx.resume().catch(() => {});
  }
}

export function onMuteRequested(state, { audio, video }) {
  const key = audio && video ? "both" : audio ? "audio" : video ? "video" : null;
  if (!key) return;
  notify(state, state.t(`notice.muteRequest.${key}`), {
    tone: "warning",
    key: "mute-request",
    testid: "mute-request",
    timeout: 0,
    actions: [
      {
        label: state.t("notice.muteRequest.comply"),
        testid: "mute-request-comply",
        run: async () => {
          const track = liveTrack(state, "audio");
          if (audio && track && track.enabled) await toggleAudio(state);
          if (video && liveTrack(state, "video")) await toggleVideo(state);
        },
      },
    ],
  });
}
