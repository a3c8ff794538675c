"""Declared endpoints: one description drives validation, authorization and the OpenAPI document."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from server.access import ANONYMOUS, NOBODY, PARTY, RECORDER, STAFF_ROLES, Principal
from server.errors import BadRequest, Forbidden, PayloadTooLarge, Unauthorized, UnsupportedMediaType, ValidationFailed
from server.schemas import ErrorView

# Path parameters and the id prefix each must carry.
PATH_PARAMS = {"case_id": "cas", "party_id": "pty", "session_id": "ses", "link_id": "lnk", "user_id": "usr",
               "record_id": "rec", "proposal_id": "rkp"}
_PATH_PATTERNS = {name: re.compile(rf"^{prefix}_[0-9a-f]{{32}}$") for name, prefix in PATH_PARAMS.items()}
_PLACEHOLDER = re.compile(r"{(\w+)}")

GRANTS = (ANONYMOUS, PARTY, RECORDER, *STAFF_ROLES)


@dataclasses.dataclass
class Call:
    """One validated, authorized request as a handler sees it."""

    request: web.Request
    principal: Principal
    path: dict[str, str]
    body: Any = None
    query: Any = None


Handler = Callable[[Call], Awaitable[Any]]


@dataclasses.dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    allow: frozenset[str]
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    case_scoped: bool = False
    # Raw responses (health, metrics) are not JSON models and are documented by hand.
    raw_media_type: str | None = None

    @property
    def operation_id(self) -> str:
        return self.handler.__name__.lstrip("_")


Authenticator = Callable[[web.Request], Awaitable[Principal]]
MembershipCheck = Callable[[Principal, str], Awaitable[None]]


class Router:
    """Collects endpoints and installs them on an app with the checks every request goes through."""

    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        allow: tuple[str, ...],
        summary: str,
        tag: str,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        raw_media_type: str | None = None,
    ) -> Callable[[Handler], Handler]:
        unknown = set(allow) - set(GRANTS)
        if unknown:
            raise ValueError(f"unknown grants {sorted(unknown)} on {method} {path}")

        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method=method, path=path, handler=handler, allow=frozenset(allow), summary=summary, tag=tag,
                    body=body, query=query, response=response, status=status,
                    case_scoped="{case_id}" in path, raw_media_type=raw_media_type,
                )
            )
            return handler

        return register

    def install(
        self, app: web.Application, authenticate: Authenticator, check_member: MembershipCheck, max_body: int
    ) -> None:
        for endpoint in self.endpoints:
            app.router.add_route(endpoint.method, endpoint.path, _wrap(endpoint, authenticate, check_member, max_body))


def _first_error(exc: ValidationError, where: str) -> ValidationFailed:
    error = exc.errors(include_url=False)[0]
    location = ".".join(str(part) for part in error["loc"] if part != "__root__") or where
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    elif error["type"] == "missing":
        message = "field required"
    return ValidationFailed(f"{location}: {message}", field=location)


async def _read_json(request: web.Request, max_body: int) -> bytes:
    if request.content_length is not None and request.content_length > max_body:
        raise PayloadTooLarge(f"body of {request.content_length} bytes exceeds the limit of {max_body}")
    media_type = request.content_type
    if media_type != "application/json":
        raise UnsupportedMediaType(f"expected Content-Type application/json, got {media_type or 'none'!r}")
    raw = await request.content.read(max_body + 1)
    if len(raw) > max_body:
        raise PayloadTooLarge(f"body exceeds the limit of {max_body} bytes")
    return raw


def _wrap(endpoint: Endpoint, authenticate: Authenticator, check_member: MembershipCheck, max_body: int):
    async def handle(request: web.Request) -> web.StreamResponse:
        if ANONYMOUS in endpoint.allow:
            # Public routes serve everyone; a stale cookie must not stand in the way of signing in.
            try:
                principal = await authenticate(request)
            except Unauthorized:
                principal = NOBODY
        else:
            principal = await authenticate(request)
        if ANONYMOUS not in endpoint.allow and principal.grant not in endpoint.allow:
            if principal is NOBODY or principal.kind == "anonymous":
                raise Unauthorized("sign in first: this operation needs a staff session or a party link",
                                   headers={"WWW-Authenticate": 'Bearer realm="mediation"'})
            raise Forbidden(f'role "{principal.role}" may not {endpoint.summary.lower()}')
        path: dict[str, str] = {}
        for name, value in request.match_info.items():
            pattern = _PATH_PATTERNS.get(name)
            if pattern is not None and not pattern.match(value):
                raise BadRequest(f"{name} {value[:80]!r} is not a valid id", code="invalid_id", field=name)
            path[name] = value
        if endpoint.case_scoped:
            await check_member(principal, path["case_id"])
        call = Call(request=request, principal=principal, path=path)
        if endpoint.query is not None:
            try:
                call.query = endpoint.query.model_validate(dict(request.query))
            except ValidationError as exc:
                raise _first_error(exc, "query") from None
            if len(request.query) != len(set(request.query.keys())):
                raise BadRequest("a query parameter is repeated", code="invalid_field")
        if endpoint.body is not None:
            raw = await _read_json(request, max_body)
            try:
                json.loads(raw)
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                raise BadRequest(f"body is not valid JSON: {exc}", code="malformed_json") from None
            try:
                call.body = endpoint.body.model_validate_json(raw)
            except ValidationError as exc:
                raise _first_error(exc, "body") from None
        result = await endpoint.handler(call)
        if isinstance(result, web.StreamResponse):
            return result
        if isinstance(result, BaseModel):
            text = result.model_dump_json()
        else:
            text = json.dumps(result, ensure_ascii=False)
        return web.Response(status=endpoint.status, text=text, content_type="application/json")

    handle.__name__ = endpoint.operation_id
    return handle


_ERRORS = {
    "400": "Malformed request, bad id or malformed JSON",
    "401": "No valid credentials",
    "403": "Role or case membership does not allow this",
    "404": "No such resource",
    "409": "Illegal in the case's current state",
    "413": "Body too large",
    "415": "Body is not JSON",
    "422": "A field failed validation",
    "429": "Rate limited",
    "503": "The case record is unavailable",
}


def openapi_document(endpoints: list[Endpoint], *, title: str, version: str) -> dict[str, Any]:
    """An OpenAPI 3.1 document generated from the endpoints and their pydantic models."""
    models: set[type[BaseModel]] = {ErrorView}
    for endpoint in endpoints:
        models.update(m for m in (endpoint.body, endpoint.response) if m is not None)
    ordered = sorted(models, key=lambda m: m.__name__)
    keys = [(m, "validation" if any(m is e.body for e in endpoints) else "serialization") for m in ordered]
    _, schema = models_json_schema(keys, ref_template="#/components/schemas/{model}")
    components = schema.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation: dict[str, Any] = {
            "operationId": endpoint.operation_id,
            "summary": endpoint.summary,
            "tags": [endpoint.tag],
            "x-allowed-roles": sorted(endpoint.allow),
        }
        if ANONYMOUS not in endpoint.allow:
            operation["security"] = [{"bearer": []}, {"cookie": []}]
        else:
            operation["security"] = [{}]
        parameters = []
        for name in _PLACEHOLDER.findall(endpoint.path):
            parameters.append({
                "name": name, "in": "path", "required": True,
                "schema": {"type": "string", "pattern": _PATH_PATTERNS[name].pattern},
            })
        if endpoint.query is not None:
            query_schema = endpoint.query.model_json_schema()
            for name, prop in query_schema.get("properties", {}).items():
                parameters.append({"name": name, "in": "query", "required": False, "schema": prop})
        if parameters:
            operation["parameters"] = parameters
        if endpoint.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{endpoint.body.__name__}"}}},
            }
        responses: dict[str, Any] = {}
        if endpoint.response is not None:
            responses[str(endpoint.status)] = {
                "description": endpoint.summary,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{endpoint.response.__name__}"}}},
            }
        elif endpoint.raw_media_type is not None:
            raw_type = "object" if endpoint.raw_media_type == "application/json" else "string"
            responses[str(endpoint.status)] = {
                "description": endpoint.summary,
                "content": {endpoint.raw_media_type: {"schema": {"type": raw_type}}},
            }
        else:
            responses[str(endpoint.status)] = {"description": endpoint.summary}
        error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorView"}}}
        for code, description in _ERRORS.items():
            responses[code] = {"description": description, "content": error_ref}
        operation["responses"] = responses
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "A staff session token, a party's receipt token or a join link token"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "mediation_session"},
            },
        },
    }
