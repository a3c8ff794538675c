// Test doubles for the room's socket: a socket.io client socket and an in-memory room server that
// acks requests and relays `signal` between participants; plus waiting helpers.

/** Let queued callbacks (setImmediate / promise jobs / timers of 0 ms) run. */
export async function settle(rounds = 30) {
  for (let i = 0; i < rounds; i += 1) {
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- socket.io ---------------------------------------------------------------------------------------

class Handlers {
  constructor() {
    this.map = new Map();
  }

  on(name, fn) {
    if (!this.map.has(name)) this.map.set(name, []);
    this.map.get(name).push(fn);
    return this;
  }

  fire(name, ...args) {
    for (const fn of this.map.get(name) || []) fn(...args);
  }
}

/** A fake socket.io client Socket. `onEmit(event, payload, ack)` plays the server. */
export class FakeSocket {
  constructor({ url, options, onEmit = null, withTimeoutApi = false } = {}) {
    this.url = url;
    this.options = options;
    this.connected = false;
    this.emitted = [];
    this.onEmit = onEmit;
    this._handlers = new Handlers();
    this._manager = new Handlers();
    this.io = { on: (name, fn) => this._manager.on(name, fn) };
    this.connectCalls = 0;
    this.disconnectCalls = 0;
    if (withTimeoutApi) {
      // socket.io >= 4.4: socket.timeout(ms).emit(event, payload, (err, response) => ...)
      this.timeout = (ms) => ({
        emit: (event, payload, callback) => {
          let done = false;
          const timer = setTimeout(() => {
            done = true;
            callback(new Error("operation has timed out"));
          }, ms);
          this._send(event, payload, (response) => {
            if (done) return;
            clearTimeout(timer);
            callback(null, response);
          });
        },
      });
    }
  }

  on(name, fn) {
    this._handlers.on(name, fn);
    return this;
  }

  emit(event, payload, ack) {
    this._send(event, payload, ack);
    return this;
  }

  _send(event, payload, ack) {
    this.emitted.push({ event, payload });
    if (this.onEmit) this.onEmit(event, payload, ack);
  }

  connect() {
    this.connectCalls += 1;
    return this;
  }

  disconnect() {
    this.disconnectCalls += 1;
    if (this.connected) this.serverDisconnect("io client disconnect");
    return this;
  }

  // server side / network
  serverConnect() {
    this.connected = true;
    this._handlers.fire("connect");
  }

  serverEmit(name, payload) {
    this._handlers.fire(name, payload);
  }

  serverDisconnect(reason = "transport close") {
    this.connected = false;
    this._handlers.fire("disconnect", reason);
  }

  connectError(err) {
    this._handlers.fire("connect_error", err);
  }

  reconnectAttempt(n) {
    this._manager.fire("reconnect_attempt", n);
  }

  sent(event) {
    return this.emitted.filter((e) => e.event === event);
  }
}

/** An `io` function that records its calls and hands out FakeSockets. */
export function fakeIo(socketOptions = {}) {
  const calls = [];
  const io = (url, options) => {
    const socket = new FakeSocket({ url, options, ...socketOptions });
    calls.push({ url, options, socket });
    return socket;
  };
  io.calls = calls;
  io.last = () => calls[calls.length - 1].socket;
  return io;
}

/**
 * An in-memory room server for mesh tests: answers join_room with the configured result, relays
 * `signal` asynchronously (order kept), refuses it with `isolated` between blocked pairs.
 */
export class FakeRoomServer {
  constructor({ mode = "video", iceServers = [{ urls: "stun:stun.example.org:3478" }] } = {}) {
    this.mode = mode;
    this.iceServers = iceServers;
    this.members = new Map(); // pid -> {participant, socket}
    this.blocked = new Set(); // "a|b" pairs
    this.signals = [];
    this.held = null; // deliveries kept back while holding (see hold())
  }

  io(participant) {
    return (url, options) => {
      const socket = new FakeSocket({
        url,
        options,
        onEmit: (event, payload, ack) => this._handle(participant.participant_id, event, payload, ack),
      });
      this.members.set(participant.participant_id, { participant: { connected: true, audio: false, video: false, chat_muted: false, in_caucus: false, ...participant }, socket });
      setImmediate(() => socket.serverConnect());
      return socket;
    };
  }

  socket(pid) {
    return this.members.get(pid).socket;
  }

  roomState() {
    return {
      session_id: "ses_00000000000000000000000000000000",
      mode: this.mode,
      locked: false,
      ended: false,
      mediator_present: true,
      caucus: { active: false },
      participants: [...this.members.values()].map((m) => ({ ...m.participant })),
    };
  }

  block(a, b) {
    this.blocked.add(`${a}|${b}`);
    this.blocked.add(`${b}|${a}`);
  }

  unblockAll() {
    this.blocked.clear();
  }

  /** Send room_state to everyone (after `mutate` changed participants). */
  broadcastState(mutate = null) {
    if (mutate) mutate(this);
    const body = this.roomState();
    for (const { socket } of this.members.values()) {
      if (socket.connected) socket.serverEmit("room_state", body);
    }
  }

  /** Keep relayed signals back (in order) until release(): e.g. to make two offers cross for sure. */
  hold() {
    this.held = this.held || [];
  }

  release() {
    const held = this.held || [];
    this.held = null;
    for (const deliver of held) setImmediate(deliver);
  }

  set(pid, fields) {
    Object.assign(this.members.get(pid).participant, fields);
  }

  _handle(from, event, payload, ack) {
    const reply = (body) => setImmediate(() => ack && ack(body));
    if (event === "join_room") {
      const p = this.members.get(from).participant;
      reply({
        ok: true,
        participant_id: p.participant_id,
        role: p.role,
        name: p.name,
        status: p.status,
        mode: this.mode,
        ice_servers: this.iceServers,
        room: this.roomState(),
      });
    } else if (event === "signal") {
      this.signals.push({ from, ...payload });
      if (this.blocked.has(`${from}|${payload.to}`)) {
        reply({ ok: false, error: "isolated", message: "caucus" });
        return;
      }
      const target = this.members.get(payload.to);
      if (target && target.socket.connected) {
        const deliver = () => target.socket.serverEmit("signal", { from, kind: payload.kind, payload: payload.payload });
        if (this.held) this.held.push(deliver);
        else setImmediate(deliver);
      }
      reply({ ok: true });
    } else {
      reply({ ok: true });
    }
  }
}
