// Active speaker and network quality on the room page, both read from the connections' getStats()
// once a second (../../lib/room/stats.js). Each tile shows its connection's quality (ours: the worst
// of our connections) as bars with an accessible name; a weak connection of our own gets a hint.
// The tile of whoever speaks is highlighted. It is not announced: a screen reader speaking up every
// time the speaker changes would talk over the people in the room and over the chat; the tile says
// "speaking" to whoever reads it.
import { $, h } from "../dom.js";
import { Sfu } from "../../lib/room/sfu.js";
import { SpeakerDetector, levelsByMid, quality, readStats, worse } from "../../lib/room/stats.js";
import { liveTrack } from "./media.js";
import { log } from "./state.js";

/** @typedef {import("./state.js").RoomPageState} RoomPageState */
/** @typedef {import("../../lib/room/stats.js").Quality} Quality */

const POLL_MS = 1000;
const HINT_AFTER = 3; // poor readings in a row before the hint shows
const CLEAR_AFTER = 5; // better readings in a row before it goes

/** @type {WeakMap<RTCPeerConnection, import("../../lib/room/stats.js").Counters>} */
const counters = new WeakMap();
const speakers = new SpeakerDetector();
/** @type {Map<string, Quality>} participant id ("self" for us) -> quality, as last measured */
let qualities = new Map();
let timer = /** @type {ReturnType<typeof setInterval> | undefined} */ (undefined);
let polling = false;
let poorInARow = 0;
let betterInARow = 0;

/**
 * The connections to read: per participant in the mesh; in a room on the media server, ours up and
 * down, whose quality is our own (the media server's connections carry everyone).
 * @param {RoomPageState} state
 * @returns {{id: string | null, pc: RTCPeerConnection}[]} id null: not one participant's
 */
function connections(state) {
  const media = state.mesh;
  if (!media) return [];
  if (media instanceof Sfu) {
    const own = [media.up, media.down].filter(Boolean).map((pc) => ({ id: null, pc: /** @type {RTCPeerConnection} */ (pc) }));
    return [...own, ...[...media.recorderMesh.peers.values()].map((peer) => ({ id: null, pc: peer.pc }))];
  }
  return [...media.peers.values()].map((peer) => ({ id: peer.recorder ? null : peer.id, pc: peer.pc }));
}

/** @param {RoomPageState} state */
async function poll(state) {
  if (polling || state.phase !== "room" || state.mode !== "video") return;
  polling = true;
  try {
    /** @type {Map<string, number>} */
    const levels = new Map();
    /** @type {Quality} */
    let own = "unknown";
    let sentLevel = 0;
    // Filled apart and swapped in at the end: a redraw while the stats are read shows the last measure.
    /** @type {Map<string, Quality>} */
    const measuredNow = new Map();
    for (const { id, pc } of connections(state)) {
      if (pc.connectionState === "closed") continue;
      let report;
      try {
        report = await pc.getStats();
      } catch {
        continue;
      }
      const reading = readStats(report, counters.get(pc) || null);
      counters.set(pc, reading.counters);
      const measured = quality(reading);
      own = worse(own, measured);
      sentLevel = Math.max(sentLevel, reading.sent ?? 0);
      if (id) {
        measuredNow.set(id, measured);
        if (reading.level !== null) levels.set(id, reading.level);
      } else if (state.mesh instanceof Sfu && pc === state.mesh.down) {
        // Everyone comes down the one connection: its quality is each one's, its mids say who is loud.
        for (const [mid, level] of levelsByMid(report)) {
          const owner = state.mesh.owners.get(mid);
          if (owner) levels.set(owner.participantId, level);
        }
        for (const owner of state.mesh.owners.values()) measuredNow.set(owner.participantId, measured);
      }
    }
    const mic = liveTrack(state, "audio");
    levels.set("self", mic && mic.enabled ? sentLevel : 0);
    measuredNow.set("self", own);
    qualities = measuredNow;
    const active = speakers.update(levels, performance.now());
    renderNetwork(state, active);
    ownHint(state, own);
  } catch (err) {
    log(state, "stats failed", err);
  } finally {
    polling = false;
  }
}

/**
 * A line on the stage while our own connection stays poor (a status, read once when it appears); not a
 * toast, which on a phone would cover the chat.
 * @param {RoomPageState} state
 * @param {Quality} own
 */
function ownHint(state, own) {
  poorInARow = own === "poor" ? poorInARow + 1 : 0;
  betterInARow = own === "good" || own === "fair" ? betterInARow + 1 : 0;
  const hint = $("network-hint");
  if (hint.hidden && poorInARow >= HINT_AFTER) {
    hint.hidden = false;
    renderNetwork(state);
  } else if (!hint.hidden && (betterInARow >= CLEAR_AFTER || state.phase !== "room")) {
    hint.hidden = true;
  }
}

/**
 * Draw each tile's indicator and the speaker highlight.
 * @param {RoomPageState} state
 * @param {string | null} active
 */
export function renderNetwork(state, active = speakers.active) {
  const hint = $("network-hint");
  if (!hint.hidden) hint.textContent = state.t("net.ownPoor"); // in the page's language, also after a switch
  for (const [id, tile] of state.tiles) {
    const level = qualities.get(id) || "unknown";
    let net = /** @type {HTMLElement | null} */ (tile.root.querySelector(".net-quality"));
    if (!net) {
      net = h("span", { class: "net-quality", testid: "net-quality", role: "img" },
        h("span", { class: "net-bar" }), h("span", { class: "net-bar" }), h("span", { class: "net-bar" }));
      tile.root.append(net);
    }
    net.dataset.level = level;
    const label = state.t(`net.${level}`);
    net.setAttribute("aria-label", label);
    net.setAttribute("title", label);
    const speaking = id === active && state.phase === "room";
    tile.root.dataset.speaking = String(speaking);
    let note = /** @type {HTMLElement | null} */ (tile.root.querySelector(".tile-speaking"));
    if (speaking && !note) {
      note = h("span", { class: "tile-speaking visually-hidden" });
      tile.root.querySelector(".tile-name")?.append(note);
    }
    if (note) note.textContent = speaking ? state.t("speaker.speaking") : "";
  }
}

/**
 * Poll while the page is in the room.
 * @param {RoomPageState} state
 */
export function watchNetwork(state) {
  if (timer === undefined) timer = setInterval(() => poll(state), POLL_MS);
}
