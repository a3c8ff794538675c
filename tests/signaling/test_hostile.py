"""Hostile and random payloads at every room event, from every kind of participant; the room survives.

The event names, payload fields, senders and error codes come from ``docs/protocol.md`` (parsed here), so a
request added to the protocol is fired at without touching this file. Payloads are harvested from hypothesis
strategies (deterministic: ``derandomize``), plus a fixed corpus of nasties: non-objects, arrays, extra keys,
wrong types for every field, NUL, lone surrogates, RTL overrides, 100 KB strings, NaN/Infinity (the Python
client encodes them as the bare ``NaN``/``Infinity`` literals the server's decoder accepts), ints of up to 99
digits (the server's decoder refuses more), nesting a few hundred deep (the client's encoder refuses more),
other rooms' participant ids, several positional arguments, none at all.

For each request the ack must be ``{ok: false, error, message}`` with a code the protocol allows for that
event and sender (or ``ok: true`` when the payload happens to be valid), and each participant's ``error``
events must be exactly the failures of its own requests. No ERROR may be logged. Afterwards the room still
works: chat with the next seq, admission, the signal relay, nobody disconnected.

Frames the client library would never build (raw socket.io packets) are a separate test; so are the rate
limits, hostile handshakes, and the bugs this file found (fixed).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import json
import logging
import math
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest
import socketio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from signaling.requests import REQUESTS
from tests.conftest import walk_to_scheduled
from tests.signaling.conftest import Session, issue_link
from tests.signaling.peer import Participant
from tests.signaling.protocol_doc import PROTOCOL, rows as _rows, section as _section

OFFER = {"type": "offer", "sdp": "v=0\r\n"}
ACK_WAIT = 10.0
# Under engine.io's 256 KiB frame limit (max_http_buffer_size): a larger frame closes the sender's socket,
# which the raw-frame test checks on its own.
MAX_FRAME = 200_000
# Requests metered by the chat bucket (5/s, burst 10); every other request by the signaling one (100/s, 300).
CHAT_BUCKET = frozenset(event for event, request in REQUESTS.items() if request.bucket == "chat")
# A valid one of these ends the sender's part in the room: never sent valid during the fire.
ENDS_PARTICIPATION = frozenset({"leave_room", "end_session"})
# Mediator requests whose valid form changes someone else's place in the room: never aimed at real members.
MOVES_MEMBERS = frozenset({"admit", "refuse", "return_to_lobby", "remove_participant", "open_caucus", "mute_chat"})
# The only requests aimed at real members of this room: their valid form harms nobody.
HARMLESS_TO_TARGET = frozenset({"signal", "request_mute_media"})


# --- the protocol, as docs/protocol.md states it --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Request:
    name: str
    fields: dict[str, bool]  # field -> optional
    who: str  # "mediator" | "admitted" | "joined" | "" (not stated in a form this test knows)
    extra_codes: frozenset[str]


@dataclasses.dataclass(frozen=True)
class Protocol:
    shared_codes: frozenset[str]
    connect_codes: frozenset[str]
    requests: dict[str, Request]

    @property
    def all_codes(self) -> frozenset[str]:
        return self.shared_codes.union(*(r.extra_codes for r in self.requests.values()))


def parse_protocol(path: Path = PROTOCOL) -> Protocol:
    text = path.read_text(encoding="utf-8")
    shared = frozenset(re.match(r"`(\w+)`", row[0]).group(1)
                       for row in _rows(_section(text, "Acknowledgements and errors")))
    connect = frozenset(re.match(r"`(\w+)`", row[0]).group(1) for row in _rows(_section(text, "Connecting"))
                        if len(row) == 2 and re.fullmatch(r"`[a-z_]+`", row[0]))
    requests = {}
    for row in _rows(_section(text, "Client requests")):
        name = re.match(r"`(\w+)`", row[0]).group(1)
        shape = re.search(r"`\{([^`]*)\}`", row[1])
        fields = {}
        for item in (shape.group(1).split(",") if shape else []):
            item = item.strip()
            field = item.split(":")[0].strip()
            if field:
                fields[field.rstrip("?")] = field.endswith("?")
        who_text = row[2].lower()
        who = ("mediator" if who_text.startswith("mediator") else "admitted" if who_text.startswith("admitted")
               else "joined" if ("joined" in who_text or "connected" in who_text) else "")
        extra = frozenset(re.findall(r"`([a-z_]+)`", row[4])) if len(row) > 4 else frozenset()
        requests[name] = Request(name=name, fields=fields, who=who, extra_codes=extra)
    return Protocol(shared_codes=shared, connect_codes=connect, requests=requests)


def implemented_requests() -> set[str]:
    return set(REQUESTS)


# --- who sends, and what the protocol lets each request answer ------------------------------------------------


@dataclasses.dataclass
class Sender:
    label: str
    peer: Participant
    role: str  # mediator | bank_representative | borrower | lender
    joined: bool
    admitted: bool


@dataclasses.dataclass(frozen=True)
class Expectation:
    codes: frozenset[str]
    ok_allowed: bool


FIELD_KIND = {
    "participant_id": "id", "to": "id", "text": "text", "reason": "reason", "kind": "kind", "payload": "object",
    "seq": "seq", "notice_sha256": "text", "active": "bool", "audio": "bool", "video": "bool", "muted": "bool",
    "locked": "bool",
}
SIGNAL_KINDS = ("offer", "answer", "ice_candidate")


def surely_invalid(protocol: Protocol, event: str, args: tuple) -> bool:
    """True when the documented shape alone rules the payload out (not an object, unknown or missing field,
    a field of the wrong JSON type, a documented bound exceeded)."""
    if len(args) > 1:
        return True
    data = args[0] if args else None
    data = {} if data is None else data
    if not isinstance(data, dict):
        return True
    spec = protocol.requests.get(event)
    if spec is None:
        return False
    if set(data) - set(spec.fields):
        return True
    if any(not optional and name not in data for name, optional in spec.fields.items()):
        return True
    for name, value in data.items():
        kind = FIELD_KIND.get(name)
        if kind == "bool" and not isinstance(value, bool):
            return True
        if kind in ("id", "text", "reason", "kind") and not isinstance(value, str):
            return True
        if kind == "kind" and value not in SIGNAL_KINDS:
            return True
        if kind == "reason" and len(value) > 200:
            return True
        if kind == "seq" and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            return True
        if kind == "object" and not isinstance(value, dict):
            return True
    return False


def expectation(protocol: Protocol, sender: Sender, event: str, args: tuple) -> Expectation:
    spec = protocol.requests.get(event)
    if spec is None:
        if event in implemented_requests():  # served but undocumented: no code is wrong but the failures
            return Expectation(protocol.all_codes - {"internal", "rate_limited"}, True)
        return Expectation(frozenset({"unknown_event"}), False)
    invalid = surely_invalid(protocol, event, args)
    if not sender.joined and event != "join_room":
        # The protocol says not_joined comes first; several arguments may be refused before that.
        return Expectation(frozenset({"not_joined"} | ({"invalid_payload"} if len(args) > 1 else set())), False)
    refusals: set[str] = set()
    if spec.who == "mediator" and sender.role != "mediator":
        refusals = {"forbidden", "not_admitted"}
    elif spec.who == "admitted" and not sender.admitted:
        refusals = {"not_admitted"}
    elif spec.who == "":
        refusals = {"forbidden", "not_admitted"}
    if invalid:
        # A permitted sender learns invalid_payload; others may learn either, the order is not documented.
        return Expectation(frozenset({"invalid_payload"} | refusals), False)
    codes = {"invalid_payload"} | refusals | spec.extra_codes
    if any(FIELD_KIND.get(f) == "id" for f in spec.fields):
        codes.add("unknown_participant")
    return Expectation(frozenset(codes), not refusals or spec.who == "")


def changes_membership(protocol: Protocol, joined: bool, event: str, args: tuple) -> bool:
    """Whether the request, if valid, would take a member out of the room (we keep those out of the fire)."""
    if surely_invalid(protocol, event, args) or event not in protocol.requests:
        return False
    if event in ENDS_PARTICIPATION:
        return joined
    if event == "join_room":
        return not joined
    return False


# --- hostile values -------------------------------------------------------------------------------------------


def _nested(depth: int, leaf: Any = None, *, as_dict: bool = False) -> Any:
    value = leaf
    for i in range(depth):
        value = {"k": value} if as_dict and i % 2 else [value]
    return value


HOSTILE_STRINGS = [
    "", " ", "\n", "\t", "\r\n", "   \n\t  ", "\x00", "a\x00b", "\x07bell", "\x1b[31mred", "\x7f",
    "\u202eevil\u202c", "\u202dltr", "abc\u2066isolate", "\u2028", "\u2029", "\ufeffbom", "\u200b", "\u00ad",
    "\ud800", "\udfff", "a\udc00b", "\ud83d\ude00", "😀", "👨‍👩‍👧‍👦", "e\u0301", "\u0344", "\U0001d160" * 700,
    "\U0010ffff", "\ue000", "名" * 2000, "x" * 2000, "x" * 2001, "x" * 8000, "x" * 8001, "x" * 100_000,
    " " * 3000 + "y", "\u0301" * 5000, "<script>alert(1)</script>", "'; DROP TABLE rooms; --", "%s%n%x",
    "${jndi:ldap://127.0.0.1/x}", "../../../etc/passwd", "\\", '"', "null", "true", "0", "NaN", "{}", "[]",
    "pty_" + "0" * 32, "usr_" + "f" * 32, "rcd_" + "a" * 32, "rec_" + "a" * 32, "ses_" + "0" * 32, "0" * 64,
    "jln_" + "A" * 43,
    "pty_" + "0" * 31, "pty_" + "0" * 33, "PTY_" + "0" * 32, "pty_" + "G" * 32, "pty_" + "0" * 32 + "\n",
]
HOSTILE_NUMBERS = [0, -1, 1, 2**31, -(2**31) - 1, 2**53 + 1, -(2**63), 2**64, 10**99 - 1, -(10**99) + 1, 0.5, -0.0,
                   1e308, -1e308, 5e-324, math.nan, math.inf, -math.inf]
HOSTILE_VALUES = [None, True, False, *HOSTILE_NUMBERS, *HOSTILE_STRINGS[:12], "\ud800", "x" * 100_000, [], {},
                  [None], [{}], {"": None}, {"__proto__": {"admin": True}}, {"constructor": {"prototype": {}}},
                  _nested(300), _nested(200, "x", as_dict=True), list(range(2000)), {str(i): i for i in range(500)}]
ICE = {"candidate": "candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
SIGNAL_PAYLOADS = [
    OFFER, {"type": "answer", "sdp": "v=0\r\n"}, ICE, {"candidate": None}, {**ICE, "usernameFragment": "abcd"},
    {"type": "offer", "sdp": "v=0\r\n", "extra": 1}, {"type": "answer", "sdp": 0}, {"type": "offer"}, {"sdp": "x"},
    {"candidate": 5}, {**ICE, "sdpMLineIndex": -1}, {**ICE, "sdpMLineIndex": 64}, {**ICE, "sdpMLineIndex": True},
    {**ICE, "sdpMLineIndex": 1.5}, {**ICE, "sdpMid": 0}, {**ICE, "evil": "x"}, {"type": "offer", "sdp": "x" * 70_000},
    {"type": "offer", "sdp": "v=0\r\n" + "a=x\r\n" * 10_000}, {"candidate": None, "usernameFragment": math.nan},
    {"candidate": None, "usernameFragment": _nested(300)}, {"candidate": None, "usernameFragment": 10**99 - 1},
    {}, {"type": "offer", "sdp": "\ud800"}, {"type": "offer", "sdp": "\x00"},
]


@functools.lru_cache(maxsize=None)
def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(), st.booleans(),
        st.integers(min_value=-(10**99) + 1, max_value=10**99 - 1),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=40),
        st.sampled_from(HOSTILE_STRINGS + HOSTILE_NUMBERS),
    )
    keys = st.one_of(st.text(max_size=12), st.sampled_from(
        ["", "ok", "error", "event", "seq", "to", "from", "__proto__", "participant_id", "text", "\x00", "\ud800"]))
    return st.recursive(leaves, lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)), max_leaves=max_leaves)


@dataclasses.dataclass
class Ids:
    """Participant ids a payload may name: the sender's own, other rooms', made-up ones and (where harmless) real
    members of this room."""

    own: str | None
    members: list[str]
    strangers: list[str]

    def pool(self, event: str) -> list[str]:
        ids = [*self.strangers, "pty_" + "0" * 32, "usr_" + "e" * 32, "rcd_" + "1" * 32]
        if self.own:
            ids.append(self.own)
        if event in HARMLESS_TO_TARGET:
            ids += [m for m in self.members if m != self.own]
        return ids


def field_values(kind: str | None, ids: list[str]) -> st.SearchStrategy[Any]:
    """A plausible value of the field's kind, a hostile one of the same JSON type, or anything at all."""
    anything = st.one_of(st.sampled_from(HOSTILE_VALUES), json_values(6))
    plausible = {
        "id": st.sampled_from(ids) if ids else st.just("pty_" + "0" * 32),
        "text": st.one_of(st.text(min_size=1, max_size=60), st.sampled_from(HOSTILE_STRINGS)),
        "reason": st.one_of(st.text(max_size=40), st.sampled_from(HOSTILE_STRINGS), st.just("r" * 201)),
        "kind": st.sampled_from([*SIGNAL_KINDS, "OFFER", "", "candidate", "offer\x00"]),
        "object": st.sampled_from(SIGNAL_PAYLOADS),
        "seq": st.one_of(st.integers(min_value=-5, max_value=20), st.sampled_from(
            [0, -1, 10**9, 10**9 + 1, 2**31, 2**63, -(2**63), 10**99 - 1, -(10**99) + 1])),
        "bool": st.booleans(),
    }.get(kind or "", anything)
    return st.one_of(plausible, plausible, anything)


def args_strategy(protocol: Protocol, event: str, ids: Ids) -> st.SearchStrategy[tuple]:
    spec = protocol.requests.get(event)
    fields = spec.fields if spec else {"participant_id": False, "text": True}
    pool = ids.pool(event)
    required = {name: field_values(FIELD_KIND.get(name), pool) for name, opt in fields.items() if not opt}
    optional = {name: field_values(FIELD_KIND.get(name), pool) for name, opt in fields.items() if opt}
    shaped = st.fixed_dictionaries(required, optional=optional)
    extra_keys = st.dictionaries(st.one_of(st.text(max_size=10), st.sampled_from(["__proto__", "ok", "seq", "from"])),
                                 json_values(4), min_size=1, max_size=3)
    payload = st.one_of(
        shaped, shaped, shaped,
        st.builds(lambda extra, base: {**extra, **base}, extra_keys, shaped),  # extra keys
        st.builds(lambda base, drop: {k: v for k, v in base.items() if k != drop},  # a missing field
                  shaped, st.sampled_from(sorted(fields) or [""])),
        st.lists(shaped, min_size=1, max_size=2),  # an array instead of an object
        json_values(),
    )
    return st.one_of(
        st.tuples(payload), st.tuples(payload), st.tuples(payload),
        st.tuples(payload, json_values(4)),  # two positional arguments
        st.tuples(payload, payload, json_values(2)),
        st.just(()), st.just((None,)),
    )


def harvest(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """``count`` examples from a strategy, deterministic from run to run (no ``.example()``)."""
    found: list[Any] = []

    @settings(max_examples=count, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    collect()
    return found


def corpus(protocol: Protocol, event: str, ids: Ids) -> dict[str, list[tuple]]:
    """The fixed part, by group: hostile whole payloads, and hostile values for each field in turn."""
    spec = protocol.requests.get(event)
    fields = spec.fields if spec else {}
    pool = ids.pool(event)
    good: dict[str, Any] = {}
    for name in fields:
        good[name] = {"id": pool[0], "text": "hello", "reason": "because", "kind": "offer", "object": OFFER,
                      "seq": 1, "bool": False}.get(FIELD_KIND.get(name, ""), "x")
    groups: dict[str, list[tuple]] = {"": [
        (), (None,), ([],), ([good],), ("a string",), (0,), (True,), (1.5,), (math.nan,), (-math.inf,),
        ("x" * 100_000,), (_nested(300),), ({**good, "unexpected": True},), ({**good, "__proto__": {"x": 1}},),
        (good, good), (good, None), ("a", "b", "c"), ({"\ud800": "\u202e"},), (list(good.values()),),
    ]}
    for name in fields:
        cases = [({k: v for k, v in good.items() if k != name},)]
        cases += [({**good, name: value},) for value in HOSTILE_VALUES]
        if FIELD_KIND.get(name) in ("id", "text", "reason"):
            cases += [({**good, name: s},) for s in HOSTILE_STRINGS]
        if FIELD_KIND.get(name) == "id":
            cases += [({**good, name: other},) for other in pool]
        if FIELD_KIND.get(name) == "object":
            cases += [({**good, name: p},) for p in SIGNAL_PAYLOADS]
        groups[name] = cases
    return groups


ODD_NAMES = [
    "connect", "disconnect", "message", "connect_error", "error", "room_state", "chat_message", "admitted", "signal ",
    "", " ", "*", "/room", "JOIN_ROOM", " join_room", "join-room", "on_join_room", "send_chat\x00", "send_chat\n",
    "__init__", "__class__", "__dict__", "trigger_event", "emit", "close", "disconnect_soon", "_take_turn",
    "request_event", "namespace", "sеnd_chat", "send_chat\u200b", "\u202esend_chat", "\ud800", "a\udc00b",
    "💥" * 1000,
    "名" * 5000, "x" * 100_000, "a\x00b", "%s%n", "../admit",
]


def encoded_size(event: str, args: tuple) -> int:
    return len(json.dumps([event, *args]))


# --- running requests and checking the answers ------------------------------------------------------------------


class Pacer:
    """A client-side copy of the server's token bucket, a little slower, so paced requests are never limited."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst, self.tokens, self.at = rate, burst, burst, time.monotonic()

    async def take(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1.5:
                self.tokens -= 1
                return
            await asyncio.sleep((1.5 - self.tokens) / self.rate)


class ErrorRecorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def describe(self) -> list[str]:
        return [f"{r.name}: {r.getMessage()[:300]} {r.exc_info[1]!r}" if r.exc_info else f"{r.name}: {r.getMessage()}"
                for r in self.records]


@pytest.fixture
def logged_errors():
    """ERROR records of the room's logger (the generic 'room request failed' path) and of the libraries under it."""
    recorder = ErrorRecorder()
    loggers = [logging.getLogger(name) for name in ("mediation", "engineio", "socketio", "asyncio", "aiohttp")]
    for logger in loggers:
        logger.addHandler(recorder)
    try:
        yield recorder
    finally:
        for logger in loggers:
            logger.removeHandler(recorder)


def signaling_errors(recorder: ErrorRecorder) -> list[str]:
    return [line for line, r in zip(recorder.describe(), recorder.records) if r.name.startswith("mediation")]


class Ledger:
    """What each participant should have been told: one ``error`` (event, code) per failed request of its own."""

    def __init__(self) -> None:
        self.expected: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
        self.seqs: list[int] = []
        self.sent = collections.Counter()
        self.skipped = 0
        self.slowest: list[tuple[float, str, str, str]] = []

    def failed(self, peer: Participant, event: str, code: str) -> None:
        self.expected[id(peer)][(event[:64], code)] += 1

    def check(self, peers: list[Participant]) -> None:
        for peer in peers:
            got = collections.Counter((d.get("event"), d.get("code")) for e, d in peer.events if e == "error")
            assert got == self.expected[id(peer)], (peer.auth, got - self.expected[id(peer)],
                                                    self.expected[id(peer)] - got)


async def call(peer: Participant, event: str, args: tuple, timeout: float = ACK_WAIT) -> Any:
    return await peer.client.call(event, args, namespace="/room", timeout=timeout)


def check_reply(reply: Any, event: str, args: tuple, expect: Expectation, who: str) -> None:
    context = f"{who} {event[:40]!r} {repr(args)[:300]}"
    assert isinstance(reply, dict), (context, reply)
    if reply.get("ok") is True:
        assert expect.ok_allowed, (context, "accepted", reply)
        return
    assert set(reply) == {"ok", "error", "message"} and reply["ok"] is False, (context, reply)
    assert isinstance(reply["message"], str), (context, reply)
    assert reply["error"] in expect.codes, (context, reply, sorted(expect.codes))


async def fire(sender: Sender, requests: list[tuple[str, tuple]], protocol: Protocol, ledger: Ledger) -> None:
    """Send ``requests`` at a pace under both rate limits; check every answer and book the expected ``error``."""
    chat, other = Pacer(4.0, 10), Pacer(80.0, 250)

    async def run(batch: list[tuple[str, tuple]], pacer: Pacer) -> None:
        for event, args in batch:
            expect = expectation(protocol, sender, event, args)
            await pacer.take()
            began = time.monotonic()
            try:
                reply = await call(sender.peer, event, args)
            except socketio.exceptions.TimeoutError:
                raise AssertionError(f"no ack: {sender.label} {event[:40]!r} {repr(args)[:300]}; "
                                     f"connected={sender.peer.client.connected}") from None
            ledger.slowest.append((time.monotonic() - began, sender.label, event[:30], repr(args)[:80]))
            ledger.sent[sender.label] += 1
            check_reply(reply, event, args, expect, sender.label)
            if reply.get("ok") is False:
                ledger.failed(sender.peer, event, reply["error"])
            elif event == "send_chat":
                ledger.seqs.append(reply["seq"])

    await asyncio.gather(run([r for r in requests if r[0] in CHAT_BUCKET], chat),
                         run([r for r in requests if r[0] not in CHAT_BUCKET], other))


def plan(protocol: Protocol, joined: bool, ids: Ids, events: list[str], *, seed: int, whole: int,
         per_field: int, examples: int) -> tuple[list[tuple[str, tuple]], int]:
    """A seeded sample of the fixed corpus (``whole`` hostile payloads and ``per_field`` hostile values of each
    field, per event), every odd event name, and ``examples`` requests drawn by hypothesis; shuffled."""
    rng = random.Random(seed)
    requests: list[tuple[str, tuple]] = []
    for event in events:
        for group, cases in corpus(protocol, event, ids).items():
            take = whole if group == "" else per_field
            requests += [(event, args) for args in rng.sample(cases, min(take, len(cases)))]
    for name in ODD_NAMES:
        requests.append((name, rng.choice([(), ({},), (None,), ("x",), ({}, {}), (HOSTILE_VALUES[-3],)])))
    drawn = st.one_of([st.tuples(st.just(event), args_strategy(protocol, event, ids))
                       for event in events + ODD_NAMES[:8]])
    requests += harvest(drawn, examples)
    kept = [(e, a) for e, a in requests
            if encoded_size(e, a) <= MAX_FRAME and not changes_membership(protocol, joined, e, a)]
    rng.shuffle(kept)
    return kept, len(requests) - len(kept)


async def barrier(peers: list[Participant], ledger: Ledger) -> None:
    """One round trip per socket: every notice sent to it before has then been recorded."""
    for peer in peers:
        reply = await call(peer, "__barrier__", ({},))
        assert reply["error"] == "unknown_event"
        ledger.failed(peer, "__barrier__", "unknown_event")


# --- the tests ------------------------------------------------------------------------------------------------


def test_protocol_lists_every_request() -> None:
    protocol = parse_protocol()
    assert len(protocol.requests) >= 18 and "internal" in protocol.shared_codes
    assert {"bad_token", "rate_limited"} <= protocol.connect_codes
    assert set(protocol.requests) == implemented_requests(), (
        "documented but not served", set(protocol.requests) - implemented_requests(),
        "served but not documented", implemented_requests() - set(protocol.requests))


async def test_hostile_payloads_at_every_event_leave_the_room_working(room: Session, logged_errors) -> None:
    protocol = parse_protocol()
    events = sorted(set(protocol.requests) | implemented_requests())
    journey = room.journey
    other = await walk_to_scheduled(room.api, officer=journey.officer)
    strangers = [other.mediator_id, other.bank_id, other.borrower_id, other.lender_id]
    members = [journey.mediator_id, journey.bank_id, journey.borrower_id, journey.lender_id]
    # (label, own id, joined, admitted, seed, whole payloads per event, hostile values per field, hypothesis examples)
    kinds = [
        ("mediator", journey.mediator_id, True, True, 1, 8, 10, 150),
        ("borrower (admitted party)", journey.borrower_id, True, True, 2, 8, 10, 150),
        ("bank (admitted party)", journey.bank_id, True, True, 3, 5, 6, 80),
        ("lender (lobby party)", journey.lender_id, True, False, 4, 5, 5, 80),
        ("bank socket never joined", journey.bank_id, False, False, 5, 3, 3, 50),
    ]
    # Planned before any socket connects: drawing examples blocks the event loop for a few seconds.
    plans, skipped = [], 0
    for label, own, joined, admitted, seed, whole, per_field, examples in kinds:
        requests, dropped = plan(protocol, joined, Ids(own=own, members=members, strangers=strangers), events,
                                 seed=seed, whole=whole, per_field=per_field, examples=examples)
        plans.append(requests)
        skipped += dropped

    mediator, bank, borrower = await room.admitted_trio()
    lender = room.participant({"token": room.lender_link})
    assert (await lender.join())["status"] == "lobby"
    stranger = room.bank()  # connected with valid credentials, never joined
    await stranger.connect()
    other_mediator = room.participant({"token": other.mediator, "session_id": other.session_id})
    other_borrower = room.participant({"token": await issue_link(room.api, other, other.borrower_id)})
    await other_mediator.join()
    await other_borrower.join()
    assert (await other_mediator.request("admit", {"participant_id": other_borrower.participant_id}))["ok"]
    await other_borrower.wait_for("admitted")
    everyone = [mediator, bank, borrower, lender, stranger, other_mediator, other_borrower]
    assert [p.participant_id for p in (mediator, bank, borrower, lender)] == members

    peers = [mediator, borrower, bank, lender, stranger]
    roles = ("mediator", "borrower", "bank_representative", "lender", "bank_representative")
    senders = [Sender(label, peer, role, joined=joined, admitted=admitted)
               for (label, _, joined, admitted, *_), peer, role in zip(kinds, peers, roles)]
    ledger = Ledger()
    ledger.skipped = skipped
    started = time.monotonic()
    await asyncio.gather(*(fire(sender, requests, protocol, ledger) for sender, requests in zip(senders, plans)))
    fired = time.monotonic() - started
    await barrier(everyone, ledger)

    # Each participant heard exactly its own failures; nothing reached anyone else.
    ledger.check(everyone)
    assert sum(ledger.sent.values()) > 1500, ledger.sent
    assert not logged_errors.records, logged_errors.describe()
    # Nothing took anyone out of the room, or moved anyone, or crossed to the other room.
    for peer in everyone:
        assert peer.client.connected, peer.auth
        assert not [e for e, _ in peer.events if e in ("removed", "refused", "session_ended", "returned_to_lobby",
                                                       "caucus_started", "caucus_in_progress")], peer.auth
    assert not lender.seen("admitted")
    for peer in (other_mediator, other_borrower):
        assert not [e for e, d in peer.events if e in ("signal", "chat_message", "typing", "mute_media_requested",
                                                       "chat_muted")], peer.events[-5:]

    # The room still works: the lock is off, chat gets the next seq and reaches both members...
    assert (await mediator.request("lock_room", {"locked": False}))["ok"]
    history = await mediator.request("chat_history", {})
    last = max([0, *ledger.seqs, *(m["seq"] for m in history["messages"])])
    sent = await borrower.request("send_chat", {"text": "still here after the storm"})
    assert sent["ok"] and sent["seq"] == last + 1, (sent, last)
    for peer in (mediator, bank):
        message = await peer.wait_for("chat_message", lambda m: m["seq"] == sent["seq"])
        assert message["text"] == "still here after the storm"
        assert message["participant_id"] == borrower.participant_id
    # ...admission works...
    assert (await mediator.request("admit", {"participant_id": lender.participant_id}))["ok"]
    await lender.wait_for("admitted")
    # ...the relay works...
    mark = len(borrower.events)
    assert (await mediator.request("signal", {"to": borrower.participant_id, "kind": "offer", "payload": OFFER}))["ok"]
    relayed = await borrower.wait_for("signal", after=mark)
    assert relayed == {"from": mediator.participant_id, "kind": "offer", "payload": OFFER}
    # ...everyone is on the roster, connected, and the server answers HTTP.
    state = await mediator.wait_for("room_state", lambda s: any(
        p["participant_id"] == lender.participant_id and p["status"] == "admitted" for p in s["participants"]))
    assert {p["participant_id"]: p["connected"] for p in state["participants"]} == dict.fromkeys(members, True)
    status, _ = await room.api.call("GET", "/healthz")
    assert status == 200
    assert not logged_errors.records, logged_errors.describe()
    slowest = max(ledger.slowest)
    print(f"\nhostile fire: {dict(ledger.sent)} requests in {fired:.1f}s, {ledger.skipped} skipped "
          f"(over {MAX_FRAME} bytes or ending the sender's participation); slowest ack {slowest[0]:.2f}s "
          f"({slowest[1]} {slowest[2]})")


async def test_requests_aimed_at_the_wrong_member_get_the_documented_code(room: Session, logged_errors) -> None:
    """Well-formed requests the room must refuse, each with the one code the protocol gives for it."""
    protocol = parse_protocol()
    mediator, bank, borrower = await room.admitted_trio()
    lender = room.participant({"token": room.lender_link})
    await lender.join()
    stranger = room.bank()
    await stranger.connect()
    other = await walk_to_scheduled(room.api, officer=room.journey.officer)
    me, lobby = mediator.participant_id, lender.participant_id

    def offer_to(target: str | None) -> dict:
        return {"to": target, "kind": "offer", "payload": OFFER}

    cases = [
        (mediator, "admit", {"participant_id": bank.participant_id}, "not_in_lobby"),
        (mediator, "admit", {"participant_id": me}, "not_in_lobby"),
        (mediator, "refuse", {"participant_id": borrower.participant_id, "reason": "no"}, "not_in_lobby"),
        (mediator, "return_to_lobby", {"participant_id": me}, "cannot_target_self"),
        (mediator, "return_to_lobby", {"participant_id": lobby}, "not_admitted"),
        (mediator, "open_caucus", {"participant_id": lobby}, "not_admitted"),
        (mediator, "open_caucus", {"participant_id": me}, "cannot_target_self"),
        (mediator, "mute_chat", {"participant_id": me, "muted": True}, "cannot_target_self"),
        (mediator, "remove_participant", {"participant_id": me}, "cannot_target_self"),
        (mediator, "admit", {"participant_id": other.borrower_id}, "unknown_participant"),
        (mediator, "request_mute_media", {"participant_id": other.mediator_id, "audio": True, "video": True},
         "unknown_participant"),
        (mediator, "signal", offer_to(other.mediator_id), "unknown_participant"),
        (mediator, "signal", offer_to(lobby), "not_admitted"),
        (mediator, "signal", offer_to(me), "cannot_target_self"),
        (mediator, "delete_message", {"seq": 10**9}, "unknown_message"),
        (mediator, "close_caucus", {}, "no_caucus"),
        (mediator, "stop_recording", {}, "not_recording"),
        (borrower, "signal", offer_to(borrower.participant_id), "cannot_target_self"),
        (borrower, "send_chat", {"text": " \n\t "}, "empty_message"),
        (borrower, "send_chat", {"text": "x" * 2001}, "message_too_long"),
        (borrower, "send_chat", {"text": "\U0001d160" * 700}, "message_too_long"),  # 2100 characters after NFC
        (borrower, "send_chat", {"text": "nul\x00"}, "invalid_payload"),
        (borrower, "send_chat", {"text": "\u202eevil"}, "invalid_payload"),
        (borrower, "admit", {"participant_id": lobby}, "forbidden"),
        (borrower, "withdraw_consent", {}, "no_consent"),
        (bank, "end_session", {}, "forbidden"),
        (lender, "send_chat", {"text": "let me in"}, "not_admitted"),
        (lender, "signal", offer_to(me), "not_admitted"),
        (lender, "chat_history", {}, "not_admitted"),
        (stranger, "send_chat", {"text": "hello"}, "not_joined"),
        (stranger, "media_state", {"audio": True, "video": True}, "not_joined"),
    ]
    ledger = Ledger()
    for peer, event, payload, code in cases:
        if event not in protocol.requests:
            continue
        reply = await peer.request(event, payload)
        assert reply == {"ok": False, "error": code, "message": reply.get("message")}, (event, payload, reply)
        assert code in protocol.shared_codes | protocol.requests[event].extra_codes, (event, code)
        ledger.failed(peer, event, code)
    everyone = [mediator, bank, borrower, lender, stranger]
    await barrier(everyone, ledger)
    ledger.check(everyone)
    assert not logged_errors.records, logged_errors.describe()


async def test_bursts_beyond_the_limits_get_rate_limited(room: Session, logged_errors) -> None:
    mediator, bank, borrower = await room.admitted_trio()
    ledger = Ledger()
    # Chat: 5/s, burst 10. Whatever the machine's speed, no more than the bucket allowed is accepted.
    began = time.monotonic()
    replies = await asyncio.gather(*(borrower.request("send_chat", {"text": f"burst {i}"}) for i in range(40)))
    took = time.monotonic() - began
    accepted = [r for r in replies if r["ok"]]
    limited = [r for r in replies if not r["ok"]]
    assert 10 <= len(accepted) <= 10 + 5 * took + 1 and limited, (len(accepted), took)
    assert {r["error"] for r in limited} == {"rate_limited"}
    for r in limited:
        ledger.failed(borrower, "send_chat", "rate_limited")
    # Signaling: 100/s, burst 300, a separate bucket. The burst is of invalid requests (the limit comes first, and
    # they cost the server least), so that even a slow machine answers them faster than the bucket refills.
    began = time.monotonic()
    # 450: past the burst, yet fewer refusals than the 300 that get a socket cut off as a flooder.
    replies = await asyncio.gather(*(borrower.request("chat_history", "not an object") for _ in range(450)))
    took = time.monotonic() - began
    codes = collections.Counter(r["error"] for r in replies)
    assert set(codes) == {"invalid_payload", "rate_limited"}, codes
    assert 290 <= codes["invalid_payload"] <= 300 + 100 * took + 1, (codes, took)
    for code, count in codes.items():
        ledger.expected[id(borrower)][("chat_history", code)] += count
    # Other sockets have their own buckets.
    assert (await mediator.request("chat_history", {}))["ok"]
    assert (await bank.request("send_chat", {"text": "my bucket is full"}))["ok"]
    await barrier([mediator, bank, borrower], ledger)
    ledger.check([mediator, bank, borrower])
    # Only accepted messages were delivered, in seq order.
    seqs = sorted(r["seq"] for r in accepted)
    await mediator.wait_for("chat_message", lambda m: m["text"] == "my bucket is full")
    delivered = [m["seq"] for m in mediator.seen("chat_message") if m["participant_id"] == borrower.participant_id]
    assert delivered == seqs == list(range(1, len(seqs) + 1))
    # The bucket refills: after a second there is room for a few more.
    await asyncio.sleep(1.1)
    assert (await borrower.request("send_chat", {"text": "after a pause"}))["ok"]
    assert not logged_errors.records, logged_errors.describe()


async def test_frames_no_client_library_builds_do_not_hurt_the_room(room: Session, logged_errors) -> None:
    """Raw socket.io packets: the sender may lose a request, never its socket; nobody else notices anything.

    Engine.IO/Socket.IO log what they cannot decode at ERROR under their own loggers; that is the library's
    doing and allowed here. The room's own logger must stay silent."""
    protocol = parse_protocol()
    mediator, bank, borrower = await room.admitted_trio()
    lender = room.participant({"token": room.lender_link})
    await lender.join()
    frames = [
        '2/room,["send_chat",{"text":"x"}', "2/room,", "2/room,[]", '2/room,{"a":1}', '2/room,"abc"', "2/room,[[1]]",
        "2/room," + "[" * 5000 + "]" * 5000, '2/room,["send_chat",{"text":"x","n":' + "9" * 150 + "}]",
        '2/room,["send_chat",NaN]', '2/room,["send_chat",{"text":"x"},' + "[" * 990 + "]" * 990 + "]",
        '2/room,["send_chat",{"text":"\\ud800"}]', "2/room,[\"send_chat\",{\"text\":\"\u0000\"}]",
        "29/room,[1]", "9/room,[]", "4/room,{}", "3/room,1[\"x\"]", "3/room,99999999999999999999999[]",
        "2/room,99999999999999999999999[\"x\"]", '51-/room,["send_chat",{"_placeholder":true,"num":0}]', b"\x00\x01",
        '2/room,["send_chat",{"_placeholder":true,"num":7}]', '2/other,["send_chat",{"text":"x"}]',
        '2["send_chat",{"text":"to the default namespace"}]', "2/room", "2/room,1", "/room", "", "\x00",
        b"\x00\x01\x02", "x" * 1000,
    ]
    mark = {id(p): len(p.events) for p in (mediator, bank, borrower, lender)}
    for frame in frames:
        await borrower.client.eio.send(frame)
    ledger = Ledger()
    await barrier([mediator, bank, lender], ledger)
    reply = await call(borrower, "chat_history", ({},))
    assert reply["ok"] and borrower.client.connected
    # The sender hears of what it sent (undecodable frames: nothing at all); never an internal error.
    told = [d for e, d in borrower.events[mark[id(borrower)]:] if e == "error"]
    assert {d["code"] for d in told} <= protocol.all_codes - {"internal"}, told
    for peer in (mediator, bank, lender):
        assert [e for e, _ in peer.events[mark[id(peer)]:] if e not in ("room_state", "error")] == [], peer.auth
    ledger.check([mediator, bank, lender])
    sent = await borrower.request("send_chat", {"text": "after the junk"})
    assert sent["ok"]
    await mediator.wait_for("chat_message", lambda m: m["seq"] == sent["seq"])
    assert not signaling_errors(logged_errors), signaling_errors(logged_errors)

    # A frame over engine.io's 256 KiB limit closes that socket only; the participant comes back as it was.
    with pytest.raises(socketio.exceptions.TimeoutError):
        await call(borrower, "send_chat", ({"text": "x" * 300_000},), timeout=2.0)
    assert not borrower.client.connected
    await mediator.wait_for("room_state", lambda s: any(
        p["participant_id"] == borrower.participant_id and not p["connected"] for p in s["participants"]))
    assert mediator.client.connected and bank.client.connected and lender.client.connected
    again = room.borrower()
    assert (await again.join())["status"] == "admitted"
    assert (await again.request("send_chat", {"text": "back"}))["ok"]
    await bank.wait_for("chat_message", lambda m: m["text"] == "back")
    assert not signaling_errors(logged_errors), signaling_errors(logged_errors)


async def test_hostile_handshakes_are_refused_with_a_documented_code(room: Session, logged_errors) -> None:
    protocol = parse_protocol()
    journey = room.journey
    mediator = room.mediator()
    await mediator.join()
    other = await walk_to_scheduled(room.api, officer=journey.officer)
    auths: list[Any] = [
        [], "a string", 123, {"token": 123}, {"token": None}, {"token": ["x"]}, {"token": "jln_" + "A" * 43 + "\n"},
        {"token": "x" * 100_000}, {"token": "\ud800"}, {"token": "\u202e" + room.borrower_link},
        {"token": room.borrower_link, "extra": 1}, {"token": room.borrower_link, "session_id": 123},
        {"token": room.borrower_link, "session_id": other.session_id}, {"token": journey.mediator},
        {"token": journey.mediator, "session_id": ["x"]}, {"token": journey.mediator, "session_id": "ses_\x00"},
        {"token": journey.mediator, "session_id": other.session_id}, {"token": journey.receipt},
        {"token": room.borrower_link[:-1] + "\ud800"}, {"token": journey.bank, "session_id": journey.session_id + " "},
    ]
    for auth in auths:
        peer = Participant(room.api.base, {})
        peer.auth = auth  # the client sends whatever JSON value it is given
        room.peers.append(peer)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await peer.connect()
        refusal = peer.refusal
        assert isinstance(refusal, dict) and refusal.get("code") in protocol.connect_codes, (auth, refusal)
    assert mediator.client.connected
    assert [e for e, _ in mediator.events if e not in ("room_state",)] == []
    borrower = room.borrower()
    assert (await borrower.join())["status"] == "lobby"
    assert not logged_errors.records, logged_errors.describe()


# --- bugs this file found, fixed: each asserts what the protocol promises -------------------------------------


async def test_non_string_event_names_get_unknown_event(room: Session, logged_errors) -> None:
    mediator, bank, borrower = await room.admitted_trio()
    for name in (123, None, ["send_chat"], {"a": 1}, True, 1.5):
        reply = await call(borrower, name, ({},), timeout=2.0)
        assert reply == {"ok": False, "error": "unknown_event", "message": reply["message"]}, (name, reply)
    assert not logged_errors.records, logged_errors.describe()


async def test_deeply_nested_signal_payload_is_refused_not_an_internal_error(room: Session, logged_errors) -> None:
    mediator, bank, borrower = await room.admitted_trio()
    body = json.dumps(["signal", {"to": mediator.participant_id, "kind": "ice_candidate",
                                  "payload": {"candidate": None, "usernameFragment": "@@"}}])
    await borrower.client.eio.send("2/room," + body.replace('"@@"', "[" * 600 + "]" * 600))
    ledger = Ledger()
    await barrier([borrower], ledger)
    codes = [d["code"] for e, d in borrower.events if e == "error" and d["event"] == "signal"]
    assert codes in ([], ["invalid_payload"]), codes
    assert not signaling_errors(logged_errors), signaling_errors(logged_errors)


async def test_relayed_signals_are_strict_json(room: Session) -> None:
    mediator, bank, borrower = await room.admitted_trio()
    for fragment in (math.nan, math.inf, -math.inf, {"nested": [math.nan]}):
        mark = len(mediator.events)
        reply = await borrower.request("signal", {"to": mediator.participant_id, "kind": "ice_candidate",
                                                  "payload": {"candidate": None, "usernameFragment": fragment}})
        if reply["ok"]:
            relayed = await mediator.wait_for("signal", after=mark)
            json.dumps(relayed, allow_nan=False)  # what JSON.parse in a browser accepts
            assert isinstance(relayed["payload"].get("usernameFragment"), str | None)
        else:
            assert reply["error"] == "invalid_payload"
