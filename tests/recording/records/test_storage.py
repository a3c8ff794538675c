"""DirectoryStorage keeps records write-once, private (0700/0600) and strictly inside its root."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from recording.records.storage import (
    DirectoryStorage,
    InvalidKeyError,
    RecordExistsError,
    RecordNotFoundError,
    RecordStorage,
    StorageError,
)

KEY = "cases/cas_1/sessions/ses_1/recordings/pty_1/000000.webm.age"


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if not p.is_dir())


async def test_storage_put_creates_0700_directories_and_0600_files(tmp_path: Path) -> None:
    store = DirectoryStorage(tmp_path / "records")
    await store.put(KEY, b"ciphertext")
    path = tmp_path / "records" / KEY
    assert _mode(path) == 0o600
    directory = path.parent
    while directory != tmp_path:
        assert _mode(directory) == 0o700, directory
        directory = directory.parent
    assert _all_files(tmp_path / "records") == [path]  # no temporary file left behind


async def test_storage_put_then_get_size_exists_round_trip(tmp_path: Path) -> None:
    store = DirectoryStorage(tmp_path)
    data = os.urandom(100_000)
    assert not await store.exists(KEY)
    await store.put(KEY, data)
    assert await store.exists(KEY)
    assert await store.get(KEY) == data
    assert await store.size(KEY) == len(data)


async def test_storage_missing_record_raises_not_found(tmp_path: Path) -> None:
    store = DirectoryStorage(tmp_path)
    for operation in (store.get, store.size):
        with pytest.raises(RecordNotFoundError, match="cases/none"):
            await operation("cases/none/x.age")
    assert not await store.exists("cases/none/x.age")


async def test_storage_existing_key_is_never_overwritten(tmp_path: Path) -> None:
    store = DirectoryStorage(tmp_path)
    await store.put(KEY, b"first")
    with pytest.raises(RecordExistsError, match="already exists"):
        await store.put(KEY, b"second")
    assert await store.get(KEY) == b"first"
    assert _all_files(tmp_path) == [tmp_path / KEY]


async def test_storage_concurrent_puts_of_one_key_exactly_one_wins(tmp_path: Path) -> None:
    store = DirectoryStorage(tmp_path)
    payloads = [bytes([n]) * 50_000 for n in range(8)]
    results = await asyncio.gather(*(store.put(KEY, p) for p in payloads), return_exceptions=True)
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, RecordExistsError) for r in results if r is not None)
    winner = payloads[results.index(None)]
    assert await store.get(KEY) == winner


@pytest.mark.parametrize(
    "key",
    [
        "../escape.age", "cases/../../escape.age", "/etc/passwd", "cases//x.age", "cases/./x.age", "cases/x/",
        "", "Cases/x.age", "cases\\x.age", "cases/x\x00.age", "cases/~tmp-1", "cases/x y.age",
        "a" * 256, "a/" + "b" * 129,
    ],
)
async def test_storage_unsafe_key_refused_everywhere(tmp_path: Path, key: str) -> None:
    store = DirectoryStorage(tmp_path / "records")
    for call in (store.put(key, b"x"), store.get(key), store.exists(key), store.size(key)):
        with pytest.raises(InvalidKeyError):
            await call
    assert _all_files(tmp_path) == []


async def test_storage_symlink_inside_root_is_not_followed(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "records", tmp_path / "elsewhere"
    elsewhere.mkdir()
    store = DirectoryStorage(root)
    (root / "cases").symlink_to(elsewhere)
    with pytest.raises(StorageError, match="not a plain directory"):
        await store.put("cases/x.age", b"x")
    assert list(elsewhere.iterdir()) == []
    (elsewhere / "secret").write_bytes(b"not a record")
    (root / "planted.age").symlink_to(elsewhere / "secret")
    with pytest.raises(StorageError, match="symbolic link"):
        await store.get("planted.age")


def test_storage_existing_loose_root_is_tightened(tmp_path: Path) -> None:
    root = tmp_path / "records"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    DirectoryStorage(root)
    assert _mode(root) == 0o700


def test_storage_root_that_is_a_file_refused(tmp_path: Path) -> None:
    (tmp_path / "records").write_text("oops")
    with pytest.raises(StorageError, match="not a directory"):
        DirectoryStorage(tmp_path / "records")


def test_storage_directory_implements_the_protocol(tmp_path: Path) -> None:
    assert isinstance(DirectoryStorage(tmp_path), RecordStorage)
