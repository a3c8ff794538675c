"""The staff password policy of NIST SP 800-63B (3.1.1.2): length, a blocklist, no composition rules.

A password is NFKC-normalised and must be 12 to 128 characters. It is refused if, lowercased, it is
in the shipped blocklist (server/common_passwords.txt) whole or with its leading and trailing digits
and symbols stripped, if it is one short unit repeated or a run of consecutive characters, or if it
contains the username or the name of this service. Nothing else: no required digits or symbols.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from importlib import resources

from server.errors import ValidationFailed

MIN_LENGTH = 12
MAX_LENGTH = 128
# Words of this service an attacker would try first (SP 800-63B: "context-specific words").
SERVICE_WORDS = ("mediation",)

_EDGES = re.compile(r"^[\W\d_]+|[\W\d_]+$")


class PasswordRefused(ValidationFailed):
    """A password the policy refuses: HTTP 422 ``weak_password`` on the ``password`` field."""

    code = "weak_password"

    def __init__(self, message: str, field: str = "password") -> None:
        super().__init__(message, field=field)


@functools.cache
def blocklist() -> frozenset[str]:
    """The shipped common passwords, lower case."""
    text = resources.files("server").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def normalized(password: str) -> str:
    """The form a password is checked and hashed in (NFKC), so visually equal inputs are one password."""
    return unicodedata.normalize("NFKC", password)


def _repeated(text: str) -> bool:
    """One unit of up to four characters repeated: "aaaaaaaaaaaa", "abcabcabcabc"."""
    return any(len(text) % size == 0 and text == text[:size] * (len(text) // size) for size in range(1, 5))


def _consecutive(text: str) -> bool:
    """Every character one code point after (or before) the last: "abcdefghijkl", "987654321098"."""
    steps = {ord(b) - ord(a) for a, b in zip(text, text[1:])}
    return steps in ({1}, {-1}) or (text.isdigit() and all((int(b) - int(a)) % 10 == 1 for a, b in zip(text, text[1:])))


def check_password(password: str, *, username: str = "", field: str = "password") -> str:
    """Return the normalised password, or raise PasswordRefused (on ``field``) saying which rule it breaks."""
    candidate = normalized(password)
    if len(candidate) < MIN_LENGTH:
        raise PasswordRefused(f"the password has {len(candidate)} characters; at least {MIN_LENGTH} are needed",
                              field)
    if len(candidate) > MAX_LENGTH:
        raise PasswordRefused(f"the password has {len(candidate)} characters; at most {MAX_LENGTH} are allowed",
                              field)
    lowered = candidate.casefold()
    if lowered in blocklist() or _EDGES.sub("", lowered) in blocklist():
        raise PasswordRefused("the password is on the list of common passwords; choose a less guessable one", field)
    compact = re.sub(r"\s+", "", lowered)
    if _repeated(compact) or _consecutive(compact):
        raise PasswordRefused("the password is a repeated or consecutive run of characters", field)
    for word in (username.casefold(), *SERVICE_WORDS):
        if len(word) >= 3 and word in compact:
            raise PasswordRefused("the password contains your username or the name of this service", field)
    return candidate
