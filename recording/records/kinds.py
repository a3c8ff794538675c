"""The kinds of sealed record and the storage key of each (docs/records.md, "Storage keys")."""

from __future__ import annotations

import dataclasses
import enum
import re

from recording.records.storage import validate_key

__all__ = ["FIRST_INDEX", "RecordKind", "check_id", "record_key"]

# Ids as the case record issues them ("cas_<hex>", "ses_<hex>", "pty_<hex>", "usr_<hex>"): they
# become path components of keys, so nothing else is accepted.
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class RecordKind(enum.StrEnum):
    RECORDING_SEGMENT = "recording_segment"
    CHAT_MESSAGE = "chat_message"
    TRANSCRIPT = "transcript"
    CONSENT = "consent"
    AGREEMENT = "agreement"
    # A browser's end-to-end encryption base key, sealed in the browser (docs/records.md).
    E2EE_KEY = "e2ee_key"


@dataclasses.dataclass(frozen=True)
class _KeyRule:
    template: str
    session: bool  # session_id required (else it must be None)
    participant: bool | None  # True required, False forbidden, None optional (not in the key)
    index_digits: int | None  # None: no index; else required, zero-padded to this width
    part: bool = False  # a recording part (a new WebM stream: after a reconnect, a caucus) is required


# The index sequences the compliance tool expects: segments count from 0 within each part
# (segment 0 holds the part's WebM header) and parts from 0; chat from 1 (the room's `seq`);
# consents from 0; agreement versions from 1.
FIRST_INDEX: dict[RecordKind, int] = {
    RecordKind.RECORDING_SEGMENT: 0,
    RecordKind.CHAT_MESSAGE: 1,
    RecordKind.CONSENT: 0,
    RecordKind.AGREEMENT: 1,
    RecordKind.E2EE_KEY: 0,
}

_PART_DIGITS = 4

_RULES: dict[RecordKind, _KeyRule] = {
    RecordKind.RECORDING_SEGMENT: _KeyRule(
        "cases/{case}/sessions/{session}/recordings/{participant}/{part}/{index}.webm.age", True, True, 6, part=True),
    RecordKind.CHAT_MESSAGE: _KeyRule("cases/{case}/sessions/{session}/chat/{index}.json.age", True, None, 8),
    RecordKind.TRANSCRIPT: _KeyRule("cases/{case}/sessions/{session}/transcript.json.age", True, False, None),
    RecordKind.CONSENT: _KeyRule(
        "cases/{case}/sessions/{session}/consents/{participant}/{index}.json.age", True, True, 4),
    # An agreement belongs to the case, not to one session: drafts and signatures come later.
    RecordKind.AGREEMENT: _KeyRule("cases/{case}/agreements/{index}.json.age", False, False, 4),
    RecordKind.E2EE_KEY: _KeyRule("cases/{case}/sessions/{session}/keys/{participant}/{index}.json.age", True, True, 6),
}


def check_id(name: str, value: object) -> str:
    """Return `value` if it is an id fit to be a key component; raise ValueError naming `name` otherwise."""
    if not isinstance(value, str) or not _ID.match(value):
        raise ValueError(f"{name} {value!r} is not an id of the form [a-z0-9][a-z0-9_-]{{0,63}}")
    return value


def record_key(
    kind: RecordKind | str,
    *,
    case_id: str,
    session_id: str | None,
    participant_id: str | None = None,
    index: int | None = None,
    part: int | None = None,
) -> str:
    """Return the storage key of a record; raise ValueError if the fields do not fit the kind.

    recording_segment  cases/<case>/sessions/<session>/recordings/<participant>/<part:04d>/<index:06d>.webm.age
    chat_message       cases/<case>/sessions/<session>/chat/<seq:08d>.json.age
    transcript         cases/<case>/sessions/<session>/transcript.json.age
    consent            cases/<case>/sessions/<session>/consents/<participant>/<index:04d>.json.age
    agreement          cases/<case>/agreements/<version:04d>.json.age
    e2ee_key           cases/<case>/sessions/<session>/keys/<participant>/<index:06d>.json.age
    """
    try:
        kind = RecordKind(kind)
    except ValueError:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {[k.value for k in RecordKind]}") from None
    rule = _RULES[kind]
    fields = {"case": check_id("case_id", case_id)}
    if rule.session:
        fields["session"] = check_id("session_id", session_id)
    elif session_id is not None:
        raise ValueError(f"a {kind} belongs to the case, not to session {session_id!r}")
    if rule.participant is True:
        fields["participant"] = check_id("participant_id", participant_id)
    elif rule.participant is False and participant_id is not None:
        raise ValueError(f"a {kind} has no participant, got {participant_id!r}")
    elif participant_id is not None:
        check_id("participant_id", participant_id)
    if rule.index_digits is None:
        if index is not None:
            raise ValueError(f"a {kind} has no index, got {index!r}")
    else:
        first, limit = FIRST_INDEX[kind], 10**rule.index_digits
        # bool is an int; an index of True is a bug, not segment 1.
        if not isinstance(index, int) or isinstance(index, bool) or not first <= index < limit:
            raise ValueError(f"a {kind} needs an integer index in [{first}, {limit}), got {index!r}")
        fields["index"] = f"{index:0{rule.index_digits}d}"
    if rule.part:
        limit = 10**_PART_DIGITS
        if not isinstance(part, int) or isinstance(part, bool) or not 0 <= part < limit:
            raise ValueError(f"a {kind} needs an integer part in [0, {limit}), got {part!r}")
        fields["part"] = f"{part:0{_PART_DIGITS}d}"
    elif part is not None:
        raise ValueError(f"a {kind} has no part, got {part!r}")
    key = rule.template.format(**fields)
    validate_key(key)
    return key
