"""Operator commands: create the first administrator, verify the audit log, sign a checkpoint."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from pathlib import Path

from recording.records.checkpoint import key_id, load_public_key
from server.accounts import Accounts
from server.agreements import verify_signed_agreement
from server.audit import AuditLog, load_or_create_signing_key, verify_log
from server.database import Database
from server.passwords import PasswordRefused, check_password
from server.schemas import StaffCreateIn
from server.settings import Settings, SettingsError


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
        audit = AuditLog(db, load_or_create_signing_key(settings.audit_key_path))
        accounts = Accounts(settings, db, audit)
        user = await accounts.create_staff(username=body.username, display_name=body.display_name,
                                           role="administrator", password=body.password, actor="operator:cli")
        await audit.checkpoint()
    finally:
        await db.close()
    print(f"created administrator {user.username} ({user.user_id})")
    return 0


async def _verify(settings: Settings, public_keys: list[Path], checkpoint_first: bool) -> int:
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
                await AuditLog(db, signing).checkpoint()
        report = await verify_log(db, trusted)
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
    print("audit log verified" if report.ok else "AUDIT LOG FAILED VERIFICATION")
    return 0 if report.ok else 1


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
    elif args.command == "verify-agreement":
        code = _verify_agreement(settings, args.file, args.public_key)
    else:
        code = asyncio.run(_verify(settings, args.public_key, args.checkpoint))
    raise SystemExit(code)


if __name__ == "__main__":
    main()
