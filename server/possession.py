"""The party's possession factor: one-time codes to its verified contact, enrolled device keys, act proofs.

An act with legal weight (confirming a session, giving or withdrawing recording consent, signing the
agreement) needs proof that the person holds the party's verified contact, not only a link that may have
been forwarded: a fresh code sent to that contact now, or a signature by a browser key enrolled with such
a code. Codes are 8 digits, kept only as an HMAC under a key derived from the server's signing key, live
``possession_code_ttl_seconds``, are spent by their first right answer and void after ``MAX_ATTEMPTS``
wrong ones; they never reach a log or the audit log (which names them by ``code_id``). Staff other than the
bank representative, who speaks for the lender, can neither request nor spend them.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.access import Principal
from server.audit import AuditLog
from server.channels import Channel, DeliveryFailed
from server.database import Database
from server.errors import ApiError, Conflict, Forbidden, NotFound, TooManyRequests, ValidationFailed
from server.models import Case, DeviceEnrolment, Party, PossessionChallenge, PossessionCode
from server.notifier import receipt_public_key
from server.provenance import credential_detail, receipt_id
from server.ratelimit import SlidingWindow
from server.settings import Settings
from server.tokens import new_id, new_token

log = logging.getLogger("mediation.possession")

ACTS = ("confirm_session", "give_consent", "withdraw_consent", "sign_agreement")
PURPOSES = ("enrol", "act", "recover")
MAX_ATTEMPTS = 5
CODE_DIGITS = 8
CHALLENGE_SECONDS = 300
WINDOW = dt.timedelta(minutes=15)
RECOVERY_PER_CASE = 3  # recovery codes per case in WINDOW; beyond it nothing is sent, and the answer is the same
CHALLENGE_CONTEXT = b"mediation-possession-challenge/v1\n"

_ACT_NAMES = {"confirm_session": "confirming the session", "give_consent": "consenting to the recording",
              "withdraw_consent": "withdrawing recording consent", "sign_agreement": "signing the agreement"}


class PossessionError(ApiError):
    """A possession proof refused: 403 with a code saying why (the act changes nothing)."""

    status, code = 403, "possession_invalid"


class CodeRefused(ApiError):
    """A one-time code not accepted: 422 ``code_wrong``, ``code_expired`` or ``code_spent``."""

    status, code = 422, "code_wrong"


class DeliveryUnavailable(ApiError):
    """The channel to the party's contact did not take the code: 502 ``delivery_failed``."""

    status, code = 502, "delivery_failed"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def fingerprint(public_key: bytes) -> str:
    """A device key's public name: SHA-256 of its raw Ed25519 public key, hex."""
    return hashlib.sha256(public_key).hexdigest()


def masked(channel: str, address: str) -> str:
    """An address as its own party may be shown it: enough to recognise, not to read."""
    if channel == "email":
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    digits = re.sub(r"[^0-9]", "", address)
    return f"***{digits[-4:]}"


def _normal(channel: str, address: str) -> str:
    return address.strip().lower() if channel == "email" else re.sub(r"[^0-9]", "", address)


def challenge_message(row: PossessionChallenge) -> bytes:
    """The exact bytes an enrolled key signs to prove possession for one act."""
    return CHALLENGE_CONTEXT + rfc8785.dumps({
        "act": row.act, "case_id": row.case_id, "challenge_id": row.challenge_id, "nonce": b64url(row.nonce),
        "party_id": row.party_id, "session_id": row.session_id})


@dataclasses.dataclass(frozen=True)
class Proof:
    """What a request carries to prove possession: an enrolled key's signature of a challenge, or a code."""

    challenge_id: str | None = None
    signature: str | None = None
    code_id: str | None = None
    code: str | None = None


@dataclasses.dataclass(frozen=True)
class SentCode:
    code_id: str
    channel: str
    to: str  # masked
    expires_at: dt.datetime


class Possession:
    """Owns codes, enrolments and challenges; every act with legal weight asks ``prove`` (or ``signing_key``)."""

    def __init__(self, settings: Settings, db: Database, audit: AuditLog, channels: dict[str, Channel],
                 signing_key_material: bytes) -> None:
        self._settings = settings
        self._db = db
        self._audit = audit
        self._channels = channels
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                         info=b"mediation possession code key v1").derive(signing_key_material)
        self._ttl = dt.timedelta(seconds=settings.possession_code_ttl_seconds)
        self._per_address = SlidingWindow(settings.possession_codes_per_address, WINDOW.total_seconds())
        self._tasks: set[asyncio.Task[None]] = set()

    # --- keyed hashes ----------------------------------------------------------------------------

    def _code_hash(self, code_id: str, code: str) -> bytes:
        return hmac.new(self._key, f"code\x00{code_id}\x00{code}".encode(), hashlib.sha256).digest()

    def _address_hash(self, channel: str, address: str) -> bytes:
        return hmac.new(self._key, f"address\x00{channel}\x00{_normal(channel, address)}".encode(),
                        hashlib.sha256).digest()

    # --- who a caller acts for ----------------------------------------------------------------------

    @staticmethod
    async def party_of(session: AsyncSession, principal: Principal, case_id: str) -> Party:
        """The party ``principal`` acts for in ``case_id``: itself, or the lender for its bank representative."""
        if principal.kind == "party":
            party = await session.get(Party, principal.subject_id)
            if party is None or party.case_id != case_id:
                raise Forbidden("a party acts only in its own case", code="not_case_member")
            return party
        if principal.kind == "staff" and principal.role == "bank_representative":
            return await _lender(session, case_id)
        raise Forbidden(f'role "{principal.role}" cannot act for a party: only the party, holding its own verified '
                        f"contact, can", code="party_act_only")

    @staticmethod
    async def party_of_member(session: AsyncSession, role: str, participant_id: str, case_id: str) -> Party:
        """The party a room member acts for (the same rule as ``party_of``, for a socket's identity)."""
        if role in ("borrower", "lender"):
            party = await session.get(Party, participant_id)
            if party is not None and party.case_id == case_id:
                return party
        elif role == "bank_representative":
            return await _lender(session, case_id)
        raise Forbidden(f'role "{role}" cannot act for a party', code="party_act_only")

    @staticmethod
    async def credential_of(session: AsyncSession, principal: Principal) -> dict[str, Any]:
        """The credential the caller holds, for the audit log: a link or receipt, or a staff session."""
        how = await credential_detail(session, via=principal.via, link_id=principal.link_id,
                                      credential=principal.credential)
        if not how and principal.kind == "staff":
            how = {"credential": {"kind": "staff_session", "user_id": principal.subject_id,
                                  "issued_by": "sign_in", "delivered_via": ["sign_in_response"]}}
        return how

    def routes(self, party: Party) -> list[tuple[str, str]]:
        """(channel, address) a code for ``party`` can go to: its verified contacts with a configured channel."""
        if party.verified_at is None:
            return []
        routes = []
        if party.email and "email" in self._channels:
            routes.append(("email", party.email))
        if party.phone and "sms" in self._channels:
            routes.append(("sms", party.phone))
        return routes

    # --- reading ---------------------------------------------------------------------------------

    async def state(self, principal: Principal, case_id: str) -> dict[str, Any]:
        async with self._db.read() as session:
            party = await self.party_of(session, principal, case_id)
            enrolments = await self._enrolments(session, party.party_id)
        return {"party_id": party.party_id, "role": party.role,
                "channels": [{"channel": c, "to": masked(c, a)} for c, a in self.routes(party)],
                "enrolments": [enrolment_view(e) for e in enrolments]}

    @staticmethod
    async def _enrolments(session: AsyncSession, party_id: str) -> list[DeviceEnrolment]:
        return list((await session.execute(
            select(DeviceEnrolment).where(DeviceEnrolment.party_id == party_id, DeviceEnrolment.revoked_at.is_(None))
            .order_by(DeviceEnrolment.enrolled_at))).scalars())

    # --- codes -----------------------------------------------------------------------------------

    def _limit_address(self, client_address: str) -> None:
        wait = self._per_address.hit(client_address)
        if wait is not None:
            raise TooManyRequests(f"too many code requests from this address; try again in {wait} s",
                                  code="rate_limited")

    async def _recent(self, session: AsyncSession, party_id: str, purpose: str | None = None) -> int:
        statement = select(func.count()).select_from(PossessionCode).where(
            PossessionCode.party_id == party_id, PossessionCode.created_at > _now() - WINDOW)
        if purpose is not None:
            statement = statement.where(PossessionCode.purpose == purpose)
        return (await session.execute(statement)).scalar_one()

    def _new_code(self, *, case_id: str, party: Party, purpose: str, channel: str, address: str, requested_by: str,
                  credential: dict[str, Any] | None, act: str | None = None,
                  session_id: str | None = None) -> tuple[str, PossessionCode]:
        code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        now = _now()
        row = PossessionCode(code_id=new_id("pcd"), case_id=case_id, party_id=party.party_id, purpose=purpose,
                             act=act, session_id=session_id, channel=channel,
                             address_hash=self._address_hash(channel, address), code_hash=b"",
                             credential=credential, requested_by=requested_by, created_at=now,
                             expires_at=now + self._ttl, attempts=0)
        row.code_hash = self._code_hash(row.code_id, code)
        return code, row

    async def request_code(self, principal: Principal, case_id: str, *, purpose: str, channel: str | None,
                           act: str | None, session_id: str | None, client_address: str) -> SentCode:
        """Send a fresh code for ``purpose`` ("enrol", or "act" for one act) to the party's verified contact."""
        if purpose == "act" and act is None:
            raise ValidationFailed("act: a code for an act names the act", field="act")
        if purpose == "enrol" and (act is not None or session_id is not None):
            raise ValidationFailed("act: an enrolment code is not for one act", field="act")
        self._limit_address(client_address)
        async with self._db.write() as session:
            party = await self.party_of(session, principal, case_id)
            routes = self.routes(party)
            if not routes:
                raise Conflict(f"party {party.party_id} ({party.role}) has no verified e-mail or phone that a code "
                               f"can be sent to; the mediation body must verify one", code="no_verified_contact")
            chosen = [r for r in routes if channel is None or r[0] == channel]
            if not chosen:
                raise Conflict(f"no verified {channel} contact of this party can receive a code; available: "
                               f"{', '.join(r[0] for r in routes)}", code="channel_unavailable", field="channel")
            if await self._recent(session, party.party_id) >= self._settings.possession_codes_per_party:
                raise TooManyRequests("too many codes were sent to this party lately; wait a quarter of an hour",
                                      code="rate_limited")
            route_channel, address = chosen[0]
            how = await self.credential_of(session, principal)
            code, row = self._new_code(case_id=case_id, party=party, purpose=purpose, channel=route_channel,
                                       address=address, requested_by=principal.actor,
                                       credential=how.get("credential"), act=act, session_id=session_id)
            session.add(row)
            await session.flush()
            await self._audit.append(session, actor=principal.actor, action="possession_code_sent", case_id=case_id,
                                     detail={"code_id": row.code_id, "party_id": party.party_id, "purpose": purpose,
                                             "act": act, "session_id": session_id, "channel": route_channel, **how})
        text = self._message(purpose, act, code, row.code_id)
        try:
            await self._channels[route_channel].send(address, "Your mediation one-time code", text)
        except DeliveryFailed as exc:
            await self._void(row.code_id)
            log.warning("one-time code not delivered", extra={"case_id": case_id, "code_id": row.code_id,
                                                               "channel": route_channel, "error": exc.error})
            raise DeliveryUnavailable(f"the code could not be sent by {route_channel} ({exc.error}); try again or "
                                      f"another channel") from None
        log.info("one-time code sent", extra={"case_id": case_id, "code_id": row.code_id, "channel": route_channel})
        return SentCode(code_id=row.code_id, channel=route_channel, to=masked(route_channel, address),
                        expires_at=row.expires_at)

    def _message(self, purpose: str, act: str | None, code: str, code_id: str) -> str:
        minutes = max(1, self._settings.possession_code_ttl_seconds // 60)
        what = {"enrol": "enrolling this device for your mediation case",
                "recover": "recovering access to your mediation case"}.get(purpose) or _ACT_NAMES.get(act or "", "")
        return (f"Your one-time code for {what} is {code}. It expires in {minutes} minutes and works once. "
                f"Nobody from the mediation body will ever ask you for it.\n\nReference: {code_id}")

    async def _void(self, code_id: str) -> None:
        async with self._db.write() as session:
            row = await session.get(PossessionCode, code_id)
            if row is not None and row.voided_at is None:
                row.voided_at = _now()

    async def _spend_code(self, code_id: str, code: str, *, party_id: str | None, purpose: str,
                          act: str | None = None, session_id: str | None = None,
                          address_hash: bytes | None = None) -> PossessionCode:
        """Spend a code in its own transaction (a wrong answer counts even when the act then fails)."""
        refusal: CodeRefused | None = None
        async with self._db.write() as session:
            row = (await session.execute(
                select(PossessionCode).where(PossessionCode.code_id == code_id).with_for_update()
            )).scalar_one_or_none()
            if (row is None or (party_id is not None and row.party_id != party_id) or row.purpose != purpose
                    or (address_hash is not None and not hmac.compare_digest(row.address_hash, address_hash))):
                raise CodeRefused("that code was not sent to this party for this purpose", code="code_wrong")
            if purpose == "act" and (row.act != act or row.session_id != session_id):
                raise CodeRefused(f"that code was sent for {_ACT_NAMES.get(row.act or '', row.act)}, not for "
                                      f"{_ACT_NAMES.get(act or '', act)}", code="code_wrong")
            now = _now()
            if row.used_at is not None or row.voided_at is not None:
                raise CodeRefused("that code was used already or voided; ask for a new one", code="code_spent")
            if row.expires_at <= now:
                raise CodeRefused("that code has expired; ask for a new one", code="code_expired")
            if not hmac.compare_digest(row.code_hash, self._code_hash(row.code_id, code)):
                row.attempts += 1
                left = MAX_ATTEMPTS - row.attempts
                if left <= 0:
                    row.voided_at = now
                    refusal = CodeRefused("wrong code; it is now void after too many attempts: ask for a new one",
                                              code="code_spent")
                else:
                    refusal = CodeRefused(f"wrong code; {left} attempt{'s' if left > 1 else ''} left",
                                              code="code_wrong")
            else:
                row.used_at = now
        if refusal is not None:
            raise refusal
        return row

    # --- enrolment ---------------------------------------------------------------------------------

    async def enrol(self, principal: Principal, case_id: str, *, code_id: str, code: str,
                    public_key: str) -> DeviceEnrolment:
        """Enrol a browser's Ed25519 public key for the party, with an enrolment code sent to its contact."""
        try:
            raw = unb64url(public_key)
            Ed25519PublicKey.from_public_bytes(raw)
        except ValueError:
            raise ValidationFailed("public_key: not a raw Ed25519 public key", field="public_key") from None
        async with self._db.read() as session:
            party = await self.party_of(session, principal, case_id)
            if (await session.execute(select(DeviceEnrolment.enrolment_id)
                                      .where(DeviceEnrolment.public_key == raw))).first() is not None:
                raise Conflict("that key is enrolled already", code="key_enrolled", field="public_key")
        row = await self._spend_code(code_id, code, party_id=party.party_id, purpose="enrol")
        async with self._db.write() as session:
            how = await self.credential_of(session, principal)
            enrolment = DeviceEnrolment(enrolment_id=new_id("enr"), case_id=case_id, party_id=party.party_id,
                                        public_key=raw, fingerprint=fingerprint(raw), code_id=row.code_id,
                                        channel=row.channel, credential=how.get("credential"),
                                        enrolled_by=principal.actor, enrolled_at=_now())
            session.add(enrolment)
            await session.flush()
            await self._audit.append(session, actor=principal.actor, action="device_enrolled", case_id=case_id,
                                     detail={"enrolment_id": enrolment.enrolment_id, "party_id": party.party_id,
                                             "fingerprint": enrolment.fingerprint, "code_id": row.code_id,
                                             "channel": row.channel, **how})
        return enrolment

    # --- challenges and proofs ---------------------------------------------------------------------

    async def challenge(self, principal: Principal, case_id: str, *, act: str,
                        session_id: str | None) -> PossessionChallenge:
        """A single-use challenge for ``act`` that the party's enrolled key signs."""
        now = _now()
        async with self._db.write() as session:
            party = await self.party_of(session, principal, case_id)
            if not await self._enrolments(session, party.party_id):
                raise Conflict("this party has no enrolled device; enrol one with a code first",
                               code="not_enrolled")
            row = PossessionChallenge(challenge_id=new_id("chl"), case_id=case_id, party_id=party.party_id,
                                      act=act, session_id=session_id, nonce=secrets.token_bytes(32), created_at=now,
                                      expires_at=now + dt.timedelta(seconds=CHALLENGE_SECONDS))
            session.add(row)
        return row

    async def prove(self, principal: Principal, case_id: str, act: str, session_id: str | None,
                    proof: Proof | None) -> dict[str, Any]:
        """Check and spend ``proof`` for ``act`` by the caller's party; the audit evidence, or PossessionError."""
        async with self._db.read() as session:
            party = await self.party_of(session, principal, case_id)
            how = await self.credential_of(session, principal)
        return {**how, "possession": await self._prove(party, act, session_id, proof)}

    async def prove_member(self, role: str, participant_id: str, case_id: str, act: str, session_id: str,
                           proof: Proof | None) -> dict[str, Any]:
        """``prove`` for a room member (the socket's identity, not an HTTP principal)."""
        async with self._db.read() as session:
            party = await self.party_of_member(session, role, participant_id, case_id)
        return {"possession": await self._prove(party, act, session_id, proof)}

    async def _prove(self, party: Party, act: str, session_id: str | None, proof: Proof | None) -> dict[str, Any]:
        if proof is None or not ((proof.challenge_id and proof.signature) or (proof.code_id and proof.code)):
            raise PossessionError(f"{_ACT_NAMES[act]} needs proof that you hold the party's verified contact: a "
                                  f"one-time code sent to it, or your enrolled device's signature",
                                  code="possession_required")
        if proof.code_id and proof.code:
            row = await self._spend_code(proof.code_id, proof.code, party_id=party.party_id, purpose="act", act=act,
                                         session_id=session_id)
            return {"party_id": party.party_id, "method": "code", "code_id": row.code_id, "channel": row.channel}
        return await self._spend_challenge(party, act, session_id, proof.challenge_id or "", proof.signature or "")

    async def _spend_challenge(self, party: Party, act: str, session_id: str | None, challenge_id: str,
                               signature: str) -> dict[str, Any]:
        now = _now()
        async with self._db.write() as session:
            row = await session.get(PossessionChallenge, challenge_id)
            if (row is None or row.party_id != party.party_id or row.act != act or row.session_id != session_id
                    or row.used_at is not None or row.expires_at <= now):
                raise PossessionError("that challenge is unknown, used, expired, or for another act or party; "
                                      "ask for a new one", code="possession_invalid")
            # Single use on every node: only the first UPDATE finds it unused.
            spent = await session.execute(update(PossessionChallenge).where(
                PossessionChallenge.challenge_id == challenge_id, PossessionChallenge.used_at.is_(None)
            ).values(used_at=now))
            if spent.rowcount != 1:
                raise PossessionError("that challenge was used already", code="possession_invalid")
            message = challenge_message(row)
            try:
                signature_raw = unb64url(signature)
            except ValueError:
                signature_raw = b""
            evidence: dict[str, Any] | None = None
            for enrolment in await self._enrolments(session, party.party_id):
                try:
                    Ed25519PublicKey.from_public_bytes(enrolment.public_key).verify(signature_raw, message)
                except (InvalidSignature, ValueError):
                    continue
                evidence = {"party_id": party.party_id, **enrolment_evidence(enrolment)}
                break
        # The challenge is spent whether or not the signature was good.
        if evidence is not None:
            return evidence
        raise PossessionError("the signature is not by a device enrolled for this party", code="possession_invalid")

    async def signing_enrolment(self, session: AsyncSession, principal: Principal, case_id: str,
                                public_key: bytes) -> DeviceEnrolment:
        """The party's live enrolment of the key that signed the agreement, or PossessionError."""
        party = await self.party_of(session, principal, case_id)
        enrolment = (await session.execute(select(DeviceEnrolment).where(
            DeviceEnrolment.public_key == public_key, DeviceEnrolment.party_id == party.party_id,
            DeviceEnrolment.revoked_at.is_(None)))).scalar_one_or_none()
        if enrolment is None:
            raise PossessionError("the agreement must be signed with your device key enrolled with a code sent to "
                                  "your verified contact; that key is not enrolled for this party",
                                  code="key_not_enrolled", field="public_key")
        return enrolment

    # --- recovery (issue 14) -----------------------------------------------------------------------

    async def _recovery_target(self, session: AsyncSession, case_number: str,
                               contact: str) -> tuple[Case, Party, str, str] | None:
        """The case, its borrower and the route ``contact`` names, if it is the borrower's verified contact."""
        case = (await session.execute(select(Case).where(Case.case_number == case_number))).scalar_one_or_none()
        if case is None:
            return None
        borrower = await _party_by_role(session, case.case_id, "borrower")
        for channel, address in self.routes(borrower):
            if _normal(channel, address) == _normal(channel, contact) and _normal(channel, contact):
                return case, borrower, channel, address
        return None

    async def request_recovery(self, case_number: str, contact: str, client_address: str) -> None:
        """Send a recovery code if ``contact`` is a verified contact of the case's borrower; the caller learns
        nothing either way (the same answer, and the sending happens after it)."""
        self._limit_address(client_address)
        async with self._db.write() as session:
            target = await self._recovery_target(session, case_number, contact)
            if target is None:
                return
            case, borrower, channel, address = target
            if await self._recent(session, borrower.party_id, "recover") >= RECOVERY_PER_CASE:
                log.info("recovery code not sent: the case's limit is reached", extra={"case_id": case.case_id})
                return
            code, row = self._new_code(case_id=case.case_id, party=borrower, purpose="recover", channel=channel,
                                       address=address, requested_by="anonymous", credential=None)
            session.add(row)
            await session.flush()
            await self._audit.append(session, actor="anonymous", action="possession_code_sent", case_id=case.case_id,
                                     detail={"code_id": row.code_id, "party_id": borrower.party_id,
                                             "purpose": "recover", "channel": channel})
        text = self._message("recover", None, code, row.code_id)
        self._spawn(self._send_recovery(case.case_id, row.code_id, channel, address, text))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_recovery(self, case_id: str, code_id: str, channel: str, address: str, text: str) -> None:
        try:
            await self._channels[channel].send(address, "Your mediation one-time code", text)
        except DeliveryFailed as exc:
            await self._void(code_id)
            log.warning("recovery code not delivered", extra={"case_id": case_id, "code_id": code_id,
                                                              "channel": channel, "error": exc.error})
        except Exception:
            log.exception("recovery code delivery failed unexpectedly", extra={"case_id": case_id, "code_id": code_id})

    async def close(self) -> None:
        """Wait for the recovery codes still being sent."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def recover(self, case_number: str, contact: str, code: str, client_address: str) -> dict[str, Any]:
        """A new receipt for the case's borrower, who proved its verified contact with a recovery code.

        Every refusal is the same ``code_wrong`` whether or not the case exists or the contact is its own.
        """
        self._limit_address(client_address)
        wrong = CodeRefused("that code is not right for this case number and contact", code="code_wrong")
        async with self._db.read() as session:
            target = await self._recovery_target(session, case_number, contact)
            if target is None:
                raise wrong
            case, borrower, channel, address = target
            latest = (await session.execute(
                select(PossessionCode.code_id).where(
                    PossessionCode.party_id == borrower.party_id, PossessionCode.purpose == "recover",
                    PossessionCode.used_at.is_(None), PossessionCode.voided_at.is_(None))
                .order_by(PossessionCode.created_at.desc()).limit(1))).scalar_one_or_none()
        if latest is None:
            raise wrong
        row = await self._spend_code(latest, code, party_id=borrower.party_id, purpose="recover",
                                     address_hash=self._address_hash(channel, address))
        receipt, receipt_hash = new_token("rcp")
        now = _now()
        async with self._db.write() as session:
            case = await session.get(Case, case.case_id)
            if case is None:
                raise NotFound("the case no longer exists")
            old = receipt_id(case.receipt_hash)
            case.receipt_hash, case.receipt_public_key = receipt_hash, receipt_public_key(receipt)
            case.receipt_expires_at = now + dt.timedelta(seconds=self._settings.receipt_ttl_seconds)
            case.receipt_revoked_at, case.updated_at = None, now
            await self._audit.append(session, actor=f"borrower:{borrower.party_id}", action="receipt_recovered",
                                     case_id=case.case_id,
                                     detail={"receipt_id": receipt_id(receipt_hash), "replaces": old,
                                             "possession": {"party_id": borrower.party_id, "method": "code",
                                                            "code_id": row.code_id, "channel": row.channel}})
            return {"case_id": case.case_id, "case_number": case.case_number, "receipt_token": receipt,
                    "receipt_expires_at": case.receipt_expires_at}


def enrolment_evidence(enrolment: DeviceEnrolment) -> dict[str, Any]:
    """How an enrolled key proves possession, as audit entries and signed agreements name it."""
    return {"method": "device", "enrolment_id": enrolment.enrolment_id, "fingerprint": enrolment.fingerprint,
            "enrolled_at": enrolment.enrolled_at.isoformat(), "channel": enrolment.channel,
            "code_id": enrolment.code_id}


def enrolment_view(enrolment: DeviceEnrolment) -> dict[str, Any]:
    return {"enrolment_id": enrolment.enrolment_id, "fingerprint": enrolment.fingerprint,
            "public_key": b64url(enrolment.public_key), "channel": enrolment.channel,
            "enrolled_at": enrolment.enrolled_at}


async def _party_by_role(session: AsyncSession, case_id: str, role: str) -> Party:
    party = (await session.execute(select(Party).where(Party.case_id == case_id, Party.role == role))
             ).scalar_one_or_none()
    if party is None:
        raise NotFound(f"case {case_id} has no {role}")
    return party


async def _lender(session: AsyncSession, case_id: str) -> Party:
    return await _party_by_role(session, case_id, "lender")
