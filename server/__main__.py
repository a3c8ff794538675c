"""Run the server: ``python -m server`` or the ``mediation-server`` console script."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from server import jsonlog
from server.app import create_app
from server.settings import Settings, SettingsError


def main() -> None:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"mediation-server: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    jsonlog.configure(settings.log_level, bytes_per_minute=settings.log_bytes_per_minute)
    logging.getLogger("mediation").info(
        "listening", extra={"host": settings.host, "port": settings.port, "data_dir": str(settings.data_dir)}
    )
    try:
        web.run_app(create_app(settings), host=settings.host, port=settings.port, access_log=None, print=None)
    except Exception:  # noqa: BLE001 - a failed start or stop: logged as JSON, then a failing exit status
        logging.getLogger("mediation").exception("server stopped on an error")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
