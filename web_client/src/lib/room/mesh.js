// WebRTC full mesh for the room: one RTCPeerConnection per other admitted participant.
//
// No DOM access here (the Node unit tests import it). The RTCPeerConnection constructor and the local
// MediaStream are injected. Signaling goes through a RoomClient (./protocol.js), or anything with
// the same `on(name, fn)` / `signal(to, kind, payload)` interface. Negotiation is "perfect
// negotiation" (./peer.js).
//
// Recovery rules, so that both ends converge on one live connection without extra protocol:
//  - a participant that disconnects (roster `connected: false`), leaves, or goes back to the lobby
//    loses its connections; it gets a fresh one when it is back;
//  - an offer whose DTLS fingerprint differs from the current remote description's comes from a
//    *new* RTCPeerConnection on the other side (page reload, reconnect): ours is replaced by a fresh
//    one that takes the offer;
//  - a connection that does not reach "connected" within `connectTimeoutMs`, or that fails and does
//    not recover after an ICE restart, is replaced (./health.js);
//  - the impolite end of a pair always offers, also without local media (receive-only transceivers),
//    so a replaced connection always announces itself; the polite end without media adds them only
//    when the watchdog fires;
//  - a new connection is opened by the impolite end: the polite end waits `initialOfferWaitMs` for
//    that offer before offering itself. Both ends appear at the same moment (admission, end of a
//    caucus), so both would otherwise offer at once, and Chrome sometimes gathers no ICE candidates
//    for an answer given right after rolling back an offer it had just set (the connection then
//    stays "new" until the watchdog replaces it). Glare on later renegotiations is still handled.
//
// The recorder (role "recorder", docs/protocol.md) is a peer of its own kind: it only answers, it
// sends nothing back, and it answers every offer with a brand-new connection (a new file part).
// So towards it we always offer, whatever the politeness; we send our camera and microphone on
// send-only transceivers, and only when we have any; we take no offer and no track from it; and
// instead of renegotiating (a new kind of track, an ICE restart) we replace the connection. It is
// an ordinary admitted participant otherwise: media isolation in a caucus closes the connection,
// its leaving closes it, and it is offered a fresh one when it (re)appears.

import { Emitter } from "./emitter.js";
import { armConnectTimer, checkConnectionState } from "./health.js";
import {
  KINDS, addCandidate, addReceiveOnly, candidatePayload, closeConnection, isPolite, newPeer, sdpFingerprint, setSenderTrack,
  protectTransceivers, takeDescription, takeTrack,
} from "./peer.js";
import { addScreen, parseScreenShare, takeScreenTrack } from "./screen.js";

export { isPolite, sdpFingerprint };

/**
 * @typedef {import("./peer.js").Peer} Peer
 * @typedef {import("./peer.js").MediaKind} MediaKind
 * @typedef {import("./types.js").JoinResult} JoinResult
 * @typedef {import("./types.js").Participant} Participant
 * @typedef {import("./types.js").RoomState} RoomState
 * @typedef {import("./types.js").SignalKind} SignalKind
 * @typedef {import("./types.js").SignalNotice} SignalNotice
 * @typedef {import("./types.js").SignalingClient} SignalingClient
 */

export const DEFAULT_CONNECT_TIMEOUT_MS = 20000;
export const DEFAULT_INITIAL_OFFER_WAIT_MS = 3000;

/**
 * Events:
 *  - `remote_stream` {participantId, stream, track}: a remote track arrived (emitted per track);
 *  - `remote_stream_removed` {participantId}: the connection to that participant is gone;
 *  - `peer_state` {participantId, state}: the connection's connectionState changed;
 *  - `peer_created` {participantId, polite}, `peer_closed` {participantId, reason};
 *  - `offer_refused` {participantId}: an offer from an isolated participant was dropped;
 *  - `error` {participantId, error}.
 */
export class Mesh extends Emitter {
  /**
   * @param {object} options
   * @param {SignalingClient} [options.client] required (a TypeError otherwise)
   * @param {typeof globalThis.RTCPeerConnection | null} [options.RTCPeerConnection]
   * @param {InstanceType<typeof globalThis.MediaStream> | null} [options.localStream]
   * @param {typeof globalThis.MediaStream | null} [options.MediaStream]
   * @param {number} [options.connectTimeoutMs] a connection not connected by then is replaced
   * @param {number} [options.iceRestartTimeoutMs] a failed connection not back by then after an ICE restart is replaced
   * @param {number} [options.initialOfferWaitMs] how long the polite end waits for the first offer
   * @param {((participant: Participant) => boolean) | null} [options.only] connect only to those it accepts
   *   (the SFU's page connects to the recorder alone: ./sfu.js)
   * @param {import("./peer.js").MediaProtection | null} [options.protection] end-to-end encryption of
   *   every connection's frames (a MediaEncryption); null sends them as the encoder made them
   * @param {((...args: any[]) => void) | null} [options.log]
   */
  constructor({
    client,
    RTCPeerConnection,
    localStream = null,
    MediaStream = null,
    connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS,
    iceRestartTimeoutMs = 8000,
    initialOfferWaitMs = DEFAULT_INITIAL_OFFER_WAIT_MS,
    only = null,
    protection = null,
    log = null,
  } = {}) {
    super();
    if (!client) throw new TypeError("Mesh needs a client");
    this.client = client;
    this.RTCPeerConnection = RTCPeerConnection || null;
    this.MediaStream = MediaStream;
    this.localStream = localStream;
    this.connectTimeoutMs = connectTimeoutMs;
    this.iceRestartTimeoutMs = iceRestartTimeoutMs;
    this.initialOfferWaitMs = initialOfferWaitMs;
    this.only = only;
    this.protection = protection;
    this._log = typeof log === "function" ? log : null;
    /** @type {import("./peer.js").PeerLink} */
    this._link = { send: (peer, kind, payload) => this._send(peer, kind, payload), trace: (...args) => this._trace(...args) };

    /** @type {string | null} */
    this.selfId = null;
    /** @type {string | null} */
    this.mode = null;
    /** @type {string | null} */
    this.selfStatus = null;
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
    /** @type {Map<string, Participant>} participant_id -> participant (from room_state) */
    this.participants = new Map();
    /** @type {Set<string>} media_isolation's stop_sending_to */
    this.isolated = new Set();
    /** @type {Set<string>} peers the server would not relay to (`isolated` ack) */
    this.refusedByServer = new Set();
    /** @type {Map<string, Peer>} participant_id -> peer record */
    this.peers = new Map();
    /** @type {Map<string, Promise<void>>} participant_id -> tail of its signal-handling chain */
    this._queues = new Map();
    this.online = false;
    this.stopped = false;
    /** @type {import("./screen.js").Screen | null} our shared screen (./screen.js) */
    this.screen = null;
    /** @type {import("./screen.js").ScreenShare | null} who shares a screen, as the room last said */
    this.screenShare = null;

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
      media_isolation: (body) => this._onIsolation(body),
      caucus_ended: () => {
        this.refusedByServer.clear();
        this.reconcile();
      },
      signal: (body) => this._onSignal(body),
      disconnected: () => {
        this.online = false;
        this._closeAll("disconnected");
      },
      terminated: () => this.stop(),
    };
    for (const [name, handler] of Object.entries(this._handlers)) client.on(name, handler);
    if (client.self && client.joined) this.start(client.self);
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
    if (result.room) this._onRoomState(result.room, { reconcile: false });
    this.reconcile();
  }

  /** @param {...any} args */
  _trace(...args) {
    if (this._log) this._log("[mesh]", ...args);
  }

  /** @returns {boolean} */
  get active() {
    return (
      !this.stopped &&
      this.online &&
      this.mode === "video" &&
      Boolean(this.selfId) &&
      this.selfStatus === "admitted" &&
      typeof this.RTCPeerConnection === "function"
    );
  }

  /**
   * Participant ids we should hold a connection to right now.
   * @returns {string[]}
   */
  wantedPeers() {
    if (!this.active) return [];
    const wanted = [];
    for (const p of this.participants.values()) {
      const id = p.participant_id;
      if (id === this.selfId) continue;
      if (p.status !== "admitted" || p.connected === false) continue;
      if (this.only && !this.only(p)) continue;
      if (this.isolated.has(id) || this.refusedByServer.has(id)) continue;
      // The recorder takes our camera and microphone and sends nothing back: without media, no use.
      if (p.role === "recorder" && !this._localTrack("audio") && !this._localTrack("video") && !this.screen) continue;
      wanted.push(id);
    }
    return wanted;
  }

  /** Open connections to wanted peers, close the others. */
  reconcile() {
    const wanted = new Set(this.wantedPeers());
    for (const id of [...this.peers.keys()]) {
      if (!wanted.has(id)) this._closePeer(id, this._closeReason(id));
    }
    for (const id of wanted) {
      if (!this.peers.has(id)) this._createPeer(id);
    }
  }

  /**
   * @param {string} id
   * @returns {string}
   */
  _closeReason(id) {
    if (!this.active) return this.mode === "chat" ? "chat_only" : "inactive";
    if (this.isolated.has(id) || this.refusedByServer.has(id)) return "isolated";
    return "left";
  }

  /**
   * @param {RoomState | null | undefined} state
   * @param {{reconcile?: boolean}} [options]
   */
  _onRoomState(state, { reconcile = true } = {}) {
    if (!state || !Array.isArray(state.participants)) return;
    if (state.mode) this.mode = state.mode;
    this.participants = new Map(state.participants.map((p) => [p.participant_id, p]));
    this.screenShare = parseScreenShare(state.screen_share);
    if (Array.isArray(state.isolated_from)) {
      // The server's own account of whom we are isolated from (also right after a re-join).
      this.isolated = new Set(state.isolated_from);
      for (const id of this.isolated) if (this.peers.has(id)) this._closePeer(id, "isolated");
    }
    const me = this.selfId ? this.participants.get(this.selfId) : undefined;
    if (me && me.status) this.selfStatus = me.status;
    if (state.caucus && !state.caucus.active) this.refusedByServer.clear();
    if (state.ended) this.stop();
    if (reconcile) this.reconcile();
  }

  /** @param {{stop_sending_to?: string[]} | null | undefined} body */
  _onIsolation(body) {
    const list = body && Array.isArray(body.stop_sending_to) ? body.stop_sending_to : [];
    this.isolated = new Set(list);
    this.refusedByServer.clear();
    for (const id of list) {
      if (this.peers.has(id)) this._closePeer(id, "isolated");
    }
    this.reconcile();
  }

  // --- local media ----------------------------------------------------------------------------

  /**
   * Use another local stream (its tracks replace the ones being sent).
   * @param {MediaStream | null} stream
   */
  async setLocalStream(stream) {
    this.localStream = stream;
    for (const kind of KINDS) {
      const track = stream ? stream.getTracks().find((t) => t.kind === kind) || null : null;
      await this.replaceTrack(kind, track);
    }
  }

  /** Send `track` (or nothing, with null) for `kind` on every connection; renegotiates only if needed.
   *
   * @param {MediaKind} kind
   * @param {MediaStreamTrack | null} track
   */
  async replaceTrack(kind, track) {
    const jobs = [];
    for (const peer of this.peers.values()) jobs.push(this._setSenderTrack(peer, kind, track));
    await Promise.allSettled(jobs);
    this.reconcile(); // e.g. media appeared: now worth connecting to the recorder
  }

  /**
   * @param {MediaKind} kind
   * @returns {MediaStreamTrack | null}
   */
  _localTrack(kind) {
    if (!this.localStream) return null;
    return this.localStream.getTracks().find((t) => t.kind === kind && t.readyState !== "ended") || null;
  }

  /**
   * @param {Peer} peer
   * @param {MediaKind} kind
   * @param {MediaStreamTrack | null} track
   */
  async _setSenderTrack(peer, kind, track) {
    if (peer.closed) return;
    try {
      await setSenderTrack(peer, kind, track, this.localStream);
    } catch (error) {
      this.emit("error", { participantId: peer.id, error });
    }
  }

  // --- connections ------------------------------------------------------------------------------

  /**
   * @param {string} id
   * @param {{announce?: boolean | null}} [options] offer even as the polite end (true), or never first (false)
   * @returns {Peer}
   */
  _createPeer(id, { announce = null } = {}) {
    const pc = new (/** @type {typeof RTCPeerConnection} */ (this.RTCPeerConnection))({ iceServers: this.iceServers });
    const recorder = this._isRecorder(id);
    const polite = isPolite(this.selfId, id);
    // The polite end lets the impolite end open the connection (see the top of this file), except
    // for a replacement, which must announce itself, and towards the recorder, which only answers.
    const peer = newPeer(id, pc, {
      polite, recorder, awaitingFirstOffer: polite && announce !== true && !recorder, protection: this.protection,
    });
    this.peers.set(id, peer);
    this._trace("create", id, peer.polite ? "polite" : "impolite");

    pc.onnegotiationneeded = () => this._negotiate(peer);
    pc.onicecandidate = (event) => {
      if (peer.closed) return;
      const payload = candidatePayload(event ? event.candidate : null);
      this._trace("candidate to", id, payload.candidate ? payload.usernameFragment || "" : "end");
      this._send(peer, "ice_candidate", payload);
    };
    pc.ontrack = (event) => this._onTrack(peer, event);
    pc.onconnectionstatechange = () => this._onConnectionState(peer);

    let sending = false;
    for (const kind of KINDS) {
      const track = this._localTrack(kind);
      if (!track) continue;
      if (peer.recorder && typeof pc.addTransceiver === "function") {
        // Nothing comes back from the recorder: say so in the offer.
        pc.addTransceiver(track, { direction: "sendonly", streams: this.localStream ? [this.localStream] : [] });
      } else {
        pc.addTrack(track, ...(this.localStream ? [this.localStream] : []));
      }
      sending = true;
    }
    if (addScreen(peer, this.screen)) sending = true;
    // The impolite end always offers (receive-only when it has no media), so that a new connection
    // is always announced to the other end. `announce` forces it (watchdog on the polite end).
    if (!sending && (announce ?? !peer.polite)) addReceiveOnly(peer);
    protectTransceivers(pc, this.protection);
    armConnectTimer(peer, this);
    this.emit("peer_created", { participantId: id, polite: peer.polite });
    return peer;
  }

  /**
   * @param {string} id
   * @returns {boolean}
   */
  _isRecorder(id) {
    const p = this.participants.get(id);
    return Boolean(p && p.role === "recorder");
  }

  /**
   * @param {Peer} peer
   * @param {string} reason
   * @param {{announce?: boolean}} [options]
   * @returns {Peer | null}
   */
  _replacePeer(peer, reason, { announce = true } = {}) {
    const id = peer.id;
    this._closePeer(id, reason);
    return this._mayConnect(id) ? this._createPeer(id, { announce }) : null;
  }

  /** Whether a connection to `id` is allowed now (it need not be on our roster yet).
   *
   * @param {string} id
   * @returns {boolean}
   */
  _mayConnect(id) {
    if (!this.active || id === this.selfId) return false;
    if (this.isolated.has(id) || this.refusedByServer.has(id)) return false;
    const p = this.participants.get(id);
    return !p || (p.status === "admitted" && p.connected !== false);
  }

  /** @param {Peer} peer */
  async _negotiate(peer) {
    // While we answer an offer, no offer of ours: the browser fires negotiationneeded again once
    // stable if the answer did not already cover our changes.
    if (peer.closed || peer.handlingOffer) return;
    const pc = peer.pc;
    if (peer.recorder && peer.offered) {
      // The recorder answers an offer with a new connection of its own: renegotiating this one
      // cannot work. A fresh connection (and a new file part on the recorder's side) instead.
      this._trace("renegotiation towards the recorder", peer.id, "- replacing the connection");
      this._replacePeer(peer, "renegotiate");
      return;
    }
    if (peer.awaitingFirstOffer && !pc.remoteDescription) {
      if (!peer.firstOfferTimer) {
        peer.firstOfferTimer = setTimeout(() => {
          peer.firstOfferTimer = undefined;
          peer.awaitingFirstOffer = false;
          if (!peer.closed && !pc.remoteDescription && pc.signalingState === "stable") {
            this._trace("no offer came from", peer.id, "- offering");
            this._negotiate(peer);
          }
        }, this.initialOfferWaitMs);
      }
      return;
    }
    try {
      peer.makingOffer = true;
      await pc.setLocalDescription();
      if (peer.closed) return;
      const description = pc.localDescription;
      if (pc.signalingState !== "have-local-offer" || !description || description.type !== "offer") {
        this._trace("offer superseded for", peer.id, pc.signalingState);
        return; // rolled back meanwhile (glare, polite end): the answer replaces it
      }
      this._trace("send", description.type, "to", peer.id);
      peer.offered = true;
      this._send(peer, description.type, { type: description.type, sdp: description.sdp });
    } catch (error) {
      this._trace("negotiation failed", peer.id, error instanceof Error ? error.message : error);
      this.emit("error", { participantId: peer.id, error });
    } finally {
      peer.makingOffer = false;
    }
  }

  /**
   * @param {Peer} peer
   * @param {SignalKind} kind
   * @param {Record<string, any>} payload
   */
  _send(peer, kind, payload) {
    const result = /** @type {any} */ (this.client.signal(peer.id, kind, payload));
    if (result && typeof result.catch === "function") {
      result.catch((/** @type {any} */ error) => {
        if (error && error.code === "isolated") {
          // The server will not relay between caucus sides: stop until the caucus changes.
          this.refusedByServer.add(peer.id);
          if (this.peers.get(peer.id) === peer) this._closePeer(peer.id, "isolated");
        } else if (error && (error.code === "not_admitted" || error.code === "unknown_participant")) {
          // The roster will tell; nothing to do until then.
        } else {
          this.emit("error", { participantId: peer.id, error });
        }
      });
    }
  }

  /** @param {SignalNotice | null | undefined} body */
  _onSignal(body) {
    if (!body || typeof body.from !== "string") return;
    const from = body.from;
    if (this.isolated.has(from) || this.refusedByServer.has(from)) {
      this._trace("refuse", body.kind, "from isolated", from);
      if (body.kind === "offer") this.emit("offer_refused", { participantId: from });
      return;
    }
    if (!this.active || from === this.selfId) {
      this._trace("drop", body.kind, "from", from, "(inactive)");
      return;
    }
    // One queue per participant (not per connection), so that a candidate never overtakes the
    // offer it belongs to, even when that offer replaces the connection.
    const previous = this._queues.get(from) || Promise.resolve();
    const next = previous
      .then(() => this._handleSignal(from, body))
      .catch((error) => {
        this._trace("signal handling failed", from, error && error.message);
        this.emit("error", { participantId: from, error });
      });
    this._queues.set(from, next);
    next.then(() => {
      if (this._queues.get(from) === next) this._queues.delete(from);
    });
  }

  /**
   * @param {string} from
   * @param {SignalNotice} signal
   */
  async _handleSignal(from, { kind, payload }) {
    if (!payload || typeof payload !== "object" || !this.active) return;
    if (this.isolated.has(from) || this.refusedByServer.has(from)) return;
    /** @type {Peer | null | undefined} */
    let peer = this.peers.get(from);
    if (kind === "offer" && this._isRecorder(from)) {
      this._trace("drop offer from the recorder", from, "(it only answers)");
      return;
    }
    if (!peer) {
      // The server relays only between admitted members: an offer may beat the room_state that
      // announces its sender. Anything else for a connection we do not hold is stale.
      if (kind !== "offer" || !this._mayConnect(from)) {
        this._trace("drop", kind, "from", from, "(no connection)");
        return;
      }
      peer = this._createPeer(from, { announce: false });
    }
    if (kind === "offer" || kind === "answer") {
      const description = { type: payload.type || kind, sdp: payload.sdp };
      if (description.type === "offer" && peer.pc.remoteDescription) {
        const before = sdpFingerprint(peer.pc.remoteDescription.sdp);
        const now = sdpFingerprint(description.sdp);
        if (before && now && before !== now) {
          // A new connection on the other side (reload, reconnect): start afresh with it.
          peer = this._replacePeer(peer, "remote_restart", { announce: false });
          if (!peer) return;
        }
      }
      await takeDescription(peer, description, this._link);
    } else if (kind === "ice_candidate") {
      if (!peer.pc.remoteDescription) {
        // Candidates may precede the description they belong to: after a glare the polite end
        // answers with the ICE credentials of its rolled-back offer, whose candidates were sent
        // already. Keep them until a remote description is set, then try them.
        if (peer.earlyCandidates.length < 500) peer.earlyCandidates.push(payload);
        this._trace("candidate from", from, "kept until a remote description");
        return;
      }
      await addCandidate(peer, payload, { strict: !peer.ignoreOffer }, this._link);
    }
  }

  /**
   * @param {Peer} peer
   * @param {RTCTrackEvent} event
   */
  _onTrack(peer, event) {
    if (peer.closed || peer.recorder) return; // the recorder sends nothing; nothing to show
    if (takeScreenTrack(this, peer, event)) return;
    const stream = takeTrack(peer, event, this.MediaStream);
    if (stream) this.emit("remote_stream", { participantId: peer.id, stream, track: event.track });
  }

  /** @param {Peer} peer */
  _onConnectionState(peer) {
    if (peer.closed) return;
    const state = peer.pc.connectionState;
    this._trace("state", peer.id, state);
    this.emit("peer_state", { participantId: peer.id, state });
    checkConnectionState(peer, this);
  }

  /**
   * @param {string} id
   * @param {string} reason
   */
  _closePeer(id, reason) {
    const peer = this.peers.get(id);
    if (!peer) return;
    this.peers.delete(id);
    peer.closed = true;
    this._trace("close", id, reason);
    closeConnection(peer);
    this.emit("peer_closed", { participantId: id, reason });
    this.emit("remote_stream_removed", { participantId: id, reason });
  }

  /** @param {string} reason */
  _closeAll(reason) {
    for (const id of [...this.peers.keys()]) this._closePeer(id, reason);
  }

  /** The remote stream of a participant, if any.
   *
   * @param {string} id
   * @returns {MediaStream | null}
   */
  remoteStream(id) {
    const peer = this.peers.get(id);
    return peer ? peer.stream : null;
  }

  /** A snapshot for diagnostics. */
  describe() {
    return [...this.peers.values()].map((peer) => ({
      participantId: peer.id,
      polite: peer.polite,
      connectionState: peer.pc.connectionState,
      signalingState: peer.pc.signalingState,
    }));
  }

  /** Close every connection and stop reacting to the client. */
  stop() {
    if (this.stopped) return;
    this.stopped = true;
    this._closeAll("stopped");
    for (const [name, handler] of Object.entries(this._handlers)) this.client.off(name, handler);
  }
}
