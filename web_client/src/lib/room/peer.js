// One connection of the mesh: its record, and the half of perfect negotiation that concerns only
// that connection (taking a description, adding candidates, sending a track). No DOM here. Mesh
// (./mesh.js) owns the records, decides when a connection is opened, replaced or closed, and sends
// the signals.
//
// Negotiation is "perfect negotiation" (W3C WebRTC 1.0 §10.7 / MDN): both ends may offer at any
// time; on glare the polite end (the lexicographically larger participant_id) rolls back and takes
// the other's offer, the impolite end ignores the colliding offer.

/** @typedef {"audio" | "video"} MediaKind */

/**
 * @typedef {object} MediaProtection What encrypts our media frames end to end (a MediaEncryption,
 *   ../e2ee/sframe.js); the room hands it to the connection code, which protects every sender and
 *   receiver of every connection with it (the recorder's included: it only receives, holds no key).
 * @property {(sender: RTCRtpSender) => void} protectSender
 * @property {(receiver: RTCRtpReceiver) => void} protectReceiver
 */

/**
 * @typedef {object} Peer The mesh's record of one RTCPeerConnection.
 * @property {string} id the other participant_id
 * @property {RTCPeerConnection} pc
 * @property {boolean} polite
 * @property {boolean} makingOffer
 * @property {boolean} ignoreOffer
 * @property {boolean} settingRemoteAnswerPending
 * @property {boolean} handlingOffer
 * @property {Record<string, any>[]} earlyCandidates candidates that came before any remote description
 * @property {boolean} recorder the other end is the recorder (it only answers, sends nothing)
 * @property {boolean} offered an offer of this connection went out (the recorder gets exactly one)
 * @property {boolean} awaitingFirstOffer the polite end waits for the impolite end to open it
 * @property {ReturnType<typeof setTimeout> | undefined} firstOfferTimer
 * @property {MediaStream | null} stream
 * @property {boolean} closed
 * @property {boolean} iceRestarted
 * @property {ReturnType<typeof setTimeout> | undefined} connectTimer
 * @property {ReturnType<typeof setTimeout> | undefined} failTimer
 * @property {MediaProtection | null} protection encrypts this connection's frames (null: none)
 */

/**
 * @typedef {object} PeerLink What the helpers below need from the mesh.
 * @property {(peer: Peer, kind: import("./types.js").SignalKind, payload: Record<string, any>) => void} send
 * @property {(...args: any[]) => void} trace
 */

/** @type {readonly MediaKind[]} */
export const KINDS = Object.freeze(["audio", "video"]);

/**
 * The DTLS fingerprint(s) of an SDP, to tell a renegotiation from a brand-new remote connection.
 * @param {unknown} sdp
 * @returns {string | null}
 */
export function sdpFingerprint(sdp) {
  if (typeof sdp !== "string") return null;
  const found = sdp.match(/^a=fingerprint:.*$/gim);
  return found ? found.map((line) => line.trim().toLowerCase()).sort().join("|") : null;
}

/**
 * polite = the lexicographically larger participant_id of the pair.
 * @param {string | null} selfId
 * @param {string} otherId
 * @returns {boolean}
 */
export function isPolite(selfId, otherId) {
  return String(selfId) > String(otherId);
}

/**
 * The `ice_candidate` payload of a local candidate (null: end of candidates).
 * @param {RTCIceCandidate | RTCIceCandidateInit | null | undefined} candidate
 * @returns {Record<string, any>}
 */
export function candidatePayload(candidate) {
  if (!candidate) return { candidate: null };
  const json = "toJSON" in candidate && typeof candidate.toJSON === "function" ? candidate.toJSON() : candidate;
  /** @type {Record<string, any>} */
  const payload = {
    candidate: json.candidate,
    sdpMid: json.sdpMid ?? null,
    sdpMLineIndex: json.sdpMLineIndex ?? null,
  };
  if (typeof json.usernameFragment === "string") payload.usernameFragment = json.usernameFragment;
  return payload;
}

/**
 * The live transceiver carrying `kind` (by its sending track, else its receiving track), if any.
 * @param {RTCPeerConnection} pc
 * @param {MediaKind} kind
 * @returns {RTCRtpTransceiver | null}
 */
export function findTransceiver(pc, kind) {
  if (typeof pc.getTransceivers !== "function") return null;
  const usable = pc.getTransceivers().filter((t) => !(/** @type {any} */ (t).stopped) && t.currentDirection !== "stopped");
  return (
    usable.find((t) => t.sender && t.sender.track && t.sender.track.kind === kind) ||
    usable.find((t) => t.receiver && t.receiver.track && t.receiver.track.kind === kind) ||
    null
  );
}

/**
 * A fresh record for a new connection.
 * @param {string} id
 * @param {RTCPeerConnection} pc
 * @param {{polite: boolean, recorder: boolean, awaitingFirstOffer: boolean, protection?: MediaProtection | null}} options
 * @returns {Peer}
 */
export function newPeer(id, pc, { polite, recorder, awaitingFirstOffer, protection = null }) {
  return {
    id,
    pc,
    polite,
    makingOffer: false,
    ignoreOffer: false,
    settingRemoteAnswerPending: false,
    handlingOffer: false,
    earlyCandidates: [],
    recorder,
    offered: false,
    awaitingFirstOffer,
    firstOfferTimer: undefined,
    stream: null,
    closed: false,
    iceRestarted: false,
    connectTimer: undefined,
    failTimer: undefined,
    protection,
  };
}

/**
 * Protect every sender and receiver `pc` has now. Called wherever transceivers appear (our tracks
 * added, a remote description taken); protecting one twice is a no-op, so it may run often.
 * @param {RTCPeerConnection} pc
 * @param {MediaProtection | null} protection
 */
export function protectTransceivers(pc, protection) {
  if (!protection) return;
  for (const transceiver of pc.getTransceivers()) {
    protection.protectSender(transceiver.sender);
    protection.protectReceiver(transceiver.receiver);
  }
}

/**
 * Send `track` (or nothing, with null) for `kind` on this connection: on the transceiver already
 * carrying that kind, else a new one (which, like turning a receive-only one around, fires
 * negotiationneeded).
 * @param {Peer} peer
 * @param {MediaKind} kind
 * @param {MediaStreamTrack | null} track
 * @param {MediaStream | null} localStream
 */
export async function setSenderTrack(peer, kind, track, localStream) {
  const pc = peer.pc;
  const transceiver = findTransceiver(pc, kind);
  if (transceiver) {
    await transceiver.sender.replaceTrack(track);
    if (track && localStream && typeof transceiver.sender.setStreams === "function") {
      transceiver.sender.setStreams(localStream);
    }
    if (track && (transceiver.direction === "recvonly" || transceiver.direction === "inactive")) {
      transceiver.direction = "sendrecv";
    }
  } else if (track) {
    pc.addTrack(track, ...(localStream ? [localStream] : []));
  }
  protectTransceivers(pc, peer.protection);
}

/**
 * Receive-only transceivers for the kinds the connection lacks (an offer without local media).
 * @param {Peer} peer
 */
export function addReceiveOnly(peer) {
  for (const kind of KINDS) {
    if (!findTransceiver(peer.pc, kind)) peer.pc.addTransceiver(kind, { direction: "recvonly" });
  }
  protectTransceivers(peer.pc, peer.protection);
}

/**
 * Add a remote candidate; `strict` rethrows a refusal (unless the connection is closed).
 * @param {Peer} peer
 * @param {Record<string, any>} payload
 * @param {{strict: boolean}} options
 * @param {PeerLink} link
 */
export async function addCandidate(peer, payload, { strict }, link) {
  try {
    if (payload.candidate === null || payload.candidate === undefined || payload.candidate === "") {
      await peer.pc.addIceCandidate();
    } else {
      await peer.pc.addIceCandidate(payload);
    }
  } catch (error) {
    link.trace("candidate from", peer.id, "refused:", error instanceof Error ? error.message : error);
    if (strict && !peer.closed) throw error;
  }
}

/**
 * Try the candidates kept until a remote description was set.
 * @param {Peer} peer
 * @param {PeerLink} link
 */
async function flushEarlyCandidates(peer, link) {
  const pending = peer.earlyCandidates;
  peer.earlyCandidates = [];
  // Some may belong to an offer that was ignored (other ICE credentials): those fail, harmlessly.
  for (const payload of pending) await addCandidate(peer, payload, { strict: false }, link);
}

/**
 * Take a remote offer or answer (perfect negotiation): on glare the polite end rolls back and takes
 * the offer, the impolite end ignores it; an offer is answered at once.
 * @param {Peer} peer
 * @param {RTCSessionDescriptionInit} description
 * @param {PeerLink} link
 */
export async function takeDescription(peer, description, link) {
  const pc = peer.pc;
  if (description.type === "answer" && pc.signalingState !== "have-local-offer") {
    link.trace("drop late answer from", peer.id, pc.signalingState);
    return; // a late answer to an offer we rolled back or replaced
  }
  const readyForOffer =
    !peer.makingOffer && (pc.signalingState === "stable" || peer.settingRemoteAnswerPending);
  const offerCollision = description.type === "offer" && !readyForOffer;
  peer.ignoreOffer = !peer.polite && offerCollision;
  link.trace("recv", description.type, "from", peer.id, pc.signalingState, offerCollision ? "collision" : "", peer.ignoreOffer ? "ignored" : "");
  if (peer.ignoreOffer) return;
  const isOffer = description.type === "offer";
  if (isOffer) {
    peer.handlingOffer = true;
    peer.awaitingFirstOffer = false;
    clearTimeout(peer.firstOfferTimer);
    peer.firstOfferTimer = undefined;
  }
  try {
    if (offerCollision) {
      try {
        await pc.setLocalDescription({ type: "rollback" });
      } catch (error) {
        // Our offer was not applied yet, or was already rolled back: nothing to undo.
        if (pc.signalingState === "have-local-offer") throw error;
      }
    }
    peer.settingRemoteAnswerPending = description.type === "answer";
    try {
      await pc.setRemoteDescription(description);
    } finally {
      peer.settingRemoteAnswerPending = false;
    }
    if (peer.closed) return;
    protectTransceivers(pc, peer.protection); // those the remote offer made, before media can flow
    await flushEarlyCandidates(peer, link);
    if (isOffer) {
      await pc.setLocalDescription();
      if (peer.closed) return;
      const answer = /** @type {RTCSessionDescription} */ (pc.localDescription);
      link.trace("send", answer.type, "to", peer.id);
      link.send(peer, /** @type {"answer"} */ (answer.type), { type: answer.type, sdp: answer.sdp });
    }
  } finally {
    if (isOffer) peer.handlingOffer = false;
  }
}

/**
 * The stream a remote track belongs to: the sender's, else one of our own that collects the tracks.
 * @param {Peer} peer
 * @param {RTCTrackEvent} event
 * @param {typeof MediaStream | null} MediaStreamClass
 * @returns {MediaStream | null}
 */
export function takeTrack(peer, event, MediaStreamClass) {
  /** @type {MediaStream | null | undefined} */
  let stream = event.streams && event.streams[0];
  if (!stream) {
    if (!peer.stream && MediaStreamClass) peer.stream = new MediaStreamClass();
    if (peer.stream && typeof peer.stream.addTrack === "function") peer.stream.addTrack(event.track);
    stream = peer.stream;
  }
  if (!stream) return null;
  peer.stream = stream;
  return stream;
}

/**
 * Stop the connection's timers, detach its handlers and close it (the caller marks it closed).
 * @param {Peer} peer
 */
export function closeConnection(peer) {
  clearTimeout(peer.connectTimer);
  clearTimeout(peer.failTimer);
  clearTimeout(peer.firstOfferTimer);
  const pc = peer.pc;
  pc.onnegotiationneeded = null;
  pc.onicecandidate = null;
  pc.ontrack = null;
  pc.onconnectionstatechange = null;
  try {
    pc.close();
  } catch {
    // already closed
  }
}
