"""Request and response bodies of the HTTP API; they validate input and generate the OpenAPI document."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from signaling.textpolicy import checked_text



def _no_control(value: str, *, multiline: bool) -> str:
    # The one character policy of human-entered text (signaling/textpolicy.py): no bidi or invisible tricks.
    return checked_text(value, multiline=multiline)


def _line(value: str) -> str:
    return _no_control(value, multiline=False)


def _paragraph(value: str) -> str:
    return _no_control(value, multiline=True).replace("\r\n", "\n")


def Line(max_length: int, min_length: int = 1) -> type[str]:  # noqa: N802 - a type factory
    return Annotated[  # type: ignore[return-value]
        str, StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
        AfterValidator(_line),
    ]


def Paragraph(max_length: int, min_length: int = 0) -> type[str]:  # noqa: N802 - a type factory
    return Annotated[  # type: ignore[return-value]
        str, StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
        AfterValidator(_paragraph),
    ]


def IdOf(prefix: str) -> type[str]:  # noqa: N802 - a type factory
    return Annotated[str, StringConstraints(pattern=rf"^{prefix}_[0-9a-f]{{32}}$")]  # type: ignore[return-value]


Email = Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s\x00-\x1f]{1,64}@[A-Za-z0-9.-]{1,189}\.[A-Za-z]{2,24}$"),
                  AfterValidator(_line)]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 -]{5,30}$")]
MinorUnits = Annotated[int, Field(ge=0, le=10**15, description="Amount in integer minor units (e.g. fen, cents)")]
StaffRole = Literal["case_officer", "mediator", "bank_representative", "compliance_officer", "administrator"]
CaseState = Literal["submitted", "accepted", "scheduled", "rejected", "closed"]



class Body(BaseModel):
    """A request body: unknown fields are refused, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class View(BaseModel):
    """A response body."""

    model_config = ConfigDict(extra="forbid")


# --- applications -----------------------------------------------------------------------------


class BorrowerIn(Body):
    name: Line(200)
    email: Email | None = None
    phone: Phone | None = None

    @model_validator(mode="after")
    def _reachable(self) -> BorrowerIn:
        if self.email is None and self.phone is None:
            raise ValueError("give an email or a phone number so the mediation body can reach you")
        return self


class ApplicationIn(Body):
    borrower: BorrowerIn
    lender: Line(200)
    loan_reference: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,63}$")]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    principal_minor: Annotated[int, Field(ge=1, le=10**15)]
    overdue_minor: MinorUnits
    days_overdue: Annotated[int, Field(ge=0, le=36500)]
    proposal: Paragraph(4000) = ""


class ReceiptView(View):
    case_id: str
    case_number: str
    receipt_token: str = Field(description="Shown once; the party's key to its case view. Keep it private.")
    receipt_expires_at: dt.datetime


# --- accounts ---------------------------------------------------------------------------------


class LoginIn(Body):
    # No control characters: PostgreSQL refuses NUL in text, so one would fail the lookup with a 500.
    username: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class StaffView(View):
    user_id: str
    username: str
    display_name: str
    role: StaffRole
    disabled: bool
    age_recipient: str | None = None
    # Created by one administrator for a role that reads case text or enters rooms: inert until a second
    # administrator, another person, approves it.
    awaiting_approval: bool = False
    created_by: str | None = None
    approved_by: str | None = None


class LoginView(View):
    token: str
    expires_at: dt.datetime
    user: StaffView


class StaffCreateIn(Body):
    username: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9._-]{2,63}$")]
    display_name: Line(120)
    role: StaffRole
    password: Annotated[str, StringConstraints(min_length=12, max_length=256)]


class StaffList(View):
    staff: list[StaffView]


class PasswordChangeIn(Body):
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    new_password: Annotated[str, StringConstraints(min_length=1, max_length=256)] = Field(
        description="12 to 128 characters, not a common password (docs/threat-model.md, staff accounts)")


class RecipientProposalView(View):
    proposal_id: str
    user_id: str
    username: str
    recipient: str
    state: Literal["pending", "approved", "rejected", "superseded"]
    proposed_at: dt.datetime
    approvals: list[dict[str, str]]
    needs: Literal["compliance_officer", "two_administrators"]
    decided_at: dt.datetime | None = None
    decided_by: str | None = None


class RecipientProposalList(View):
    proposals: list[RecipientProposalView]


class RecipientStatementView(View):
    version: int
    statement: str = Field(description="The canonical JSON of the statement, exactly as signed")
    key_id: str
    signature: str = Field(description="Ed25519 signature over the statement bytes, hex")
    public_key_pem: str


class WhoAmI(View):
    kind: Literal["staff", "party"]
    role: str
    user: StaffView | None = None
    case_id: str | None = None
    party_id: str | None = None


class SignInState(View):
    signed_in: bool = Field(description="false without a valid staff session or party credential: not an error")
    me: WhoAmI | None = None


# --- cases ------------------------------------------------------------------------------------


class PartyView(View):
    party_id: str
    role: Literal["borrower", "lender"]
    name: str
    email: str | None
    phone: str | None
    verified_at: dt.datetime | None
    verification_method: str | None


class AssignmentView(View):
    role: Literal["mediator", "bank_representative"]
    user_id: str
    display_name: str
    assigned_at: dt.datetime


class SessionView(View):
    session_id: str
    starts_at: dt.datetime
    duration_minutes: int
    mode: Literal["video", "chat"]
    state: Literal["proposed", "confirmed", "cancelled"]
    confirmed_by: list[str] = Field(description="party_ids that confirmed")


class CaseView(View):
    case_id: str
    case_number: str
    state: CaseState
    lender: str
    loan_reference: str
    currency: str
    principal_minor: int
    overdue_minor: int
    days_overdue: int
    overdue_bucket: Literal["short", "medium", "long"]
    proposal: str
    rejection_reason: str | None
    outcome: str | None
    closing_note: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    parties: list[PartyView]
    assignments: list[AssignmentView]
    sessions: list[SessionView]
    agreement_version: int | None = Field(None, description="the latest agreement's version; null before one")


class CaseSummary(View):
    case_id: str
    case_number: str
    state: CaseState
    lender: str
    overdue_bucket: str
    created_at: dt.datetime


class CaseList(View):
    cases: list[CaseSummary]
    page: int
    per_page: int
    total: int


class CaseListQuery(Body):
    model_config = ConfigDict(extra="forbid", strict=False)

    state: CaseState | None = None
    page: Annotated[int, Field(ge=1, le=100000)] = 1
    per_page: Annotated[int, Field(ge=1, le=100)] = 20


class VerifyPartyIn(Body):
    method: Literal["id_card", "passport", "bank_authorization", "video_check", "other"]
    reference: Line(120) = Field(description="Which document or check; never the document number in full")
    email: Email | None = Field(default=None, description="The contact this check confirmed, for a party with "
                                "none on file (the lender); its join links go there")
    phone: Phone | None = Field(default=None, description="As email, for SMS")


class RejectIn(Body):
    reason: Paragraph(2000, min_length=1)


class AssignIn(Body):
    mediator_id: IdOf("usr") | None = None
    bank_representative_id: IdOf("usr") | None = None

    @model_validator(mode="after")
    def _something(self) -> AssignIn:
        if self.mediator_id is None and self.bank_representative_id is None:
            raise ValueError("give mediator_id, bank_representative_id or both")
        return self


class ProposeSessionIn(Body):
    starts_at: AwareDatetime
    duration_minutes: Annotated[int, Field(ge=15, le=480)] = 60
    mode: Literal["video", "chat"] = "video"


Act = Literal["confirm_session", "give_consent", "withdraw_consent", "sign_agreement"]
OneTimeCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{8}$")]
B64Signature = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{86}$")]
B64PublicKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")]


class PossessionProofIn(Body):
    """Proof that the caller holds the party's verified contact (server/possession.py): an enrolled device's
    signature of a challenge for this act, or a one-time code sent for this act."""

    challenge_id: IdOf("chl") | None = None
    signature: B64Signature | None = Field(default=None, description="Ed25519 signature of the challenge's to_sign")
    code_id: IdOf("pcd") | None = None
    code: OneTimeCode | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> PossessionProofIn:
        device = self.challenge_id is not None and self.signature is not None
        code = self.code_id is not None and self.code is not None
        given = [v for v in (self.challenge_id, self.signature, self.code_id, self.code) if v is not None]
        if device == code or len(given) != 2:
            raise ValueError("give challenge_id with signature, or code_id with code")
        return self


class ConfirmSessionIn(Body):
    party_id: IdOf("pty") | None = Field(
        default=None, description="Which party confirms; staff confirming for the lender give the lender's party_id"
    )
    proof: PossessionProofIn | None = Field(default=None, description="Required: 403 possession_required without")


class CodeRequestIn(Body):
    purpose: Literal["enrol", "act"]
    act: Act | None = Field(default=None, description="For purpose act: the one act the code may be spent on")
    session_id: IdOf("ses") | None = Field(default=None, description="The session the act is in, if any")
    channel: Literal["email", "sms"] | None = Field(default=None, description="Default: the first available")


class CodeSentView(View):
    code_id: str
    channel: Literal["email", "sms"]
    to: str = Field(description="The verified contact it went to, masked")
    expires_at: dt.datetime


class EnrolIn(Body):
    code_id: IdOf("pcd")
    code: OneTimeCode
    public_key: B64PublicKey = Field(description="The device's raw Ed25519 public key, base64url without padding")


class EnrolmentView(View):
    enrolment_id: str
    fingerprint: str = Field(description="SHA-256 of the raw public key, hex")
    public_key: str
    channel: str
    enrolled_at: dt.datetime


class ContactChannelView(View):
    channel: Literal["email", "sms"]
    to: str


class PossessionView(View):
    party_id: str
    role: Literal["borrower", "lender"]
    channels: list[ContactChannelView]
    enrolments: list[EnrolmentView]


class ChallengeIn(Body):
    act: Act
    session_id: IdOf("ses") | None = None


class ChallengeView(View):
    challenge_id: str
    to_sign: str = Field(description="The exact bytes to sign, base64url without padding")
    expires_at: dt.datetime


CaseNumber = Annotated[str, StringConstraints(pattern=r"^MD-[0-9]{8}-[A-Z0-9]{6}$")]


class RecoveryCodeIn(Body):
    case_number: CaseNumber
    contact: Email | Phone = Field(description="The e-mail or phone number the case has on file for you")


class RecoveryAcceptedView(View):
    message: str
    expires_in_seconds: int


class RecoverIn(Body):
    case_number: CaseNumber
    contact: Email | Phone
    code: OneTimeCode


class IssueLinkIn(Body):
    party_id: IdOf("pty")
    session_id: IdOf("ses")


class DeliveryView(View):
    channel: Literal["case_view", "email", "sms"]
    status: Literal["pending", "sent", "failed"]
    error: str | None = Field(description="On failure its class (timeout, unreachable, recipient_refused, "
                                          "http_503, ...); never the message")
    attempted_at: dt.datetime
    finished_at: dt.datetime | None


class JoinLinkView(View):
    """A join link as staff see it: never its token, which goes only to the party."""

    link_id: str
    party_id: str
    session_id: str
    role: str
    issued_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    revoked_reason: str | None = None
    status: Literal["active", "expired", "revoked"]
    deliveries: list[DeliveryView] = Field(description="One per channel the link was sent over")


class ReceiptStateView(View):
    """The borrower's receipt as staff see it: its state, never the token."""

    receipt_id: str = Field(description="How audit entries of the borrower's acts name this receipt")
    status: Literal["active", "read_only", "expired", "revoked"]
    expires_at: dt.datetime
    revoked_at: dt.datetime | None


class JoinLinkList(View):
    links: list[JoinLinkView]


class CloseIn(Body):
    outcome: Literal["settled", "not_settled", "withdrawn"]
    note: Paragraph(2000) = ""


class NoticeView(View):
    notice_id: str
    kind: str
    text: str
    link: str | None = None
    link_id: str | None = None
    created_at: dt.datetime


class PartyCaseView(View):
    case_id: str
    case_number: str
    state: CaseState
    lender: str
    party: PartyView
    rejection_reason: str | None
    outcome: str | None
    sessions: list[SessionView]
    notices: list[NoticeView]
    agreement_version: int | None = Field(None, description="the latest agreement's version; null before one")


# --- agreements and feedback -----------------------------------------------------------------


class InstalmentIn(Body):
    due_date: dt.date
    amount_minor: Annotated[int, Field(ge=1, le=10**15)]


class AgreementIn(Body):
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    settled_amount_minor: Annotated[int, Field(ge=1, le=10**15)]
    waived_penalties_minor: MinorUnits = 0
    instalments: Annotated[list[InstalmentIn], Field(min_length=1, max_length=120)]
    terms: Paragraph(8000) = ""


class SignatureIn(Body):
    version: Annotated[int, Field(ge=1, le=10000)]
    public_key: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")] = Field(
        description="The signer's raw Ed25519 public key, base64url without padding")
    signature: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{86}$")] = Field(
        description="Ed25519 signature of the RFC 8785 canonical document, base64url without padding")


class SignatureView(View):
    signer: Literal["borrower", "lender"]
    public_key: str
    signed_at: str
    enrolment: dict | None = Field(default=None, description="The device enrolment of the signing key")


class AgreementView(View):
    agreement_id: str
    version: int
    state: Literal["draft", "signed", "void"]
    document: dict
    canonical: str = Field(description="The exact text each party signs (RFC 8785)")
    sha256: str
    signatures: list[SignatureView]
    countersigned: bool


class FeedbackIn(Body):
    rating: Annotated[int, Field(ge=1, le=5)]
    comment: Paragraph(2000) = ""


class MediatorRating(View):
    user_id: str
    display_name: str
    count: int
    average: float


class FeedbackComment(View):
    rating: int
    comment: str
    created_at: dt.datetime


class FeedbackSummary(View):
    count: int
    average: float | None
    distribution: dict[str, int]
    by_mediator: list[MediatorRating]
    recent_comments: list[FeedbackComment]


# --- sealed records ---------------------------------------------------------------------------


class RecipientIn(Body):
    recipient: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="An age X25519 public key (age1…). Never send the secret key.")


class RecordView(View):
    record_id: str
    key: str
    kind: str
    session_id: str | None
    participant_id: str | None
    part: int | None
    index: int | None
    sha256: str
    size: int
    recipients: list[str]
    created_at: dt.datetime
    audit_seq: int | None = Field(description="The audit entry's leaf index; null while the entry waits to be "
                                              "sequenced (every MEDIATION_AUDIT_SEQUENCE_SECONDS)")


class RecordList(View):
    records: list[RecordView]


class SegmentQuery(Body):
    model_config = ConfigDict(extra="forbid", strict=False)

    # A participant's camera and microphone, or with "-screen" the screen it shared (docs/records.md).
    participant_id: Annotated[str, StringConstraints(pattern=r"^(pty|usr)_[0-9a-f]{32}(-screen)?$")]
    part: Annotated[int, Field(ge=0, le=9999)] = 0
    index: Annotated[int, Field(ge=0, le=1_000_000)]
    # Completeness (docs/records.md, "Recording gaps"): what media time the segment holds.
    media: Annotated[str, StringConstraints(pattern=r"^(\d{1,10}-\d{1,10}(,\d{1,10}-\d{1,10}){0,99})?$")] = Field(
        "", description="The segment's media as first-last millisecond ranges on the recording's clock, "
                        "comma-separated; empty if it holds no block")
    clock_zero_ms: Annotated[int, Field(ge=0)] | None = Field(
        None, description="Epoch milliseconds of the recording's time zero")
    final: bool = Field(False, description="The file's last segment: the participant's file was closed")

    def media_ranges(self) -> list[list[int]]:
        """``media`` as [[first, last], …] milliseconds."""
        return [[int(first), int(last)] for first, last in
                (span.split("-") for span in self.media.split(",") if span)]


class SegmentView(View):
    record_id: str
    sha256: str
    size: int


# --- audit ------------------------------------------------------------------------------------


class CheckpointView(View):
    tree_size: int
    root_hash: str
    signed_at: dt.datetime
    key_id: str
    signature: str
    public_key_pem: str
    note: str | None = Field(default=None, description="The same head as a C2SP signed note (tlog-checkpoint "
                             "body) with the witnesses' cosignatures; null on heads signed before notes existed")


class AgreementPdfQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lang: Literal["zh-CN", "en"] = Field(default="zh-CN", description="The language of the PDF's headings")


class CheckpointHistoryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: int = Field(default=-1, ge=-1, description="Only checkpoints of a larger tree size")
    limit: int = Field(default=100, ge=1, le=1000)


class CheckpointHistory(View):
    origin: str = Field(description="The log's origin line, also the name of its note signatures")
    log_vkey: str = Field(description="The log's C2SP verifier key (<origin>+<key hash>+<base64 key>)")
    public_key_pem: str
    witness_keys: list[str] = Field(description="Verifier keys of the witnesses this node asks to cosign")
    witness_quorum: int
    refusal: str | None = Field(description="Why this node refuses to sign checkpoints, or null")
    checkpoints: list[CheckpointView] = Field(description="Signed checkpoints in tree-size order")


class ConsistencyQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    old_size: int = Field(ge=0)
    new_size: int = Field(ge=0)


class ConsistencyView(View):
    old_size: int
    new_size: int
    proof: list[str] = Field(description="RFC 6962 §2.1.2 consistency proof, base64 hashes")


class Health(View):
    status: Literal["ok"]


class ErrorView(View):
    error: str
    message: str
    field: str | None = None
    state: str | None = Field(default=None, description="On a 409 the case's state machine refused: the case's "
                              "current state (read this, not the message)")
    request_id: str | None = None
