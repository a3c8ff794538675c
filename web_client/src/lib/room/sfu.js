// The room's media through the selective forwarding unit (docs/protocol.md, "Media through the selective
// forwarding unit"): one RTCPeerConnection up, sending our camera and microphone once, and one down,
// receiving what the server subscribed us to. Same events and methods as the mesh (./mesh.js), which the
// room page uses when join_room says `media: "mesh"`.
//
// No DOM access here (the Node unit tests import it). The RTCPeerConnection and MediaStream constructors
// and the local MediaStream are injected. The server decides what we receive: it sends `media_offer`
// whenever our subscription changes, naming whose media each m-line carries; we only answer. Janus's
// candidates come in its SDP; ours go back with `media_candidate`, those of the up connection only
// once `publish_media` was acknowledged (before that the server has nothing to give them to).
//
// Simulcast: our camera goes up in three VP8 layers (SIMULCAST_ENCODINGS); the page tells us the size of
// each remote tile (`setLayout`) and we pass it on with `media_layout` whenever it changed, so the server
// has Janus forward each of our subscriptions in the layer its tile needs (docs/protocol.md, "Simulcast layers").
//
// Recovery: `media_reset` (the media server restarted), a socket that reconnects, an up connection that
// fails: both connections are closed and we publish again, every `retryMs` until it is taken.
//
// The recorder is no peer of ours here: Janus forwards what we publish to it (docs/protocol.md, "The recorder
// in a room on the media server"). We never connect to it, so a recording adds no uplink.

import { Emitter } from "./emitter.js";
import { KINDS, candidatePayload, protectTransceivers } from "./peer.js";

/**
 * @typedef {import("./peer.js").MediaKind} MediaKind
 * @typedef {import("./types.js").JoinResult} JoinResult
 * @typedef {import("./types.js").Participant} Participant
 * @typedef {import("./types.js").RoomState} RoomState
 * @typedef {import("./types.js").SignalingClient} SignalingClient
 *
 * @typedef {object} MediaOfferStream One m-line of a `media_offer`.
 * @property {string} mid
 * @property {MediaKind} kind
 * @property {string} participant_id
 *
 * @typedef {object} MediaOffer The body of `media_offer`.
 * @property {{type: "offer", sdp: string}} offer
 * @property {MediaOfferStream[]} streams
 *
 * @typedef {object} TileSize One remote tile as shown, in device pixels (0 × 0: not shown).
 * @property {string} participant_id
 * @property {number} width
 * @property {number} height
 *
 * @typedef {object} SfuClient What this module needs from a RoomClient.
 * @property {(name: string, listener: (...args: any[]) => void) => any} on
 * @property {(name: string, listener: (...args: any[]) => void) => any} off
 * @property {(offer: {type: string, sdp: string}) => Promise<{answer: {type: "answer", sdp: string}}>} publishMedia
 * @property {(answer: {type: string, sdp: string}) => Promise<unknown>} answerMedia
 * @property {(target: "publish" | "subscribe", candidate: Record<string, any>) => Promise<unknown>} mediaCandidate
 * @property {(feeds: TileSize[]) => Promise<unknown>} [mediaLayout]
 * @property {SignalingClient["signal"]} signal
 * @property {JoinResult | null} [self]
 * @property {boolean} [joined]
 */

export const DEFAULT_RETRY_MS = 1000;

/**
 * The camera's three simulcast layers, highest first as Janus expects (substreams 2, 1, 0): full size, half,
 * a quarter; the bitrates are ceilings (the media server's estimate caps their sum).
 * @type {ReadonlyArray<RTCRtpEncodingParameters>}
 */
export const SIMULCAST_ENCODINGS = Object.freeze([
  { rid: "h", active: true, maxBitrate: 900_000 },
  { rid: "m", active: true, maxBitrate: 300_000, scaleResolutionDownBy: 2 },
  { rid: "l", active: true, maxBitrate: 100_000, scaleResolutionDownBy: 4 },
]);

const MAX_LAYOUT_FEEDS = 16;
const MAX_TILE_PIXELS = 8192;

/**
 * A media_layout body from tile sizes: integers within the protocol's bounds, each participant once, at most 16.
 * @param {unknown} feeds
 * @returns {TileSize[]}
 */
export function layoutFeeds(feeds) {
  /** @type {Map<string, TileSize>} */
  const kept = new Map();
  if (!Array.isArray(feeds)) return [];
  for (const feed of feeds) {
    if (!feed || typeof feed !== "object") continue;
    const { participant_id: id, width, height } = /** @type {Record<string, unknown>} */ (feed);
    if (typeof id !== "string" || typeof width !== "number" || typeof height !== "number") continue;
    if (kept.has(id) || kept.size >= MAX_LAYOUT_FEEDS) continue;
    const clamp = (/** @type {number} */ n) => Math.min(MAX_TILE_PIXELS, Math.max(0, Math.round(n) || 0));
    kept.set(id, { participant_id: id, width: clamp(width), height: clamp(height) });
  }
  return [...kept.values()].sort((a, b) => (a.participant_id < b.participant_id ? -1 : 1));
}

/**
 * Whose media each mid carries, from a media_offer's `streams` (entries of other shapes are skipped).
 * @param {unknown} streams
 * @returns {Map<string, {participantId: string, kind: MediaKind}>}
 */
export function streamOwners(streams) {
  /** @type {Map<string, {participantId: string, kind: MediaKind}>} */
  const owners = new Map();
  if (!Array.isArray(streams)) return owners;
  for (const stream of streams) {
    if (!stream || typeof stream !== "object") continue;
    const { mid, kind, participant_id: participantId } = /** @type {Record<string, unknown>} */ (stream);
    if (typeof mid !== "string" || typeof participantId !== "string") continue;
    if (kind !== "audio" && kind !== "video") continue;
    owners.set(mid, { participantId, kind });
  }
  return owners;
}

/**
 * Events (as the mesh's):
 *  - `remote_stream` {participantId, stream}: that participant's media, whenever its tracks change;
 *  - `remote_stream_removed` {participantId}: we no longer receive that participant;
 *  - `peer_state` {participantId, state}: the down connection's connectionState, per participant shown;
 *  - `error` {participantId, error}.
 */
export class Sfu extends Emitter {
  /**
   * @param {object} options
   * @param {SfuClient} [options.client] required (a TypeError otherwise)
   * @param {typeof globalThis.RTCPeerConnection | null} [options.RTCPeerConnection]
   * @param {InstanceType<typeof globalThis.MediaStream> | null} [options.localStream]
   * @param {typeof globalThis.MediaStream | null} [options.MediaStream]
   * @param {number} [options.retryMs] how long after a failed publication we publish again
   * @param {import("./peer.js").MediaProtection | null} [options.protection] end-to-end encryption of our
   *   frames up, to the recorder, and of every frame down (a MediaEncryption); null: none
   * @param {((...args: any[]) => void) | null} [options.log]
   */
  constructor({ client, RTCPeerConnection, localStream = null, MediaStream = null, retryMs = DEFAULT_RETRY_MS,
    protection = null, log = null } = {}) {
    super();
    if (!client) throw new TypeError("Sfu needs a client");
    this.client = client;
    this.RTCPeerConnection = RTCPeerConnection || null;
    this.MediaStream = MediaStream;
    this.localStream = localStream;
    this.retryMs = retryMs;
    this.protection = protection;
    this._log = typeof log === "function" ? log : null;
    /** @type {string | null} */
    this.selfId = null;
    /** @type {string | null} */
    this.mode = null;
    /** @type {string | null} */
    this.selfStatus = null;
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
    /** @type {Set<string>} whom a caucus isolates us from (shown on the tiles) */
    this.isolated = new Set();
    /** @type {RTCPeerConnection | null} */
    this.up = null;
    /** @type {RTCPeerConnection | null} */
    this.down = null;
    this.published = false;
    /** @type {Record<string, any>[]} the up connection's candidates found before publish_media's ack */
    this._pendingCandidates = [];
    /** @type {Map<string, {participantId: string, kind: MediaKind}>} */
    this.owners = new Map();
    /** @type {Map<string, MediaStream>} participant_id -> the stream shown for it */
    this.streams = new Map();
    /** @type {Promise<void>} media_offers are taken one after another */
    this._offers = Promise.resolve();
    /** @type {ReturnType<typeof setTimeout> | null} */
    this._retry = null;
    this.online = false;
    this.stopped = false;
    /** @type {TileSize[]} the remote tiles as the page last reported them */
    this.layout = [];
    /** @type {string | null} the layout the server took last (JSON), null: send it again once published */
    this._sentLayout = null;
    this._sendingLayout = false;

    /** @type {Record<string, (...args: any[]) => void>} */
    this._handlers = {
      joined: (result) => this.start(result),
      room_state: (state) => this._onRoomState(state),
      admitted: () => {
        this.selfStatus = "admitted";
        this.reconcile();
      },
      returned_to_lobby: () => {
        this.selfStatus = "lobby";
        this.reconcile();
      },
      media_offer: (body) => this._onOffer(body),
      media_reset: () => this._restart("reset"),
      disconnected: () => {
        this.online = false;
        this._closeAll("disconnected");
      },
      terminated: () => this.stop(),
    };
    for (const [name, handler] of Object.entries(this._handlers)) client.on(name, handler);
    if (client.self && client.joined) this.start(client.self);
  }

  /** @param {...any} args */
  _trace(...args) {
    if (this._log) this._log("[sfu]", ...args);
  }

  /**
   * Begin (or resume after a re-join) from a join_room result.
   * @param {JoinResult | null | undefined} result
   */
  start(result) {
    if (this.stopped || !result) return;
    this.selfId = result.participant_id;
    this.mode = result.mode || (result.room && result.room.mode) || "video";
    this.selfStatus = result.status || this.selfStatus;
    this.iceServers = Array.isArray(result.ice_servers) ? result.ice_servers : [];
    this.online = true;
    // A join is a fresh start at the server: any earlier publication there is gone or replaced.
    this._closeAll("rejoined");
    if (result.room) this._onRoomState(result.room, { reconcile: false });
    this.reconcile();
  }

  /** @returns {boolean} */
  get active() {
    return !this.stopped && this.online && this.mode === "video" && Boolean(this.selfId) &&
      this.selfStatus === "admitted" && typeof this.RTCPeerConnection === "function";
  }

  /** Publish when we should and do not yet; close everything when we should not. */
  reconcile() {
    if (!this.active) {
      if (this.up || this.down) this._closeAll("inactive");
      return;
    }
    if (!this.up) this._publish();
  }

  /**
   * @param {RoomState | null | undefined} state
   * @param {{reconcile?: boolean}} [options]
   */
  _onRoomState(state, { reconcile = true } = {}) {
    if (!state || !Array.isArray(state.participants)) return;
    if (state.mode) this.mode = state.mode;
    if (Array.isArray(state.isolated_from)) this.isolated = new Set(state.isolated_from);
    const me = this.selfId ? state.participants.find((p) => p.participant_id === this.selfId) : undefined;
    if (me && me.status) this.selfStatus = me.status;
    if (state.ended) this.stop();
    if (reconcile) this.reconcile();
  }

  // --- up: our camera and microphone, once -------------------------------------------------------

  async _publish() {
    const pc = new (/** @type {typeof RTCPeerConnection} */ (this.RTCPeerConnection))({ iceServers: this.iceServers });
    this.up = pc;
    this.published = false;
    this._pendingCandidates = [];
    pc.onicecandidate = (event) => {
      if (this.up !== pc) return;
      const payload = candidatePayload(event ? event.candidate : null);
      if (this.published) this._sendCandidate("publish", payload);
      else this._pendingCandidates.push(payload);
    };
    pc.onconnectionstatechange = () => {
      if (this.up === pc && pc.connectionState === "failed") this._restart("failed");
    };
    for (const kind of KINDS) {
      pc.addTransceiver(kind, { direction: "sendonly", streams: this.localStream ? [this.localStream] : [],
        ...(kind === "video" ? { sendEncodings: SIMULCAST_ENCODINGS.map((e) => ({ ...e })) } : {}) });
      const track = this._localTrack(kind);
      if (track) await this._transceiverFor(pc, kind)?.sender.replaceTrack(track);
    }
    protectTransceivers(pc, this.protection);
    try {
      await pc.setLocalDescription();
      const local = /** @type {RTCSessionDescription} */ (pc.localDescription);
      const result = await this.client.publishMedia({ type: local.type, sdp: local.sdp });
      if (this.up !== pc) return;
      await pc.setRemoteDescription(result.answer);
      this.published = true;
      this._trace("published");
      for (const payload of this._pendingCandidates.splice(0)) this._sendCandidate("publish", payload);
      this._sendLayout();
    } catch (error) {
      if (this.up !== pc) return;
      this.emit("error", { participantId: this.selfId, error });
      this._restart("publish_failed");
    }
  }

  /**
   * @param {"publish" | "subscribe"} target
   * @param {Record<string, any>} payload
   */
  _sendCandidate(target, payload) {
    Promise.resolve(this.client.mediaCandidate(target, payload)).catch((error) => this._trace("candidate refused", target, error));
  }

  /**
   * @param {RTCPeerConnection} pc
   * @param {MediaKind} kind
   * @returns {RTCRtpTransceiver | undefined}
   */
  _transceiverFor(pc, kind) {
    return pc.getTransceivers().find((t) => t.receiver && t.receiver.track && t.receiver.track.kind === kind);
  }

  /**
   * Close both connections and publish again (after `retryMs` unless it is a reset by the server).
   * @param {string} reason
   */
  _restart(reason) {
    this._trace("restart", reason);
    this._closeAll(reason);
    if (this._retry) clearTimeout(this._retry);
    this._retry = setTimeout(() => {
      this._retry = null;
      this.reconcile();
    }, reason === "reset" ? 0 : this.retryMs);
  }

  // --- layers: the size of each remote tile -----------------------------------------------------

  /**
   * The remote tiles as the page shows them now; sent with media_layout when they changed (and again after
   * each publication: a new one at the server starts without a layout).
   * @param {unknown} feeds
   */
  setLayout(feeds) {
    this.layout = layoutFeeds(feeds);
    this._sendLayout();
  }

  _sendLayout() {
    const body = JSON.stringify(this.layout);
    if (!this.published || this._sendingLayout || body === this._sentLayout || !this.client.mediaLayout) return;
    this._sendingLayout = true;
    const up = this.up;
    Promise.resolve(this.client.mediaLayout(this.layout)).then(() => {
      if (this.up === up) this._sentLayout = body;
    }, (error) => this._trace("layout refused", error)).finally(() => {
      this._sendingLayout = false;
      if (this.up === up && this._sentLayout !== null && this._sentLayout !== JSON.stringify(this.layout)) {
        this._sendLayout();
      }
    });
  }

  // --- down: what the server subscribed us to ----------------------------------------------------

  /** @param {unknown} body */
  _onOffer(body) {
    this._offers = this._offers.then(() => this._takeOffer(/** @type {MediaOffer} */ (body))).catch((error) => {
      this.emit("error", { participantId: this.selfId, error });
    });
  }

  /** @param {MediaOffer} body */
  async _takeOffer(body) {
    if (!this.active || !body || !body.offer || body.offer.type !== "offer" || typeof body.offer.sdp !== "string") return;
    let pc = this.down;
    if (!pc) {
      const created = new (/** @type {typeof RTCPeerConnection} */ (this.RTCPeerConnection))({ iceServers: this.iceServers });
      pc = created;
      this.down = created;
      created.onicecandidate = (event) => {
        if (this.down === created) this._sendCandidate("subscribe", candidatePayload(event ? event.candidate : null));
      };
      created.ontrack = () => this._showStreams();
      created.onconnectionstatechange = () => {
        if (this.down !== created) return;
        for (const participantId of this.streams.keys()) {
          this.emit("peer_state", { participantId, state: created.connectionState });
        }
      };
    }
    await pc.setRemoteDescription(body.offer);
    protectTransceivers(pc, this.protection); // the receivers this offer added, before media flow
    await pc.setLocalDescription();
    const local = /** @type {RTCSessionDescription} */ (pc.localDescription);
    this.owners = streamOwners(body.streams);
    this._showStreams();
    await this.client.answerMedia({ type: local.type, sdp: local.sdp });
  }

  /** Regroup the down connection's tracks by participant; announce what changed. */
  _showStreams() {
    const pc = this.down;
    /** @type {Map<string, MediaStreamTrack[]>} */
    const tracks = new Map();
    if (pc) {
      for (const transceiver of pc.getTransceivers()) {
        const owner = transceiver.mid === null ? undefined : this.owners.get(transceiver.mid);
        const track = transceiver.receiver && transceiver.receiver.track;
        if (!owner || !track || transceiver.currentDirection === "inactive") continue;
        const list = tracks.get(owner.participantId) || [];
        list.push(track);
        tracks.set(owner.participantId, list);
      }
    }
    for (const participantId of [...this.streams.keys()]) {
      if (!tracks.has(participantId)) {
        this.streams.delete(participantId);
        this.emit("remote_stream_removed", { participantId });
      }
    }
    for (const [participantId, list] of tracks) {
      const shown = this.streams.get(participantId);
      const same = shown && shown.getTracks().length === list.length && list.every((t) => shown.getTracks().includes(t));
      if (same || !this.MediaStream) continue;
      const stream = new this.MediaStream(list);
      this.streams.set(participantId, stream);
      this.emit("remote_stream", { participantId, stream });
    }
  }

  // --- local media (as the mesh's) ---------------------------------------------------------------

  /** @param {MediaStream | null} stream */
  async setLocalStream(stream) {
    this.localStream = stream;
    for (const kind of KINDS) {
      const track = stream ? stream.getTracks().find((t) => t.kind === kind) || null : null;
      await this.replaceTrack(kind, track);
    }
  }

  /**
   * Send `track` (or nothing) for `kind` on the up connection: no renegotiation, its transceivers stay.
   * @param {MediaKind} kind
   * @param {MediaStreamTrack | null} track
   */
  async replaceTrack(kind, track) {
    const transceiver = this.up ? this._transceiverFor(this.up, kind) : undefined;
    if (!transceiver) return;
    try {
      await transceiver.sender.replaceTrack(track);
    } catch (error) {
      this.emit("error", { participantId: this.selfId, error });
    }
  }

  /**
   * @param {MediaKind} kind
   * @returns {MediaStreamTrack | null}
   */
  _localTrack(kind) {
    if (!this.localStream) return null;
    return this.localStream.getTracks().find((t) => t.kind === kind && t.readyState !== "ended") || null;
  }

  // --- closing -----------------------------------------------------------------------------------

  /** @param {string} reason */
  _closeAll(reason) {
    const had = this.up || this.down;
    for (const pc of [this.up, this.down]) {
      if (!pc) continue;
      pc.onicecandidate = null;
      pc.ontrack = null;
      pc.onconnectionstatechange = null;
      try {
        pc.close();
      } catch {
        // already closed
      }
    }
    this.up = this.down = null;
    this.published = false;
    this._sentLayout = null;
    this.owners = new Map();
    this._showStreams();
    if (had) this._trace("closed", reason);
  }

  /**
   * The stream shown for a participant, if any.
   * @param {string} id
   * @returns {MediaStream | null}
   */
  remoteStream(id) {
    return this.streams.get(id) || null;
  }

  /** A snapshot for diagnostics. */
  describe() {
    return [
      { connection: "up", connectionState: this.up ? this.up.connectionState : "closed", published: this.published },
      { connection: "down", connectionState: this.down ? this.down.connectionState : "closed",
        receiving: [...this.streams.keys()] },
    ];
  }

  /** Close both connections and stop reacting to the client. */
  stop() {
    if (this.stopped) return;
    this.stopped = true;
    if (this._retry) clearTimeout(this._retry);
    this._closeAll("stopped");
    for (const [name, handler] of Object.entries(this._handlers)) this.client.off(name, handler);
  }
}
