"""The chat journal: the transcript's source for chat, durable in the case record and shredded when it is sealed.

Each chat message is written here in the same transaction that files its sealed record, so the set of
journalled messages is exactly the set of sealed ones, whatever node crashes when. Its text is sealed
under the session's key (``signaling.sealedstate``: the nodes' room-state secret with a random salt kept
in ``session_key_salts``); once the transcript is sealed the rows and the salt are deleted.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.database import Database
from server.models import ChatJournalEntry, SessionKeySalt
from signaling.sealedstate import SessionCipher, new_salt


def _name(session_id: str, seq: int) -> str:
    return f"chat_journal/{session_id}/{seq}"


class ChatJournal:
    """Writes, reads and shreds the journal; ``secret`` is the nodes' room-state secret."""

    def __init__(self, db: Database, secret: bytes) -> None:
        self._db = db
        self._secret = secret

    async def add(self, session: AsyncSession, session_id: str, message: dict[str, Any]) -> None:
        """Journal ``message`` inside ``session``: the transaction that files its sealed record.

        Callers hold the room's turn, so no other node makes this session's salt meanwhile."""
        salt = await session.get(SessionKeySalt, session_id)
        if salt is None:
            salt = SessionKeySalt(session_id=session_id, salt=new_salt())
            session.add(salt)
        cipher = SessionCipher(self._secret, session_id, salt.salt)
        seq = int(message["seq"])
        session.add(ChatJournalEntry(session_id=session_id, seq=seq,
                                     sealed=cipher.seal(_name(session_id, seq),
                                                        json.dumps(message, ensure_ascii=False).encode())))

    async def add_many(self, session: AsyncSession, messages: list[tuple[str, dict[str, Any]]]) -> None:
        """Journal each (session_id, message) inside ``session``, as ``add`` does, with one query for the salts."""
        wanted = sorted({session_id for session_id, _ in messages})
        salts = {row.session_id: row for row in (await session.execute(
            select(SessionKeySalt).where(SessionKeySalt.session_id.in_(wanted)))).scalars()}
        ciphers: dict[str, SessionCipher] = {}
        for session_id in wanted:
            salt = salts.get(session_id)
            if salt is None:
                salt = SessionKeySalt(session_id=session_id, salt=new_salt())
                session.add(salt)
            ciphers[session_id] = SessionCipher(self._secret, session_id, salt.salt)
        session.add_all([
            ChatJournalEntry(session_id=session_id, seq=int(message["seq"]),
                             sealed=ciphers[session_id].seal(_name(session_id, int(message["seq"])),
                                                             json.dumps(message, ensure_ascii=False).encode()))
            for session_id, message in messages])

    async def messages(self, session_id: str) -> list[dict[str, Any]]:
        """Every journalled message of the session, in seq order; raises StateUnreadable if one does not open."""
        async with self._db.read() as session:
            salt = await session.get(SessionKeySalt, session_id)
            rows = (await session.execute(
                select(ChatJournalEntry).where(ChatJournalEntry.session_id == session_id)
                .order_by(ChatJournalEntry.seq))).scalars().all()
        if salt is None:
            return []
        cipher = SessionCipher(self._secret, session_id, salt.salt)
        return [json.loads(cipher.open(_name(session_id, row.seq), row.sealed)) for row in rows]

    async def shred(self, session_id: str) -> None:
        """Delete the session's salt, which no secret can make again, and its journalled messages."""
        async with self._db.write() as session:
            await session.execute(delete(ChatJournalEntry).where(ChatJournalEntry.session_id == session_id))
            await session.execute(delete(SessionKeySalt).where(SessionKeySalt.session_id == session_id))
