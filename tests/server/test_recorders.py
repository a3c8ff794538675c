"""A recorder worker gets only the environment it needs: never its node's settings or secrets."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from server.recorders import ProcessRecorders, worker_environment
from signaling.identity import Identity
from tests.recording.agekeys import generate

CANARY = "turn-secret-canary-8f3a"


def test_recorders_worker_environment_keeps_only_inherited_names() -> None:
    parent = {"PATH": "/usr/bin", "LANG": "C.UTF-8", "MEDIATION_TURN_SECRET": CANARY,
              "MEDIATION_DATABASE_URL": "postgresql+asyncpg://mediation:pw@db/mediation", "AWS_SECRET_ACCESS_KEY": "x"}
    env = worker_environment(parent, {"RECORDER_TOKEN": "rtk_x", "MEDIATION_LOG_LEVEL": "DEBUG"})
    assert env == {"PATH": "/usr/bin", "LANG": "C.UTF-8", "RECORDER_TOKEN": "rtk_x", "MEDIATION_LOG_LEVEL": "DEBUG"}


def _children_environ(marker: str) -> list[dict[str, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() not in (entry / "cmdline").read_bytes():
                continue
            raw = (entry / "environ").read_bytes()
        except OSError:
            continue
        found.append(dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item))
    return found


async def test_recorders_started_worker_sees_no_node_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIATION_TURN_SECRET", CANARY)
    monkeypatch.setenv("MEDIATION_DATABASE_URL", f"postgresql+asyncpg://mediation:{CANARY}@db/mediation")
    recipient = generate(tmp_path / "officer").recipient
    # The worker's node: a listener that accepts and never answers, so the worker waits while it is looked at.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()

        async def recipients(_case_id: str) -> list[str]:
            return [recipient]

        session_id = "ses_" + "e" * 32
        recorders = ProcessRecorders(lambda: f"http://127.0.0.1:{silent.getsockname()[1]}", recipients,
                                     log_level="DEBUG", log_bytes_per_minute=4096)
        try:
            await recorders.start(Identity(participant_id="usr_" + "a" * 32, role="mediator", name="M",
                                           case_id="cas_" + "b" * 32, session_id=session_id, mode="video"))
            environments: list[dict[str, str]] = []
            for _ in range(100):
                environments = _children_environ(session_id)
                if environments:
                    break
                await asyncio.sleep(0.05)
        finally:
            await recorders.close()
    assert len(environments) == 1, environments
    (env,) = environments
    assert env["RECORDER_TOKEN"].startswith("rtk_") and env["RECORDER_RECIPIENTS"] == recipient
    assert env["MEDIATION_LOG_LEVEL"] == "DEBUG" and env["MEDIATION_LOG_BYTES_PER_MINUTE"] == "4096"
    assert not [name for name, value in env.items() if CANARY in value]
    assert set(env) <= {"PATH", "PYTHONPATH", "VIRTUAL_ENV", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "HOME",
                        "RECORDER_TOKEN", "RECORDER_RECIPIENTS", "MEDIATION_LOG_LEVEL",
                        "MEDIATION_LOG_BYTES_PER_MINUTE"}
