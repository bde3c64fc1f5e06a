"""The API's database pool on SQLite never makes a request wait for a connection: a request
holds its connection until its answer is validated on a thread, so a bounded pool could wait
for threads that wait for it (bench/README.md, bench_api: 503s after the pool's timeout).
On a server database (PostgreSQL) the pool is bounded, so requests take a request slot
first, and one that waits too long for it is answered 503 (tests/system/test_api_concurrency.py: 150 clients on a real server)."""

from __future__ import annotations

import threading
import time

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from flowforge_shared import deps
from flowforge_shared.db.engine import SQLITE_REQUEST_SLOTS, Database
from flowforge_shared.deps import SessionDep
from flowforge_shared.web import _install_error_handlers
from tests.conftest import AtOnce, served


def test_a_sqlite_api_pool_opens_more_connections_than_it_keeps(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'pool.db'}", pool_size=2)
    connections = []
    try:
        started = time.monotonic()
        for _ in range(12):  # more than pool_size + any fixed overflow, all held at once
            connection = database.engine.connect()
            connection.execute(text("SELECT 1"))
            connections.append(connection)
        assert time.monotonic() - started < 5  # none waited for the pool's 30 s timeout
    finally:
        for connection in connections:
            connection.close()
        database.dispose()


def test_a_sqlite_database_without_a_pool_size_keeps_sqlalchemys_default(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'default.db'}")
    try:
        assert database.engine.pool.size() == 5
    finally:
        database.dispose()


def test_a_request_that_waits_too_long_for_a_request_slot_is_answered_503(
    fresh_postgres_url, monkeypatch
):
    """On a server database a request takes one of ``request_slots`` before its session
    (flowforge_shared.deps.get_session); one that cannot get one within ADMISSION_WAIT is
    told the server is busy, with Retry-After, instead of waiting for a connection."""
    monkeypatch.setattr(deps, "ADMISSION_WAIT", 0.5)
    database = Database(fresh_postgres_url, pool_size=1)
    assert database.request_slots == 1
    app = FastAPI()
    app.state.database = database
    _install_error_handlers(app)

    @app.get("/hold")
    def hold(session: SessionDep, seconds: float = 0.0) -> dict:
        session.execute(text("SELECT 1"))
        time.sleep(seconds)
        return {"held": seconds}

    with served(app) as url:
        first: list[httpx.Response] = []
        holder = threading.Thread(
            target=lambda: first.append(httpx.get(f"{url}/hold?seconds=3", timeout=30))
        )
        holder.start()
        time.sleep(1.0)  # the first request has the only slot
        started = time.monotonic()
        busy = httpx.get(f"{url}/hold", timeout=30)
        waited = time.monotonic() - started
        holder.join()
        assert busy.status_code == 503, busy.text
        assert "busy" in busy.json()["detail"]
        assert busy.headers["Retry-After"] == "1"
        assert waited < 2.0  # the admission wait, not the holder's 3 s nor the pool's 30 s
        assert first[0].status_code == 200
        assert httpx.get(f"{url}/hold", timeout=30).json() == {"held": 0.0}  # slot given back


def _peak_of_twelve_at_once(tmp_path, *, close_first: bool) -> int:
    """12 requests at once to a SQLite API database's route that uses its session, then
    (after closing it, with ``close_first``) spends 0.4 s: how many were in that part at
    once, every answer 200."""
    database = Database(f"sqlite:///{tmp_path / 'slots.db'}", pool_size=20)
    app = FastAPI()
    app.state.database = database
    _install_error_handlers(app)
    at_once = AtOnce()

    @app.get("/work")
    def work(session: SessionDep) -> dict:
        session.execute(text("SELECT 1"))
        if close_first:
            session.close()
        with at_once:
            time.sleep(0.4)
        return {}

    answers: list[int] = []
    with served(app) as url:

        def ask() -> None:
            answers.append(httpx.get(f"{url}/work", timeout=30).status_code)

        clients = [threading.Thread(target=ask) for _ in range(12)]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
    assert answers == [200] * 12
    return at_once.peak


def test_the_api_on_sqlite_lets_a_few_requests_use_the_database_at_once(tmp_path):
    """On SQLite the API's requests take request slots too, fewer than AnyIO's 40 threads
    (SQLITE_REQUEST_SLOTS): never more than the slots inside at once."""
    assert SQLITE_REQUEST_SLOTS < 12
    assert _peak_of_twelve_at_once(tmp_path, close_first=False) == SQLITE_REQUEST_SLOTS


def test_a_sqlite_request_slot_is_given_back_when_the_route_closes_its_session(tmp_path):
    """A route that closes its session before a slow call (a connection test) does not keep
    its slot meanwhile: 12 such requests at once are all in their slow call together."""
    assert _peak_of_twelve_at_once(tmp_path, close_first=True) == 12
