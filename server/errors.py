"""Error kinds of the HTTP API and the one place that maps them to the wire."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

log = logging.getLogger("mediation.http")


class ApiError(Exception):
    """A user-facing error: HTTP status, a stable code and a message naming what was wrong."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        state: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field
        self.state = state
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.state is not None:
            body["state"] = self.state
        return body


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class ValidationFailed(ApiError):
    status, code = 422, "invalid_field"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    """Illegal now; ``state`` names the case's current state when that is why (clients read it, not the message)."""

    status, code = 409, "conflict"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class TooManyRequests(ApiError):
    status, code = 429, "rate_limited"


class ServiceUnavailable(ApiError):
    status, code = 503, "unavailable"


def json_error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type="application/json",
        headers=headers,
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def is_database_unavailable(exc: BaseException) -> bool:
    """The case record's database did not answer (down, restarting, pool exhausted), as opposed to a bug."""
    if isinstance(exc, (OperationalError, PoolTimeoutError)):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (ConnectionError, OSError)) and not isinstance(exc, (FileNotFoundError, FileExistsError))


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn every failure into a JSON error; nothing unexpected reaches the client but a request id."""
    request_id = request.headers.get("X-Request-Id", "")
    if not (0 < len(request_id) <= 64 and request_id.isascii() and request_id.replace("-", "").isalnum()):
        request_id = secrets.token_hex(8)
    try:
        response = await handler(request)
    except ApiError as exc:
        response = json_error(exc.status, exc.body(), exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        message = exc.reason if exc.text is None or exc.text.startswith(str(exc.status)) else exc.text
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        response = json_error(exc.status, {"error": code, "message": message}, headers)
    except Exception as exc:  # noqa: BLE001 - the boundary: log everything, reveal nothing
        if is_database_unavailable(exc):
            log.warning("database unavailable", extra={"request_id": request_id, "error_type": type(exc).__name__})
            response = json_error(
                503,
                {"error": "database_unavailable", "message": "the case record is unavailable; retry shortly",
                 "request_id": request_id},
                {"Retry-After": "2"},
            )
        else:
            log.exception("unhandled error", extra={"request_id": request_id, "path": request.path})
            response = json_error(
                500, {"error": "internal", "message": "internal error", "request_id": request_id}
            )
    response.headers["X-Request-Id"] = request_id
    return response
