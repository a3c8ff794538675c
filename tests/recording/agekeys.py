"""Age keys for tests, made by the real `age-keygen`, and Bech32 encoding for hand-made recipients."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


@dataclasses.dataclass(frozen=True)
class AgeKey:
    identity_file: Path
    recipient: str

    def secret(self) -> str:
        return next(line for line in self.identity_file.read_text().splitlines()
                    if line.startswith("AGE-SECRET-KEY-"))


def age_binary(name: str) -> str:
    """The path of `age` or `age-keygen`; a missing one fails the test (scripts/setup.sh installs them)."""
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name!r} is not installed: run scripts/setup.sh (Debian package 'age')")
    return path


def generate(directory: Path, name: str = "identity.txt") -> AgeKey:
    directory.mkdir(parents=True, exist_ok=True)
    identity = directory / name
    subprocess.run([age_binary("age-keygen"), "-o", str(identity)], check=True, capture_output=True, timeout=30)
    recipient = subprocess.run([age_binary("age-keygen"), "-y", str(identity)], check=True, capture_output=True,
                               text=True, timeout=30).stdout.strip()
    return AgeKey(identity, recipient)


def _polymod(values: list[int]) -> int:
    generators = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for bit, generator in enumerate(generators):
            if (top >> bit) & 1:
                checksum ^= generator
    return checksum


def bech32(hrp: str, payload: bytes) -> str:
    """BIP 173 encoding, to build recipients no honest tool would make (wrong length, small-order points)."""
    accumulator, bits, data = 0, 0, []
    for byte in payload:
        accumulator = (accumulator << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            data.append((accumulator >> bits) & 31)
    if bits:
        data.append((accumulator << (5 - bits)) & 31)
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    checksum = _polymod(expanded + data + [0] * 6) ^ 1
    data += [(checksum >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[d] for d in data)
