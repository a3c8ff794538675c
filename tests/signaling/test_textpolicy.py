"""The character policy of human-entered text, on both wires: the API refuses, and so does chat."""

from __future__ import annotations

import pytest

from signaling.textpolicy import TextRefused, checked_text
from tests.conftest import Api, application, walk_to_scheduled
from tests.server.test_agreements import terms
from tests.signaling.conftest import Session

RLO, LRI, PDI, ZWSP, BOM, SHY, TAG_A = "\u202e", "\u2066", "\u2069", "\u200b", "\ufeff", "\u00ad", "\U000e0041"
HANGUL_FILLER = "\u3164"


@pytest.mark.parametrize("char", [RLO, LRI, PDI, "\u200e", "\u200f", "\u061c", ZWSP, BOM, SHY, TAG_A, "\u2060",
                                  HANGUL_FILLER, "\u2028", "\x07", "\ue000"])
def test_textpolicy_bidi_and_invisible_characters_refused_with_code_point(char: str) -> None:
    with pytest.raises(TextRefused, match=f"U\\+{ord(char):04X}"):
        checked_text(f"Li{char}Wei", multiline=True)


def test_textpolicy_joiners_between_visible_characters_pass_elsewhere_refused() -> None:
    family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"  # one emoji made with zero-width joiners
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # a word that needs the non-joiner
    assert checked_text(family, multiline=False) == family
    assert checked_text(persian, multiline=False) == persian
    for text in ("\u200dMediator", "Mediator\u200c", "Li \u200d Wei", "Li\u200d\u200dWei"):
        with pytest.raises(TextRefused, match="joining sequence"):
            checked_text(text, multiline=False)


def test_textpolicy_plain_scripts_newlines_and_nfc_pass() -> None:
    assert checked_text("李伟 · Ana Müller · محمد", multiline=False) == "李伟 · Ana Müller · محمد"
    assert checked_text("line one\n\tline two", multiline=True) == "line one\n\tline two"
    assert checked_text("Cafe\u0301", multiline=False) == "Café"
    with pytest.raises(TextRefused, match="U\\+000A"):
        checked_text("line one\nline two", multiline=False)


@pytest.mark.parametrize(("path", "body"), [
    ("borrower.name", application(borrower={"name": f"Li Wei{RLO}rotaideM", "email": "li.wei@example.cn"})),
    ("borrower.email", application(borrower={"name": "Li Wei", "email": f"li{ZWSP}.wei@example.cn"})),
    ("lender", application(lender=f"{LRI}Bank of Example{PDI}")),
    ("proposal", application(proposal=f"I propose{BOM} to pay monthly")),
])
async def test_textpolicy_application_with_bidi_or_invisible_text_is_refused_naming_the_field(
        api: Api, path: str, body: dict) -> None:
    status, answer = await api.call("POST", "/api/applications", json=body)
    assert status == 422, answer
    assert answer["error"] == "invalid_field" and answer["field"] == path
    assert "U+" in answer["message"] and path in answer["message"]


async def test_textpolicy_agreement_terms_and_staff_name_refused_naming_the_field(api: Api) -> None:
    journey = await walk_to_scheduled(api)
    status, answer = await api.call("PUT", f"/api/cases/{journey.case_id}/agreement", token=journey.mediator,
                                    json=terms(terms=f"The bank waives{RLO} penalties"))
    assert status == 422 and answer["field"] == "terms" and "U+202E" in answer["message"], answer
    _, admin = await api.staff("administrator")
    status, answer = await api.call("POST", "/api/staff", token=admin, json={
        "username": "spoof.er", "display_name": f"Borrower{RLO}rotaideM", "role": "mediator",
        "password": "a long enough password"})
    assert status == 422 and answer["field"] == "display_name" and "U+202E" in answer["message"], answer


async def test_textpolicy_chat_with_bidi_override_is_refused_and_plain_rtl_is_sent(room: Session) -> None:
    mediator, _bank, borrower = await room.admitted_trio()
    refused = await borrower.request("send_chat", {"text": f"hello {RLO}rotaideM"})
    assert refused["ok"] is False and refused["error"] == "invalid_payload" and "U+202E" in refused["message"]
    sent = await borrower.request("send_chat", {"text": "مرحبا hello"})
    assert sent["ok"], sent
    message = await mediator.wait_for("chat_message", lambda m: m["text"] == "مرحبا hello")
    assert message["participant_id"] == borrower.participant_id
