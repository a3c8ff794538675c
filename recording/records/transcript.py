"""The sealed transcript: its format (docs/records.md, "Transcript"), writing it, reading it, rendering it as text.

A transcript is one JSON object per session, sealed when the session ends:

    {
      "format": "mediation-transcript/v1",
      "case_id": "cas_…", "session_id": "ses_…",
      "started_at": "<ISO 8601>", "ended_at": "<ISO 8601>" | null,
      "participants": [{"participant_id": "pty_…", "name": "Li Wei", "role": "borrower"}, …],
      "recordings": {"<participant_id>": {"parts": [<segments in part 0>, <in part 1>, …]}, …},
      "events": [{"at": "<ISO 8601>", "type": "<type>", …fields of the type}, …]
    }

`recordings` gives, for every participant recorded in the session, the number of segments
sealed in each part; the compliance tool needs it to detect parts or segments missing from
the end, which no index gap can show (without it, recordings cannot be called complete).
Event types are the room's socket notices (docs/protocol.md) where one exists, else the past
tense of the request; any other type is still shown, generically, never dropped:

    participant_joined {participant_id, role?, status?, end_to_end?}    participant_left {participant_id, reason?}
    admitted {participant_id, by}             refused {participant_id, by, reason?}
    returned_to_lobby {participant_id, by?, reason?}
    removed {participant_id, by, reason?}     chat_message {seq, participant_id, text | kid + ciphertext, channel}
    message_deleted {seq, by}                 chat_muted {participant_id, by, muted}
    mute_media_requested {participant_id, by, audio, video}
    room_locked {by, locked}                  caucus_started {by, members}
    caucus_ended {by?}                        consent_given {participant_id, notice_sha256?}
    consent_withdrawn {participant_id}        recording_started {}   recording_stopped {reason?}
    session_ended {by?}
    recording_gap {participant_id, part, from, to, file_from, file_to, reason}   (recording.records.gaps)

`by` and `participant_id` name participants listed in `participants`. A chat message sealed
on its own has the shape of the room's `chat_message` notice:
{seq, sent_at, participant_id, name, role, text, channel, deleted?: {by, at}}.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from recording.records.gaps import GAP_REASONS, FiledSegment, recording_gaps

__all__ = [
    "TRANSCRIPT_FORMAT", "RoomEntry", "build_transcript", "chat_seqs", "clean_text", "declared_parts",
    "describe_gap", "read_transcript", "recording_gaps_of", "render_chat", "render_transcript",
]

TRANSCRIPT_FORMAT = "mediation-transcript/v1"

# Text typed by parties is shown to an officer, often in a terminal: control characters
# (ANSI escapes) and bidirectional overrides could hide or disguise what was said.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_INDENT = " " * 11


def clean_text(value: object, *, newlines: bool = False) -> str:
    """Return `value` as text with control and bidi characters shown as \\u escapes."""
    text = value if isinstance(value, str) else str(value)
    if not newlines:
        text = text.replace("\n", "\\n")
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).replace("\t", "\\t")


def _parse_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(dt.timezone.utc)


def _full_time(value: object) -> str:
    parsed = _parse_time(value)
    return parsed.strftime("%Y-%m-%d %H:%M:%S UTC") if parsed else f"(unreadable time {clean_text(value)!r})"


class _People:
    """Display names for participant ids, from the transcript's participant list."""

    def __init__(self, participants: object) -> None:
        self._by_id: dict[str, str] = {}
        if isinstance(participants, list):
            for entry in participants:
                if isinstance(entry, Mapping) and isinstance(entry.get("participant_id"), str):
                    self._by_id[entry["participant_id"]] = self.describe(entry)

    @staticmethod
    def describe(entry: Mapping[str, Any]) -> str:
        name = clean_text(entry.get("name") or entry.get("participant_id") or "unknown")
        role = entry.get("role")
        return f"{name} ({clean_text(role)})" if role else name

    def __call__(self, participant_id: object) -> str:
        if not isinstance(participant_id, str):
            return "someone unnamed"
        return self._by_id.get(participant_id, f"participant {clean_text(participant_id)}")


def _reason(event: Mapping[str, Any]) -> str:
    reason = event.get("reason")
    return f": {clean_text(reason)}" if reason else ""


def _chat_line(person: str, event: Mapping[str, Any]) -> str:
    channel = event.get("channel")
    prefix = "[caucus] " if channel == "caucus" else ""
    if "text" not in event and "ciphertext" in event:
        # End-to-end encrypted, and not decrypted here (no key record opened it): docs/records.md.
        return f"{prefix}#{clean_text(event.get('seq', '?'))} {person}: (encrypted; KID {clean_text(event.get('kid'))}: " \
               "no key opened it)"
    text = clean_text(event.get("text", ""), newlines=True).replace("\n", "\n" + _INDENT + "  ")
    return f"{prefix}#{clean_text(event.get('seq', '?'))} {person}: {text}"


def _describe_event(event: Mapping[str, Any], who: _People, chat: dict[object, Mapping[str, Any]]) -> str:
    kind = event.get("type")
    actor = who(event.get("by")) if "by" in event else None
    subject = who(event.get("participant_id"))
    if kind == "participant_joined":
        status = event.get("status")
        # A browser without a device key: the room was not end-to-end encrypted while it was in (docs/protocol.md).
        clear = " from a browser that cannot encrypt: NOT end-to-end encrypted" if event.get("end_to_end") is False else ""
        return f"{subject} joined" + (f" ({clean_text(status)})" if status else "") + clear
    if kind == "participant_left":
        return f"{subject} left{_reason(event)}"
    if kind == "admitted":
        return f"{actor or 'the mediator'} admitted {subject}"
    if kind == "refused":
        return f"{actor or 'the mediator'} refused {subject}{_reason(event)}"
    if kind == "returned_to_lobby":
        return f"{subject} was returned to the lobby" + (f" by {actor}" if actor else "") + _reason(event)
    if kind == "removed":
        return f"{actor or 'the mediator'} removed {subject}{_reason(event)}"
    if kind == "chat_message":
        return _chat_line(subject, event)
    if kind == "message_deleted":
        seq = event.get("seq")
        original = chat.get(seq) if isinstance(seq, int) else None
        author = f" by {who(original.get('participant_id'))}" if original else ""
        return (f"{actor or 'the mediator'} deleted message #{clean_text(event.get('seq', '?'))}{author} "
                "(hidden from the parties; its text stays in this record)")
    if kind == "chat_muted":
        verb = "muted" if event.get("muted") else "unmuted"
        return f"{actor or 'the mediator'} {verb} the chat of {subject}"
    if kind == "mute_media_requested":
        what = [name for name in ("audio", "video") if event.get(name)]
        return f"{actor or 'the mediator'} asked {subject} to turn off {' and '.join(what) or 'nothing'}"
    if kind == "room_locked":
        return f"{actor or 'the mediator'} {'locked' if event.get('locked') else 'unlocked'} the room"
    if kind == "caucus_started":
        members = event.get("members")
        names = ", ".join(who(m) for m in members) if isinstance(members, list) else "?"
        return f"{actor or 'the mediator'} opened a private caucus with {names}"
    if kind == "caucus_ended":
        return "the caucus ended" + (f" ({actor} closed it)" if actor else "")
    if kind == "consent_given":
        notice = event.get("notice_sha256")
        return f"{subject} consented to recording" + (f" (notice SHA-256 {clean_text(notice)})" if notice else "")
    if kind == "consent_withdrawn":
        return f"{subject} withdrew consent to recording"
    if kind == "recording_started":
        return "recording started"
    if kind == "recording_stopped":
        return "recording stopped" + _reason(event)
    if kind == "session_ended":
        return "the session ended" + (f" ({actor} ended it)" if actor else "")
    if kind == "recording_gap":
        return f"GAP in the recording of {subject}: {describe_gap(event)}"
    fields = ", ".join(f"{clean_text(k)}={clean_text(v)}" for k, v in sorted(event.items()) if k not in ("at", "type"))
    return f"event {clean_text(kind)!r}" + (f": {fields}" if fields else "")


def _clock(value: object) -> str:
    parsed = _parse_time(value)
    return f"{parsed:%H:%M:%S}.{parsed.microsecond // 1000:03d}" if parsed else "?"


def _seconds(value: object) -> str:
    return f"{value:.1f} s" if isinstance(value, (int, float)) and not isinstance(value, bool) else "? s"


def describe_gap(event: Mapping[str, Any]) -> str:
    """One `recording_gap` event as text: the missing range (UTC and in the file) and its reason."""
    start, end = _parse_time(event.get("from")), _parse_time(event.get("to"))
    length = f"{(end - start).total_seconds():.1f} s" if start and end else "unknown length"
    reason = event.get("reason")
    why = GAP_REASONS.get(reason, clean_text(reason)) if isinstance(reason, str) else "no reason given"
    return (f"part {clean_text(event.get('part', '?'))} misses {_clock(event.get('from'))}-{_clock(event.get('to'))} "
            f"UTC ({length}; {_seconds(event.get('file_from'))} to {_seconds(event.get('file_to'))} into the file): "
            f"{clean_text(reason)}: {why}")


def _timed_lines(items: list[tuple[object, str]]) -> list[str]:
    """Prefix each line with [HH:MM:SS] (or dashes for no time), starting a dated section when the UTC day changes."""
    lines: list[str] = []
    day: dt.date | None = None
    for at, text in items:
        if at is None:
            lines.append(f"[--:--:--] {text}")
            continue
        parsed = _parse_time(at)
        if parsed is None:
            lines.append(f"[unreadable time {clean_text(at)!r}] {text}")
            continue
        if parsed.date() != day:
            day = parsed.date()
            lines.append(f"--- {day.isoformat()} (UTC) ---")
        lines.append(f"[{parsed:%H:%M:%S}] {text}")
    return lines


@dataclasses.dataclass(frozen=True)
class RoomEntry:
    """One room event as the audit log holds it: `action` without its "room_" prefix."""

    at: str
    actor: str  # "<role>:<participant_id>", or "system"
    action: str
    detail: Mapping[str, Any]

    @property
    def by(self) -> tuple[str | None, str | None]:
        """(participant_id, role) of the actor; (None, None) for the system."""
        role, _, participant_id = self.actor.partition(":")
        return (participant_id, role) if participant_id else (None, None)


# Room audit actions whose event differs only in name: the notice sent for them.
_NOTICE_OF = {
    "participant_admitted": "admitted", "participant_refused": "refused", "participant_removed": "removed",
    "participant_returned_to_lobby": "returned_to_lobby", "media_mute_requested": "mute_media_requested",
    "caucus_closed": "caucus_ended",
}
# Detail fields that are the audit log's bookkeeping, not part of the event.
_BOOKKEEPING = ("session_id",)


def _event(entry: RoomEntry) -> dict[str, Any]:
    """The transcript event of one room audit entry."""
    by, role = entry.by
    detail = {k: v for k, v in entry.detail.items() if k not in _BOOKKEEPING}
    action = entry.action
    event: dict[str, Any] = {**detail, "at": entry.at, "by": by}
    if action in ("participant_joined", "participant_rejoined"):
        event.update(type="participant_joined", participant_id=by, role=detail.get("role", role),
                     status="again" if action == "participant_rejoined" else None)
        del event["by"]
    elif action in ("participant_left", "participant_disconnected"):
        fallback = "disconnected" if action == "participant_disconnected" else None
        event.update(type="participant_left", participant_id=by, reason=detail.get("reason") or fallback)
        del event["by"]
    elif action in ("chat_muted", "chat_unmuted"):
        event.update(type="chat_muted", muted=action == "chat_muted")
    elif action in ("room_locked", "room_unlocked"):
        event.update(type="room_locked", locked=action == "room_locked")
    elif action in ("consent_given", "consent_withdrawn"):
        event.update(type=action, participant_id=by)
    elif action == "caucus_opened":
        event.update(type="caucus_started", members=[by, detail.get("participant_id")])
        event.pop("participant_id", None)
    else:
        event["type"] = _NOTICE_OF.get(action, action)
    return {k: v for k, v in event.items() if v is not None}


# The suffix of a shared screen's recording source: "<participant_id>-screen" (docs/records.md, "Screen recordings").
SCREEN_SUFFIX = "-screen"


def build_transcript(
    *,
    case_id: str,
    session_id: str,
    ended_at: str,
    entries: Sequence[RoomEntry],
    messages: Sequence[Mapping[str, Any]],
    names: Mapping[str, tuple[str, str]],
    recordings: Mapping[str, list[int]],
    segments: Sequence[FiledSegment] = (),
) -> dict[str, Any]:
    """Return a session's v1 transcript from its room audit entries (in log order) and its chat messages.

    `messages` have the `chat_message` notice's shape; `names` maps participant ids to (name, role)
    from the case; `recordings` maps participant ids to the segments sealed in each part, and
    `segments` says what media each filed segment holds: each gap in it becomes a `recording_gap`
    event. Messages and gaps are placed among the entries by time (stable for ties).
    """
    events = [_event(entry) for entry in entries]
    stops = [(entry.at, entry.detail.get("reason")) for entry in entries if entry.action == "recording_stopped"]
    events += recording_gaps(segments, stops, ended_at)
    people: dict[str, dict[str, Any]] = {}
    for entry in entries:
        by, role = entry.by
        if by is not None:
            people.setdefault(by, {"participant_id": by, "name": by, "role": role})
    for message in messages:
        participant_id = message["participant_id"]
        people[participant_id] = {"participant_id": participant_id, "name": message["name"], "role": message["role"]}
        events.append({"at": message["sent_at"], "type": "chat_message",
                       **{k: message[k] for k in ("seq", "participant_id", "text", "kid", "ciphertext", "channel")
                          if k in message}})
    for event in events:  # a gap names whose recording it is in
        if event["type"] == "recording_gap":
            people.setdefault(event["participant_id"], {"participant_id": event["participant_id"],
                                                        "name": event["participant_id"], "role": None})
    for person in people.values():
        if person["participant_id"] in names:
            person["name"], person["role"] = names[person["participant_id"]]
    for source in recordings:
        # A shared screen is recorded as a source of its own, listed as "<participant> (screen)".
        owner = source.removesuffix(SCREEN_SUFFIX)
        if owner != source and source not in people:
            name, role = names.get(owner, (people.get(owner, {}).get("name", owner), None))
            people[source] = {"participant_id": source, "name": f"{name} (screen)", "role": role,
                              "screen_of": owner}
    events.sort(key=lambda e: parsed.timestamp() if (parsed := _parse_time(e.get("at"))) else float("inf"))
    return {
        "format": TRANSCRIPT_FORMAT, "case_id": case_id, "session_id": session_id,
        "started_at": events[0]["at"] if events else ended_at, "ended_at": ended_at,
        "participants": list(people.values()),
        "recordings": {participant_id: {"parts": list(parts)} for participant_id, parts in recordings.items()},
        "events": events,
    }


def read_transcript(doc: object) -> dict[str, Any]:
    """Return a decrypted v1 transcript; raise ValueError if it is not one."""
    if not isinstance(doc, Mapping):
        raise ValueError("a transcript is a JSON object")
    if doc.get("format") != TRANSCRIPT_FORMAT:
        raise ValueError(f"transcript format is {doc.get('format')!r}, not {TRANSCRIPT_FORMAT!r}")
    events = doc.get("events")
    if not isinstance(events, list) or not all(isinstance(e, Mapping) for e in events):
        raise ValueError("transcript field 'events' is not a list of objects")
    declared_parts(doc)  # raises if `recordings` is malformed
    return dict(doc)


def declared_parts(doc: Mapping[str, Any]) -> dict[str, list[int]] | None:
    """Return participant_id -> segments per part from `recordings`, None if absent; raise ValueError if malformed."""
    if "recordings" not in doc:
        return None
    recordings = doc["recordings"]
    if not isinstance(recordings, Mapping):
        raise ValueError("transcript field 'recordings' is not an object")
    declared: dict[str, list[int]] = {}
    for participant_id, entry in recordings.items():
        parts = entry.get("parts") if isinstance(entry, Mapping) else None
        if not isinstance(parts, list) or not all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in parts):
            raise ValueError(f"transcript gives no valid segment counts for participant {participant_id!r}")
        declared[participant_id] = parts
    return declared


def recording_gaps_of(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Return the transcript's `recording_gap` events, in time order."""
    return [e for e in doc["events"] if e.get("type") == "recording_gap"]


def chat_seqs(doc: Mapping[str, Any]) -> set[int]:
    """Return the seq of every chat message the transcript holds."""
    return {e["seq"] for e in doc["events"] if e.get("type") == "chat_message" and isinstance(e.get("seq"), int)}


def render_transcript(doc: object) -> str:
    """Return a sealed transcript as readable text; raise ValueError if it is not a transcript."""
    doc = read_transcript(doc)
    events = doc["events"]
    who = _People(doc.get("participants"))
    lines = [
        f"Transcript of session {clean_text(doc.get('session_id'))} of case {clean_text(doc.get('case_id'))}",
        f"Started {_full_time(doc.get('started_at'))}",
        ("Ended " + _full_time(doc["ended_at"])) if doc.get("ended_at") else "Ended: not recorded",
        "Participants:",
    ]
    participants = doc.get("participants")
    for entry in participants if isinstance(participants, list) else []:
        if isinstance(entry, Mapping):
            lines.append(f"  {_People.describe(entry)}  [{clean_text(entry.get('participant_id'))}]")
    declared = declared_parts(doc)
    if declared is None:
        lines.append("Recordings: the transcript does not say what was recorded")
    for participant_id, parts in sorted((declared or {}).items()):
        lines.append(f"Recording of {who(participant_id)}: {len(parts)} part(s) of "
                     f"{', '.join(str(n) for n in parts) or 'no'} segment(s)")
    lines.append("Times are UTC.")
    lines.append("")
    chat = {e["seq"]: e for e in events if e.get("type") == "chat_message" and isinstance(e.get("seq"), int)}
    lines += _timed_lines([(e.get("at"), _describe_event(e, who, chat)) for e in events])
    return "\n".join(lines) + "\n"


def render_chat(messages: list[Mapping[str, Any]], missing: Mapping[int, str]) -> str:
    """Return chat messages (room `chat_message` shape) as text, in seq order, marking missing ones."""
    items: list[tuple[int, object, str]] = []
    for message in messages:
        person = _People.describe(message)
        line = _chat_line(person, message)
        deleted = message.get("deleted")
        if isinstance(deleted, Mapping):
            line += f"\n{_INDENT}  (deleted by {clean_text(deleted.get('by'))} at {_full_time(deleted.get('at'))})"
        items.append((message.get("seq") if isinstance(message.get("seq"), int) else -1, message.get("sent_at"), line))
    for seq, why in missing.items():
        items.append((seq, None, f"#{seq} MISSING: {why}"))
    items.sort(key=lambda item: item[0])
    return "\n".join(_timed_lines([(at, text) for _, at, text in items])) + "\n"
