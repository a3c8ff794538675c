"""`mediation-witness`: a C2SP tlog-witness that cosigns a log's checkpoints only while the log stays append-only.

    mediation-witness serve --name NAME --key FILE --state DIR [--log-key VKEY]… [--logs FILE] [--host H --port P]
    mediation-witness vkey --name NAME --key FILE      (prints this witness's verifier key)

Run by someone other than the log's operator. It keeps, per log origin, the last checkpoint it
cosigned (one 0600 file under --state) and cosigns a new one only with a valid consistency proof
from it. Answers of POST /add-checkpoint: 200 with the cosignature line; 400 a malformed request;
403 a note not signed by the log's key; 404 an origin it does not witness; 409 with its size
(text/x.tlog.size) when "old" is not the size it holds; 422 a proof that does not verify.
Spec: docs/records.md ("Witnesses").
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recording.records import merkle
from recording.records.checkpoint import (
    SIGNATURE_COSIGNATURE_V1,
    SIGNATURE_ED25519,
    NoteError,
    SignedNote,
    Witness,
    cosign,
    parse_note,
    parse_vkey,
    verify_note,
    vkey,
)
from server.audit import load_or_create_signing_key
from server.witnesses import SIZE_MEDIA_TYPE, WITNESS_PATH

log = logging.getLogger("mediation.witness")

_MAX_BODY = 128 * 1024
_MAX_PROOF = 64


class WitnessState:
    """The last cosigned checkpoint per origin, one JSON file each, replaced atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, origin: str) -> Path:
        return self.directory / f"{hashlib.sha256(origin.encode()).hexdigest()}.json"

    def load(self, origin: str) -> tuple[int, bytes]:
        """Return (size, root) last cosigned for the origin; (0, empty root) if none."""
        try:
            held = json.loads(self._path(origin).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return 0, merkle.EMPTY_ROOT
        return int(held["size"]), base64.b64decode(held["root_hash"])

    def store(self, origin: str, size: int, root: bytes, note: str) -> None:
        path = self._path(origin)
        temporary = path.with_name(path.name + ".~tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"origin": origin, "size": size, "root_hash": base64.b64encode(root).decode(),
                       "note": note}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)


class WitnessService:
    """Checks and cosigns add-checkpoint requests for the logs it knows."""

    def __init__(self, name: str, key: Ed25519PrivateKey, state: WitnessState, log_keys: Sequence[str] = (),
                 logs_file: Path | None = None) -> None:
        self.name, self._key, self.state = name, key, state
        self._log_keys = list(log_keys)
        self._logs_file = logs_file
        self._lock = asyncio.Lock()

    @property
    def vkey(self) -> str:
        return vkey(self.name, self._key.public_key(), SIGNATURE_COSIGNATURE_V1)

    def _logs(self) -> dict[str, Witness]:
        """The logs witnessed, by origin (the log key's name); the logs file is read on every request."""
        lines = list(self._log_keys)
        if self._logs_file is not None and self._logs_file.exists():
            lines += [line for line in self._logs_file.read_text(encoding="utf-8").splitlines()
                      if line.strip() and not line.startswith("#")]
        logs = {}
        for line in lines:
            key = parse_vkey(line)
            if key.signature_type == SIGNATURE_ED25519:
                logs[key.name] = key
        return logs

    async def add_checkpoint(self, request: web.Request) -> web.Response:
        raw = await request.content.read(_MAX_BODY + 1)
        if len(raw) > _MAX_BODY:
            return _text(413, f"request of more than {_MAX_BODY} bytes")
        try:
            old, proof, note = _parse_request(raw.decode("utf-8"))
            head = note.head
        except (NoteError, UnicodeDecodeError) as exc:
            return _text(400, f"malformed add-checkpoint request: {exc}")
        known = self._logs().get(head.origin)
        if known is None:
            return _text(404, f"this witness does not witness the log {head.origin!r}")
        if not verify_note(note, head.origin, known.public_key):
            return _text(403, f"{head.describe()} carries no valid signature by the log's key")
        if old > head.tree_size:
            return _text(400, f"old size {old} is larger than the checkpoint's size {head.tree_size}")
        async with self._lock:
            size, root = self.state.load(head.origin)
            if old != size:
                response = web.Response(status=409, text=f"{size}\n")
                response.content_type = SIZE_MEDIA_TYPE
                return response
            if not merkle.verify_consistency(size, head.tree_size, root, head.root_hash, proof):
                log.error("refused a checkpoint not consistent with the one cosigned",
                          extra={"origin": head.origin, "held_size": size, "tree_size": head.tree_size})
                return _text(422, f"{head.describe()} is not consistent with the checkpoint of size {size} "
                                  f"this witness cosigned (root {root.hex()[:16]}…)")
            self.state.store(head.origin, head.tree_size, head.root_hash, note.render())
        name, key_hash, payload = cosign(note.text, self.name, self._key, int(time.time()))
        return web.Response(status=200, text=f"\u2014 {name} {base64.b64encode(key_hash + payload).decode()}\n")

    def app(self) -> web.Application:
        app = web.Application(client_max_size=_MAX_BODY)
        app.router.add_post(WITNESS_PATH, self.add_checkpoint)
        return app


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n")


def _parse_request(body: str) -> tuple[int, list[bytes], SignedNote]:
    head, sep, rest = body.partition("\n\n")
    if not sep:
        raise NoteError("no blank line after the old size and proof lines")
    lines = head.split("\n")
    if not lines[0].startswith("old ") or not lines[0][4:].isdigit():
        raise NoteError(f"first line {lines[0][:40]!r} is not 'old <size>'")
    if len(lines) - 1 > _MAX_PROOF:
        raise NoteError(f"more than {_MAX_PROOF} proof lines")
    proof = []
    for line in lines[1:]:
        try:
            proof.append(base64.b64decode(line, validate=True))
        except binascii.Error:
            raise NoteError(f"proof line {line[:60]!r} is not base64") from None
    return int(lines[0][4:]), proof, parse_note(rest)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mediation-witness", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for command in ("serve", "vkey"):
        sub = commands.add_parser(command)
        sub.add_argument("--name", required=True, help="this witness's name, e.g. witness.example.org/w1")
        sub.add_argument("--key", required=True, type=Path, help="its Ed25519 key (PEM; created 0600 if absent)")
        if command == "serve":
            sub.add_argument("--state", required=True, type=Path, help="directory of the checkpoints cosigned")
            sub.add_argument("--log-key", action="append", default=[], help="a witnessed log's verifier key")
            sub.add_argument("--logs", type=Path, help="file of witnessed logs' verifier keys, one a line")
            sub.add_argument("--host", default="127.0.0.1")
            sub.add_argument("--port", type=int, default=7380)
    args = parser.parse_args(argv)
    try:
        key = load_or_create_signing_key(args.key)
        if args.command == "vkey":
            print(vkey(args.name, key.public_key(), SIGNATURE_COSIGNATURE_V1))
            return
        for line in args.log_key:
            parse_vkey(line)
        service = WitnessService(args.name, key, WitnessState(args.state), args.log_key, args.logs)
    except (OSError, ValueError) as exc:
        parser.exit(2, f"mediation-witness: {exc}\n")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    log.info("witness %s serving on %s:%d", service.vkey, args.host, args.port)
    web.run_app(service.app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
