"""The transcript comes from durable state: a node killed mid-session loses no sealed chat message from it.

One embedded node (SQLite, rooms in its memory): the harshest case, since a SIGKILL takes every room with it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from tests.recording.agekeys import age_binary, generate
from tests.signaling.peer import Participant
from tests.support.mailbox import Mailbox
from tests.support.nodes import (ADMIN, ADMIN_PASSWORD, SECOND_ADMIN, SECOND_ADMIN_PASSWORD, Node, create_admin,
                                 node_environment, start_nodes)
from tests.support.services import free_port
from tests.support.walk import Http, approve_first_key, scheduled_case

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


async def _transcript(http: Http, compliance: str, case_id: str, identity: Path) -> dict:
    deadline = time.monotonic() + 60
    while True:
        _, listed = await http.request("GET", f"/api/cases/{case_id}/records", token=compliance)
        transcripts = [r for r in listed["records"] if r["kind"] == "transcript"]
        if transcripts:
            break
        assert time.monotonic() < deadline, "the transcript was never sealed"
        await asyncio.sleep(0.2)
    status, ciphertext = await http.request("GET", f"/api/cases/{case_id}/records/{transcripts[0]['record_id']}",
                                            token=compliance)
    assert status == 200
    opened = subprocess.run([age_binary("age"), "-d", "-i", str(identity)], input=ciphertext,
                            capture_output=True, timeout=60, check=True)
    return json.loads(opened.stdout)


async def test_transcript_after_node_sigkill_and_restart_holds_every_sealed_chat_message(tmp_path: Path,
                                                                                          mailbox: Mailbox) -> None:
    env = node_environment(MEDIATION_DATA_DIR=str(tmp_path / "data"), MEDIATION_PORT=str(free_port()),
                           **mailbox.environment())
    create_admin(env)
    create_admin(env, SECOND_ADMIN, SECOND_ADMIN_PASSWORD)
    node = Node(name="a", port=int(env["MEDIATION_PORT"]), env=env, log_path=tmp_path / "node.log")
    await asyncio.to_thread(start_nodes, [node])
    peers: list[Participant] = []
    try:
        async with aiohttp.ClientSession() as session:
            http = Http(session, node.base)
            admin = await http.login(ADMIN, ADMIN_PASSWORD)
            _, compliance = await http.staff(admin, "compliance_officer")
            key = generate(tmp_path / "officer")
            await approve_first_key(http, admin, compliance, key.recipient)
            case = await scheduled_case(http, mailbox, admin)
            mediator = Participant(node.base, case.auth("mediator"))
            borrower = Participant(node.base, case.auth("borrower"))
            peers += [mediator, borrower]
            assert (await mediator.join())["records_sealed"]
            await borrower.join()
            assert (await mediator.request("admit", {"participant_id": borrower.participant_id}))["ok"]
            await borrower.wait_for("admitted")
            sent = {}
            for n in range(7):
                who = borrower if n % 2 else mediator
                text = f"before the crash #{n}"
                acked = await who.request("send_chat", {"text": text})
                assert acked["ok"], acked
                sent[acked["seq"]] = text

            await asyncio.to_thread(node.kill, signal.SIGKILL)
            await asyncio.gather(*(peer.close() for peer in peers))
            await asyncio.to_thread(start_nodes, [node])

            mediator = Participant(node.base, case.auth("mediator"))
            peers.append(mediator)
            await mediator.join()
            after = await mediator.request("send_chat", {"text": "after the restart"})
            assert after["ok"], after
            assert after["seq"] not in sent
            sent[after["seq"]] = "after the restart"
            assert (await mediator.request("end_session", {}))["ok"]
            transcript = await _transcript(http, compliance, case.case_id, key.identity_file)
    finally:
        await asyncio.gather(*(peer.close() for peer in peers), return_exceptions=True)
        await asyncio.to_thread(node.stop)
    chat = {e["seq"]: e["text"] for e in transcript["events"] if e["type"] == "chat_message"}
    assert chat == sent
