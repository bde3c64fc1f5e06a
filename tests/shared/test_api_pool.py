"""The API's database pool on SQLite never makes a request wait for a connection: a request
holds its connection until its answer is validated on a thread, so a bounded pool could wait
for threads that wait for it (bench/README.md, bench_api: 503s after the pool's timeout)."""

from __future__ import annotations

import time

from sqlalchemy import text

from flowforge_shared.db.engine import Database


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
