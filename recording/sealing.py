"""Sealing records in the age v1 format to X25519 recipients, in memory, with no key that opens them."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pyrage
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

__all__ = ["parse_recipient", "seal"]

# An age X25519 recipient is Bech32 (BIP 173) with HRP "age" over a 32-byte Curve25519 point:
# "age1" + 52 data characters + 6 checksum characters, all lowercase (the age CLI refuses
# uppercase, so we do too rather than store a key other tools reject).
_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_RECIPIENT = re.compile(rf"^age1[{_BECH32_CHARSET}]{{58}}$")
_BECH32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
# Anything that looks like private key material is refused without ever being echoed back.
_SECRET_MARKERS = ("age-secret-key-", "private key", "age-plugin-")
_ECHO_LIMIT = 80
# Any fixed scalar detects small-order points: X25519 clamps scalars to multiples of the
# cofactor 8, so a point of order 1, 2, 4 or 8 always yields the all-zero shared secret.
_PROBE_KEY = X25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def _quote(text: str) -> str:
    """Render a rejected public value for an error message, shortened if long."""
    return repr(text if len(text) <= _ECHO_LIMIT else text[:_ECHO_LIMIT] + "…")


def _bech32_polymod(values: Sequence[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for bit, generator in enumerate(_BECH32_GENERATOR):
            if (top >> bit) & 1:
                checksum ^= generator
    return checksum


def _bech32_payload(text: str) -> bytes | None:
    """Return the 8-bit payload of a lowercase "age1…" Bech32 string, or None if its checksum fails."""
    hrp, data_part = text[:3], text[4:]
    values = [_BECH32_CHARSET.index(c) for c in data_part]
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    if _bech32_polymod(expanded + values) != 1:
        return None
    accumulator, bits, out = 0, 0, bytearray()
    for value in values[:-6]:
        accumulator = (accumulator << 5) | value
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((accumulator >> bits) & 0xFF)
    if bits >= 5 or accumulator & ((1 << bits) - 1):
        return None  # BIP 173: padding must be fewer than 5 bits, all zero
    return bytes(out)


def parse_recipient(text: str) -> str:
    """Return the canonical form of an age X25519 recipient ("age1…"); raise ValueError otherwise.

    Surrounding whitespace is dropped (keys are pasted). Private keys pasted by mistake are
    refused with a message that does not repeat them. Small-order points are refused: sealing
    to one would give a stanza anyone can open (and the age crate aborts on it).
    """
    if not isinstance(text, str):
        raise ValueError(f"an age recipient must be a string, not {type(text).__name__}")
    candidate = text.strip()
    lowered = candidate.lower()
    if any(marker in lowered for marker in _SECRET_MARKERS):
        raise ValueError(
            "this is a private key, not a recipient: give the public key (\"age1…\", "
            "printed by `age-keygen -y`) and keep the private key to yourself"
        )
    if not candidate:
        raise ValueError("an age recipient is empty")
    if candidate.startswith("AGE1"):
        raise ValueError(f"age recipient {_quote(candidate)} must be lowercase")
    if not _RECIPIENT.match(candidate):
        raise ValueError(
            f"{_quote(candidate)} is not an age X25519 recipient (expected \"age1\" followed by 58 "
            f"lowercase Bech32 characters, 62 in all; got {len(candidate)} characters)"
        )
    point = _bech32_payload(candidate)
    if point is None or len(point) != 32:
        raise ValueError(f"age recipient {_quote(candidate)} has a bad checksum (mistyped or truncated?)")
    try:
        _PROBE_KEY.exchange(X25519PublicKey.from_public_bytes(point))
    except ValueError:
        raise ValueError(f"age recipient {_quote(candidate)} is a small-order point and cannot be sealed to") from None
    try:
        pyrage.x25519.Recipient.from_str(candidate)
    except pyrage.RecipientError as exc:  # our checks passed but the library disagrees
        raise ValueError(f"age recipient {_quote(candidate)} is refused by the age library: {exc}") from None
    return candidate


def seal(plaintext: bytes, recipients: Sequence[str]) -> bytes:
    """Encrypt `plaintext` in memory to every recipient; return age v1 binary ciphertext.

    Anyone holding one of the recipients' private keys can decrypt; the caller holds none.
    Duplicate recipients are sealed to once. Raises ValueError for an empty or malformed list.
    """
    if not isinstance(plaintext, bytes):
        raise TypeError(f"plaintext must be bytes, not {type(plaintext).__name__}")
    if isinstance(recipients, (str, bytes)):
        # A lone string is a Sequence[str] of characters; never seal to "a", "g", "e"...
        raise ValueError("recipients must be a list of age recipients, not a single string")
    if not recipients:
        raise ValueError("refusing to seal to no recipients: the record could never be opened")
    canonical = list(dict.fromkeys(parse_recipient(r) for r in recipients))
    parsed = [pyrage.x25519.Recipient.from_str(r) for r in canonical]
    return pyrage.encrypt(plaintext, parsed)
