"""Structured JSON logs; values that look like secrets are redacted before anything is written.

The one formatter and the one redaction list of every process we run: the server and its recorder
workers (server/recorderworker.py configures theirs with ``configure`` before the recorder starts).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

# Prefixes of every bearer token we issue: staff sessions, case receipts, join links, recorder workers.
# tests/server/test_jsonlog.py finds every token the code issues and checks its prefix is here.
TOKEN_PREFIXES = ("stf", "rcp", "jln", "rtk")

# Bearer tokens, age secret keys, and anything after "password", "secret", "token" or "credential".
_SECRET_PATTERNS = (
    re.compile(rf"\b({'|'.join(TOKEN_PREFIXES)})_[A-Za-z0-9_-]{{20,}}"),
    re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]+"),
    re.compile(r"(?i)(password|secret|token|credential)(\"?\s*[:=]\s*\"?)[^\s\",}]+"),
    # A one-time code (server/possession.py) wherever a request body or proof might carry one.
    re.compile(r"(?i)\b(code)(\"?\s*[:=]\s*\"?)[0-9]{6,8}\b"),
)
# Personal data: a log entry's field of one of these names is never written, whatever its value, and any
# e-mail address in any text is replaced. Logs carry ids (case_id, party_id), never who someone is.
PERSONAL_FIELDS = frozenset({"name", "display_name", "username", "email", "phone", "contact", "borrower", "lender",
                             "text", "terms", "comment", "note", "password", "token", "one_time_code"})
_EMAIL = re.compile(r"[^\s@\"'<>(),;:]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+")
# Loggers that would write what we must not: SQL parameters (password hashes, contacts) and the
# driver's own call arguments. Held at WARNING whatever MEDIATION_LOG_LEVEL says.
QUIET_LOGGERS = ("sqlalchemy.engine", "sqlalchemy.pool", "aiosqlite", "asyncpg", "alembic", "aiohttp.access")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        if pattern.groups >= 2:
            text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)
        else:
            text = pattern.sub("[redacted]", text)
    return _EMAIL.sub("[e-mail]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key in _STANDARD or key.startswith("_"):
                continue
            if key in PERSONAL_FIELDS:
                entry[key] = "[personal]"
            else:
                entry[key] = value if isinstance(value, (int, float, bool, type(None))) else str(value)
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, ensure_ascii=False))


class BudgetHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes at most ``bytes_per_minute`` (a token bucket refilled evenly); drops and counts the rest.

    A flood of anything that logs cannot fill the disk: once the budget refills, one line says how many
    records were dropped meanwhile. ``dropped`` is the running total, exported as a metric.
    """

    def __init__(self, stream: TextIO, bytes_per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(stream)
        self.capacity = float(bytes_per_minute)
        self.dropped = 0
        self._clock = clock
        self._tokens = self.capacity
        self._updated = clock()
        self._unreported = 0
        self._budget_lock = threading.Lock()

    def _take(self, size: int) -> bool:
        with self._budget_lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.capacity / 60.0)
            self._updated = now
            if self._tokens < size:
                return False
            self._tokens -= size
            return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - logging's own contract: a bad record is reported, never raised
            self.handleError(record)
            return
        if self._unreported and self._take(200):
            notice = logging.LogRecord("mediation.log", logging.WARNING, __file__, 0, "log records dropped",
                                       None, None)
            notice.dropped = self._unreported
            notice.budget_bytes_per_minute = int(self.capacity)
            self._unreported = 0
            self._write(self.format(notice))
        if not self._take(len(line) + 1):
            with self._budget_lock:
                self.dropped += 1
                self._unreported += 1
            return
        self._write(line)

    def _write(self, line: str) -> None:
        try:
            self.stream.write(line + self.terminator)
            self.flush()
        except Exception:  # noqa: BLE001 - as logging.StreamHandler.emit
            self.handleError(logging.LogRecord("mediation.log", logging.ERROR, __file__, 0, line[:200], None, None))


# The budget of this process's log, once configure() installed one; metrics read its count.
_installed: BudgetHandler | None = None


def dropped_records() -> int:
    """Log records this process dropped over its budget."""
    return _installed.dropped if _installed is not None else 0


def configure(level: str, stream: TextIO | None = None, bytes_per_minute: int = 256 * 1024) -> None:
    """Send every logger's records to ``stream`` (stderr) as redacted JSON lines, within a byte budget."""
    global _installed
    handler = BudgetHandler(stream or sys.stderr, bytes_per_minute)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    _installed = handler
    # aiohttp's access log would print query strings; ours logs routes, not URLs. The database loggers
    # would print SQL parameters: password hashes, e-mail addresses, phone numbers.
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
