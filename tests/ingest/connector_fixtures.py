"""Helpers of the connector tests: local TCP listeners that are not databases, a port nothing
listens on, a canary password, the live PostgreSQL/MariaDB databases of this machine, and
connection parameters from the FLOWFORGE_TEST_*_URL variables of servers not on it.

Every listener binds 127.0.0.1 only and stops with its ``with`` block.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from flowforge_ingest.connectors.base import ConnectError, ConnectionParams
from flowforge_rules.connstrings import parse_connection_string

# Every character a connection string or a driver could trip on, and a unique canary that
# error messages are scanned for.
CANARY = "Canary" + uuid.uuid4().hex[:10]
AWKWARD_PASSWORD = f"p;w'd\"{{x}}=@:/%20 ä€ {CANARY}"


@contextmanager
def listener(mode: str) -> Iterator[int]:
    """A loopback TCP server that is no database; yields its port.

    ``http`` answers like a web server, ``garbage`` sends bytes of no protocol and closes,
    ``silent`` accepts and says nothing until the block ends.
    """
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            client.settimeout(2)
            try:
                if mode == "http":
                    try:
                        client.recv(4096)
                    except OSError:
                        pass
                    client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    client.close()
                elif mode == "garbage":
                    client.sendall(b"\x00\xffnot a database\xfe" * 8)
                    client.close()
                else:
                    held.append(client)
            except OSError:
                client.close()

    thread = threading.Thread(target=serve, name=f"{mode} listener", daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=2)
        for client in held:
            client.close()
        server.close()


def assert_hides(error: ConnectError, secret: str) -> None:
    """The secret is nowhere in what a user or a log could see of the error."""
    for text in (error.message, error.detail or "", str(error), repr(error), repr(error.args)):
        assert secret not in text
        assert CANARY not in text


def params_from_env(variable: str, db_type: str) -> ConnectionParams:
    """Connection parameters from a FLOWFORGE_TEST_*_URL; skips the test when it is unset."""
    url = os.environ.get(variable)
    if not url:
        pytest.skip(f"{variable} is not set: no {db_type} server to test against")
    parsed = parse_connection_string(url, db_type)
    options = dict(parsed.options)
    if parsed.instance:
        options["instance"] = parsed.instance
    return ConnectionParams(
        db_type=db_type,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        username=parsed.username,
        password=parsed.password,
        options=options,
    )


def is_babelfish(conn) -> bool:
    """Whether a DB-API connection to a TDS server is Babelfish for PostgreSQL (where the
    SQL Server suites accept its documented differences, docs/connectors.md)."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT @@VERSION")
        return "babelfish" in str(cursor.fetchone()[0]).lower()


def drop_sql_server_database(admin, name: str) -> None:
    """DROP DATABASE on a TDS server, after ending the sessions still in it: the driver's
    pool keeps a closed session open for a minute, and the drop is refused while one is in
    the database."""
    cursor = admin.cursor()
    cursor.execute("SELECT @@SPID")
    own = int(cursor.fetchone()[0])
    cursor.execute(
        "SELECT session_id FROM sys.dm_exec_sessions WHERE database_id = DB_ID(?)", (name,)
    )
    for (session,) in cursor.fetchall():
        if session is not None and int(session) != own:
            cursor.execute(f"KILL {int(session)}")
    cursor.execute(f"DROP DATABASE {name}")
