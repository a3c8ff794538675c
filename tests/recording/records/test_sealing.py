"""Sealing produces standard age v1 that the age command line opens, and refuses anything but public keys."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pyrage
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from recording.records.sealing import open_sealed, parse_recipient, seal, x25519_identity, x25519_recipient
from tests.recording.agekeys import AgeKey, age_binary, bech32, generate

# Curve25519 points of small order, little-endian u-coordinates (as libsodium blocklists them).
_P = 2**255 - 19
_SMALL_ORDER = {
    "zero": 0,
    "one": 1,
    "order 8": 325606250916557431795983626356110631294008115727848805560023387167927233504,
    "order 8 (other)": 39382357235489614581723060781553021112529911719440698176882885853963445705823,
    "p - 1": _P - 1,
    "p (non-canonical zero)": _P,
}


@pytest.fixture
def officer(tmp_path: Path) -> AgeKey:
    return generate(tmp_path / "officer")


def test_seal_ciphertext_opens_with_age_cli(tmp_path: Path, officer: AgeKey) -> None:
    plaintext = b"recording segment \x00\xff" * 1000
    sealed = tmp_path / "segment.age"
    sealed.write_bytes(seal(plaintext, [officer.recipient]))
    opened = subprocess.run([age_binary("age"), "-d", "-i", str(officer.identity_file), str(sealed)],
                            check=True, capture_output=True, timeout=30).stdout
    assert opened == plaintext


def test_seal_cli_ciphertext_opens_with_library(tmp_path: Path, officer: AgeKey) -> None:
    plaintext = b'{"text": "sealed by the reference implementation"}'
    sealed = tmp_path / "from-cli.age"
    subprocess.run([age_binary("age"), "-r", officer.recipient, "-o", str(sealed)], input=plaintext, check=True,
                   capture_output=True, timeout=30)
    identity = pyrage.x25519.Identity.from_str(officer.secret())
    assert pyrage.decrypt(sealed.read_bytes(), [identity]) == plaintext


def test_seal_output_is_binary_age_v1_with_one_stanza_per_recipient(tmp_path: Path, officer: AgeKey) -> None:
    escrow = generate(tmp_path / "escrow")
    ciphertext = seal(b"x", [officer.recipient, escrow.recipient, officer.recipient])
    header = ciphertext.split(b"\n---", 1)[0]
    assert ciphertext.startswith(b"age-encryption.org/v1\n")
    assert header.count(b"\n-> X25519 ") == 2  # the duplicate is sealed to once
    for key in (officer, escrow):
        assert pyrage.decrypt(ciphertext, [pyrage.x25519.Identity.from_str(key.secret())]) == b"x"


def test_seal_no_recipients_refused() -> None:
    with pytest.raises(ValueError, match="no recipients"):
        seal(b"x", [])


def test_seal_single_string_instead_of_list_refused(officer: AgeKey) -> None:
    with pytest.raises(ValueError, match="not a single string"):
        seal(b"x", officer.recipient)


def test_seal_one_bad_recipient_among_good_ones_refused_by_name(officer: AgeKey) -> None:
    with pytest.raises(ValueError, match="'age1notakey'"):
        seal(b"x", [officer.recipient, "age1notakey"])


def test_parse_recipient_surrounding_whitespace_dropped(officer: AgeKey) -> None:
    assert parse_recipient(f"  {officer.recipient}\n") == officer.recipient


def test_parse_recipient_private_key_refused_without_echo(officer: AgeKey) -> None:
    secret = officer.secret()
    for pasted in (secret, secret.lower(), officer.identity_file.read_text()):
        with pytest.raises(ValueError, match="private key") as caught:
            parse_recipient(pasted)
        assert secret[15:] not in str(caught.value) and secret[15:].lower() not in str(caught.value)


def test_parse_recipient_ssh_private_key_refused_without_echo() -> None:
    pasted = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
    with pytest.raises(ValueError, match="private key") as caught:
        parse_recipient(pasted)
    assert "b3BlbnNz" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO", "is not an age X25519 recipient"),
        ("age1", "is not an age X25519 recipient"),
        ("age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq", "bad checksum"),
        (bech32("age", bytes(range(31))), "is not an age X25519 recipient"),  # a 31-byte key
        (bech32("agf", bytes(range(32))), "is not an age X25519 recipient"),  # wrong HRP
        ("age1yubikey1qwerty", "is not an age X25519 recipient"),  # a plugin recipient
    ],
)
def test_parse_recipient_malformed_refused_quoting_value(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as caught:
        parse_recipient(text)
    if text:
        assert repr(text[:80]).strip("'") in str(caught.value)


def test_parse_recipient_mistyped_character_refused(officer: AgeKey) -> None:
    last = officer.recipient[-1]
    mistyped = officer.recipient[:-1] + ("q" if last != "q" else "p")
    with pytest.raises(ValueError, match=f"{mistyped}.*bad checksum"):
        parse_recipient(mistyped)


def test_parse_recipient_uppercase_refused_as_age_cli_does(officer: AgeKey) -> None:
    with pytest.raises(ValueError, match="must be lowercase"):
        parse_recipient(officer.recipient.upper())
    refused = subprocess.run([age_binary("age"), "-r", officer.recipient.upper()], input=b"x",
                             capture_output=True, timeout=30)
    assert refused.returncode != 0


@pytest.mark.parametrize("point", sorted(_SMALL_ORDER), ids=str)
def test_parse_recipient_small_order_point_refused(point: str) -> None:
    recipient = bech32("age", _SMALL_ORDER[point].to_bytes(32, "little"))
    with pytest.raises(ValueError, match="small-order point"):
        parse_recipient(recipient)
    with pytest.raises(ValueError, match="small-order point"):
        seal(b"x", [recipient])


def test_sealing_raw_x25519_keys_encode_as_age_keygen_reads_them(tmp_path: Path) -> None:
    private = X25519PrivateKey.generate()
    raw_private = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                        serialization.NoEncryption())
    raw_public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    identity_file = tmp_path / "derived.txt"
    identity_file.write_text(str(x25519_identity(raw_private)) + "\n")
    derived = subprocess.run([age_binary("age-keygen"), "-y", str(identity_file)], check=True, capture_output=True,
                             text=True, timeout=30).stdout.strip()
    assert derived == x25519_recipient(raw_public)
    sealed = seal(b"join link", [x25519_recipient(raw_public)])
    opened = subprocess.run([age_binary("age"), "-d", "-i", str(identity_file)], input=sealed, check=True,
                            capture_output=True, timeout=30).stdout
    assert opened == b"join link" == open_sealed(sealed, [x25519_identity(raw_private)])
    with pytest.raises(ValueError, match="cannot open the sealed data"):
        open_sealed(sealed, [pyrage.x25519.Identity.generate()])
    with pytest.raises(ValueError, match="32 bytes"):
        x25519_recipient(raw_public[:31])
