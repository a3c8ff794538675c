// The stage: the local preview and one video tile per admitted participant (not the recorder).
import { $, h } from "../dom.js";
import { icon } from "./icons.js";
import { liveTrack } from "./media.js";
import { notify } from "./notices.js";
import { initials, participant, participants, roleLabel, selfId } from "./state.js";

/** @typedef {import("./state.js").RoomPageState} RoomPageState */

/**
 * @typedef {object} Tile One video tile: the local preview ("self") or a remote participant.
 * @property {string} id
 * @property {HTMLElement} root
 * @property {HTMLVideoElement} video
 * @property {HTMLElement} avatar
 * @property {HTMLElement} placeholderText
 * @property {HTMLElement} nameText
 * @property {HTMLElement} roleText
 * @property {HTMLElement} audioIcon
 * @property {HTMLElement} videoIcon
 * @property {HTMLElement} stateText
 * @property {MediaStream | null} stream
 */

/**
 * @param {RoomPageState} state
 * @param {string} id
 * @param {{local?: boolean}} [options]
 * @returns {Tile}
 */
function makeTile(state, id, { local = false } = {}) {
  const video = /** @type {HTMLVideoElement} */ (h("video", { autoplay: "", playsinline: "",
    "data-testid": local ? "local-video" : "remote-video", "data-participant-id": local ? null : id }));
  video.autoplay = true;
  video.playsInline = true;
  if (local) {
    video.muted = true;
    video.defaultMuted = true;
    video.setAttribute("muted", "");
  }
  const avatar = h("span", { class: "avatar" });
  const placeholderText = h("p", { class: "tile-placeholder-text" });
  // Names and roles are set later with textContent: isolated here (ui/dom.js).
  const nameText = h("span", { class: "tile-name-text", dir: "auto" });
  const roleText = h("span", { class: "tile-role", dir: "auto" });
  const audioIcon = h("span", { class: "media-icon", dataset: { kind: "audio" } });
  const videoIcon = h("span", { class: "media-icon", dataset: { kind: "video" } });
  const stateText = h("span", { class: "tile-state" });
  const root = h("div", { class: "tile", "data-testid": local ? "local-tile" : "remote-tile",
    "data-participant-id": local ? null : id, dataset: { local: String(local) } },
  video,
  h("div", { class: "tile-placeholder" }, avatar, placeholderText),
  stateText,
  h("div", { class: "tile-label" },
    h("span", { class: "tile-name" }, nameText, roleText),
    h("span", { class: "tile-media" }, audioIcon, videoIcon)));
  const tile = { id, root, video, avatar, placeholderText, nameText, roleText, audioIcon, videoIcon, stateText, stream: null };
  state.tiles.set(id, tile);
  return tile;
}

/**
 * A microphone or camera icon, on or off, with its tooltip.
 * @param {RoomPageState} state
 * @param {HTMLElement} node
 * @param {"audio" | "video"} kind
 * @param {boolean} on
 */
export function setMediaIcon(state, node, kind, on) {
  const iconName = kind === "audio" ? (on ? "mic" : "micOff") : on ? "cam" : "camOff";
  node.dataset.on = String(on);
  node.setAttribute("title", state.t(`participant.${kind === "audio" ? "mic" : "cam"}${on ? "On" : "Off"}`));
  node.replaceChildren(icon(iconName));
}

/** @param {RoomPageState} state */
function localTile(state) {
  return state.tiles.get("self") || makeTile(state, "self", { local: true });
}

/** The video track of the local stream changed: make the preview pick up the new one. */
export function reattachLocal(state) {
  const tile = state.tiles.get("self");
  if (tile) tile.video.srcObject = null;
}

/** @param {RoomPageState} state */
export function renderLocal(state) {
  const tile = localTile(state);
  const self = state.self;
  const name = self ? self.name : state.t("tile.you");
  tile.nameText.textContent = self ? `${name} ${state.t("participant.you")}` : name;
  tile.roleText.textContent = self ? roleLabel(state, self.role) : "";
  tile.avatar.textContent = initials(self ? self.name : "");
  tile.avatar.dataset.role = self ? self.role : "";
  const audio = liveTrack(state, "audio");
  const video = liveTrack(state, "video");
  const audioOn = Boolean(audio && audio.enabled);
  setMediaIcon(state, tile.audioIcon, "audio", audioOn);
  setMediaIcon(state, tile.videoIcon, "video", Boolean(video));
  tile.root.dataset.video = video ? "on" : "off";
  tile.placeholderText.textContent = state.media.starting
    ? state.t("prejoin.cameraStarting")
    : state.media.choice === "none"
      ? state.t("prejoin.mediaOff")
      : state.t("tile.cameraOff");
  // Only a stream with a live video track is attached: an empty MediaStream would keep the element
  // loading forever (and hold back the page's load event).
  const source = video ? state.media.stream : null;
  if (tile.video.srcObject !== source) tile.video.srcObject = source;
  if (video && tile.video.paused) tile.video.play().catch(() => {});

  const audioBtn = $("toggle-audio");
  audioBtn.dataset.on = String(audioOn);
  audioBtn.querySelector(".ctl-icon").replaceChildren(icon(audioOn ? "mic" : "micOff"));
  $("toggle-audio-label").textContent = state.t(audioOn ? "controls.micOn" : "controls.micOff");
  audioBtn.setAttribute("aria-pressed", String(!audioOn));
  const videoBtn = $("toggle-video");
  videoBtn.dataset.on = String(Boolean(video));
  videoBtn.querySelector(".ctl-icon").replaceChildren(icon(video ? "cam" : "camOff"));
  $("toggle-video-label").textContent = state.t(video ? "controls.camOn" : "controls.camOff");
  videoBtn.setAttribute("aria-pressed", String(!video));
  $("toggle-settings").querySelector(".ctl-icon").replaceChildren(icon("sliders"));
  const disabled = state.media.starting || !state.media.stream || state.mode === "chat";
  audioBtn.disabled = disabled;
  videoBtn.disabled = disabled;
}

export function attachRemote(state, id, stream) {
  const tile = state.tiles.get(id);
  if (!tile) {
    // No tile yet (room_state not rendered): keep it for when the tile appears.
    state.pendingStreams.set(id, stream);
    return;
  }
  tile.stream = stream;
  // Re-attach even the same stream: a track added later (camera turned on) must be picked up.
  tile.video.srcObject = null;
  tile.video.srcObject = stream;
  if (stream) playRemote(state, tile.video);
  updateRemoteTile(state, tile, participant(state, id));
}

function playRemote(state, video) {
  const attempt = video.play();
  if (attempt && typeof attempt.catch === "function") {
    attempt.catch((err) => {
      if (err && err.name === "NotAllowedError") {
        notify(state, state.t("notice.autoplay"), {
          key: "autoplay",
          timeout: 0,
          actions: [
            {
              label: state.t("notice.autoplayAction"),
              testid: "enable-sound",
              run: () => {
                for (const t of state.tiles.values()) if (t.stream) t.video.play().catch(() => {});
              },
            },
          ],
        });
      }
    });
  }
}

function updateRemoteTile(state, tile, p) {
  if (!p) return;
  const isolated = Boolean(state.mesh && state.mesh.isolated.has(p.participant_id)) ||
    (state.caucusExcluded && p.in_caucus);
  tile.nameText.textContent = p.name;
  tile.roleText.textContent = roleLabel(state, p.role);
  tile.avatar.textContent = initials(p.name);
  tile.avatar.dataset.role = p.role;
  setMediaIcon(state, tile.audioIcon, "audio", Boolean(p.audio));
  setMediaIcon(state, tile.videoIcon, "video", Boolean(p.video));
  const hasVideo = Boolean(tile.stream && tile.stream.getVideoTracks().some((t) => t.readyState === "live"));
  tile.root.dataset.video = p.video && hasVideo ? "on" : "off";
  tile.root.dataset.isolated = String(isolated);
  tile.root.dataset.connected = String(p.connected !== false);
  tile.root.dataset.conn = tile.stream ? "media" : "waiting";
  let text;
  if (isolated) text = state.t("tile.isolated");
  else if (p.connected === false) text = state.t("tile.disconnected");
  else if (!tile.stream && (p.audio || p.video)) text = state.t("tile.connecting");
  else if (!p.video) text = state.t("tile.cameraOff");
  else text = state.t("tile.connecting");
  tile.placeholderText.textContent = text;
  tile.stateText.textContent = p.in_caucus && !state.caucusExcluded && state.caucusMembers ? state.t("participant.inCaucus") : "";
}

/** @param {RoomPageState} state */
export function renderTiles(state) {
  const grid = $("tiles");
  const me = selfId(state);
  const remote = state.mode === "video"
    ? participants(state).filter((p) => p.participant_id !== me && p.status === "admitted" && p.role !== "recorder")
    : [];
  const wanted = new Set(remote.map((p) => p.participant_id));
  for (const [id, tile] of state.tiles) {
    if (id === "self") continue;
    if (!wanted.has(id)) {
      tile.video.srcObject = null;
      tile.root.remove();
      state.tiles.delete(id);
    }
  }
  const local = localTile(state);
  if (state.phase === "room" && state.mode === "video") {
    if (local.root.parentNode !== grid) grid.prepend(local.root);
  } else if (state.mode !== "chat" && local.root.parentNode !== $("preview-frame")) {
    $("preview-frame").append(local.root);
  }
  for (const p of remote) {
    let tile = state.tiles.get(p.participant_id);
    if (!tile) {
      tile = makeTile(state, p.participant_id);
      grid.append(tile.root);
      const stream = state.pendingStreams.get(p.participant_id) || (state.mesh && state.mesh.remoteStream(p.participant_id));
      state.pendingStreams.delete(p.participant_id);
      if (stream) {
        tile.stream = stream;
        tile.video.srcObject = stream;
        playRemote(state, tile.video);
      }
    }
    updateRemoteTile(state, tile, p);
  }
  const count = remote.length + 1;
  grid.dataset.count = count > 6 ? "many" : String(count);
  renderLocal(state);
}

/**
 * Tell the room's media the size of each remote tile (the SFU passes it on with media_layout when it changed,
 * so each video comes in the simulcast layer its tile needs). Device pixels, the ratio capped at 2; a tile
 * not laid out (hidden) is 0 × 0. Called every second: a resize, a rotation or a new tile is seen within it.
 * @param {RoomPageState} state
 */
export function reportLayout(state) {
  const media = /** @type {{setLayout?: (feeds: unknown) => void} | null} */ (state.mesh);
  if (!media || typeof media.setLayout !== "function") return;
  const ratio = Math.min(2, Math.max(1, window.devicePixelRatio || 1));
  const feeds = [];
  for (const [id, tile] of state.tiles) {
    if (id === "self" || !tile.root.isConnected) continue;
    const box = tile.root.getBoundingClientRect();
    feeds.push({ participant_id: id, width: Math.round(box.width * ratio), height: Math.round(box.height * ratio) });
  }
  media.setLayout(feeds);
}
