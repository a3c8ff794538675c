// Spec: docs/records.md ("Recording gaps", "Seekable recordings", "Review player").
// The review player's logic: every participant's recording placed on one session clock, the
// transcript's gaps and each participant's presence laid out on it, which transcript line is
// current, and how far a video may drift from the master clock before it is corrected. No DOM here.
//
// The session clock starts at the transcript's `started_at`. A recording file's time zero is its
// recording's `clock_zero_ms` (epoch ms, in the audit entry of every segment); its blocks carry
// times on that clock (`media`), so file time f is session time (clock_zero_ms - origin) / 1000 + f.

import { parseTime } from "./transcript.js";

/** @typedef {import("./transcript.js").Transcript} Transcript */
/** @typedef {import("./open.js").Recording} Recording */

// A hole in a file's media shorter than this is still presence (the recorder's MEDIA_HOLE_MS).
export const MEDIA_HOLE_SECONDS = 0.5;
// Drift a video may keep from the master clock: beyond SEEK_DRIFT it is sought, beyond TRIM_DRIFT
// its rate is nudged (at most RATE_NUDGE either way) so that it catches up without a jump.
export const SEEK_DRIFT = 0.35;
export const TRIM_DRIFT = 0.04;
export const RATE_NUDGE = 0.1;

/**
 * @typedef {object} Span The session clock: its origin (epoch ms) and length (s).
 * @property {number} originMs
 * @property {number} duration
 *
 * @typedef {object} Track One recording file (a participant's part) on the session clock.
 * @property {string} id the recording's group, as JSON
 * @property {string} participantId
 * @property {number} part
 * @property {number} offset session time (s) of the file's time zero
 * @property {boolean} placed whether the records gave its time zero (else it is put at 0)
 * @property {[number, number][]} presence session-time ranges (s) in which the file holds media
 *
 * @typedef {object} Mark A range drawn on a lane: session seconds and its place as fractions of the span.
 * @property {number} from
 * @property {number} to
 * @property {number} left
 * @property {number} width
 *
 * @typedef {Mark & {participantId: string | null, part: number | null, reason: string}} GapMark
 *
 * @typedef {object} Lane One participant's row on the timeline.
 * @property {string} participantId
 * @property {Mark[]} presence
 * @property {GapMark[]} gaps
 */

/** @param {number} value @param {number} low @param {number} high */
const clamp = (value, low, high) => Math.min(high, Math.max(low, value));

/**
 * The session clock of a transcript and its recordings: from the transcript's start (or the
 * earliest media, if earlier) to its end (or the last media or event, if later).
 * @param {Transcript | null} doc
 * @param {Recording[]} recordings
 * @returns {Span}
 */
export function sessionSpan(doc, recordings) {
  const starts = [];
  const ends = [];
  const started = doc ? parseTime(/** @type {any} */ (doc).started_at) : null;
  const ended = doc ? parseTime(/** @type {any} */ (doc).ended_at) : null;
  if (started) starts.push(started.getTime());
  if (ended) ends.push(ended.getTime());
  for (const event of doc?.events ?? []) {
    const at = parseTime(event.at);
    if (at) ends.push(at.getTime());
    const to = event.type === "recording_gap" ? parseTime(event.to) : null;
    if (to) ends.push(to.getTime());
  }
  for (const recording of recordings) {
    if (recording.clockZeroMs === null) continue;
    for (const [first, last] of recording.media) {
      starts.push(recording.clockZeroMs + first);
      ends.push(recording.clockZeroMs + last);
    }
  }
  if (!starts.length && !ends.length) return { originMs: 0, duration: 0 };
  const originMs = starts.length ? Math.min(...starts) : Math.min(...ends);
  const endMs = Math.max(originMs, ...ends);
  return { originMs, duration: (endMs - originMs) / 1000 };
}

/**
 * Ranges (s) merged where they touch or lie closer than `hole`.
 * @param {[number, number][]} ranges
 * @param {number} [hole]
 * @returns {[number, number][]}
 */
export function mergeRanges(ranges, hole = MEDIA_HOLE_SECONDS) {
  /** @type {[number, number][]} */
  const merged = [];
  for (const [from, to] of [...ranges].sort((a, b) => a[0] - b[0] || a[1] - b[1])) {
    const last = merged[merged.length - 1];
    if (last && from - last[1] <= hole) last[1] = Math.max(last[1], to);
    else merged.push([from, to]);
  }
  return merged;
}

/**
 * Every verified recording as a track on the session clock, in participant then part order.
 * @param {Recording[]} recordings
 * @param {Span} span
 * @returns {Track[]}
 */
export function playerTracks(recordings, span) {
  return recordings.filter((r) => r.participantId !== null && r.part !== null).map((recording) => {
    const placed = recording.clockZeroMs !== null;
    const offset = placed ? (/** @type {number} */ (recording.clockZeroMs) - span.originMs) / 1000 : 0;
    /** @type {[number, number][]} */
    const presence = mergeRanges(recording.media.map(([first, last]) => [offset + first / 1000, offset + last / 1000]));
    return { id: JSON.stringify(recording.group), participantId: /** @type {string} */ (recording.participantId),
      part: /** @type {number} */ (recording.part), offset, placed, presence };
  }).sort((a, b) => (a.participantId < b.participantId ? -1 : a.participantId > b.participantId ? 1 : a.part - b.part));
}

/**
 * A track whose records hold no media times (entries written before they were filed) is present
 * for as long as its file plays, once the browser knows that; a track that has them is unchanged.
 * @param {Track} track @param {number} duration the file's, in seconds
 * @returns {Track}
 */
export function withDuration(track, duration) {
  if (track.presence.length || !(duration > 0)) return track;
  return { ...track, presence: [[track.offset, track.offset + duration]] };
}

/**
 * A range's place on a span, clamped to it.
 * @param {number} from @param {number} to @param {Span} span
 * @returns {Mark}
 */
export function mark(from, to, span) {
  const length = span.duration > 0 ? span.duration : 1;
  const left = clamp(from / length, 0, 1);
  const right = clamp(to / length, left, 1);
  return { from, to, left, width: right - left };
}

/**
 * The transcript's `recording_gap` events on the session clock; an event without readable times is left out.
 * @param {Transcript | null} doc
 * @param {Span} span
 * @returns {GapMark[]}
 */
export function gapMarks(doc, span) {
  /** @type {GapMark[]} */
  const marks = [];
  for (const event of doc?.events ?? []) {
    if (event.type !== "recording_gap") continue;
    const from = parseTime(event.from);
    const to = parseTime(event.to);
    if (!from || !to || to < from) continue;
    marks.push({ ...mark((from.getTime() - span.originMs) / 1000, (to.getTime() - span.originMs) / 1000, span),
      participantId: typeof event.participant_id === "string" ? event.participant_id : null,
      part: Number.isSafeInteger(event.part) ? event.part : null,
      reason: typeof event.reason === "string" ? event.reason : "" });
  }
  return marks;
}

/**
 * One lane per participant (those recorded, then those only named by a gap), with their presence and gaps.
 * @param {Track[]} tracks
 * @param {GapMark[]} gaps
 * @param {Span} span
 * @returns {Lane[]}
 */
export function lanes(tracks, gaps, span) {
  /** @type {Map<string, Lane>} */
  const byParticipant = new Map();
  const lane = (/** @type {string} */ participantId) => {
    if (!byParticipant.has(participantId)) byParticipant.set(participantId, { participantId, presence: [], gaps: [] });
    return /** @type {Lane} */ (byParticipant.get(participantId));
  };
  for (const track of tracks) {
    lane(track.participantId).presence.push(...track.presence.map(([from, to]) => mark(from, to, span)));
  }
  for (const gap of gaps) if (gap.participantId !== null) lane(gap.participantId).gaps.push(gap);
  return [...byParticipant.values()];
}

/**
 * The track of a participant's to show at session time `t`: the one whose media spans `t` (holes
 * included; the later part where two overlap), else null (nothing of them was recorded then).
 * @param {Track[]} tracks one participant's, in part order
 * @param {number} t
 * @returns {Track | null}
 */
export function activeTrack(tracks, t) {
  for (const track of [...tracks].reverse()) {
    const first = track.presence[0];
    const last = track.presence[track.presence.length - 1];
    if (first && last && t >= first[0] && t <= last[1] + MEDIA_HOLE_SECONDS) return track;
  }
  return null;
}

/**
 * Whether a track holds media at session time `t` (not in a hole of it).
 * @param {Track} track @param {number} t
 */
export function holdsMedia(track, t) {
  return track.presence.some(([from, to]) => t >= from && t <= to + MEDIA_HOLE_SECONDS);
}

/**
 * The gap a participant is in at session time `t`, if any.
 * @param {GapMark[]} gaps @param {string} participantId @param {number} t
 * @returns {GapMark | null}
 */
export function gapAt(gaps, participantId, t) {
  return gaps.find((g) => g.participantId === participantId && t >= g.from && t < g.to) ?? null;
}

/**
 * Session time (s) of each transcript line (null when its time is unreadable).
 * @param {{at: Date | null}[]} entries
 * @param {Span} span
 * @returns {(number | null)[]}
 */
export function lineTimes(entries, span) {
  return entries.map((entry) => (entry.at ? (entry.at.getTime() - span.originMs) / 1000 : null));
}

/**
 * The current line at session time `t`: the last line at or before it, -1 before the first.
 * Lines without a time are never current.
 * @param {(number | null)[]} times
 * @param {number} t
 */
export function currentLine(times, t) {
  let current = -1;
  let latest = -Infinity;
  times.forEach((time, index) => {
    if (time !== null && time <= t + 0.001 && time >= latest) {
      current = index;
      latest = time;
    }
  });
  return current;
}

/**
 * What to do with a playing video whose time is `actual` when the master clock says `expected`:
 * seek it (a large drift), or play it slightly faster or slower until it catches up.
 * @param {number} actual
 * @param {number} expected
 * @returns {{seek: number | null, rate: number}}
 */
export function correction(actual, expected) {
  const drift = actual - expected;
  if (!Number.isFinite(drift) || Math.abs(drift) > SEEK_DRIFT) return { seek: expected, rate: 1 };
  if (Math.abs(drift) <= TRIM_DRIFT) return { seek: null, rate: 1 };
  return { seek: null, rate: clamp(1 - drift, 1 - RATE_NUDGE, 1 + RATE_NUDGE) };
}

/** Seconds as "m:ss" (or "h:mm:ss"). @param {number} seconds */
export function clockText(seconds) {
  const total = Math.max(0, Math.floor(Number.isFinite(seconds) ? seconds : 0));
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  return hours ? `${hours}:${pad(minutes)}:${pad(total % 60)}` : `${minutes}:${pad(total % 60)}`;
}

/**
 * The master clock every video follows: session time advancing with `now()` (ms) while playing,
 * stopping at the end of the span.
 */
export class MasterClock {
  /** @param {number} duration @param {() => number} [now] */
  constructor(duration, now = () => performance.now()) {
    this.duration = Math.max(0, duration);
    this.now = now;
    this.playing = false;
    this.anchorTime = 0; // session time at anchorNow
    this.anchorNow = now();
  }

  /** The session time now. */
  time() {
    if (!this.playing) return this.anchorTime;
    const t = this.anchorTime + (this.now() - this.anchorNow) / 1000;
    if (t >= this.duration) {
      this.playing = false;
      this.anchorTime = this.duration;
      this.anchorNow = this.now();
    }
    return Math.min(t, this.duration);
  }

  play() {
    if (this.playing) return;
    if (this.anchorTime >= this.duration) this.anchorTime = 0; // played to the end: start over
    this.anchorNow = this.now();
    this.playing = true;
  }

  pause() {
    this.anchorTime = this.time();
    this.anchorNow = this.now();
    this.playing = false;
  }

  /** @param {number} t */
  seek(t) {
    this.anchorTime = clamp(Number.isFinite(t) ? t : 0, 0, this.duration);
    this.anchorNow = this.now();
  }
}
