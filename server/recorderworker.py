"""Entry point of a recorder worker process (``python -m server.recorderworker``): JSON logs, then the recorder.

server/recorders.py starts one per recorded session. Its logging is set up here, in the composition
root, with the server's own formatter and redaction list (server/jsonlog.py), because those name the
server's token prefixes and recording/ may not import server/ (tests/test_layering.py): recording/
only names its loggers, and whoever runs it decides where their records go.
"""

from __future__ import annotations

import argparse
import logging
import os

from recording.recorder import worker
from server import jsonlog
from server.settings import Settings

log = logging.getLogger("mediation.recorder")


def main(argv: list[str] | None = None) -> None:
    # Its node passes its log level and budget (server/recorders.py, worker_environment), and nothing else of its
    # settings.
    logging_settings = Settings.from_env({name: value for name, value in os.environ.items()
                                          if name in ("MEDIATION_LOG_LEVEL", "MEDIATION_LOG_BYTES_PER_MINUTE")})
    jsonlog.configure(logging_settings.log_level, bytes_per_minute=logging_settings.log_bytes_per_minute)
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--url", default="")
    parser.add_argument("--session", default="")
    named, _ = parser.parse_known_args(argv)
    log.info("recorder starting", extra={"session_id": named.session, "url": named.url})
    try:
        worker.main(argv)
    except Exception:  # noqa: BLE001 - the process's boundary: logged as JSON, then a failing exit status
        log.exception("recorder worker failed", extra={"session_id": named.session})
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
