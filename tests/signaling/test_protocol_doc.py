"""docs/protocol.md against the code: its request table against signaling/requests.py and the payload models,
its notices against what the room sends, its error codes against what the room raises."""

from __future__ import annotations

import re
from pathlib import Path

from signaling.requests import EVERYONE, MEDIATOR, PARTIES, PEOPLE, RECORDER, REQUESTS
from signaling.roomsettings import RoomSettings
from tests.signaling.protocol_doc import PROTOCOL, fields, name, rows, section

SIGNALING = Path(__file__).resolve().parents[2] / "signaling"

# Each "who may send" the document uses, as (roles, admitted only, before join_room).
WHO = {
    "anyone connected": (EVERYONE, False, False),
    "anyone joined, the recorder too": (EVERYONE, False, True),
    "admitted": (PEOPLE, True, True),
    "admitted, the recorder too": (EVERYONE, True, True),
    "mediator": (MEDIATOR, True, True),
    "the recorder": (RECORDER, True, True),
    "a party (borrower, lender, bank representative), in the lobby or admitted": (PARTIES, False, True),
    "a party (borrower, lender, bank representative), admitted": (PARTIES, True, True),
}


def _doc() -> str:
    return PROTOCOL.read_text(encoding="utf-8")


def _requests() -> dict[str, list[str]]:
    return {name(row[0]): row for row in rows(section(_doc(), "Client requests"))}


def _sources() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(SIGNALING.glob("*.py")))


def test_protocol_doc_requests_are_the_request_table() -> None:
    documented = _requests()
    assert list(documented) == list(REQUESTS), ("documented only", set(documented) - set(REQUESTS),
                                                "served only", set(REQUESTS) - set(documented))


def test_protocol_doc_payload_fields_match_the_payload_models() -> None:
    for event, row in _requests().items():
        model = REQUESTS[event].payload
        expected = {name: not field.is_required() for name, field in model.model_fields.items()}
        assert fields(row[1]) == expected, (event, row[1])


def test_protocol_doc_senders_and_lobby_rule_match_the_request_table() -> None:
    for event, row in _requests().items():
        request = REQUESTS[event]
        assert row[2] in WHO, (event, row[2], "not one of the phrases the document defines")
        assert WHO[row[2]] == (request.senders, request.admitted, request.needs_join), (event, row[2])


def test_protocol_doc_rate_budget_matches_the_request_table() -> None:
    for event, row in _requests().items():
        bucket, _, budget = row[5].partition(" + ")
        assert bucket == REQUESTS[event].bucket, (event, row[5])
        assert (budget or None) == REQUESTS[event].budget, (event, row[5])


def test_protocol_doc_evidence_budgets_are_the_settings_defaults() -> None:
    settings = RoomSettings()
    documented = {name(row[0]): row for row in rows(section(_doc(), "Evidence budgets"))}
    assert set(documented) == {request.budget for request in REQUESTS.values() if request.budget}
    for budget, row in documented.items():
        events = set(re.findall(r"`(\w+)`", row[1]))
        assert events == {event for event, request in REQUESTS.items() if request.budget == budget}, budget
        limits = settings.budget(budget)
        assert row[2] == f"{limits.burst}, then one every {limits.interval:g} s", (budget, row[2])


def test_protocol_doc_who_phrases_are_defined_in_the_doc() -> None:
    intro = section(_doc(), "Client requests").split("| event |")[0]
    for phrase in WHO:
        assert f"`{phrase}`" in intro, phrase


def test_protocol_doc_notices_are_what_the_room_sends() -> None:
    sources = _sources()
    sent = set(re.findall(r"""\.send\([^,()]+(?:\([^()]*\))?, "(\w+)\"""", sources))
    sent |= set(re.findall(r"""emit\(\s*"(\w+)\"""", sources))
    documented = {name(row[0]) for row in rows(section(_doc(), "Server notices"))}
    assert sent, "no notices found in signaling/: the pattern above no longer matches the code"
    assert documented == sent, ("documented only", documented - sent, "sent only", sent - documented)


def test_protocol_doc_names_every_refusal_code_the_room_gives() -> None:
    text = _doc()
    documented = {name(row[0]) for heading in ("Connecting", "Acknowledgements and errors")
                  for row in rows(section(text, heading))}
    for row in _requests().values():
        documented |= set(re.findall(r"`([a-z_]+)`", row[4]))
    raised = set(re.findall(r"""(?:RoomError|Refused)\(\s*"(\w+)\"""", _sources()))
    raised |= set(re.findall(r""""code": "(\w+)\"""", _sources()))
    assert raised, "no codes found in signaling/: the pattern above no longer matches the code"
    assert raised <= documented, sorted(raised - documented)


def test_protocol_doc_errors_of_a_request_are_codes_it_can_get() -> None:
    """Each request's own codes appear in the module of its handler (or are the shared lobby/target codes)."""
    for event, row in _requests().items():
        handler = REQUESTS[event].handler
        source = (SIGNALING / f"{handler.__module__.rsplit('.', 1)[-1]}.py").read_text(encoding="utf-8")
        for code in re.findall(r"`([a-z_]+)`", row[4]):
            budgeted = code == "rate_limited" and REQUESTS[event].budget is not None  # the engine's, by the table
            assert f'"{code}"' in source or budgeted or code in {
                "invalid_payload", "not_admitted", "forbidden", "removed", "room_locked", "cannot_target_self"}, (
                event, code)
