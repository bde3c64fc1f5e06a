"""Engine and session factory for one database URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Database:
    """Owns the engine of one process and hands out sessions."""

    def __init__(self, url: str, *, pool_size: int | None = None) -> None:
        """``pool_size``: connections kept (SQLAlchemy's default, 5, when None); as many
        more may be opened for a while on a server (any number on a SQLite file)."""
        self.url = url
        self.request_slots: int | None = None
        """Requests that may hold a session of this database at once (the API's admission,
        :func:`flowforge_shared.deps.get_session`); None: no limit (SQLite's pool has none)."""
        kwargs: dict = {}
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            in_file = bool(path) and path != ":memory:"
            if in_file:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            # No pre-ping: a file cannot drop the connection (it was a query per checkout).
            if pool_size and in_file:
                # No limit beyond the kept ones: a SQLite connection is a file handle, and a
                # bounded pool could make a request wait for a connection that another
                # request holds while it waits for a thread (see web.py, API_POOL).
                kwargs.update(pool_size=pool_size, max_overflow=-1)
        else:
            kwargs["connect_args"] = {"connect_timeout": 10}
            kwargs["pool_pre_ping"] = True  # a server may have closed it
            if pool_size:
                kwargs.update(pool_size=pool_size, max_overflow=pool_size)
                # A request holds at most two connections at once (its session, and the
                # audit outbox's hand-over at its commit); the other half of the pool covers
                # those and the background passes, so no request thread waits for the pool.
                self.request_slots = pool_size
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends cleanly, rolled back otherwise."""
        session = self.sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
