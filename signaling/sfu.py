"""Rooms on a selective forwarding unit (Janus VideoRoom): placement, publishing, and each member's subscription
kept to what the room lets it receive.

Browsers send their media to Janus and receive from it, but only this server speaks Janus's API: it publishes
on a member's behalf (the member's offer, Janus's answer back through the room protocol) and decides every
subscription from the room's state, never from what a browser asks for. A member receives the feeds of the
other admitted, connected members it is not isolated from (``views.isolated_from``: a caucus); a member in
the lobby receives nothing. Every turn that changes the roster or the isolation reconciles its room at once,
and each node reconciles the rooms of its own members every ``RECONCILE_SECONDS`` besides (changes made on
another node, feeds that became active). An unsubscription takes effect at Janus when it answers the
``update`` request: the feed stops there, whatever the browser does with the renegotiation offer.

State here is this node's only: the Janus handles of the members whose sockets are on this node. Which
Janus instance holds a room is part of the room (``Room.janus``), so every node agrees on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from signaling.janus import JanusClient, JanusError, JanusLost, JanusSession
from signaling.roomstate import ADMITTED, Room, RoomStore
from signaling.sfurecorder import RecorderForwarding
from signaling.tasks import Tasks
from signaling.views import isolated_from

log = logging.getLogger("mediation.signaling.sfu")

RECONCILE_SECONDS = 0.5
# A member's publications are at least this far apart: each one costs Janus a handle, a join and ICE.
PUBLISH_INTERVAL_SECONDS = 1.0
# After an instance was found down, rooms are not placed on it for this long.
DOWN_SECONDS = 10.0
# Janus VideoRoom error codes this module acts on (janus_videoroom.c).
ROOM_EXISTS = 427
NO_SUCH_FEED = 428
NO_SUCH_ROOM = 426
ID_EXISTS = 436

# Simulcast: the widths of the three VP8 layers a page sends (docs/protocol.md, "Simulcast layers"), Janus's
# substreams 0, 1 and 2. A subscriber gets the smallest layer at least as wide as its tile; the recording the top.
LAYER_WIDTHS = (320, 640, 1280)
TOP_SUBSTREAM = len(LAYER_WIDTHS) - 1
# What the two lower layers may take beside the top one (300 + 100 kbit/s at most, the page's ceilings): the
# estimate Janus gives each publisher (REMB) caps the sum, so the top layer keeps ``video_bitrate``.
LOWER_LAYERS_BITRATE = 400_000
# A member's layouts are at least this far apart: each change is a configure request to Janus.
LAYOUT_INTERVAL_SECONDS = 0.5

Emit = Callable[[str, Any, str], Awaitable[None]]


def substream_for(width: int, height: int) -> int:
    """The simulcast substream for a tile of ``width`` × ``height`` device pixels (16:9 layers); 0 if hidden."""
    if width <= 0 or height <= 0:
        return 0
    need = max(width, -(-height * 16 // 9))
    return next((i for i, layer in enumerate(LAYER_WIDTHS) if need <= layer), TOP_SUBSTREAM)


def janus_room_id(session_id: str) -> int:
    """The VideoRoom room of a session: the same number on every node (48 bits: exact in JSON)."""
    return int.from_bytes(hashlib.sha256(b"room\0" + session_id.encode()).digest()[:6], "big")


def preferred(urls: Iterable[str], session_id: str) -> list[str]:
    """The instances in the order a new room of the session tries them: a hash of each URL with the session
    (rendezvous hashing), so rooms spread over the instances and every node ranks them alike."""
    return sorted(urls, key=lambda url: hashlib.sha256(f"{url}\0{session_id}".encode()).digest())


def feed_id(session_id: str, participant_id: str) -> int:
    """A member's publisher id in its session's VideoRoom, the same on every node."""
    return int.from_bytes(hashlib.sha256(f"feed\0{session_id}\0{participant_id}".encode()).digest()[:6], "big")


@dataclasses.dataclass
class SfuSettings:
    urls: tuple[str, ...]
    api_secret: str
    admin_key: str
    # The video bitrate of a publisher's top simulcast layer (its camera's own size), in bits per second.
    video_bitrate: int = 600_000
    # Where Janus forwards recorded publishers' RTP: the address the recorder workers bind (signaling/sfurecorder.py).
    recorder_rtp_host: str = "127.0.0.1"

    @property
    def publisher_bitrate(self) -> int:
        """What Janus asks each publisher to keep under (REMB): all its layers together."""
        return self.video_bitrate + LOWER_LAYERS_BITRATE


@dataclasses.dataclass
class MemberMedia:
    """One member's Janus handles on this node; its ``lock`` orders every change to them."""

    session_id: str
    participant_id: str
    sid: str
    url: str
    publisher: int | None = None
    subscriber: int | None = None
    subscribed: dict[int, str] = dataclasses.field(default_factory=dict)  # feed -> participant_id
    tiles: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)  # media_layout: pid -> size
    video_mids: dict[str, str] = dataclasses.field(default_factory=dict)  # subscription video mid -> pid
    substreams: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)  # (mid, pid) -> at Janus
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)


class Instance:
    """One Janus instance: its API session, opened when first needed and again after it was lost."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session: JanusSession | None = None
        self.opening = asyncio.Lock()
        self.down_until = 0.0
        self.control: int | None = None  # a handle for room-level requests (create, list, kick)


class Sfu:
    """This node's side of the rooms placed on Janus; runs on the signaling event loop."""

    def __init__(self, settings: SfuSettings, store: RoomStore, emit: Emit, tasks: Tasks,
                 client: JanusClient | None = None) -> None:
        self.settings = settings
        # The app's Janus client (closed by its own cleanup context), or one of our own, closed with us.
        self._client = client or JanusClient()
        self._own_client = client is None
        self._store = store
        self._emit = emit
        self._tasks = tasks
        self._instances = {url: Instance(url) for url in settings.urls}
        self._media: dict[tuple[str, str], MemberMedia] = {}
        self._dirty: set[str] = set()
        self._reconciling: set[str] = set()
        self._published_at: dict[tuple[str, str], float] = {}
        self._laid_out_at: dict[tuple[str, str], float] = {}
        self.recording = RecorderForwarding(self, settings.recorder_rtp_host)

    def start(self) -> None:
        self._client.start()
        self._tasks.own(self._watch())

    async def close(self) -> None:
        await self.recording.close()
        for instance in self._instances.values():
            if instance.session is not None:
                await instance.session.close()
                instance.session = None
        if self._own_client:
            await self._client.close()

    # --- placement ------------------------------------------------------------------------------------

    def place(self, room: Room) -> str:
        """The instance holding ``room``: the one recorded, unless unknown or down; else the highest-ranked up."""
        loop = asyncio.get_running_loop()
        current = self._instances.get(room.janus or "")
        if current is not None and current.down_until <= loop.time():
            return current.url
        order = {url: rank for rank, url in enumerate(preferred(self._instances, room.session_id))}
        up_first = sorted(self._instances.values(), key=lambda i: (i.down_until > loop.time(), order[i.url]))
        return up_first[0].url

    def may_publish(self, session_id: str, participant_id: str) -> bool:
        """Whether the member's last publication Janus took is far enough behind."""
        now = asyncio.get_running_loop().time()
        key = (session_id, participant_id)
        if now - self._published_at.get(key, -PUBLISH_INTERVAL_SECONDS) < PUBLISH_INTERVAL_SECONDS:
            return False
        if len(self._published_at) > 10_000:
            self._published_at = {k: t for k, t in self._published_at.items() if now - t < PUBLISH_INTERVAL_SECONDS}
        return True

    def _secret(self, session_id: str) -> str:
        # The VideoRoom room's own secret (kick, destroy, rtp_forward): derived, never stored or sent to browsers.
        key = self.settings.admin_key.encode() or self.settings.api_secret.encode()
        return hmac.new(key, f"room\0{session_id}".encode(), hashlib.sha256).hexdigest()

    async def _instance(self, url: str) -> Instance:
        instance = self._instances.get(url)
        if instance is None:
            raise JanusLost(f"no Janus instance {url} is configured")
        async with instance.opening:
            if instance.session is None or instance.session.lost:
                if instance.session is not None:
                    await instance.session.close()  # its long poll ends now, not at its next answer
                    instance.session = None
                try:
                    session = await self._client.session(
                        url, self.settings.api_secret,
                        on_event=lambda handle, event: self._on_event(instance, handle, event),
                        on_lost=lambda: self._on_lost(instance))
                except JanusLost:
                    instance.down_until = asyncio.get_running_loop().time() + DOWN_SECONDS
                    raise
                try:
                    instance.control = await session.attach()
                except (JanusLost, JanusError):
                    instance.down_until = asyncio.get_running_loop().time() + DOWN_SECONDS
                    await session.close()
                    raise
                instance.session = session
        return instance

    async def _ensure_room(self, instance: Instance, session_id: str) -> None:
        assert instance.session is not None and instance.control is not None
        body = {"request": "create", "room": janus_room_id(session_id), "permanent": False,
                "admin_key": self.settings.admin_key, "secret": self._secret(session_id), "is_private": True,
                "publishers": 8, "audiocodec": "opus", "videocodec": "vp8",
                "bitrate": self.settings.publisher_bitrate,
                "fir_freq": 3, "notify_joining": False}
        try:
            await instance.session.request(instance.control, body)
        except JanusError as exc:
            if exc.code != ROOM_EXISTS:
                raise

    # --- a member's publisher -------------------------------------------------------------------------

    async def publish(self, session_id: str, url: str, participant_id: str, sid: str,
                      offer: dict[str, Any]) -> dict[str, Any]:
        """(Re)start ``participant_id``'s media on the room's instance ``url``: a new publisher handle given the
        browser's offer; Janus's answer. Its earlier handles, if any, are closed: a new page or a media reset."""
        instance = await self._instance(url)
        await self._ensure_room(instance, session_id)
        key = (session_id, participant_id)
        old = self._media.pop(key, None)
        if old is not None:
            await self._drop(old)
        media = MemberMedia(session_id, participant_id, sid, url)
        self._media[key] = media
        async with media.lock:
            assert instance.session is not None
            media.publisher = await instance.session.attach()
            body = {"request": "joinandconfigure", "ptype": "publisher", "room": janus_room_id(session_id),
                    "id": feed_id(session_id, participant_id), "bitrate": self.settings.publisher_bitrate}
            try:
                _data, jsep = await self._join_publisher(instance, session_id, media.publisher, body, offer)
            except BaseException:
                self._media.pop(key, None)
                await self._drop(media)
                raise
        if jsep is None or jsep.get("type") != "answer":
            raise JanusError(0, "Janus gave no answer to the publisher's offer")
        # Publications run one at a time per member (its socket's requests are ordered): counted once taken.
        self._published_at[key] = asyncio.get_running_loop().time()
        if isinstance(offer.get("sdp"), str):
            self.recording.published(session_id, participant_id, offer["sdp"])
        self.schedule(session_id)
        return {"type": "answer", "sdp": jsep["sdp"]}

    async def _join_publisher(self, instance: Instance, session_id: str, handle: int, body: dict[str, Any],
                              offer: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        assert instance.session is not None and instance.control is not None
        try:
            return await instance.session.request(handle, body, offer)
        except JanusError as exc:
            if exc.code != ID_EXISTS:
                raise
        # The member's previous publisher (a page closed without leaving, a node that stopped) is still there.
        with contextlib.suppress(JanusError):
            await instance.session.request(instance.control, {
                "request": "kick", "room": janus_room_id(session_id), "secret": self._secret(session_id),
                "id": body["id"]})
        return await instance.session.request(handle, body, offer)

    async def answer(self, session_id: str, participant_id: str, sid: str, answer: dict[str, Any]) -> bool:
        """The browser's answer to the last subscription offer; False if it has no subscription here."""
        media = self._media.get((session_id, participant_id))
        if media is None or media.sid != sid or media.subscriber is None:
            return False
        instance = await self._instance(media.url)
        assert instance.session is not None
        await instance.session.request(media.subscriber, {"request": "start"}, answer)
        return True

    async def trickle(self, session_id: str, participant_id: str, sid: str, target: str,
                      candidate: dict[str, Any]) -> bool:
        media = self._media.get((session_id, participant_id))
        if media is None or media.sid != sid:
            return False
        handle = media.publisher if target == "publish" else media.subscriber
        if handle is None:
            return False
        instance = await self._instance(media.url)
        assert instance.session is not None
        shown = {"completed": True} if candidate.get("candidate") in (None, "") else {
            key: value for key, value in candidate.items() if key in ("candidate", "sdpMid", "sdpMLineIndex")}
        await instance.session.trickle(handle, shown)
        return True

    # --- subscriptions --------------------------------------------------------------------------------

    def schedule(self, session_id: str) -> None:
        """Reconcile the room's subscriptions on this node soon (at once unless one is running; then after it)."""
        if session_id in self._reconciling:
            self._dirty.add(session_id)
            return
        if session_id in self.recording.sessions or any(m.session_id == session_id for m in self._media.values()):
            self._reconciling.add(session_id)
            self._tasks.own(self._reconcile_loop(session_id))

    async def _reconcile_loop(self, session_id: str) -> None:
        try:
            while True:
                self._dirty.discard(session_id)
                try:
                    await self.reconcile(session_id)
                except (JanusLost, JanusError) as exc:
                    log.warning("room subscriptions not reconciled", extra={"session_id": session_id,
                                                                            "error": str(exc)})
                try:
                    await self.recording.reconcile(session_id)
                except (JanusLost, JanusError) as exc:
                    log.warning("recorder forwarders not reconciled", extra={"session_id": session_id,
                                                                             "error": str(exc)})
                if session_id not in self._dirty:
                    return
        finally:
            self._reconciling.discard(session_id)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(RECONCILE_SECONDS)
            for session_id in {m.session_id for m in self._media.values()} | self.recording.sessions:
                self.schedule(session_id)

    async def reconcile(self, session_id: str) -> None:
        """Bring this node's members of the room to the subscriptions the room allows them now."""
        local = [m for m in self._media.values() if m.session_id == session_id]
        if not local:
            return
        room = await self._store.get(session_id)
        if room is None or room.ended or room.mode != "video":
            for media in local:
                await self._forget(media)
            return
        for media in local:
            member = room.members.get(media.participant_id)
            if member is None or member.sid != media.sid or not member.connected:
                await self._forget(media)
        local = [m for m in local if self._media.get((session_id, m.participant_id)) is m]
        if not local:
            return
        instance = await self._instance(local[0].url)
        active = await self._active_feeds(instance, session_id)
        for media in local:
            member = room.members[media.participant_id]
            desired: dict[int, str] = {}
            if member.status == ADMITTED:
                shut = set(isolated_from(room, member))
                for other in room.members.values():
                    feed = feed_id(session_id, other.participant_id)
                    if (other.participant_id != member.participant_id and other.status == ADMITTED
                            and other.connected and other.role != "recorder" and other.participant_id not in shut
                            and feed in active):
                        desired[feed] = other.participant_id
            async with media.lock:
                if self._media.get((session_id, media.participant_id)) is media:
                    await self._subscribe(instance, media, desired)
                    await self._apply_layout(instance, media)

    async def _active_feeds(self, instance: Instance, session_id: str) -> set[int]:
        assert instance.session is not None and instance.control is not None
        try:
            data, _ = await instance.session.request(instance.control, {
                "request": "listparticipants", "room": janus_room_id(session_id)})
        except JanusError as exc:
            if exc.code == NO_SUCH_ROOM:
                return set()
            raise
        return {int(p["id"]) for p in data.get("participants", []) if p.get("publisher")}

    async def _subscribe(self, instance: Instance, media: MemberMedia, desired: dict[int, str]) -> None:
        assert instance.session is not None
        add = [feed for feed in desired if feed not in media.subscribed]
        remove = [feed for feed in media.subscribed if feed not in desired]
        if not add and not remove:
            return
        if media.subscriber is None:
            if not add:
                return
            media.subscriber = await instance.session.attach()
            body: dict[str, Any] = {"request": "join", "ptype": "subscriber",
                                    "room": janus_room_id(media.session_id),
                                    "streams": [{"feed": feed} for feed in add]}
        else:
            body = {"request": "update"}
            if add:
                body["subscribe"] = [{"feed": feed} for feed in add]
            if remove:
                body["unsubscribe"] = [{"feed": feed} for feed in remove]
        try:
            data, jsep = await instance.session.request(media.subscriber, body)
        except JanusError as exc:
            if exc.code != NO_SUCH_FEED:
                raise
            return  # a feed went away meanwhile: the next reconcile asks again without it
        media.subscribed = dict(desired)
        if jsep is not None:
            await self._offer(media, data, jsep)

    async def _offer(self, media: MemberMedia, data: dict[str, Any], jsep: dict[str, Any]) -> None:
        """Send the member Janus's subscription offer, each stream named by the participant it comes from."""
        if jsep.get("type") != "offer" or not isinstance(jsep.get("sdp"), str):
            return
        owners = {feed_id(media.session_id, pid): pid for pid in media.subscribed.values()}
        streams = []
        for stream in data.get("streams", []):
            owner = owners.get(stream.get("feed_id"))
            if owner is not None and stream.get("type") in ("audio", "video"):
                streams.append({"mid": str(stream.get("mid")), "kind": stream["type"], "participant_id": owner})
        media.video_mids = {s["mid"]: s["participant_id"] for s in streams if s["kind"] == "video"}
        await self._emit("media_offer", {"offer": {"type": "offer", "sdp": jsep["sdp"]}, "streams": streams},
                         media.sid)

    # --- simulcast layers by tile size -------------------------------------------------------------------

    def publishes(self, session_id: str, participant_id: str, sid: str) -> bool:
        """Whether this socket of the member has media at the media server through this node."""
        media = self._media.get((session_id, participant_id))
        return media is not None and media.sid == sid

    def may_lay_out(self, session_id: str, participant_id: str) -> bool:
        """Whether the member's last media_layout is far enough behind (then this one counts)."""
        now = asyncio.get_running_loop().time()
        key = (session_id, participant_id)
        if now - self._laid_out_at.get(key, -LAYOUT_INTERVAL_SECONDS) < LAYOUT_INTERVAL_SECONDS:
            return False
        if len(self._laid_out_at) > 10_000:
            self._laid_out_at = {k: t for k, t in self._laid_out_at.items() if now - t < LAYOUT_INTERVAL_SECONDS}
        self._laid_out_at[key] = now
        return True

    async def set_layout(self, session_id: str, participant_id: str, sid: str,
                         tiles: dict[str, tuple[int, int]]) -> bool:
        """Keep the member's tile sizes and switch each video it receives to the layer they call for; False if
        the member has no media on this node. Kept across its subscription's changes until the next layout."""
        media = self._media.get((session_id, participant_id))
        if media is None or media.sid != sid:
            return False
        instance = await self._instance(media.url)
        async with media.lock:
            media.tiles = dict(tiles)
            if self._media.get((session_id, participant_id)) is media:
                await self._apply_layout(instance, media)
        return True

    async def _apply_layout(self, instance: Instance, media: MemberMedia) -> None:
        """``configure`` the subscriber's video streams whose substream differs from what its tiles call for.
        A stream whose tile the page has not reported stays at Janus's default, the top substream."""
        if media.subscriber is None or instance.session is None:
            return
        wanted: dict[tuple[str, str], int] = {}
        for mid, owner in media.video_mids.items():
            if owner in media.tiles:
                wanted[(mid, owner)] = substream_for(*media.tiles[owner])
        changes = [{"mid": mid, "substream": layer, "temporal": 2}
                   for (mid, owner), layer in wanted.items() if media.substreams.get((mid, owner)) != layer]
        media.substreams = {key: layer for key, layer in media.substreams.items() if key in wanted}
        if not changes:
            return
        try:
            await instance.session.request(media.subscriber, {"request": "configure", "streams": changes})
        except JanusError as exc:
            log.warning("simulcast layers not switched", extra={"session_id": media.session_id, "error": str(exc)})
            return
        for change in changes:
            key = (str(change["mid"]), media.video_mids[str(change["mid"])])
            media.substreams[key] = int(change["substream"])
    # --- for the recorder's forwarders (signaling/sfurecorder.py) ------------------------------------

    @property
    def store(self) -> RoomStore:
        return self._store

    async def instance(self, url: str) -> Instance:
        return await self._instance(url)

    async def active_feeds(self, instance: Instance, session_id: str) -> set[int]:
        return await self._active_feeds(instance, session_id)

    @staticmethod
    def room_id(session_id: str) -> int:
        return janus_room_id(session_id)

    @staticmethod
    def feed(session_id: str, participant_id: str) -> int:
        return feed_id(session_id, participant_id)

    def room_secret(self, session_id: str) -> str:
        return self._secret(session_id)

    async def emit(self, event: str, data: Any, sid: str) -> None:
        await self._emit(event, data, sid)

    def own(self, work: Awaitable[None]) -> None:
        self._tasks.own(work)

    # --- handles going away ---------------------------------------------------------------------------

    async def _forget(self, media: MemberMedia) -> None:
        if self._media.get((media.session_id, media.participant_id)) is media:
            del self._media[(media.session_id, media.participant_id)]
        async with media.lock:
            await self._drop(media)

    async def _drop(self, media: MemberMedia) -> None:
        """Detach the member's handles: its feed leaves the room, its subscription ends."""
        instance = self._instances.get(media.url)
        session = instance.session if instance is not None else None
        handles = [h for h in (media.subscriber, media.publisher) if h is not None]
        media.subscriber = media.publisher = None
        media.subscribed = {}
        media.video_mids, media.substreams = {}, {}
        if session is None or session.lost:
            return
        for handle in handles:
            with contextlib.suppress(JanusLost):
                await session.detach(handle)

    def _find(self, instance: Instance, handle: int) -> MemberMedia | None:
        for media in self._media.values():
            if media.url == instance.url and handle in (media.publisher, media.subscriber):
                return media
        return None

    def _on_event(self, instance: Instance, handle: int, event: dict[str, Any]) -> None:
        media = self._find(instance, handle)
        if media is None:
            return
        data = event.get("plugindata", {}).get("data", {})
        jsep = event.get("jsep")
        if handle == media.subscriber and isinstance(jsep, dict) and jsep.get("type") == "offer":
            # A renegotiation Janus postponed ("updating") and sends now.
            self._tasks.own(self._offer(media, data, jsep))
        if event.get("janus") == "webrtcup" or any(k in data for k in ("publishers", "unpublished", "leaving")):
            self.schedule(media.session_id)

    def _on_lost(self, instance: Instance) -> None:
        """The instance restarted or stopped: every member's media there starts again (``media_reset``)."""
        instance.down_until = asyncio.get_running_loop().time() + 1.0
        lost = [m for m in self._media.values() if m.url == instance.url]
        log.warning("Janus session lost; members publish again", extra={"janus": instance.url,
                                                                         "members": len(lost)})
        for media in lost:
            del self._media[(media.session_id, media.participant_id)]
            self._published_at.pop((media.session_id, media.participant_id), None)  # told to publish at once
            media.publisher = media.subscriber = None
            self._tasks.own(self._emit("media_reset", {"reason": "sfu_lost"}, media.sid))
