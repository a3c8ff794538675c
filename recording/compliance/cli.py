"""The compliance officer's command line: fetch a case's bundle, then verify and open it offline.

    mediation-compliance fetch --server URL --case cas_… --bundle DIR      (token in MEDIATION_TOKEN)
    mediation-compliance open --identity KEYFILE --bundle DIR --out OUTDIR [--audit-public-key PEM]
    mediation-compliance recipients --server URL --audit-public-key PEM     (token in MEDIATION_TOKEN)
    mediation-compliance export --identity KEYFILE --bundle DIR --out FILE.webm [--session ses_…] [--incomplete]

Spec of what is checked and of the problem codes reported: docs/records.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from recording.compliance.export import DEFAULT_TILE, ExportError, check_output, export_session, parse_tile
from recording.compliance.fetch import FetchError, fetch_bundle
from recording.compliance.open import SetupError, load_identities, open_bundle
from recording.records.checkpoint import NoteError, parse_vkey
from recording.compliance.recipients import check_served_statement, fetch_statement, render_statement
from recording.records.manifest import BundleError
from recording.records.statement import StatementRefused

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mediation-compliance",
                                     description="Verify and open a downloaded case bundle of sealed records.")
    commands = parser.add_subparsers(dest="command", required=True)
    opener = commands.add_parser("open", help="verify every object against the signed audit log, decrypt, join")
    opener.add_argument("--out", required=True, type=Path, help="new or empty directory for the results")
    _verifying(opener)
    exporter = commands.add_parser("export", help="verify, then compose one session into a single side-by-side "
                                                  "video file for reviewers (needs ffmpeg)")
    exporter.add_argument("--out", required=True, type=Path, help="new file to write: FILE.webm or FILE.mp4")
    exporter.add_argument("--session", help="the session to export (ses_…); needed when the bundle holds several")
    exporter.add_argument("--incomplete", action="store_true",
                          help="export even though verification found problems (the file says INCOMPLETE)")
    exporter.add_argument("--tile", type=parse_tile, default=DEFAULT_TILE, metavar="WxH",
                          help="each participant's tile, in pixels (default 480x360)")
    _verifying(exporter)
    fetcher = commands.add_parser("fetch", help="download a case's bundle (token in MEDIATION_TOKEN)")
    fetcher.add_argument("--pin", type=Path, help="your pin file: the bundle carries the consistency proof from it")
    fetcher.add_argument("--server", required=True, help="the server's base URL")
    fetcher.add_argument("--case", required=True, help="the case id (cas_…)")
    fetcher.add_argument("--bundle", required=True, type=Path, help="new directory for the bundle")
    statement = commands.add_parser("recipients", help="check the signed statement of who records are sealed to")
    source = statement.add_mutually_exclusive_group(required=True)
    source.add_argument("--server", help="the server's base URL (token in MEDIATION_TOKEN)")
    source.add_argument("--file", type=Path, help="a statement saved from GET /api/compliance/recipients")
    statement.add_argument("--audit-public-key", action="append", default=[], type=Path, metavar="PEM",
                           help="the server's audit public key as published (repeatable)")
    return parser


def _verifying(command: argparse.ArgumentParser) -> None:
    """The options of every command that verifies a bundle."""
    command.add_argument("--identity", required=True, type=Path, help="age identity file (AGE-SECRET-KEY-1…)")
    command.add_argument("--bundle", required=True, type=Path, help="directory holding manifest.json and the objects")
    command.add_argument("--audit-public-key", action="append", default=[], type=Path, metavar="PEM",
                         help="the server's audit public key as published (repeatable); without it the key "
                              "inside the bundle is trusted, with a warning")
    command.add_argument("--pin", type=Path, help="file holding the last checkpoint you accepted: the bundle's must "
                         "extend it (it is replaced by the bundle's when that passes)")
    command.add_argument("--witness-key", action="append", default=[], metavar="VKEY",
                         help="a witness's verifier key (repeatable)")
    command.add_argument("--witness-quorum", type=int, help="cosignatures required (default: every witness key)")


def _export(args: argparse.Namespace, identities: list, witnesses: list, quorum: int) -> int:
    try:
        exported = export_session(args.bundle, identities, args.audit_public_key, args.out, session_id=args.session,
                                  allow_incomplete=args.incomplete, pin=args.pin, witnesses=witnesses, quorum=quorum,
                                  tile=args.tile)
    except ExportError as exc:
        print(f"mediation-compliance: export refused: [{exc.code}] {exc}", file=sys.stderr)
        return exc.status
    roles = ", ".join(tile.label for tile in exported.tiles)
    print(f"exported session {exported.session_id}: {exported.duration:.1f} s, {len(exported.tiles)} tile(s) "
          f"side by side ({roles}) into {exported.path}")
    if exported.complete:
        print("RESULT: COMPLETE - every object verified against the signed audit log")
        return 0
    for _, problem in exported.report.problems:
        print(f"  ! [{problem.code}] {problem.message}")
    print(f"RESULT: INCOMPLETE - exported as asked (--incomplete) with {len(exported.report.problems)} problem(s); "
          "the file says INCOMPLETE on every frame and in its metadata")
    return 1


def _recipients(args: argparse.Namespace) -> int:
    try:
        if args.file is not None:
            served = json.loads(args.file.read_bytes())
        else:
            token = os.environ.get("MEDIATION_TOKEN", "")
            if not token:
                print("mediation-compliance: set MEDIATION_TOKEN to your staff session token", file=sys.stderr)
                return 2
            served = fetch_statement(args.server, token)
        if not isinstance(served, dict):
            raise StatementRefused("the statement file is not a JSON object")
        statement = check_served_statement(served, args.audit_public_key)
    except (StatementRefused, OSError, ValueError) as exc:
        print(f"mediation-compliance: PROBLEM: recipient statement refused: {exc}", file=sys.stderr)
        return 1
    print(render_statement(statement, pinned=bool(args.audit_public_key)), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "recipients":
        return _recipients(args)
    if args.command == "fetch":
        token = os.environ.get("MEDIATION_TOKEN", "")
        if not token:
            print("mediation-compliance: set MEDIATION_TOKEN to your staff session token", file=sys.stderr)
            return 2
        try:
            count, problems = fetch_bundle(args.server, args.case, token, args.bundle, args.pin)
        except (FetchError, ValueError, OSError) as exc:
            print(f"mediation-compliance: fetch failed: {exc}", file=sys.stderr)
            return 1
        for problem in problems:
            print(f"  ! [{problem.code}] {problem.message}")
        print(f"fetched {count} sealed objects into {args.bundle}"
              + (f"; {len(problems)} could not be fetched" if problems else "")
              + "; now run: mediation-compliance open")
        return 1 if problems else 0
    try:
        witnesses = [parse_vkey(key) for key in args.witness_key]
    except NoteError as exc:
        print(f"mediation-compliance: {exc}", file=sys.stderr)
        return 2
    quorum = len(witnesses) if args.witness_quorum is None else args.witness_quorum
    if args.command == "export":
        try:
            check_output(args.out)
            identities = load_identities(args.identity)
            return _export(args, identities, witnesses, quorum)
        except ExportError as exc:
            print(f"mediation-compliance: export refused: [{exc.code}] {exc}", file=sys.stderr)
            return exc.status
        except SetupError as exc:
            print(f"mediation-compliance: {exc}", file=sys.stderr)
            return 2
        except BundleError as exc:
            print(f"mediation-compliance: export refused: [{exc.code}] {exc}\nRESULT: INCOMPLETE - nothing was "
                  "exported", file=sys.stderr)
            return 1
    try:
        identities = load_identities(args.identity)
        report = open_bundle(args.bundle, identities, args.audit_public_key, args.out, pin=args.pin,
                             witnesses=witnesses, quorum=quorum)
    except SetupError as exc:
        print(f"mediation-compliance: {exc}", file=sys.stderr)
        return 2
    except BundleError as exc:
        print(f"mediation-compliance: PROBLEM: [{exc.code}] {exc}\nRESULT: INCOMPLETE - nothing was opened",
              file=sys.stderr)
        return 1
    print(report.render(), end="")
    if not report.complete:
        print(f"mediation-compliance: {len(report.problems)} problem(s) found; see {args.out / 'REPORT.txt'}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
