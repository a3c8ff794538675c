"""The case desk: filing, review, assignment, scheduling, join links, receipts and closing, each audited."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server import joinlinks, lifecycle, schemas
from server.access import Principal, case_member
from server.audit import AuditLog
from server.changes import changed
from server.database import Database
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.joinlinks import JoinLinks, RevokeReason
from server.models import (
    Agreement,
    Assignment,
    Case,
    JoinLink,
    LinkDelivery,
    Notice,
    Party,
    ScheduledSession,
    SessionConfirmation,
    StaffUser,
)
from server.notifier import LinkCourier, Notifier, open_with_receipt, receipt_public_key
from server.possession import Possession, Proof
from server.provenance import receipt_id
from server.revocations import publish
from server.settings import Settings
from server.tokens import new_id, new_token

_CASE_NUMBER_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _case_number(now: dt.datetime) -> str:
    suffix = "".join(secrets.choice(_CASE_NUMBER_ALPHABET) for _ in range(6))
    return f"MD-{now:%Y%m%d}-{suffix}"


class CaseDesk:
    """Every operation on a case; each one checks the state machine and appends to the audit log."""

    def __init__(self, settings: Settings, db: Database, audit: AuditLog, notifier: Notifier, links: JoinLinks,
                 courier: LinkCourier, possession: Possession) -> None:
        self._settings = settings
        self._possession = possession
        self._db = db
        self._audit = audit
        self._notifier = notifier
        self._links = links
        self._courier = courier

    # --- reading ------------------------------------------------------------------------------

    async def assignments(self, case_id: str) -> dict[str, str] | None:
        """Assignment role -> user_id, or None if the case does not exist."""
        async with self._db.read() as session:
            exists = (await session.execute(select(Case.case_id).where(Case.case_id == case_id))).scalar_one_or_none()
            if exists is None:
                return None
            rows = (await session.execute(select(Assignment).where(Assignment.case_id == case_id))).scalars()
            return {row.role: row.user_id for row in rows}

    async def check_member(self, principal: Principal, case_id: str) -> None:
        assigned = await self.assignments(case_id)
        if principal.kind == "party":
            if principal.case_id != case_id:
                raise Forbidden("a party sees only its own case", code="not_case_member")
            return
        if assigned is None:
            raise NotFound(f"no case {case_id}", field="case_id")
        if not case_member(principal, case_id, assigned):
            raise Forbidden(f'role "{principal.role}" is not assigned to case {case_id}', code="not_case_member")

    async def _load(self, session: AsyncSession, case_id: str, *, lock: bool = False) -> Case:
        statement = select(Case).where(Case.case_id == case_id)
        if lock and not self._db.is_sqlite:
            statement = statement.with_for_update()
        case = (await session.execute(statement)).scalar_one_or_none()
        if case is None:
            raise NotFound(f"no case {case_id}", field="case_id")
        return case

    async def _sessions_view(self, session: AsyncSession, case_id: str) -> list[schemas.SessionView]:
        rows = (await session.execute(
            select(ScheduledSession).where(ScheduledSession.case_id == case_id).order_by(ScheduledSession.starts_at)
        )).scalars().all()
        confirmations = (await session.execute(
            select(SessionConfirmation).join(ScheduledSession).where(ScheduledSession.case_id == case_id)
        )).scalars().all()
        confirmed: dict[str, list[str]] = {}
        for confirmation in confirmations:
            confirmed.setdefault(confirmation.session_id, []).append(confirmation.party_id)
        return [
            schemas.SessionView(
                session_id=row.session_id, starts_at=row.starts_at, duration_minutes=row.duration_minutes,
                mode=row.mode, state=row.state, confirmed_by=sorted(confirmed.get(row.session_id, [])),
            )
            for row in rows
        ]

    @staticmethod
    def _party_view(party: Party) -> schemas.PartyView:
        return schemas.PartyView(
            party_id=party.party_id, role=party.role, name=party.name, email=party.email, phone=party.phone,
            verified_at=party.verified_at, verification_method=party.verification_method,
        )

    async def case_view(self, case_id: str) -> schemas.CaseView:
        async with self._db.read() as session:
            case = await self._load(session, case_id)
            parties = (await session.execute(
                select(Party).where(Party.case_id == case_id).order_by(Party.role)
            )).scalars().all()
            assignments = (await session.execute(
                select(Assignment, StaffUser).join(StaffUser, StaffUser.user_id == Assignment.user_id)
                .where(Assignment.case_id == case_id).order_by(Assignment.role)
            )).all()
            sessions = await self._sessions_view(session, case_id)
            agreement_version = await self._agreement_version(session, case_id)
        return schemas.CaseView(
            case_id=case.case_id, case_number=case.case_number, state=case.state, lender=case.lender,
            loan_reference=case.loan_reference, currency=case.currency, principal_minor=case.principal_minor,
            overdue_minor=case.overdue_minor, days_overdue=case.days_overdue, overdue_bucket=case.overdue_bucket,
            proposal=case.proposal, rejection_reason=case.rejection_reason, outcome=case.outcome,
            closing_note=case.closing_note, created_at=case.created_at, updated_at=case.updated_at,
            parties=[self._party_view(p) for p in parties],
            assignments=[
                schemas.AssignmentView(role=a.role, user_id=a.user_id, display_name=u.display_name,
                                       assigned_at=a.assigned_at)
                for a, u in assignments
            ],
            sessions=sessions, agreement_version=agreement_version,
        )

    @staticmethod
    async def _agreement_version(session: AsyncSession, case_id: str) -> int | None:
        """The latest agreement's version: pages ask for the agreement only when there is one."""
        return (await session.execute(
            select(func.max(Agreement.version)).where(Agreement.case_id == case_id)
        )).scalar_one_or_none()

    async def list_cases(self, principal: Principal, query: schemas.CaseListQuery) -> schemas.CaseList:
        statement = select(Case)
        if principal.role in ("mediator", "bank_representative"):
            statement = statement.join(Assignment, Assignment.case_id == Case.case_id).where(
                Assignment.role == principal.role, Assignment.user_id == principal.subject_id
            )
        if query.state is not None:
            statement = statement.where(Case.state == query.state)
        async with self._db.read() as session:
            total = (await session.execute(select(func.count()).select_from(statement.subquery()))).scalar_one()
            rows = (await session.execute(
                statement.order_by(Case.created_at.desc(), Case.case_id)
                .offset((query.page - 1) * query.per_page).limit(query.per_page)
            )).scalars().all()
        return schemas.CaseList(
            cases=[
                schemas.CaseSummary(case_id=c.case_id, case_number=c.case_number, state=c.state, lender=c.lender,
                                    overdue_bucket=c.overdue_bucket, created_at=c.created_at)
                for c in rows
            ],
            page=query.page, per_page=query.per_page, total=total,
        )

    async def party_view(self, principal: Principal, receipt_token: str | None) -> schemas.PartyCaseView:
        async with self._db.read() as session:
            case = await self._load(session, principal.case_id or "")
            party = await session.get(Party, principal.subject_id)
            if party is None:
                raise NotFound("the party no longer exists")
            sessions = await self._sessions_view(session, case.case_id)
            agreement_version = await self._agreement_version(session, case.case_id)
            notices = (await session.execute(
                select(Notice).where(Notice.party_id == party.party_id).order_by(Notice.created_at)
            )).scalars().all()
        if principal.session_id is not None:
            # A join link opens only its own session's view.
            sessions = [s for s in sessions if s.session_id == principal.session_id]
        views = []
        for notice in notices:
            link = None
            if notice.sealed_secret is not None and receipt_token is not None:
                link = open_with_receipt(receipt_token, notice.sealed_secret).decode()
            views.append(schemas.NoticeView(notice_id=notice.notice_id, kind=notice.kind, text=notice.text,
                                            link=link, link_id=notice.link_id, created_at=notice.created_at))
        return schemas.PartyCaseView(
            case_id=case.case_id, case_number=case.case_number, state=case.state, lender=case.lender,
            party=self._party_view(party), rejection_reason=case.rejection_reason, outcome=case.outcome,
            sessions=sessions, notices=views, agreement_version=agreement_version,
        )

    # --- filing and review --------------------------------------------------------------------

    async def file_application(self, body: schemas.ApplicationIn) -> schemas.ReceiptView:
        now = _now()
        receipt, receipt_hash = new_token("rcp")
        receipt_expires_at = now + dt.timedelta(seconds=self._settings.receipt_ttl_seconds)
        for _attempt in range(5):
            case = Case(
                case_id=new_id("cas"), case_number=_case_number(now), state=lifecycle.SUBMITTED,
                lender=body.lender, loan_reference=body.loan_reference, currency=body.currency,
                principal_minor=body.principal_minor, overdue_minor=body.overdue_minor,
                days_overdue=body.days_overdue, overdue_bucket=lifecycle.overdue_bucket(body.days_overdue),
                proposal=body.proposal, receipt_hash=receipt_hash, receipt_public_key=receipt_public_key(receipt),
                receipt_expires_at=receipt_expires_at, created_at=now, updated_at=now,
            )
            borrower = Party(party_id=new_id("pty"), case_id=case.case_id, role="borrower", name=body.borrower.name,
                             email=body.borrower.email, phone=body.borrower.phone)
            lender = Party(party_id=new_id("pty"), case_id=case.case_id, role="lender", name=body.lender)
            try:
                async with self._db.write() as session:
                    session.add(case)
                    await session.flush()
                    session.add_all([borrower, lender])
                    await session.flush()
                    await self._audit.append(
                        session, actor=f"borrower:{borrower.party_id}", action="application_filed",
                        case_id=case.case_id, detail={"case_number": case.case_number,
                                                      "overdue_bucket": case.overdue_bucket},
                    )
                    changed(session, case.case_id)
                    await self._notifier.notify(
                        session, case_id=case.case_id, party_id=borrower.party_id, kind="receipt",
                        text=f"Application {case.case_number} received; the mediation body will review it.",
                    )
            except IntegrityError:
                continue  # case number collision: draw another
            return schemas.ReceiptView(case_id=case.case_id, case_number=case.case_number, receipt_token=receipt,
                                       receipt_expires_at=receipt_expires_at)
        raise Conflict("could not allocate a case number; retry", code="case_number_exhausted")

    async def verify_party(
        self, principal: Principal, case_id: str, party_id: str, body: schemas.VerifyPartyIn
    ) -> schemas.CaseView:
        async with self._db.write() as session:
            case = await self._load(session, case_id, lock=True)
            lifecycle.require(case_id, case.state, "verify_party")
            party = await session.get(Party, party_id)
            if party is None or party.case_id != case_id:
                raise NotFound(f"case {case_id} has no party {party_id}", field="party_id")
            if party.verified_at is not None:
                raise Conflict(f"party {party_id} of case {case_id} is already verified", code="already_verified")
            contacts = [kind for kind in ("email", "phone") if getattr(body, kind) is not None]
            if contacts and (party.email is not None or party.phone is not None):
                # A party's own contacts (the borrower's, from its application) are where its links go:
                # staff may not redirect them.
                raise Conflict(f"party {party_id} of case {case_id} has contacts on file; they cannot be replaced",
                               code="contacts_on_file", field=contacts[0])
            party.verified_at = _now()
            party.verified_by = principal.subject_id
            party.verification_method = body.method
            party.verification_reference = body.reference
            if contacts:
                party.email, party.phone = body.email, body.phone
            case.updated_at = party.verified_at
            detail: dict[str, object] = {"party_id": party_id, "method": body.method}
            if contacts:
                detail["contacts_recorded"] = contacts  # which kinds; the addresses stay out of the log
            await self._audit.append(session, actor=principal.actor, action="party_verified", case_id=case_id,
                                     detail=detail)
            changed(session, case_id)
        return await self.case_view(case_id)

    async def accept(self, principal: Principal, case_id: str) -> schemas.CaseView:
        async with self._db.write() as session:
            case = await self._load(session, case_id, lock=True)
            target = lifecycle.require(case_id, case.state, "accept")
            parties = (await session.execute(select(Party).where(Party.case_id == case_id))).scalars().all()
            unverified = [p.role for p in parties if p.verified_at is None]
            if unverified:
                raise Conflict(
                    f"case {case_id} cannot be accepted: identity of {', '.join(sorted(unverified))} not verified",
                    code="parties_unverified",
                )
            case.state, case.updated_at = target, _now()
            await self._audit.append(session, actor=principal.actor, action="case_accepted", case_id=case_id)
            changed(session, case_id)
            for party in parties:
                await self._notifier.notify(
                    session, case_id=case_id, party_id=party.party_id, kind="accepted",
                    text=f"Case {case.case_number} was accepted for mediation.",
                )
        return await self.case_view(case_id)

    async def reject(self, principal: Principal, case_id: str, body: schemas.RejectIn) -> schemas.CaseView:
        async with self._db.write() as session:
            case = await self._load(session, case_id, lock=True)
            case.state = lifecycle.require(case_id, case.state, "reject")
            case.rejection_reason, case.updated_at = body.reason, _now()
            publish(session, case_id=case_id)
            await self._audit.append(session, actor=principal.actor, action="case_rejected", case_id=case_id,
                                     detail={"reason": body.reason})
            changed(session, case_id)
            borrower = await self._party(session, case_id, "borrower")
            await self._notifier.notify(
                session, case_id=case_id, party_id=borrower.party_id, kind="rejected",
                text=f"Case {case.case_number} was not accepted: {body.reason}",
            )
        return await self.case_view(case_id)

    async def assign(self, principal: Principal, case_id: str, body: schemas.AssignIn) -> schemas.CaseView:
        wanted = {"mediator": body.mediator_id, "bank_representative": body.bank_representative_id}
        async with self._db.write() as session:
            case = await self._load(session, case_id, lock=True)
            lifecycle.require(case_id, case.state, "assign")
            now = _now()
            for role, user_id in wanted.items():
                if user_id is None:
                    continue
                field = f"{role}_id" if role == "mediator" else "bank_representative_id"
                user = await session.get(StaffUser, user_id)
                if user is None or user.disabled or user.awaiting_approval:
                    raise ValidationFailed(f"{field}: no active staff user {user_id}", field=field)
                if user.role != role:
                    raise ValidationFailed(f'{field}: user {user_id} has role "{user.role}", not "{role}"',
                                           field=field)
                existing = await session.get(Assignment, (case_id, role))
                # The one taken off the case and the one put on it both see their desks change.
                changed(session, case_id, staff=(user_id, existing.user_id if existing is not None else None))
                if existing is None:
                    session.add(Assignment(case_id=case_id, role=role, user_id=user_id, assigned_at=now,
                                           assigned_by=principal.subject_id or ""))
                else:
                    existing.user_id, existing.assigned_at = user_id, now
                    existing.assigned_by = principal.subject_id or ""
                await self._audit.append(session, actor=principal.actor, action="staff_assigned", case_id=case_id,
                                         detail={"role": role, "user_id": user_id})
            case.updated_at = now
            publish(session, case_id=case_id)  # an assignee replaced loses the case's rooms
        return await self.case_view(case_id)

    # --- scheduling ---------------------------------------------------------------------------

    async def propose_session(
        self, principal: Principal, case_id: str, body: schemas.ProposeSessionIn
    ) -> schemas.CaseView:
        now = _now()
        if body.starts_at <= now:
            raise ValidationFailed("starts_at: must be in the future", field="starts_at")
        if body.starts_at > now + dt.timedelta(days=366):
            raise ValidationFailed("starts_at: must be within a year", field="starts_at")
        async with self._db.write() as session:
            case = await self._load(session, case_id, lock=True)
            lifecycle.require(case_id, case.state, "propose_session")
            if await session.get(Assignment, (case_id, "mediator")) is None:
                raise Conflict(f"case {case_id} has no mediator assigned; assign one before scheduling",
                               code="no_mediator")
            scheduled = ScheduledSession(
                session_id=new_id("ses"), case_id=case_id, starts_at=body.starts_at,
                duration_minutes=body.duration_minutes, mode=body.mode, state="proposed",
                proposed_by=principal.subject_id or "", created_at=now,
            )
            session.add(scheduled)
            case.updated_at = now
            await session.flush()
            await self._audit.append(
                session, actor=principal.actor, action="session_proposed", case_id=case_id,
                detail={"session_id": scheduled.session_id, "starts_at": body.starts_at.isoformat(),
                        "mode": body.mode, "duration_minutes": body.duration_minutes},
            )
            changed(session, case_id)
            for party in (await session.execute(select(Party).where(Party.case_id == case_id))).scalars():
                await self._notifier.notify(
                    session, case_id=case_id, party_id=party.party_id, kind="schedule",
                    text=(f"A {body.mode} session is proposed for {body.starts_at.isoformat()} "
                          f"({body.duration_minutes} min); please confirm."),
                )
        return await self.case_view(case_id)

    async def confirm_session(
        self, principal: Principal, case_id: str, session_id: str, body: schemas.ConfirmSessionIn
    ) -> schemas.CaseView:
        if principal.kind == "party":
            if principal.session_id is not None and principal.session_id != session_id:
                raise Forbidden(f"this join link is for session {principal.session_id}; it cannot act on "
                                f"session {session_id}", code="other_session", field="session_id")
            if body.party_id is not None and body.party_id != principal.subject_id:
                raise Forbidden("a party confirms only for itself", field="party_id")
        async with self._db.read() as session:
            # What the case's state refuses is refused first, before a proof is asked for or spent.
            case = await self._load(session, case_id)
            lifecycle.require(case_id, case.state, "confirm_session")
            await self._scheduled(session, case_id, session_id)
        # The party's possession factor, spent in its own transaction: without it nothing changes.
        proof = Proof(**body.proof.model_dump()) if body.proof is not None else None
        evidence = await self._possession.prove(principal, case_id, "confirm_session", session_id, proof)
        async with self._db.write() as session:
            case = await self._load(session, case_id, lock=True)
            lifecycle.require(case_id, case.state, "confirm_session")
            scheduled = await self._scheduled(session, case_id, session_id)
            if scheduled.state == "cancelled":
                raise Conflict(f'session {session_id} is in state "cancelled"; cannot confirm it',
                               code="session_cancelled")
            if principal.kind == "party":
                party_id = principal.subject_id or ""
            else:
                # The bank representative confirms on behalf of the lender.
                lender = await self._party(session, case_id, "lender")
                if body.party_id is not None and body.party_id != lender.party_id:
                    raise Forbidden("a bank representative confirms only for the lender", field="party_id")
                party_id = lender.party_id
            if await session.get(SessionConfirmation, (session_id, party_id)) is not None:
                raise Conflict(f"party {party_id} already confirmed session {session_id}", code="already_confirmed")
            now = _now()
            session.add(SessionConfirmation(session_id=session_id, party_id=party_id, confirmed_at=now,
                                            confirmed_by=principal.actor))
            await session.flush()
            await self._audit.append(session, actor=principal.actor, action="session_confirmed", case_id=case_id,
                                     detail={"session_id": session_id, "party_id": party_id, **evidence})
            changed(session, case_id)
            parties = (await session.execute(select(Party.party_id).where(Party.case_id == case_id))).scalars().all()
            confirmed = (await session.execute(
                select(SessionConfirmation.party_id).where(SessionConfirmation.session_id == session_id)
            )).scalars().all()
            if set(parties) <= set(confirmed):
                scheduled.state = "confirmed"
                case.state = lifecycle.SCHEDULED
                await self._audit.append(session, actor="system", action="session_scheduled", case_id=case_id,
                                         detail={"session_id": session_id})
                changed(session, case_id)
            case.updated_at = now
        return await self.case_view(case_id)

    async def cancel_session(self, principal: Principal, case_id: str, session_id: str) -> schemas.CaseView:
        async with self._db.write() as session:
            case = await self._load(session, case_id, lock=True)
            lifecycle.require(case_id, case.state, "cancel_session")
            scheduled = await self._scheduled(session, case_id, session_id)
            if scheduled.state == "cancelled":
                raise Conflict(f'session {session_id} is already in state "cancelled"', code="session_cancelled")
            scheduled.state = "cancelled"
            publish(session, session_id=session_id)
            now = _now()
            await self._links.revoke(session, case_id=case_id, session_id=session_id,
                                     reason=RevokeReason.SESSION_CANCELLED, revoked_by=principal.subject_id or "",
                                     actor=principal.actor)
            remaining = (await session.execute(
                select(func.count()).select_from(ScheduledSession)
                .where(ScheduledSession.case_id == case_id, ScheduledSession.state == "confirmed")
            )).scalar_one()
            if remaining == 0:
                case.state = lifecycle.ACCEPTED
            case.updated_at = now
            await self._audit.append(session, actor=principal.actor, action="session_cancelled", case_id=case_id,
                                     detail={"session_id": session_id})
            changed(session, case_id)
        return await self.case_view(case_id)

    # --- join links ---------------------------------------------------------------------------

    async def issue_link(self, principal: Principal, case_id: str, body: schemas.IssueLinkIn) -> schemas.JoinLinkView:
        """Issue a link and deliver it to the party; staff get its id and how delivery went, never the token."""
        async with self._db.write() as session:
            case = await self._load(session, case_id, lock=True)
            lifecycle.require(case_id, case.state, "issue_link")
            party = await session.get(Party, body.party_id)
            if party is None or party.case_id != case_id:
                raise NotFound(f"case {case_id} has no party {body.party_id}", field="party_id")
            scheduled = await self._scheduled(session, case_id, body.session_id)
            if scheduled.state != "confirmed":
                raise Conflict(f'session {body.session_id} is in state "{scheduled.state}"; links are issued only '
                               f"for confirmed sessions", code="session_not_confirmed")
            link_id, delivered = await self._issue_and_file(session, principal, case, party, scheduled)
        await delivered()
        return await self.link_view(case_id, link_id)

    async def retry_link(self, principal: Principal, case_id: str, link_id: str) -> schemas.JoinLinkView:
        """Deliver again: the token is kept only as a hash, so a fresh link replaces the old one (revoked)."""
        async with self._db.write() as session:
            case = await self._load(session, case_id, lock=True)
            lifecycle.require(case_id, case.state, "issue_link")
            old = await self._links.get(session, case_id, link_id)
            if old is None:
                raise NotFound(f"case {case_id} has no join link {link_id}", field="link_id")
            if old.revoked_at is not None:
                raise Conflict(f"join link {link_id} is revoked ({old.revoked_reason or 'revoked'}); issue a new "
                               f"link if the party should come back", code="already_revoked")
            party = await session.get(Party, old.party_id)
            scheduled = await self._scheduled(session, case_id, old.session_id)
            if party is None or scheduled.state != "confirmed":
                raise Conflict(f'session {old.session_id} is in state "{scheduled.state}"; links are issued only '
                               f"for confirmed sessions", code="session_not_confirmed")
            await self._links.revoke(session, case_id=case_id, link_id=link_id, reason=RevokeReason.REISSUED,
                                     revoked_by=principal.subject_id or "", actor=principal.actor)
            new_link_id, delivered = await self._issue_and_file(session, principal, case, party, scheduled,
                                                                replaces=link_id)
        await delivered()
        return await self.link_view(case_id, new_link_id)

    async def _issue_and_file(self, session: AsyncSession, principal: Principal, case: Case, party: Party,
                              scheduled: ScheduledSession,
                              replaces: str | None = None) -> tuple[str, Callable[[], Awaitable[None]]]:
        """Issue a link inside the transaction and file its deliveries; returns its id and the sender to await
        after commit. The token and URL live only in the sender's closure."""
        if not self._courier.routes(case, party):
            raise Conflict(f"party {party.party_id} ({party.role}) of case {case.case_id} has no channel to receive "
                           f"a join link: no live receipt, and no verified e-mail or phone with e-mail or SMS "
                           f"delivery configured", code="no_delivery_channel")
        token, link = await self._links.issue(session, party=party, scheduled=scheduled,
                                              issued_by=principal.subject_id or "", actor=principal.actor,
                                              replaces=replaces)
        url = self.join_url(token)
        text = f"Your personal link to the session at {scheduled.starts_at.isoformat()}; do not share it."
        outgoing = await self._courier.file(session, case=case, party=party, link=link, url=url, text=text)
        case_id, link_id = case.case_id, link.link_id

        async def delivered() -> None:
            await self._courier.send(case_id, link_id, outgoing, url, text)

        return link_id, delivered

    def join_url(self, token: str) -> str:
        base = self._settings.public_url.rstrip("/") or f"http://{self._settings.host}:{self._settings.port}"
        return f"{base}/room#{token}"

    @staticmethod
    def _link_view(link: JoinLink, deliveries: list[LinkDelivery], now: dt.datetime) -> schemas.JoinLinkView:
        return schemas.JoinLinkView(
            link_id=link.link_id, party_id=link.party_id, session_id=link.session_id, role=link.role,
            issued_at=link.issued_at, expires_at=link.expires_at, revoked_at=link.revoked_at,
            revoked_reason=link.revoked_reason, status=joinlinks.status(link, now),
            deliveries=[schemas.DeliveryView(channel=d.channel, status=d.status, error=d.error,
                                             attempted_at=d.attempted_at, finished_at=d.finished_at)
                        for d in deliveries],
        )

    @staticmethod
    async def _deliveries(session: AsyncSession, case_id: str) -> dict[str, list[LinkDelivery]]:
        rows = (await session.execute(
            select(LinkDelivery).where(LinkDelivery.case_id == case_id)
            .order_by(LinkDelivery.attempted_at, LinkDelivery.channel)
        )).scalars()
        by_link: dict[str, list[LinkDelivery]] = {}
        for row in rows:
            by_link.setdefault(row.link_id, []).append(row)
        return by_link

    async def link_view(self, case_id: str, link_id: str) -> schemas.JoinLinkView:
        async with self._db.read() as session:
            link = await self._links.get(session, case_id, link_id)
            if link is None:
                raise NotFound(f"case {case_id} has no join link {link_id}", field="link_id")
            deliveries = await self._deliveries(session, case_id)
        return self._link_view(link, deliveries.get(link_id, []), _now())

    async def list_links(self, case_id: str) -> schemas.JoinLinkList:
        now = _now()
        async with self._db.read() as session:
            await self._load(session, case_id)
            links = await self._links.of_case(session, case_id)
            deliveries = await self._deliveries(session, case_id)
        return schemas.JoinLinkList(links=[self._link_view(link, deliveries.get(link.link_id, []), now)
                                           for link in links])

    async def revoke_link(self, principal: Principal, case_id: str, link_id: str) -> schemas.JoinLinkView:
        async with self._db.write() as session:
            case = await self._load(session, case_id, lock=True)
            lifecycle.require(case_id, case.state, "revoke_link")
            link = await self._links.get(session, case_id, link_id)
            if link is None:
                raise NotFound(f"case {case_id} has no join link {link_id}", field="link_id")
            if link.revoked_at is not None:
                raise Conflict(f"join link {link_id} is already revoked", code="already_revoked")
            await self._links.revoke(session, case_id=case_id, link_id=link_id, reason=RevokeReason.REVOKED,
                                     revoked_by=principal.subject_id or "", actor=principal.actor)
        return await self.link_view(case_id, link_id)

    # --- receipts -----------------------------------------------------------------------------

    async def revoke_receipt(self, principal: Principal, case_id: str) -> schemas.ReceiptStateView:
        """Revoke the borrower's receipt (exposed or lost): from now on it opens nothing."""
        async with self._db.write() as session:
            case = await self._load(session, case_id, lock=True)
            if case.receipt_revoked_at is not None:
                raise Conflict(f"the receipt of case {case_id} was already revoked at "
                               f"{case.receipt_revoked_at.isoformat()}", code="already_revoked")
            now = _now()
            case.receipt_revoked_at, case.receipt_revoked_by, case.updated_at = now, principal.subject_id, now
            await self._audit.append(session, actor=principal.actor, action="receipt_revoked", case_id=case_id)
            changed(session, case_id)
        return self._receipt_state(case)

    async def receipt_state(self, case_id: str) -> schemas.ReceiptStateView:
        async with self._db.read() as session:
            return self._receipt_state(await self._load(session, case_id))

    @staticmethod
    def _receipt_state(case: Case) -> schemas.ReceiptStateView:
        if case.receipt_revoked_at is not None:
            status = "revoked"
        elif case.receipt_expires_at <= _now():
            status = "expired"
        else:
            status = "read_only" if case.state in (lifecycle.CLOSED, lifecycle.REJECTED) else "active"
        return schemas.ReceiptStateView(receipt_id=receipt_id(case.receipt_hash), status=status,
                                        expires_at=case.receipt_expires_at,
                                        revoked_at=case.receipt_revoked_at)

    # --- closing ------------------------------------------------------------------------------

    async def close(self, principal: Principal, case_id: str, body: schemas.CloseIn) -> schemas.CaseView:
        async with self._db.write() as session:
            case = await self._load(session, case_id, lock=True)
            case.state = lifecycle.require(case_id, case.state, "close")
            now = _now()
            case.outcome, case.closing_note, case.updated_at = body.outcome, body.note, now
            publish(session, case_id=case_id)
            await self._links.revoke(session, case_id=case_id, reason=RevokeReason.CASE_CLOSED,
                                     revoked_by=principal.subject_id or "", actor=principal.actor)
            await self._audit.append(session, actor=principal.actor, action="case_closed", case_id=case_id,
                                     detail={"outcome": body.outcome})
            changed(session, case_id)
            for party in (await session.execute(select(Party).where(Party.case_id == case_id))).scalars():
                await self._notifier.notify(
                    session, case_id=case_id, party_id=party.party_id, kind="closed",
                    text=f"Case {case.case_number} is closed ({body.outcome.replace('_', ' ')}).",
                )
        return await self.case_view(case_id)

    # --- helpers ------------------------------------------------------------------------------

    @staticmethod
    async def _party(session: AsyncSession, case_id: str, role: str) -> Party:
        party = (await session.execute(
            select(Party).where(Party.case_id == case_id, Party.role == role)
        )).scalar_one_or_none()
        if party is None:
            raise NotFound(f"case {case_id} has no {role} party")
        return party

    @staticmethod
    async def _scheduled(session: AsyncSession, case_id: str, session_id: str) -> ScheduledSession:
        scheduled = await session.get(ScheduledSession, session_id)
        if scheduled is None or scheduled.case_id != case_id:
            raise NotFound(f"case {case_id} has no session {session_id}", field="session_id")
        return scheduled

