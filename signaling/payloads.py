"""The shape of every client request's payload; anything else is refused as invalid_payload."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from signaling.textpolicy import checked_text

MAX_CHAT_CHARS = 2000
MAX_SIGNAL_BYTES = 64 * 1024
# An end-to-end encrypted message: a 12-byte nonce, the AES-256-GCM ciphertext of at most MAX_CHAT_CHARS
# characters of UTF-8 (4 bytes each at most) and its 16-byte tag (docs/protocol.md, "End-to-end encryption").
CHAT_NONCE_BYTES, CHAT_TAG_BYTES = 12, 16
MAX_CHAT_CIPHERTEXT_BYTES = CHAT_NONCE_BYTES + MAX_CHAT_CHARS * 4 + CHAT_TAG_BYTES
MAX_KID = 2**48 - 1
MAX_WRAPPED_KEY_BYTES = 12 + 32 + 16  # nonce, base key, tag

ParticipantId = Annotated[str, StringConstraints(pattern=r"^(pty|usr|rcd)_[0-9a-f]{32}$")]


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def normalise_text(value: str) -> str:
    """NFC, CRLF to LF, trimmed; the character policy of signaling/textpolicy.py (docs/protocol.md)."""
    return checked_text(value.replace("\r\n", "\n"), multiline=True).strip()


def _reason(value: str) -> str:
    return normalise_text(value)


Reason = Annotated[str, StringConstraints(max_length=200), AfterValidator(_reason)]


class Empty(Payload):
    pass


# Unpadded base64url (RFC 4648 §5), as the browsers' byte helpers write it.
Base64Url = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]*$")]
# A raw X25519 public key: 32 bytes are 43 base64url characters, the last carrying 4 bits.
PublicKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$")]
Channel = Literal["main", "caucus"]


class JoinRoom(Payload):
    # The resume_key this device was given when it last held its place (docs/protocol.md).
    resume: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")] | None = None
    # This join's X25519 device key (docs/protocol.md, "End-to-end encryption"); absent: this browser
    # cannot encrypt, and the room is not end-to-end encrypted while it is admitted.
    public_key: PublicKey | None = None


class Target(Payload):
    participant_id: ParticipantId


class Refuse(Payload):
    participant_id: ParticipantId
    reason: Reason = ""


class SendChat(Payload):
    """Either ``text`` (only in a room that is not end-to-end encrypted) or ``ciphertext`` with ``kid``.

    Text is checked for length after normalisation, and the ciphertext's encoding, length and KID in the
    handler, to give specific error codes."""

    text: Annotated[str, StringConstraints(max_length=MAX_CHAT_CHARS * 4)] | None = None
    ciphertext: Annotated[str, StringConstraints(max_length=MAX_CHAT_CIPHERTEXT_BYTES * 2)] | None = None
    kid: int | None = None
    channel: Channel | None = None


class WrappedKey(Payload):
    participant_id: ParticipantId
    wrapped: Annotated[str, StringConstraints(max_length=MAX_WRAPPED_KEY_BYTES * 2)]


MAX_SEALED_KEY_BYTES = 8192
AgeRecipient = Annotated[str, StringConstraints(pattern=r"^age1[02-9ac-hj-np-z]{58}$")]


class FileKey(Payload):
    """A base key the sender sealed to the compliance recipients, to be filed on the case (an e2ee_key record)."""

    channel: Channel
    epoch: Annotated[int, Field(ge=0, le=2**31 - 1)]
    kid: int
    recipients: Annotated[list[AgeRecipient], Field(min_length=1, max_length=32)]
    sealed: Annotated[str, StringConstraints(max_length=MAX_SEALED_KEY_BYTES * 2)]


class ShareKeys(Payload):
    """A sender's base key for one channel and epoch, wrapped to each member's device key by the sender."""

    channel: Channel
    epoch: Annotated[int, Field(ge=0, le=2**31 - 1)]
    kid: int
    keys: Annotated[list[WrappedKey], Field(min_length=1, max_length=32)]


class Typing(Payload):
    active: bool


class MediaState(Payload):
    audio: bool
    video: bool


MAX_SIGNAL_DEPTH = 8


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a JSON value, counted only up to ``limit + 1`` (never recursing deeper)."""
    stack, deepest = [(value, 1)], 0
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > limit:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, level + 1) for child in children)
    return deepest


def _bounded_object(value: dict[str, Any]) -> dict[str, Any]:
    # Relayed to browsers as is: it must be plain, finite JSON that their parsers accept.
    if _depth(value, MAX_SIGNAL_DEPTH) > MAX_SIGNAL_DEPTH:
        raise ValueError(f"payload nested deeper than {MAX_SIGNAL_DEPTH} levels")
    # Measured as a client sends it: JSON text in UTF-8 ("é" is two bytes, not a six-byte escape).
    sent = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    if len(sent.encode("utf-8", "surrogatepass")) > MAX_SIGNAL_BYTES:
        raise ValueError(f"payload larger than {MAX_SIGNAL_BYTES} bytes of UTF-8 JSON")
    return value


class Signal(Payload):
    to: ParticipantId
    kind: Literal["offer", "answer", "ice_candidate"]
    payload: Annotated[dict[str, Any], AfterValidator(_bounded_object)]


class PublishMedia(Payload):
    offer: Annotated[dict[str, Any], AfterValidator(_bounded_object)]


class AnswerMedia(Payload):
    answer: Annotated[dict[str, Any], AfterValidator(_bounded_object)]


class MediaCandidate(Payload):
    target: Literal["publish", "subscribe"]
    candidate: Annotated[dict[str, Any], AfterValidator(_bounded_object)]


MAX_LAYOUT_FEEDS = 16
MAX_TILE_PIXELS = 8192


class TileSize(Payload):
    """One remote tile as the page shows it now, in device pixels (0 × 0: not shown)."""

    participant_id: ParticipantId
    width: Annotated[int, Field(ge=0, le=MAX_TILE_PIXELS)]
    height: Annotated[int, Field(ge=0, le=MAX_TILE_PIXELS)]


class MediaLayout(Payload):
    feeds: Annotated[list[TileSize], Field(max_length=MAX_LAYOUT_FEEDS)]
class RecordMedia(Payload):
    """The recorder worker's UDP ports for Janus's forwarded RTP and its RTCP feedback (signaling/sfurecorder.py)."""

    rtp_port: Annotated[int, Field(ge=1, le=65535, strict=True)]
    rtcp_port: Annotated[int, Field(ge=1, le=65535, strict=True)]


class MuteChat(Payload):
    participant_id: ParticipantId
    muted: bool


class RequestMuteMedia(Payload):
    participant_id: ParticipantId
    audio: bool
    video: bool


class StartScreenShare(Payload):
    # The id of the MediaStream that carries the screen track (its msid in the SDP): how receivers and the
    # recorder tell the screen from the camera.
    stream_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9{}_.+=-]{1,64}$")]


class StopScreenShare(Payload):
    # Absent: the sender's own share; another participant's only for the mediator.
    participant_id: ParticipantId | None = None


class RaiseHand(Payload):
    raised: bool


class LockRoom(Payload):
    locked: bool


class DeleteMessage(Payload):
    seq: Annotated[int, Field(ge=1, le=10**9)]


class Proof(Payload):
    """Proof of the party's possession factor for one act (docs/protocol.md, "Possession proofs"): an enrolled
    device's signature of a challenge for the act, or a one-time code sent for it."""

    challenge_id: Annotated[str, StringConstraints(pattern=r"^chl_[0-9a-f]{32}$")] | None = None
    signature: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{86}$")] | None = None
    code_id: Annotated[str, StringConstraints(pattern=r"^pcd_[0-9a-f]{32}$")] | None = None
    code: Annotated[str, StringConstraints(pattern=r"^[0-9]{8}$")] | None = None


class GiveConsent(Payload):
    notice_sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    proof: Proof | None = None


class WithdrawConsent(Payload):
    proof: Proof | None = None
