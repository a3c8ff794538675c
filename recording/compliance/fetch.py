"""Download a case's bundle (manifest and ciphertext) from the server, for the offline tool (docs/records.md)."""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from recording.compliance.pinning import EVIDENCE_FILE, evidence, read_pin
from recording.records.problems import Problem
from recording.records.storage import validate_key

_CASE_ID = re.compile(r"^cas_[0-9a-f]{32}$")


class FetchError(Exception):
    """The server refused or the download broke; the message says which object and why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _get(url: str, token: str) -> bytes:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - the officer's own server
            return response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        raise FetchError(f"GET {url}: HTTP {exc.code}: {detail}", exc.code) from None
    except urllib.error.URLError as exc:
        raise FetchError(f"GET {url}: {exc.reason}") from None


def fetch_bundle(server: str, case_id: str, token: str, bundle: Path,
                 pin: Path | None = None) -> tuple[int, list[Problem]]:
    """Write manifest.json, checkpoint.json and every object it can under ``bundle``; return (fetched, problems).

    Nothing is decrypted or trusted here: ``open`` verifies every byte against the signed audit log.
    A record the server cannot serve is reported with its code and left out; everything else is
    fetched. Every download is audited by the server. With ``pin``, checkpoint.json carries the
    consistency proof from the pinned checkpoint.
    """
    if not _CASE_ID.match(case_id):
        raise FetchError(f"{case_id!r} is not a case id")
    pinned = read_pin(pin)
    root = server.rstrip("/")
    base = f"{root}/api/cases/{case_id}/records"
    manifest = _get(f"{base}/manifest", token)
    listed = json.loads(_get(base, token))
    record_ids = {record["key"]: record["record_id"] for record in listed["records"]}
    bundle.mkdir(parents=True, exist_ok=True, mode=0o700)
    objects = json.loads(manifest)["objects"]
    problems: list[Problem] = []
    fetched = 0
    for item in objects:
        key = item["key"]
        validate_key(key)  # a hostile manifest must not write outside the bundle
        record_id = record_ids.get(key)
        if record_id is None:
            problems.append(Problem("not_on_case", f"{key}: the server lists no record for it"))
            continue
        try:
            data = _get(f"{base}/{record_id}", token)
        except FetchError as exc:
            problems.append(Problem("not_on_case" if exc.status in (404, 410) else "download_failed", f"{key}: {exc}"))
            continue
        path = bundle / key
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _create(path, data)
        fetched += 1
    sizes = {item.get("inclusion", {}).get("tree_size") for item in objects}
    if len(sizes) == 1 and isinstance(size := next(iter(sizes)), int):
        history = json.loads(_get(f"{root}/api/audit/checkpoints?after={size - 1}&limit=1", token))
        notes = [c for c in history["checkpoints"] if c["tree_size"] == size and c.get("note")]
        if notes:
            old_size, proof = None, []
            if pinned is not None and pinned.head.tree_size <= size:
                old_size = pinned.head.tree_size
                answer = json.loads(_get(f"{root}/api/audit/consistency?old_size={old_size}&new_size={size}", token))
                proof = [base64.b64decode(p) for p in answer["proof"]]
            _create(bundle / EVIDENCE_FILE, evidence(notes[0]["note"], history["log_vkey"], history["witness_keys"],
                                                     history["witness_quorum"], old_size, proof))
    _create(bundle / "manifest.json", manifest)
    return fetched, problems


def _create(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
