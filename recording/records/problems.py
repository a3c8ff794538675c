"""What a verifier reports: a problem is a code from docs/records.md and a message that quotes what was found.

The Python verifier (recording/compliance) and the JS verifier (web_client/src/lib/compliance)
report the same codes for the same fault; tests/fixtures/tampering.json holds them to it.
"""

from __future__ import annotations

import dataclasses

__all__ = ["PROBLEM_CODES", "WARNING_CODES", "Problem"]

# Every code a verifier may report, as docs/records.md lists them (a test compares the two).
PROBLEM_CODES = frozenset({
    "manifest_error", "manifest_wrong_case", "malformed_entry", "listed_twice", "nothing_listed",
    "no_audit_key", "audit_key_unusable", "ed25519_unsupported",
    "checkpoint_untrusted_key", "checkpoint_bad_signature", "checkpoint_unverifiable", "audit_fork",
    "audit_leaf_mismatch", "audit_not_included", "audit_entry_not_json", "audit_entry_not_object",
    "audit_seq_mismatch", "audit_wrong_case", "audit_no_detail", "audit_field_absent", "audit_field_mismatch",
    "not_on_case", "download_failed", "truncated", "too_long", "sha256_mismatch",
    "not_sealed_to_you", "decrypt_auth_failed", "decrypt_failed",
    "bad_transcript", "bad_chat_message", "bad_key_record", "undecryptable_chat", "missing_indices", "missing_parts", "no_transcript",
    "transcript_no_recordings", "recording_gap",
    # the witnessed log: checkpoint notes, witness cosignatures, pins
    "checkpoint_note_malformed", "checkpoint_note_bad_signature", "checkpoint_not_witnessed",
    "checkpoint_inconsistent", "no_checkpoint_note",
})
WARNING_CODES = frozenset({
    "audit_key_not_pinned", "audit_key_not_the_pinned_one", "recording_nothing_verified", "listed_not_in_manifest",
    "recording_not_indexed", "checkpoint_not_pinned",
})


@dataclasses.dataclass(frozen=True)
class Problem:
    """A problem (or, with a warning code, a warning) found in a bundle."""

    code: str
    message: str

    def __post_init__(self) -> None:
        if self.code not in PROBLEM_CODES | WARNING_CODES:
            raise ValueError(f"problem code {self.code!r} is not in docs/records.md")

    def __str__(self) -> str:
        return self.message
