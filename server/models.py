"""The case record's tables (SQLAlchemy 2 declarative); the schema itself is owned by Alembic migrations."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class StaffUser(Base):
    __tablename__ = "staff_users"

    user_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    # age X25519 recipient (public key) of a compliance officer; never a private key.
    age_recipient: Mapped[str | None] = mapped_column(String(128), default=None)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # The staff account that created this one (None: the operator's command line). Accounts one person
    # created for another count as that person when two-person control asks for two people.
    created_by: Mapped[str | None] = mapped_column(String(40), default=None)
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    # An account an administrator made for a role that reads case text or enters rooms is inert (no
    # sign-in, no session, no assignment) until a second administrator, another person, approves it.
    awaiting_approval: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    approved_by: Mapped[str | None] = mapped_column(String(40), default=None)
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)


class StaffSession(Base):
    __tablename__ = "staff_sessions"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("staff_users.user_id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)


class Case(Base):
    __tablename__ = "cases"

    case_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_number: Mapped[str] = mapped_column(String(32), unique=True)
    state: Mapped[str] = mapped_column(String(24), index=True)
    lender: Mapped[str] = mapped_column(String(200))
    loan_reference: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    principal_minor: Mapped[int] = mapped_column(BigInteger)
    overdue_minor: Mapped[int] = mapped_column(BigInteger)
    days_overdue: Mapped[int] = mapped_column(Integer)
    overdue_bucket: Mapped[str] = mapped_column(String(8))
    proposal: Mapped[str] = mapped_column(Text, default="")
    rejection_reason: Mapped[str | None] = mapped_column(Text, default=None)
    outcome: Mapped[str | None] = mapped_column(String(24), default=None)
    closing_note: Mapped[str | None] = mapped_column(Text, default=None)
    receipt_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    # X25519 public key derived from the receipt token: notices carrying a secret for the
    # borrower are sealed to it, so only a holder of the receipt can open them.
    receipt_public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    receipt_expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # A case officer revoked the receipt (it was exposed): it opens nothing from then on.
    receipt_revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    receipt_revoked_by: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Party(Base):
    __tablename__ = "parties"

    party_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # borrower | lender
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    phone: Mapped[str | None] = mapped_column(String(32), default=None)
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    verified_by: Mapped[str | None] = mapped_column(String(40), default=None)
    verification_method: Mapped[str | None] = mapped_column(String(32), default=None)
    verification_reference: Mapped[str | None] = mapped_column(String(120), default=None)

    __table_args__ = (UniqueConstraint("case_id", "role", name="uq_parties_case_role"),)


class Assignment(Base):
    __tablename__ = "assignments"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)  # mediator | bank_representative
    user_id: Mapped[str] = mapped_column(ForeignKey("staff_users.user_id"), index=True)
    assigned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    assigned_by: Mapped[str] = mapped_column(String(40))


class ScheduledSession(Base):
    __tablename__ = "scheduled_sessions"

    session_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), index=True)
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(8))  # video | chat
    state: Mapped[str] = mapped_column(String(16))  # proposed | confirmed | cancelled
    proposed_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class SessionConfirmation(Base):
    __tablename__ = "session_confirmations"

    session_id: Mapped[str] = mapped_column(ForeignKey("scheduled_sessions.session_id"), primary_key=True)
    party_id: Mapped[str] = mapped_column(ForeignKey("parties.party_id"), primary_key=True)
    confirmed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    confirmed_by: Mapped[str] = mapped_column(String(80))


class JoinLink(Base):
    __tablename__ = "join_links"

    link_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # SHA-256 of the 256-bit token; the token itself is never stored.
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), index=True)
    party_id: Mapped[str] = mapped_column(ForeignKey("parties.party_id"))
    session_id: Mapped[str] = mapped_column(ForeignKey("scheduled_sessions.session_id"))
    role: Mapped[str] = mapped_column(String(16))
    issued_by: Mapped[str] = mapped_column(String(40))
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_by: Mapped[str | None] = mapped_column(String(40), default=None)
    # Why it was revoked (server.joinlinks.RevokeReason); NULL for links revoked before reasons were kept.
    revoked_reason: Mapped[str | None] = mapped_column(String(24), default=None)


class Notice(Base):
    """A message to a party, shown in the party's case view."""

    __tablename__ = "notices"

    notice_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), index=True)
    party_id: Mapped[str] = mapped_column(ForeignKey("parties.party_id"))
    kind: Mapped[str] = mapped_column(String(24))
    text: Mapped[str] = mapped_column(Text)
    # A secret for the party (a join link) sealed with a key derived from the party's
    # receipt token, which only the party holds: the server at rest cannot open it.
    sealed_secret: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    # The join link a "join_link" notice carries, so the party can tell a fresh link from a revoked one.
    link_id: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class LinkDelivery(Base):
    """One attempt to deliver a join link over one channel; never the token, only how it went."""

    __tablename__ = "link_deliveries"

    delivery_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    link_id: Mapped[str] = mapped_column(ForeignKey("join_links.link_id"), index=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # case_view | email | sms
    status: Mapped[str] = mapped_column(String(16))  # pending | sent | failed
    # On failure, its class (server.channels.DeliveryFailed.error): never a message that could quote content.
    error: Mapped[str | None] = mapped_column(String(32), default=None)
    attempted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)


class Consent(Base):
    __tablename__ = "consents"

    consent_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), index=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("scheduled_sessions.session_id"))
    # A party (pty_…) joining by link, or the bank representative (usr_…) joining as staff.
    participant_id: Mapped[str] = mapped_column(String(40))
    notice_sha256: Mapped[str] = mapped_column(String(64))
    given_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    sealed_record_id: Mapped[str | None] = mapped_column(String(40), default=None)


class SealedRecord(Base):
    """A ciphertext object attached to a case; the server never holds a key that opens it."""

    __tablename__ = "sealed_records"

    record_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), index=True)
    session_id: Mapped[str | None] = mapped_column(String(40), default=None)
    kind: Mapped[str] = mapped_column(String(24))
    participant_id: Mapped[str | None] = mapped_column(String(40), default=None)
    part: Mapped[int | None] = mapped_column(Integer, default=None)
    index: Mapped[int | None] = mapped_column(Integer, default=None)
    storage_key: Mapped[str] = mapped_column(String(255), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    recipients: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # The "record_sealed" audit entry; its seq (the leaf index) exists once the entry is sequenced.
    audit_entry_id: Mapped[int] = mapped_column(ForeignKey("audit_entries.entry_id"))


class Agreement(Base):
    __tablename__ = "agreements"

    agreement_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))  # draft | signed | void
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    signatures: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The server's Ed25519 signature over the signed document, once every party has signed.
    countersignature: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Feedback(Base):
    __tablename__ = "feedback"

    feedback_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), index=True)
    party_id: Mapped[str] = mapped_column(ForeignKey("parties.party_id"))
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("case_id", "party_id", name="uq_feedback_case_party"),)


class AuditEntry(Base):
    """One audit entry: appended pending, later given ``seq``, its leaf index, gap-free from 0.

    A pending entry has ``seq``, ``canonical`` and ``leaf_hash`` NULL; the sequencer fills all three
    at once, in ``entry_id`` order among the entries committed by then.
    """

    __tablename__ = "audit_entries"

    # Assigned by the database; only names the row (the tree's order is ``seq``). A committed id is never
    # handed out again (AUTOINCREMENT on SQLite), so a record's link cannot come to name another entry.
    entry_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                          autoincrement=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True, default=None)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(48))
    case_id: Mapped[str | None] = mapped_column(String(40), default=None)
    # Canonical JSON of the detail object, as given to append; the sequencer hashes it into the leaf.
    detail: Mapped[str] = mapped_column(Text)
    # Canonical JSON of the whole entry: the exact bytes that were hashed into the leaf.
    canonical: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    leaf_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), default=None)

    __table_args__ = (
        Index("ix_audit_entries_case", "case_id", "seq"),
        # The sequencer's queue: small, since rows leave it within a sequencing interval.
        Index("ix_audit_entries_pending", "entry_id", postgresql_where=text("seq IS NULL"),
              sqlite_where=text("seq IS NULL")),
        {"sqlite_autoincrement": True},
    )


class AuditCheckpoint(Base):
    """A signed tree head: size, root and an Ed25519 signature by the server's audit key."""

    __tablename__ = "audit_checkpoints"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    # The same head as a C2SP signed note (tlog-checkpoint body), with the witnesses' cosignatures
    # added as they arrive; null on heads signed before notes existed.
    note: Mapped[str | None] = mapped_column(Text, default=None)


class SessionKeySalt(Base):
    """The random half of a running session's key (server/chatjournal.py); deleted when the session ends."""

    __tablename__ = "session_key_salts"

    session_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))


class ChatJournalEntry(Base):
    """A sealed chat message of a running session, sealed again under the session's key for the transcript."""

    __tablename__ = "chat_journal"

    session_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)


class RecipientProposal(Base):
    """A compliance officer's age key waiting for a second person (server/recipients.py)."""

    __tablename__ = "recipient_proposals"

    proposal_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("staff_users.user_id"), index=True)
    recipient: Mapped[str] = mapped_column(String(128))
    # "pending", then "approved", "rejected" or "superseded".
    state: Mapped[str] = mapped_column(String(16))
    proposed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # [{"user_id", "role", "at"}] in order; an officer's approval completes it, or two administrators'.
    approvals: Mapped[list[Any]] = mapped_column(JSON, default=list)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    decided_by: Mapped[str | None] = mapped_column(String(40), default=None)


class RecipientStatement(Base):
    """A signed statement of the recipient set in force; the highest version is the one in force."""

    __tablename__ = "recipient_statements"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # Canonical JSON of the statement: the exact bytes signed.
    statement: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class PossessionCode(Base):
    """A one-time code sent to a party's verified contact (server/possession.py); only its keyed hash is kept."""

    __tablename__ = "possession_codes"

    code_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), index=True)
    party_id: Mapped[str] = mapped_column(ForeignKey("parties.party_id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # enrol | act | recover
    # For purpose "act": the act and session it was sent for, and nothing else may spend it.
    act: Mapped[str | None] = mapped_column(String(32), default=None)
    session_id: Mapped[str | None] = mapped_column(String(40), default=None)
    channel: Mapped[str] = mapped_column(String(16))  # email | sms
    # HMAC-SHA256 of the address it went to: the per-address limit, without the address.
    address_hash: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    # How the requester was holding the party's credential (server.provenance.credential_detail), or null.
    credential: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    requested_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    voided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)


class DeviceEnrolment(Base):
    """A browser's non-extractable Ed25519 key, enrolled for a party with a code sent to its verified contact."""

    __tablename__ = "device_enrolments"

    enrolment_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), index=True)
    party_id: Mapped[str] = mapped_column(ForeignKey("parties.party_id"), index=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of the raw public key, hex
    code_id: Mapped[str] = mapped_column(ForeignKey("possession_codes.code_id"))
    channel: Mapped[str] = mapped_column(String(16))  # where the enrolling code went
    credential: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    enrolled_by: Mapped[str] = mapped_column(String(80))
    enrolled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)


class PossessionChallenge(Base):
    """A single-use challenge an enrolled key signs to prove possession for one act."""

    __tablename__ = "possession_challenges"

    challenge_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), index=True)
    party_id: Mapped[str] = mapped_column(ForeignKey("parties.party_id"))
    act: Mapped[str] = mapped_column(String(32))
    session_id: Mapped[str | None] = mapped_column(String(40), default=None)
    nonce: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
