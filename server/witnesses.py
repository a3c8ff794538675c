"""Asking witnesses to cosign this log's checkpoints (C2SP tlog-witness, the node's side).

Each witness keeps the last size it cosigned for this log; a request states it ("old N") with the
consistency proof from there. A 409 answer carries the witness's size, and the request is made once
more from it. Spec: docs/records.md ("Witnesses").
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable, Sequence

import aiohttp

from recording.records.checkpoint import SignedNote, Witness, add_signature, count_cosignatures, parse_note

log = logging.getLogger("mediation.audit.witnesses")

WITNESS_PATH = "/add-checkpoint"
SIZE_MEDIA_TYPE = "text/x.tlog.size"


def add_checkpoint_body(old_size: int, proof: Sequence[bytes], note: SignedNote) -> bytes:
    """Return a tlog-witness add-checkpoint request body: the old size, proof lines, a blank line, the note."""
    lines = [f"old {old_size}\n", *(base64.b64encode(p).decode() + "\n" for p in proof), "\n"]
    return ("".join(lines) + note.render()).encode()


class WitnessClient:
    """Collects cosignatures of each signed note from the configured witnesses, each asked in parallel."""

    def __init__(self, urls: Sequence[str], witnesses: Sequence[Witness], quorum: int, timeout: float) -> None:
        if len(urls) != len(witnesses):
            raise ValueError(f"{len(urls)} witness URLs but {len(witnesses)} witness keys")
        self._pairs = list(zip(urls, witnesses))
        self.quorum = quorum
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._sizes: dict[str, int] = {}  # url -> the size that witness last cosigned (as it told us)

    async def cosign(self, note: SignedNote, proof_from: Callable[[int, int], list[bytes]]) -> SignedNote:
        """Return the note with every cosignature obtained; a witness that fails is logged and skipped."""
        size = note.head.tree_size
        async with aiohttp.ClientSession(timeout=self._timeout) as session:
            answers = await asyncio.gather(*(self._ask(session, url, witness, note, size, proof_from)
                                             for url, witness in self._pairs))
        for line in answers:
            if line is not None:
                note = add_signature(note, line)
        cosigned = count_cosignatures(note, [w for _, w in self._pairs])
        if len(cosigned) < self.quorum:
            log.error("checkpoint of size %d has %d witness cosignature(s), %d required", size, len(cosigned),
                      self.quorum, extra={"tree_size": size, "cosigned_by": cosigned})
        return note

    async def _ask(self, session: aiohttp.ClientSession, url: str, witness: Witness, note: SignedNote,
                   size: int, proof_from: Callable[[int, int], list[bytes]]) -> tuple[str, bytes, bytes] | None:
        for _attempt in range(2):
            old = self._sizes.get(url, 0)
            if old > size:
                log.error("witness %s has cosigned size %d, beyond this checkpoint's %d", url, old, size)
                return None
            try:
                async with session.post(url + WITNESS_PATH, data=add_checkpoint_body(old, proof_from(old, size),
                                                                                  note)) as response:
                    text = await response.text()
                    status = response.status
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                log.warning("witness %s unreachable: %s", url, exc or type(exc).__name__)
                return None
            if status == 409 and text.strip().isdigit():
                self._sizes[url] = int(text.strip())
                continue
            if status != 200:
                log.error("witness %s refused the checkpoint of size %d: HTTP %d %s", url, size, status,
                          text[:300])
                return None
            try:
                answered = parse_note(note.text + "\n" + text)
            except ValueError as exc:
                log.error("witness %s answered no cosignature line: %s", url, exc)
                return None
            for line in answered.signatures:
                candidate = SignedNote(note.text, (line,))
                if count_cosignatures(candidate, [witness]):
                    self._sizes[url] = size
                    return line
            log.error("witness %s answered no valid cosignature by %s", url, witness.name)
            return None
        return None
