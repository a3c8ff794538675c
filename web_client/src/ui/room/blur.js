// Background blur of the camera as sent: a toggle beside the camera button. When on, the camera
// track in the local stream is replaced by a processed track (lib/room/blurframe.js says what is
// blurred and what stays sharp); the mesh or the SFU sends that track to every peer and to the
// recorder (replaceTrack), and the local preview shows it, so a person sees what the others see.
//
// Processing runs on MediaStreamTrackProcessor / MediaStreamTrackGenerator where the browser has
// them (frames keep flowing in a background tab), else on a <video> drawn into a canvas whose
// captureStream is sent. Stopping the processed track (camera off, another camera) stops the camera
// under it.
import { centreRegion, drawBlurred, faceRegion, processedSize, scratchSizes, smoothRegion } from "../../lib/room/blurframe.js";
import { $, h } from "../dom.js";
import { icon } from "./icons.js";
import { BLUR_KEY, remember, sessionStore } from "./meeting.js";
import { liveTrack } from "./media.js";
import { notify } from "./notices.js";
import { log } from "./state.js";
import { reattachLocal } from "./tiles.js";

/** @typedef {import("./state.js").RoomPageState} RoomPageState */
/** @typedef {import("./meeting.js").BlurPipeline} BlurPipeline */
/** @typedef {import("../../lib/room/blurframe.js").Region} Region */

const FPS = 24;
// Faces are looked for a few times a second, not on every frame.
const DETECT_EVERY_MS = 400;

const w = /** @type {any} */ (globalThis);

/** Whether frames can be processed here: the breakout-box API, or a canvas that can be captured. */
export function blurSupported() {
  const breakout = typeof w.MediaStreamTrackProcessor === "function" && typeof w.MediaStreamTrackGenerator === "function" &&
    typeof w.OffscreenCanvas === "function" && typeof w.VideoFrame === "function";
  const canvas = typeof HTMLCanvasElement !== "undefined" && "captureStream" in HTMLCanvasElement.prototype;
  return breakout || canvas;
}

/** The browser's face detector (Shape Detection API), where it has one. */
function faceDetector() {
  try {
    return typeof w.FaceDetector === "function" ? new w.FaceDetector({ fastMode: true, maxDetectedFaces: 1 }) : null;
  } catch {
    return null;
  }
}

/**
 * The blur button in the media controls (pre-join and room), made once.
 * @param {RoomPageState} state
 */
export function renderBlur(state) {
  let button = /** @type {HTMLButtonElement | null} */ ($("toggle-blur"));
  if (!button) {
    button = /** @type {HTMLButtonElement} */ (h("button", { type: "button", class: "ctl", id: "toggle-blur", testid: "toggle-blur",
      on: { click: () => toggleBlur(state) } },
    h("span", { class: "ctl-icon", "aria-hidden": "true" }, icon("blur")),
    h("span", { class: "ctl-label", id: "toggle-blur-label" })));
    $("toggle-video").after(button);
    // What is kept sharp, read after the button's name (no notice: it would cover the chat on a phone).
    button.after(h("span", { class: "visually-hidden", id: "toggle-blur-description", testid: "blur-description" }));
    button.setAttribute("aria-describedby", "toggle-blur-description");
  }
  const pipe = state.meeting.blurPipeline;
  button.hidden = state.mode === "chat" || !blurSupported();
  button.dataset.on = String(state.meeting.blur);
  button.setAttribute("aria-pressed", String(state.meeting.blur));
  button.dataset.mode = pipe ? pipe.mode : "";
  const description = state.meeting.blur && pipe ? state.t(pipe.mode === "face" ? "blur.modeFace" : "blur.modeCentre") : "";
  button.title = description || state.t("blur.label");
  $("toggle-blur-description").textContent = description;
  /** @type {HTMLElement} */ (button.querySelector(".ctl-label")).textContent = state.t(state.meeting.blur ? "blur.on" : "blur.off");
  button.disabled = state.media.starting || !state.media.stream;
}

/**
 * @param {RoomPageState} state
 */
async function toggleBlur(state) {
  state.meeting.blur = !state.meeting.blur;
  remember(sessionStore(), BLUR_KEY, state.meeting.blur ? "1" : null);
  await applyBlur(state);
  renderBlur(state);
}

/**
 * Make what is sent follow the choice: the camera track in the local stream processed (blur on) or
 * the camera itself (blur off). Called after every change of the camera track (media.js).
 * @param {RoomPageState} state
 */
export async function applyBlur(state) {
  const stream = state.media.stream;
  const current = liveTrack(state, "video");
  const pipe = state.meeting.blurPipeline;
  if (pipe && pipe.output !== current) {
    // The processed track was stopped or replaced (camera off, another camera): its camera goes too.
    stopPipeline(state, pipe, { stopSource: pipe.source !== current });
  }
  if (!stream || !current) {
    renderBlur(state);
    return;
  }
  const running = state.meeting.blurPipeline;
  if (state.meeting.blur && !running) {
    let made = null;
    try {
      made = startPipeline(state, current);
    } catch (err) {
      log(state, "blur unavailable", err);
      state.meeting.blur = false;
      remember(sessionStore(), BLUR_KEY, null);
      notify(state, state.t("blur.failed"), { tone: "warning", key: "blur" });
    }
    if (made) await swapSent(state, current, made.output, made);
  } else if (!state.meeting.blur && running && running.output === current) {
    const source = running.source;
    await swapSent(state, current, source, null);
    stopPipeline(state, running, { stopSource: false });
  }
  renderBlur(state);
}

/**
 * Put `next` in the local stream instead of `previous`, and send it.
 * @param {RoomPageState} state
 * @param {MediaStreamTrack} previous
 * @param {MediaStreamTrack} next
 * @param {BlurPipeline | null} pipe the pipeline now running, if any
 */
async function swapSent(state, previous, next, pipe) {
  const stream = /** @type {MediaStream} */ (state.media.stream);
  stream.removeTrack(previous);
  stream.addTrack(next);
  state.meeting.blurPipeline = pipe;
  if (state.mesh) await state.mesh.replaceTrack("video", next);
  reattachLocal(state);
  const tile = state.tiles.get("self");
  if (tile) {
    tile.video.srcObject = stream;
    tile.video.play().catch(() => {});
  }
}

/**
 * @param {RoomPageState} state
 * @param {BlurPipeline} pipe
 * @param {{stopSource: boolean}} options
 */
function stopPipeline(state, pipe, { stopSource }) {
  pipe.stop();
  if (stopSource) pipe.source.stop();
  if (pipe.output.readyState === "live") pipe.output.stop();
  if (state.meeting.blurPipeline === pipe) state.meeting.blurPipeline = null;
}

/**
 * Start processing `source`; the pipeline's output track is live at once.
 * @param {RoomPageState} state
 * @param {MediaStreamTrack} source
 * @returns {BlurPipeline}
 */
function startPipeline(state, source) {
  const detector = faceDetector();
  /** @type {{region: Region | null, detecting: boolean, lastDetect: number}} */
  const face = { region: null, detecting: false, lastDetect: 0 };
  /** @type {BlurPipeline} */
  let pipe;
  /**
   * The region to keep sharp in a frame drawn at width x height (`scale` times its own size), asking
   * the detector now and then.
   * @param {CanvasImageSource} frame
   * @param {number} width
   * @param {number} height
   * @param {number} scale
   */
  const regionFor = (frame, width, height, scale) => {
    const now = performance.now();
    if (detector && !face.detecting && now - face.lastDetect > DETECT_EVERY_MS) {
      face.detecting = true;
      face.lastDetect = now;
      createImageBitmap(/** @type {ImageBitmapSource} */ (frame)).then((bitmap) => detector.detect(bitmap).finally(() => bitmap.close()))
        .then((/** @type {Array<{boundingBox: DOMRectReadOnly}>} */ faces) => {
          if (!faces.length) return;
          const b = faces[0].boundingBox;
          const box = { x: b.x * scale, y: b.y * scale, width: b.width * scale, height: b.height * scale };
          face.region = smoothRegion(face.region, faceRegion(box, width, height));
        })
        .catch(() => {})
        .finally(() => { face.detecting = false; });
    }
    return face.region || centreRegion(width, height);
  };
  const onEnded = () => {
    // The camera under the blur went away (unplugged, permission revoked): the output ends with it.
    if (pipe.output.readyState === "live") pipe.output.stop();
  };
  source.addEventListener("ended", onEnded);

  if (typeof w.MediaStreamTrackProcessor === "function" && typeof w.MediaStreamTrackGenerator === "function") {
    // The pipeline reads its own clone of the camera: stopping the clone ends the stream of frames
    // cleanly (each frame in flight is still written and closed), where aborting would drop them.
    const feed = source.clone();
    const processor = new w.MediaStreamTrackProcessor({ track: feed });
    const generator = new w.MediaStreamTrackGenerator({ kind: "video" });
    let stopped = false;
    // The last frames made, closed when the pipeline ends (closing one already consumed does nothing).
    /** @type {any[]} */
    const recent = [];
    const release = () => {
      for (const made of recent.splice(0)) made.close();
    };
    /** @type {{out: OffscreenCanvas, outCtx: OffscreenCanvasRenderingContext2D, scratch: {small: any, mid: any}} | null} */
    let canvases = null;
    const transform = new TransformStream({
      /** @param {any} frame @param {TransformStreamDefaultController} controller */
      transform(frame, controller) {
        try {
          if (stopped) return;
          if (generator.readyState === "ended") {
            // Stopped from outside (camera off, another camera): the camera under it is not needed.
            stopped = true;
            feed.stop();
            queueMicrotask(() => {
              if (state.meeting.blurPipeline === pipe) stopPipeline(state, pipe, { stopSource: true });
            });
            return;
          }
          const { width, height, scale } = processedSize(frame.displayWidth, frame.displayHeight);
          if (!canvases || canvases.out.width !== width || canvases.out.height !== height) {
            const out = new OffscreenCanvas(width, height);
            const sizes = scratchSizes(width, height);
            const scratch = (/** @type {{width: number, height: number}} */ size) =>
              new OffscreenCanvas(size.width, size.height).getContext("2d", { alpha: false });
            canvases = { out, outCtx: /** @type {OffscreenCanvasRenderingContext2D} */ (out.getContext("2d", { alpha: false })),
              scratch: { small: scratch(sizes.small), mid: scratch(sizes.mid) } };
          }
          drawBlurred(canvases.outCtx, canvases.scratch, frame, width, height, regionFor(frame, width, height, scale));
          const made = new w.VideoFrame(canvases.out, { timestamp: frame.timestamp });
          recent.push(made);
          if (recent.length > 4) recent.shift();
          controller.enqueue(made);
        } finally {
          frame.close();
        }
      },
    });
    processor.readable.pipeThrough(transform).pipeTo(generator.writable)
      .catch((/** @type {unknown} */ err) => log(state, "blur pipeline ended", err))
      .finally(release);
    pipe = {
      source, output: generator, mode: detector ? "face" : "centre",
      stop: () => {
        stopped = true;
        source.removeEventListener("ended", onEnded);
        feed.stop();
      },
    };
    return pipe;
  }

  // Elsewhere: the camera plays in a detached <video>, drawn into a canvas that is captured.
  const video = /** @type {HTMLVideoElement} */ (h("video", { muted: "", playsinline: "" }));
  video.muted = true;
  video.playsInline = true;
  video.srcObject = new MediaStream([source]);
  video.play().catch(() => {});
  const canvas = /** @type {HTMLCanvasElement} */ (h("canvas", { width: "640", height: "360" }));
  const small = /** @type {HTMLCanvasElement} */ (h("canvas", { width: "54", height: "30" }));
  const mid = /** @type {HTMLCanvasElement} */ (h("canvas", { width: "214", height: "120" }));
  const outCtx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d", { alpha: false }));
  const scratch = { small: /** @type {CanvasRenderingContext2D} */ (small.getContext("2d", { alpha: false })),
    mid: /** @type {CanvasRenderingContext2D} */ (mid.getContext("2d", { alpha: false })) };
  const output = canvas.captureStream(FPS).getVideoTracks()[0];
  let timer = 0;
  let stopped = false;
  const draw = () => {
    if (stopped) return;
    if (output.readyState === "ended") {
      if (state.meeting.blurPipeline === pipe) stopPipeline(state, pipe, { stopSource: true });
      return;
    }
    const { width, height, scale } = processedSize(video.videoWidth, video.videoHeight);
    if (width && height) {
      if (canvas.width !== width || canvas.height !== height) {
        const sizes = scratchSizes(width, height);
        canvas.width = width;
        canvas.height = height;
        small.width = sizes.small.width;
        small.height = sizes.small.height;
        mid.width = sizes.mid.width;
        mid.height = sizes.mid.height;
      }
      drawBlurred(outCtx, scratch, video, width, height, regionFor(video, width, height, scale));
    }
    timer = window.setTimeout(draw, 1000 / FPS);
  };
  draw();
  pipe = {
    source, output, mode: detector ? "face" : "centre",
    stop: () => {
      stopped = true;
      clearTimeout(timer);
      source.removeEventListener("ended", onEnded);
      video.srcObject = null;
    },
  };
  return pipe;
}
