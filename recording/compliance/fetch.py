"""Download a case's bundle (manifest and ciphertext) from the server, for the offline tool (docs/records.md)."""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from recording.records.storage import validate_key

_CASE_ID = re.compile(r"^cas_[0-9a-f]{32}$")


class FetchError(Exception):
    """The server refused or the download broke; the message says which object and why."""


def _get(url: str, token: str) -> bytes:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - the officer's own server
            return response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        raise FetchError(f"GET {url}: HTTP {exc.code}: {detail}") from None
    except urllib.error.URLError as exc:
        raise FetchError(f"GET {url}: {exc.reason}") from None


def fetch_bundle(server: str, case_id: str, token: str, bundle: Path) -> int:
    """Write manifest.json and every object it lists under ``bundle``; return the number of objects.

    Nothing is decrypted or trusted here: ``open`` verifies every byte against the signed audit log.
    Every download is audited by the server.
    """
    if not _CASE_ID.match(case_id):
        raise FetchError(f"{case_id!r} is not a case id")
    base = f"{server.rstrip('/')}/api/cases/{case_id}/records"
    manifest = _get(f"{base}/manifest", token)
    listed = json.loads(_get(base, token))
    record_ids = {record["key"]: record["record_id"] for record in listed["records"]}
    bundle.mkdir(parents=True, exist_ok=True, mode=0o700)
    objects = json.loads(manifest)["objects"]
    for item in objects:
        key = item["key"]
        validate_key(key)  # a hostile manifest must not write outside the bundle
        record_id = record_ids.get(key)
        if record_id is None:
            raise FetchError(f"the server lists no record for {key}")
        path = bundle / key
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(_get(f"{base}/{record_id}", token))
    fd = os.open(bundle / "manifest.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(manifest)
    return len(objects)
