// Screen sharing on the room page (docs/protocol.md, "Screen sharing and raised hands"): the control,
// the large view of the shared screen, the mediator's "stop this share", and ending a share from the
// browser's own "stop sharing". The media side is ../../lib/room/screen.js.
import { $ } from "../dom.js";
import { Sfu } from "../../lib/room/sfu.js";
import { parseScreenShare, remoteScreen, shareScreen } from "../../lib/room/screen.js";
import { icon } from "./icons.js";
import { act, notify, notifyError } from "./notices.js";
import { isMediator, log, nameOf, selfId } from "./state.js";

/** @typedef {import("./state.js").RoomPageState} RoomPageState */

/** @type {import("../../lib/room/screen.js").Screen | null} the screen this page shares */
let sharing = null;
let starting = false;

/**
 * The mesh that carries our screen. Rooms on the media server do not share screens yet (docs/protocol.md):
 * it forwards one camera per participant.
 * @param {RoomPageState} state
 * @returns {import("../../lib/room/mesh.js").Mesh | null}
 */
function meshOf(state) {
  const media = state.mesh;
  return media && !(media instanceof Sfu) ? media : null;
}

/** @returns {boolean} */
function supported() {
  return Boolean(navigator.mediaDevices && typeof navigator.mediaDevices.getDisplayMedia === "function");
}

/**
 * Whether this page may offer the control now: an admitted person in a video room, not left out of a caucus.
 * @param {RoomPageState} state
 */
function mayShare(state) {
  const role = state.self ? state.self.role : null;
  return state.phase === "room" && state.mode === "video" && state.status === "admitted" && role !== null &&
    role !== "recorder" && !state.caucusExcluded && meshOf(state) !== null;
}

/** @param {RoomPageState} state */
export async function toggleShare(state) {
  if (sharing) {
    await stopSharing(state, { tell: true });
    return;
  }
  if (starting || !state.client) return;
  if (!supported()) {
    notify(state, state.t("share.unavailable"), { tone: "error", key: "share" });
    return;
  }
  starting = true;
  renderShare(state);
  /** @type {MediaStream | null} */
  let stream = null;
  try {
    // A schedule of numbers changes seldom: a few frames a second keep it sharp and spare weak phones.
    stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 5, max: 15 } }, audio: false });
  } catch (err) {
    log(state, "getDisplayMedia failed", err);
    // The person closed the browser's picker: nothing to say.
    const name = err && typeof err === "object" && "name" in err ? err.name : "";
    if (name !== "NotAllowedError" && name !== "AbortError") notify(state, state.t("share.failed"), { tone: "error", key: "share" });
  }
  const track = stream ? stream.getVideoTracks()[0] : undefined;
  if (!stream || !track) {
    starting = false;
    renderShare(state);
    return;
  }
  // A schedule of numbers: sharp text matters more than smooth motion.
  if ("contentHint" in track) track.contentHint = "detail";
  try {
    await state.client.startScreenShare(stream.id);
  } catch (err) {
    for (const t of stream.getTracks()) t.stop();
    starting = false;
    notifyError(state, err);
    renderShare(state);
    return;
  }
  starting = false;
  sharing = { track, stream };
  // The browser's own "stop sharing" ends the track: the share ends with it.
  track.addEventListener("ended", () => {
    if (sharing && sharing.track === track) stopSharing(state, { tell: true });
  });
  const mesh = meshOf(state);
  if (mesh) await shareScreen(mesh, sharing);
  renderShare(state);
}

/**
 * End this page's share: the track stops, the connections drop it, and the room is told unless it ended
 * the share itself (`screen_share_stopped`).
 * @param {RoomPageState} state
 * @param {{tell: boolean}} options
 */
export async function stopSharing(state, { tell }) {
  const ended = sharing;
  if (!ended) return;
  sharing = null;
  for (const t of ended.stream.getTracks()) t.stop();
  const mesh = meshOf(state);
  if (mesh) await shareScreen(mesh, null);
  renderShare(state);
  if (tell && state.client && state.client.joined) {
    state.client.stopScreenShare().catch((err) => log(state, "stop_screen_share failed", err));
  }
}

/**
 * `screen_share_stopped`: the mediator or a caucus ended our share.
 * @param {RoomPageState} state
 * @param {{reason?: unknown}} body
 */
export function onShareStopped(state, body) {
  stopSharing(state, { tell: false });
  const key = body && body.reason === "caucus" ? "share.stoppedByCaucus" : "share.stoppedByMediator";
  notify(state, state.t(key), { tone: "warning", key: "share", testid: "share-stopped" });
}

/**
 * A screen arrived from the mesh (or the room changed): draw the stage again.
 * @param {RoomPageState} state
 */
export function renderShare(state) {
  const share = parseScreenShare(state.room && state.room.screen_share);
  const me = selfId(state);
  // Our share ended elsewhere (we were sent to the lobby, the room lost it): stop sending it.
  if (sharing && !starting && state.room && (!share || share.participant_id !== me)) {
    if (state.phase !== "room" || state.status !== "admitted" || (share && share.participant_id !== me)) {
      stopSharing(state, { tell: false });
    }
  }
  const button = $("toggle-share");
  const allowed = mayShare(state) && supported();
  button.hidden = !allowed;
  const on = Boolean(sharing);
  button.dataset.active = String(on);
  button.setAttribute("aria-pressed", String(on));
  button.disabled = starting || (!on && Boolean(share && share.participant_id !== me));
  button.querySelector(".ctl-icon")?.replaceChildren(icon("screen"));
  $("toggle-share-label").textContent = state.t(on ? "share.stop" : "share.start");

  const stage = $("screen-stage");
  const video = /** @type {HTMLVideoElement} */ ($("screen-video"));
  const visible = Boolean(share) && state.phase === "room" && state.mode === "video";
  stage.hidden = !visible;
  $("stage").dataset.sharing = String(visible);
  if (!visible || !share) {
    if (video.srcObject) video.srcObject = null;
    stage.removeAttribute("data-sharer");
    return;
  }
  stage.dataset.sharer = share.participant_id;
  const own = share.participant_id === me;
  $("screen-caption").textContent = own ? state.t("share.you") : state.t("share.by", { name: nameOf(state, share.participant_id) });
  stage.dataset.own = String(own);
  // Our own screen is not shown back to us (a mirror of a mirror); a banner says it is shared.
  const mesh = meshOf(state);
  const source = own ? null : mesh ? remoteScreen(mesh, share) : null;
  video.hidden = own;
  if (video.srcObject !== source) {
    video.srcObject = source;
    if (source) video.play().catch(() => {});
  }
  const stopOther = $("screen-stop");
  stopOther.hidden = !(isMediator(state) && !own);
}

/**
 * The mediator stops the current share of someone else.
 * @param {RoomPageState} state
 */
export function stopOthersShare(state) {
  const share = parseScreenShare(state.room && state.room.screen_share);
  if (!share || !state.client) return;
  act(state, async () => state.client?.stopScreenShare(share.participant_id));
}
