"""The recorder in a room on Janus: each recorded publisher's RTP forwarded to the recorder worker, nothing through
the browsers.

The worker binds two UDP ports on the address Janus reaches it at (``MEDIATION_RECORDER_RTP_HOST``) and gives
them with ``record_media``; this node, the only one speaking Janus's API, then keeps one VideoRoom ``rtp_forward``
per publisher the recorder may receive (the rule a member's subscription follows: admitted, connected, not across
a caucus from it), with an SSRC chosen here per stream, and tells the worker which SSRC is whose
(``media_forwards``, with the address Janus sends from). A forwarder stops when its publisher is no longer
recorded, the recorder's socket goes (recording stopped, consent withdrawn, session ended) or the room ends; a
publisher that publishes again gets a new one (Janus drops a publisher's forwarders with it). Janus is asked
which of our forwarders still run at every reconcile (``listforwarders``), so this works whichever node each
publisher's socket is on.

State here is this node's only: the recorders whose sockets are on this node, and their forwarders.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import socket
import urllib.parse
from typing import TYPE_CHECKING, Any

from signaling.janus import JanusError, JanusLost
from signaling.roomstate import ADMITTED
from signaling.views import isolated_from

if TYPE_CHECKING:
    from signaling.sfu import Instance, Sfu

log = logging.getLogger("mediation.signaling.sfu")

# The payload types Janus stamps on forwarded packets; the worker expects these (recording/recorder/forwarded.py).
PAYLOAD_TYPES = {"audio": 111, "video": 96}
# The mids our pages publish with (web_client/src/lib/room/sfu.js adds audio, then video), when this node did not
# see the publisher's offer itself.
DEFAULT_MIDS = {"audio": "0", "video": "1"}
NO_SUCH_FEED = 428
NO_SUCH_ROOM = 426


def offer_mids(sdp: str) -> dict[str, str]:
    """The mid of the first audio and the first video m-line of an SDP offer."""
    mids: dict[str, str] = {}
    kind: str | None = None
    for line in sdp.splitlines():
        if line.startswith("m="):
            kind = line[2:].split(" ", 1)[0]
        elif line.startswith("a=mid:") and kind in ("audio", "video") and kind not in mids:
            mids[kind] = line[len("a=mid:"):].strip()
    return mids


@dataclasses.dataclass
class Forward:
    """One publisher's forwarder(s) to the recorder: per kind, (Janus stream_id, SSRC, Janus's RTCP port)."""

    participant_id: str
    streams: dict[str, tuple[int, int, int | None]]


@dataclasses.dataclass
class RecorderTarget:
    """A recorder worker whose socket is on this node, and the forwarders running to it."""

    session_id: str
    participant_id: str
    sid: str
    rtp_port: int
    rtcp_port: int
    url: str | None = None  # the Janus instance its forwarders are on
    forwards: dict[int, Forward] = dataclasses.field(default_factory=dict)  # feed -> forwarders
    announced: list[dict[str, Any]] | None = None
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)


class RecorderForwarding:
    """This node's recorders in rooms on Janus; driven by ``Sfu``'s reconcile of each room."""

    def __init__(self, sfu: Sfu, host: str) -> None:
        self._sfu = sfu
        self.host = host
        self._targets: dict[str, RecorderTarget] = {}  # session_id -> its recorder on this node
        self.mids: dict[tuple[str, str], dict[str, str]] = {}  # (session, participant) -> mids of its offer
        self._sources: dict[str, str] = {}  # Janus URL -> the address its forwarded packets come from

    @property
    def sessions(self) -> set[str]:
        return set(self._targets)

    def register(self, session_id: str, participant_id: str, sid: str, rtp_port: int, rtcp_port: int) -> None:
        """The recorder's socket ``sid`` receives forwarded media on these ports (a second call replaces the first)."""
        old = self._targets.get(session_id)
        target = RecorderTarget(session_id, participant_id, sid, rtp_port, rtcp_port)
        self._targets[session_id] = target
        if old is not None:
            self._sfu.own(self._stop_all(old))
        self._sfu.schedule(session_id)

    def published(self, session_id: str, participant_id: str, offer_sdp: str) -> None:
        self.mids[(session_id, participant_id)] = offer_mids(offer_sdp)
        if len(self.mids) > 10_000:
            self.mids.pop(next(iter(self.mids)))

    async def close(self) -> None:
        for target in list(self._targets.values()):
            with contextlib.suppress(JanusLost, JanusError):
                await self._stop_all(target)
        self._targets.clear()

    async def reconcile(self, session_id: str) -> None:
        """Bring the forwarders to this node's recorder of the room (if any) to what the room allows now."""
        target = self._targets.get(session_id)
        if target is None:
            return
        async with target.lock:
            if self._targets.get(session_id) is not target:
                return
            room = await self._sfu.store.get(session_id)
            member = room.members.get(target.participant_id) if room is not None else None
            if (room is None or room.ended or room.mode != "video" or member is None or member.sid != target.sid
                    or not member.connected):
                del self._targets[session_id]
                await self._stop_forwards(target, list(target.forwards))
                return
            if room.janus is None:
                return  # nobody published yet
            if target.url is not None and target.url != room.janus:
                target.forwards.clear()  # the room moved to another instance: those forwarders went with the old one
            target.url = room.janus
            instance = await self._sfu.instance(room.janus)
            desired: dict[int, str] = {}
            if member.status == ADMITTED:
                active = await self._sfu.active_feeds(instance, session_id)
                shut = set(isolated_from(room, member))
                for other in room.members.values():
                    feed = self._sfu.feed(session_id, other.participant_id)
                    if (other.status == ADMITTED and other.connected and other.role != "recorder"
                            and other.participant_id not in shut and feed in active):
                        desired[feed] = other.participant_id
            await self._drop_vanished(instance, target)
            await self._stop_forwards(target, [feed for feed in target.forwards if feed not in desired])
            for feed, participant_id in desired.items():
                if feed not in target.forwards:
                    await self._start_forward(instance, target, feed, participant_id)
            await self._announce(instance, target)

    # --- Janus ----------------------------------------------------------------------------------------

    async def _drop_vanished(self, instance: Instance, target: RecorderTarget) -> None:
        """Forget forwarders Janus no longer runs (their publisher left or published again); stop half-gone ones."""
        if not target.forwards:
            return
        assert instance.session is not None and instance.control is not None
        try:
            data, _ = await instance.session.request(instance.control, {
                "request": "listforwarders", "room": self._sfu.room_id(target.session_id),
                "secret": self._sfu.room_secret(target.session_id)})
        except JanusError as exc:
            if exc.code != NO_SUCH_ROOM:
                raise
            data = {}
        running: set[tuple[int, int]] = set()
        for publisher in data.get("publishers") or []:
            for forwarder in publisher.get("forwarders") or []:
                with contextlib.suppress(TypeError, ValueError):
                    running.add((int(publisher.get("publisher_id")), int(forwarder.get("stream_id"))))
        for feed, forward in list(target.forwards.items()):
            alive = [(feed, stream_id) in running for stream_id, _ssrc, _port in forward.streams.values()]
            if not all(alive):
                if any(alive):
                    await self._stop_forwards(target, [feed])
                target.forwards.pop(feed, None)

    async def _start_forward(self, instance: Instance, target: RecorderTarget, feed: int, participant_id: str) -> None:
        assert instance.session is not None and instance.control is not None
        mids = self.mids.get((target.session_id, participant_id)) or DEFAULT_MIDS
        streams = []
        for kind, mid in mids.items():
            stream: dict[str, Any] = {"mid": mid, "port": target.rtp_port, "pt": PAYLOAD_TYPES[kind],
                                      "ssrc": secrets.randbelow(2 ** 32 - 1) + 1}
            if kind == "video":
                stream["rtcp_port"] = target.rtcp_port  # the recorder's PLIs reach the publisher through it
                # No `simulcast: true`: Janus then sends substream 0 (the lowest) here. With the flag it forwards
                # the top layer, but in our tests the recorder then got little more than the key frames
                # (docs/protocol.md, "Simulcast layers").
            streams.append(stream)
        try:
            data, _ = await instance.session.request(instance.control, {
                "request": "rtp_forward", "room": self._sfu.room_id(target.session_id), "publisher_id": feed,
                "host": self.host, "streams": streams, "secret": self._sfu.room_secret(target.session_id),
                "admin_key": self._sfu.settings.admin_key})
        except JanusError as exc:
            if exc.code in (NO_SUCH_FEED, NO_SUCH_ROOM):
                return  # it went away meanwhile: the next reconcile decides again
            raise
        taken: dict[str, tuple[int, int, int | None]] = {}
        for forwarder in data.get("forwarders") or []:
            kind = forwarder.get("type")
            with contextlib.suppress(TypeError, ValueError):
                if kind in PAYLOAD_TYPES and kind not in taken:
                    port = forwarder.get("local_rtcp_port")
                    taken[kind] = (int(forwarder["stream_id"]), int(forwarder["ssrc"]),
                                   int(port) if port else None)
        if taken:
            target.forwards[feed] = Forward(participant_id, taken)
            log.info("forwarding to the recorder", extra={"session_id": target.session_id, "feed": feed,
                                                          "kinds": sorted(taken)})

    async def _stop_forwards(self, target: RecorderTarget, feeds: list[int]) -> None:
        if not feeds:
            return
        instance = None
        if target.url is not None:
            with contextlib.suppress(JanusLost):
                instance = await self._sfu.instance(target.url)
        for feed in feeds:
            forward = target.forwards.pop(feed, None)
            if forward is None or instance is None or instance.session is None or instance.control is None:
                continue
            for stream_id, _ssrc, _port in forward.streams.values():
                with contextlib.suppress(JanusError):
                    await instance.session.request(instance.control, {
                        "request": "stop_rtp_forward", "room": self._sfu.room_id(target.session_id),
                        "publisher_id": feed, "stream_id": stream_id,
                        "secret": self._sfu.room_secret(target.session_id), "admin_key": self._sfu.settings.admin_key})
        if self._targets.get(target.session_id) is target:
            with contextlib.suppress(JanusLost):
                await self._announce(None, target)

    async def _stop_all(self, target: RecorderTarget) -> None:
        async with target.lock:
            await self._stop_forwards(target, list(target.forwards))

    async def _announce(self, instance: Instance | None, target: RecorderTarget) -> None:
        forwards = sorted(({"participant_id": f.participant_id, "kind": kind, "ssrc": ssrc, "feedback_port": port}
                           for f in target.forwards.values() for kind, (_sid, ssrc, port) in f.streams.items()),
                          key=lambda item: (item["participant_id"], item["kind"]))
        if forwards == target.announced:
            return
        source = await self._source(target.url) if target.url is not None else None
        if source is None:
            return
        target.announced = forwards
        await self._sfu.emit("media_forwards", {"source": source, "forwards": forwards}, target.sid)

    async def _source(self, url: str) -> str | None:
        """The address Janus's forwarded packets come from: its API host's, resolved once."""
        if url in self._sources:
            return self._sources[url]
        host = urllib.parse.urlsplit(url).hostname or ""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET  # the family packets reach us in
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, family=family, type=socket.SOCK_DGRAM)
        except OSError:
            log.warning("the Janus host does not resolve", extra={"janus": url})
            return None
        self._sources[url] = source = str(infos[0][4][0])
        return source
