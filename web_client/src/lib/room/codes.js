// The names and codes of the room protocol (docs/protocol.md): requests, notices, error codes.

/** RoomClient method name -> protocol request event. */
export const REQUESTS = Object.freeze({
  joinRoom: "join_room",
  leaveRoom: "leave_room",
  admit: "admit",
  refuse: "refuse",
  admitDevice: "admit_device",
  refuseDevice: "refuse_device",
  returnToLobby: "return_to_lobby",
  sendChat: "send_chat",
  chatHistory: "chat_history",
  typing: "typing",
  mediaState: "media_state",
  signal: "signal",
  publishMedia: "publish_media",
  answerMedia: "answer_media",
  mediaCandidate: "media_candidate",
  mediaLayout: "media_layout",
  muteChat: "mute_chat",
  requestMuteMedia: "request_mute_media",
  removeParticipant: "remove_participant",
  lockRoom: "lock_room",
  endSession: "end_session",
  deleteMessage: "delete_message",
  openCaucus: "open_caucus",
  closeCaucus: "close_caucus",
  startScreenShare: "start_screen_share",
  stopScreenShare: "stop_screen_share",
  raiseHand: "raise_hand",
  lowerHand: "lower_hand",
  giveConsent: "give_consent",
  withdrawConsent: "withdraw_consent",
  startRecording: "start_recording",
  stopRecording: "stop_recording",
});

/** Server notices, re-emitted by RoomClient under the same names. */
export const NOTICES = Object.freeze([
  "room_state",
  "admitted",
  "returned_to_lobby",
  "refused",
  "removed",
  "session_ended",
  "chat_message",
  "message_deleted",
  "typing",
  "signal",
  "media_isolation",
  "media_offer",
  "media_reset",
  "caucus_started",
  "caucus_in_progress",
  "caucus_ended",
  "chat_muted",
  "keys_shared",
  "mute_media_requested",
  "screen_share_stopped",
  "hand_lowered",
  "recording_started",
  "recording_stopped",
  "device_replaced",
  "access_revoked",
  "error",
]);

/** Codes a refused connection carries in connect_error's data. */
export const CONNECT_ERROR_CODES = Object.freeze([
  "bad_token",
  "not_a_participant",
  "bad_session",
  "removed",
  "room_locked",
  "session_ended",
  "rate_limited",
  "unavailable", // used by the server (room store briefly unreachable), not listed in docs/protocol.md
]);

/** Codes a request's ack (and the `error` notice) may carry: the shared ones, then per request. */
export const REQUEST_ERROR_CODES = Object.freeze([
  "invalid_payload",
  "not_joined",
  "not_admitted",
  "forbidden",
  "unknown_participant",
  "rate_limited",
  "session_ended",
  "unknown_event",
  "internal",
  "already_joined",
  "not_in_lobby",
  "no_second_device",
  "device_waiting",
  "cannot_target_self",
  "chat_muted",
  "empty_message",
  "message_too_long",
  "isolated",
  "chat_only",
  "unknown_message",
  "already_deleted",
  "caucus_active",
  "no_caucus",
  "unknown_notice",
  "no_consent",
  "recording_active",
  "no_recipients",
  "consent_missing",
  "not_recording",
  "invalid_ciphertext",
  "invalid_kid",
  "wrong_channel",
  "no_device_key",
  "encryption_required",
  "not_recorded",
  "unknown_recipient",
  "share_active",
  "not_sharing",
  "hand_not_raised",
  "share_unsupported",
  // Used by the server, not listed in docs/protocol.md:
  "unavailable", // the room store is briefly unreachable; nothing changed
  "replaced", // an `error` notice: the same participant joined from another window (then disconnected)
]);

/** Codes this client produces itself (never sent by the server). */
export const CLIENT_ERROR_CODES = Object.freeze([
  "timeout", // no ack within the timeout
  "disconnected", // the socket is not connected; the request was not sent
  "connect_failed", // the server could not be reached (socket.io keeps retrying)
  "connect_refused", // the server refused the connection without a documented code (no retry)
  "bad_ack", // the ack was not {ok: ...}
]);

/** Roles that must consent before a session is recorded (docs/protocol.md, "Recording and consent"). */
export const PARTY_ROLES = Object.freeze(["borrower", "lender", "bank_representative"]);

/** `recording_stopped` reasons. */
export const RECORDING_STOP_REASONS = Object.freeze([
  "mediator",
  "consent_withdrawn",
  "consent_missing",
  "session_ended",
  "recorder_lost",
]);
