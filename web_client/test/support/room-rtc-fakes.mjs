// Test doubles for WebRTC: tracks, streams, and an RTCPeerConnection that models what the mesh
// relies on (signaling states, rollback, transceiver matching, DTLS fingerprints in the SDP, ICE
// candidates, connectionState).

let trackSeq = 0;

export class FakeTrack {
  constructor(kind) {
    trackSeq += 1;
    this.id = `track-${trackSeq}`;
    this.kind = kind;
    this.enabled = true;
    this.readyState = "live";
  }

  stop() {
    this.readyState = "ended";
  }
}

let streamSeq = 0;

export class FakeMediaStream {
  constructor(tracks = []) {
    streamSeq += 1;
    this.id = `stream-${streamSeq}`;
    this.tracks = [...tracks];
  }

  getTracks() {
    return [...this.tracks];
  }

  getVideoTracks() {
    return this.tracks.filter((t) => t.kind === "video");
  }

  getAudioTracks() {
    return this.tracks.filter((t) => t.kind === "audio");
  }

  addTrack(track) {
    if (!this.tracks.includes(track)) this.tracks.push(track);
  }

  removeTrack(track) {
    this.tracks = this.tracks.filter((t) => t !== track);
  }
}

class FakeSender {
  constructor(track, pc) {
    this.track = track;
    this.pc = pc;
    this.replaced = [];
  }

  async replaceTrack(track) {
    this.replaced.push(track);
    this.track = track;
  }

  setStreams() {}
}

class FakeTransceiver {
  constructor(kind, { direction = "sendrecv", track = null, pc, byAddTrack = false }) {
    this.kind = kind;
    this._direction = direction;
    this.sender = new FakeSender(track, pc);
    this.receiver = { track: new FakeTrack(kind) };
    this.mid = null;
    this.stopped = false;
    this.currentDirection = null;
    this.byAddTrack = byAddTrack;
    this.pc = pc;
  }

  get direction() {
    return this._direction;
  }

  set direction(value) {
    if (value !== this._direction) {
      this._direction = value;
      this.pc._negotiationNeeded();
    }
  }
}

let pcSeq = 0;

function parseSdp(sdp) {
  const lines = sdp.split("\r\n");
  const fingerprint = (lines.find((l) => l.startsWith("a=fingerprint:")) || "").slice(14);
  const sections = [];
  for (const line of lines) {
    if (line.startsWith("m=")) sections.push({ kind: line.slice(2).split(" ")[0], direction: "sendrecv" });
    else if (sections.length && /^a=(sendrecv|sendonly|recvonly|inactive)$/.test(line)) {
      sections[sections.length - 1].direction = line.slice(2);
    }
  }
  return { fingerprint, sections };
}

const REVERSE = { sendrecv: "sendrecv", sendonly: "recvonly", recvonly: "sendonly", inactive: "inactive" };

function answerDirection(local, remoteOffered) {
  const weSend = local === "sendrecv" || local === "sendonly";
  const weRecv = local === "sendrecv" || local === "recvonly";
  const theySend = remoteOffered === "sendrecv" || remoteOffered === "sendonly";
  const theyRecv = remoteOffered === "sendrecv" || remoteOffered === "recvonly";
  const send = weSend && theyRecv;
  const recv = weRecv && theySend;
  return send && recv ? "sendrecv" : send ? "sendonly" : recv ? "recvonly" : "inactive";
}

export class FakeRTCPeerConnection {
  static instances = [];

  static reset() {
    FakeRTCPeerConnection.instances = [];
  }

  constructor(config = {}) {
    pcSeq += 1;
    this.id = pcSeq;
    this.config = config;
    this.fingerprint = `sha-256 AA:BB:${String(pcSeq).padStart(4, "0")}`;
    this.iceGeneration = 0;
    this._gathered = new Set(); // ufrags whose candidates were gathered (once per ICE session)
    this.signalingState = "stable";
    this.connectionState = "new";
    this.localDescription = null;
    this.remoteDescription = null;
    this.transceivers = [];
    this.candidates = [];
    this.log = [];
    this.closed = false;
    this.remoteStream = null;
    this._negNeeded = false;
    this._negScheduled = false;
    this.onnegotiationneeded = null;
    this.onicecandidate = null;
    this.ontrack = null;
    this.onconnectionstatechange = null;
    FakeRTCPeerConnection.instances.push(this);
  }

  getTransceivers() {
    return [...this.transceivers];
  }

  getSenders() {
    return this.transceivers.map((t) => t.sender);
  }

  addTrack(track) {
    this._assertOpen();
    const reuse = this.transceivers.find(
      (t) => t.kind === track.kind && !t.sender.track && !t.stopped && t.mid !== null && !t.byAddTrack && t.currentDirection !== "sendrecv" && t.currentDirection !== "sendonly",
    );
    if (reuse) {
      reuse.sender.track = track;
      if (reuse._direction === "recvonly") reuse._direction = "sendrecv";
      if (reuse._direction === "inactive") reuse._direction = "sendonly";
      this.log.push(`addTrack(${track.kind}) reused`);
      this._negotiationNeeded();
      return reuse.sender;
    }
    const transceiver = new FakeTransceiver(track.kind, { track, pc: this, byAddTrack: true });
    this.transceivers.push(transceiver);
    this.log.push(`addTrack(${track.kind})`);
    this._negotiationNeeded();
    return transceiver.sender;
  }

  addTransceiver(trackOrKind, init = {}) {
    this._assertOpen();
    const kind = typeof trackOrKind === "string" ? trackOrKind : trackOrKind.kind;
    const track = typeof trackOrKind === "string" ? null : trackOrKind;
    const transceiver = new FakeTransceiver(kind, { direction: init.direction || "sendrecv", track, pc: this });
    transceiver.sendEncodings = init.sendEncodings || null;
    this.transceivers.push(transceiver);
    this.log.push(`addTransceiver(${kind}, ${transceiver.direction})`);
    this._negotiationNeeded();
    return transceiver;
  }

  get ufrag() {
    return `uf${this.id}g${this.iceGeneration}`;
  }

  restartIce() {
    this.log.push("restartIce");
    this.iceGeneration += 1;
    this._negotiationNeeded();
  }

  _assertOpen() {
    if (this.closed) throw Object.assign(new Error("closed"), { name: "InvalidStateError" });
  }

  _negotiationNeeded() {
    if (this.closed) return;
    this._negNeeded = true;
    if (this._negScheduled) return;
    this._negScheduled = true;
    setTimeout(() => {
      this._negScheduled = false;
      this._maybeFireNegotiation();
    }, 0);
  }

  _maybeFireNegotiation() {
    // As in browsers: fired while stable as long as the negotiation-needed flag is set; the flag
    // clears when an offer is made or an answer covers every transceiver.
    if (this.closed || !this._negNeeded || this.signalingState !== "stable") return;
    this.log.push("negotiationneeded");
    if (this.onnegotiationneeded) this.onnegotiationneeded();
  }

  _sdp(type) {
    const lines = ["v=0", `a=fingerprint:${this.fingerprint}`, `a=ice-ufrag:${this.ufrag}`, `a=x-type:${type}`];
    for (const t of this.transceivers) {
      if (type === "answer" && t.mid === null) continue;
      lines.push(`m=${t.kind} 9 UDP/TLS/RTP/SAVPF 96`);
      lines.push(`a=${t._answerDirection || t.direction}`);
    }
    return `${lines.join("\r\n")}\r\n`;
  }

  async setLocalDescription(description) {
    await Promise.resolve();
    this._assertOpen();
    if (description && description.type === "rollback") {
      if (this.signalingState !== "have-local-offer") {
        throw Object.assign(new Error(`rollback in ${this.signalingState}`), { name: "InvalidStateError" });
      }
      this.log.push("rollback");
      this.signalingState = "stable";
      this.localDescription = this._currentLocal || null;
      return;
    }
    const type = description && description.type
      ? description.type
      : this.signalingState === "have-remote-offer"
        ? "answer"
        : "offer";
    if (type === "offer") {
      if (this.signalingState !== "stable") {
        throw Object.assign(new Error(`offer in ${this.signalingState}`), { name: "InvalidStateError" });
      }
      this._negNeeded = false;
      this.transceivers.forEach((t, i) => {
        if (t.mid === null) t.mid = String(i);
        t._answerDirection = null;
      });
      this.localDescription = { type, sdp: this._sdp("offer") };
      this.signalingState = "have-local-offer";
      this.log.push("local offer");
    } else {
      if (this.signalingState !== "have-remote-offer") {
        throw Object.assign(new Error(`answer in ${this.signalingState}`), { name: "InvalidStateError" });
      }
      this.localDescription = { type, sdp: this._sdp("answer") };
      this._currentLocal = this.localDescription;
      this.signalingState = "stable";
      this.log.push("local answer");
      if (this.transceivers.every((t) => t.mid !== null && t._answerDirection === answerDirection(t.direction, t._offeredDirection))) {
        this._negNeeded = false;
      }
      this._maybeConnected();
      setTimeout(() => this._maybeFireNegotiation(), 0);
    }
    this._gatherCandidate();
  }

  async setRemoteDescription(description) {
    await Promise.resolve();
    this._assertOpen();
    const { sections } = parseSdp(description.sdp);
    if (description.type === "offer") {
      if (this.signalingState !== "stable") {
        // Browsers now roll back implicitly; the mesh rolls back explicitly, which this double checks.
        throw Object.assign(new Error(`remote offer in ${this.signalingState}`), { name: "InvalidStateError" });
      }
      this.remoteDescription = description;
      this.signalingState = "have-remote-offer";
      this.log.push("remote offer");
      sections.forEach((section, index) => {
        let t = this.transceivers.find((x) => x.mid === String(index));
        if (!t) {
          t = this.transceivers.find((x) => x.mid === null && x.kind === section.kind && x.byAddTrack && !x.stopped);
          if (!t) {
            t = new FakeTransceiver(section.kind, { direction: "recvonly", pc: this });
            this.transceivers.push(t);
          }
          t.mid = String(index);
        }
        t._offeredDirection = section.direction;
        t._answerDirection = answerDirection(t.direction, section.direction);
        t.currentDirection = t._answerDirection;
        this._maybeTrack(t, REVERSE[section.direction]);
      });
    } else {
      if (this.signalingState !== "have-local-offer") {
        throw Object.assign(new Error(`remote answer in ${this.signalingState}`), { name: "InvalidStateError" });
      }
      this.remoteDescription = description;
      this.signalingState = "stable";
      this.log.push("remote answer");
      const offered = this.transceivers.filter((t) => t.mid !== null);
      sections.forEach((section, index) => {
        const t = offered[index];
        if (!t) return;
        t.currentDirection = REVERSE[section.direction];
        this._maybeTrack(t, REVERSE[section.direction]);
      });
      this._currentLocal = this.localDescription;
      this._maybeConnected();
      setTimeout(() => this._maybeFireNegotiation(), 0);
    }
  }

  _maybeTrack(transceiver, ourRecvDirection) {
    // `ourRecvDirection`: our side's direction seen from the remote's description.
    const receiving = ourRecvDirection === "sendrecv" || ourRecvDirection === "recvonly";
    if (!receiving || transceiver._fired) return;
    transceiver._fired = true;
    if (!this.remoteStream) this.remoteStream = new FakeMediaStream();
    this.remoteStream.addTrack(transceiver.receiver.track);
    const event = { track: transceiver.receiver.track, streams: [this.remoteStream], transceiver };
    setTimeout(() => this.ontrack && !this.closed && this.ontrack(event), 0);
  }

  /** The other end: the open connection whose fingerprint is in our remote description. */
  _remotePc() {
    if (!this.remoteDescription) return null;
    const { fingerprint } = parseSdp(this.remoteDescription.sdp);
    return FakeRTCPeerConnection.instances.find((pc) => !pc.closed && pc.fingerprint === fingerprint) || null;
  }

  _remoteUfrag() {
    const line = this.remoteDescription && this.remoteDescription.sdp.split("\r\n").find((l) => l.startsWith("a=ice-ufrag:"));
    return line ? line.slice(12) : null;
  }

  /** ICE succeeds once both ends agree on descriptions and one end holds a candidate of the other. */
  _maybeConnected() {
    setTimeout(() => {
      const other = this._remotePc();
      if (!other || this.signalingState !== "stable" || other.signalingState !== "stable") return;
      if (!this.localDescription || !other.remoteDescription) return;
      if (parseSdp(other.remoteDescription.sdp).fingerprint !== this.fingerprint) return;
      const valid = (pc) => pc.candidates.some((c) => c.usernameFragment && c.usernameFragment === pc._remoteUfrag());
      if (!valid(this) && !valid(other)) return;
      this.setConnectionState("connected");
      other.setConnectionState("connected");
    }, 0);
  }

  _gatherCandidate() {
    // Browsers gather once per ICE session: a rolled-back offer's candidates serve the answer.
    const ufrag = this.ufrag;
    if (this._gathered.has(ufrag)) return;
    this._gathered.add(ufrag);
    const n = this.id * 10 + this.iceGeneration;
    setTimeout(() => {
      if (this.closed || !this.onicecandidate) return;
      const candidate = {
        candidate: `candidate:${n} 1 udp 2122260223 192.0.2.${this.id % 250} ${50000 + n} typ host`,
        sdpMid: "0",
        sdpMLineIndex: 0,
        usernameFragment: ufrag,
        toJSON() {
          return { candidate: this.candidate, sdpMid: this.sdpMid, sdpMLineIndex: this.sdpMLineIndex, usernameFragment: this.usernameFragment };
        },
      };
      this.onicecandidate({ candidate });
      this.onicecandidate({ candidate: null }); // end of candidates
    }, 0);
  }

  async addIceCandidate(candidate) {
    await Promise.resolve();
    this._assertOpen();
    if (!this.remoteDescription) {
      throw Object.assign(new Error("addIceCandidate before the remote description"), { name: "InvalidStateError" });
    }
    if (candidate === undefined) return; // end of candidates
    if (candidate.usernameFragment && candidate.usernameFragment !== this._remoteUfrag()) {
      throw Object.assign(new Error("unknown ufrag"), { name: "OperationError" });
    }
    this.candidates.push(candidate);
    this._maybeConnected();
  }

  setConnectionState(value) {
    if (this.closed || this.connectionState === value) return;
    this.connectionState = value;
    if (this.onconnectionstatechange) this.onconnectionstatechange();
  }

  close() {
    this.closed = true;
    this.signalingState = "closed";
    this.connectionState = "closed";
    this.log.push("close");
  }
}
