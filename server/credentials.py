"""Every bearer credential resolved to one Principal, for the HTTP API and the room sockets alike.

Four kinds of token (server.tokens): a staff session (``stf_``), an application receipt (``rcp_``),
a join link (``jln_``, owned by server.joinlinks) and a recording peer's (``rtk_``, held only in its
node's memory). A token is looked up by its SHA-256; the Principal keeps that hash as its
``credential`` so a socket open for an hour can have it checked again on every turn.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from http.cookies import CookieError, SimpleCookie
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.access import NOBODY, Principal
from server.database import Database
from server.errors import Forbidden, Unauthorized
from server.joinlinks import JoinLinks, LinkRefused
from server.models import Case, JoinLink, Party, StaffSession, StaffUser
from server.tokens import hash_token, token_kind
from signaling.identity import Identity

COOKIE_NAME = "mediation_session"

# Looks up a running recording peer by its token's SHA-256.
RecorderLookup = Callable[[bytes], Identity | None]


class CredentialRefused(Unauthorized):
    """A token that is malformed, unknown, expired or revoked: HTTP 401 ``bad_token``.

    ``reason`` says which ("malformed", "unknown", "expired", or a join link's RevokeReason), so the
    room can tell a party removed by the mediator that it was removed.
    """

    code = "bad_token"

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def presented_token(request: web.Request) -> tuple[str | None, str | None]:
    """An HTTP request's bearer token and where it came from ("header" or "cookie")."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("Authorization header must be 'Bearer <token>'", code="bad_token")
        return value.strip(), "header"
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie:
        return cookie, "cookie"
    return None, None


def handshake_cookie(environ: dict[str, Any]) -> str | None:
    """The staff session cookie a browser sent with a socket handshake, if any."""
    raw = environ.get("HTTP_COOKIE")
    if not isinstance(raw, str):
        return None
    try:
        cookie = SimpleCookie(raw)
    except CookieError:
        return None
    morsel = cookie.get(COOKIE_NAME)
    return morsel.value if morsel is not None else None


class Credentials:
    """Resolves a token, or a credential resolved before, to the Principal it stands for now."""

    def __init__(self, db: Database, allowed_origins: tuple[str, ...],
                 recorder_lookup: RecorderLookup | None = None) -> None:
        self._db = db
        self._allowed_origins = allowed_origins
        self._recorder_lookup = recorder_lookup

    async def authenticate(self, request: web.Request) -> Principal:
        """The caller of an HTTP request; a token that does not resolve is a 401 ``bad_token``."""
        token, source = presented_token(request)
        if token is None:
            return NOBODY
        kind = token_kind(token)
        if kind == "rtk" and source != "header":
            raise CredentialRefused("a recorder credential is accepted only in the Authorization header",
                                    "malformed")
        if source == "cookie" and request.method not in ("GET", "HEAD", "OPTIONS"):
            self._check_origin(request)
        return await self.resolve(token)

    async def resolve(self, token: str) -> Principal:
        kind = token_kind(token)
        if kind is None:
            raise CredentialRefused("the token is malformed", "malformed")
        return await self._resolve(kind, hash_token(token))

    async def resolve_again(self, credential: str) -> Principal:
        """Resolve a Principal's ``credential`` once more: whether it still stands, and for whom."""
        kind, _, digest = credential.partition(":")
        try:
            token_hash = bytes.fromhex(digest)
        except ValueError:
            raise CredentialRefused("the credential is malformed", "malformed") from None
        return await self._resolve(kind, token_hash)

    async def _resolve(self, kind: str, token_hash: bytes) -> Principal:
        credential = f"{kind}:{token_hash.hex()}"
        if kind == "rtk":
            recorder = self._recorder_lookup(token_hash) if self._recorder_lookup is not None else None
            if recorder is None:
                raise CredentialRefused("the recorder credential is not valid", "unknown")
            return Principal(kind="recorder", role="recorder", subject_id=recorder.participant_id,
                             case_id=recorder.case_id, session_id=recorder.session_id, via="recorder",
                             credential=credential)
        now = _now()
        async with self._db.read() as session:
            if kind == "stf":
                row = (await session.execute(
                    select(StaffSession, StaffUser).join(StaffUser, StaffUser.user_id == StaffSession.user_id)
                    .where(StaffSession.token_hash == token_hash)
                )).one_or_none()
                return staff_principal(row, credential, now)
            if kind == "rcp":
                row = (await session.execute(
                    select(Case, Party).join(Party, Party.case_id == Case.case_id)
                    .where(Case.receipt_hash == token_hash, Party.role == "borrower")
                )).one_or_none()
                if row is None or row[0].receipt_expires_at <= now:
                    raise CredentialRefused("the receipt is unknown or has expired", "expired")
                if row[0].receipt_revoked_at is not None:
                    raise CredentialRefused("this receipt was revoked by the mediation body; ask it for a new "
                                            "way into your case", "revoked")
                return Principal(kind="party", role="borrower", subject_id=row[1].party_id,
                                 case_id=row[0].case_id, via="receipt", credential=credential)
            if kind == "jln":
                return link_principal(await JoinLinks.find(session, token_hash), credential)
        raise CredentialRefused("the token is malformed", "malformed")

    async def resolve_many(self, session: AsyncSession, credentials: Collection[str]
                           ) -> dict[str, Principal | CredentialRefused]:
        """What ``resolve_again`` answers for each credential, read in one query per kind of token in ``session``."""
        now = _now()
        found: dict[str, Principal | CredentialRefused] = {}
        by_kind: dict[str, dict[bytes, str]] = {"stf": {}, "jln": {}}
        for credential in credentials:
            kind, _, digest = credential.partition(":")
            try:
                token_hash = bytes.fromhex(digest)
            except ValueError:
                found[credential] = CredentialRefused("the credential is malformed", "malformed")
                continue
            if kind in by_kind:
                by_kind[kind][token_hash] = credential
                continue
            try:  # a recorder's (in memory) or a kind no room admits: as ``resolve_again`` answers it alone
                found[credential] = await self.resolve_again(credential)
            except CredentialRefused as exc:
                found[credential] = exc
        if by_kind["stf"]:
            rows = {row[0].token_hash: row for row in (await session.execute(
                select(StaffSession, StaffUser).join(StaffUser, StaffUser.user_id == StaffSession.user_id)
                .where(StaffSession.token_hash.in_(list(by_kind["stf"])))
            )).all()}
            for token_hash, credential in by_kind["stf"].items():
                found[credential] = _answer(staff_principal, rows.get(token_hash), credential, now)
        if by_kind["jln"]:
            links = {link.token_hash: link for link in (await session.execute(
                select(JoinLink).where(JoinLink.token_hash.in_(list(by_kind["jln"])))
            )).scalars()}
            for token_hash, credential in by_kind["jln"].items():
                found[credential] = _answer(lambda link, c, _now: link_principal(link, c),
                                            links.get(token_hash), credential, now)
        return found

    def _check_origin(self, request: web.Request) -> None:
        # Cookie-authenticated writes must come from our own pages (SameSite is the first line).
        origin = request.headers.get("Origin")
        if origin is None:
            return
        own = f"{request.scheme}://{request.host}"
        if origin != own and origin not in self._allowed_origins:
            raise Forbidden(f"cross-origin request from {origin[:100]!r} refused", code="bad_origin")


def staff_principal(row: Any, credential: str, now: dt.datetime) -> Principal:
    """A staff session's (StaffSession, StaffUser) row as a Principal, or CredentialRefused if it no longer stands."""
    if (row is None or row[0].revoked_at is not None or row[0].expires_at <= now or row[1].disabled
            or row[1].awaiting_approval):
        raise CredentialRefused("the session has expired or was ended; sign in again", "expired")
    return Principal(kind="staff", role=row[1].role, subject_id=row[1].user_id, via="session",
                     credential=credential, expires_at=row[0].expires_at)


def link_principal(link: JoinLink | None, credential: str) -> Principal:
    """A join link as its party's Principal, or CredentialRefused if it does not open its session now."""
    try:
        link = JoinLinks.usable(link)
    except LinkRefused as exc:
        raise CredentialRefused(exc.message, exc.reason) from None
    return Principal(kind="party", role=link.role, subject_id=link.party_id, case_id=link.case_id,
                     link_id=link.link_id, session_id=link.session_id, via="join_link",
                     credential=credential, expires_at=link.expires_at)


def _answer(make: Callable[[Any, str, dt.datetime], Principal], row: Any, credential: str,
            now: dt.datetime) -> Principal | CredentialRefused:
    try:
        return make(row, credential, now)
    except CredentialRefused as exc:
        return exc
