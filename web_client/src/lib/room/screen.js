// Screen sharing over the mesh (docs/protocol.md, "Screen sharing and raised hands"). The shared screen
// goes as one more send-only video transceiver on every connection (to the other browsers and to the
// recorder), in a MediaStream of its own whose id the room announced (`start_screen_share`'s
// `stream_id`): receivers and the recorder tell it from the camera by that stream. No DOM here.

/**
 * @typedef {import("./peer.js").Peer} Peer
 * @typedef {{track: MediaStreamTrack, stream: MediaStream}} Screen
 * @typedef {{participant_id: string, stream_id: string}} ScreenShare room_state's `screen_share`
 * @typedef {object} ScreenMesh What these helpers need of a Mesh (./mesh.js).
 * @property {Map<string, Peer>} peers
 * @property {Screen | null} screen what we share
 * @property {ScreenShare | null} screenShare who shares, as the room last said
 * @property {() => void} reconcile
 * @property {(name: string, body: any) => void} emit
 */

/** @type {WeakMap<Peer, RTCRtpTransceiver>} the transceiver carrying our screen on each connection */
const sending = new WeakMap();
/** @type {WeakMap<Peer, MediaStream>} the screen received on each connection */
const received = new WeakMap();

/**
 * Add our screen to a connection (a new one, or a live one: that renegotiates); true if it was added.
 * @param {Peer} peer
 * @param {Screen | null} screen
 * @returns {boolean}
 */
export function addScreen(peer, screen) {
  if (!screen || screen.track.readyState === "ended" || typeof peer.pc.addTransceiver !== "function") return false;
  sending.set(peer, peer.pc.addTransceiver(screen.track, { direction: "sendonly", streams: [screen.stream] }));
  return true;
}

/**
 * Stop sending our screen on a connection (renegotiates; towards the recorder, a new connection).
 * @param {Peer} peer
 */
async function removeScreen(peer) {
  const transceiver = sending.get(peer);
  if (!transceiver) return;
  sending.delete(peer);
  if (peer.closed) return;
  try {
    await transceiver.sender.replaceTrack(null);
    if (typeof transceiver.stop === "function") transceiver.stop();
    else transceiver.direction = "inactive";
  } catch {
    // the connection closed meanwhile
  }
}

/**
 * Share `screen` on every connection of the mesh, or stop sharing (null).
 * @param {ScreenMesh} mesh
 * @param {Screen | null} screen
 */
export async function shareScreen(mesh, screen) {
  mesh.screen = screen;
  for (const peer of [...mesh.peers.values()]) {
    await removeScreen(peer);
    addScreen(peer, screen);
  }
  mesh.reconcile(); // a screen alone is worth a connection to the recorder
}

/**
 * Take a remote track if it is the screen the room announced for its sender: kept apart from the sender's
 * camera, and announced as `remote_screen`. True when it was the screen.
 * @param {ScreenMesh} mesh
 * @param {Peer} peer
 * @param {RTCTrackEvent} event
 * @returns {boolean}
 */
export function takeScreenTrack(mesh, peer, event) {
  const stream = event.streams && event.streams[0];
  const share = mesh.screenShare;
  if (!stream || !share || share.participant_id !== peer.id || stream.id !== share.stream_id) return false;
  received.set(peer, stream);
  mesh.emit("remote_screen", { participantId: peer.id, stream, track: event.track });
  return true;
}

/**
 * The screen stream received from `share`'s sharer, if it is the one the room announces.
 * @param {ScreenMesh} mesh
 * @param {ScreenShare | null | undefined} share
 * @returns {MediaStream | null}
 */
export function remoteScreen(mesh, share) {
  if (!share) return null;
  const peer = mesh.peers.get(share.participant_id);
  const stream = peer ? received.get(peer) : undefined;
  return stream && stream.id === share.stream_id ? stream : null;
}

/**
 * room_state's `screen_share`, checked: null unless it is `{participant_id, stream_id}` of strings.
 * @param {unknown} value
 * @returns {ScreenShare | null}
 */
export function parseScreenShare(value) {
  if (!value || typeof value !== "object") return null;
  const { participant_id: participantId, stream_id: streamId } = /** @type {Record<string, unknown>} */ (value);
  return typeof participantId === "string" && typeof streamId === "string"
    ? { participant_id: participantId, stream_id: streamId } : null;
}
