"""Engine and session factory for one database URL."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

SQLITE_REQUEST_SLOTS = 4
"""Requests that may use the API's SQLite database at once (its request slots,
:func:`flowforge_shared.deps.get_session`); the others wait on the event loop. Python's
sqlite3 lets go of the GIL for every row it steps, so with AnyIO's 40 threads all reading,
each row became a hand-over of the GIL among them: under 50 clients a 50-row listing cost
9-10 ms of CPU (4.4 of 10 s in the kernel, ~340 futex calls per request) instead of 1.5 ms.
With 4 slots: 5.0-5.5 ms, 1.3-1.6 s in the kernel, ~1.4x the requests/s (bench/README.md,
bench_api's fifth lap). A request gives its SQLite slot back when its session is closed."""


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


_outages_retried: ContextVar[bool] = ContextVar("flowforge_outages_retried", default=False)


@contextmanager
def outages_retried() -> Iterator[None]:
    """Within: the caller tries its work again when the database is found unavailable (an
    events worker recording a run event: ``outage_countdown``), so a connection the server
    dropped may as well be found by its first statement as by a ping (a round trip more)."""
    token = _outages_retried.set(True)
    try:
        yield
    finally:
        _outages_retried.reset(token)


def _ping_unless_recent(engine: Engine, idle: float) -> None:
    """SQLAlchemy's pessimistic disconnect handling (a ping at checkout; a failed ping makes
    the pool open a fresh connection), skipped within :func:`outages_retried` for a
    connection checked in less than ``idle`` seconds ago. Such a connection that the server
    dropped meanwhile (an administrator ended it, the server restarted within that time)
    fails its first statement instead: an outage of the database
    (``flowforge_shared.outages``: the connection was lost), which the caller retries, by
    then on a fresh connection (SQLAlchemy drops the pool's connections on a disconnect)."""

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection, record) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy) -> None:
        returned = record.info.get("returned_at")
        if returned is None:
            return  # opened just now
        if _outages_retried.get() and time.monotonic() - returned < idle:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise exc.DisconnectionError("the pooled connection is gone") from error


class ClosingSession(Session):
    """A session that calls its ``on_close`` (once, if set) when it is closed: the API gives
    a SQLite request slot back there (:func:`flowforge_shared.deps.get_session`), so a route
    that closes its session before a slow call (a connection test) does not keep its turn."""

    on_close: Callable[[], None] | None = None

    def close(self) -> None:
        try:
            super().close()
        finally:
            hook, self.on_close = self.on_close, None
            if hook is not None:
                hook()


class Database:
    """Owns the engine of one process and hands out sessions."""

    def __init__(
        self, url: str, *, pool_size: int | None = None, ping_after_idle: float | None = None
    ) -> None:
        """``pool_size``: connections kept (SQLAlchemy's default, 5, when None); as many
        more may be opened for a while on a server (any number on a SQLite file).

        ``ping_after_idle`` (a server only): within :func:`outages_retried`, a pooled
        connection is pinged at checkout only when it has been idle that many seconds
        (elsewhere at every checkout, as without it); see :func:`_ping_unless_recent`."""
        self.url = url
        self.request_slots: int | None = None
        """Requests that may hold a session of this database at once (the API's admission,
        :func:`flowforge_shared.deps.get_session`); None: no limit (a database made without
        ``pool_size``: not the API's)."""
        self.slot_until_closed = False
        """A request gives its slot back as soon as its session is closed (SQLite), not when
        it ends: on a server the slots also bound the pool (a request that closed its
        session may still open a connection, the audit hand-over's), on SQLite only the
        threads reading it."""
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
                self.request_slots = SQLITE_REQUEST_SLOTS
                self.slot_until_closed = True
        else:
            kwargs["connect_args"] = {"connect_timeout": 10}
            # A server may have closed it: pinged at checkout (the pool's own pre-ping, or
            # ours, which spares a connection used a moment ago where outages are retried).
            kwargs["pool_pre_ping"] = ping_after_idle is None
            if pool_size:
                kwargs.update(pool_size=pool_size, max_overflow=pool_size)
                # A request holds at most two connections at once (its session, and the
                # audit outbox's hand-over at its commit); the other half of the pool covers
                # those and the background passes, so no request thread waits for the pool.
                self.request_slots = pool_size
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        elif ping_after_idle is not None:
            _ping_unless_recent(self.engine, ping_after_idle)
        self.sessionmaker = sessionmaker(self.engine, class_=ClosingSession, expire_on_commit=False)

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
