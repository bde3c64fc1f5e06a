"""Fixtures shared by the whole suite: the catalog database backends (SQLite and the real
PostgreSQL at 127.0.0.1:5432), API clients with tokens of each role, and service checks that
fail loudly under CI=true instead of skipping."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

PG_HOST, PG_PORT = "127.0.0.1", 5432
ADMIN_TOKEN = "ff_test_admin_" + uuid.uuid4().hex


def service_available(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip locally when a service is down; under CI a missing service is a failure."""
    if service_available(host, port):
        return
    message = f"{name} is not answering at {host}:{port} (../shared/services-up starts it)"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)


def create_postgres_database(prefix: str) -> str:
    """A new, empty PostgreSQL database; returns its SQLAlchemy URL."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_PG_ADMIN, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{name}"


def drop_postgres_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(_PG_ADMIN, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_PG_ADMIN = f"host={PG_HOST} port={PG_PORT} user=postgres dbname=postgres"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    url = create_postgres_database("flowforge_test")
    yield url
    drop_postgres_database(url)


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A PostgreSQL database of one test alone (no other test's executions in it)."""
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    url = create_postgres_database("flowforge_one")
    yield url
    drop_postgres_database(url)


def make_settings(tmp_path, database_url: str | None = None, **extra):
    from flowforge_shared.settings import Settings

    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        auto_migrate=True,
        **extra,
    )


class Api:
    """A test client that sends one role's token."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def __getattr__(self, method: str):
        call = getattr(self.client, method)

        def send(url: str, **kwargs):
            headers = {**self.headers, **kwargs.pop("headers", {})}
            return call(url, headers=headers, **kwargs)

        return send


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request, tmp_path_factory) -> dict:
    """The embedded app on each catalog database, shared by one test module."""
    from flowforge.app import create_app

    data_dir = tmp_path_factory.mktemp(f"data-{request.param}")
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    app = create_app(make_settings(data_dir, url))
    client = TestClient(app)
    admin = Api(client, ADMIN_TOKEN)
    tokens = {}
    for role in ("editor", "viewer"):
        response = admin.post("/api/tokens", json={"name": f"test {role}", "role": role})
        assert response.status_code == 201, response.text
        tokens[role] = response.json()["token"]
    yield {
        "name": request.param,
        "app": app,
        "client": client,
        "admin": admin,
        "editor": Api(client, tokens["editor"]),
        "viewer": Api(client, tokens["viewer"]),
        "anonymous": client,
    }
    app.state.database.dispose()


@pytest.fixture
def admin(backend) -> Api:
    return backend["admin"]


@pytest.fixture
def editor(backend) -> Api:
    return backend["editor"]


@pytest.fixture
def viewer(backend) -> Api:
    return backend["viewer"]


@pytest.fixture
def anonymous(backend) -> TestClient:
    return backend["anonymous"]


def unique(prefix: str = "wf") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AtOnce:
    """How many threads were inside ``with at_once:`` together, at most (``peak``)."""

    def __init__(self) -> None:
        self.inside = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self.inside += 1
            self.peak = max(self.peak, self.inside)

    def __exit__(self, *_exc) -> None:
        with self._lock:
            self.inside -= 1


@contextmanager
def served(app, what: str = "the app") -> Iterator[str]:
    """``app`` served for real by uvicorn on a free 127.0.0.1 port (a thread of this
    process); yields its base URL, and stops it and disposes of its database after."""
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, f"{what} did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        app.state.database.dispose()


@pytest.fixture(scope="session")
def moto_s3():
    """A real S3 API server (moto) on a free port, and a bucket in it."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    import boto3

    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "moto_server did not start"
            time.sleep(0.1)
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    bucket = "flowforge-test"
    s3.create_bucket(Bucket=bucket)
    yield {"endpoint": endpoint, "bucket": bucket, "client": s3}
    process.terminate()
    process.wait(timeout=10)


# --- secrets never leak ------------------------------------------------------------------------
# Every password the tests give FlowForge is listed here. For the whole session, every log
# record and every HTTP response body seen by a client in this process is kept, and at the end
# of the session none of them may contain one of these values (pytest fails the run if one does).
SECRET_CANARIES = (
    "Canary;Pa}ss=w0rd{",
    "R3ader;P{w}d=",
    "S3cret-inline",
    "rotate-me",
    "new-secret",
    "hunter2",
)
SEEN_TEXTS: list[str] = []


class _Recorder(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            SEEN_TEXTS.append(self.format(record))
        except Exception:  # noqa: BLE001 - a broken record must not break the test run
            SEEN_TEXTS.append(str(record.msg))


def pytest_configure(config) -> None:
    import importlib

    handler = _Recorder(level=logging.INFO)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s %(exc_text)s"))
    logging.getLogger().addHandler(handler)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    # Starlette's TestClient speaks httpx2 in this version; CLI tests use httpx.
    for name in ("httpx", "httpx2"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        module.Client.send = _recording(module.Client.send)


def _recording(original):
    def recording_send(self, request, **kwargs):
        response = original(self, request, **kwargs)
        if not kwargs.get("stream") and response.is_stream_consumed:
            content_type = response.headers.get("content-type", "")
            if "json" in content_type or content_type.startswith("text/"):
                SEEN_TEXTS.append(response.text[:1_000_000])
        return response

    return recording_send


def leaked_secrets() -> list[tuple[str, str]]:
    return [
        (canary, text[max(0, text.find(canary) - 80) : text.find(canary) + 80])
        for text in SEEN_TEXTS
        for canary in SECRET_CANARIES
        if canary in text
    ]


def pytest_sessionfinish(session, exitstatus) -> None:
    leaks = leaked_secrets()
    if leaks:
        print(f"\nSECRET LEAK: {len(leaks)} log lines or responses contain a test password:")
        for canary, context in leaks[:10]:
            print(f"  {canary!r} in ...{context!r}...")
        session.exitstatus = 1
