"""Operator commands: create the first administrator, verify the audit log, sign a checkpoint."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recording.records.checkpoint import NoteError, Pin, key_id, load_public_key, parse_vkey, vkey
from server.accounts import Accounts
from server.agreements import verify_signed_agreement
from server.audit import AuditLog, default_origin, head_copy_paths, load_or_create_signing_key, verify_log
from server.database import Database
from server.passwords import PasswordRefused, check_password
from server.schemas import StaffCreateIn
from server.settings import Settings, SettingsError


def _audit_log(settings: Settings, db: Database, signing: Ed25519PrivateKey) -> AuditLog:
    """The audit log as the server keeps it: same origin, same copies outside the database (no witnesses)."""
    return AuditLog(db, signing, origin=settings.audit_origin,
                    copies=head_copy_paths(settings.audit_key_path, settings.records_dir, settings.audit_checkpoint_file))


def _read_password(prompt: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("again: ") != first:
            raise SystemExit("passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")


async def _create_admin(settings: Settings, username: str, display_name: str) -> int:
    password = _read_password(f"password for {username}: ")
    try:
        body = StaffCreateIn(username=username, display_name=display_name, role="administrator", password=password)
    except ValueError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    try:
        check_password(body.password, username=body.username)
    except PasswordRefused as exc:
        print(f"refused: {exc.message}", file=sys.stderr)
        return 2
    db = Database(settings.effective_database_url)
    try:
        await db.migrate()
        audit = _audit_log(settings, db, load_or_create_signing_key(settings.audit_key_path))
        accounts = Accounts(settings, db, audit)
        user = await accounts.create_staff(username=body.username, display_name=body.display_name,
                                           role="administrator", password=body.password, actor="operator:cli")
        await audit.checkpoint()
    finally:
        await db.close()
    print(f"created administrator {user.username} ({user.user_id})")
    return 0


async def _verify(settings: Settings, public_keys: list[Path], checkpoint_first: bool, pin_path: Path | None = None,
                  witness_keys: tuple[str, ...] = (), quorum: int | None = None) -> int:
    try:
        witnesses = [parse_vkey(k) for k in witness_keys]
        pin = Pin.parse(pin_path.read_text(encoding="utf-8")) if pin_path and pin_path.exists() else None
    except (OSError, NoteError) as exc:
        print(f"mediation-admin: cannot use the pin or witness keys: {exc}", file=sys.stderr)
        return 2
    db = Database(settings.effective_database_url)
    try:
        trusted = {}
        for path in public_keys:
            public = load_public_key(path.read_bytes())
            trusted[key_id(public)] = public
        if not public_keys or checkpoint_first:
            signing = load_or_create_signing_key(settings.audit_key_path)
            trusted[key_id(signing.public_key())] = signing.public_key()
            if checkpoint_first:
                await _audit_log(settings, db, signing).checkpoint()
        report = await verify_log(db, trusted, pin=pin, witnesses=witnesses,
                                  quorum=len(witnesses) if quorum is None else quorum)
    finally:
        await db.close()
    print(f"entries: {report.entries}, pending (not yet sequenced, not verified): {report.pending}, "
          f"checkpoints: {report.checkpoints}, "
          f"inclusion proofs: {report.inclusion_proofs_checked}, "
          f"consistency proofs: {report.consistency_proofs_checked}, "
          f"entries after the last checkpoint: {report.unsigned_tail}")
    for problem in report.problems[:200]:
        print(f"PROBLEM: {problem}")
    if len(report.problems) > 200:
        print(f"... and {len(report.problems) - 200} more problems")
    if pin_path is not None:
        print(f"pinned checkpoint: size {pin.head.tree_size}" if pin else f"no pin yet at {pin_path}")
    if report.ok and pin_path is not None and report.latest_note is not None:
        _write_pin(pin_path, report.latest_note)
        print(f"pin updated: {pin_path}")
    print("audit log verified" if report.ok else "AUDIT LOG FAILED VERIFICATION")
    return 0 if report.ok else 1


def _write_pin(path: Path, note: str) -> None:
    """Replace the pin file with the accepted checkpoint note (0600)."""
    temporary = path.with_name(path.name + ".~tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(note)
    os.replace(temporary, path)


def _audit_vkey(settings: Settings) -> int:
    public = load_or_create_signing_key(settings.audit_key_path).public_key()
    print(vkey(settings.audit_origin or default_origin(public), public))
    return 0


def _verify_agreement(settings: Settings, path: Path, public_keys: list[Path]) -> int:
    try:
        signed = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        print(f"cannot read {path}: {exc}", file=sys.stderr)
        return 2
    trusted = {}
    for key_path in public_keys:
        public = load_public_key(key_path.read_bytes())
        trusted[key_id(public)] = public
    if not public_keys:
        own = load_or_create_signing_key(settings.audit_key_path).public_key()
        trusted[key_id(own)] = own
    problems = verify_signed_agreement(signed, trusted) if isinstance(signed, dict) else ["not a JSON object"]
    for problem in problems:
        print(f"PROBLEM: {problem}")
    if problems:
        print("AGREEMENT FAILED VERIFICATION")
        return 1
    document = signed["document"]
    for entry in signed["signatures"]:
        enrolment = entry.get("enrolment")
        if isinstance(enrolment, dict):
            how = (f"device {enrolment.get('enrolment_id')} enrolled {enrolment.get('enrolled_at')} with a code sent by "
                   f"{enrolment.get('channel')} ({enrolment.get('code_id')}), key fingerprint "
                   f"{enrolment.get('fingerprint')}")
        else:
            how = "no device enrolment recorded (signed before enrolment was required)"
        print(f"{entry['signer']} signed {entry['signed_at']}: {how}")
    print(f"agreement {document['agreement_id']} version {document['version']} of case {document['case_number']}: "
          f"signed by {', '.join(s['signer'] for s in signed['signatures'])} and countersigned; verified")
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mediation-admin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-admin", help="create an administrator (password on stdin)")
    create.add_argument("username")
    create.add_argument("--display-name", default="Administrator")
    verify = commands.add_parser("verify-audit", help="check every entry, checkpoint signature and proof")
    verify.add_argument("--public-key", type=Path, action="append", default=[],
                        help="trusted checkpoint key (PEM); default: the server's own key")
    verify.add_argument("--checkpoint", action="store_true",
                        help="sequence pending entries and sign a checkpoint of the tree first")
    verify.add_argument("--pin", type=Path, help="file holding the last checkpoint accepted: the log must "
                        "extend it; replaced by the latest checkpoint when the log verifies")
    verify.add_argument("--witness-key", action="append", default=[], metavar="VKEY",
                        help="a witness's verifier key (repeatable)")
    verify.add_argument("--witness-quorum", type=int, help="cosignatures required (default: every witness key)")
    commands.add_parser("audit-vkey", help="print the audit log's C2SP verifier key (for witnesses and verifiers)")
    agreement = commands.add_parser("verify-agreement", help="check a signed agreement offline")
    agreement.add_argument("file", type=Path, help="the signed agreement JSON")
    agreement.add_argument("--public-key", type=Path, action="append", default=[],
                           help="the server's audit key (PEM); default: this server's own key")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        parser.exit(2, f"mediation-admin: {exc}\n")
    if args.command == "create-admin":
        code = asyncio.run(_create_admin(settings, args.username, args.display_name))
    elif args.command == "audit-vkey":
        code = _audit_vkey(settings)
    elif args.command == "verify-agreement":
        code = _verify_agreement(settings, args.file, args.public_key)
    else:
        code = asyncio.run(_verify(settings, args.public_key, args.checkpoint, args.pin, tuple(args.witness_key),
                                   args.witness_quorum))
    raise SystemExit(code)


if __name__ == "__main__":
    main()
