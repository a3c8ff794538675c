"""SFrame (RFC 9605) on the officer's side: media frames the browsers encrypted, opened with their base keys.

The pages encrypt every encoded frame (docs/protocol.md, "Media frame encryption"): cipher suite
AES_128_GCM_SHA256_128 (0x0004), a VP8 frame's payload header left in clear and authenticated as
SFrame metadata, an Opus packet encrypted whole. The recorder stores those frames as it received
them, so a recorded WebM holds ciphertext blocks; `decrypt_webm` turns it into the WebM the pages'
cameras and microphones made, given the base keys (KID -> 32 bytes) the compliance tool unsealed
from the key records (recording/compliance/e2eekeys.py).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from recording.compliance.seekable import copy_packets

__all__ = [
    "CIPHER_SUITE", "DecryptedRecording", "SFrameError", "clear_prefix_length", "decrypt_media_frame",
    "decrypt_webm", "derive_key_salt", "encode_header", "open_sframe", "parse_header", "seal_sframe",
]

CIPHER_SUITE = 0x0004  # AES_128_GCM_SHA256_128
KEY_BYTES = 16  # AEAD.Nk
NONCE_BYTES = 12  # AEAD.Nn
TAG_BYTES = 16  # AEAD.Nt
VP8_KEY_PREFIX = 10  # frame tag, start code, width and height (RFC 6386 section 9.1)
VP8_DELTA_PREFIX = 3  # frame tag
_U64 = 1 << 64


class SFrameError(ValueError):
    """A frame that cannot be opened: malformed, of an unknown KID, or not authentic."""


def encode_header(kid: int, ctr: int) -> bytes:
    """The SFrame header (RFC 9605 section 4.3): values 0-7 in the config byte, others after it."""
    if not (0 <= kid < _U64 and 0 <= ctr < _U64):
        raise ValueError(f"KID and CTR must be unsigned 64-bit integers, not {kid} and {ctr}")
    config, tail = 0, b""
    if kid < 8:
        config |= kid << 4
    else:
        size = (kid.bit_length() + 7) // 8
        config |= 0x80 | (size - 1) << 4
        tail += kid.to_bytes(size, "big")
    if ctr < 8:
        config |= ctr
    else:
        size = (ctr.bit_length() + 7) // 8
        config |= 0x08 | (size - 1)
        tail += ctr.to_bytes(size, "big")
    return bytes([config]) + tail


def parse_header(data: bytes) -> tuple[int, int, int]:
    """(KID, CTR, header size) of the header ``data`` starts with; refuses a non-minimal encoding."""
    if not data:
        raise SFrameError("empty frame: no SFrame header")
    config, at = data[0], 1
    values = []
    for extended, field in ((config & 0x80, (config >> 4) & 0x07), (config & 0x08, config & 0x07)):
        if not extended:
            values.append(field)
            continue
        size = field + 1
        raw = data[at:at + size]
        if len(raw) != size:
            raise SFrameError(f"SFrame header cut short: needs {at + size} bytes, has {len(data)}")
        value = int.from_bytes(raw, "big")
        if value < 8 or (size > 1 and raw[0] == 0):
            raise SFrameError(f"SFrame header field {raw.hex()} is not minimally encoded")
        values.append(value)
        at += size
    return values[0], values[1], at


@functools.lru_cache(maxsize=256)
def derive_key_salt(base_key: bytes, kid: int) -> tuple[bytes, bytes]:
    """sframe_key and sframe_salt of a base key (RFC 9605 section 4.4.2), HKDF-SHA256 with an empty salt."""
    suffix = kid.to_bytes(8, "big") + CIPHER_SUITE.to_bytes(2, "big")

    def expand(label: bytes, length: int) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=b"", info=label + suffix).derive(base_key)

    return expand(b"SFrame 1.0 Secret key ", KEY_BYTES), expand(b"SFrame 1.0 Secret salt ", NONCE_BYTES)


def _nonce(salt: bytes, ctr: int) -> bytes:
    return bytes(a ^ b for a, b in zip(salt, ctr.to_bytes(NONCE_BYTES, "big"), strict=True))


def seal_sframe(base_key: bytes, kid: int, ctr: int, metadata: bytes, plaintext: bytes) -> bytes:
    """SFrame encryption (RFC 9605 section 4.4.3): header || AEAD(key, nonce, header || metadata, plaintext)."""
    key, salt = derive_key_salt(base_key, kid)
    header = encode_header(kid, ctr)
    return header + AESGCM(key).encrypt(_nonce(salt, ctr), plaintext, header + metadata)


def open_sframe(keys: Mapping[int, bytes], metadata: bytes, sframe: bytes) -> bytes:
    """SFrame decryption (RFC 9605 section 4.4.4) with the base key of the header's KID."""
    kid, ctr, size = parse_header(sframe)
    if len(sframe) < size + TAG_BYTES:
        raise SFrameError("frame shorter than its SFrame header and tag")
    base_key = keys.get(kid)
    if base_key is None:
        raise SFrameError(f"no key for KID {kid}")
    key, salt = derive_key_salt(bytes(base_key), kid)
    try:
        return AESGCM(key).decrypt(_nonce(salt, ctr), sframe[size:], sframe[:size] + metadata)
    except InvalidTag:
        raise SFrameError(f"frame of KID {kid}, CTR {ctr} does not authenticate") from None


def clear_prefix_length(kind: str, data: bytes) -> int:
    """Leading bytes left in clear: a VP8 frame's payload header (10 bytes of a key frame, 3 of a
    delta frame, told apart by the P bit of the first byte), nothing of an Opus packet."""
    if kind != "video" or not data:
        return 0
    return min(len(data), VP8_KEY_PREFIX if data[0] & 0x01 == 0 else VP8_DELTA_PREFIX)


def decrypt_media_frame(kind: str, data: bytes, keys: Mapping[int, bytes]) -> bytes:
    """One protected media frame (``kind`` "audio" or "video") back to what its encoder made."""
    if kind not in ("audio", "video"):
        raise ValueError(f"kind must be 'audio' or 'video', not {kind!r}")
    prefix = clear_prefix_length(kind, data)
    clear = data[:prefix]
    return clear + open_sframe(keys, clear, data[prefix:])


@dataclasses.dataclass(frozen=True)
class DecryptedRecording:
    """What `decrypt_webm` did: frames decrypted, and frames dropped for not opening."""

    decrypted: int
    dropped: int


def decrypt_webm(source: Path, target: BinaryIO, keys: Mapping[int, bytes]) -> DecryptedRecording:
    """Decrypt every block of the recorded WebM at ``source`` into a playable WebM written to ``target``.

    Blocks keep their tracks, timestamps and key-frame flags; a block that does not open (unknown
    KID, not authentic, malformed) is left out and counted, never passed on as ciphertext.
    """
    decrypted = 0

    def rewrite(kind: str, data: bytes) -> bytes | None:
        nonlocal decrypted
        try:
            plain = decrypt_media_frame(kind, data, keys)
        except SFrameError:
            return None
        decrypted += 1
        return plain

    dropped = copy_packets(source, target, rewrite)
    return DecryptedRecording(decrypted=decrypted, dropped=dropped)
