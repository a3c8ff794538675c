"""The recipient statement: the signed list of age recipients every record is sealed to (docs/records.md).

The server signs it with the audit log's Ed25519 key (server/recipients.py); the compliance tool and
page check the signature before trusting the set (the JS mirror is web_client/src/lib/compliance/statement.js).
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from recording.records.canonical import canonical_json
from recording.records.checkpoint import key_id

__all__ = ["STATEMENT_CONTEXT", "STATEMENT_TYPE", "StatementRefused", "statement_bytes", "statement_message",
           "verify_statement"]

STATEMENT_TYPE = "mediation-recipient-statement/v1"
STATEMENT_CONTEXT = b"mediation-recipient-statement/v1\n"


class StatementRefused(ValueError):
    """A recipient statement that must not be trusted, and why."""


def statement_bytes(statement: dict[str, Any]) -> bytes:
    """The canonical JSON of a statement: the bytes stored, served and signed."""
    return canonical_json(statement)


def statement_message(statement: bytes) -> bytes:
    """The exact bytes signed: a context line, then the statement's canonical JSON."""
    return STATEMENT_CONTEXT + statement


def verify_statement(statement: bytes, signature: bytes, public_key: Ed25519PublicKey,
                     expected_key_id: str | None = None) -> dict[str, Any]:
    """Return the statement if validly signed by ``public_key`` and well formed; raise StatementRefused otherwise."""
    if expected_key_id is not None and expected_key_id != key_id(public_key):
        raise StatementRefused(f"the statement names key {expected_key_id}, not the trusted audit key "
                               f"{key_id(public_key)}")
    try:
        public_key.verify(signature, statement_message(statement))
    except InvalidSignature:
        raise StatementRefused("BAD SIGNATURE: the recipient statement was not signed by the audit key") from None
    try:
        parsed = json.loads(statement)
    except ValueError as exc:
        raise StatementRefused(f"the statement is not JSON: {exc}") from None
    if not isinstance(parsed, dict) or parsed.get("type") != STATEMENT_TYPE:
        raise StatementRefused(f"the statement is not of type {STATEMENT_TYPE}")
    if statement_bytes(parsed) != statement:
        raise StatementRefused("the statement is not in canonical form")
    recipients = parsed.get("recipients")
    if not isinstance(recipients, list) or not all(
            isinstance(r, dict) and isinstance(r.get("recipient"), str) for r in recipients):
        raise StatementRefused("the statement's recipients are not a list of {recipient: age1…}")
    return parsed
