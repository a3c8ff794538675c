"""Group commit of sealed chat: the messages waiting together are sealed, stored, journalled and audited at once.

Each message is still its own sealed record under its own key, with its own ``record_sealed`` audit entry
and journal row (docs/records.md); what a batch shares is one pass over the record store (a directory
fsync per directory, not per record), one database transaction and its commit. A sender's ``file`` returns
only once the transaction holding its message has committed, so nothing acknowledged is ever lost.

Batches form by themselves: while one batch is being made durable, the messages that arrive queue, and
the next batch takes all of them (up to ``max_batch``). A lone message waits for nobody.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from server.chatjournal import ChatJournal
from server.records import CaseRecords, Filing
from signaling.identity import Unavailable

MAX_BATCH = 256


class ChatCommits:
    """Runs on the node's event loop; one task (``run``) commits the batches, in the order they formed."""

    def __init__(self, records: CaseRecords, journal: ChatJournal, *, max_batch: int = MAX_BATCH,
                 on_batch: Callable[[], None] = lambda: None) -> None:
        self._records = records
        self.journal = journal
        self._max_batch = max_batch
        self._on_batch = on_batch  # counts each batch committed, for the metrics
        self._queue: asyncio.Queue[tuple[Filing, dict[str, Any], asyncio.Future[object]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.batches = 0  # tried so far, and the messages in them
        self.messages = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="chat-commits")

    async def close(self) -> None:
        """Refuse new messages, commit those already queued, then stop."""
        self._closing = True
        if self._task is None:
            return
        await self._queue.put(_STOP)  # type: ignore[arg-type]
        await self._task

    async def file(self, filing: Filing, body: dict[str, Any]) -> object:
        """Seal, store, journal and audit one chat message; returns once its batch is durable.

        Returns the SealedRecord (or None: nobody to seal to); raises what the message met:
        RecordExistsError if its key is taken, the transaction's failure if its batch did not commit."""
        if self._closing or self._task is None:
            raise Unavailable("this node is stopping; send the message again")
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        await self._queue.put((filing, body, done))
        return await done

    async def run(self) -> None:
        while True:
            first = await self._queue.get()
            stopping = first is _STOP
            batch = [] if stopping else [first]
            while len(batch) < self._max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is _STOP:
                    stopping = True
                    continue
                batch.append(item)
            if batch:
                await self._commit(batch)
            if stopping and self._queue.empty():
                return

    async def _commit(self, batch: list[tuple[Filing, dict[str, Any], asyncio.Future[object]]]) -> None:
        filings = [filing for filing, _, _ in batch]
        bodies = {id(filing): (filing.session_id or "", body) for filing, body, _ in batch}

        async def journal(session: Any, filed: list[Filing]) -> None:
            # In the transaction that files the records: the journal holds exactly the sealed messages.
            await self.journal.add_many(session, [bodies[id(filing)] for filing in filed])

        try:
            outcomes = await self._records.seal_and_file_many(filings, also=journal)
        except Exception as exc:  # noqa: BLE001 - each sender raises it (as Unavailable if the database is down)
            outcomes = [exc] * len(batch)
        self.batches += 1
        self.messages += len(batch)
        self._on_batch()
        for (_, _, done), outcome in zip(batch, outcomes):
            if done.cancelled():
                continue  # its sender's task was cancelled; the message is filed or not, as the batch went
            if isinstance(outcome, Exception):
                done.set_exception(outcome)
            else:
                done.set_result(outcome)


_STOP = object()
