"""Staff accounts, password hashing, and signing in and out (a session token is resolved by server.credentials)."""

from __future__ import annotations

import datetime as dt
import logging

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from server.access import Principal
from server.audit import AuditLog
from server.database import Database
from server.errors import Conflict, NotFound, TooManyRequests, Unauthorized
from server.hashing import HashingPool
from server.models import StaffSession, StaffUser
from server.ratelimit import SlidingWindow
from server.settings import Settings
from server.tokens import hash_token, new_id, new_token

log = logging.getLogger("mediation.accounts")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Accounts:
    """Owns staff users and their sessions."""

    def __init__(self, settings: Settings, db: Database, audit: AuditLog, hashing: HashingPool | None = None) -> None:
        self._settings = settings
        # Never asyncio's default executor: sealing and the database use that one (server/hashing.py).
        self._hashing = hashing or HashingPool(settings.password_hash_workers, settings.password_hash_queue)
        self._db = db
        self._audit = audit
        self._hasher = PasswordHasher(
            time_cost=settings.password_time_cost, memory_cost=settings.password_memory_kib, parallelism=1
        )
        # A hash to verify against when the username is unknown, so both paths cost the same.
        self._decoy_hash = self._hasher.hash("decoy password that matches nothing")
        self._login_by_user = SlidingWindow(settings.login_attempts_per_minute, 60.0)
        self._login_by_address = SlidingWindow(settings.login_attempts_per_minute * 5, 60.0)

    async def hash_password(self, password: str) -> str:
        return await self._hashing.run(self._hasher.hash, password)

    async def _password_matches(self, stored: str, password: str) -> bool:
        try:
            return await self._hashing.run(self._hasher.verify, stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def create_staff(self, *, username: str, display_name: str, role: str, password: str, actor: str) -> StaffUser:
        password_hash = await self.hash_password(password)
        user = StaffUser(
            user_id=new_id("usr"), username=username, display_name=display_name, role=role,
            password_hash=password_hash, disabled=False, created_at=_now(),
        )
        try:
            async with self._db.write() as session:
                session.add(user)
                await session.flush()
                await self._audit.append(
                    session, actor=actor, action="staff_created",
                    detail={"user_id": user.user_id, "username": username, "role": role},
                )
        except IntegrityError:
            raise Conflict(f"username {username!r} is taken", code="username_taken", field="username") from None
        return user

    async def list_staff(self) -> list[StaffUser]:
        async with self._db.read() as session:
            return list((await session.execute(select(StaffUser).order_by(StaffUser.username))).scalars())

    async def disable_staff(self, user_id: str, actor: str) -> StaffUser:
        async with self._db.write() as session:
            user = await session.get(StaffUser, user_id)
            if user is None:
                raise NotFound(f"no staff user {user_id}", field="user_id")
            if actor.endswith(user_id):
                raise Conflict("administrators cannot disable themselves", code="self_disable")
            user.disabled = True
            sessions = (await session.execute(
                select(StaffSession).where(StaffSession.user_id == user_id, StaffSession.revoked_at.is_(None))
            )).scalars()
            now = _now()
            for staff_session in sessions:
                staff_session.revoked_at = now
            await self._audit.append(session, actor=actor, action="staff_disabled", detail={"user_id": user_id})
        return user

    async def login(self, username: str, password: str, address: str) -> tuple[str, dt.datetime, StaffUser]:
        for limiter, key in ((self._login_by_user, username.lower()), (self._login_by_address, address)):
            retry = limiter.hit(key)
            if retry is not None:
                raise TooManyRequests(
                    f"too many sign-in attempts; retry in {retry} s", headers={"Retry-After": str(retry)}
                )
        # Admitted to the hashing pool before any other work: a refused attempt costs no lookup, no audit entry.
        with self._hashing.admission():
            async with self._db.read() as session:
                user = (await session.execute(
                    select(StaffUser).where(StaffUser.username == username))).scalar_one_or_none()
            matches = await self._password_matches(user.password_hash if user else self._decoy_hash, password)
            if user is None or not matches or user.disabled:
                async with self._db.write() as session:
                    await self._audit.append(
                        session, actor="anonymous", action="login_failed",
                        detail={"username": username[:64], "address": address},
                    )
                raise Unauthorized("unknown username or wrong password", code="bad_credentials")
        token, token_hash = new_token("stf")
        now = _now()
        expires_at = now + dt.timedelta(seconds=self._settings.session_ttl_seconds)
        async with self._db.write() as session:
            session.add(StaffSession(token_hash=token_hash, user_id=user.user_id, created_at=now, expires_at=expires_at))
            await self._audit.append(
                session, actor=f"{user.role}:{user.user_id}", action="login", detail={"address": address}
            )
        return token, expires_at, user

    async def logout(self, token: str, principal: Principal) -> None:
        async with self._db.write() as session:
            staff_session = await session.get(StaffSession, hash_token(token))
            if staff_session is not None and staff_session.revoked_at is None:
                staff_session.revoked_at = _now()
                await self._audit.append(session, actor=principal.actor, action="logout")

    async def user(self, user_id: str) -> StaffUser:
        async with self._db.read() as session:
            user = await session.get(StaffUser, user_id)
        if user is None:
            raise NotFound(f"no staff user {user_id}", field="user_id")
        return user
