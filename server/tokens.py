"""Random identifiers and bearer tokens; tokens are stored only as their SHA-256."""

from __future__ import annotations

import hashlib
import re
import secrets

# Staff session, application receipt, join link, recorder (held only in its node's memory).
TOKEN_PREFIXES = ("stf", "rcp", "jln", "rtk")
_TOKEN = re.compile(rf"^({'|'.join(TOKEN_PREFIXES)})_[A-Za-z0-9_-]{{43}}$")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def id_pattern(prefix: str) -> str:
    return rf"^{prefix}_[0-9a-f]{{32}}$"


def new_token(prefix: str) -> tuple[str, bytes]:
    """A 256-bit random bearer token and the hash under which it is stored."""
    token = f"{prefix}_{secrets.token_urlsafe(32)}"
    return token, hash_token(token)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def token_kind(token: str) -> str | None:
    """The token's prefix if it is well formed, else None."""
    match = _TOKEN.match(token)
    return match.group(1) if match else None
