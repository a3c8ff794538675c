"""A join link filed for a party is sealed in age v1 to the party's receipt, which alone opens it."""

from __future__ import annotations

import pytest

from recording.records.sealing import AGE_HEADER
from server.notifier import open_with_receipt, receipt_public_key, seal_to_receipt


def test_notifier_sealed_secret_is_age_and_opens_only_with_its_receipt() -> None:
    receipt, other = "rct_" + "a" * 43, "rct_" + "b" * 43
    sealed = seal_to_receipt(receipt_public_key(receipt), b"https://example.test/room#jln_secret")
    assert sealed.startswith(AGE_HEADER) and b"jln_secret" not in sealed
    assert open_with_receipt(receipt, sealed) == b"https://example.test/room#jln_secret"
    with pytest.raises(ValueError, match="cannot open the sealed data"):
        open_with_receipt(other, sealed)


def test_notifier_receipt_key_derived_the_same_every_time() -> None:
    assert receipt_public_key("rct_x") == receipt_public_key("rct_x") != receipt_public_key("rct_y")
    assert len(receipt_public_key("rct_x")) == 32
