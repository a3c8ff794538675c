// The room page: UI on top of RoomClient (js/protocol.js) and Mesh (js/mesh.js).
//
// User text is only ever put into the page with textContent (never innerHTML), and the page uses
// no inline script or style (CSP script-src 'self'; style-src 'self').

import { io } from "/static/vendor/socket.io.esm.min.js";
import { PARTY_ROLES, RoomClient, missingConsents, pickNotice } from "./protocol.js";
import { Mesh } from "./mesh.js";
import { chooseLanguage, formatDuration, makeTranslator, parseTime } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";
const TOKEN_KEY = "mediation.joinLink";
const LINK_RE = /^jln_[A-Za-z0-9_\-.~]{8,512}$/;
const SESSION_RE = /^ses_[0-9a-f]{32}$/;
const MAX_CHAT = 2000;
const TYPING_IDLE_MS = 3000;
const TYPING_EXPIRE_MS = 8000;

// --- state ----------------------------------------------------------------------------------------

const params = new URLSearchParams(location.search);
const state = {
  lang: chooseLanguage({ search: location.search, navigatorLanguage: navigator.language || "" }),
  t: null,
  debug: params.get("debug") === "1",
  staff: false,
  token: null,
  sessionId: null,
  client: null,
  mesh: null,
  phase: "init", // signin | prejoin | lobby | room | over
  joining: false,
  self: null, // join_room result
  room: null, // last room_state
  status: null, // lobby | admitted
  mode: null, // video | chat
  joinedAt: null,
  endedAt: null,
  everConnected: false,
  messages: new Map(), // seq -> chat_message
  unread: 0,
  typing: new Map(), // participant_id -> {name, timer}
  typingActive: false,
  typingTimer: null,
  chatMuted: false,
  caucusExcluded: false,
  caucusMembers: null,
  knownLobby: new Set(),
  statuses: { block: null, conn: null, media: null },
  sidePanel: "chat",
  consentDeclined: false, // this party chose "I do not consent" (or withdrew): show the notice folded
  consentBusy: false, // give_consent / withdraw_consent under way
  recordingBusy: false, // start_recording / stop_recording under way
};
state.t = makeTranslator(state.lang);

const media = {
  stream: typeof MediaStream === "function" ? new MediaStream() : null,
  audioOn: true,
  choice: "av", // av | audio | none
  audioDeviceId: null,
  videoDeviceId: null,
  starting: false,
  lastSent: null,
  meter: null,
};

const tiles = new Map(); // participant_id -> tile parts ("self" for the local preview)

// --- small helpers ----------------------------------------------------------------------------------

const ICONS = {
  mic: ["M12 2a3 3 0 0 0-3 3v7a3 3 0 0 0 6 0V5a3 3 0 0 0-3-3z", "M19 10v2a7 7 0 0 1-14 0v-2", "M12 19v3", "M8 22h8"],
  micOff: [
    "M2 2l20 20",
    "M9 9v3a3 3 0 0 0 5.12 2.12",
    "M15 9.34V5a3 3 0 0 0-5.94-.6",
    "M17 16.95A7 7 0 0 1 5 12v-2",
    "M19 10v2a7 7 0 0 1-.11 1.23",
    "M12 19v3",
    "M8 22h8",
  ],
  cam: ["M23 7l-7 5 7 5V7z", "M3 5h11a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H3a2 2 0 0 1-2-2V7a2 2 0 0 1 2-2z"],
  camOff: [
    "M2 2l20 20",
    "M16 16v1a2 2 0 0 1-2 2H3a2 2 0 0 1-2-2V7a2 2 0 0 1 2-2h2",
    "M10 5h4a2 2 0 0 1 2 2v3.34l1 1L23 7v10",
  ],
  sliders: ["M4 21v-7", "M4 10V3", "M12 21v-9", "M12 8V3", "M20 21v-5", "M20 12V3", "M1 14h6", "M9 8h6", "M17 16h6"],
  chatOff: ["M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z", "M2 2l20 20"],
  users: [
    "M17 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2",
    "M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8z",
    "M23 21v-2a4 4 0 0 0-3-3.87",
    "M16 3.13a4 4 0 0 1 0 7.75",
  ],
  alert: [
    "M10.29 3.86L1.82 18a2 2 0 0 0 1.71 3h16.94a2 2 0 0 0 1.71-3L13.71 3.86a2 2 0 0 0-3.42 0z",
    "M12 9v4",
    "M12 17h.01",
  ],
  info: ["M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20z", "M12 16v-4", "M12 8h.01"],
  wifiOff: [
    "M2 2l20 20",
    "M8.5 16.5a5 5 0 0 1 7 0",
    "M5 12.55a11 11 0 0 1 5.17-2.39",
    "M19 12.55a11 11 0 0 0-2.2-1.5",
    "M1.42 9a16 16 0 0 1 4.7-2.88",
    "M10.71 5.05A16 16 0 0 1 22.58 9",
    "M12 20h.01",
  ],
  check: ["M20 6L9 17l-5-5"],
  lock: ["M5 11h14v10H5z", "M7 11V7a5 5 0 0 1 10 0v4"],
  door: ["M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4", "M16 17l5-5-5-5", "M21 12H9"],
};

function icon(name) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "icon");
  svg.setAttribute("aria-hidden", "true");
  for (const d of ICONS[name] || []) {
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

/** Create an element; `text` always goes through textContent. */
function el(tag, { cls, text, attrs, dataset } = {}, children = []) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (attrs) for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, v);
  if (dataset) for (const [k, v] of Object.entries(dataset)) node.dataset[k] = v;
  for (const child of children) if (child) node.append(child);
  return node;
}

function button(label, { cls = "btn btn-small btn-secondary", testid, onClick, disabled = false, dataset } = {}) {
  const node = el("button", { cls, text: label, attrs: { type: "button", "data-testid": testid }, dataset });
  node.disabled = disabled;
  if (onClick) node.addEventListener("click", onClick);
  return node;
}

function initials(name) {
  const trimmed = (name || "").trim();
  if (!trimmed) return "?";
  const chars = [...trimmed];
  // CJK names: the family name; Latin names: first letters of the first two words.
  if (/[\u3400-\u9fff]/.test(chars[0])) return chars[0];
  const words = trimmed.split(/\s+/).filter(Boolean);
  return words
    .slice(0, 2)
    .map((w) => [...w][0])
    .join("");
}

function roleLabel(role) {
  const key = `role.${role}`;
  return state.t.has(key) ? state.t(key) : state.t("role.unknown");
}

function participants() {
  return state.room && Array.isArray(state.room.participants) ? state.room.participants : [];
}

function participant(id) {
  return participants().find((p) => p.participant_id === id) || null;
}

function selfId() {
  return state.self ? state.self.participant_id : null;
}

function isMediator() {
  return Boolean(state.self && state.self.role === "mediator");
}

function nameOf(id) {
  const p = participant(id);
  if (p) return p.name;
  const msg = [...state.messages.values()].find((m) => m.participant_id === id);
  return msg ? msg.name : id;
}

function log(...args) {
  if (state.debug) console.debug("[room]", ...args);
}

// --- language ---------------------------------------------------------------------------------------

function applyStaticText() {
  const t = state.t;
  document.documentElement.lang = state.lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
    node.setAttribute("placeholder", t(node.dataset.i18nPlaceholder));
  }
  $("lang-select").value = state.lang;
}

function setLanguage(lang) {
  state.lang = lang;
  state.t = makeTranslator(lang);
  const url = new URL(location.href);
  url.searchParams.set("lang", lang);
  history.replaceState(null, "", url.pathname + url.search);
  applyStaticText();
  setConnection($("connection").dataset.state || "idle");
  renderAll();
  renderChatList();
  renderStatus();
  refreshDevices();
}

// --- status banner (blocking > connection > media) ----------------------------------------------------

const STATUS = {
  "bad-link": { tone: "error", blocking: true, icon: "alert", title: "status.badLink.title", detail: "status.badLink.detail" },
  "not-participant": { tone: "error", blocking: true, icon: "alert", title: "status.notParticipant.title", detail: "status.notParticipant.detail" },
  "bad-session": { tone: "error", blocking: true, icon: "alert", title: "status.badSession.title", detail: "status.badSession.detail" },
  removed: { tone: "error", blocking: true, icon: "door", title: "status.removed.title", detail: "status.removed.detail" },
  refused: { tone: "error", blocking: true, icon: "door", title: "status.refused.title", detail: "status.refused.detail" },
  ended: { tone: "info", blocking: true, icon: "check", title: "status.ended.title", detail: "status.ended.detail" },
  left: { tone: "info", blocking: true, icon: "door", title: "status.left.title", detail: "status.left.detail" },
  locked: { tone: "warning", blocking: true, icon: "lock", title: "status.locked.title", detail: "status.locked.detail" },
  "rate-limited": { tone: "warning", blocking: true, icon: "alert", title: "status.rateLimited.title", detail: "status.rateLimited.detail" },
  replaced: { tone: "info", blocking: true, icon: "door", title: "status.replaced.title", detail: "status.replaced.detail" },
  unavailable: { tone: "warning", blocking: true, icon: "alert", title: "status.unavailable.title", detail: "status.unavailable.detail" },
  "connection-refused": { tone: "error", blocking: true, icon: "alert", title: "status.refusedConnection.title", detail: "status.refusedConnection.detail" },
  unsupported: { tone: "error", blocking: false, icon: "alert", title: "status.unsupported.title", detail: "status.unsupported.detail" },
  error: { tone: "error", blocking: true, icon: "alert", title: "status.error.title", detail: "status.error.detail" },
  disconnected: { tone: "warning", blocking: false, icon: "wifiOff", title: "status.disconnected.title", detail: "status.disconnected.reconnecting" },
  "permission-denied": { tone: "warning", blocking: false, icon: "camOff", title: "status.permissionDenied.title", detail: "status.permissionDenied.detail" },
  "media-unavailable": { tone: "warning", blocking: false, icon: "camOff", title: "status.mediaUnavailable.title", detail: "status.mediaUnavailable.detail" },
};

/** code of a refused connection / failed join -> status state */
const CODE_STATES = {
  bad_token: "bad-link",
  not_a_participant: "not-participant",
  bad_session: "bad-session",
  removed: "removed",
  room_locked: "locked",
  session_ended: "ended",
  rate_limited: "rate-limited",
  connect_refused: "connection-refused",
  unavailable: "unavailable",
};

/**
 * category: block | conn | media. info: {state, detail?, reason?, busy?, actions?: [{label, testid, primary, run}]}
 */
function setStatus(category, info) {
  state.statuses[category] = info;
  renderStatus();
}

function clearStatus(category) {
  if (!state.statuses[category]) return;
  state.statuses[category] = null;
  renderStatus();
}

function renderStatus() {
  const info = state.statuses.block || state.statuses.conn || state.statuses.media;
  const box = $("status");
  if (!info) {
    box.hidden = true;
    box.dataset.state = "";
    return;
  }
  const def = STATUS[info.state] || STATUS.error;
  const t = state.t;
  box.hidden = false;
  box.dataset.state = info.state;
  box.dataset.tone = def.tone;
  box.dataset.blocking = String(Boolean(def.blocking && info === state.statuses.block));
  box.dataset.busy = String(Boolean(info.busy));
  const iconBox = box.querySelector(".status-icon");
  iconBox.replaceChildren(info.busy ? "" : icon(def.icon));
  $("status-title").textContent = t(info.title || def.title);
  const detail = [t(info.detail || def.detail)];
  if (info.reason) detail.push(t("status.reason", { reason: info.reason }));
  $("status-detail").textContent = detail.join(" ");
  const actions = $("status-actions");
  actions.replaceChildren(
    ...(info.actions || []).map((action) =>
      button(t(action.label), {
        cls: `btn ${action.primary ? "btn-primary" : "btn-secondary"}`,
        testid: action.testid,
        onClick: action.run,
      }),
    ),
  );
  document.body.dataset.phase = state.statuses.block && def.blocking ? "over" : state.phase;
}

function blockWith(stateName, extra = {}) {
  setStatus("block", { state: stateName, ...extra });
}

/** The participant is out for good (or blocked): stop media and connections. */
function terminate(stateName, extra = {}) {
  if (["removed", "refused", "ended", "bad-link"].includes(stateName)) {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // storage unavailable
    }
  }
  state.phase = "over";
  if (state.joinedAt && !state.endedAt) state.endedAt = Date.now();
  $("notices").replaceChildren();
  stopTyping();
  if (state.mesh) state.mesh.stop();
  stopMedia();
  clearStatus("conn");
  clearStatus("media");
  blockWith(stateName, extra);
  setConnection(stateName === "left" || stateName === "ended" ? "idle" : "offline");
  renderAll();
}

// --- notices (toasts) ---------------------------------------------------------------------------

function notify(text, { tone = "info", actions = [], timeout = 7000, testid = "notice", key } = {}) {
  const list = $("notices");
  if (key) {
    const existing = list.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (existing) existing.remove();
  }
  const item = el("li", { cls: "notice", attrs: { "data-testid": testid, role: tone === "error" ? "alert" : "status" } });
  item.dataset.tone = tone;
  if (key) item.dataset.key = key;
  item.append(el("p", { cls: "notice-text", text }));
  const box = el("div", { cls: "notice-actions" });
  const close = () => item.remove();
  for (const action of actions) {
    box.append(
      button(action.label, {
        cls: "btn",
        testid: action.testid,
        onClick: () => {
          close();
          action.run();
        },
      }),
    );
  }
  box.append(button(state.t("notice.dismiss"), { cls: "btn", onClick: close }));
  item.append(box);
  list.append(item);
  while (list.children.length > 4) list.firstElementChild.remove();
  if (timeout) setTimeout(close, timeout);
  return item;
}

function dismissNotice(key) {
  const item = $("notices").querySelector(`[data-key="${CSS.escape(key)}"]`);
  if (item) item.remove();
}

function notifyError(err) {
  const code = err && err.code ? err.code : "unknown";
  log("request failed", code, err);
  // Once out (e.g. end_session: the server disconnects before its ack), errors are noise.
  if (state.phase === "over" || (state.client && state.client.terminated)) return;
  notify(state.t.error(code), { tone: "error" });
}

// --- confirmation dialog ------------------------------------------------------------------------------

function confirmDialog({ title, text, confirmLabel, danger = false, withReason = false }) {
  const dialog = $("dialog");
  $("dialog-title").textContent = title;
  $("dialog-text").textContent = text;
  $("dialog-reason-field").hidden = !withReason;
  $("dialog-reason").value = "";
  const confirm = $("dialog-confirm");
  confirm.textContent = confirmLabel;
  confirm.className = `btn ${danger ? "btn-danger" : "btn-primary"}`;
  if (typeof dialog.showModal !== "function") {
    return Promise.resolve({ confirmed: window.confirm(`${title}\n\n${text}`), reason: "" });
  }
  return new Promise((resolve) => {
    const onClose = () => {
      dialog.removeEventListener("close", onClose);
      resolve({ confirmed: dialog.returnValue === "confirm", reason: $("dialog-reason").value.trim() });
    };
    dialog.returnValue = "";
    dialog.addEventListener("close", onClose);
    dialog.showModal();
    (withReason ? $("dialog-reason") : $("dialog-cancel")).focus();
  });
}

// --- connection -----------------------------------------------------------------------------------------

function setConnection(connState) {
  const box = $("connection");
  box.dataset.state = connState;
  $("connection-label").textContent = state.t(`connection.${connState}`);
}

function parseLocation() {
  const hash = location.hash.startsWith("#") ? location.hash.slice(1) : "";
  let token = null;
  if (hash) {
    token = LINK_RE.test(hash) ? hash : "";
    // The token never stays in the address bar (nor in history, nor in a Referer).
    history.replaceState(null, "", location.pathname + location.search);
  }
  if (token) {
    try {
      sessionStorage.setItem(TOKEN_KEY, token);
    } catch {
      // storage unavailable: a reload will need the link again
    }
  }
  const session = params.get("session");
  if (token === null && !session) {
    // A reload of the page in the same tab: the link was kept for this tab only.
    try {
      token = sessionStorage.getItem(TOKEN_KEY);
    } catch {
      token = null;
    }
  }
  return { token, session };
}

async function main() {
  applyStaticText();
  wireStaticControls();
  setConnection("idle");
  renderAll();

  const { token, session } = parseLocation();
  if (token === "") {
    terminate("bad-link");
    return;
  }
  if (token) {
    state.token = token;
    state.sessionId = session && SESSION_RE.test(session) ? session : null;
    startPrejoin();
    connect();
    return;
  }
  if (!session || !SESSION_RE.test(session)) {
    terminate("bad-link", { detail: session ? "status.badLink.detailStaff" : "status.badLink.detail" });
    return;
  }
  state.staff = true;
  state.sessionId = session;
  const auth = await whoAmI();
  if (auth === "signin") {
    showSignIn();
  } else if (auth === "ok") {
    startPrejoin();
    connect();
  } else {
    blockWith("error", {
      detail: auth === "network" ? "status.unreachable.detail" : "status.error.detail",
      actions: [{ label: "action.reload", primary: true, testid: "reload", run: () => location.reload() }],
    });
  }
}

async function whoAmI() {
  try {
    const response = await fetch("/api/auth/me", {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      cache: "no-store",
    });
    if (response.status === 401) return "signin";
    return response.ok ? "ok" : "error";
  } catch {
    return "network";
  }
}

function showSignIn() {
  state.phase = "signin";
  renderAll();
  $("signin-username").focus();
}

async function submitSignIn(event) {
  event.preventDefault();
  const username = $("signin-username").value.trim();
  const password = $("signin-password").value;
  const error = $("signin-error");
  const submit = $("signin-submit");
  const show = (key) => {
    error.textContent = state.t(key);
    error.hidden = false;
  };
  error.hidden = true;
  if (!username || !password) {
    show("signin.missing");
    return;
  }
  submit.disabled = true;
  submit.textContent = state.t("signin.submitting");
  try {
    const response = await fetch("/api/auth/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ username, password }),
    });
    if (response.ok) {
      $("signin-password").value = "";
      startPrejoin();
      connect();
      return;
    }
    let code = null;
    try {
      code = (await response.json()).error;
    } catch {
      code = null;
    }
    if (response.status === 429 || code === "rate_limited") show("signin.error.rate_limited");
    else if (response.status === 401 || response.status === 422 || code === "bad_credentials") {
      show("signin.error.bad_credentials");
    } else show("signin.error.other");
  } catch {
    show("signin.error.network");
  } finally {
    submit.disabled = false;
    submit.textContent = state.t("signin.submit");
  }
}

function connect() {
  const client = new RoomClient({ io });
  state.client = client;
  wireClient(client);
  setConnection("connecting");
  updateJoinButton();
  client.connect({ token: state.token, sessionId: state.sessionId }).catch((err) => onRefused(err.code));
  if (state.debug) {
    window.__room = {
      client,
      get mesh() {
        return state.mesh;
      },
      state,
      media,
    };
  }
}

function onRefused(code) {
  const stateName = CODE_STATES[code] || "error";
  if (["locked", "rate-limited", "connection-refused", "unavailable"].includes(stateName)) {
    state.joining = false;
    blockWith(stateName, {
      actions: [{ label: "action.retry", primary: true, testid: "retry", run: retryConnect }],
    });
    setConnection("offline");
    updateJoinButton();
    return;
  }
  terminate(stateName);
}

function retryConnect() {
  clearStatus("block");
  state.phase = state.self ? state.phase : "prejoin";
  renderAll();
  setConnection("connecting");
  state.client.reconnect().catch((err) => onRefused(err.code));
}

function wireClient(client) {
  client.on("connected", () => {
    state.everConnected = true;
    setConnection("online");
    clearStatus("conn");
    updateJoinButton();
  });
  client.on("disconnected", ({ willReconnect }) => {
    if (client.terminated) return;
    stopTyping({ send: false });
    setConnection(willReconnect ? "reconnecting" : "offline");
    setStatus("conn", {
      state: "disconnected",
      busy: willReconnect,
      detail: willReconnect ? "status.disconnected.reconnecting" : "status.disconnected.manual",
      actions: willReconnect
        ? []
        : [{ label: "action.reconnect", primary: true, testid: "reconnect", run: retryConnect }],
    });
    updateJoinButton();
    renderTiles();
  });
  client.on("reconnecting", () => setConnection("reconnecting"));
  client.on("connect_error", (info) => {
    if (info.refused) {
      onRefused(info.code);
      return;
    }
    setConnection(state.everConnected ? "reconnecting" : "connecting");
    setStatus("conn", {
      state: "disconnected",
      busy: true,
      title: state.everConnected ? "status.disconnected.title" : "status.unreachable.title",
      detail: state.everConnected ? "status.disconnected.reconnecting" : "status.unreachable.detail",
    });
  });
  client.on("joined", onJoined);
  client.on("rejoin_failed", (err) => {
    if (CODE_STATES[err.code]) onRefused(err.code);
    else notifyError(err);
  });
  client.on("room_state", onRoomState);
  client.on("admitted", () => {
    state.status = "admitted";
    notify(state.t("notice.admitted"), { key: "admission" });
    afterAdmission();
  });
  client.on("returned_to_lobby", ({ reason }) => {
    state.status = "lobby";
    const key = reason === "mediator_left" ? "notice.returned.mediator_left" : "notice.returned.mediator";
    notify(state.t(key), { tone: "warning", key: "admission" });
    leaveRoomView();
  });
  client.on("refused", ({ reason }) => terminate("refused", { reason: typeof reason === "string" ? reason : "" }));
  client.on("removed", ({ reason }) => terminate("removed", { reason: typeof reason === "string" ? reason : "" }));
  client.on("session_ended", () => terminate("ended"));
  client.on("chat_message", (msg) => upsertMessage(msg));
  client.on("message_deleted", ({ seq }) => onMessageDeleted(seq));
  client.on("typing", onTyping);
  client.on("caucus_started", ({ members }) => {
    state.caucusExcluded = false;
    state.caucusMembers = Array.isArray(members) ? members : [];
    notify(state.t("caucus.started"), { key: "caucus" });
    renderAll();
  });
  client.on("caucus_in_progress", () => {
    state.caucusExcluded = true;
    state.caucusMembers = null;
    renderAll();
  });
  client.on("caucus_ended", () => {
    const wasInvolved = state.caucusExcluded || state.caucusMembers;
    state.caucusExcluded = false;
    state.caucusMembers = null;
    if (wasInvolved) notify(state.t("caucus.ended"), { key: "caucus" });
    loadHistory();
    renderAll();
  });
  client.on("media_isolation", () => renderTiles());
  client.on("chat_muted", ({ muted }) => {
    state.chatMuted = Boolean(muted);
    notify(state.t(muted ? "notice.chatMuted" : "notice.chatUnmuted"), {
      tone: muted ? "warning" : "info",
      key: "chat-muted",
    });
    if (muted) stopTyping();
    renderChatControls();
  });
  client.on("mute_media_requested", onMuteRequested);
  client.on("error", (body) => {
    log("server error notice", body);
    if (body && body.code === "replaced") {
      terminate("replaced", {
        actions: [{ label: "action.rejoin", primary: true, testid: "rejoin", run: () => location.reload() }],
      });
    }
  });
  client.on("recording_started", () => {
    if (state.room) state.room = { ...state.room, recording: true };
    notify(state.t("notice.recording.started"), { key: "recording" });
    renderRecording();
  });
  client.on("recording_stopped", ({ reason }) => {
    if (state.room) state.room = { ...state.room, recording: false };
    const known = typeof reason === "string" && state.t.has(`notice.recording.stopped.${reason}`);
    const item = notify(state.t(known ? `notice.recording.stopped.${reason}` : "notice.recording.stopped.other"), {
      key: "recording",
      tone: reason === "mediator" || reason === "session_ended" ? "info" : "warning",
      timeout: 12000,
    });
    item.dataset.reason = known ? reason : "other";
    renderRecording();
  });
}

// --- joining ----------------------------------------------------------------------------------------

function startPrejoin() {
  state.phase = "prejoin";
  renderAll();
  startMedia("av");
}

function updateJoinButton() {
  const join = $("join-button");
  const connected = Boolean(state.client && state.client.connected);
  join.disabled = !connected || state.joining;
  join.textContent = state.t(state.joining ? "prejoin.joining" : connected ? "prejoin.join" : "prejoin.connecting");
}

async function join() {
  if (state.joining || !state.client) return;
  state.joining = true;
  updateJoinButton();
  resumeAudio();
  try {
    await state.client.joinRoom();
  } catch (err) {
    if (CODE_STATES[err.code]) onRefused(err.code);
    else notifyError(err);
  } finally {
    state.joining = false;
    updateJoinButton();
  }
}

function onJoined(result, { rejoin } = {}) {
  state.self = result;
  state.mode = result.mode || (result.room && result.room.mode) || "video";
  state.status = result.status;
  if (!state.joinedAt) state.joinedAt = Date.now();
  if (result.room) applyRoomState(result.room);
  clearStatus("conn");
  if (state.mode === "chat") {
    stopMedia();
    clearStatus("media");
  } else {
    ensureMesh();
  }
  state.phase = state.status === "admitted" ? "room" : "lobby";
  sendMediaState(true);
  if (state.status === "admitted") loadHistory();
  if (rejoin) notify(state.t("notice.reconnected"), { key: "conn" });
  renderAll();
}

function ensureMesh() {
  if (state.mesh || typeof RTCPeerConnection !== "function") {
    if (typeof RTCPeerConnection !== "function") setStatus("media", { state: "unsupported" });
    return;
  }
  const mesh = new Mesh({
    client: state.client,
    RTCPeerConnection,
    localStream: media.stream,
    MediaStream: typeof MediaStream === "function" ? MediaStream : null,
    log: state.debug ? (...args) => console.debug(...args) : null,
  });
  state.mesh = mesh;
  mesh.on("remote_stream", ({ participantId, stream }) => attachRemote(participantId, stream));
  mesh.on("remote_stream_removed", ({ participantId }) => attachRemote(participantId, null));
  mesh.on("peer_state", ({ participantId, state: connState }) => {
    const tile = tiles.get(participantId);
    if (tile) tile.root.dataset.peer = connState;
  });
  mesh.on("error", ({ participantId, error }) => log("mesh error", participantId, error));
}

function applyRoomState(room) {
  state.room = room;
  const me = participants().find((p) => p.participant_id === selfId());
  if (me) {
    state.status = me.status;
    state.chatMuted = Boolean(me.chat_muted);
  }
  if (room.caucus && !room.caucus.active) {
    state.caucusExcluded = false;
    state.caucusMembers = null;
  } else if (room.caucus && room.caucus.active) {
    if (Array.isArray(room.caucus.members)) {
      state.caucusMembers = room.caucus.members;
      state.caucusExcluded = !room.caucus.members.includes(selfId());
    } else {
      state.caucusExcluded = true;
      state.caucusMembers = null;
    }
  }
}

function onRoomState(room) {
  const before = state.status;
  const wasLocked = state.room ? Boolean(state.room.locked) : null;
  applyRoomState(room);
  if (isMediator()) {
    const lobby = participants().filter((p) => p.status === "lobby" && p.participant_id !== selfId());
    for (const p of lobby) {
      if (!state.knownLobby.has(p.participant_id)) {
        notify(state.t("mediator.newInLobby", { name: p.name }), {
          key: `lobby-${p.participant_id}`,
          actions: [
            {
              label: state.t("mediator.admit"),
              run: () => admitParticipant(participant(p.participant_id) || p),
            },
          ],
          timeout: 12000,
        });
      }
    }
    const stillWaiting = new Set(lobby.map((p) => p.participant_id));
    for (const id of state.knownLobby) if (!stillWaiting.has(id)) dismissNotice(`lobby-${id}`);
    state.knownLobby = stillWaiting;
    if (wasLocked !== null && wasLocked !== Boolean(room.locked)) {
      notify(state.t(room.locked ? "notice.lockedOn" : "notice.lockedOff"), { key: "lock" });
    }
  }
  if (before !== "admitted" && state.status === "admitted") afterAdmission();
  else if (before === "admitted" && state.status === "lobby") leaveRoomView();
  else renderAll();
}

function afterAdmission() {
  if (state.phase === "over") return;
  state.phase = "room";
  loadHistory();
  renderAll();
}

function leaveRoomView() {
  if (state.phase === "over") return;
  state.phase = "lobby";
  stopTyping({ send: false });
  state.messages.clear();
  state.typing.clear();
  renderAll();
}

// --- local media --------------------------------------------------------------------------------------

function liveTrack(kind) {
  if (!media.stream) return null;
  return media.stream.getTracks().find((t) => t.kind === kind && t.readyState === "live") || null;
}

function stopTracks(kind = null) {
  if (!media.stream) return;
  for (const track of media.stream.getTracks()) {
    if (kind && track.kind !== kind) continue;
    track.stop();
    media.stream.removeTrack(track);
  }
}

function stopMedia() {
  stopTracks();
  media.choice = "none";
  stopMeter();
  renderLocal();
}

function constraintsFor(kind) {
  if (kind === "audio") {
    return {
      echoCancellation: true,
      noiseSuppression: true,
      autoGainControl: true,
      ...(media.audioDeviceId ? { deviceId: { exact: media.audioDeviceId } } : {}),
    };
  }
  return {
    width: { ideal: 1280 },
    height: { ideal: 720 },
    frameRate: { ideal: 24, max: 30 },
    ...(media.videoDeviceId ? { deviceId: { exact: media.videoDeviceId } } : {}),
  };
}

async function getMedia({ audio, video }) {
  if (!navigator.mediaDevices || typeof navigator.mediaDevices.getUserMedia !== "function") {
    const err = new Error("getUserMedia unavailable");
    err.name = "NotSupportedError";
    throw err;
  }
  return navigator.mediaDevices.getUserMedia({
    audio: audio ? constraintsFor("audio") : false,
    video: video ? constraintsFor("video") : false,
  });
}

function mediaFailure(err, choice) {
  log("getUserMedia failed", err && err.name, err);
  const denied = err && (err.name === "NotAllowedError" || err.name === "SecurityError");
  const actions = [];
  if (choice === "av") {
    actions.push({ label: "action.audioOnly", testid: "continue-audio-only", run: () => startMedia("audio") });
  }
  actions.push({ label: "action.chatOnly", testid: "continue-chat-only", run: () => startMedia("none") });
  actions.push({ label: "action.retry", primary: true, testid: "retry-media", run: () => startMedia("av") });
  setStatus("media", { state: denied ? "permission-denied" : "media-unavailable", actions });
}

/** choice: av (camera + microphone), audio, none (chat-only: no media at all). */
async function startMedia(choice) {
  if (state.mode === "chat" || state.phase === "over" || !media.stream) {
    if (!media.stream && choice !== "none") setStatus("media", { state: "unsupported" });
    return;
  }
  media.starting = true;
  renderLocal();
  stopTracks();
  media.choice = choice;
  if (choice !== "none") {
    try {
      const got = await getMedia({ audio: true, video: choice === "av" });
      if (state.phase === "over" || state.mode === "chat") {
        for (const track of got.getTracks()) track.stop();
        return;
      }
      for (const track of got.getTracks()) media.stream.addTrack(track);
      media.audioOn = true;
      clearStatus("media");
    } catch (err) {
      media.choice = "none";
      mediaFailure(err, choice);
    }
  } else {
    clearStatus("media");
  }
  media.starting = false;
  await syncMeshTracks();
  renderLocal();
  sendMediaState();
  await refreshDevices();
  startMeter();
}

async function syncMeshTracks() {
  if (!state.mesh) return;
  await state.mesh.replaceTrack("audio", liveTrack("audio"));
  await state.mesh.replaceTrack("video", liveTrack("video"));
}

async function toggleAudio() {
  resumeAudio();
  const track = liveTrack("audio");
  if (!track) {
    await addTrack("audio");
    return;
  }
  track.enabled = !track.enabled;
  media.audioOn = track.enabled;
  renderLocal();
  sendMediaState();
}

async function toggleVideo() {
  const track = liveTrack("video");
  if (track) {
    track.stop();
    media.stream.removeTrack(track);
    if (state.mesh) await state.mesh.replaceTrack("video", null);
    renderLocal();
    sendMediaState();
    return;
  }
  await addTrack("video");
}

/** Start one kind of track (camera or microphone) and send it. */
async function addTrack(kind) {
  if (!media.stream || state.mode === "chat") return;
  try {
    const got = await getMedia({ audio: kind === "audio", video: kind === "video" });
    const track = got.getTracks().find((t) => t.kind === kind);
    stopTracks(kind);
    media.stream.addTrack(track);
    if (kind === "audio") {
      track.enabled = true;
      media.audioOn = true;
    }
    if (media.choice === "none") media.choice = kind === "video" ? "av" : "audio";
    else if (kind === "video") media.choice = "av";
    clearStatus("media");
    if (state.mesh) await state.mesh.replaceTrack(kind, track);
    if (kind === "video") reattachLocal();
    await refreshDevices();
    startMeter();
  } catch (err) {
    mediaFailure(err, kind === "video" ? "av" : "audio");
  }
  renderLocal();
  sendMediaState();
}

/** Switch camera or microphone: a new track replaces the old one on every connection. */
async function switchDevice(kind, deviceId) {
  if (kind === "audio") media.audioDeviceId = deviceId || null;
  else media.videoDeviceId = deviceId || null;
  const old = liveTrack(kind);
  if (!old) return; // used the next time this kind starts
  const wasEnabled = old.enabled;
  old.stop(); // some devices cannot open a second camera while the first is open
  media.stream.removeTrack(old);
  try {
    const got = await getMedia({ audio: kind === "audio", video: kind === "video" });
    const track = got.getTracks().find((t) => t.kind === kind);
    track.enabled = wasEnabled;
    media.stream.addTrack(track);
    if (state.mesh) await state.mesh.replaceTrack(kind, track);
    if (kind === "audio") startMeter();
    else reattachLocal();
  } catch (err) {
    if (state.mesh) await state.mesh.replaceTrack(kind, null);
    notify(state.t("status.mediaUnavailable.title"), { tone: "error", key: "device" });
    log("device switch failed", err);
  }
  renderLocal();
  sendMediaState();
}

function currentMediaState() {
  if (state.mode === "chat") return { audio: false, video: false };
  const audio = liveTrack("audio");
  return { audio: Boolean(audio && audio.enabled), video: Boolean(liveTrack("video")) };
}

function sendMediaState(force = false) {
  if (!state.client || !state.client.joined) return;
  const now = currentMediaState();
  const key = JSON.stringify(now);
  if (!force && key === media.lastSent) return;
  media.lastSent = key;
  state.client.mediaState(now).catch((err) => {
    media.lastSent = null;
    log("media_state failed", err);
  });
}

async function refreshDevices() {
  const cameraSelect = $("camera-select");
  const micSelect = $("mic-select");
  if (!cameraSelect || !micSelect) return;
  let devices = [];
  try {
    devices = navigator.mediaDevices && navigator.mediaDevices.enumerateDevices
      ? await navigator.mediaDevices.enumerateDevices()
      : [];
  } catch {
    devices = [];
  }
  const fill = (select, kind, current) => {
    const list = devices.filter((d) => d.kind === kind && d.deviceId);
    const options = list.map((d, i) =>
      el("option", {
        text: d.label || state.t("devices.unnamed", { kind: state.t(`devices.kind.${kind}`), n: i + 1 }),
        attrs: { value: d.deviceId },
      }),
    );
    if (!options.length) options.push(el("option", { text: state.t("devices.none"), attrs: { value: "" } }));
    select.replaceChildren(...options);
    select.disabled = !list.length;
    if (current && list.some((d) => d.deviceId === current)) select.value = current;
  };
  const inUse = (kind) => {
    const track = liveTrack(kind);
    const settings = track && typeof track.getSettings === "function" ? track.getSettings() : {};
    return settings.deviceId || (kind === "audio" ? media.audioDeviceId : media.videoDeviceId);
  };
  fill(cameraSelect, "videoinput", inUse("video"));
  fill(micSelect, "audioinput", inUse("audio"));
}

// Microphone level meter (pre-join and settings), so a party can see the microphone works.
function startMeter() {
  stopMeter();
  const track = liveTrack("audio");
  const AudioCtx = window.AudioContext || window.webkitAudioContext;
  if (!track || !AudioCtx) return;
  try {
    const ctx = media.meter && media.meter.ctx ? media.meter.ctx : new AudioCtx();
    const source = ctx.createMediaStreamSource(new MediaStream([track]));
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 512;
    source.connect(analyser);
    const data = new Uint8Array(analyser.fftSize);
    const meter = { ctx, source, analyser, frame: 0 };
    media.meter = meter;
    const tick = () => {
      if (media.meter !== meter) return;
      const bar = $("mic-meter-bar");
      if (bar && bar.offsetParent !== null) {
        analyser.getByteTimeDomainData(data);
        let sum = 0;
        for (const v of data) sum += (v - 128) * (v - 128);
        const rms = Math.sqrt(sum / data.length) / 128;
        const on = track.enabled && track.readyState === "live";
        bar.dataset.level = String(on ? Math.min(10, Math.round(rms * 40)) : 0);
      }
      meter.frame = requestAnimationFrame(tick);
    };
    meter.frame = requestAnimationFrame(tick);
  } catch (err) {
    log("meter unavailable", err);
  }
}

function stopMeter() {
  const meter = media.meter;
  if (!meter) return;
  cancelAnimationFrame(meter.frame);
  try {
    if (meter.source) meter.source.disconnect();
  } catch {
    // already disconnected
  }
  media.meter = { ctx: meter.ctx };
}

function resumeAudio() {
  if (media.meter && media.meter.ctx && media.meter.ctx.state === "suspended") {
    media.meter.ctx.resume().catch(() => {});
  }
}

// --- tiles ----------------------------------------------------------------------------------------------

function makeTile(id, { local = false } = {}) {
  const video = el("video", {
    attrs: {
      autoplay: "",
      playsinline: "",
      "data-testid": local ? "local-video" : "remote-video",
      "data-participant-id": local ? null : id,
    },
  });
  video.autoplay = true;
  video.playsInline = true;
  if (local) {
    video.muted = true;
    video.defaultMuted = true;
    video.setAttribute("muted", "");
  }
  const avatar = el("span", { cls: "avatar" });
  const placeholderText = el("p", { cls: "tile-placeholder-text" });
  const nameText = el("span", { cls: "tile-name-text" });
  const roleText = el("span", { cls: "tile-role" });
  const audioIcon = el("span", { cls: "media-icon", dataset: { kind: "audio" } });
  const videoIcon = el("span", { cls: "media-icon", dataset: { kind: "video" } });
  const stateText = el("span", { cls: "tile-state" });
  const root = el(
    "div",
    {
      cls: "tile",
      attrs: { "data-testid": local ? "local-tile" : "remote-tile", "data-participant-id": local ? null : id },
      dataset: { local: String(local) },
    },
    [
      video,
      el("div", { cls: "tile-placeholder" }, [avatar, placeholderText]),
      stateText,
      el("div", { cls: "tile-label" }, [
        el("span", { cls: "tile-name" }, [nameText, roleText]),
        el("span", { cls: "tile-media" }, [audioIcon, videoIcon]),
      ]),
    ],
  );
  const tile = { id, root, video, avatar, placeholderText, nameText, roleText, audioIcon, videoIcon, stateText, stream: null };
  tiles.set(id, tile);
  return tile;
}

function setMediaIcon(node, kind, on) {
  const iconName = kind === "audio" ? (on ? "mic" : "micOff") : on ? "cam" : "camOff";
  node.dataset.on = String(on);
  node.setAttribute("title", state.t(`participant.${kind === "audio" ? "mic" : "cam"}${on ? "On" : "Off"}`));
  node.replaceChildren(icon(iconName));
}

function localTile() {
  return tiles.get("self") || makeTile("self", { local: true });
}

/** The video track of the local stream changed: make the preview pick up the new one. */
function reattachLocal() {
  const tile = tiles.get("self");
  if (tile) tile.video.srcObject = null;
}

function renderLocal() {
  const tile = localTile();
  const self = state.self;
  const name = self ? self.name : state.t("tile.you");
  tile.nameText.textContent = self ? `${name} ${state.t("participant.you")}` : name;
  tile.roleText.textContent = self ? roleLabel(self.role) : "";
  tile.avatar.textContent = initials(self ? self.name : "");
  tile.avatar.dataset.role = self ? self.role : "";
  const audio = liveTrack("audio");
  const video = liveTrack("video");
  const audioOn = Boolean(audio && audio.enabled);
  setMediaIcon(tile.audioIcon, "audio", audioOn);
  setMediaIcon(tile.videoIcon, "video", Boolean(video));
  tile.root.dataset.video = video ? "on" : "off";
  tile.placeholderText.textContent = media.starting
    ? state.t("prejoin.cameraStarting")
    : media.choice === "none"
      ? state.t("prejoin.mediaOff")
      : state.t("tile.cameraOff");
  // Only a stream with a live video track is attached: an empty MediaStream would keep the element
  // loading forever (and hold back the page's load event).
  const source = video ? media.stream : null;
  if (tile.video.srcObject !== source) tile.video.srcObject = source;
  if (video && tile.video.paused) tile.video.play().catch(() => {});

  const audioBtn = $("toggle-audio");
  audioBtn.dataset.on = String(audioOn);
  audioBtn.querySelector(".ctl-icon").replaceChildren(icon(audioOn ? "mic" : "micOff"));
  $("toggle-audio-label").textContent = state.t(audioOn ? "controls.micOn" : "controls.micOff");
  audioBtn.setAttribute("aria-pressed", String(!audioOn));
  const videoBtn = $("toggle-video");
  videoBtn.dataset.on = String(Boolean(video));
  videoBtn.querySelector(".ctl-icon").replaceChildren(icon(video ? "cam" : "camOff"));
  $("toggle-video-label").textContent = state.t(video ? "controls.camOn" : "controls.camOff");
  videoBtn.setAttribute("aria-pressed", String(!video));
  $("toggle-settings").querySelector(".ctl-icon").replaceChildren(icon("sliders"));
  const disabled = media.starting || !media.stream || state.mode === "chat";
  audioBtn.disabled = disabled;
  videoBtn.disabled = disabled;
}

function attachRemote(id, stream) {
  const tile = tiles.get(id);
  if (!tile) {
    // No tile yet (room_state not rendered): keep it for when the tile appears.
    pendingStreams.set(id, stream);
    return;
  }
  tile.stream = stream;
  // Re-attach even the same stream: a track added later (camera turned on) must be picked up.
  tile.video.srcObject = null;
  tile.video.srcObject = stream;
  if (stream) playRemote(tile.video);
  updateRemoteTile(tile, participant(id));
}

const pendingStreams = new Map();

function playRemote(video) {
  const attempt = video.play();
  if (attempt && typeof attempt.catch === "function") {
    attempt.catch((err) => {
      if (err && err.name === "NotAllowedError") {
        notify(state.t("notice.autoplay"), {
          key: "autoplay",
          timeout: 0,
          actions: [
            {
              label: state.t("notice.autoplayAction"),
              testid: "enable-sound",
              run: () => {
                for (const t of tiles.values()) if (t.stream) t.video.play().catch(() => {});
              },
            },
          ],
        });
      }
    });
  }
}

function updateRemoteTile(tile, p) {
  if (!p) return;
  const isolated = Boolean(state.mesh && state.mesh.isolated.has(p.participant_id)) ||
    (state.caucusExcluded && p.in_caucus);
  tile.nameText.textContent = p.name;
  tile.roleText.textContent = roleLabel(p.role);
  tile.avatar.textContent = initials(p.name);
  tile.avatar.dataset.role = p.role;
  setMediaIcon(tile.audioIcon, "audio", Boolean(p.audio));
  setMediaIcon(tile.videoIcon, "video", Boolean(p.video));
  const hasVideo = Boolean(tile.stream && tile.stream.getVideoTracks().some((t) => t.readyState === "live"));
  tile.root.dataset.video = p.video && hasVideo ? "on" : "off";
  tile.root.dataset.isolated = String(isolated);
  tile.root.dataset.connected = String(p.connected !== false);
  tile.root.dataset.conn = tile.stream ? "media" : "waiting";
  let text;
  if (isolated) text = state.t("tile.isolated");
  else if (p.connected === false) text = state.t("tile.disconnected");
  else if (!tile.stream && (p.audio || p.video)) text = state.t("tile.connecting");
  else if (!p.video) text = state.t("tile.cameraOff");
  else text = state.t("tile.connecting");
  tile.placeholderText.textContent = text;
  tile.stateText.textContent = p.in_caucus && !state.caucusExcluded && state.caucusMembers ? state.t("participant.inCaucus") : "";
}

function renderTiles() {
  const grid = $("tiles");
  const me = selfId();
  const remote = state.mode === "video"
    ? participants().filter((p) => p.participant_id !== me && p.status === "admitted" && p.role !== "recorder")
    : [];
  const wanted = new Set(remote.map((p) => p.participant_id));
  for (const [id, tile] of tiles) {
    if (id === "self") continue;
    if (!wanted.has(id)) {
      tile.video.srcObject = null;
      tile.root.remove();
      tiles.delete(id);
    }
  }
  const local = localTile();
  if (state.phase === "room" && state.mode === "video") {
    if (local.root.parentNode !== grid) grid.prepend(local.root);
  } else if (state.mode !== "chat" && local.root.parentNode !== $("preview-frame")) {
    $("preview-frame").append(local.root);
  }
  for (const p of remote) {
    let tile = tiles.get(p.participant_id);
    if (!tile) {
      tile = makeTile(p.participant_id);
      grid.append(tile.root);
      const stream = pendingStreams.get(p.participant_id) || (state.mesh && state.mesh.remoteStream(p.participant_id));
      pendingStreams.delete(p.participant_id);
      if (stream) {
        tile.stream = stream;
        tile.video.srcObject = stream;
        playRemote(tile.video);
      }
    }
    updateRemoteTile(tile, p);
  }
  const count = remote.length + 1;
  grid.dataset.count = count > 6 ? "many" : String(count);
  renderLocal();
}

// --- roster and mediator controls ---------------------------------------------------------------------------

async function act(run, { successKey } = {}) {
  try {
    const result = await run();
    if (successKey) notify(state.t(successKey));
    return result;
  } catch (err) {
    notifyError(err);
    return null;
  }
}

async function refuse(p) {
  const answer = await confirmDialog({
    title: state.t("dialog.refuse.title", { name: p.name }),
    text: state.t("dialog.refuse.text"),
    confirmLabel: state.t("dialog.refuse.confirm"),
    danger: true,
    withReason: true,
  });
  if (answer.confirmed) await act(() => state.client.refuse(p.participant_id, answer.reason));
}

async function remove(p) {
  const answer = await confirmDialog({
    title: state.t("dialog.remove.title", { name: p.name }),
    text: state.t("dialog.remove.text"),
    confirmLabel: state.t("dialog.remove.confirm"),
    danger: true,
    withReason: true,
  });
  if (answer.confirmed) await act(() => state.client.removeParticipant(p.participant_id, answer.reason));
}

function rosterActions(p) {
  const t = state.t;
  const id = p.participant_id;
  if (!isMediator() || id === selfId() || p.role === "recorder" || state.status !== "admitted") return [];
  if (p.status === "lobby") {
    return [
      button(t("mediator.admit"), { cls: "btn btn-small btn-primary", testid: `admit-${id}`, onClick: () => admitParticipant(p) }),
      button(t("mediator.refuse"), { cls: "btn btn-small btn-quiet", testid: `refuse-${id}`, onClick: () => refuse(p) }),
    ];
  }
  const caucusActive = Boolean(state.room && state.room.caucus && state.room.caucus.active);
  return [
    button(t("mediator.return"), { testid: `return-${id}`, onClick: () => act(() => state.client.returnToLobby(id)) }),
    button(t(p.chat_muted ? "mediator.unmuteChat" : "mediator.muteChat"), {
      testid: `mute-chat-${id}`,
      dataset: { muted: String(Boolean(p.chat_muted)) },
      onClick: () => act(() => state.client.muteChat(id, !p.chat_muted)),
    }),
    state.mode === "chat"
      ? null
      : button(t("mediator.askMuteAudio"), {
          testid: `mute-audio-${id}`,
          disabled: !p.audio,
          onClick: () => act(() => state.client.requestMuteMedia(id, { audio: true, video: false }), { successKey: "notice.done" }),
        }),
    state.mode === "chat"
      ? null
      : button(t("mediator.askStopVideo"), {
          testid: `mute-video-${id}`,
          disabled: !p.video,
          onClick: () => act(() => state.client.requestMuteMedia(id, { audio: false, video: true }), { successKey: "notice.done" }),
        }),
    button(t("mediator.openCaucus"), {
      testid: `caucus-${id}`,
      disabled: caucusActive,
      onClick: () => act(() => state.client.openCaucus(id)),
    }),
    button(t("mediator.remove"), { cls: "btn btn-small btn-quiet", testid: `remove-${id}`, onClick: () => remove(p) }),
  ];
}

function rosterEntry(p) {
  const t = state.t;
  const me = p.participant_id === selfId();
  const name = el("span", { cls: "roster-name", text: p.name });
  if (me) name.append(" ", el("span", { cls: "roster-you", text: t("participant.you") }));
  const meta = [roleLabel(p.role), t(`participant.status.${p.status === "lobby" ? "lobby" : "admitted"}`)];
  if (p.connected === false) meta.push(t("participant.disconnected"));
  if (p.chat_muted) meta.push(t("participant.chatMuted"));
  // The party left out of a caucus is not told who is in it (the server may still flag it).
  const showCaucus = p.in_caucus && !state.caucusExcluded;
  if (showCaucus) meta.push(t("participant.inCaucus"));
  const icons = el("span", { cls: "roster-icons" });
  // Consent matters for parties while the session can be recorded (sealed records, video).
  const consentShown = recordingApplies() && PARTY_ROLES.includes(p.role);
  const consent = consentShown
    ? el("span", {
        cls: "consent-badge",
        dataset: { consented: String(Boolean(p.consented)) },
        text: t(p.consented ? "participant.consented" : "participant.notConsented"),
      })
    : null;
  if (state.mode !== "chat" && p.role !== "recorder") {
    const a = el("span", { cls: "media-icon" });
    setMediaIcon(a, "audio", Boolean(p.audio));
    const v = el("span", { cls: "media-icon" });
    setMediaIcon(v, "video", Boolean(p.video));
    icons.append(a, v);
  }
  if (p.chat_muted) {
    icons.append(el("span", { cls: "media-icon", dataset: { on: "false", kind: "chat" }, attrs: { title: t("participant.chatMuted") } }, [icon("chatOff")]));
  }
  if (showCaucus) {
    icons.append(el("span", { cls: "media-icon", dataset: { kind: "caucus" }, attrs: { title: t("participant.inCaucus") } }, [icon("users")]));
  }
  const avatar = el("span", { cls: "avatar", text: initials(p.name), dataset: { role: p.role } });
  return el(
    "li",
    {
      cls: "roster-entry",
      attrs: {
        "data-testid": "roster-entry",
        "data-participant-id": p.participant_id,
        "data-status": p.status,
        "data-role": p.role,
        "data-connected": String(p.connected !== false),
        "data-audio": String(Boolean(p.audio)),
        "data-video": String(Boolean(p.video)),
        "data-chat-muted": String(Boolean(p.chat_muted)),
        "data-consented": consentShown ? String(Boolean(p.consented)) : null,
        "data-self": String(me),
      },
    },
    [
      el("div", { cls: "roster-main" }, [
        avatar,
        el("div", { cls: "roster-text" }, [name, el("span", { cls: "roster-meta", text: meta.join(" · ") }), consent]),
        icons,
      ]),
      el("div", { cls: "roster-actions" }, rosterActions(p)),
    ],
  );
}

function renderRoster() {
  const t = state.t;
  const all = participants();
  const order = { mediator: 0, bank_representative: 1, borrower: 2, lender: 3, recorder: 4 };
  const sorted = [...all].sort((a, b) => (order[a.role] ?? 9) - (order[b.role] ?? 9) || String(a.name).localeCompare(String(b.name)));
  const lobby = sorted.filter((p) => p.status === "lobby");
  const admitted = sorted.filter((p) => p.status !== "lobby");
  const showLobby = isMediator() && lobby.length > 0;
  $("roster-lobby-group").hidden = !showLobby;
  $("roster-lobby").replaceChildren(...(showLobby ? lobby.map(rosterEntry) : []));
  $("roster-lobby-count").textContent = t("roster.count", { n: lobby.length });
  $("roster-room").replaceChildren(
    ...(admitted.length ? admitted.map(rosterEntry) : [el("li", { cls: "roster-empty", text: t("roster.empty") })]),
  );
  $("roster-room-count").textContent = t("roster.count", { n: admitted.length });

  const badge = $("people-badge");
  badge.hidden = !showLobby;
  badge.textContent = String(lobby.length);

  const callout = $("lobby-callout");
  callout.hidden = !showLobby;
  if (showLobby) {
    const names = lobby.map((p) => p.name).join(state.lang === "en" ? ", " : "、");
    callout.replaceChildren(
      icon("users"),
      el("span", { text: t("mediator.lobbyCallout", { n: lobby.length, names }) }),
      button(t("mediator.lobbyView"), { cls: "btn btn-small btn-on-dark", onClick: () => selectPanel("people") }),
    );
  }
}

function renderMediatorControls() {
  const mediator = isMediator() && state.phase === "room";
  const locked = Boolean(state.room && state.room.locked);
  const lock = $("lock-room");
  lock.hidden = !mediator;
  lock.dataset.locked = String(locked);
  lock.textContent = state.t(locked ? "mediator.unlock" : "mediator.lock");
  $("end-session").hidden = !mediator;
  $("lock-indicator").hidden = !(locked && state.phase === "room");
}

function renderCaucus() {
  const banner = $("caucus-banner");
  const active = state.phase === "room" && (state.caucusExcluded || Boolean(state.caucusMembers));
  banner.hidden = !active;
  $("chat-channel-hint").hidden = !(active && !state.caucusExcluded);
  if (!active) {
    banner.dataset.state = "none";
    return;
  }
  banner.querySelector(".caucus-icon").replaceChildren(icon("users"));
  if (state.caucusExcluded) {
    banner.dataset.state = "excluded";
    $("caucus-text").textContent = state.t("caucus.excluded");
    $("close-caucus").hidden = true;
    return;
  }
  banner.dataset.state = "member";
  const others = state.caucusMembers.filter((id) => id !== selfId()).map(nameOf);
  $("caucus-text").textContent = others.length
    ? state.t("caucus.member", { names: others.join(state.lang === "en" ? ", " : "、") })
    : state.t("caucus.memberNoNames");
  $("close-caucus").hidden = !isMediator();
}

// --- chat ---------------------------------------------------------------------------------------------------

function formatTime(value) {
  const date = parseTime(value);
  if (!date) return "";
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  const options = sameDay
    ? { hour: "2-digit", minute: "2-digit" }
    : { month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit" };
  return new Intl.DateTimeFormat(state.lang, options).format(date);
}

function messageNode(msg) {
  const t = state.t;
  const own = msg.participant_id === selfId();
  const deleted = Boolean(msg.deleted);
  const date = parseTime(msg.sent_at);
  const head = el("div", { cls: "msg-head" }, [
    el("span", { cls: "msg-name", text: own ? `${msg.name} ${t("participant.you")}` : msg.name }),
    el("span", { cls: "msg-role", text: roleLabel(msg.role) }),
    msg.channel === "caucus" ? el("span", { cls: "msg-tag", text: t("chat.caucusTag") }) : null,
    el("time", { cls: "msg-time", text: formatTime(msg.sent_at), attrs: { datetime: date ? date.toISOString() : null } }),
  ]);
  if (isMediator() && !deleted && !msg.pending) {
    head.append(
      el("button", {
        cls: "msg-delete",
        text: t("mediator.deleteMessage"),
        attrs: { type: "button", "data-testid": `delete-${msg.seq}` },
      }),
    );
    head.lastChild.addEventListener("click", () =>
      act(async () => {
        await state.client.deleteMessage(msg.seq);
        markDeleted(msg.seq, { by: selfId(), at: new Date().toISOString() });
      }),
    );
  }
  return el(
    "li",
    {
      cls: "msg",
      attrs: {
        "data-testid": "chat-message",
        "data-seq": String(msg.seq),
        "data-participant-id": msg.participant_id,
        "data-own": String(own),
        "data-channel": msg.channel || "main",
        "data-deleted": String(deleted),
        "data-pending": msg.pending ? "true" : null,
      },
    },
    [
      head,
      el("p", { cls: "msg-text", text: msg.text }),
      deleted ? el("p", { cls: "msg-deleted-note", attrs: { "data-testid": "deleted-note" }, text: t("chat.deleted") }) : null,
    ],
  );
}

function chatList() {
  return $("chat-list");
}

function nearBottom(list) {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
}

/** Insert or update one message, in seq order. */
function upsertMessage(msg, { fromAck = false } = {}) {
  if (!msg || !Number.isInteger(msg.seq)) return;
  if (fromAck && state.messages.has(msg.seq)) return; // the broadcast came first
  if (msg.deleted && !isMediator()) {
    onMessageDeleted(msg.seq);
    return;
  }
  const list = chatList();
  const stick = nearBottom(list) || msg.participant_id === selfId();
  const isNew = !state.messages.has(msg.seq);
  state.messages.set(msg.seq, msg);
  const node = messageNode(msg);
  const existing = list.querySelector(`[data-seq="${msg.seq}"]`);
  if (existing) {
    existing.replaceWith(node);
  } else {
    const after = [...list.children].find((li) => Number(li.dataset.seq) > msg.seq);
    list.insertBefore(node, after || null);
  }
  $("chat-empty").hidden = state.messages.size > 0;
  if (msg.participant_id && state.typing.has(msg.participant_id)) clearTyping(msg.participant_id);
  if (stick) list.scrollTop = list.scrollHeight;
  if (isNew && !fromAck && msg.participant_id !== selfId() && !chatVisible()) {
    state.unread += 1;
    renderUnread();
  }
}

function markDeleted(seq, deleted) {
  const msg = state.messages.get(seq);
  if (!msg) return;
  upsertMessage({ ...msg, deleted: msg.deleted || deleted || { by: null, at: null } });
}

function onMessageDeleted(seq) {
  if (!Number.isInteger(seq)) return;
  if (isMediator()) {
    markDeleted(seq);
    return;
  }
  state.messages.delete(seq);
  const node = chatList().querySelector(`[data-seq="${seq}"]`);
  if (node) node.remove();
  $("chat-empty").hidden = state.messages.size > 0;
}

function renderChatList() {
  const list = chatList();
  const sorted = [...state.messages.values()].sort((a, b) => a.seq - b.seq);
  list.replaceChildren(...sorted.map(messageNode));
  $("chat-empty").hidden = sorted.length > 0;
  list.scrollTop = list.scrollHeight;
}

async function loadHistory() {
  if (!state.client || state.status !== "admitted") return;
  try {
    const { messages } = await state.client.chatHistory();
    const history = Array.isArray(messages) ? messages : [];
    const maxSeq = history.reduce((m, msg) => Math.max(m, msg.seq || 0), 0);
    const merged = new Map();
    for (const msg of history) {
      if (msg.deleted && !isMediator()) continue;
      merged.set(msg.seq, msg);
    }
    // Messages delivered while the history was on its way.
    for (const [seq, msg] of state.messages) if (seq > maxSeq && !merged.has(seq)) merged.set(seq, msg);
    state.messages = merged;
    renderChatList();
  } catch (err) {
    log("chat_history failed", err);
  }
}

function cleanChatText(raw) {
  // The server refuses control characters other than newline; tabs become spaces.
  return raw
    .replace(/\r\n?/g, "\n")
    .replace(/\t/g, "    ")
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g, "")
    .normalize("NFC")
    .trim();
}

async function sendChat(event) {
  if (event) event.preventDefault();
  const input = $("chat-input");
  const text = cleanChatText(input.value);
  if (!text || state.chatMuted || state.status !== "admitted") return;
  if ([...text].length > MAX_CHAT) {
    notify(state.t("chat.tooLong"), { tone: "error", key: "chat" });
    return;
  }
  const original = input.value;
  input.value = "";
  autoGrow();
  stopTyping();
  try {
    const { seq, sent_at: sentAt } = await state.client.sendChat(text);
    const self = state.self;
    upsertMessage(
      {
        seq,
        sent_at: sentAt,
        participant_id: self.participant_id,
        name: self.name,
        role: self.role,
        text,
        channel: state.caucusMembers && !state.caucusExcluded ? "caucus" : "main",
      },
      { fromAck: true },
    );
  } catch (err) {
    if (!input.value) input.value = original;
    autoGrow();
    notifyError(err);
  }
}

function autoGrow() {
  const input = $("chat-input");
  input.rows = Math.min(5, Math.max(1, input.value.split("\n").length));
}

function onChatInput() {
  autoGrow();
  if (!state.client || state.status !== "admitted" || state.chatMuted) return;
  if (!$("chat-input").value.trim()) {
    stopTyping();
    return;
  }
  if (!state.typingActive) {
    state.typingActive = true;
    state.client.typing(true).catch(() => {});
  }
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(() => stopTyping(), TYPING_IDLE_MS);
}

function stopTyping({ send = true } = {}) {
  clearTimeout(state.typingTimer);
  if (!state.typingActive) return;
  state.typingActive = false;
  if (send && state.client && state.client.joined) state.client.typing(false).catch(() => {});
}

function onTyping({ participant_id: id, active }) {
  if (!id || id === selfId()) return;
  clearTyping(id, { render: false });
  if (active) {
    const timer = setTimeout(() => clearTyping(id), TYPING_EXPIRE_MS);
    state.typing.set(id, { timer });
  }
  renderTyping();
}

function clearTyping(id, { render = true } = {}) {
  const entry = state.typing.get(id);
  if (entry) clearTimeout(entry.timer);
  state.typing.delete(id);
  if (render) renderTyping();
}

function renderTyping() {
  const box = $("typing");
  const names = [...state.typing.keys()].map(nameOf);
  box.hidden = names.length === 0;
  box.textContent = names.length === 1
    ? state.t("chat.typingOne", { name: names[0] })
    : names.length > 1
      ? state.t("chat.typingMany", { names: names.join(state.lang === "en" ? ", " : "、") })
      : "";
}

function renderChatControls() {
  const admitted = state.status === "admitted" && state.phase === "room";
  const input = $("chat-input");
  const muted = state.chatMuted;
  input.disabled = !admitted || muted;
  $("chat-send").disabled = !admitted || muted;
  $("chat-muted-note").hidden = !muted;
}

function chatVisible() {
  return state.phase === "room" && (state.sidePanel === "chat" || window.matchMedia("(min-width: 861px)").matches);
}

function renderUnread() {
  if (chatVisible()) state.unread = 0;
  const badge = $("chat-badge");
  badge.hidden = state.unread === 0;
  badge.textContent = String(state.unread);
}

function selectPanel(name) {
  state.sidePanel = name;
  for (const tab of document.querySelectorAll(".side-tab")) {
    tab.setAttribute("aria-selected", String(tab.dataset.panel === name));
  }
  $("panel-chat").dataset.active = String(name === "chat");
  $("panel-people").dataset.active = String(name === "people");
  renderUnread();
}

// --- mediator room actions, leaving, mute requests -------------------------------------------------------

async function toggleLock() {
  const locked = Boolean(state.room && state.room.locked);
  await act(() => state.client.lockRoom(!locked));
}

async function endSession() {
  const answer = await confirmDialog({
    title: state.t("dialog.end.title"),
    text: state.t("dialog.end.text"),
    confirmLabel: state.t("dialog.end.confirm"),
    danger: true,
  });
  if (answer.confirmed) await act(() => state.client.endSession());
}

async function leave() {
  const answer = await confirmDialog({
    title: state.t("dialog.leave.title"),
    text: state.t(state.staff ? "dialog.leave.textStaff" : "dialog.leave.text"),
    confirmLabel: state.t("dialog.leave.confirm"),
  });
  if (!answer.confirmed) return;
  try {
    await state.client.leaveRoom();
  } catch (err) {
    log("leave_room failed", err);
    state.client.disconnect();
  }
  terminate("left", {
    actions: [{ label: "action.rejoin", primary: true, testid: "rejoin", run: () => location.reload() }],
  });
}

function onMuteRequested({ audio, video }) {
  const key = audio && video ? "both" : audio ? "audio" : video ? "video" : null;
  if (!key) return;
  notify(state.t(`notice.muteRequest.${key}`), {
    tone: "warning",
    key: "mute-request",
    testid: "mute-request",
    timeout: 0,
    actions: [
      {
        label: state.t("notice.muteRequest.comply"),
        testid: "mute-request-comply",
        run: async () => {
          const track = liveTrack("audio");
          if (audio && track && track.enabled) await toggleAudio();
          if (video && liveTrack("video")) await toggleVideo();
        },
      },
    ],
  });
}

// --- views ----------------------------------------------------------------------------------------------------

function moveDevices(containerId) {
  let devices = $("devices");
  if (!devices) {
    devices = $("tpl-devices").content.firstElementChild.cloneNode(true);
    for (const node of devices.querySelectorAll("[data-i18n]")) node.textContent = state.t(node.dataset.i18n);
    devices.querySelector("#camera-select").addEventListener("change", (e) => switchDevice("video", e.target.value));
    devices.querySelector("#mic-select").addEventListener("change", (e) => switchDevice("audio", e.target.value));
  }
  const container = $(containerId);
  if (container && devices.parentNode !== container) container.append(devices);
}

/** The recording indicator follows the room's `recording` flag (room_state, recording_* notices). */
function renderRecording() {
  const recording = Boolean(state.room && state.room.recording) && state.phase !== "over";
  $("recording-indicator").hidden = !recording;
  document.body.dataset.recording = String(recording);
  renderConsent();
  renderRecordingControls();
}

// --- recording and consent (docs/protocol.md, "Recording and consent") -----------------------------

function isParty() {
  return Boolean(state.self && PARTY_ROLES.includes(state.self.role));
}

function recordsSealed() {
  return Boolean(state.self && state.self.records_sealed);
}

/** Whether this session can be recorded at all: sealed records and a video session. */
function recordingApplies() {
  return recordsSealed() && state.mode === "video";
}

function currentNotice() {
  return pickNotice(state.self && state.self.recording_notice, state.lang);
}

function selfConsented() {
  const me = participant(selfId());
  return Boolean(me && me.consented);
}

/** Our own roster entry's `consented`, until the next room_state says the same. */
function setOwnConsent(consented) {
  if (!state.room || !Array.isArray(state.room.participants)) return;
  state.room = {
    ...state.room,
    participants: state.room.participants.map((p) => (p.participant_id === selfId() ? { ...p, consented } : p)),
  };
}

/** "Li Wei (Borrower), Bank (Bank representative)" in the page's language. */
function nameList(list) {
  return list
    .map((p) => state.t("recording.who", { name: p.name, role: roleLabel(p.role) }))
    .join(state.lang === "en" ? ", " : "、");
}

/** A party's notice and consent: the full notice until it chooses, then a chip in the header. */
function renderConsent() {
  const t = state.t;
  const notice = currentNotice();
  const show = (state.phase === "lobby" || state.phase === "room") && isParty() && recordingApplies() && Boolean(notice);
  const consented = show && selfConsented();
  const ask = show && !consented && !state.consentDeclined;
  const panel = $("consent-panel");
  panel.hidden = !ask;
  if (ask) {
    const text = $("consent-notice");
    text.textContent = notice.text;
    text.lang = notice.language;
    text.dataset.sha256 = notice.sha256;
    $("consent-accept").disabled = state.consentBusy;
    $("consent-decline").disabled = state.consentBusy;
    $("consent-accept").textContent = t(state.consentBusy ? "consent.sending" : "consent.accept");
  }
  const chip = $("consent-chip");
  chip.hidden = !show || ask;
  chip.dataset.state = show && !ask ? (consented ? "consented" : "declined") : "";
  $("consent-chip-label").textContent = consented ? t("consent.chip.consented") : t("consent.chip.declined");
  chip.title = consented ? t("consent.state.consented") : t("consent.state.declined");
  $("consent-chip-icon").replaceChildren(icon(consented ? "check" : "info"));
  $("consent-withdraw").hidden = !consented;
  $("consent-withdraw").disabled = state.consentBusy;
  $("consent-review").hidden = consented;
}

async function giveConsent() {
  const notice = currentNotice();
  if (!notice || state.consentBusy || !state.client) return;
  state.consentBusy = true;
  renderConsent();
  try {
    await state.client.giveConsent(notice.sha256);
    setOwnConsent(true);
    state.consentDeclined = false;
    notify(state.t("consent.given"), { key: "consent" });
  } catch (err) {
    notifyError(err);
  } finally {
    state.consentBusy = false;
    renderAll();
  }
}

function declineConsent() {
  state.consentDeclined = true;
  notify(state.t("consent.declinedNotice"), { key: "consent", timeout: 10000 });
  renderAll();
}

function reviewConsent() {
  state.consentDeclined = false;
  renderAll();
  $("consent-panel").focus();
}

async function withdrawConsent() {
  if (state.consentBusy || !state.client) return;
  const answer = await confirmDialog({
    title: state.t("dialog.withdraw.title"),
    text: state.t("dialog.withdraw.text"),
    confirmLabel: state.t("dialog.withdraw.confirm"),
    danger: true,
  });
  if (!answer.confirmed) return;
  state.consentBusy = true;
  renderConsent();
  try {
    await state.client.withdrawConsent();
    setOwnConsent(false);
    state.consentDeclined = true;
    notify(state.t("consent.withdrawn"), { key: "consent" });
  } catch (err) {
    if (err && err.code === "no_consent") {
      setOwnConsent(false); // the server has none on record: show it so
      state.consentDeclined = true;
    } else {
      notifyError(err);
    }
  } finally {
    state.consentBusy = false;
    renderAll();
  }
}

/** The mediator's start/stop controls and why starting is not possible yet. */
function renderRecordingControls() {
  const t = state.t;
  const mediator = isMediator() && state.phase === "room";
  const sealed = recordsSealed();
  const canRecord = mediator && sealed && state.mode === "video";
  const recording = Boolean(state.room && state.room.recording);
  const missing = canRecord && !recording ? missingConsents(state.room) : [];
  const start = $("start-recording");
  const stop = $("stop-recording");
  start.hidden = !canRecord || recording;
  stop.hidden = !canRecord || !recording;
  start.disabled = missing.length > 0 || state.recordingBusy;
  stop.disabled = state.recordingBusy;
  const blocked = $("recording-blocked-reason");
  blocked.hidden = missing.length === 0;
  blocked.textContent = missing.length ? t("recording.blocked", { names: nameList(missing) }) : "";
  start.title = missing.length ? blocked.textContent : "";
  // Nothing is recorded or sealed without a compliance key: a discreet note for the mediator only.
  const unavailable = mediator && !sealed;
  $("recording-unavailable").hidden = !unavailable;
  const note = $("recording-note");
  note.hidden = blocked.hidden && !unavailable;
  note.dataset.kind = missing.length ? "blocked" : "unavailable";
  $("recording-note-icon").replaceChildren(icon(missing.length ? "alert" : "info"));
}

async function startRecording() {
  if (state.recordingBusy || !state.client) return;
  state.recordingBusy = true;
  renderRecordingControls();
  try {
    await state.client.startRecording();
  } catch (err) {
    const missing = missingConsents(state.room);
    if (err && err.code === "consent_missing" && missing.length) {
      notify(state.t("recording.error.consentMissing", { names: nameList(missing) }), { tone: "error", key: "recording" });
    } else {
      if (err && err.code === "recording_active" && state.room) state.room = { ...state.room, recording: true };
      notifyError(err);
    }
  } finally {
    state.recordingBusy = false;
    renderAll();
  }
}

async function stopRecording() {
  if (state.recordingBusy || !state.client) return;
  state.recordingBusy = true;
  renderRecordingControls();
  try {
    await state.client.stopRecording();
  } catch (err) {
    if (err && err.code === "not_recording" && state.room) state.room = { ...state.room, recording: false };
    notifyError(err);
  } finally {
    state.recordingBusy = false;
    renderAll();
  }
}

/** Admit; while recording, admitting a party without consent stops the recording: ask first. */
async function admitParticipant(p) {
  if (state.room && state.room.recording && PARTY_ROLES.includes(p.role) && !p.consented) {
    const answer = await confirmDialog({
      title: state.t("dialog.admitUnconsented.title", { name: p.name }),
      text: state.t("dialog.admitUnconsented.text", { name: p.name }),
      confirmLabel: state.t("dialog.admitUnconsented.confirm"),
    });
    if (!answer.confirmed) return;
  }
  await act(() => state.client.admit(p.participant_id));
}

/** The header: case number, scheduled start (local time) and planned duration from join_room's `schedule`. */
function renderHeader() {
  const t = state.t;
  const self = state.self;
  const schedule = self && self.schedule && typeof self.schedule === "object" ? self.schedule : {};
  const caseNumber = typeof schedule.case_number === "string" && schedule.case_number ? schedule.case_number : null;
  const start = parseTime(schedule.starts_at);
  const minutes = Number.isInteger(schedule.duration_minutes) && schedule.duration_minutes > 0 ? schedule.duration_minutes : null;
  $("session-meta").hidden = !self;
  $("meta-case").hidden = !caseNumber;
  $("meta-case-value").textContent = caseNumber || "";
  $("meta-scheduled").hidden = !start;
  const scheduled = $("meta-scheduled-value");
  if (start) {
    const time = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    scheduled.textContent = new Intl.DateTimeFormat(state.lang, { month: "short", day: "numeric", weekday: "short", ...time }).format(start);
    // The full local date with its time zone, for whoever wonders which clock it is.
    scheduled.title = new Intl.DateTimeFormat(state.lang, {
      year: "numeric", month: "long", day: "numeric", weekday: "long", ...time, timeZoneName: "short",
    }).format(start);
    scheduled.dataset.startsAt = start.toISOString();
  } else {
    scheduled.textContent = "";
    scheduled.removeAttribute("title");
  }
  $("meta-duration").hidden = !minutes;
  $("meta-duration-value").textContent = minutes ? t("meta.durationValue", { minutes }) : "";
  $("meta-mode").hidden = !state.mode;
  $("meta-mode-value").textContent = state.mode ? t(`mode.${state.mode}`) : "";
  $("meta-elapsed").hidden = !state.joinedAt;
  tickTimer();
}

function tickTimer() {
  if (!state.joinedAt) return;
  $("meta-elapsed-value").textContent = formatDuration((state.endedAt || Date.now()) - state.joinedAt);
}

function renderLobby() {
  const t = state.t;
  const inLobby = state.phase === "lobby";
  $("prejoin-panel").hidden = inLobby;
  $("lobby-panel").hidden = !inLobby;
  if (!inLobby) {
    $("prejoin-panel").querySelector(".card-lead").textContent = t(state.staff ? "prejoin.leadStaff" : "prejoin.lead");
    return;
  }
  const present = Boolean(state.room && state.room.mediator_present);
  const presence = $("mediator-presence");
  presence.dataset.present = String(present);
  $("mediator-presence-label").textContent = t(present ? "lobby.mediatorPresent" : "lobby.mediatorAbsent");
  $("lobby-self").textContent = state.self ? t("lobby.self", { name: state.self.name, role: roleLabel(state.self.role) }) : "";
}

function renderAll() {
  const phase = state.phase;
  document.body.dataset.phase = state.statuses.block ? "over" : phase;
  $("view-signin").hidden = phase !== "signin";
  $("view-waiting").hidden = phase !== "prejoin" && phase !== "lobby";
  $("view-room").hidden = phase !== "room";
  $("view-room").dataset.mode = state.mode || "video";
  const chatOnly = state.mode === "chat";
  document.body.dataset.mode = state.mode || "";
  $("preview-pane").hidden = chatOnly;
  $("lobby-devices").hidden = chatOnly;
  $("view-waiting").dataset.preview = chatOnly ? "off" : "on";

  const controls = $("control-media");
  if (phase === "room") {
    if (controls.parentNode !== $("control-bar")) $("control-bar").prepend(controls);
    moveDevices("devices-room");
  } else {
    if (controls.parentNode !== $("preview-controls")) $("preview-controls").append(controls);
    moveDevices(phase === "lobby" ? "devices-lobby" : "devices-home");
    $("settings-panel").hidden = true;
    $("toggle-settings").setAttribute("aria-expanded", "false");
  }

  renderHeader();
  renderRecording();
  renderLobby();
  renderTiles();
  if (phase === "room") {
    renderRoster();
    renderCaucus();
    renderMediatorControls();
    renderTyping();
  } else {
    renderMediatorControls();
    renderCaucus();
  }
  renderChatControls();
  renderUnread();
  updateJoinButton();
  renderStatus();
}

function wireStaticControls() {
  $("lang-select").addEventListener("change", (e) => setLanguage(e.target.value));
  $("signin-form").addEventListener("submit", submitSignIn);
  $("join-button").addEventListener("click", join);
  $("lobby-leave").addEventListener("click", leave);
  $("leave").addEventListener("click", leave);
  $("toggle-audio").addEventListener("click", toggleAudio);
  $("toggle-video").addEventListener("click", toggleVideo);
  $("toggle-settings").addEventListener("click", () => {
    const panel = $("settings-panel");
    panel.hidden = !panel.hidden;
    $("toggle-settings").setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) refreshDevices();
  });
  $("settings-close").addEventListener("click", () => {
    $("settings-panel").hidden = true;
    $("toggle-settings").setAttribute("aria-expanded", "false");
  });
  $("lock-room").addEventListener("click", toggleLock);
  $("end-session").addEventListener("click", endSession);
  $("start-recording").addEventListener("click", startRecording);
  $("stop-recording").addEventListener("click", stopRecording);
  $("consent-accept").addEventListener("click", giveConsent);
  $("consent-decline").addEventListener("click", declineConsent);
  $("consent-withdraw").addEventListener("click", withdrawConsent);
  $("consent-review").addEventListener("click", reviewConsent);
  $("close-caucus").addEventListener("click", () => act(() => state.client.closeCaucus()));
  $("chat-form").addEventListener("submit", sendChat);
  const input = $("chat-input");
  input.addEventListener("input", onChatInput);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      sendChat();
    }
  });
  for (const tab of document.querySelectorAll(".side-tab")) {
    tab.addEventListener("click", () => selectPanel(tab.dataset.panel));
  }
  $("chat-list").addEventListener("scroll", renderUnread);
  $("dialog-cancel").addEventListener("click", () => $("dialog").close("cancel"));
  if (navigator.mediaDevices && typeof navigator.mediaDevices.addEventListener === "function") {
    navigator.mediaDevices.addEventListener("devicechange", () => refreshDevices());
  }
  setInterval(tickTimer, 1000);
}

main().catch((err) => {
  console.error(err);
  blockWith("error");
});
