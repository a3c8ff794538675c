// The chat panel: messages in seq order (own, caucus, deleted), history, sending, typing, the
// mediator's delete; the side panel's tabs and unread badge.
import { parseTime } from "../../lib/room/time.js";
import { $, h } from "../dom.js";
import { chatContent, onRevealed, reveal } from "./e2ee.js";
import { act, notify, notifyError } from "./notices.js";
import { isMediator, listNames, log, nameOf, roleLabel, selfId } from "./state.js";

/**
 * @typedef {import("./state.js").RoomPageState} RoomPageState
 * @typedef {import("../../lib/room/types.js").ChatMessage} ChatMessage
 */

const MAX_CHAT = 2000;
/** Typing stops being announced after this long without a key. */
const TYPING_IDLE_MS = 3000;
/** Another participant's typing is forgotten after this long without news. */
const TYPING_EXPIRE_MS = 8000;

/**
 * @param {RoomPageState} state
 * @param {unknown} value
 */
function formatTime(state, value) {
  const date = parseTime(value);
  if (!date) return "";
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  /** @type {Intl.DateTimeFormatOptions} */
  const options = sameDay
    ? { hour: "2-digit", minute: "2-digit" }
    : { month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit" };
  return new Intl.DateTimeFormat(state.lang, options).format(date);
}

/**
 * @param {RoomPageState} state
 * @param {ChatMessage} msg
 */
function messageNode(state, msg) {
  const t = state.t;
  const own = msg.participant_id === selfId(state);
  const deleted = Boolean(msg.deleted);
  const date = parseTime(msg.sent_at);
  const head = h("div", { class: "msg-head" },
    h("span", { class: "msg-name", text: own ? `${msg.name} ${t("participant.you")}` : msg.name }),
    h("span", { class: "msg-role", text: roleLabel(state, msg.role) }),
    msg.channel === "caucus" ? h("span", { class: "msg-tag", text: t("chat.caucusTag") }) : null,
    h("time", { class: "msg-time", text: formatTime(state, msg.sent_at), datetime: date ? date.toISOString() : null }));
  if (isMediator(state) && !deleted && !msg.pending) {
    head.append(h("button", { type: "button", class: "msg-delete", text: t("mediator.deleteMessage"), testid: `delete-${msg.seq}`,
      on: { click: () => act(state, async () => {
        await state.client?.deleteMessage(msg.seq);
        markDeleted(state, msg.seq, { by: selfId(state), at: new Date().toISOString() });
      }) } }));
  }
  return h("li", {
    class: "msg",
    "data-testid": "chat-message",
    "data-seq": String(msg.seq),
    "data-participant-id": msg.participant_id,
    "data-own": String(own),
    "data-channel": msg.channel || "main",
    "data-deleted": String(deleted),
    "data-pending": msg.pending ? "true" : null,
  },
  head,
  msg.undecryptable
    ? h("p", { class: "msg-text msg-undecryptable", "data-testid": "undecryptable", text: t("chat.undecryptable") })
    : h("p", { class: "msg-text", text: msg.text }),
  deleted ? h("p", { class: "msg-deleted-note", "data-testid": "deleted-note", text: t("chat.deleted") }) : null);
}

/** @returns {HTMLElement} */
function chatList() {
  return $("chat-list");
}

/** @param {HTMLElement} list */
function nearBottom(list) {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
}

// A message decrypted late (its key arrived after it) is drawn again.
onRevealed((state, msg) => upsertMessage(state, msg));

/** Insert or update one message, in seq order. */
export function upsertMessage(state, msg, { fromAck = false } = {}) {
  if (!msg || !Number.isInteger(msg.seq)) return;
  if (fromAck && state.messages.has(msg.seq)) return; // the broadcast came first
  if (msg.deleted && !isMediator(state)) {
    onMessageDeleted(state, msg.seq);
    return;
  }
  const list = chatList();
  const stick = nearBottom(list) || msg.participant_id === selfId(state);
  const isNew = !state.messages.has(msg.seq);
  state.messages.set(msg.seq, msg);
  const node = messageNode(state, msg);
  const existing = list.querySelector(`[data-seq="${msg.seq}"]`);
  if (existing) {
    existing.replaceWith(node);
  } else {
    const after = [...list.children].find((li) => Number(li.dataset.seq) > msg.seq);
    list.insertBefore(node, after || null);
  }
  $("chat-empty").hidden = state.messages.size > 0;
  if (msg.participant_id && state.typing.has(msg.participant_id)) clearTyping(state, msg.participant_id);
  if (stick) list.scrollTop = list.scrollHeight;
  if (isNew && !fromAck && msg.participant_id !== selfId(state) && !chatVisible(state)) {
    state.unread += 1;
    renderUnread(state);
  }
}

function markDeleted(state, seq, deleted) {
  const msg = state.messages.get(seq);
  if (!msg) return;
  upsertMessage(state, { ...msg, deleted: msg.deleted || deleted || { by: null, at: null } });
}

export function onMessageDeleted(state, seq) {
  if (!Number.isInteger(seq)) return;
  if (isMediator(state)) {
    markDeleted(state, seq);
    return;
  }
  state.messages.delete(seq);
  const node = chatList().querySelector(`[data-seq="${seq}"]`);
  if (node) node.remove();
  $("chat-empty").hidden = state.messages.size > 0;
}

/** @param {RoomPageState} state */
export function renderChatList(state) {
  const list = chatList();
  const sorted = [...state.messages.values()].sort((a, b) => a.seq - b.seq);
  list.replaceChildren(...sorted.map((msg) => messageNode(state, msg)));
  $("chat-empty").hidden = sorted.length > 0;
  list.scrollTop = list.scrollHeight;
}

/** @param {RoomPageState} state */
export async function loadHistory(state) {
  if (!state.client || state.status !== "admitted") return;
  try {
    const { messages } = await state.client.chatHistory();
    const history = await Promise.all((Array.isArray(messages) ? messages : []).map((msg) => reveal(state, msg)));
    const maxSeq = history.reduce((m, msg) => Math.max(m, msg.seq || 0), 0);
    const merged = new Map();
    for (const msg of history) {
      if (msg.deleted && !isMediator(state)) continue;
      merged.set(msg.seq, msg);
    }
    // Messages delivered while the history was on its way.
    for (const [seq, msg] of state.messages) if (seq > maxSeq && !merged.has(seq)) merged.set(seq, msg);
    state.messages = merged;
    renderChatList(state);
  } catch (err) {
    log(state, "chat_history failed", err);
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

export async function sendChat(state, event) {
  if (event) event.preventDefault();
  const input = $("chat-input");
  const text = cleanChatText(input.value);
  if (!text || state.chatMuted || state.status !== "admitted") return;
  if ([...text].length > MAX_CHAT) {
    notify(state, state.t("chat.tooLong"), { tone: "error", key: "chat" });
    return;
  }
  const original = input.value;
  input.value = "";
  autoGrow();
  stopTyping(state);
  try {
    const { seq, sent_at: sentAt } = await state.client.sendChat(await chatContent(state, text));
    const self = state.self;
    upsertMessage(state, 
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
    notifyError(state, err);
  }
}

function autoGrow() {
  const input = $("chat-input");
  input.rows = Math.min(5, Math.max(1, input.value.split("\n").length));
}

/** @param {RoomPageState} state */
export function onChatInput(state) {
  autoGrow();
  if (!state.client || state.status !== "admitted" || state.chatMuted) return;
  if (!$("chat-input").value.trim()) {
    stopTyping(state);
    return;
  }
  if (!state.typingActive) {
    state.typingActive = true;
    state.client.typing(true).catch(() => {});
  }
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(() => stopTyping(state), TYPING_IDLE_MS);
}

export function stopTyping(state, { send = true } = {}) {
  clearTimeout(state.typingTimer);
  if (!state.typingActive) return;
  state.typingActive = false;
  if (send && state.client && state.client.joined) state.client.typing(false).catch(() => {});
}

export function onTyping(state, { participant_id: id, active }) {
  if (!id || id === selfId(state)) return;
  clearTyping(state, id, { render: false });
  if (active) {
    const timer = setTimeout(() => clearTyping(state, id), TYPING_EXPIRE_MS);
    state.typing.set(id, { timer });
  }
  renderTyping(state);
}

function clearTyping(state, id, { render = true } = {}) {
  const entry = state.typing.get(id);
  if (entry) clearTimeout(entry.timer);
  state.typing.delete(id);
  if (render) renderTyping(state);
}

/** @param {RoomPageState} state */
export function renderTyping(state) {
  const box = $("typing");
  const names = [...state.typing.keys()].map((id) => nameOf(state, id));
  box.hidden = names.length === 0;
  box.textContent = names.length === 1
    ? state.t("chat.typingOne", { name: names[0] })
    : names.length > 1
      ? state.t("chat.typingMany", { names: listNames(state, names) })
      : "";
}

/** @param {RoomPageState} state */
export function renderChatControls(state) {
  const admitted = state.status === "admitted" && state.phase === "room";
  const input = $("chat-input");
  const muted = state.chatMuted;
  input.disabled = !admitted || muted;
  $("chat-send").disabled = !admitted || muted;
  $("chat-muted-note").hidden = !muted;
}

/** @param {RoomPageState} state */
function chatVisible(state) {
  return state.phase === "room" && (state.sidePanel === "chat" || window.matchMedia("(min-width: 861px)").matches);
}

/** @param {RoomPageState} state */
export function renderUnread(state) {
  if (chatVisible(state)) state.unread = 0;
  const badge = $("chat-badge");
  badge.hidden = state.unread === 0;
  badge.textContent = String(state.unread);
}

export function selectPanel(state, name) {
  state.sidePanel = name;
  for (const tab of document.querySelectorAll(".side-tab")) {
    tab.setAttribute("aria-selected", String(tab.dataset.panel === name));
  }
  $("panel-chat").dataset.active = String(name === "chat");
  $("panel-people").dataset.active = String(name === "people");
  renderUnread(state);
}
