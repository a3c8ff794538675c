// The review player: every participant's decrypted recording on one master timeline (the session
// clock), beside the transcript. One master clock drives every video; a tick corrects each video's
// drift from it; the lanes show who was recorded when and every gap the transcript names; a
// transcript line seeks everything to its time and the line of the moment is highlighted.
// The logic (clock mapping, layout, current line, drift) is in lib/compliance/player.js.
import {
  MasterClock, activeTrack, clockText, withDuration, correction, currentLine, gapAt, gapMarks, holdsMedia, lanes, lineTimes,
  playerTracks, sessionSpan,
} from "../../lib/compliance/player.js";
import { h } from "../dom.js";
import { state } from "./context.js";
import { personById } from "./format.js";
import { videoFor } from "./opening.js";

const TICK_MS = 100;
// A paused video further than this from the clock is moved to it.
const PAUSED_SLACK = 0.05;

/**
 * The player of the opened session, kept across re-renders (a language switch keeps its place).
 * @type {{sessionId: string, clock: MasterClock, timer: number | null, review: Review | null} | null}
 */
let current = null;

/** Stop the player (results closed or replaced): its timer, and every video it drives. */
export function stopPlayer() {
  if (current?.timer) clearInterval(current.timer);
  current?.review?.pauseAll();
  current = null;
}

class Review {
  /**
   * @param {any} report @param {string} sessionId @param {any} doc @param {any} people
   */
  constructor(report, sessionId, doc, people) {
    const recordings = [...report.recordings.values()].filter((r) => r.sessionId === sessionId);
    this.span = sessionSpan(doc, recordings);
    this.tracks = playerTracks(recordings, this.span);
    this.gaps = gapMarks(doc, this.span);
    this.lanes = lanes(this.tracks, this.gaps, this.span);
    this.people = people;
    this.byId = new Map(recordings.map((r) => [JSON.stringify(r.group), r]));
    /** @type {{element: HTMLElement, time: number}[]} */
    this.lines = [];
    this.currentIndex = -1;
    this.dragging = false;
    if (current?.sessionId === sessionId) {
      current.clock.duration = this.span.duration;
    } else {
      stopPlayer();
      current = { sessionId, clock: new MasterClock(this.span.duration), timer: null, review: null };
    }
    if (current.timer) clearInterval(current.timer);
    current.review = this;
    this.clock = current.clock;
    this.tiles = this.buildTiles();
  }

  buildTiles() {
    return this.lanes.filter((lane) => this.tracks.some((t) => t.participantId === lane.participantId)).map((lane) => {
      const tracks = this.tracks.filter((t) => t.participantId === lane.participantId);
      const entries = tracks.map((track) => {
        const entry = videoFor(this.byId.get(track.id));
        entry.element.controls = false;
        entry.element.dataset.offset = String(track.offset);
        entry.element.dataset.placed = String(track.placed);
        return { track, entry };
      });
      const placeholder = h("div", { class: "player-placeholder", testid: "player-placeholder" });
      const label = personById(lane.participantId, this.people);
      const element = h("figure", { class: "player-tile", testid: "player-tile",
        dataset: { participantId: lane.participantId } },
      h("div", { class: "player-screen" }, entries.map(({ entry }) => entry.element), placeholder),
      h("figcaption", { class: "player-name", text: label }));
      return { participantId: lane.participantId, tracks, entries, placeholder, element };
    });
  }

  pauseAll() {
    for (const tile of this.tiles) for (const { entry } of tile.entries) entry.element.pause();
  }

  /** @param {number} t */
  seek(t) {
    this.clock.seek(t);
    this.tick();
  }

  toggle() {
    if (this.clock.playing) this.clock.pause();
    else this.clock.play();
    this.tick();
  }

  /** Bring every video, the lanes, the controls and the transcript to the clock's time. */
  tick() {
    const { t } = state;
    const now = this.clock.time();
    const playing = this.clock.playing;
    for (const tile of this.tiles) {
      tile.entries.forEach((item, i) => {
        if (item.entry.duration !== null && !item.track.presence.length) {
          item.track = withDuration(item.track, item.entry.duration);
          tile.tracks[i] = item.track;
        }
      });
      const track = activeTrack(tile.tracks, now);
      let shown = false;
      for (const { track: own, entry } of tile.entries) {
        const video = entry.element;
        const active = own === track && !entry.error;
        const expected = now - own.offset;
        const ready = entry.duration !== null; // not while the page still learns its duration
        if (!active || !ready || expected > /** @type {number} */ (entry.duration) + 0.5) {
          if (!video.paused) video.pause();
          video.hidden = true;
          continue;
        }
        video.hidden = false;
        shown = holdsMedia(own, now);
        if (playing) {
          if (video.paused) {
            video.currentTime = Math.max(0, expected);
            video.play().catch(() => {}); // refused or interrupted: the next tick tries again
          } else if (!video.seeking) {
            const fix = correction(video.currentTime, expected);
            if (fix.seek !== null) video.currentTime = Math.max(0, fix.seek);
            video.playbackRate = fix.rate;
          }
        } else {
          if (!video.paused) video.pause();
          video.playbackRate = 1;
          if (!video.seeking && Math.abs(video.currentTime - expected) > PAUSED_SLACK) video.currentTime = Math.max(0, expected);
        }
      }
      const gap = gapAt(this.gaps, tile.participantId, now);
      tile.placeholder.hidden = shown;
      tile.element.dataset.state = shown ? "media" : gap ? "gap" : "absent";
      tile.placeholder.textContent = gap
        ? t("player.inGap", { reason: t.has(`gap.${gap.reason}`) ? t(`gap.${gap.reason}`) : gap.reason })
        : t("player.noMedia");
    }
    this.renderPosition(now, playing);
  }

  /** @param {number} now @param {boolean} playing */
  renderPosition(now, playing) {
    const { t } = state;
    const fraction = this.span.duration > 0 ? now / this.span.duration : 0;
    for (const cursor of this.cursors ?? []) cursor.style.left = `${(fraction * 100).toFixed(3)}%`;
    if (this.time) this.time.textContent = t("player.time", { at: clockText(now), total: clockText(this.span.duration) });
    if (this.slider && !this.dragging) {
      this.slider.value = String(now);
      this.slider.setAttribute("aria-valuetext", clockText(now));
    }
    if (this.button) {
      this.button.textContent = playing ? t("player.pause") : t("player.play");
      this.button.setAttribute("aria-pressed", String(playing));
      this.button.dataset.state = playing ? "playing" : "paused";
    }
    const index = currentLine(this.lines.map((l) => l.time), now);
    if (index !== this.currentIndex) {
      const before = this.lines[this.currentIndex]?.element;
      if (before) {
        before.classList.remove("is-current");
        before.removeAttribute("aria-current");
      }
      const line = this.lines[index]?.element;
      if (line) {
        line.classList.add("is-current");
        line.setAttribute("aria-current", "time");
        if (playing) scrollWithin(line);
      }
      this.currentIndex = index;
    }
  }

  /** The transcript's line for `entry`: clicking it (or its time button) seeks everything there. */
  line(element, entry) {
    const [time] = lineTimes([entry], this.span);
    if (time === null) return null;
    element.dataset.sessionTime = String(time);
    element.classList.add("is-seekable");
    element.addEventListener("click", (event) => {
      if (event.target instanceof HTMLElement && event.target.closest("a, details, summary")) return;
      this.seek(time);
    });
    this.lines.push({ element, time });
    return h("button", { type: "button", class: "seek-line", testid: "seek-line",
      "aria-label": state.t("player.seekTo", { at: clockText(time) }), text: clockText(time),
      on: { click: (event) => {
        event.stopPropagation();
        this.seek(time);
      } } });
  }

  /** The player's section: tiles, controls and lanes. */
  section() {
    const { t } = state;
    this.button = h("button", { type: "button", class: "button button-primary", testid: "player-toggle",
      on: { click: () => this.toggle() } });
    this.time = h("output", { class: "player-time mono", testid: "player-time", "aria-live": "off" });
    this.slider = h("input", { type: "range", class: "player-seek", testid: "player-seek", min: "0",
      max: String(this.span.duration), step: "0.1", value: "0", "aria-label": t("player.position"),
      on: {
        input: () => {
          this.dragging = true;
          this.seek(Number(this.slider.value));
        },
        change: () => {
          this.dragging = false;
          this.seek(Number(this.slider.value));
        },
      } });
    this.cursors = [];
    const rows = this.lanes.map((lane) => {
      const cursor = h("span", { class: "lane-cursor", "aria-hidden": "true" });
      this.cursors.push(cursor);
      const bar = h("div", { class: "lane-bar", testid: "player-lane-bar" },
        lane.presence.map((m) => placed(h("span", { class: "lane-presence", testid: "player-presence" }), m)),
        lane.gaps.map((gap) => {
          const reason = t.has(`gap.${gap.reason}`) ? t(`gap.${gap.reason}`) : gap.reason;
          const words = t("player.gap", { from: clockText(gap.from), to: clockText(gap.to), reason });
          return placed(h("span", { class: "lane-gap", testid: "player-gap", title: words, "aria-label": words,
            role: "img", dataset: { reason: gap.reason, from: gap.from, to: gap.to } }), gap);
        }),
        cursor);
      bar.addEventListener("click", (event) => {
        const box = bar.getBoundingClientRect();
        if (box.width > 0) this.seek(((event.clientX - box.left) / box.width) * this.span.duration);
      });
      return h("div", { class: "lane", testid: "player-lane", dataset: { participantId: lane.participantId } },
        h("span", { class: "lane-name", text: personById(lane.participantId, this.people) }), bar);
    });
    const section = h("section", { class: "result-section player", testid: "player",
      "aria-label": t("player.title") },
    h("h3", { class: "section-title", text: t("player.title") }),
    this.tiles.length ? h("div", { class: "player-stage" }, this.tiles.map((tile) => tile.element))
      : h("p", { class: "muted", text: t("results.noRecordings") }),
    h("div", { class: "player-controls" }, this.button, this.time, this.slider),
    h("div", { class: "player-lanes", testid: "player-lanes", role: "group", "aria-label": t("player.lanes") }, rows),
    h("p", { class: "muted small player-legend" },
      h("span", { class: "legend legend-presence", "aria-hidden": "true" }), ` ${t("player.legendPresence")} `,
      h("span", { class: "legend legend-gap", "aria-hidden": "true" }), ` ${t("player.legendGap")}`));
    return section;
  }

  /** Start ticking (once the section is in the page). */
  start() {
    const keep = current;
    if (!keep) return;
    this.tick();
    keep.timer = window.setInterval(() => this.tick(), TICK_MS);
  }
}

/** @param {HTMLElement} element @param {{left: number, width: number}} m */
function placed(element, m) {
  element.style.left = `${(m.left * 100).toFixed(3)}%`;
  element.style.width = `max(2px, ${(m.width * 100).toFixed(3)}%)`;
  return element;
}

/** Keep a line in view inside its own scrolling list, without moving the page. @param {HTMLElement} line */
function scrollWithin(line) {
  const list = line.closest(".review-transcript");
  if (!(list instanceof HTMLElement)) return;
  const top = line.offsetTop - list.offsetTop;
  if (top < list.scrollTop || top + line.offsetHeight > list.scrollTop + list.clientHeight) {
    list.scrollTop = Math.max(0, top - list.clientHeight / 3);
  }
}

/**
 * A review of the session: a player over its verified recordings. `line(element, entry)` makes a
 * transcript line seek; `section()` is the player; `start()` once both are in the page.
 * @param {any} report @param {string} sessionId @param {any} doc @param {any} people
 */
export function createReview(report, sessionId, doc, people) {
  return new Review(report, sessionId, doc, people);
}
