"""The case record's engine, transactions and schema migrations."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from server.datadir import private_sqlite

log = logging.getLogger("mediation.database")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> AsyncEngine:
    # hide_parameters: no SQL parameter (a password hash, an e-mail address) in a log line or an exception.
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 10}, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    else:
        engine = create_async_engine(
            url, pool_pre_ping=True, pool_size=10, max_overflow=10, pool_timeout=5, hide_parameters=True,
            connect_args={"timeout": 5, "command_timeout": 15},
        )
    return engine


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the schema; blocking, so call it off the event loop (it runs its own loop)."""
    command.upgrade(alembic_config(url), revision)


class Database:
    """Engine plus sessions; write transactions are serialised where the backend needs it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = url.startswith("sqlite")
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer; serialising here avoids "database is locked" under load
        # and makes audit sequence numbers gap-free. PostgreSQL uses an advisory lock instead.
        self._write_lock = asyncio.Lock()
        self._after_commit: list[Callable[[dict[Any, Any]], Awaitable[None]]] = []

    def after_commit(self, action: Callable[[dict[Any, Any]], Awaitable[None]]) -> None:
        """Run ``action(session.info)`` after every write transaction commits, before ``write`` returns."""
        self._after_commit.append(action)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits on success and rolls back on any error."""
        if self.is_sqlite:
            async with self._write_lock:
                async with self._sessions() as session, session.begin():
                    yield session
        else:
            async with self._sessions() as session, session.begin():
                yield session
        for action in self._after_commit:
            await action(session.info)

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def migrate(self) -> None:
        if self.is_sqlite:
            private_sqlite(Path(self.url.split("///", 1)[1]))
        await asyncio.to_thread(migrate, self.url)

    async def close(self) -> None:
        await self.engine.dispose()
