"""Staff accounts, password hashing, signing in and out, and changing passwords (a session token is resolved by server.credentials).

An account an administrator creates for a role that reads case text or enters rooms takes effect only
once a second administrator approves it, who is another person: neither created the other's account,
directly or through accounts they created (as for compliance keys, server/recipients.py). Until then it
cannot sign in, hold a session or be assigned. The operator's command line (``create-admin``) is the
bootstrap and needs no approval.
"""

from __future__ import annotations

import datetime as dt
import logging

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.access import Principal
from server.audit import AuditLog
from server.database import Database
from server.errors import Conflict, Forbidden, NotFound, TooManyRequests, Unauthorized, ValidationFailed
from server.hashing import HashingPool
from server.models import StaffSession, StaffUser
from server.revocations import publish
from server.passwords import check_password, normalized
from server.settings import Settings
from server.signinthrottle import Block, SignInThrottle, ThrottlePolicy
from server.tokens import hash_token, new_id, new_token

log = logging.getLogger("mediation.accounts")


# Roles whose account reads case text or enters rooms: made by an administrator, a second one approves it.
NEEDS_SECOND_ADMINISTRATOR = frozenset({"case_officer", "mediator", "bank_representative", "compliance_officer"})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


async def lineage(session: AsyncSession, user_id: str | None) -> set[str]:
    """An account and every account that created it, up to one the operator created: one person's reach."""
    chain: set[str] = set()
    current = user_id
    while current is not None and current not in chain:
        chain.add(current)
        user = await session.get(StaffUser, current)
        current = user.created_by if user is not None else None
    return chain


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
        self.throttle = SignInThrottle(ThrottlePolicy(
            pair_free_failures=settings.login_pair_free_failures,
            address_free_failures=settings.login_address_free_failures,
            username_free_failures=settings.login_username_free_failures,
            base_delay=settings.login_backoff_base_seconds, max_delay=settings.login_backoff_max_seconds,
            username_max_delay=settings.login_username_backoff_max_seconds,
            forget_after=settings.login_forget_after_seconds))

    async def hash_password(self, password: str) -> str:
        return await self._hashing.run(self._hasher.hash, password)

    async def _password_matches(self, stored: str, password: str) -> bool:
        try:
            return await self._hashing.run(self._hasher.verify, stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def create_staff(self, *, username: str, display_name: str, role: str, password: str, actor: str,
                           by_administrator: bool = False) -> StaffUser:
        """Create an account; ``by_administrator``: through the API, so a role in NEEDS_SECOND_ADMINISTRATOR
        waits for a second administrator's approval (``approve_staff``) before it can be used."""
        password_hash = await self.hash_password(check_password(password, username=username))
        creator = actor.partition(":")[2]
        awaiting = by_administrator and role in NEEDS_SECOND_ADMINISTRATOR
        user = StaffUser(
            user_id=new_id("usr"), username=username, display_name=display_name, role=role,
            password_hash=password_hash, disabled=False, created_at=_now(),
            created_by=creator if creator.startswith("usr_") else None, awaiting_approval=awaiting,
        )
        try:
            async with self._db.write() as session:
                session.add(user)
                await session.flush()
                await self._audit.append(
                    session, actor=actor, action="staff_created",
                    detail={"user_id": user.user_id, "username": username, "role": role,
                            "awaiting_approval": awaiting},
                )
        except IntegrityError:
            raise Conflict(f"username {username!r} is taken", code="username_taken", field="username") from None
        return user

    async def approve_staff(self, principal: Principal, user_id: str) -> StaffUser:
        """A second administrator, another person than the creator, lets an account awaiting approval act."""
        async with self._db.write() as session:
            # Locked (on PostgreSQL) so that two approvals at once cannot both pass the checks.
            user = await session.get(StaffUser, user_id, with_for_update=True)
            if user is None:
                raise NotFound(f"no staff user {user_id}", field="user_id")
            if user.disabled or not user.awaiting_approval:
                state = "disabled" if user.disabled else "active"
                raise Conflict(f"staff user {user_id} is {state}, not awaiting approval", code="not_pending",
                               state=state)
            approver = principal.subject_id or ""
            if approver == user.created_by or approver == user_id:
                raise Forbidden("an account is approved by another administrator than the one who created it",
                                code="own_request")
            if await lineage(session, approver) & await lineage(session, user.created_by):
                raise Forbidden(f"one of you created the other's account (directly or through others): the "
                                f"approval of {user.username} must come from another person", code="same_person")
            user.awaiting_approval, user.approved_by, user.approved_at = False, approver, _now()
            await self._audit.append(session, actor=principal.actor, action="staff_approved",
                                     detail={"user_id": user_id, "username": user.username, "role": user.role,
                                             "created_by": user.created_by})
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
            # Disabling an account that awaits approval is how an administrator refuses it.
            refused = user.awaiting_approval
            user.disabled, user.awaiting_approval = True, False
            revoked = await self._revoke_sessions(session, user_id)
            await self._audit.append(session, actor=actor, action="staff_disabled",
                                     detail={"user_id": user_id, "sessions_revoked": revoked,
                                             "was_awaiting_approval": refused})
        return user

    async def login(self, username: str, password: str, address: str) -> tuple[str, dt.datetime, StaffUser]:
        refusal = self.throttle.check(username, address)
        if refusal is not None:
            # Not audited one by one (a flood would flood the log): the count goes in the next block's entry.
            raise TooManyRequests(f"too many failed sign-in attempts ({refusal.scope}); retry in "
                                  f"{refusal.retry_after} s", headers={"Retry-After": str(refusal.retry_after)})
        # Admitted to the hashing pool before any other work: an attempt refused as busy costs no lookup,
        # no audit entry, and does not count as a failure.
        with self._hashing.admission():
            async with self._db.read() as session:
                user = (await session.execute(
                    select(StaffUser).where(StaffUser.username == username))).scalar_one_or_none()
            matches = await self._password_matches(user.password_hash if user else self._decoy_hash,
                                                   normalized(password))
            if user is None or not matches or user.disabled:
                blocks = self.throttle.failed(username, address)
                async with self._db.write() as session:
                    await self._audit.append(
                        session, actor="anonymous", action="login_failed",
                        detail={"username": username[:64], "address": address},
                    )
                    await self._audit_blocks(session, "anonymous", username, address, blocks)
                raise Unauthorized("unknown username or wrong password", code="bad_credentials")
        self.throttle.succeeded(username, address)
        if user.awaiting_approval:
            async with self._db.write() as session:
                await self._audit.append(session, actor="anonymous", action="login_refused",
                                         detail={"username": username[:64], "address": address,
                                                 "reason": "awaiting_approval"})
            raise Forbidden("this account waits for a second administrator's approval", code="awaiting_approval")
        token, expires_at = await self._open_session(user, "login", {"address": address})
        return token, expires_at, user

    async def _open_session(self, user: StaffUser, action: str, detail: dict) -> tuple[str, dt.datetime]:
        token, token_hash = new_token("stf")
        now = _now()
        expires_at = now + dt.timedelta(seconds=self._settings.session_ttl_seconds)
        async with self._db.write() as session:
            session.add(StaffSession(token_hash=token_hash, user_id=user.user_id, created_at=now, expires_at=expires_at))
            await self._audit.append(session, actor=f"{user.role}:{user.user_id}", action=action, detail=detail)
        return token, expires_at

    async def change_password(self, principal: Principal, current: str, new: str,
                              address: str) -> tuple[str, dt.datetime, StaffUser]:
        """Replace the caller's password and end every session of theirs; returns a fresh session.

        The current password is checked under the same back-off as signing in, so a stolen session
        cannot be used to guess it.
        """
        user = await self.user(principal.subject_id or "")
        refusal = self.throttle.check(user.username, address)
        if refusal is not None:
            raise TooManyRequests(f"too many failed attempts ({refusal.scope}); retry in {refusal.retry_after} s",
                                  headers={"Retry-After": str(refusal.retry_after)})
        if not await self._password_matches(user.password_hash, normalized(current)):
            blocks = self.throttle.failed(user.username, address)
            async with self._db.write() as session:
                await self._audit.append(session, actor=principal.actor, action="password_change_failed",
                                         detail={"address": address})
                await self._audit_blocks(session, principal.actor, user.username, address, blocks)
            raise Unauthorized("the current password is wrong", code="bad_credentials", field="current_password")
        candidate = check_password(new, username=user.username, field="new_password")
        if candidate == normalized(current):
            raise ValidationFailed("the new password is the current one", code="password_unchanged",
                                   field="new_password")
        password_hash = await self.hash_password(candidate)
        async with self._db.write() as session:
            stored = await session.get(StaffUser, user.user_id)
            if stored is None or stored.disabled:
                raise NotFound(f"no active staff user {user.user_id}", field="user_id")
            stored.password_hash = password_hash
            stored.password_changed_at = _now()
            revoked = await self._revoke_sessions(session, user.user_id)
            await self._audit.append(session, actor=principal.actor, action="password_changed",
                                     detail={"user_id": user.user_id, "sessions_revoked": revoked})
        token, expires_at = await self._open_session(user, "login", {"address": address, "after": "password_change"})
        return token, expires_at, user

    async def _audit_blocks(self, session: AsyncSession, actor: str, username: str, address: str,
                            blocks: list[Block]) -> None:
        """One ``login_throttled`` entry for each back-off a failure started."""
        for block in blocks:
            await self._audit.append(
                session, actor=actor, action="login_throttled",
                detail={"username": username[:64], "address": address, "scope": block.scope,
                        "failures": block.failures, "delay_seconds": block.delay_seconds,
                        "refused_during_previous_block": block.refused_before})

    @staticmethod
    async def _revoke_sessions(session: AsyncSession, user_id: str) -> int:
        """End every open session of a user inside the caller's transaction; how many were open."""
        sessions = (await session.execute(
            select(StaffSession).where(StaffSession.user_id == user_id, StaffSession.revoked_at.is_(None))
        )).scalars().all()
        now = _now()
        for staff_session in sessions:
            staff_session.revoked_at = now
        publish(session, participant_id=user_id)  # their open room sockets end on every node
        return len(sessions)

    async def logout(self, token: str, principal: Principal) -> None:
        async with self._db.write() as session:
            staff_session = await session.get(StaffSession, hash_token(token))
            if staff_session is not None and staff_session.revoked_at is None:
                staff_session.revoked_at = _now()
                publish(session, participant_id=staff_session.user_id)
                await self._audit.append(session, actor=principal.actor, action="logout")

    async def user(self, user_id: str) -> StaffUser:
        async with self._db.read() as session:
            user = await session.get(StaffUser, user_id)
        if user is None:
            raise NotFound(f"no staff user {user_id}", field="user_id")
        return user
