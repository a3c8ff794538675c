"""Every client request of the ``/room`` namespace in one table: payload, handler, senders, lobby rule, rate budgets.

docs/protocol.md's "Client requests" table is checked against this one (tests/signaling/test_protocol_doc.py).
A request is checked in this order (``signaling/engine.py``): known event, one payload argument, the socket's
rate budget, joined, payload model, the sender's authority in its session (its scopes' revocation versions, and
``Hooks.authorize`` when they changed: ``signaling/revocation.py``), then, inside the room's turn, ``senders``
and ``admitted``, then the participant's ``budget`` if the request has one; the handler then checks what
depends on the room (targets, caucus, recording)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from signaling import caucus, chat, consent, devices, e2ee, lobby, media, meeting, moderation, payloads
from signaling.errors import RoomError
from signaling.roomstate import ADMITTED, Member

if TYPE_CHECKING:
    from signaling.engine import RoomEngine
    from signaling.turns import Turn

PARTIES = frozenset({"borrower", "lender", "bank_representative"})
PEOPLE = PARTIES | {"mediator"}
# The recording peer only negotiates media and leaves; it never chats or moderates.
EVERYONE = PEOPLE | {"recorder"}
MEDIATOR = frozenset({"mediator"})
RECORDER = frozenset({"recorder"})

Handler = Callable[["RoomEngine", "Turn", Any], Awaitable[dict[str, Any] | None]]


@dataclasses.dataclass(frozen=True)
class Request:
    event: str
    payload: type[payloads.Payload]
    handler: Handler
    senders: frozenset[str]  # roles that may send it
    admitted: bool  # True: only once admitted; False: from the lobby too
    bucket: str  # "chat" or "signal": which of the socket's rate budgets it spends
    needs_join: bool = True  # False only for join_room itself
    # The participant's budget it spends, shared by all its sockets on every node (RoomSettings.budget):
    # requests that leave permanent evidence, so one party cannot fill the case record.
    budget: str | None = None

    def check_sender(self, member: Member) -> None:
        """Raise the refusal the protocol gives when ``member`` may not send this request now."""
        if member.role not in self.senders:
            who = "the recorder" if member.role == "recorder" else f'role "{member.role}"'
            raise RoomError("forbidden", f"{who} may not {self.event.replace('_', ' ')}")
        if self.admitted and member.status != ADMITTED:
            raise RoomError("not_admitted", "wait until the mediator admits you")


def _table(*requests: Request) -> dict[str, Request]:
    return {request.event: request for request in requests}


R = Request
REQUESTS: dict[str, Request] = _table(
    R("join_room", payloads.JoinRoom, lobby.join_room, EVERYONE, admitted=False, bucket="signal", needs_join=False,
      budget="presence"),
    R("leave_room", payloads.Empty, lobby.leave_room, EVERYONE, admitted=False, bucket="signal", budget="presence"),
    R("admit", payloads.Target, lobby.admit, MEDIATOR, admitted=True, bucket="signal"),
    R("refuse", payloads.Refuse, lobby.refuse, MEDIATOR, admitted=True, bucket="signal"),
    R("admit_device", payloads.Target, devices.admit_device, MEDIATOR, admitted=True, bucket="signal"),
    R("refuse_device", payloads.Refuse, devices.refuse_device, MEDIATOR, admitted=True, bucket="signal"),
    R("return_to_lobby", payloads.Target, lobby.return_to_lobby, MEDIATOR, admitted=True, bucket="signal"),
    R("send_chat", payloads.SendChat, chat.send_chat, PEOPLE, admitted=True, bucket="chat"),
    R("share_keys", payloads.ShareKeys, e2ee.share_keys, PEOPLE, admitted=True, bucket="signal"),
    # Each filed key is a sealed record, like a message: the chat budget bounds them.
    R("file_key", payloads.FileKey, e2ee.file_key, PEOPLE, admitted=True, bucket="chat"),
    R("chat_history", payloads.Empty, chat.chat_history, PEOPLE, admitted=True, bucket="signal"),
    R("typing", payloads.Typing, chat.typing, PEOPLE, admitted=True, bucket="chat"),
    R("media_state", payloads.MediaState, media.media_state, EVERYONE, admitted=False, bucket="signal"),
    R("signal", payloads.Signal, media.signal, EVERYONE, admitted=True, bucket="signal"),
    R("publish_media", payloads.PublishMedia, media.publish_media, PEOPLE, admitted=True, bucket="signal"),
    R("answer_media", payloads.AnswerMedia, media.answer_media, PEOPLE, admitted=True, bucket="signal"),
    R("media_candidate", payloads.MediaCandidate, media.media_candidate, PEOPLE, admitted=True, bucket="signal"),
    R("media_layout", payloads.MediaLayout, media.media_layout, PEOPLE, admitted=True, bucket="signal"),
    R("record_media", payloads.RecordMedia, media.record_media, RECORDER, admitted=True, bucket="signal"),
    R("start_screen_share", payloads.StartScreenShare, meeting.start_screen_share, PEOPLE, admitted=True, bucket="signal"),
    R("stop_screen_share", payloads.StopScreenShare, meeting.stop_screen_share, PEOPLE, admitted=True,
      bucket="signal"),
    R("raise_hand", payloads.RaiseHand, meeting.raise_hand, PARTIES, admitted=True, bucket="signal"),
    R("lower_hand", payloads.Target, meeting.lower_hand, MEDIATOR, admitted=True, bucket="signal"),
    R("mute_chat", payloads.MuteChat, moderation.mute_chat, MEDIATOR, admitted=True, bucket="signal"),
    R("request_mute_media", payloads.RequestMuteMedia, moderation.request_mute_media, MEDIATOR, admitted=True,
      bucket="signal"),
    R("remove_participant", payloads.Refuse, moderation.remove_participant, MEDIATOR, admitted=True,
      bucket="signal"),
    R("lock_room", payloads.LockRoom, moderation.lock_room, MEDIATOR, admitted=True, bucket="signal"),
    R("end_session", payloads.Empty, moderation.end_session, MEDIATOR, admitted=True, bucket="signal"),
    R("delete_message", payloads.DeleteMessage, moderation.delete_message, MEDIATOR, admitted=True,
      bucket="signal"),
    R("open_caucus", payloads.Target, caucus.open_caucus, MEDIATOR, admitted=True, bucket="signal"),
    R("close_caucus", payloads.Empty, caucus.close_caucus, MEDIATOR, admitted=True, bucket="signal"),
    # Consent spends the chat budget: like a message, each change seals a record (a toggle flood is refused);
    # and the participant's consent budget, shared by its sockets and nodes (docs/protocol.md, "Evidence budgets").
    R("give_consent", payloads.GiveConsent, consent.give_consent, PARTIES, admitted=False, bucket="chat",
      budget="consent"),
    R("withdraw_consent", payloads.WithdrawConsent, consent.withdraw_consent, PARTIES, admitted=False, bucket="chat",
      budget="consent"),
    R("start_recording", payloads.Empty, consent.start_recording, MEDIATOR, admitted=True, bucket="signal"),
    R("stop_recording", payloads.Empty, consent.stop_recording, MEDIATOR, admitted=True, bucket="signal"),
)
