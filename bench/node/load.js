// The load generator of bench/sidebyside.py: socket.io-client speaking docs/protocol.md.
//
//   node load.js plan.json
//
// plan.json: {rooms: [{members: [{url, auth}, ...]}], joinConcurrency, rates: [msgs/s per room],
// stepSeconds, drainSeconds, idleSeconds, stopAtP99Seconds}. The first member of each room is its mediator; the others join the lobby
// and the mediator admits each. Progress goes to stdout as one JSON object a line, so the orchestrator
// can read the server's CPU and memory at each phase:
//   {"event": "staged"}                   before the first connection
//   {"event": "joined", joins, admissions} every room open (seconds, one sample per connection / admission)
//   {"event": "idle_start"}, {"event": "idle_end"}  idleSeconds apart, every socket open, no chat
//   {"event": "step_start", rate}         then, once the step's deliveries settled or the drain ran out:
//   {"event": "step_end", rate, seconds, sent, delivered, lost, latencies, acks, errors}
//   {"event": "done"}
// It then waits for "close" on stdin before disconnecting, so the last memory reading sees every socket.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const { io } = require("socket.io-client");

const NAMESPACE = "/room";
const TIMEOUT_MS = 30000;

const plan = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const now = () => Number(process.hrtime.bigint()) / 1e9;
const say = (event) => process.stdout.write(JSON.stringify(event) + "\n");
const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

// With plan.e2ee every member joins with a device key and sends ciphertext as a browser would (nonce,
// AES-GCM body of the message's length, tag; random bytes: the server checks the shape, never decrypts)
// and deliveries are matched on it: the server's cost per ciphertext message (docs/protocol.md).
const e2eeKey = () => crypto.randomBytes(32).toString("base64url");
const ciphertextOf = (text) => crypto.randomBytes(12 + Buffer.byteLength(text) + 16).toString("base64url");
const idOf = (message) => (plan.e2ee ? message.ciphertext : message.text);

// One step's bookkeeping: message text (or ciphertext) -> [sent at, deliveries still expected].
let meter = null;

function newMeter() {
  return { inFlight: new Map(), latencies: [], acks: [], sent: 0, delivered: 0, errors: {}, settled: null };
}

function errorSeen(code) {
  if (meter) meter.errors[code] = (meter.errors[code] || 0) + 1;
}

class Member {
  constructor(spec) {
    this.spec = spec;
    this.participantId = null;
    this.admitted = null;
    this.kid = crypto.randomInt(2 ** 47);
  }

  async join() {
    const began = now();
    this.socket = io(this.spec.url + NAMESPACE, {
      auth: this.spec.auth, transports: ["websocket"], reconnection: false, forceNew: true, timeout: TIMEOUT_MS,
    });
    this.admitted = new Promise((resolve) => this.socket.once("admitted", () => resolve(now())));
    this.socket.on("chat_message", (message) => this.received(message));
    this.socket.on("error", (data) => errorSeen(String(data && data.code)));
    await new Promise((resolve, reject) => {
      this.socket.once("connect", resolve);
      this.socket.once("connect_error", (err) => reject(new Error(`connect refused: ${err.message}`)));
    });
    const joined = await this.socket.timeout(TIMEOUT_MS).emitWithAck("join_room",
      plan.e2ee ? { public_key: e2eeKey() } : {});
    if (!joined.ok) throw new Error(`join_room refused: ${JSON.stringify(joined)}`);
    this.participantId = joined.participant_id;
    return [now() - began, joined];
  }

  received(message) {
    const at = now();
    if (!meter || message.participant_id === this.participantId) return; // the sender's echo is not a delivery
    const flight = meter.inFlight.get(idOf(message));
    if (!flight) return;
    meter.latencies.push(at - flight[0]);
    meter.delivered += 1;
    flight[1] -= 1;
    if (flight[1] <= 0) meter.inFlight.delete(idOf(message));
    if (meter.inFlight.size === 0 && meter.settled) meter.settled();
  }

  send(plain, others) {
    const step = meter;
    const sentAt = now();
    const text = plan.e2ee ? ciphertextOf(plain) : plain;
    step.inFlight.set(text, [sentAt, others]);
    step.sent += 1;
    const payload = plan.e2ee ? { ciphertext: text, kid: this.kid } : { text };
    this.socket.timeout(TIMEOUT_MS).emit("send_chat", payload, (err, reply) => {
      if (!err && reply && reply.ok) {
        step.acks.push(now() - sentAt);
        return;
      }
      errorSeen(err ? "ack_timeout" : String(reply && reply.error));
      step.inFlight.delete(text); // refused: nobody will receive it
      if (step.inFlight.size === 0 && step.settled) step.settled();
    });
  }
}

async function openRoom(room, joins, admissions) {
  const [mediator, ...parties] = room.members.map((spec) => new Member(spec));
  joins.push((await mediator.join())[0]);
  for (const party of parties) {
    const [took, joined] = await party.join();
    joins.push(took);
    if (joined.status !== "lobby") throw new Error(`a party joined as ${joined.status}, not lobby`);
    const began = now();
    const reply = await mediator.socket.timeout(TIMEOUT_MS).emitWithAck("admit", { participant_id: party.participantId });
    if (!reply.ok) throw new Error(`admit refused: ${JSON.stringify(reply)}`);
    admissions.push((await party.admitted) - began);
  }
  return [mediator, ...parties];
}

async function openAll() {
  const joins = [];
  const admissions = [];
  const rooms = [];
  let next = 0;
  async function worker() {
    while (next < plan.rooms.length) {
      const room = plan.rooms[next++];
      rooms.push(await openRoom(room, joins, admissions));
    }
  }
  await Promise.all(Array.from({ length: Math.min(plan.joinConcurrency, plan.rooms.length) }, worker));
  return { rooms, joins, admissions };
}

// Each room sends `rate` messages a second round robin over its members, rooms out of phase.
async function step(rooms, rate) {
  meter = newMeter();
  const began = now();
  const until = began + plan.stepSeconds;
  const timers = rooms.map((members, index) => new Promise((resolve) => {
    let turn = 0;
    let due = began + (index / rooms.length) / rate;
    const tick = () => {
      if (due >= until) return resolve();
      const sender = members[turn % members.length];
      sender.send(`m${index}.${turn}.${rate}`, members.length - 1);
      turn += 1;
      due += 1 / rate;
      setTimeout(tick, Math.max(0, (due - now()) * 1000));
    };
    setTimeout(tick, Math.max(0, (due - now()) * 1000));
  }));
  await Promise.all(timers);
  const sending = now() - began;
  const step = meter;
  if (step.inFlight.size > 0) {
    await Promise.race([new Promise((resolve) => { step.settled = resolve; }), sleep(plan.drainSeconds)]);
  }
  let lost = 0;
  for (const [, flight] of step.inFlight) lost += flight[1];
  meter = null;
  return { seconds: sending, sent: step.sent, delivered: step.delivered, lost, latencies: step.latencies,
           acks: step.acks, errors: step.errors };
}

function p99(values) {
  if (!values.length) return Infinity;
  const ordered = [...values].sort((a, b) => a - b);
  return ordered[Math.min(ordered.length - 1, Math.max(0, Math.ceil(0.99 * ordered.length) - 1))];
}

async function main() {
  say({ event: "staged" });
  const { rooms, joins, admissions } = await openAll();
  say({ event: "joined", joins, admissions });
  // The server settles, then idles with every socket open: the orchestrator reads its memory, and its CPU
  // over the idle wait (timers, keep-alives), to tell the chat's own cost from the background.
  await sleep(1);
  say({ event: "idle_start" });
  await sleep(plan.idleSeconds);
  say({ event: "idle_end" });
  for (const rate of plan.rates) {
    say({ event: "step_start", rate });
    const result = await step(rooms, rate);
    say({ event: "step_end", rate, ...result });
    // Past its ceiling a server queues: the next, higher rate would only measure the backlog.
    if (result.lost || Object.keys(result.errors).length || p99(result.latencies) >= plan.stopAtP99Seconds) break;
  }
  say({ event: "done" });
  await new Promise((resolve) => {
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (chunk) => { if (chunk.includes("close")) resolve(); });
    process.stdin.on("end", resolve);
  });
  for (const members of rooms) for (const member of members) member.socket.disconnect();
}

main().then(() => process.exit(0), (err) => {
  say({ event: "failed", error: String(err && err.stack || err) });
  process.exit(1);
});
