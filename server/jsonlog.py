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

# Prefixes of every bearer token we issue: staff sessions, case receipts, join links, recorder workers.
# tests/server/test_jsonlog.py finds every token the code issues and checks its prefix is here.
TOKEN_PREFIXES = ("stf", "rcp", "jln", "rtk")

# Bearer tokens, age secret keys, and anything after "password", "secret", "token" or "credential".
_SECRET_PATTERNS = (
    re.compile(rf"\b({'|'.join(TOKEN_PREFIXES)})_[A-Za-z0-9_-]{{20,}}"),
    re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]+"),
    re.compile(r"(?i)(password|secret|token|credential)(\"?\s*[:=]\s*\"?)[^\s\",}]+"),
)
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        if pattern.groups >= 2:
            text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)
        else:
            text = pattern.sub("[redacted]", text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, (int, float, bool, type(None))) else str(value)
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, ensure_ascii=False))


def configure(level: str, stream=None) -> None:
    """Send every logger's records to ``stream`` (stderr) as redacted JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log would print query strings; ours logs routes, not URLs.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
