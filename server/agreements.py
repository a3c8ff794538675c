"""Repayment agreements: drafted by the mediator, signed by each party on its own device, countersigned, sealed.

What a party signs is the RFC 8785 canonical JSON of the agreement document, with an Ed25519 key
its browser made (WebCrypto); the server verifies each signature, and once both sides have signed
it countersigns the document and the signatures with its audit key and seals the result to the
case's recipients. Any change makes a new version and voids every signature of the old one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import TYPE_CHECKING, Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select

from recording.records.kinds import RecordKind
from server import lifecycle, schemas
from server.access import Principal
from server.audit import AuditLog, key_id
from server.changes import changed
from server.database import Database
from server.errors import Conflict, NotFound, ValidationFailed
from server.models import Agreement, Assignment, Case, Feedback, Party, StaffUser
from server.possession import Possession, b64url, enrolment_evidence, unb64url
from server.records import CaseRecords
from server.tokens import new_id

if TYPE_CHECKING:  # the printer renders with this module's canonical form
    from server.agreementpdf import AgreementPrinter

DOCUMENT_TYPE = "mediation-repayment-agreement/v1"
COUNTERSIGNATURE_CONTEXT = b"mediation-agreement-countersignature/v1\n"
SIGNERS = ("borrower", "lender")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)



def canonical(document: dict[str, Any]) -> bytes:
    """RFC 8785 JSON Canonicalization Scheme: the exact bytes every signature covers."""
    return rfc8785.dumps(document)


def countersigned_bytes(document: dict[str, Any], signatures: list[dict[str, Any]]) -> bytes:
    return COUNTERSIGNATURE_CONTEXT + canonical({"document": document, "signatures": signatures})


def verify_signed_agreement(signed: dict[str, Any], trusted: dict[str, Ed25519PublicKey]) -> list[str]:
    """Every problem with a signed agreement (empty if sound): party signatures and the countersignature."""
    problems = []
    document, signatures = signed.get("document"), signed.get("signatures")
    counter = signed.get("countersignature") or {}
    if not isinstance(document, dict) or document.get("type") != DOCUMENT_TYPE or not isinstance(signatures, list):
        return ["not a signed mediation agreement"]
    message = canonical(document)
    signers = set()
    for entry in signatures:
        try:
            raw = unb64url(entry["public_key"])
            public = Ed25519PublicKey.from_public_bytes(raw)
            public.verify(unb64url(entry["signature"]), message)
            signers.add(entry["signer"])
            enrolment = entry.get("enrolment")
            # The enrolment names the key it vouches for by fingerprint: a swapped key or enrolment shows.
            if enrolment is not None and enrolment.get("fingerprint") != hashlib.sha256(raw).hexdigest():
                problems.append(f"the {entry['signer']} signature's key is not the one its enrolment names")
        except (KeyError, ValueError, TypeError, InvalidSignature):
            problems.append(f"the {entry.get('signer', 'unknown')} signature does not match the document")
    for signer in SIGNERS:
        if signer not in signers:
            problems.append(f"no valid {signer} signature")
    server_key = trusted.get(counter.get("key_id", ""))
    if server_key is None:
        problems.append(f"countersigned by unknown key {counter.get('key_id')!r}")
    else:
        try:
            server_key.verify(unb64url(counter.get("signature", "")), countersigned_bytes(document, signatures))
        except (ValueError, InvalidSignature):
            problems.append("the server's countersignature does not match")
    return problems


def validate_terms(body: schemas.AgreementIn) -> None:
    """Instalments sum to the settled amount, dates strictly increase and lie ahead; nothing negative."""
    total = sum(item.amount_minor for item in body.instalments)
    if total != body.settled_amount_minor:
        raise ValidationFailed(
            f"instalments: they add up to {total}, not the settled amount {body.settled_amount_minor}",
            field="instalments")
    dates = [item.due_date for item in body.instalments]
    for earlier, later in zip(dates, dates[1:]):
        if later <= earlier:
            raise ValidationFailed(f"instalments: due date {later} does not come after {earlier}",
                                   field="instalments")
    if dates and dates[0] < _now().date():
        raise ValidationFailed(f"instalments: the first due date {dates[0]} is in the past", field="instalments")


class Agreements:
    """Drafts, signatures, countersignature and sealing of a case's repayment agreement; feedback after."""

    def __init__(self, db: Database, audit: AuditLog, signing_key: Ed25519PrivateKey, records: CaseRecords,
                 printer: AgreementPrinter, possession: Possession) -> None:
        self._db = db
        self._possession = possession
        self._audit = audit
        self._key = signing_key
        self._records = records
        self._printer = printer

    async def current(self, case_id: str) -> schemas.AgreementView:
        async with self._db.read() as session:
            row = await self._latest(session, case_id)
        if row is None:
            raise NotFound(f"case {case_id} has no agreement yet")
        return self._view(row)

    async def draft(self, principal: Principal, case_id: str, body: schemas.AgreementIn) -> schemas.AgreementView:
        validate_terms(body)
        now = _now()
        async with self._db.write() as session:
            case = await session.get(Case, case_id)
            if case is None:
                raise NotFound(f"no case {case_id}", field="case_id")
            lifecycle.require(case_id, case.state, "draft_agreement")
            if body.currency != case.currency:
                raise ValidationFailed(f"currency: the case is in {case.currency}, not {body.currency}",
                                       field="currency")
            previous = await self._latest(session, case_id)
            if previous is not None and previous.state == "signed":
                raise Conflict(f"case {case_id} already has a signed agreement (version {previous.version})",
                               code="agreement_signed")
            voided = 0
            if previous is not None:
                voided = len(previous.signatures)
                previous.state, previous.updated_at = "void", now
            version = (previous.version + 1) if previous is not None else 1
            borrower = (await session.execute(
                select(Party).where(Party.case_id == case_id, Party.role == "borrower"))).scalar_one()
            mediator = await session.get(StaffUser, principal.subject_id)
            document = {
                "type": DOCUMENT_TYPE, "agreement_id": "", "version": version, "case_id": case_id,
                "case_number": case.case_number, "lender": case.lender, "borrower": borrower.name,
                "loan_reference": case.loan_reference, "currency": body.currency,
                "settled_amount_minor": body.settled_amount_minor,
                "waived_penalties_minor": body.waived_penalties_minor,
                "instalments": [{"due_date": i.due_date.isoformat(), "amount_minor": i.amount_minor}
                                for i in body.instalments],
                "terms": body.terms, "drafted_by": mediator.display_name if mediator else "",
                "drafted_at": now.isoformat(),
            }
            row = Agreement(agreement_id=new_id("agr"), case_id=case_id, version=version, state="draft",
                            body=document, signatures=[], created_by=principal.subject_id or "",
                            created_at=now, updated_at=now)
            row.body = {**document, "agreement_id": row.agreement_id}
            session.add(row)
            await session.flush()
            await self._audit.append(session, actor=principal.actor, action="agreement_drafted", case_id=case_id,
                                     detail={"agreement_id": row.agreement_id, "version": version,
                                             "sha256": hashlib.sha256(canonical(row.body)).hexdigest(),
                                             "voided_signatures": voided})
            changed(session, case_id)
        return self._view(row)

    async def sign(self, principal: Principal, case_id: str, body: schemas.SignatureIn) -> schemas.AgreementView:
        signer = "borrower" if principal.kind == "party" and principal.role == "borrower" else "lender"
        sealed_document: dict[str, Any] | None = None
        async with self._db.write() as session:
            case = await session.get(Case, case_id)
            if case is None:
                raise NotFound(f"no case {case_id}", field="case_id")
            lifecycle.require(case_id, case.state, "sign_agreement")
            row = await self._latest(session, case_id)
            if row is None:
                raise NotFound(f"case {case_id} has no agreement to sign")
            if row.version != body.version or row.state != "draft":
                raise Conflict(f'agreement version {body.version} is not the open draft (current: version '
                               f'{row.version}, "{row.state}"); review the current text and sign again',
                               code="agreement_changed")
            if any(s["signer"] == signer for s in row.signatures):
                raise Conflict(f"the {signer} has already signed version {row.version}", code="already_signed")
            public_raw = unb64url(body.public_key)
            # The signature is the act's proof of possession: its key must be the party's enrolled device key.
            enrolment = await self._possession.signing_enrolment(session, principal, case_id, public_raw)
            try:
                Ed25519PublicKey.from_public_bytes(public_raw).verify(unb64url(body.signature), canonical(row.body))
            except (ValueError, InvalidSignature):
                raise ValidationFailed("signature: it does not verify against the agreement text with that key",
                                       field="signature") from None
            evidence = enrolment_evidence(enrolment)
            entry = {"signer": signer, "participant_id": principal.subject_id, "public_key": body.public_key,
                     "signature": body.signature, "signed_at": _now().isoformat(),
                     "enrolment": {k: v for k, v in evidence.items() if k != "method"}}
            row.signatures = [*row.signatures, entry]
            row.updated_at = _now()
            how = await Possession.credential_of(session, principal)
            await self._audit.append(session, actor=principal.actor, action="agreement_signed_by_party",
                                     case_id=case_id, detail={"agreement_id": row.agreement_id,
                                                              "version": row.version, "signer": signer,
                                                              "public_key": body.public_key, **how,
                                                              "possession": {"party_id": enrolment.party_id,
                                                                             **evidence}})
            changed(session, case_id)
            if {s["signer"] for s in row.signatures} >= set(SIGNERS):
                signature = self._key.sign(countersigned_bytes(row.body, row.signatures))
                row.countersignature = {"key_id": key_id(self._key.public_key()), "signature": b64url(signature),
                                        "signed_at": _now().isoformat()}
                row.state = "signed"
                await self._audit.append(session, actor="system", action="agreement_countersigned",
                                         case_id=case_id, detail={"agreement_id": row.agreement_id,
                                                                  "version": row.version})
                changed(session, case_id)
                sealed_document = self._signed(row)
        if sealed_document is not None:
            await self._records.seal_and_file(
                json.dumps(sealed_document, ensure_ascii=False).encode(), actor="system",
                kind=RecordKind.AGREEMENT, case_id=case_id, session_id=None, index=row.version)
        return self._view(row)

    async def signed_copy(self, case_id: str) -> dict[str, Any]:
        async with self._db.read() as session:
            row = await self._latest(session, case_id)
        if row is None or row.state != "signed":
            raise NotFound(f"case {case_id} has no signed agreement")
        return self._signed(row)

    async def signed_pdf(self, case_id: str, lang: str) -> tuple[str, bytes]:
        """The signed agreement as a readable PDF in ``lang``: its file name and bytes."""
        return await self._printer.pdf(await self.signed_copy(case_id), self._key.public_key(), lang)

    @staticmethod
    def _signed(row: Agreement) -> dict[str, Any]:
        return {"document": row.body, "signatures": row.signatures, "countersignature": row.countersignature}

    @staticmethod
    async def _latest(session: Any, case_id: str) -> Agreement | None:
        return (await session.execute(
            select(Agreement).where(Agreement.case_id == case_id).order_by(Agreement.version.desc()).limit(1)
        )).scalar_one_or_none()

    @staticmethod
    def _view(row: Agreement) -> schemas.AgreementView:
        text = canonical(row.body)
        return schemas.AgreementView(
            agreement_id=row.agreement_id, version=row.version, state=row.state, document=row.body,
            canonical=text.decode(), sha256=hashlib.sha256(text).hexdigest(),
            signatures=[schemas.SignatureView(signer=s["signer"], public_key=s["public_key"],
                                              signed_at=s["signed_at"], enrolment=s.get("enrolment"))
                        for s in row.signatures],
            countersigned=row.countersignature is not None)

    # --- feedback -----------------------------------------------------------------------------

    async def give_feedback(self, principal: Principal, case_id: str, body: schemas.FeedbackIn) -> None:
        async with self._db.write() as session:
            case = await session.get(Case, case_id)
            if case is None:
                raise NotFound(f"no case {case_id}", field="case_id")
            lifecycle.require(case_id, case.state, "give_feedback")
            party_id = principal.subject_id
            if principal.kind != "party":
                # The bank representative speaks for the lender.
                party_id = (await session.execute(select(Party.party_id).where(
                    Party.case_id == case_id, Party.role == "lender"))).scalar_one()
            existing = (await session.execute(select(Feedback).where(
                Feedback.case_id == case_id, Feedback.party_id == party_id))).scalar_one_or_none()
            if existing is not None:
                raise Conflict("feedback for this party is already given", code="already_given")
            session.add(Feedback(feedback_id=new_id("fbk"), case_id=case_id, party_id=party_id,
                                 rating=body.rating, comment=body.comment, created_at=_now()))
            await self._audit.append(session, actor=principal.actor, action="feedback_given", case_id=case_id,
                                     detail={"rating": body.rating})
            changed(session, case_id)

    async def feedback_summary(self) -> schemas.FeedbackSummary:
        async with self._db.read() as session:
            overall = (await session.execute(select(func.count(), func.avg(Feedback.rating)))).one()
            distribution = dict((await session.execute(
                select(Feedback.rating, func.count()).group_by(Feedback.rating))).all())
            by_mediator = (await session.execute(
                select(StaffUser.user_id, StaffUser.display_name, func.count(), func.avg(Feedback.rating))
                .join(Assignment, Assignment.case_id == Feedback.case_id)
                .join(StaffUser, StaffUser.user_id == Assignment.user_id)
                .where(Assignment.role == "mediator")
                .group_by(StaffUser.user_id, StaffUser.display_name)
            )).all()
            comments = (await session.execute(
                select(Feedback.rating, Feedback.comment, Feedback.created_at)
                .where(Feedback.comment != "").order_by(Feedback.created_at.desc()).limit(20))).all()
        return schemas.FeedbackSummary(
            count=int(overall[0]), average=round(float(overall[1]), 2) if overall[1] is not None else None,
            distribution={str(r): int(distribution.get(r, 0)) for r in range(1, 6)},
            by_mediator=[schemas.MediatorRating(user_id=u, display_name=n, count=int(c), average=round(float(a), 2))
                         for u, n, c, a in by_mediator],
            recent_comments=[schemas.FeedbackComment(rating=r, comment=c, created_at=t) for r, c, t in comments],
        )
