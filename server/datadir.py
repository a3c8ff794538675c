"""Modes of what the server keeps on disk: its directories 0700 and its database files 0600, whoever creates them.

The server and ``mediation-admin`` both create the data directory and the SQLite database; either may
come first, under any umask. Directories are made (or tightened, when this user owns them) to 0700;
the database file is created 0600 before SQLite opens it, and SQLite gives its -wal and -shm files
the mode of the database file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def private_directory(path: Path, *, tighten: bool = True) -> Path:
    """``path`` (and any parent it had to make) as a directory only this user can open.

    With ``tighten`` an existing ``path`` this user owns is narrowed to 0700 too (the data directory);
    without, only what this call makes is (the parent of a key file an operator named)."""
    missing = [parent for parent in (path, *path.parents) if not parent.exists()]
    path.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    for made in missing:
        os.chmod(made, DIRECTORY_MODE)  # mkdir's mode passes through the umask; parents get the default
    if tighten:
        _tighten(path, DIRECTORY_MODE)
    return path


def private_sqlite(path: Path) -> None:
    """Create the SQLite file 0600 in a 0700 directory before SQLite opens it; tighten what exists."""
    private_directory(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE))
    except FileExistsError:
        pass
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            _tighten(companion, FILE_MODE)


def _tighten(path: Path, mode: int) -> None:
    info = path.stat()
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & ~mode:
        os.chmod(path, mode)
