"""The one error a room request is refused with: a code and a message for the sender; nothing changed."""

from __future__ import annotations


class RoomError(Exception):
    """A refused request. The adapter sends ``{code, message, event}`` as ``error`` and in the ack; the socket stays."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"RoomError({self.code!r}, {self.message!r})"
