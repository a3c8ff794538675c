// One page, two pairs of RTCPeerConnections in loopback. The camera and microphone go out through
// protected senders of one MediaEncryption: to a receiver protected by a second MediaEncryption
// (given the right key, a wrong one or none), and to a receiver that only records what arrives.
import { MediaEncryption } from "../../../web_client/src/lib/e2ee/sframe.js";
import { importBaseKey } from "../../../web_client/src/lib/e2ee/frame.js";

const WORKER_URL = "/dist/workers/sframe.js";

/** @param {string} hex */
const bytes = (hex) => Uint8Array.from(hex.match(/../g) || [], (pair) => parseInt(pair, 16));

/**
 * @param {RTCPeerConnection} offerer
 * @param {RTCPeerConnection} answerer
 */
async function connect(offerer, answerer) {
  offerer.onicecandidate = (event) => event.candidate && answerer.addIceCandidate(event.candidate);
  answerer.onicecandidate = (event) => event.candidate && offerer.addIceCandidate(event.candidate);
  await offerer.setLocalDescription();
  await answerer.setRemoteDescription(offerer.localDescription);
  await answerer.setLocalDescription();
  await offerer.setRemoteDescription(answerer.localDescription);
}

/** @type {any} */
const state = { tapped: [] };

/**
 * `encrypt: false` runs the same connections without MediaEncryption, and `tap: false` without the
 * second pair (what bench/sframe.py compares).
 * @param {{kid: number, sendKey: string, receiveKid: number | null, receiveKey: string | null,
 *   encrypt?: boolean, tap?: boolean}} options
 */
async function start({ kid, sendKey, receiveKid, receiveKey, encrypt = true, tap = true }) {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
  if (!encrypt) {
    const up = new RTCPeerConnection();
    const down = new RTCPeerConnection();
    for (const track of stream.getTracks()) up.addTrack(track, stream);
    down.ontrack = (event) => {
      if (event.track.kind === "video") /** @type {HTMLVideoElement} */ (document.getElementById("remote")).srcObject = event.streams[0];
    };
    await connect(up, down);
    Object.assign(state, { up, down });
    return;
  }
  const sending = new MediaEncryption({ workerUrl: WORKER_URL });
  await sending.setSendKey(kid, await importBaseKey(bytes(sendKey)));
  const receiving = new MediaEncryption({ workerUrl: WORKER_URL });
  if (receiveKey !== null && receiveKid !== null) {
    await receiving.addReceiveKey(receiveKid, await importBaseKey(bytes(receiveKey)));
  }
  Object.assign(state, { sending, receiving });

  const up = new RTCPeerConnection();
  const down = new RTCPeerConnection();
  for (const track of stream.getTracks()) sending.protectSender(up.addTrack(track, stream));
  down.ontrack = (event) => {
    receiving.protectReceiver(event.receiver);
    if (event.track.kind === "video") /** @type {HTMLVideoElement} */ (document.getElementById("remote")).srcObject = event.streams[0];
  };
  await connect(up, down);
  Object.assign(state, { up, down });
  if (!tap) return;

  const tapUp = new RTCPeerConnection();
  const tapDown = new RTCPeerConnection();
  sending.protectSender(tapUp.addTrack(stream.getVideoTracks()[0], stream));
  const tapWorker = new Worker("/tap-worker.js");
  tapWorker.onmessage = (event) => state.tapped.push(event.data);
  tapDown.ontrack = (event) => {
    event.receiver.transform = new RTCRtpScriptTransform(tapWorker, {});
  };
  await connect(tapUp, tapDown);
  Object.assign(state, { up, down, tapUp, tapDown });
}

/**
 * A connection to the recorder (as a room page makes one): camera and microphone send-only through
 * protected senders; returns the offer with its candidates, for the test to hand to the recorder.
 * @param {{kid: number, sendKey: string}} options
 */
async function offerToRecorder({ kid, sendKey }) {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
  const sending = new MediaEncryption({ workerUrl: WORKER_URL });
  await sending.setSendKey(kid, await importBaseKey(bytes(sendKey)));
  const pc = new RTCPeerConnection();
  for (const track of stream.getTracks()) {
    sending.protectSender(pc.addTransceiver(track, { direction: "sendonly", streams: [stream] }).sender);
  }
  const gathered = new Promise((resolve) => {
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && resolve(undefined);
  });
  await pc.setLocalDescription();
  await gathered;
  Object.assign(state, { sending, recorderPc: pc });
  return /** @type {RTCSessionDescription} */ (pc.localDescription).sdp;
}

/** @param {string} sdp */
async function acceptRecorderAnswer(sdp) {
  await state.recorderPc.setRemoteDescription({ type: "answer", sdp });
}

async function sendingStats() {
  return state.sending.stats();
}

async function snapshot() {
  let framesDecoded = 0;
  (await state.down.getStats()).forEach((/** @type {any} */ report) => {
    if (report.type === "inbound-rtp" && report.kind === "video") framesDecoded += report.framesDecoded || 0;
  });
  let framesEncoded = 0;
  (await state.up.getStats()).forEach((/** @type {any} */ report) => {
    if (report.type === "outbound-rtp" && report.kind === "video") framesEncoded += report.framesEncoded || 0;
  });
  return {
    framesDecoded,
    framesEncoded,
    sending: state.sending ? await state.sending.stats() : null,
    receiving: state.receiving ? await state.receiving.stats() : null,
    tapped: state.tapped,
    failures: state.sending ? [...state.sending.failures, ...state.receiving.failures] : [],
  };
}

Object.assign(window, { startLoopback: start, loopbackSnapshot: snapshot, offerToRecorder, acceptRecorderAnswer, sendingStats });
