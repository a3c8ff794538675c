"""One JSON log shape and one redaction list, for the server and its recorder workers alike."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from server.jsonlog import TOKEN_PREFIXES, BudgetHandler, JsonFormatter
from tests.recording.agekeys import generate
from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[2]
# Where the code issues a bearer token: new_token("xyz") or an f-string "xyz_{secrets.token_urlsafe(...)}".
_ISSUED = (re.compile(r'new_token\(\s*"([a-z]+)"'), re.compile(r'f"([a-z]+)_\{secrets\.token_urlsafe'))


def _issued_prefixes() -> set[str]:
    found: set[str] = set()
    for package in ("server", "signaling", "recording"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            for pattern in _ISSUED:
                found.update(pattern.findall(text))
    return found


def _lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def _environment(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIATION_", "RECORDER_"))}
    env.update(values)
    return env


def test_jsonlog_token_prefixes_cover_every_token_the_code_issues() -> None:
    issued = _issued_prefixes()
    assert {"stf", "rcp", "jln", "rtk"} <= issued
    assert issued <= set(TOKEN_PREFIXES), f"tokens issued but not redacted: {sorted(issued - set(TOKEN_PREFIXES))}"


def test_jsonlog_worker_and_server_lines_same_shape_every_token_redacted(tmp_path: Path) -> None:
    tokens = {prefix: f"{prefix}_{secrets.token_urlsafe(32)}" for prefix in sorted(_issued_prefixes())}
    shown = " ".join(tokens.values())
    # The worker: its session argument holds every kind of token; it cannot reach its node and stops.
    worker = subprocess.run(
        [sys.executable, "-m", "server.recorderworker", "--url", f"http://127.0.0.1:{free_port()}",
         "--session", shown], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        env=_environment(RECORDER_TOKEN=tokens["rtk"],
                         RECORDER_RECIPIENTS=generate(tmp_path / "officer").recipient))
    # The server: its data directory's name holds them; its port is taken, so it stops after starting up.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = subprocess.run(
            [sys.executable, "-m", "server"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
            env=_environment(MEDIATION_HOST="127.0.0.1", MEDIATION_PORT=str(taken.getsockname()[1]),
                             MEDIATION_DATA_DIR=str(tmp_path / f"data {shown}")))
    assert worker.returncode == 1 and server.returncode == 1, (worker.stderr, server.stderr)
    worker_lines, server_lines = _lines(worker.stderr), _lines(server.stderr)
    for line in worker_lines + server_lines:
        assert list(line)[:4] == ["time", "level", "logger", "message"], line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"]), line
    starting = next(line for line in worker_lines if line["message"] == "recorder starting")
    failed = next(line for line in worker_lines if line["message"] == "recorder worker failed")
    listening = next(line for line in server_lines if line["message"] == "listening")
    stopped = next(line for line in server_lines if line["message"] == "server stopped on an error")
    assert starting["logger"] == "mediation.recorder" and failed["level"] == "ERROR" and "traceback" in failed
    assert stopped["level"] == "ERROR" and "traceback" in stopped
    assert starting["session_id"] == " ".join(["[redacted]"] * len(tokens))
    assert listening["data_dir"].endswith("data " + " ".join(["[redacted]"] * len(tokens)))
    for token in tokens.values():
        assert token not in worker.stderr + worker.stdout + server.stderr + server.stdout


def test_jsonlog_budget_drops_past_bytes_per_minute_then_reports_the_count() -> None:
    now = [0.0]
    stream = io.StringIO()
    handler = BudgetHandler(stream, bytes_per_minute=2000, clock=lambda: now[0])
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("mediation.test.budget")
    logger.propagate, logger.level = False, logging.INFO
    logger.addHandler(handler)
    try:
        for number in range(100):
            logger.warning("flood line %d", number)
        written = stream.getvalue()
        assert 0 < len(written) <= 2000 and handler.dropped > 80
        now[0] = 60.0  # a minute later the budget is full again
        logger.warning("after the flood")
    finally:
        logger.removeHandler(handler)
    lines = _lines(stream.getvalue())
    notice = next(line for line in lines if line["message"] == "log records dropped")
    assert notice["dropped"] == handler.dropped and lines[-1]["message"] == "after the flood"


def test_jsonlog_personal_fields_and_email_addresses_never_written() -> None:
    record = logging.LogRecord("mediation.test", logging.INFO, __file__, 0, "mail to li.wei@example.cn failed",
                               None, None)
    record.email, record.phone, record.display_name, record.case_id = ("li.wei@example.cn", "+86 138 0013 8000",
                                                                       "Li Wei", "cas_1")
    line = json.loads(JsonFormatter().format(record))
    assert line["email"] == line["phone"] == line["display_name"] == "[personal]" and line["case_id"] == "cas_1"
    assert "example.cn" not in json.dumps(line)
