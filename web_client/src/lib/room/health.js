// Connection health for the mesh (./mesh.js): a connection that does not reach "connected" within
// the connect timeout is replaced (the polite end without media first announces itself instead);
// one that fails gets one ICE restart and is replaced if it is not back in time. Towards the
// recorder a failure replaces the connection at once: an ICE restart is a renegotiation, which the
// recorder cannot take. No DOM access here.

import { addReceiveOnly } from "./peer.js";

/**
 * @typedef {import("./peer.js").Peer} Peer
 *
 * @typedef {object} HealthHost What the watchdog needs of the mesh (the Mesh itself).
 * @property {number} connectTimeoutMs a connection not connected by then is replaced (0: never)
 * @property {number} iceRestartTimeoutMs a failed connection not back by then after an ICE restart is replaced
 * @property {(peer: Peer, reason: string) => unknown} _replacePeer close the connection, open a fresh one if allowed
 */

/**
 * (Re)start the watchdog that replaces `peer` if it is not connected within the connect timeout.
 * @param {Peer} peer
 * @param {HealthHost} host
 */
export function armConnectTimer(peer, host) {
  clearTimeout(peer.connectTimer);
  if (!host.connectTimeoutMs) return;
  peer.connectTimer = setTimeout(() => {
    if (peer.closed || peer.pc.connectionState === "connected") return;
    const hasTransceivers =
      typeof peer.pc.getTransceivers === "function" && peer.pc.getTransceivers().length > 0;
    if (!hasTransceivers && !peer.pc.remoteDescription) {
      // Polite end without media, and no offer came: announce ourselves.
      peer.awaitingFirstOffer = false;
      addReceiveOnly(peer);
      armConnectTimer(peer, host);
    } else {
      host._replacePeer(peer, "timeout");
    }
  }, host.connectTimeoutMs);
}

/**
 * React to a change of `peer`'s connectionState: connected stops the timers, failed restarts ICE
 * once or replaces the connection.
 * @param {Peer} peer
 * @param {HealthHost} host
 */
export function checkConnectionState(peer, host) {
  const state = peer.pc.connectionState;
  if (state === "connected") {
    clearTimeout(peer.connectTimer);
    clearTimeout(peer.failTimer);
    peer.iceRestarted = false;
  } else if (state === "failed") {
    if (peer.recorder) {
      host._replacePeer(peer, "failed"); // an ICE restart is a renegotiation: see Mesh._negotiate
    } else if (!peer.iceRestarted && typeof peer.pc.restartIce === "function") {
      peer.iceRestarted = true;
      peer.pc.restartIce(); // negotiationneeded -> new offer with fresh ICE credentials
      clearTimeout(peer.failTimer);
      peer.failTimer = setTimeout(() => {
        if (!peer.closed && peer.pc.connectionState !== "connected") host._replacePeer(peer, "failed");
      }, host.iceRestartTimeoutMs);
    } else {
      host._replacePeer(peer, "failed");
    }
  }
}
