"""Logs are JSON, and no password, token or receipt ever appears in them."""

from __future__ import annotations

import io
import json
import logging

from server.jsonlog import JsonFormatter, redact
from tests.conftest import STAFF_PASSWORD, Api, issue_link, walk_to_scheduled


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
