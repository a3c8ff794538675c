// The reference of bench/sidebyside.py: a minimal socket.io 4 server with the same chat path as ours
// (join, lobby and admit; chat numbered per room, kept as history, broadcast to the room, acknowledged
// with {ok, seq, sent_at}), and nothing else: no case record, no sealing, no audit, no room store.
//
//   node reference.js PORT
//
// A client's auth is {room, role, name}; the first line on stdout is {"port": N} once it listens.
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const MAX_CHAT_CHARS = 2000;
const rooms = new Map(); // room -> {seq, history, members: Map(participant_id -> {socket, role, name, status})}
let participants = 0;

function roomOf(name) {
  let room = rooms.get(name);
  if (!room) {
    room = { seq: 0, history: [], members: new Map() };
    rooms.set(name, room);
  }
  return room;
}

const server = http.createServer();
const sockets = new Server(server, { serveClient: false, transports: ["websocket"] });

sockets.of("/room").on("connection", (socket) => {
  const auth = socket.handshake.auth || {};
  if (typeof auth.room !== "string" || typeof auth.role !== "string") {
    socket.disconnect(true);
    return;
  }
  const room = roomOf(auth.room);
  const participantId = `p${++participants}`;
  let member = null;
  const refuse = (ack, code, message) => ack({ ok: false, error: code, message });

  socket.on("join_room", (_payload, ack) => {
    const status = auth.role === "mediator" ? "admitted" : "lobby";
    member = { socket, role: auth.role, name: String(auth.name || auth.role), status };
    room.members.set(participantId, member);
    socket.join(auth.room);
    ack({ ok: true, participant_id: participantId, role: member.role, name: member.name, status });
  });

  socket.on("admit", (payload, ack) => {
    if (!member || member.role !== "mediator") return refuse(ack, "forbidden", "the mediator admits");
    const target = room.members.get(payload && payload.participant_id);
    if (!target || target.status !== "lobby") return refuse(ack, "not_in_lobby", "nobody of that id waits");
    target.status = "admitted";
    target.socket.emit("admitted", {});
    ack({ ok: true });
  });

  socket.on("send_chat", (payload, ack) => {
    if (!member || member.status !== "admitted") return refuse(ack, "not_admitted", "wait to be admitted");
    const text = payload && typeof payload.text === "string" ? payload.text.trim() : "";
    if (!text) return refuse(ack, "empty_message", "the message is empty");
    if (text.length > MAX_CHAT_CHARS) return refuse(ack, "message_too_long", "too long");
    const message = { seq: room.seq++, sent_at: new Date().toISOString(), participant_id: participantId,
                      name: member.name, role: member.role, text, channel: "main" };
    room.history.push(message);
    sockets.of("/room").to(auth.room).emit("chat_message", message);
    ack({ ok: true, seq: message.seq, sent_at: message.sent_at });
  });

  socket.on("chat_history", (_payload, ack) => {
    if (!member || member.status !== "admitted") return refuse(ack, "not_admitted", "wait to be admitted");
    ack({ ok: true, messages: room.history });
  });

  socket.on("disconnect", () => {
    room.members.delete(participantId);
  });
});

server.listen(Number(process.argv[2] || 0), "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + "\n");
});
