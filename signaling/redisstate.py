"""Room state in Redis, shared by every server node: a per-room lock, the room and its chat sealed per session.

Nothing readable rests in Redis or its append-only file: every value with content is sealed by
``signaling.sealedstate`` under a per-session key; ``shred`` destroys that key when the session ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from signaling.identity import Unavailable
from signaling.roomstate import Room, tombstone
from signaling.sealedstate import TOMBSTONE, SessionCipher, StateUnreadable, fingerprint, new_salt

log = logging.getLogger("mediation.signaling.redis")

# Compare-and-delete: only the holder of the token may release the lock.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Extend the lock's life only while it is still ours.
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# Take the room's lock and, if taken, read the room and its salt: one round trip where three were.
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3])}
end
return {0}
"""

# Write the room back only while still holding its lock; refresh every key's expiry; release the lock.
_SAVE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
redis.call('PEXPIRE', KEYS[4], ARGV[3])
redis.call('PEXPIRE', KEYS[5], ARGV[3])
redis.call('DEL', KEYS[1])
return 1
"""

# Number and store in one step, so the list is in seq order (skip_seq may leave gaps in the numbers).
# ARGV[1] is the message sealed under the number it gets, ARGV[3], with the session's salt ARGV[4] (the
# node's copy: checked here, so a node never needs to read the salt or the number before appending);
# an item is "<seq>:<sealed message>".
_APPEND = """
if redis.call('GET', KEYS[3]) ~= ARGV[4] then
  return redis.error_reply('CHAT_SALT_MOVED')
end
local next = tonumber(redis.call('GET', KEYS[2]) or '0') + 1
if next ~= tonumber(ARGV[3]) then
  return redis.error_reply('CHAT_NUMBER_MOVED sealed as ' .. ARGV[3] .. ', next is ' .. next)
end
local seq = redis.call('INCR', KEYS[2])
redis.call('RPUSH', KEYS[1], seq .. ':' .. ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return seq
"""

_MOVED = "CHAT_NUMBER_MOVED"
_SALT_MOVED = "CHAT_SALT_MOVED"
# Sessions whose salt and next chat number a node remembers (a guess the append script checks).
_MAX_REMEMBERED_SESSIONS = 10_000

# Destroy the session's key with everything sealed under it; the room stays as a tombstone (no content).
_SHRED = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'KEEPTTL') end
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5])
return 1
"""


@contextlib.contextmanager
def answering() -> Iterator[None]:
    """Redis down, restarting or loading its data becomes Unavailable: the client is told to retry."""
    try:
        yield
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise Unavailable(f"the room store did not answer: {exc}") from exc


class RoomLockTimeout(Unavailable, TimeoutError):
    """Another node held the room's lock for longer than we may wait."""


class RoomLockLost(RuntimeError):
    """The lock expired before the transaction ended; its changes were not saved."""


class _StaleCheck:
    """Before a command on a connection idle past the health-check interval: PING, and if the
    connection turns out dead, connect again (which raises if Redis is still away)."""

    async def check_health(self) -> None:
        connection: Any = self
        if connection.health_check_interval and asyncio.get_running_loop().time() > connection.next_health_check:
            try:
                await connection.send_command("PING", check_health=False)
                await connection.read_response()
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
                await connection.disconnect()
                await connection.connect()


class _CheckedConnection(_StaleCheck, aioredis.Connection):
    pass


class _CheckedSSLConnection(_StaleCheck, aioredis.SSLConnection):
    pass


def redis_client(url: str, *, wait: float) -> aioredis.Redis:
    """A client that never retries a command, checks idle connections first, and waits ``wait`` for a free one."""
    checked = _CheckedSSLConnection if url.startswith("rediss:") else _CheckedConnection
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=100, timeout=wait,
                                                    retry=Retry(NoBackoff(), 0), socket_timeout=5.0,
                                                    socket_connect_timeout=5.0, health_check_interval=1,
                                                    connection_class=checked)
    return aioredis.Redis.from_pool(pool)


class RedisRoomStore:
    """Rooms in Redis: several server processes share them; ``transaction`` excludes across processes.

    ``secret`` is the room-state secret every node shares (never stored in Redis); with each session's
    salt it gives the key its values are sealed under (``signaling.sealedstate``)."""

    def __init__(self, url: str, *, secret: bytes, prefix: str = "mediation", lock_ttl: float = 5.0,
                 lock_wait: float = 10.0, room_ttl: float = 7 * 24 * 3600, rewrite_aof: bool = False) -> None:
        if lock_ttl <= 0 or lock_wait <= 0 or room_ttl <= 0:
            raise ValueError("lock_ttl, lock_wait and room_ttl must be positive")
        # No automatic retries: a retried script after a lost reply could append a message twice.
        # Every Redis error reaches the caller, who reports it; nothing is lost silently.
        # When every connection is busy (many participants at once), a command waits for one instead of
        # failing; only past lock_wait does it fail, as Unavailable.
        # Since commands are not retried, a pooled connection that Redis closed when it restarted would fail
        # the first command given to it, long after Redis is back: a connection idle for a second is
        # checked with a PING first, and reconnected once if that fails.
        self._redis = redis_client(url, wait=lock_wait)
        self._secret = secret
        SessionCipher(secret, "check", bytes(32))  # a secret of the wrong size fails at start
        self._prefix = prefix
        self._lock_ttl_ms = int(lock_ttl * 1000)
        self._lock_wait = lock_wait
        self._room_ttl_ms = int(room_ttl * 1000)
        # After a shred, ask Redis to rewrite its append-only file, so the deleted salt leaves it too.
        self._rewrite_aof = rewrite_aof
        # session_id -> (its salt, the next chat number) as this node last saw them: a guess, checked by _APPEND.
        self._chat_guess: dict[str, tuple[bytes, int]] = {}
        self._acquire_read = self._redis.register_script(_ACQUIRE)
        self._release = self._redis.register_script(_RELEASE)
        self._extend = self._redis.register_script(_EXTEND)
        self._save = self._redis.register_script(_SAVE)
        self._append = self._redis.register_script(_APPEND)
        self._shred = self._redis.register_script(_SHRED)

    async def check_secret(self) -> None:
        """Raise StateUnreadable if the nodes already sharing this Redis hold another room-state secret."""
        key = f"{self._prefix}:room-state-secret-check"
        mine = fingerprint(self._secret)
        with answering():
            theirs = await self._redis.set(key, mine, nx=True, get=True)  # None: we are the first
        if theirs not in (None, mine):
            raise StateUnreadable("this node's room-state secret differs from the one the other nodes sharing "
                                  "this Redis use: give every node the same MEDIATION_ROOM_STATE_KEY(_FILE)")

    def _keys(self, session_id: str) -> tuple[str, str, str, str, str]:
        """The room's (room, chat, seq, lock, salt) keys."""
        # The braces are a Redis Cluster hash tag: a room's keys share a slot, so scripts may touch them all.
        room = f"{self._prefix}:room:{{{session_id}}}"
        return room, f"{room}:chat", f"{room}:seq", f"{room}:lock", f"{room}:salt"

    def _cipher(self, session_id: str, salt: bytes | None) -> SessionCipher:
        if salt is None:
            raise StateUnreadable(f"session {session_id}: its key is shredded or was never made")
        return SessionCipher(self._secret, session_id, salt)

    async def _salt(self, session_id: str) -> bytes:
        """The session's salt, made by whichever node needs it first."""
        salt = new_salt()
        return await self._redis.set(self._keys(session_id)[4], salt, nx=True, get=True, px=self._room_ttl_ms) or salt

    def _load(self, session_id: str, raw: bytes | None, salt: bytes | None) -> Room | None:
        if raw is None:
            return None
        if raw[:1] == TOMBSTONE:
            return Room.from_dict(json.loads(raw[1:]))
        room_key = self._keys(session_id)[0]
        return Room.from_dict(json.loads(self._cipher(session_id, salt).open(room_key, raw)))

    def _dump(self, room: Room, salt: bytes | None) -> bytes:
        room_key = self._keys(room.session_id)[0]
        return self._cipher(room.session_id, salt).seal(room_key, json.dumps(room.to_dict()).encode())

    @contextlib.asynccontextmanager
    async def transaction(self, session_id: str) -> AsyncIterator[Room | None]:
        room_key, chat_key, seq_key, lock_key, salt_key = self._keys(session_id)
        with answering():
            token, raw, salt = await self._acquire_reading(lock_key, room_key, salt_key, session_id)
        renewing = asyncio.create_task(self._renew(lock_key, token), name=f"room-lock-{session_id}")
        released = False
        try:
            room = self._load(session_id, raw, salt)
            yield room
            if room is not None:
                # A shredded room stays a tombstone: there is no key left to seal it under.
                value = (TOMBSTONE + json.dumps(tombstone(room).to_dict()).encode()
                         if raw is not None and raw[:1] == TOMBSTONE else self._dump(room, salt))
                with answering():
                    saved = await self._save(keys=[lock_key, room_key, chat_key, seq_key, salt_key],
                                             args=[token, value, self._room_ttl_ms])
                if not saved:
                    raise RoomLockLost(f"room {session_id}: the lock expired during the transaction; not saved")
                released = True  # the save script released it
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            if not released:
                await self._unlock(lock_key, token)

    async def _renew(self, lock_key: str, token: str) -> None:
        """Extend the lock while its transaction runs: the room is never held longer than lock_ttl by a
        node that died or lost Redis, yet a slow transaction on a live node keeps it."""
        while True:
            await asyncio.sleep(self._lock_ttl_ms / 3000)
            try:
                if not await self._extend(keys=[lock_key], args=[token, self._lock_ttl_ms]):
                    return  # lost: the transaction's save refuses
            except redis.exceptions.RedisError:
                log.warning("could not extend a room lock", exc_info=True)

    async def _acquire(self, lock_key: str, session_id: str) -> str:
        """Take the room's lock, waiting with a short jittered backoff; raise RoomLockTimeout past the wait."""
        token = secrets.token_hex(16)
        deadline = time.monotonic() + self._lock_wait
        delay = 0.002
        while not await self._redis.set(lock_key, token, nx=True, px=self._lock_ttl_ms):
            if time.monotonic() >= deadline:
                raise RoomLockTimeout(f"room {session_id} stayed locked for {self._lock_wait:g} s")
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 0.05)
        return token

    async def _acquire_reading(self, lock_key: str, room_key: str, salt_key: str,
                               session_id: str) -> tuple[str, bytes | None, bytes | None]:
        """``_acquire``, reading the room and its salt in the same script once the lock is ours."""
        token = secrets.token_hex(16)
        deadline = time.monotonic() + self._lock_wait
        delay = 0.002
        while True:
            taken = await self._acquire_read(keys=[lock_key, room_key, salt_key], args=[token, self._lock_ttl_ms])
            if taken[0] == 1:
                return token, taken[1], taken[2]
            if time.monotonic() >= deadline:
                raise RoomLockTimeout(f"room {session_id} stayed locked for {self._lock_wait:g} s")
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 0.05)

    async def _unlock(self, lock_key: str, token: str) -> None:
        """Release the lock if still ours."""
        try:
            await self._release(keys=[lock_key], args=[token])
        except Exception:  # noqa: BLE001 - the lock expires on its own; the outcome is already decided
            log.warning("could not release a room lock; it expires in %d ms", self._lock_ttl_ms, exc_info=True)

    async def create(self, room: Room) -> Room:
        room_key, _, _, _, salt_key = self._keys(room.session_id)
        with answering():
            raw, salt = await self._redis.mget(room_key, salt_key)
            if raw is None:
                salt = await self._salt(room.session_id)
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.set(room_key, self._dump(room, salt), nx=True, px=self._room_ttl_ms)
                    pipe.mget(room_key, salt_key)
                    _, (raw, salt) = await pipe.execute()
        loaded = self._load(room.session_id, raw, salt)
        if loaded is None:
            raise RoomLockLost(f"room {room.session_id}: gone as soon as it was created")
        return loaded

    async def get(self, session_id: str) -> Room | None:
        room_key, _, _, _, salt_key = self._keys(session_id)
        with answering():
            raw, salt = await self._redis.mget(room_key, salt_key)
        return self._load(session_id, raw, salt)

    async def append_chat(self, session_id: str, message: dict[str, Any]) -> dict[str, Any]:
        body = {key: value for key, value in message.items() if key != "seq"}
        _, chat_key, seq_key, _, salt_key = self._keys(session_id)
        with answering():
            guess = self._chat_guess.get(session_id)
            if guess is None:
                guess = (await self._salt(session_id), int(await self._redis.get(seq_key) or 0) + 1)
            while True:
                # Each message is sealed bound to its number; should another append have taken that number
                # (callers without the room's transaction, another node), seal again under the next.
                salt, seq = guess
                stored = {**body, "seq": seq}
                sealed = self._cipher(session_id, salt).seal(f"{chat_key}#{seq}", json.dumps(stored).encode())
                try:
                    await self._append(keys=[chat_key, seq_key, salt_key],
                                        args=[sealed, self._room_ttl_ms, seq, salt])
                except redis.exceptions.ResponseError as exc:
                    if _MOVED in str(exc):
                        guess = (salt, int(str(exc).rsplit(" ", 1)[1]))
                        continue
                    if _SALT_MOVED in str(exc):
                        guess = (await self._salt(session_id), int(await self._redis.get(seq_key) or 0) + 1)
                        continue
                    raise
                if len(self._chat_guess) >= _MAX_REMEMBERED_SESSIONS:
                    self._chat_guess.clear()
                self._chat_guess[session_id] = (salt, seq + 1)
                return stored

    async def next_seq(self, session_id: str) -> int:
        seq_key = self._keys(session_id)[2]
        with answering():
            seq = int(await self._redis.get(seq_key) or 0) + 1
        guess = self._chat_guess.get(session_id)
        if guess is not None:
            self._chat_guess[session_id] = (guess[0], seq)
        return seq

    async def skip_seq(self, session_id: str) -> None:
        self._chat_guess.pop(session_id, None)
        seq_key = self._keys(session_id)[2]
        with answering():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(seq_key)
                pipe.pexpire(seq_key, self._room_ttl_ms)
                await pipe.execute()

    async def chat_messages(self, session_id: str) -> list[dict[str, Any]]:
        _, chat_key, _, _, salt_key = self._keys(session_id)
        with answering():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.lrange(chat_key, 0, -1)
                pipe.get(salt_key)
                items, salt = await pipe.execute()
        if not items:
            return []
        cipher = self._cipher(session_id, salt)
        messages = []
        for item in items:
            seq, _, sealed = item.partition(b":")
            messages.append(json.loads(cipher.open(f"{chat_key}#{int(seq)}", sealed)))
        return messages

    async def shred(self, session_id: str) -> None:
        self._chat_guess.pop(session_id, None)
        room_key, chat_key, seq_key, lock_key, salt_key = self._keys(session_id)
        with answering():
            token = await self._acquire(lock_key, session_id)
        try:
            with answering():
                raw, salt = await self._redis.mget(room_key, salt_key)
                room = self._load(session_id, raw, salt)
                value = b"" if room is None else TOMBSTONE + json.dumps(tombstone(room).to_dict()).encode()
                shredded = await self._shred(keys=[lock_key, room_key, chat_key, seq_key, salt_key],
                                             args=[token, value])
            if not shredded:
                raise RoomLockLost(f"room {session_id}: the lock expired before its key was shredded")
        finally:
            await self._unlock(lock_key, token)
        if self._rewrite_aof:
            try:
                await self._redis.bgrewriteaof()
            except redis.exceptions.RedisError as exc:
                # Already rewriting, or the command is disabled: the salt leaves the file at the next rewrite.
                log.warning("could not ask Redis to rewrite its append-only file after a shred: %s", exc)

    async def close(self) -> None:
        await self._redis.aclose()
