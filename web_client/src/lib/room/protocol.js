// The room protocol (docs/protocol.md) on top of a socket.io client.
//
// No DOM access here: this module is imported by the browser page and by the Node unit tests.
// The socket.io `io` function is injected, so tests may pass a fake or the npm socket.io-client.

import { NOTICES } from "./codes.js";
import { Emitter } from "./emitter.js";
import { connectErrorInfo, isObject } from "./shapes.js";

export * from "./codes.js";
export * from "./shapes.js";
export { Emitter };

/**
 * @typedef {import("./types.js").ConnectErrorInfo} ConnectErrorInfo
 * @typedef {import("./types.js").IoFunction} IoFunction
 * @typedef {import("./types.js").JoinResult} JoinResult
 * @typedef {import("./types.js").Participant} Participant
 * @typedef {import("./types.js").RecordingNotice} RecordingNotice
 * @typedef {import("./types.js").RoomState} RoomState
 * @typedef {import("./types.js").SignalKind} SignalKind
 * @typedef {import("./types.js").SocketLike} SocketLike
 */

export const NAMESPACE = "/room";
export const SOCKET_PATH = "/socket.io/";
export const DEFAULT_ACK_TIMEOUT_MS = 10000;

/** Refusals after which connecting again later may succeed. */
const RETRYABLE_REFUSALS = new Set(["rate_limited", "room_locked", "connect_refused", "unavailable"]);

/** Notices after which the server disconnects this participant for good. */
const TERMINAL_NOTICES = new Set(["session_ended", "removed", "refused", "device_replaced", "access_revoked"]);

/** An Error with the protocol's error code (`.code`), the request's name (`.event`) and the raw data. */
export class ProtocolError extends Error {
  /**
   * @param {string} code
   * @param {string} [message]
   * @param {{event?: string | null, data?: unknown}} [options]
   */
  constructor(code, message, { event = null, data = null } = {}) {
    super(message || code);
    this.name = "ProtocolError";
    this.code = code;
    this.event = event;
    this.data = data;
  }
}

/**
 * The room protocol's client.
 *
 * Events (RoomClient is an Emitter):
 *  - every server notice under its protocol name (`room_state`, `chat_message`, `error`, ...);
 *  - `connected` {reconnect}, `disconnected` {reason, willReconnect}, `reconnecting` {attempt},
 *    `reconnect_failed` {}, `connect_error` {code, message, refused};
 *  - `joined` (join result; also after an automatic re-join), `rejoined` (join result),
 *    `rejoin_failed` (ProtocolError);
 *  - `terminated` {reason} once the participant is out for good (session_ended, removed, refused,
 *    a refused connection, left).
 */
export class RoomClient extends Emitter {
  /**
   * @param {object} options
   * @param {IoFunction} [options.io] socket.io's `io` (or a fake); required (a TypeError otherwise)
   * @param {string} [options.url]
   * @param {string} [options.path]
   * @param {number} [options.ackTimeoutMs]
   * @param {Record<string, any>} [options.ioOptions]
   * @param {boolean} [options.autoRejoin] join again after a reconnect
   */
  constructor({
    io,
    url = NAMESPACE,
    path = SOCKET_PATH,
    ackTimeoutMs = DEFAULT_ACK_TIMEOUT_MS,
    ioOptions = {},
    autoRejoin = true,
  } = {}) {
    super();
    if (typeof io !== "function") throw new TypeError("RoomClient needs the socket.io `io` function");
    this._io = io;
    this.url = url;
    this.path = path;
    this.ackTimeoutMs = ackTimeoutMs;
    this.ioOptions = ioOptions;
    this.autoRejoin = autoRejoin;

    /** @type {SocketLike | null} */
    this.socket = null;
    /** @type {string | null} the resume_key of this device's last join_room (docs/protocol.md) */
    this._resumeKey = null;
    /** @type {string | null} this page's X25519 device key, sent with every join_room (null: cannot encrypt) */
    this.publicKey = null;
    /** @type {JoinResult | null} The last join_room result ({participant_id, role, name, status, mode, schedule, room, ...}). */
    this.self = null;
    /** @type {RoomState | null} The last room_state body. */
    this.room = null;
    this.joined = false;
    /** @type {string | null} reason once out for good */
    this.terminated = null;
    this._wantJoined = false;
    this._everConnected = false;
    /** @type {Promise<JoinResult> | null} */
    this._joinPromise = null;
    /** @type {{resolve: (value?: any) => void, reject: (error: ProtocolError) => void} | null} */
    this._pendingConnect = null;
  }

  /** @returns {boolean} */
  get connected() {
    return Boolean(this.socket && this.socket.connected);
  }

  /** @returns {string | null} */
  get participantId() {
    return this.self ? this.self.participant_id : null;
  }

  /**
   * Open the socket. Resolves once connected; rejects with a ProtocolError carrying the refusal's
   * code (`bad_token`, `room_locked`, ...) when the server refuses. Transport failures do not
   * reject: socket.io keeps retrying and `connect_error` {code: "connect_failed"} is emitted.
   *
   * @param {{token?: string | null, sessionId?: string | null}} [credentials]
   * @returns {Promise<void>}
   */
  connect({ token = null, sessionId = null } = {}) {
    if (this.socket) throw new Error("RoomClient.connect called twice");
    const auth = {};
    if (token) auth.token = token;
    if (sessionId) auth.session_id = sessionId;
    const socket = this._io(this.url, {
      path: this.path,
      auth,
      reconnection: true,
      reconnectionDelay: 1000,
      reconnectionDelayMax: 10000,
      randomizationFactor: 0.5,
      forceNew: true,
      ...this.ioOptions,
    });
    this.socket = socket;
    const promise = new Promise((resolve, reject) => {
      this._pendingConnect = { resolve, reject };
    });
    this._wire(socket);
    if (socket.connected) this._onConnect();
    return promise;
  }

  /**
   * Connect again after the server disconnected us or refused us (socket.io does not retry then).
   * @returns {Promise<void>}
   */
  reconnect() {
    if (!this.socket) throw new Error("RoomClient.reconnect before connect");
    const promise = new Promise((resolve, reject) => {
      this._pendingConnect = { resolve, reject };
    });
    if (this.socket.connected) this._onConnect();
    else this.socket.connect();
    return promise;
  }

  /** Close the socket without leaving the room (the server keeps our place for the grace period). */
  disconnect() {
    this._wantJoined = false;
    if (this.socket) this.socket.disconnect();
  }

  /** @param {SocketLike} socket */
  _wire(socket) {
    socket.on("connect", () => this._onConnect());
    socket.on("disconnect", (reason) => {
      this.joined = false;
      const willReconnect =
        reason !== "io server disconnect" && reason !== "io client disconnect" && !this.terminated;
      this.emit("disconnected", { reason, willReconnect });
    });
    socket.on("connect_error", (err) => {
      const info = connectErrorInfo(err, socket);
      this.emit("connect_error", info);
      if (info.refused) {
        const error = new ProtocolError(info.code, info.message, { event: "connect", data: err && err.data });
        if (!RETRYABLE_REFUSALS.has(info.code)) {
          this._wantJoined = false;
          this._terminate(info.code);
        }
        if (this._pendingConnect) {
          const { reject } = this._pendingConnect;
          this._pendingConnect = null;
          reject(error);
        }
      }
    });
    const manager = socket.io;
    if (manager && typeof manager.on === "function") {
      manager.on("reconnect_attempt", (attempt) => this.emit("reconnecting", { attempt }));
      manager.on("reconnect_failed", () => this.emit("reconnect_failed", {}));
    }
    for (const name of NOTICES) {
      socket.on(name, (payload) => this._onNotice(name, payload));
    }
  }

  _onConnect() {
    const reconnect = this._everConnected;
    this._everConnected = true;
    this.emit("connected", { reconnect });
    if (this._pendingConnect) {
      const { resolve } = this._pendingConnect;
      this._pendingConnect = null;
      resolve();
    }
    if (reconnect && this.autoRejoin && this._wantJoined && !this.terminated) {
      this.joinRoom({ rejoin: true }).then(
        (result) => this.emit("rejoined", result),
        (err) => this.emit("rejoin_failed", err),
      );
    }
  }

  /**
   * @param {string} name
   * @param {unknown} payload
   */
  _onNotice(name, payload) {
    const body = isObject(payload) ? payload : {};
    if (name === "room_state") {
      this.room = /** @type {RoomState} */ (body);
    } else if (name === "admitted" && this.self) {
      this.self = { ...this.self, status: "admitted" };
    } else if (name === "returned_to_lobby" && this.self) {
      this.self = { ...this.self, status: "lobby" };
    }
    // The server disconnects a window when the same participant joins from another one.
    const replaced = name === "error" && body.code === "replaced";
    if (TERMINAL_NOTICES.has(name) || replaced) {
      this._wantJoined = false;
      this.joined = false;
    }
    this.emit(name, body);
    this.emit("notice", name, body);
    if (TERMINAL_NOTICES.has(name)) this._terminate(name);
    else if (replaced) this._terminate("replaced");
  }

  /** @param {string} reason */
  _terminate(reason) {
    if (this.terminated) return;
    this.terminated = reason;
    this.emit("terminated", { reason });
  }

  /**
   * Send one request; resolve with the ack's result (without `ok`), reject with a ProtocolError.
   * Requests other than join_room and leave_room wait for a join in progress (e.g. the automatic
   * re-join after a reconnect), so they never reach the server before join_room.
   *
   * @param {string} event
   * @param {Record<string, any>} [payload]
   * @returns {Promise<any>} the ack without `ok`
   */
  async request(event, payload = {}) {
    if (event !== "join_room" && event !== "leave_room" && this._joinPromise) {
      try {
        await this._joinPromise;
      } catch {
        // the request below fails on its own
      }
    }
    return this._send(event, payload);
  }

  /**
   * @param {string} event
   * @param {Record<string, any>} payload
   * @returns {Promise<any>} the ack without `ok`
   */
  _send(event, payload) {
    return new Promise((resolve, reject) => {
      const socket = this.socket;
      if (!socket || !socket.connected) {
        reject(new ProtocolError("disconnected", "not connected", { event }));
        return;
      }
      let settled = false;
      /** @param {unknown} response */
      const settle = (response) => {
        if (settled) return;
        settled = true;
        if (!isObject(response) || typeof response.ok !== "boolean") {
          reject(new ProtocolError("bad_ack", `unexpected ack for ${event}`, { event, data: response }));
        } else if (response.ok) {
          const { ok: _ok, ...result } = response;
          resolve(result);
        } else {
          const code = typeof response.error === "string" ? response.error : "internal";
          reject(new ProtocolError(code, response.message || code, { event, data: response }));
        }
      };
      const timedOut = () => {
        if (settled) return;
        settled = true;
        reject(new ProtocolError("timeout", `no answer to ${event}`, { event }));
      };
      if (typeof socket.timeout === "function") {
        // socket.io >= 4.4: the library drops the pending ack itself on timeout.
        socket.timeout(this.ackTimeoutMs).emit(event, payload, (/** @type {unknown} */ err, /** @type {unknown} */ response) => {
          if (err) timedOut();
          else settle(response);
        });
      } else {
        const timer = setTimeout(timedOut, this.ackTimeoutMs);
        socket.emit(event, payload, (/** @type {unknown} */ response) => {
          clearTimeout(timer);
          settle(response);
        });
      }
    });
  }

  // --- requests (docs/protocol.md, "Client requests") -------------------------------------------

  /**
   * join_room: resolves with {participant_id, role, name, status, second_device, resume_key, mode, case_id, session_id,
   * schedule: {case_number, starts_at, duration_minutes}, ice_servers, room, records_sealed,
   * recording_notice: [{language, text, sha256}]}.
   *
   * @param {{rejoin?: boolean}} [options]
   * @returns {Promise<JoinResult>}
   */
  joinRoom({ rejoin = false } = {}) {
    this._wantJoined = true;
    // The same device coming back presents the key its last join gave it, so it resumes its place even
    // while its old socket still looks live to the server; without it, it would wait as a second device.
    /** @type {Record<string, any>} */
    const payload = this._resumeKey ? { resume: this._resumeKey } : {};
    if (this.publicKey) payload.public_key = this.publicKey;
    const promise = this._send("join_room", payload).then(
      (result) => {
        this.joined = true;
        this.self = result;
        if (typeof result.resume_key === "string") this._resumeKey = result.resume_key;
        if (isObject(result.room)) this.room = result.room;
        this.emit("joined", result, { rejoin });
        return result;
      },
      (err) => {
        if (err.code === "session_ended") {
          this._wantJoined = false;
          this._terminate("session_ended");
        }
        throw err;
      },
    );
    const tracked = promise.finally(() => {
      if (this._joinPromise === tracked) this._joinPromise = null;
    });
    tracked.catch(() => {});
    this._joinPromise = tracked;
    return promise;
  }

  /**
   * leave_room: the server disconnects the socket afterwards.
   * @returns {Promise<Record<string, any>>}
   */
  leaveRoom() {
    this._wantJoined = false;
    return this.request("leave_room", {}).then((result) => {
      this.joined = false;
      this._terminate("left");
      return result;
    });
  }

  /** @param {string} participantId */
  admit(participantId) {
    return this.request("admit", { participant_id: participantId });
  }

  /**
   * @param {string} participantId
   * @param {string} [reason] shown to the participant
   */
  refuse(participantId, reason) {
    /** @type {Record<string, any>} */
    const payload = { participant_id: participantId };
    if (reason) payload.reason = reason;
    return this.request("refuse", payload);
  }

  /**
   * Let a party's waiting second device take its place; its first device is closed.
   * @param {string} participantId
   */
  admitDevice(participantId) {
    return this.request("admit_device", { participant_id: participantId });
  }

  /**
   * @param {string} participantId
   * @param {string} [reason] shown to the waiting device
   */
  refuseDevice(participantId, reason) {
    /** @type {Record<string, any>} */
    const payload = { participant_id: participantId };
    if (reason) payload.reason = reason;
    return this.request("refuse_device", payload);
  }

  /** @param {string} participantId */
  returnToLobby(participantId) {
    return this.request("return_to_lobby", { participant_id: participantId });
  }

  /** send_chat: resolves with {seq, sent_at}. `content` is the text (a room that is not end-to-end
   * encrypted) or the encrypted message {ciphertext, kid, channel} (docs/protocol.md, "End-to-end encryption").
   *
   * @param {string | {ciphertext: string, kid: number, channel: string}} content
   * @returns {Promise<{seq: number, sent_at: string} & Record<string, any>>}
   */
  sendChat(content) {
    return this.request("send_chat", typeof content === "string" ? { text: content } : content);
  }

  /** file_key: resolves with {index}.
   * @param {{channel: string, epoch: number, kid: number, recipients: string[], sealed: string}} payload
   */
  fileKey(payload) {
    return this.request("file_key", payload);
  }

  /** share_keys: resolves with {delivered: [participant_id…]}.
   * @param {{channel: string, epoch: number, kid: number, keys: {participant_id: string, wrapped: string}[]}} payload
   */
  shareKeys(payload) {
    return this.request("share_keys", payload);
  }

  /**
   * chat_history: resolves with {messages}.
   * @returns {Promise<{messages?: import("./types.js").ChatMessage[]} & Record<string, any>>}
   */
  chatHistory() {
    return this.request("chat_history", {});
  }

  /** @param {boolean} active */
  typing(active) {
    return this.request("typing", { active: Boolean(active) });
  }

  /** @param {{audio: boolean, video: boolean}} state */
  mediaState({ audio, video }) {
    return this.request("media_state", { audio: Boolean(audio), video: Boolean(video) });
  }

  /** signal: kind is offer | answer | ice_candidate.
   *
   * @param {string} to participant_id
   * @param {SignalKind} kind
   * @param {Record<string, any>} payload
   */
  signal(to, kind, payload) {
    return this.request("signal", { to, kind, payload });
  }

  /** publish_media: our offer to the media server; resolves with `{answer}`.
   *
   * @param {{type: string, sdp: string}} offer
   * @returns {Promise<{answer: {type: "answer", sdp: string}}>}
   */
  publishMedia(offer) {
    return this.request("publish_media", { offer: { type: offer.type, sdp: offer.sdp } });
  }

  /** answer_media: our answer to the last media_offer.
   *
   * @param {{type: string, sdp: string}} answer
   */
  answerMedia(answer) {
    return this.request("answer_media", { answer: { type: answer.type, sdp: answer.sdp } });
  }

  /** media_candidate: an ICE candidate of our up (publish) or down (subscribe) connection.
   *
   * @param {"publish" | "subscribe"} target
   * @param {Record<string, any>} candidate
   */
  mediaCandidate(target, candidate) {
    return this.request("media_candidate", { target, candidate });
  }

  /** media_layout: the size of each remote tile, so each video comes in the layer it needs.
   *
   * @param {{participant_id: string, width: number, height: number}[]} feeds
   */
  mediaLayout(feeds) {
    return this.request("media_layout", { feeds });
  }

  /**
   * @param {string} participantId
   * @param {boolean} muted
   */
  muteChat(participantId, muted) {
    return this.request("mute_chat", { participant_id: participantId, muted: Boolean(muted) });
  }

  /** request_mute_media: `true` asks the participant to turn that medium off.
   *
   * @param {string} participantId
   * @param {{audio?: boolean, video?: boolean}} [media]
   */
  requestMuteMedia(participantId, { audio = false, video = false } = {}) {
    return this.request("request_mute_media", {
      participant_id: participantId,
      audio: Boolean(audio),
      video: Boolean(video),
    });
  }

  /**
   * @param {string} participantId
   * @param {string} [reason] shown to the participant
   */
  removeParticipant(participantId, reason) {
    /** @type {Record<string, any>} */
    const payload = { participant_id: participantId };
    if (reason) payload.reason = reason;
    return this.request("remove_participant", payload);
  }

  /** @param {boolean} locked */
  lockRoom(locked) {
    return this.request("lock_room", { locked: Boolean(locked) });
  }

  endSession() {
    return this.request("end_session", {});
  }

  /** @param {number} seq */
  deleteMessage(seq) {
    return this.request("delete_message", { seq });
  }

  /** @param {string} participantId */
  openCaucus(participantId) {
    return this.request("open_caucus", { participant_id: participantId });
  }

  closeCaucus() {
    return this.request("close_caucus", {});
  }

  /** @param {string} streamId the id of the MediaStream carrying the screen */
  startScreenShare(streamId) {
    return this.request("start_screen_share", { stream_id: streamId });
  }

  /** @param {string} [participantId] another's share (the mediator only); absent: our own */
  stopScreenShare(participantId) {
    return this.request("stop_screen_share", participantId ? { participant_id: participantId } : {});
  }

  /** @param {boolean} raised */
  raiseHand(raised) {
    return this.request("raise_hand", { raised: Boolean(raised) });
  }

  /** @param {string} participantId */
  lowerHand(participantId) {
    return this.request("lower_hand", { participant_id: participantId });
  }

  /**
   * give_consent: `noticeSha256` is the sha256 of the recording notice shown (join result); `proof` the
   * party's possession proof for this act (src/lib/possession.js; docs/protocol.md, "Possession proofs").
   * @param {string} noticeSha256
   * @param {import("../possession.js").Proof} proof
   */
  giveConsent(noticeSha256, proof) {
    return this.request("give_consent", { notice_sha256: noticeSha256, proof });
  }

  /**
   * withdraw_consent, with the party's possession proof for this act.
   * @param {import("../possession.js").Proof} proof
   */
  withdrawConsent(proof) {
    return this.request("withdraw_consent", { proof });
  }

  startRecording() {
    return this.request("start_recording", {});
  }

  stopRecording() {
    return this.request("stop_recording", {});
  }
}
