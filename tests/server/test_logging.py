"""Logs are JSON, and no password, token or receipt ever appears in them."""

from __future__ import annotations

import io
import json
import logging

from server import jsonlog
from server.jsonlog import QUIET_LOGGERS, JsonFormatter, redact
from tests.conftest import STAFF_PASSWORD, Api, application, issue_link, walk_to_scheduled
from tests.server.test_agreements import terms
from tests.signaling.peer import Participant
from tests.support.walk import CODE


async def test_logs_never_contain_secrets_of_a_whole_journey(api: Api) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.DEBUG)
    try:
        journey = await walk_to_scheduled(api)
        borrower_link = await issue_link(api, journey, journey.borrower_id)  # by case view and mail
        lender_link = await issue_link(api, journey, journey.lender_id)  # by mail
        await api.call("POST", "/api/auth/login", json={"username": "nobody", "password": STAFF_PASSWORD})
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    output = stream.getvalue()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert any(line["message"] == "notice sent" for line in lines)
    assert any(line["message"] == "join link delivery" for line in lines)
    for secret in (journey.receipt, journey.mediator, journey.officer, borrower_link, lender_link, STAFF_PASSWORD):
        assert secret not in output


def test_redact_removes_tokens_and_keys() -> None:
    text = ('token=stf_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG '
            'AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS password: hunter2')
    cleaned = redact(text)
    assert "stf_abc" not in cleaned and "AGE-SECRET-KEY-1Q" not in cleaned and "hunter2" not in cleaned
    assert "48151623" not in redact('{"code_id": "pcd_1", "code": "48151623"}')


CANARY = "canary-phrase-quokka-7731"


async def test_logs_at_debug_of_a_whole_session_hold_no_secret_or_personal_data(api: Api) -> None:
    """The process's own logging set-up (jsonlog.configure) at DEBUG, through a case, a room and an agreement."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {name: logging.getLogger(name).level for name in QUIET_LOGGERS})
    stream = io.StringIO()
    jsonlog.configure("DEBUG", stream, bytes_per_minute=64 * 1024 * 1024)
    logging.getLogger("mediation.test").debug("at debug")  # the level is DEBUG: this line is written
    try:
        journey = await walk_to_scheduled(api)
        email, phone = "li.wei@example.cn", "+86 138 0013 8000"  # the walk's borrower (tests/support/walk.py)
        links = [await issue_link(api, journey, party) for party in (journey.borrower_id, journey.lender_id)]
        mediator = Participant(api.base, {"token": journey.mediator, "session_id": journey.session_id})
        borrower = Participant(api.base, {"token": links[0]})
        try:
            await mediator.join()
            await borrower.join()
            assert (await mediator.request("admit", {"participant_id": borrower.participant_id}))["ok"]
            await borrower.wait_for("admitted")
            assert (await borrower.request("send_chat", {"text": f"my phone is {phone}, {CANARY}"}))["ok"]
            await mediator.wait_for("chat_message", lambda m: CANARY in m["text"])
        finally:
            await borrower.close()
            await mediator.close()
        status, _ = await api.call("PUT", f"/api/cases/{journey.case_id}/agreement", token=journey.mediator,
                                   json=terms(terms=f"Terms {CANARY}"))
        assert status == 200
        await api.call("POST", "/api/auth/login", json={"username": "nobody", "password": STAFF_PASSWORD})
        await api.call("POST", "/api/applications",
                       json=application(proposal=CANARY, borrower={"name": "Li Wei", "email": email, "phone": phone}))
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
    output = stream.getvalue()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert lines[0]["message"] == "at debug" and any(line["message"] == "notice sent" for line in lines)
    assert api.mailbox is not None
    codes = [m.group(1) for mail in api.mailbox.messages if (m := CODE.search(mail.text)) is not None]
    assert len(codes) >= 2  # the walk enrolled both sides' devices with codes from their mail
    for secret in (CANARY, email, phone, STAFF_PASSWORD, journey.receipt, journey.mediator, journey.officer,
                   journey.bank, *links, *codes, "$argon2id$"):
        assert secret not in output, secret
