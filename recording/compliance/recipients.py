"""Check the server's signed recipient statement before trusting who records are sealed to (docs/records.md)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from recording.records.checkpoint import key_id, load_public_key
from recording.records.statement import StatementRefused, verify_statement

__all__ = ["check_served_statement", "fetch_statement", "render_statement"]


def fetch_statement(server: str, token: str) -> dict[str, Any]:
    """The statement as the server serves it (GET /api/compliance/recipients); nothing is trusted yet."""
    url = f"{server.rstrip('/')}/api/compliance/recipients"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - the officer's own server
            served = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise StatementRefused(f"GET {url}: HTTP {exc.code}: {exc.read()[:300].decode(errors='replace')}") from None
    except (urllib.error.URLError, ValueError) as exc:
        raise StatementRefused(f"GET {url}: {exc}") from None
    if not isinstance(served, dict):
        raise StatementRefused("the server's answer is not a JSON object")
    return served


def check_served_statement(served: dict[str, Any], trusted_keys: list[Path]) -> dict[str, Any]:
    """The statement, once its signature is checked against a pinned audit key; StatementRefused otherwise.

    The key the server sends along is used only when no key is pinned, and never silently: the
    caller reports that it was not pinned.
    """
    try:
        raw = served["statement"].encode()
        signature = bytes.fromhex(served["signature"])
        named = served["key_id"]
    except (KeyError, AttributeError, TypeError, ValueError) as exc:
        raise StatementRefused(f"the served statement lacks a readable field: {exc}") from None
    if trusted_keys:
        keys = [load_public_key(path.read_bytes()) for path in trusted_keys]
    else:
        keys = [load_public_key(str(served.get("public_key_pem", "")).encode())]
    matching = [key for key in keys if key_id(key) == named]
    if not matching:
        raise StatementRefused(f"the statement is signed by key {named}, which is not a trusted audit key "
                               f"(trusted: {', '.join(key_id(k) for k in keys)})")
    return verify_statement(raw, signature, matching[0], named)


def render_statement(statement: dict[str, Any], pinned: bool) -> str:
    """A plain report of the recipient set in force."""
    lines = [f"recipient statement version {statement['version']}, issued {statement['issued_at']}: "
             "signature verified" + ("" if pinned else " (WARNING: against the key the server sent; "
                                                        "pin the published key with --audit-public-key)")]
    for entry in statement["recipients"]:
        who = entry.get("username") or entry.get("kind", "?")
        approved = ", ".join(entry.get("approved_by", [])) or "-"
        lines.append(f"  {entry['recipient']}  {entry.get('kind', '?')} {who}  approved by {approved}")
    return "\n".join(lines) + "\n"
