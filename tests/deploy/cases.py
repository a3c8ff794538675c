"""Scheduled sessions made over the public HTTP API (through the proxy), and room clients that reconnect."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import os
from typing import Any

import aiohttp
import socketio

from tests.conftest import application, future
from tests.deploy.topology import ADMIN, ADMIN_PASSWORD
from tests.signaling.peer import WAIT, Participant

STAFF_PASSWORD = "a long enough password"

_names = itertools.count()


class Http:
    """JSON over HTTP; ``call`` checks the status it expects and returns the parsed body."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def request(self, method: str, path: str, *, token: str | None = None,
                      json_body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.request(method, self.base + path, json=json_body, headers=headers) as response:
            if response.content_type == "application/octet-stream":
                return response.status, await response.read()
            text = await response.text()
            return response.status, json.loads(text) if text and response.content_type == "application/json" else text

    async def call(self, method: str, path: str, *, token: str | None = None, json_body: Any = None,
                   expect: int = 200) -> Any:
        status, body = await self.request(method, path, token=token, json_body=json_body)
        assert status == expect, f"{method} {path}: {status} {body}"
        return body

    async def login(self, username: str, password: str) -> str:
        return (await self.call("POST", "/api/auth/login", json_body={"username": username,
                                                                        "password": password}))["token"]

    async def staff(self, admin: str, role: str) -> tuple[str, str]:
        """A new staff account of ``role``, signed in: (user_id, token)."""
        username = f"{role.replace('_', '-')}-{os.getpid()}-{next(_names)}"
        made = await self.call("POST", "/api/staff", token=admin, expect=201, json_body={
            "username": username, "display_name": username.title(), "role": role, "password": STAFF_PASSWORD})
        return made["user_id"], await self.login(username, STAFF_PASSWORD)


@dataclasses.dataclass
class Case:
    case_id: str
    session_id: str
    officer: str
    mediator: str
    bank: str
    borrower_link: str

    def auth(self, who: str) -> dict[str, str]:
        if who == "borrower":
            return {"token": self.borrower_link}
        return {"token": getattr(self, who), "session_id": self.session_id}


async def scheduled_case(http: Http, admin: str | None = None, officer: str | None = None) -> Case:
    """File, verify, accept, assign, propose and confirm a video session; issue the borrower's link."""
    admin = admin or await http.login(ADMIN, ADMIN_PASSWORD)
    officer = officer or (await http.staff(admin, "case_officer"))[1]
    mediator_id, mediator = await http.staff(admin, "mediator")
    bank_id, bank = await http.staff(admin, "bank_representative")
    receipt = await http.call("POST", "/api/applications", json_body=application(), expect=201)
    case_id = receipt["case_id"]
    case = await http.call("GET", f"/api/cases/{case_id}", token=officer)
    parties = {p["role"]: p["party_id"] for p in case["parties"]}
    for party_id in parties.values():
        await http.call("POST", f"/api/cases/{case_id}/parties/{party_id}/verify", token=officer,
                        json_body={"method": "id_card", "reference": "checked at desk"})
    await http.call("POST", f"/api/cases/{case_id}/accept", token=officer)
    await http.call("PUT", f"/api/cases/{case_id}/assignments", token=officer,
                    json_body={"mediator_id": mediator_id, "bank_representative_id": bank_id})
    case = await http.call("POST", f"/api/cases/{case_id}/sessions", token=mediator, expect=201,
                           json_body={"starts_at": future(), "duration_minutes": 60, "mode": "video"})
    session_id = case["sessions"][0]["session_id"]
    for token in (receipt["receipt_token"], bank):
        confirmed = await http.call("POST", f"/api/cases/{case_id}/sessions/{session_id}/confirm", token=token,
                                    json_body={})
    assert confirmed["state"] == "scheduled", confirmed
    link = await http.call("POST", f"/api/cases/{case_id}/join-links", token=mediator, expect=201,
                           json_body={"party_id": parties["borrower"], "session_id": session_id})
    return Case(case_id=case_id, session_id=session_id, officer=officer, mediator=mediator, bank=bank,
                borrower_link=link["token"])


class RoomClient(Participant):
    """A participant that, like the web client, reconnects by itself and sends ``join_room`` again.

    ``rejoined`` holds the ``join_room`` results of every connection after the first.
    """

    def __init__(self, base: str, auth: dict[str, Any]) -> None:
        super().__init__(base, auth, client=socketio.AsyncClient(
            reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1.0, randomization_factor=0.5))
        self.rejoined: list[dict[str, Any]] = []
        self.disconnects = 0
        self._rejoining: set[asyncio.Task[None]] = set()
        self.client.on("connect", self._connected, namespace="/room")
        self.client.on("disconnect", self._disconnected, namespace="/room")

    async def _connected(self) -> None:
        if self.participant_id is None:
            return  # the first connection: join() sends join_room
        task = asyncio.ensure_future(self._rejoin())
        self._rejoining.add(task)
        task.add_done_callback(self._rejoining.discard)

    async def _disconnected(self, *_reason: Any) -> None:
        self.disconnects += 1
        self._changed.set()

    async def _rejoin(self) -> None:
        try:
            result = await self.client.call("join_room", {}, namespace="/room", timeout=WAIT)
        except (socketio.exceptions.SocketIOError, TimeoutError) as exc:
            result = {"ok": False, "error": "no_answer", "message": repr(exc)}
        self.rejoined.append(result)
        self._changed.set()

    async def wait_rejoined(self, count: int = 1, timeout: float = WAIT) -> dict[str, Any]:
        async def scan() -> dict[str, Any]:
            while len(self.rejoined) < count:
                self._changed.clear()
                await self._changed.wait()
            return self.rejoined[count - 1]
        return await asyncio.wait_for(scan(), timeout)

    async def close(self) -> None:
        for task in list(self._rejoining):
            task.cancel()
        await asyncio.gather(*self._rejoining, return_exceptions=True)
        await super().close()
