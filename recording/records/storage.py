"""Where sealed records are kept (docs/records.md, "Storage keys"): one write-once interface, and a local directory."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
import secrets
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = [
    "MAX_KEY_LENGTH",
    "DirectoryStorage",
    "InvalidKeyError",
    "RecordExistsError",
    "RecordNotFoundError",
    "RecordStorage",
    "StorageError",
    "validate_key",
]

log = logging.getLogger("mediation.recording.storage")

# Fits the case record's storage_key column (String(255)).
MAX_KEY_LENGTH = 255
_MAX_COMPONENT_LENGTH = 128
_COMPONENT = re.compile(r"^[a-z0-9_.-]+$")
# "~" is outside the key alphabet, so a temporary name can never collide with a record's key.
_TEMP_PREFIX = "~tmp-"
_DIR_MODE = 0o700
_FILE_MODE = 0o600
# Threads fsyncing one batch's files at once (DirectoryStorage.put_many).
_SYNC_THREADS = 16
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class StorageError(Exception):
    """A record store refused or failed an operation."""


class InvalidKeyError(StorageError, ValueError):
    """A key outside the allowed alphabet or shape."""


class RecordExistsError(StorageError, FileExistsError):
    """A put to a key that already holds a record: records are never overwritten."""


class RecordNotFoundError(StorageError, FileNotFoundError):
    """No record under the key."""


def validate_key(key: str) -> list[str]:
    """Return the key's path components; raise InvalidKeyError unless it is a safe relative key.

    A key is "/"-separated components of [a-z0-9_.-], none empty, "." or "..", at most
    MAX_KEY_LENGTH characters in all. So a key can never name anything outside the store's root.
    """
    if not isinstance(key, str):
        raise InvalidKeyError(f"a record key must be a string, not {type(key).__name__}")
    shown = repr(key if len(key) <= MAX_KEY_LENGTH else key[:MAX_KEY_LENGTH] + "…")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(f"record key {shown} must be 1 to {MAX_KEY_LENGTH} characters long")
    if key.startswith("/"):
        raise InvalidKeyError(f"record key {shown} must be relative, not absolute")
    components = key.split("/")
    for component in components:
        if component in ("", ".", ".."):
            raise InvalidKeyError(f"record key {shown} has an empty, '.' or '..' component")
        if not _COMPONENT.match(component):
            raise InvalidKeyError(f"record key {shown} may hold only a-z, 0-9, '_', '.', '-' and '/'")
        if len(component) > _MAX_COMPONENT_LENGTH:
            raise InvalidKeyError(f"record key {shown} has a component over {_MAX_COMPONENT_LENGTH} characters")
    return components


@runtime_checkable
class RecordStorage(Protocol):
    """A write-once store of sealed records, addressed by key.

    `put` creates exclusively: a key that exists raises RecordExistsError and the stored
    record is untouched. `get` and `size` raise RecordNotFoundError for a missing key.
    Every method raises InvalidKeyError for a key `validate_key` refuses. An object-store
    implementation maps `put` to a conditional create (S3's `If-None-Match: *`).
    """

    async def put(self, key: str, data: bytes) -> None: ...

    async def put_many(self, items: list[tuple[str, bytes]]) -> list[StorageError | None]:
        """Store each (key, data) as `put` does; per item None, or the error that item met (the others stand)."""
        ...

    async def get(self, key: str) -> bytes: ...

    async def exists(self, key: str) -> bool: ...

    async def size(self, key: str) -> int: ...


class DirectoryStorage:
    """Records as files under one local (or shared) directory: 0700 directories, 0600 files.

    The root is created 0700. If it already exists with group or other permission bits, they
    are removed (and a warning logged): tightening only takes access away, and records,
    although ciphertext, are nobody else's business. A root that is not a directory, or not
    owned by this process's user, is refused rather than adopted.

    A put writes a temporary file created exclusively (O_CREAT|O_EXCL, 0600), writes it fully,
    fsyncs it, then hard-links it to its key, which fails if the key exists, and fsyncs the
    directory. So a reader never sees a half-written record, a crash leaves at most a
    "~tmp-…" file (safe to delete when no put is running) and never occupies the key, and
    two writers of one key cannot both succeed. The filesystem must support hard links.

    Paths are walked one component at a time with O_NOFOLLOW, so a symbolic link planted
    inside the root cannot redirect a read or write elsewhere.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._prepare_root()

    def _prepare_root(self) -> None:
        try:
            self.root.mkdir(mode=_DIR_MODE, parents=True)
        except FileExistsError:
            pass
        info = os.lstat(self.root)
        if stat.S_ISLNK(info.st_mode):
            info = os.stat(self.root)  # an operator may point the root elsewhere by a link
        if not stat.S_ISDIR(info.st_mode):
            raise StorageError(f"records root {str(self.root)!r} exists and is not a directory")
        if info.st_uid != os.geteuid():
            raise StorageError(
                f"records root {str(self.root)!r} is owned by uid {info.st_uid}, "
                f"not by this process (uid {os.geteuid()})"
            )
        mode = stat.S_IMODE(info.st_mode)
        if mode != _DIR_MODE:
            os.chmod(self.root, _DIR_MODE)
            log.warning("tightened records root %s from mode %o to %o", self.root, mode, _DIR_MODE)

    async def put(self, key: str, data: bytes) -> None:
        """Store `data` under a new `key`; raise RecordExistsError if the key is taken."""
        components = validate_key(key)
        if not isinstance(data, bytes):
            raise TypeError(f"record data must be bytes, not {type(data).__name__}")
        await asyncio.to_thread(self._put, key, components, data)

    async def put_many(self, items: list[tuple[str, bytes]]) -> list[StorageError | None]:
        """Store each (key, data) as `put` does, in one pass: each directory is made durable once.

        Returns, per item, None once it is durable or the StorageError it met (RecordExistsError for a
        key taken); the other items are stored all the same. Group commit of chat (server/chatcommit.py)
        files a batch so: what one batch costs is a file fsync per record and a directory fsync per
        directory written, not a directory fsync per record and a thread hop each.
        """
        checked = []
        for key, data in items:
            if not isinstance(data, bytes):
                raise TypeError(f"record data must be bytes, not {type(data).__name__}")
            checked.append((key, validate_key(key), data))
        return await asyncio.to_thread(self._put_many, checked)

    async def get(self, key: str) -> bytes:
        """Return the record stored under `key`."""
        components = validate_key(key)
        return await asyncio.to_thread(self._get, key, components)

    async def exists(self, key: str) -> bool:
        """Return whether a record is stored under `key`."""
        components = validate_key(key)
        return await asyncio.to_thread(self._exists, components)

    async def size(self, key: str) -> int:
        """Return the size in bytes of the record stored under `key`."""
        components = validate_key(key)
        return await asyncio.to_thread(self._size, key, components)

    # Everything below runs on a worker thread: blocking system calls only.

    @contextmanager
    def _parent(self, key: str, components: list[str], *, create: bool) -> Iterator[tuple[int, list[int]]]:
        """Yield (fd of the key's directory, fds of directories that gained an entry); closes them all."""
        opened: list[int] = []
        touched: list[int] = []
        try:
            fd = os.open(self.root, _OPEN_DIR & ~os.O_NOFOLLOW)  # the root itself may be a link
            opened.append(fd)
            for name in components[:-1]:
                if create:
                    try:
                        os.mkdir(name, _DIR_MODE, dir_fd=fd)
                        touched.append(fd)
                    except FileExistsError:
                        pass
                try:
                    fd = os.open(name, _OPEN_DIR, dir_fd=fd)
                except FileNotFoundError:
                    raise RecordNotFoundError(f"no record {key!r}") from None
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise StorageError(
                            f"record key {key!r} passes through {name!r}, which is not a plain directory"
                        ) from None
                    raise
                opened.append(fd)
            yield fd, touched
        finally:
            for fd in reversed(opened):
                os.close(fd)

    def _put(self, key: str, components: list[str], data: bytes) -> None:
        with self._parent(key, components, create=True) as (parent, touched):
            self._link_new(key, components[-1], parent, data)
            # Make the new entry durable, and the entries of any directory created on the way.
            os.fsync(parent)
            for fd in dict.fromkeys(touched):
                os.fsync(fd)

    def _put_many(self, items: list[tuple[str, list[str], bytes]]) -> list[StorageError | None]:
        outcomes: list[StorageError | None] = [None] * len(items)
        with ExitStack() as stack:
            parents: dict[tuple[str, ...], int] = {}
            dirty: dict[int, None] = {}  # directories that gained an entry, each fsynced once at the end
            written: list[tuple[int, int, str, int]] = []  # (item, parent fd, temporary name, file fd)
            for position, (key, components, data) in enumerate(items):
                where = tuple(components[:-1])
                try:
                    if where not in parents:
                        parent, touched = stack.enter_context(self._parent(key, components, create=True))
                        parents[where] = parent
                        dirty.update(dict.fromkeys(touched))
                except StorageError as exc:
                    outcomes[position] = exc
                    continue
                temp = _TEMP_PREFIX + secrets.token_hex(8)
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                             _FILE_MODE, dir_fd=parents[where])
                stack.callback(os.unlink, temp, dir_fd=parents[where])  # runs after the link, or on failure
                stack.callback(os.close, fd)
                _write_all(fd, data)
                written.append((position, parents[where], temp, fd))
            # The files' fsyncs run side by side: the filesystem makes them durable in the same journal
            # commits, as the database commits the batch's rows together, not one after another.
            if written:
                with ThreadPoolExecutor(max_workers=min(_SYNC_THREADS, len(written))) as pool:
                    list(pool.map(os.fsync, [fd for *_, fd in written]))
            for position, parent, temp, _ in written:
                key, components, _ = items[position]
                try:
                    os.link(temp, components[-1], src_dir_fd=parent, dst_dir_fd=parent, follow_symlinks=False)
                except FileExistsError:
                    outcomes[position] = RecordExistsError(
                        f"record {key!r} already exists; records are never overwritten")
                    continue
                dirty[parent] = None
            for fd in dirty:
                os.fsync(fd)
        return outcomes

    def _link_new(self, key: str, name: str, parent: int, data: bytes) -> None:
        """Write `data` to a fsynced temporary file and link it to `name`, which must not exist."""
        temp = _TEMP_PREFIX + secrets.token_hex(8)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     _FILE_MODE, dir_fd=parent)
        try:
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(temp, name, src_dir_fd=parent, dst_dir_fd=parent, follow_symlinks=False)
            except FileExistsError:
                raise RecordExistsError(f"record {key!r} already exists; records are never overwritten") from None
        finally:
            os.unlink(temp, dir_fd=parent)

    def _open_record(self, key: str, parent: int, name: str) -> int:
        try:
            return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        except FileNotFoundError:
            raise RecordNotFoundError(f"no record {key!r}") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StorageError(f"record {key!r} is a symbolic link, not a record") from None
            raise

    def _get(self, key: str, components: list[str]) -> bytes:
        with self._parent(key, components, create=False) as (parent, _):
            fd = self._open_record(key, parent, components[-1])
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise StorageError(f"record {key!r} is not a regular file")
            return handle.read()

    def _size(self, key: str, components: list[str]) -> int:
        with self._parent(key, components, create=False) as (parent, _):
            try:
                info = os.stat(components[-1], dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                raise RecordNotFoundError(f"no record {key!r}") from None
        if not stat.S_ISREG(info.st_mode):
            raise StorageError(f"record {key!r} is not a regular file")
        return info.st_size

    def _exists(self, components: list[str]) -> bool:
        try:
            self._size("/".join(components), components)
        except RecordNotFoundError:
            return False
        return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
