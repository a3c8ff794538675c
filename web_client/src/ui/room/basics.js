// The meeting basics drawn with the rest of the page (view.js): background blur, the phone
// self-view, the speaker, the mediator's lobby cue, and the planned-end clock.
import { renderBlur } from "./blur.js";
import { renderLobbyCue } from "./lobbycue.js";
import { renderSelfView } from "./selfview.js";
import { applySpeaker } from "./speakers.js";
import { tickMeetingClock } from "./timer.js";

/** @typedef {import("./state.js").RoomPageState} RoomPageState */

/**
 * With every redraw of the page.
 * @param {RoomPageState} state
 */
export function renderBasics(state) {
  renderBlur(state);
  renderSelfView(state);
  applySpeaker(state);
  renderLobbyCue(state);
  tickMeetingClock(state);
}

/**
 * Once a second.
 * @param {RoomPageState} state
 */
export function tickBasics(state) {
  tickMeetingClock(state);
}
