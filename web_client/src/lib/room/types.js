// The room protocol's payloads (docs/protocol.md) as JSDoc types, for the room's modules and tsc.

/**
 * @typedef {"mediator" | "bank_representative" | "borrower" | "lender" | "recorder"} Role
 * @typedef {"lobby" | "admitted"} ParticipantStatus
 * @typedef {"video" | "chat"} RoomMode
 *
 * @typedef {object} Participant A roster entry of `room_state`.
 * @property {string} participant_id
 * @property {string} name
 * @property {Role} role
 * @property {ParticipantStatus} status
 * @property {boolean} [connected]
 * @property {boolean} [audio]
 * @property {boolean} [video]
 * @property {boolean} [chat_muted]
 * @property {boolean} [in_caucus]
 * @property {boolean} [consented]
 * @property {boolean} [second_device_waiting] another device with this participant's credential waits (mediator, self)
 * @property {string | null} [public_key] the X25519 device key it joined with; null: its browser cannot encrypt
 *
 * @typedef {object} Caucus
 * @property {boolean} active
 * @property {string[]} [members] only for its members and the mediator
 *
 * @typedef {object} RoomState The body of `room_state` (and join_room's `room`).
 * @property {Participant[]} participants
 * @property {RoomMode} [mode]
 * @property {boolean} [locked]
 * @property {boolean} [recording]
 * @property {boolean} [mediator_present]
 * @property {boolean} [ended]
 * @property {Caucus} [caucus]
 * @property {string[]} [isolated_from] whom our media must not reach (caucus)
 * @property {boolean} [second_device] this connection waits as a second device of its participant
 * @property {boolean} [end_to_end] every admitted person joined with a device key: chat is end-to-end encrypted
 * @property {{participant_id: string, stream_id: string} | null} [screen_share] who shares a screen, in which stream
 * @property {string[]} [hands] raised hands, oldest first
 *
 * @typedef {object} RecordingNotice One language of the recording notice.
 * @property {string} language
 * @property {string} text
 * @property {string} sha256 hex SHA-256 of the text, sent back with give_consent
 *
 * @typedef {object} Schedule
 * @property {string} [case_number]
 * @property {string} [starts_at] ISO 8601
 * @property {number} [duration_minutes]
 *
 * @typedef {object} JoinResult What join_room answers.
 * @property {string} participant_id
 * @property {Role} role
 * @property {string} name
 * @property {ParticipantStatus} status
 * @property {boolean} [second_device] waiting as a second device: the participant is present from another one
 * @property {string} [resume_key] sent back with the next join_room of this device, to resume its place
 * @property {RoomMode} [mode]
 * @property {string} [case_id]
 * @property {string} [session_id]
 * @property {Schedule} [schedule]
 * @property {RTCIceServerLike[]} [ice_servers]
 * @property {RoomState} [room]
 * @property {boolean} [records_sealed]
 * @property {RecordingNotice[]} [recording_notice]
 * @property {"mesh" | "sfu"} [media] how the room's media flow: the browsers' mesh or the media server
 *
 * @typedef {{urls: string | string[], username?: string, credential?: string}} RTCIceServerLike
 *
 * @typedef {object} ChatMessage A `chat_message` notice (and a chat_history entry).
 * @property {number} seq
 * @property {string} participant_id
 * @property {string} name
 * @property {Role} role
 * @property {string} [text] the text: sent in the clear, or decrypted here
 * @property {number} [kid] the KID of the sender's key (an encrypted message)
 * @property {string} [ciphertext] base64url nonce ‖ AES-256-GCM ciphertext ‖ tag
 * @property {number} [length] the ciphertext's bytes
 * @property {boolean} [undecryptable] encrypted, and this page holds no key that opens it
 * @property {string | number} sent_at
 * @property {"main" | "caucus"} [channel]
 * @property {false | {by: string | null, at: string | null}} [deleted]
 * @property {boolean} [pending]
 *
 * @typedef {"offer" | "answer" | "ice_candidate"} SignalKind
 * @typedef {{from: string, kind: SignalKind, payload: Record<string, any>}} SignalNotice
 *
 * @typedef {object} ConnectErrorInfo
 * @property {string} code
 * @property {string} message
 * @property {boolean} refused the server answered (socket.io does not retry), rather than was unreachable
 *
 * @typedef {object} SocketLike The part of a socket.io client Socket this module uses.
 * @property {boolean} connected
 * @property {boolean} [active]
 * @property {{on: (name: string, listener: (...args: any[]) => void) => any}} [io] its Manager
 * @property {(name: string, listener: (...args: any[]) => void) => any} on
 * @property {(event: string, ...args: any[]) => any} emit
 * @property {(ms: number) => {emit: (event: string, ...args: any[]) => any}} [timeout]
 * @property {() => any} connect
 * @property {() => any} disconnect
 *
 * @typedef {(url: string, options: Record<string, any>) => SocketLike} IoFunction socket.io's `io`
 *
 * @typedef {object} SignalingClient What the mesh needs from a RoomClient.
 * @property {(name: string, listener: (...args: any[]) => void) => any} on
 * @property {(name: string, listener: (...args: any[]) => void) => any} off
 * @property {(to: string, kind: SignalKind, payload: Record<string, any>) => Promise<unknown> | unknown} signal
 * @property {JoinResult | null} [self]
 * @property {boolean} [joined]
 */

export {};
