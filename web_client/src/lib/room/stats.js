// What a connection's getStats() says about the people on it: how loud they are (the active speaker)
// and how well the media flow (the network-quality indicator). Pure functions over the stats the
// browser gives (W3C webrtc-stats); the page polls (../../ui/room/network.js). No DOM here.

/**
 * @typedef {object} Counters cumulative counters of the last reading, to measure the next interval
 * @property {number} lost inbound packets lost
 * @property {number} received inbound packets received
 * @property {number} dropped inbound video frames dropped
 * @property {number} frames inbound video frames received
 * @property {number} energy inbound audio totalAudioEnergy
 * @property {number} duration inbound audio totalSamplesDuration
 *
 * @typedef {object} Reading One connection over one interval.
 * @property {number | null} level inbound audio level 0–1 (null: no audio received)
 * @property {number | null} rtt seconds, the selected candidate pair's or the remote's report
 * @property {number | null} loss fraction of packets lost in the interval, inbound or as the remote reports ours
 * @property {number | null} outgoingBitrate the available outgoing bitrate, bits per second
 * @property {number | null} dropped fraction of inbound video frames dropped in the interval
 * @property {number | null} sent the level of the microphone we send (media-source), 0–1
 * @property {Counters} counters
 *
 * @typedef {"good" | "fair" | "poor" | "unknown"} Quality
 */

/** @type {Counters} */
const ZERO = Object.freeze({ lost: 0, received: 0, dropped: 0, frames: 0, energy: 0, duration: 0 });

/**
 * @param {unknown} value
 * @returns {number | null}
 */
function num(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/**
 * A change over the interval; null when the counter did not move (or went back: a new stream).
 * @param {number} now
 * @param {number} before
 */
function delta(now, before) {
  return now > before ? now - before : 0;
}

/**
 * Read one connection's stats report against the previous reading's counters.
 * @param {Iterable<any> | {forEach: (fn: (stat: any) => void) => void}} report an RTCStatsReport (or its values)
 * @param {Counters | null} [previous]
 * @returns {Reading}
 */
export function readStats(report, previous = null) {
  const before = previous || ZERO;
  /** @type {any[]} */
  const stats = [];
  if (report && typeof (/** @type {any} */ (report).forEach) === "function") {
    /** @type {any} */ (report).forEach((/** @type {any} */ stat) => stats.push(stat));
  } else if (report) {
    for (const stat of /** @type {Iterable<any>} */ (report)) stats.push(stat);
  }
  const counters = { ...ZERO };
  let level = /** @type {number | null} */ (null);
  let rtt = /** @type {number | null} */ (null);
  let outgoingBitrate = /** @type {number | null} */ (null);
  let remoteLoss = /** @type {number | null} */ (null);
  let audioSeen = false;
  let sent = /** @type {number | null} */ (null);
  for (const stat of stats) {
    if (!stat || typeof stat !== "object") continue;
    if (stat.type === "candidate-pair" && (stat.nominated || stat.selected) && stat.state === "succeeded") {
      rtt = num(stat.currentRoundTripTime) ?? rtt;
      outgoingBitrate = num(stat.availableOutgoingBitrate) ?? outgoingBitrate;
    } else if (stat.type === "inbound-rtp") {
      counters.lost += Math.max(0, num(stat.packetsLost) ?? 0);
      counters.received += num(stat.packetsReceived) ?? 0;
      if (stat.kind === "audio") {
        audioSeen = true;
        counters.energy += num(stat.totalAudioEnergy) ?? 0;
        counters.duration += num(stat.totalSamplesDuration) ?? 0;
        level = Math.max(level ?? 0, num(stat.audioLevel) ?? 0);
      } else if (stat.kind === "video") {
        counters.dropped += num(stat.framesDropped) ?? 0;
        counters.frames += num(stat.framesReceived) ?? 0;
      }
    } else if (stat.type === "media-source" && stat.kind === "audio") {
      sent = Math.max(sent ?? 0, num(stat.audioLevel) ?? 0);
    } else if (stat.type === "remote-inbound-rtp") {
      const fraction = num(stat.fractionLost);
      if (fraction !== null) remoteLoss = Math.max(remoteLoss ?? 0, fraction);
      if (rtt === null) rtt = num(stat.roundTripTime);
    }
  }
  // The mean power of the interval: a short sound between two readings still counts.
  const seconds = delta(counters.duration, before.duration);
  if (seconds > 0) level = Math.max(level ?? 0, Math.sqrt(delta(counters.energy, before.energy) / seconds));
  const lost = delta(counters.lost, before.lost);
  const received = delta(counters.received, before.received);
  const inboundLoss = lost + received > 0 ? lost / (lost + received) : null;
  const frames = delta(counters.frames, before.frames);
  const dropped = frames > 0 ? Math.min(1, delta(counters.dropped, before.dropped) / frames) : null;
  const loss = inboundLoss === null ? remoteLoss : remoteLoss === null ? inboundLoss : Math.max(inboundLoss, remoteLoss);
  return { level: audioSeen ? level ?? 0 : null, rtt, loss, outgoingBitrate, dropped, sent, counters };
}

/**
 * The audio level of each inbound audio stream by its m-line's mid (a media server's one connection carries
 * everyone: ../room/sfu.js knows whose each mid is).
 * @param {{forEach: (fn: (stat: any) => void) => void}} report
 * @returns {Map<string, number>}
 */
export function levelsByMid(report) {
  /** @type {Map<string, number>} */
  const levels = new Map();
  report.forEach((/** @type {any} */ stat) => {
    if (stat && stat.type === "inbound-rtp" && stat.kind === "audio" && typeof stat.mid === "string") {
      levels.set(stat.mid, num(stat.audioLevel) ?? 0);
    }
  });
  return levels;
}

/**
 * The quality of a connection from its reading: "poor" past any of the hard limits, "fair" past a soft one,
 * "good" otherwise; "unknown" before anything was measured.
 * @param {Pick<Reading, "rtt" | "loss" | "outgoingBitrate" | "dropped">} reading
 * @returns {Quality}
 */
export function quality({ rtt, loss, outgoingBitrate, dropped }) {
  if (rtt === null && loss === null && outgoingBitrate === null && dropped === null) return "unknown";
  const past = (/** @type {number | null} */ value, /** @type {number} */ limit) => value !== null && value > limit;
  const under = (/** @type {number | null} */ value, /** @type {number} */ limit) => value !== null && value < limit;
  if (past(rtt, 0.5) || past(loss, 0.08) || under(outgoingBitrate, 150_000) || past(dropped, 0.25)) return "poor";
  if (past(rtt, 0.25) || past(loss, 0.02) || under(outgoingBitrate, 500_000) || past(dropped, 0.08)) return "fair";
  return "good";
}

/** @type {Record<Quality, number>} */
const RANK = { unknown: 3, good: 2, fair: 1, poor: 0 };

/**
 * The worse of two qualities ("unknown" yields to any measured one).
 * @param {Quality} a
 * @param {Quality} b
 * @returns {Quality}
 */
export function worse(a, b) {
  return RANK[b] < RANK[a] ? b : a;
}

/**
 * Who is speaking, with hysteresis: someone starts speaking at `on` and stops only after staying
 * under `off` for `holdMs`; the highlighted speaker changes only when it stops or someone else has
 * been louder for `switchMs`. Times in milliseconds, levels 0–1.
 */
export class SpeakerDetector {
  constructor({ on = 0.04, off = 0.015, holdMs = 1500, switchMs = 1000 } = {}) {
    this.on = on;
    this.off = off;
    this.holdMs = holdMs;
    this.switchMs = switchMs;
    /** @type {Map<string, {speaking: boolean, quietSince: number | null, louderSince: number | null, level: number}>} */
    this.people = new Map();
    /** @type {string | null} */
    this.active = null;
  }

  /**
   * Take the latest level of each participant (those absent are silent); return the active speaker.
   * @param {Map<string, number>} levels
   * @param {number} now
   * @returns {string | null}
   */
  update(levels, now) {
    for (const id of this.people.keys()) if (!levels.has(id)) this.people.delete(id);
    for (const [id, level] of levels) {
      const person = this.people.get(id) || { speaking: false, quietSince: null, louderSince: null, level: 0 };
      person.level = level;
      if (level >= this.on) {
        person.speaking = true;
        person.quietSince = null;
      } else if (person.speaking && level < this.off) {
        person.quietSince = person.quietSince ?? now;
        if (now - person.quietSince >= this.holdMs) person.speaking = false;
      } else if (person.speaking) {
        person.quietSince = null;
      }
      this.people.set(id, person);
    }
    const current = this.active ? this.people.get(this.active) : undefined;
    const speaking = [...this.people.entries()].filter(([, p]) => p.speaking).sort((a, b) => b[1].level - a[1].level);
    if (!current || !current.speaking) {
      this.active = speaking.length ? speaking[0][0] : null;
    } else {
      for (const [id, person] of speaking) {
        if (id === this.active) continue;
        if (person.level > current.level && person.level >= this.on) {
          person.louderSince = person.louderSince ?? now;
          if (now - person.louderSince >= this.switchMs) {
            this.active = id;
            break;
          }
        } else {
          person.louderSince = null;
        }
      }
    }
    for (const [id, person] of this.people) if (id === this.active) person.louderSince = null;
    return this.active;
  }
}
