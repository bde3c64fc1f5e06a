"""When FlowForge's own storage is out — the catalog database down or full, the disk full —
every route answers 503 with a JSON reason and Retry-After, never a 500; when it is back the
same requests work. The errors classified here are real ones, raised by the real drivers
(a full and a locked SQLite file, a refused PostgreSQL connection, a session the server
terminates), except SQLSTATE 53100, which needs a PostgreSQL whose disk is full."""

from __future__ import annotations

import errno
import os
import socket
import sqlite3
import threading
import uuid

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from flowforge_shared.outages import unavailable_reason
from tests.conftest import ADMIN_TOKEN, PG_HOST, PG_PORT, free_port, make_settings, require_service

H = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def raised(action) -> BaseException:
    with pytest.raises(Exception) as caught:  # noqa: PT011 - each caller checks the kind
        action()
    return caught.value


# --- classification ------------------------------------------------------------------------


def test_a_full_sqlite_database_is_an_outage_directly_and_through_sqlalchemy(tmp_path):
    path = tmp_path / "catalog.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (v BLOB)"))
        pages = connection.execute(text("PRAGMA page_count")).scalar_one()
        connection.execute(text(f"PRAGMA max_page_count = {pages}"))  # the "disk" is full
        error = raised(lambda: connection.execute(text("INSERT INTO t VALUES (zeroblob(100000))")))
    assert isinstance(error, SQLAlchemyError) and "disk is full" in str(error)
    assert unavailable_reason(error) == "the catalog database cannot be used: its disk is full"
    assert unavailable_reason(error.orig) == unavailable_reason(error)
    engine.dispose()


def test_a_locked_sqlite_database_is_an_outage(tmp_path):
    path = tmp_path / "catalog.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (v)")
    holder.execute("BEGIN IMMEDIATE")
    try:
        waiter = sqlite3.connect(path, timeout=0)
        error = raised(lambda: waiter.execute("INSERT INTO t VALUES (1)"))
        assert "locked" in unavailable_reason(error)
        waiter.close()
    finally:
        holder.close()


def test_a_refused_postgresql_connection_is_an_outage():
    port = free_port()  # nothing listens there
    error = raised(lambda: psycopg.connect(f"host=127.0.0.1 port={port} connect_timeout=3"))
    assert "the connection to it failed" in unavailable_reason(error)
    engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/x")
    wrapped = raised(engine.connect)
    assert unavailable_reason(wrapped) == unavailable_reason(error)


def test_a_postgresql_server_dropping_the_session_is_an_outage():
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    dsn = f"host={PG_HOST} port={PG_PORT} user=postgres dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as admin, psycopg.connect(dsn) as victim:
        admin.execute("SELECT pg_terminate_backend(%s)", (victim.info.backend_pid,))
        error = raised(lambda: victim.execute("SELECT 1"))
    assert error.sqlstate == "57P01"  # what a restart or an operator's kill sends
    assert unavailable_reason(error) == "the catalog database cannot be used: it is shutting down"


def test_postgresql_disk_full_is_an_outage():
    # SQLSTATE 53100 needs a PostgreSQL whose disk is full; psycopg's own class for it.
    full = psycopg.errors.DiskFull('could not extend file "base/16384/2619": No space left')
    assert full.sqlstate == "53100"
    assert unavailable_reason(full) == "the catalog database cannot be used: its disk is full"


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), "disk is full"),
        (OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)), "quota"),
        (OSError(errno.EROFS, os.strerror(errno.EROFS)), "read-only"),
        (OSError(errno.EFBIG, os.strerror(errno.EFBIG)), "largest size"),
        (OSError("Generic LocalFileSystem error: No space left on device (os error 28)"), "full"),
    ],
)
def test_a_full_or_broken_disk_is_an_outage(error, words):
    assert words in unavailable_reason(error)


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOENT, "no such file"),
        ValueError("No space left on device"),  # our own text may quote a user's
        sqlite3.IntegrityError("UNIQUE constraint failed"),
        psycopg.errors.UniqueViolation("duplicate key"),
        RuntimeError("boom"),
    ],
)
def test_other_errors_are_not_outages(error):
    assert unavailable_reason(error) is None


# --- the API ------------------------------------------------------------------------------


class TcpProxy:
    """Forwards a local port to PostgreSQL; stopping it is the database going away."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        for sock in [self.listener, *self.sockets]:
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
        self.sockets.clear()
        self.listener = None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_catalog_database_going_away_is_a_503_and_coming_back_loses_nothing(postgres_url, tmp_path):
    from flowforge.app import create_app

    proxy = TcpProxy((PG_HOST, PG_PORT))
    proxy.start()
    url = postgres_url.replace(f"{PG_HOST}:{PG_PORT}", f"127.0.0.1:{proxy.port}")
    app = create_app(make_settings(tmp_path, url))
    try:
        with TestClient(app) as client:
            created = client.post(
                "/api/workflows", json={"name": f"w-{uuid.uuid4().hex}"}, headers=H
            )
            assert created.status_code == 201, created.text
            workflow = created.json()

            proxy.stop()
            for method, path, body in (
                ("get", "/api/workflows", None),
                ("get", f"/api/workflows/{workflow['id']}", None),
                ("post", "/api/workflows", {"name": "while down"}),
                ("post", f"/api/workflows/{workflow['id']}/run", None),
            ):
                response = client.request(method, path, json=body, headers=H)
                assert response.status_code == 503, (path, response.text)
                assert int(response.headers["Retry-After"]) > 0
                assert response.json()["detail"].startswith(
                    "the catalog database cannot be used: the connection to it failed"
                )
            assert client.get("/readyz").status_code == 503

            proxy.start()
            again = client.get(f"/api/workflows/{workflow['id']}", headers=H)
            assert again.status_code == 200 and again.json()["name"] == workflow["name"]
            retried = client.post(
                "/api/workflows", json={"name": f"w-{uuid.uuid4().hex}"}, headers=H
            )
            assert retried.status_code == 201, retried.text
            names = [w["name"] for w in client.get("/api/workflows", headers=H).json()["data"]]
            assert "while down" not in names
    finally:
        proxy.stop()
        app.state.database.dispose()


def test_an_unexpected_error_is_a_json_500_in_the_one_error_shape(tmp_path, monkeypatch):
    from flowforge.app import create_app
    from flowforge_catalog.workflows import service

    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "get_all", broken)
    app = create_app(make_settings(tmp_path))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/workflows", headers=H)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"].startswith("internal error")
    assert "a bug" not in response.text
