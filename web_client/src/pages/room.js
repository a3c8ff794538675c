// The room page: a party's or a staff member's way into a mediation session (docs/protocol.md).
// The page's code is in ../ui/room/ (one module per area, all sharing one state object passed
// explicitly), the protocol and the WebRTC mesh in ../lib/room/ (no DOM).
//
// User text is only ever put into the page as text (never HTML), and the page uses no inline
// script or style (CSP default-src 'self').
import { createApi } from "../lib/api.js";
import { SESSION_RE, connect, parseLocation, terminate, wayBack } from "../ui/room/connection.js";
import { startPrejoin } from "../ui/room/lobby.js";
import { loadPartySchedule } from "../ui/room/schedule.js";
import { showSignIn, whoAmI } from "../ui/room/signin.js";
import { createRoomState } from "../ui/room/state.js";
import { blockWith, setConnection } from "../ui/room/status.js";
import { applyStaticText, renderAll, wireStaticControls } from "../ui/room/view.js";

/** @typedef {import("../ui/room/state.js").RoomPageState} RoomPageState */

/**
 * Arrival: a party's join link (fragment), or staff with `?session=` (signing in first if needed).
 * @param {RoomPageState} state
 */
async function main(state) {
  applyStaticText(state);
  wireStaticControls(state);
  setConnection(state, "idle");
  renderAll(state);

  const { token, session } = parseLocation(state);
  if (token === "") {
    terminate(state, "bad-link");
    return;
  }
  if (token) {
    state.token = token;
    state.sessionId = session && SESSION_RE.test(session) ? session : null;
    // A chat-only session needs no camera check: know the mode before the pre-join turns one on.
    state.mode = await linkSessionMode(token);
    startPrejoin(state);
    connect(state);
    loadPartySchedule(state);
    return;
  }
  if (!session || !SESSION_RE.test(session)) {
    terminate(state, "bad-link", session ? { detail: "status.badLink.detailStaff" }
      : { title: "status.noLink.title", detail: "status.noLink.detail" });
    return;
  }
  state.staff = true;
  state.sessionId = session;
  const auth = await whoAmI(state);
  if (auth === "signin") {
    showSignIn(state);
  } else if (auth === "ok") {
    startPrejoin(state);
    connect(state);
  } else {
    blockWith(state, "error", {
      detail: auth === "network" ? "status.unreachable.detail" : "status.error.detail",
      actions: [{ label: "action.reload", primary: true, testid: "reload", run: () => location.reload() }, wayBack(state, "error")],
    });
  }
}

/**
 * The mode ("video" | "chat") of the session a join link opens, from the party's own case view (a
 * join link's view lists only its session); null when it cannot be read (the socket then says why).
 * @param {string} token
 * @returns {Promise<"video" | "chat" | null>}
 */
async function linkSessionMode(token) {
  try {
    const view = await createApi({ token }).get("/api/party/case");
    const mode = view && Array.isArray(view.sessions) && view.sessions.length === 1 ? view.sessions[0].mode : null;
    return mode === "chat" || mode === "video" ? mode : null;
  } catch {
    return null;
  }
}

const state = createRoomState(location.search);
main(state).catch((err) => {
  console.error(err);
  blockWith(state, "error", { actions: [wayBack(state, "error")] });
});
