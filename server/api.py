"""The HTTP API's endpoints: who may call each one, what it takes, what it answers."""

from __future__ import annotations

import asyncio
import hashlib

from aiohttp import ClientPayloadError, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server import schemas
from server.credentials import COOKIE_NAME, presented_token
import base64

from recording.records.checkpoint import public_key_pem, vkey
from server.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    ValidationFailed,
)
from server.models import StaffUser
from server.possession import b64url, challenge_message, enrolment_view
from server.routing import Call, Router
from server.services import SERVICES

router = Router()

CASE_OFFICER = ("case_officer",)
CASE_READERS = ("case_officer", "mediator", "bank_representative", "compliance_officer")
SCHEDULERS = ("case_officer", "mediator")


def _staff_view(user: StaffUser) -> schemas.StaffView:
    return schemas.StaffView(user_id=user.user_id, username=user.username, display_name=user.display_name,
                             role=user.role, disabled=user.disabled, age_recipient=user.age_recipient,
                             awaiting_approval=user.awaiting_approval, created_by=user.created_by,
                             approved_by=user.approved_by)


def _address(request: web.Request) -> str:
    return request.remote or "unknown"


# --- operations -------------------------------------------------------------------------------


@router.route("GET", "/healthz", allow=("anonymous",), summary="Liveness", tag="operations",
              response=schemas.Health)
async def healthz(call: Call) -> schemas.Health:
    return schemas.Health(status="ok")


@router.route("GET", "/readyz", allow=("anonymous",),
              summary="Readiness: the case record answers and the audit log is consistent with its signed "
                      "checkpoints (503 audit_refused says why not)",
              tag="operations", response=schemas.Health)
async def readyz(call: Call) -> schemas.Health:
    services = call.request.app[SERVICES]
    await services.db.ping()
    if services.audit.refusal is not None:
        raise ServiceUnavailable(services.audit.refusal, code="audit_refused")
    return schemas.Health(status="ok")


@router.route("GET", "/metrics", allow=("anonymous",), summary="Prometheus metrics", tag="operations",
              raw_media_type="text/plain")
async def metrics(call: Call) -> web.Response:
    body = generate_latest(call.request.app[SERVICES].metrics.registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


@router.route("GET", "/api/openapi.json", allow=("anonymous",), summary="This API's OpenAPI 3.1 document",
              tag="operations", raw_media_type="application/json")
async def openapi(call: Call) -> dict:
    return call.request.app[SERVICES].openapi


@router.route("GET", "/api/audit/checkpoint", allow=("compliance_officer", "administrator"),
              summary="Read the latest signed audit checkpoint", tag="audit", response=schemas.CheckpointView)
async def latest_checkpoint(call: Call) -> schemas.CheckpointView:
    services = call.request.app[SERVICES]
    checkpoint = await services.audit.checkpoint() or await services.latest_checkpoint()
    if checkpoint is None:
        raise NotFound("the audit log has no checkpoint yet")
    return schemas.CheckpointView(
        tree_size=checkpoint.tree_size, root_hash=checkpoint.root_hash.hex(), signed_at=checkpoint.signed_at,
        key_id=checkpoint.key_id, signature=checkpoint.signature.hex(),
        public_key_pem=public_key_pem(services.audit.public_key), note=checkpoint.note,
    )


@router.route("GET", "/api/audit/checkpoints", allow=("compliance_officer", "administrator"),
              summary="Read the signed audit checkpoints (history), as C2SP signed notes with cosignatures",
              tag="audit", query=schemas.CheckpointHistoryQuery, response=schemas.CheckpointHistory)
async def checkpoint_history(call: Call) -> schemas.CheckpointHistory:
    services = call.request.app[SERVICES]
    audit, settings = services.audit, services.settings
    rows = await audit.history(call.query.after, call.query.limit)
    pem = public_key_pem(audit.public_key)
    return schemas.CheckpointHistory(
        origin=audit.origin, log_vkey=vkey(audit.origin, audit.public_key), public_key_pem=pem,
        witness_keys=list(settings.witness_keys), witness_quorum=settings.witness_quorum, refusal=audit.refusal,
        checkpoints=[schemas.CheckpointView(
            tree_size=row.tree_size, root_hash=row.root_hash.hex(), signed_at=row.signed_at, key_id=row.key_id,
            signature=row.signature.hex(), public_key_pem=pem, note=row.note) for row in rows])


@router.route("GET", "/api/audit/consistency", allow=("compliance_officer", "administrator"),
              summary="Read the proof that the tree of old_size entries prefixes the tree of new_size "
                      "(422 invalid_field when old_size > new_size or new_size exceeds the log)",
              tag="audit", query=schemas.ConsistencyQuery, response=schemas.ConsistencyView)
async def consistency(call: Call) -> schemas.ConsistencyView:
    query = call.query
    try:
        proof = await call.request.app[SERVICES].audit.proof(query.old_size, query.new_size)
    except ValueError as exc:
        raise ValidationFailed(str(exc), field="new_size") from None
    return schemas.ConsistencyView(old_size=query.old_size, new_size=query.new_size,
                                   proof=[base64.b64encode(p).decode() for p in proof])


# --- accounts ---------------------------------------------------------------------------------


@router.route("POST", "/api/auth/login", allow=("anonymous",), summary="Sign in as staff", tag="accounts",
              body=schemas.LoginIn, response=schemas.LoginView)
async def login(call: Call) -> web.Response:
    services = call.request.app[SERVICES]
    token, expires_at, user = await services.accounts.login(call.body.username, call.body.password,
                                                            _address(call.request))
    view = schemas.LoginView(token=token, expires_at=expires_at, user=_staff_view(user))
    response = web.Response(text=view.model_dump_json(), content_type="application/json")
    response.set_cookie(COOKIE_NAME, token, max_age=services.settings.session_ttl_seconds, httponly=True,
                        samesite="Strict", secure=services.settings.cookie_secure, path="/")
    return response


@router.route("POST", "/api/auth/logout", allow=(*CASE_READERS, "administrator"), summary="Sign out",
              tag="accounts", status=204)
async def logout(call: Call) -> web.Response:
    token, _ = presented_token(call.request)
    await call.request.app[SERVICES].accounts.logout(token or "", call.principal)
    response = web.Response(status=204)
    response.del_cookie(COOKIE_NAME, path="/")
    return response


@router.route("GET", "/api/auth/me", allow=(*CASE_READERS, "administrator", "party"),
              summary="Who am I", tag="accounts", response=schemas.WhoAmI)
async def whoami(call: Call) -> schemas.WhoAmI:
    principal = call.principal
    if principal.kind == "party":
        return schemas.WhoAmI(kind="party", role=principal.role, case_id=principal.case_id,
                              party_id=principal.subject_id)
    user = await call.request.app[SERVICES].accounts.user(principal.subject_id or "")
    return schemas.WhoAmI(kind="staff", role=principal.role, user=_staff_view(user))


@router.route("GET", "/api/auth/session", allow=("anonymous",),
              summary="Whether this browser is signed in (200 either way)", tag="accounts",
              response=schemas.SignInState)
async def sign_in_state(call: Call) -> schemas.SignInState:
    """Pages ask this before showing a sign-in form: not being signed in is a state, not an error."""
    if call.principal.kind not in ("staff", "party"):
        return schemas.SignInState(signed_in=False)
    return schemas.SignInState(signed_in=True, me=await whoami(call))


@router.route("GET", "/api/staff", allow=("administrator", "case_officer"), summary="List staff accounts",
              tag="accounts", response=schemas.StaffList)
async def list_staff(call: Call) -> schemas.StaffList:
    users = await call.request.app[SERVICES].accounts.list_staff()
    return schemas.StaffList(staff=[_staff_view(u) for u in users])


@router.route("POST", "/api/staff", allow=("administrator",), summary="Create a staff account", tag="accounts",
              body=schemas.StaffCreateIn, response=schemas.StaffView, status=201)
async def create_staff(call: Call) -> schemas.StaffView:
    body = call.body
    user = await call.request.app[SERVICES].accounts.create_staff(
        username=body.username, display_name=body.display_name, role=body.role, password=body.password,
        actor=call.principal.actor, by_administrator=True,
    )
    return _staff_view(user)


@router.route("POST", "/api/staff/{user_id}/approve", allow=("administrator",),
              summary="Approve a staff account another administrator created", tag="accounts",
              response=schemas.StaffView)
async def approve_staff(call: Call) -> schemas.StaffView:
    user = await call.request.app[SERVICES].accounts.approve_staff(call.principal, call.path["user_id"])
    return _staff_view(user)


@router.route("POST", "/api/staff/{user_id}/disable", allow=("administrator",),
              summary="Disable a staff account", tag="accounts", response=schemas.StaffView)
async def disable_staff(call: Call) -> schemas.StaffView:
    services = call.request.app[SERVICES]
    user = await services.accounts.disable_staff(call.path["user_id"], call.principal.actor)
    if user.role == "compliance_officer":
        await services.recipient_keys.staff_disabled(call.principal, user.user_id)
    return _staff_view(user)


@router.route("POST", "/api/auth/password", allow=(*CASE_READERS, "administrator"),
              summary="Change my password (ends every session of mine)", tag="accounts",
              body=schemas.PasswordChangeIn, response=schemas.LoginView)
async def change_password(call: Call) -> web.Response:
    services = call.request.app[SERVICES]
    token, expires_at, user = await services.accounts.change_password(
        call.principal, call.body.current_password, call.body.new_password, _address(call.request))
    view = schemas.LoginView(token=token, expires_at=expires_at, user=_staff_view(user))
    response = web.Response(text=view.model_dump_json(), content_type="application/json")
    response.set_cookie(COOKIE_NAME, token, max_age=services.settings.session_ttl_seconds, httponly=True,
                        samesite="Strict", secure=services.settings.cookie_secure, path="/")
    return response


# --- applications and the party's own view ----------------------------------------------------


@router.route("POST", "/api/applications", allow=("anonymous",), summary="File an application",
              tag="applications", body=schemas.ApplicationIn, response=schemas.ReceiptView, status=201)
async def file_application(call: Call) -> schemas.ReceiptView:
    services = call.request.app[SERVICES]
    retry = services.application_limit.hit(_address(call.request))
    if retry is not None:
        raise TooManyRequests(f"too many applications from this address; retry in {retry} s",
                              headers={"Retry-After": str(retry)})
    return await services.cases.file_application(call.body)


@router.route("GET", "/api/party/case", allow=("party",), summary="Read my own case", tag="applications",
              response=schemas.PartyCaseView)
async def party_case(call: Call) -> schemas.PartyCaseView:
    token, _ = presented_token(call.request)
    receipt = token if call.principal.via == "receipt" else None
    return await call.request.app[SERVICES].cases.party_view(call.principal, receipt)


# --- live changes -----------------------------------------------------------------------------


@router.route("GET", "/api/events", allow=(*CASE_READERS, "party"),
              summary="Stream which of my cases changed (server-sent events: ready, case_changed, resync, "
                      "access_revoked)", tag="cases", raw_media_type="text/event-stream")
async def change_events(call: Call) -> web.StreamResponse:
    await _officer_in_force(call)
    return await call.request.app[SERVICES].changes.serve(call.request, call.principal,
                                                          lambda: _officer_in_force(call))


# --- cases ------------------------------------------------------------------------------------


@router.route("GET", "/api/cases", allow=CASE_READERS, summary="List cases", tag="cases",
              query=schemas.CaseListQuery, response=schemas.CaseList)
async def list_cases(call: Call) -> schemas.CaseList:
    await _officer_in_force(call)
    return await call.request.app[SERVICES].cases.list_cases(call.principal, call.query)


@router.route("GET", "/api/cases/{case_id}", allow=CASE_READERS, summary="Read a case", tag="cases",
              response=schemas.CaseView)
async def read_case(call: Call) -> schemas.CaseView:
    await _officer_in_force(call)
    return await call.request.app[SERVICES].cases.case_view(call.path["case_id"])


@router.route("POST", "/api/cases/{case_id}/parties/{party_id}/verify", allow=CASE_OFFICER,
              summary="Verify a party's identity", tag="review", body=schemas.VerifyPartyIn,
              response=schemas.CaseView)
async def verify_party(call: Call) -> schemas.CaseView:
    return await call.request.app[SERVICES].cases.verify_party(
        call.principal, call.path["case_id"], call.path["party_id"], call.body)


@router.route("POST", "/api/cases/{case_id}/accept", allow=CASE_OFFICER, summary="Accept a case",
              tag="review", response=schemas.CaseView)
async def accept_case(call: Call) -> schemas.CaseView:
    return await call.request.app[SERVICES].cases.accept(call.principal, call.path["case_id"])


@router.route("POST", "/api/cases/{case_id}/reject", allow=CASE_OFFICER, summary="Reject a case",
              tag="review", body=schemas.RejectIn, response=schemas.CaseView)
async def reject_case(call: Call) -> schemas.CaseView:
    return await call.request.app[SERVICES].cases.reject(call.principal, call.path["case_id"], call.body)


@router.route("PUT", "/api/cases/{case_id}/assignments", allow=CASE_OFFICER,
              summary="Assign the mediator and bank representative", tag="review", body=schemas.AssignIn,
              response=schemas.CaseView)
async def assign_staff(call: Call) -> schemas.CaseView:
    return await call.request.app[SERVICES].cases.assign(call.principal, call.path["case_id"], call.body)


@router.route("POST", "/api/cases/{case_id}/sessions", allow=SCHEDULERS, summary="Propose a session time",
              tag="schedule", body=schemas.ProposeSessionIn, response=schemas.CaseView, status=201)
async def propose_session(call: Call) -> schemas.CaseView:
    return await call.request.app[SERVICES].cases.propose_session(call.principal, call.path["case_id"], call.body)


@router.route("POST", "/api/cases/{case_id}/sessions/{session_id}/confirm",
              allow=("party", "bank_representative"), summary="Confirm a session time", tag="schedule",
              body=schemas.ConfirmSessionIn, response=schemas.CaseView)
async def confirm_session(call: Call) -> schemas.CaseView:
    return await call.request.app[SERVICES].cases.confirm_session(
        call.principal, call.path["case_id"], call.path["session_id"], call.body)


@router.route("POST", "/api/cases/{case_id}/sessions/{session_id}/cancel", allow=SCHEDULERS,
              summary="Cancel a session", tag="schedule", response=schemas.CaseView)
async def cancel_session(call: Call) -> schemas.CaseView:
    return await call.request.app[SERVICES].cases.cancel_session(
        call.principal, call.path["case_id"], call.path["session_id"])


@router.route("POST", "/api/cases/{case_id}/join-links", allow=SCHEDULERS,
              summary="Issue a join link and deliver it to the party", tag="schedule", body=schemas.IssueLinkIn,
              response=schemas.JoinLinkView, status=201)
async def issue_link(call: Call) -> schemas.JoinLinkView:
    return await call.request.app[SERVICES].cases.issue_link(call.principal, call.path["case_id"], call.body)


@router.route("POST", "/api/cases/{case_id}/join-links/{link_id}/retry", allow=SCHEDULERS,
              summary="Deliver a join link again: a fresh link replaces it", tag="schedule",
              response=schemas.JoinLinkView, status=201)
async def retry_link(call: Call) -> schemas.JoinLinkView:
    return await call.request.app[SERVICES].cases.retry_link(call.principal, call.path["case_id"],
                                                              call.path["link_id"])


@router.route("GET", "/api/cases/{case_id}/join-links", allow=SCHEDULERS, summary="List join links",
              tag="schedule", response=schemas.JoinLinkList)
async def list_links(call: Call) -> schemas.JoinLinkList:
    return await call.request.app[SERVICES].cases.list_links(call.path["case_id"])


@router.route("DELETE", "/api/cases/{case_id}/join-links/{link_id}", allow=SCHEDULERS,
              summary="Revoke a join link", tag="schedule", response=schemas.JoinLinkView)
async def revoke_link(call: Call) -> schemas.JoinLinkView:
    return await call.request.app[SERVICES].cases.revoke_link(
        call.principal, call.path["case_id"], call.path["link_id"])


@router.route("GET", "/api/cases/{case_id}/receipt", allow=CASE_OFFICER,
              summary="Read the state of the borrower's receipt", tag="review", response=schemas.ReceiptStateView)
async def receipt_state(call: Call) -> schemas.ReceiptStateView:
    return await call.request.app[SERVICES].cases.receipt_state(call.path["case_id"])


@router.route("POST", "/api/cases/{case_id}/receipt/revoke", allow=CASE_OFFICER,
              summary="Revoke the borrower's receipt", tag="review", response=schemas.ReceiptStateView)
async def revoke_receipt(call: Call) -> schemas.ReceiptStateView:
    return await call.request.app[SERVICES].cases.revoke_receipt(call.principal, call.path["case_id"])


@router.route("POST", "/api/cases/{case_id}/close", allow=("case_officer", "mediator"), summary="Close a case",
              tag="cases", body=schemas.CloseIn, response=schemas.CaseView)
async def close_case(call: Call) -> schemas.CaseView:
    return await call.request.app[SERVICES].cases.close(call.principal, call.path["case_id"], call.body)


# --- possession factor (codes, enrolled devices, act proofs) and case recovery -----------------

PARTY_SIDE = ("party", "bank_representative")  # the bank representative speaks for the lender


@router.route("GET", "/api/cases/{case_id}/possession", allow=PARTY_SIDE,
              summary="Read my party's verified contacts (masked) and enrolled devices", tag="possession",
              response=schemas.PossessionView)
async def possession_state(call: Call) -> schemas.PossessionView:
    state = await call.request.app[SERVICES].possession.state(call.principal, call.path["case_id"])
    return schemas.PossessionView.model_validate(state)


@router.route("POST", "/api/cases/{case_id}/possession/codes", allow=PARTY_SIDE,
              summary="Send a one-time code to my party's verified contact (to enrol a device, or for one act)",
              tag="possession", body=schemas.CodeRequestIn, response=schemas.CodeSentView, status=201)
async def request_code(call: Call) -> schemas.CodeSentView:
    body = call.body
    sent = await call.request.app[SERVICES].possession.request_code(
        call.principal, call.path["case_id"], purpose=body.purpose, channel=body.channel, act=body.act,
        session_id=body.session_id, client_address=_address(call.request))
    return schemas.CodeSentView(code_id=sent.code_id, channel=sent.channel, to=sent.to, expires_at=sent.expires_at)


@router.route("POST", "/api/cases/{case_id}/possession/enrolments", allow=PARTY_SIDE,
              summary="Enrol this device's Ed25519 key with an enrolment code", tag="possession",
              body=schemas.EnrolIn, response=schemas.EnrolmentView, status=201)
async def enrol_device(call: Call) -> schemas.EnrolmentView:
    body = call.body
    enrolment = await call.request.app[SERVICES].possession.enrol(
        call.principal, call.path["case_id"], code_id=body.code_id, code=body.code, public_key=body.public_key)
    return schemas.EnrolmentView.model_validate(enrolment_view(enrolment))


@router.route("POST", "/api/cases/{case_id}/possession/challenges", allow=PARTY_SIDE,
              summary="A single-use challenge for one act, to be signed by my enrolled device", tag="possession",
              body=schemas.ChallengeIn, response=schemas.ChallengeView, status=201)
async def possession_challenge(call: Call) -> schemas.ChallengeView:
    row = await call.request.app[SERVICES].possession.challenge(
        call.principal, call.path["case_id"], act=call.body.act, session_id=call.body.session_id)
    return schemas.ChallengeView(challenge_id=row.challenge_id, to_sign=b64url(challenge_message(row)),
                                 expires_at=row.expires_at)


@router.route("POST", "/api/recovery/codes", allow=("anonymous",),
              summary="Lost receipt: send a one-time code to the borrower's verified contact (same answer whether "
                      "or not the case and contact match)", tag="possession", body=schemas.RecoveryCodeIn,
              response=schemas.RecoveryAcceptedView, status=202)
async def recovery_code(call: Call) -> schemas.RecoveryAcceptedView:
    services = call.request.app[SERVICES]
    await services.possession.request_recovery(call.body.case_number, call.body.contact, _address(call.request))
    return schemas.RecoveryAcceptedView(
        message="If that case number has this contact on file, a one-time code is on its way to it.",
        expires_in_seconds=services.settings.possession_code_ttl_seconds)


@router.route("POST", "/api/recovery/receipts", allow=("anonymous",),
              summary="Lost receipt: a new receipt for the case, with the code sent to the borrower's contact",
              tag="possession", body=schemas.RecoverIn, response=schemas.ReceiptView, status=201)
async def recover_receipt(call: Call) -> schemas.ReceiptView:
    body = call.body
    recovered = await call.request.app[SERVICES].possession.recover(body.case_number, body.contact, body.code,
                                                                    _address(call.request))
    return schemas.ReceiptView.model_validate(recovered)


# --- sealed records ---------------------------------------------------------------------------

MAX_SEGMENT_BYTES = 32 * 1024 * 1024


def _record_view(record, audit_seq: int | None) -> schemas.RecordView:
    return schemas.RecordView(record_id=record.record_id, key=record.storage_key, kind=record.kind,
                              session_id=record.session_id, participant_id=record.participant_id,
                              part=record.part, index=record.index,
                              sha256=record.sha256, size=record.size, recipients=record.recipients,
                              created_at=record.created_at, audit_seq=audit_seq)


def _proposal_view(proposal, username: str, needs: str) -> schemas.RecipientProposalView:
    return schemas.RecipientProposalView(
        proposal_id=proposal.proposal_id, user_id=proposal.user_id, username=username,
        recipient=proposal.recipient, state=proposal.state, proposed_at=proposal.proposed_at,
        approvals=proposal.approvals, needs=needs, decided_at=proposal.decided_at, decided_by=proposal.decided_by)


async def _officer_in_force(call: Call) -> None:
    """A compliance officer reaches cases and records only once a second person approved their key."""
    principal = call.principal
    if principal.role == "compliance_officer" and not await call.request.app[SERVICES].recipient_keys.in_force(
            principal.subject_id or ""):
        raise Forbidden("your compliance key is not yet approved by a second person: no case is open to you "
                        "until it is", code="key_not_in_force")


@router.route("PUT", "/api/staff/me/recipient", allow=("compliance_officer",),
              summary="Propose my age public key (takes effect once a second person approves)", tag="records",
              body=schemas.RecipientIn, response=schemas.RecipientProposalView, status=202)
async def register_recipient(call: Call) -> schemas.RecipientProposalView:
    services = call.request.app[SERVICES]
    proposal, needs = await services.recipient_keys.propose(call.principal, call.body.recipient)
    user = await services.accounts.user(proposal.user_id)
    return _proposal_view(proposal, user.username, needs)


@router.route("GET", "/api/compliance/keys", allow=("compliance_officer", "administrator"),
              summary="List compliance key proposals", tag="records", response=schemas.RecipientProposalList)
async def list_key_proposals(call: Call) -> schemas.RecipientProposalList:
    rows = await call.request.app[SERVICES].recipient_keys.proposals()
    return schemas.RecipientProposalList(proposals=[_proposal_view(p, u, n) for p, u, n in rows])


@router.route("POST", "/api/compliance/keys/{proposal_id}/approve", allow=("compliance_officer", "administrator"),
              summary="Approve another person's compliance key", tag="records",
              response=schemas.RecipientProposalView)
async def approve_key(call: Call) -> schemas.RecipientProposalView:
    services = call.request.app[SERVICES]
    proposal, needs = await services.recipient_keys.approve(call.principal, call.path["proposal_id"])
    return _proposal_view(proposal, (await services.accounts.user(proposal.user_id)).username, needs)


@router.route("POST", "/api/compliance/keys/{proposal_id}/reject", allow=("compliance_officer", "administrator"),
              summary="Reject or withdraw a pending compliance key", tag="records",
              response=schemas.RecipientProposalView)
async def reject_key(call: Call) -> schemas.RecipientProposalView:
    services = call.request.app[SERVICES]
    proposal, needs = await services.recipient_keys.reject(call.principal, call.path["proposal_id"])
    return _proposal_view(proposal, (await services.accounts.user(proposal.user_id)).username, needs)


@router.route("GET", "/api/compliance/recipients", allow=(*CASE_READERS, "administrator", "party"),
              summary="Read the signed recipient statement in force", tag="records",
              response=schemas.RecipientStatementView)
async def recipient_statement(call: Call) -> schemas.RecipientStatementView:
    services = call.request.app[SERVICES]
    statement = await services.recipient_keys.statement()
    if statement is None:
        raise NotFound("no compliance key has been approved yet: nothing is sealed", code="no_statement")
    return schemas.RecipientStatementView(
        version=statement.version, statement=statement.statement.decode(), key_id=statement.key_id,
        signature=statement.signature.hex(), public_key_pem=public_key_pem(services.audit.public_key))


@router.route("GET", "/api/cases/{case_id}/records", allow=("compliance_officer",),
              summary="List a case's sealed records", tag="records", response=schemas.RecordList)
async def list_records(call: Call) -> schemas.RecordList:
    await _officer_in_force(call)
    records = await call.request.app[SERVICES].records.list(call.path["case_id"])
    return schemas.RecordList(records=[_record_view(record, seq) for record, seq in records])


@router.route("GET", "/api/cases/{case_id}/records/manifest", allow=("compliance_officer",),
              summary="Read a case's record manifest with audit proofs", tag="records",
              raw_media_type="application/json")
async def record_manifest(call: Call) -> web.Response:
    await _officer_in_force(call)
    body = await call.request.app[SERVICES].records.manifest(call.principal, call.path["case_id"])
    return web.Response(body=body, content_type="application/json")


@router.route("GET", "/api/cases/{case_id}/records/{record_id}", allow=("compliance_officer",),
              summary="Download a sealed record", tag="records", raw_media_type="application/octet-stream")
async def download_record(call: Call) -> web.Response:
    await _officer_in_force(call)
    record, data = await call.request.app[SERVICES].records.download(
        call.principal, call.path["case_id"], call.path["record_id"])
    return web.Response(body=data, content_type="application/octet-stream",
                        headers={"X-Record-SHA256": record.sha256,
                                 "Content-Disposition": f'attachment; filename="{record.record_id}.age"'})


@router.route("POST", "/api/recordings/{session_id}/segments", allow=("recorder",),
              summary="File a sealed recording segment", tag="records", query=schemas.SegmentQuery,
              response=schemas.SegmentView, status=201)
async def file_segment(call: Call) -> schemas.SegmentView:
    principal = call.principal
    if principal.session_id != call.path["session_id"]:
        raise Forbidden("this recorder records another session")
    if call.request.content_type != "application/octet-stream":
        raise BadRequest("segments are sent as application/octet-stream", code="unsupported_media_type")
    declared = call.request.content_length
    if declared is None:
        raise BadRequest("a segment needs a Content-Length", code="length_required")
    if declared > MAX_SEGMENT_BYTES:
        raise PayloadTooLarge(f"segment exceeds {MAX_SEGMENT_BYTES} bytes")
    try:
        # read(n) returns what has arrived so far; a segment arrives in pieces.
        data = await call.request.content.readexactly(declared)
    except (asyncio.IncompleteReadError, ClientPayloadError, ConnectionResetError):
        raise BadRequest(f"segment body ended before the {declared} bytes declared", code="truncated") from None
    # A worker killed mid-upload leaves a short body: it must never be filed as a segment.
    if len(data) != declared:
        raise BadRequest(f"segment body has {len(data)} bytes, not the {declared} declared", code="truncated")
    expected = call.request.headers.get("X-Content-SHA256", "")
    if hashlib.sha256(data).hexdigest() != expected.lower():
        raise BadRequest("segment does not match its X-Content-SHA256", code="digest_mismatch")
    if not data.startswith(b"age-encryption.org/v1\n"):
        raise BadRequest("a segment must be age v1 ciphertext", code="not_sealed")
    services = call.request.app[SERVICES]
    recipients = services.recorders.recipients(principal.session_id or "")
    query = call.query
    if not recipients:
        raise Forbidden("this recorder is no longer running")
    record = await services.records.file_ciphertext(
        data, actor=principal.actor, recipients=recipients, case_id=principal.case_id or "",
        session_id=principal.session_id or "", participant_id=query.participant_id, part=query.part,
        index=query.index, media={"media": query.media_ranges(), "clock_zero_ms": query.clock_zero_ms,
                                  "final": query.final})
    return schemas.SegmentView(record_id=record.record_id, sha256=record.sha256, size=record.size)


# --- agreements and feedback ------------------------------------------------------------------


@router.route("GET", "/api/cases/{case_id}/agreement", allow=(*CASE_READERS, "party"),
              summary="Read the current agreement and the exact text to sign", tag="agreements",
              response=schemas.AgreementView)
async def read_agreement(call: Call) -> schemas.AgreementView:
    await _officer_in_force(call)
    return await call.request.app[SERVICES].agreements.current(call.path["case_id"])


@router.route("PUT", "/api/cases/{case_id}/agreement", allow=("mediator",),
              summary="Draft the repayment agreement (a change voids every signature)", tag="agreements",
              body=schemas.AgreementIn, response=schemas.AgreementView)
async def draft_agreement(call: Call) -> schemas.AgreementView:
    return await call.request.app[SERVICES].agreements.draft(call.principal, call.path["case_id"], call.body)


@router.route("POST", "/api/cases/{case_id}/agreement/signatures", allow=("party", "bank_representative"),
              summary="Sign the agreement", tag="agreements", body=schemas.SignatureIn,
              response=schemas.AgreementView, status=201)
async def sign_agreement(call: Call) -> schemas.AgreementView:
    return await call.request.app[SERVICES].agreements.sign(call.principal, call.path["case_id"], call.body)


@router.route("GET", "/api/cases/{case_id}/agreement/signed", allow=(*CASE_READERS, "party"),
              summary="Download the signed, countersigned agreement", tag="agreements",
              raw_media_type="application/json")
async def signed_agreement(call: Call) -> dict:
    await _officer_in_force(call)
    return await call.request.app[SERVICES].agreements.signed_copy(call.path["case_id"])


@router.route("GET", "/api/cases/{case_id}/agreement/signed.pdf", allow=(*CASE_READERS, "party"),
              summary="Download the signed agreement as a printable PDF that carries its verification data "
                      "(503 pdf_font_missing when the server has no CJK font)",
              tag="agreements", query=schemas.AgreementPdfQuery, raw_media_type="application/pdf")
async def signed_agreement_pdf(call: Call) -> web.Response:
    await _officer_in_force(call)
    name, body = await call.request.app[SERVICES].agreements.signed_pdf(call.path["case_id"], call.query.lang)
    return web.Response(body=body, content_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.route("POST", "/api/cases/{case_id}/feedback", allow=("party", "bank_representative"),
              summary="Rate the mediation", tag="feedback", body=schemas.FeedbackIn, status=204)
async def give_feedback(call: Call) -> web.Response:
    await call.request.app[SERVICES].agreements.give_feedback(call.principal, call.path["case_id"], call.body)
    return web.Response(status=204)


@router.route("GET", "/api/feedback/summary", allow=("case_officer",), summary="Feedback in aggregate",
              tag="feedback", response=schemas.FeedbackSummary)
async def feedback_summary(call: Call) -> schemas.FeedbackSummary:
    return await call.request.app[SERVICES].agreements.feedback_summary()
