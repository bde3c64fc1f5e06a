"""The flowforge command, run as a user runs it: a real process, a real socket."""

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

FLOWFORGE = str(Path(sys.executable).parent / "flowforge")


def env(tmp_path, **extra) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLOWFORGE_")}
    return {**clean, "FLOWFORGE_DATA_DIR": str(tmp_path), **extra}


def serve(tmp_path, **extra):
    port = free_port()
    process = subprocess.Popen(
        [FLOWFORGE, "serve", "--port", str(port)],
        env=env(tmp_path, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"flowforge serve did not answer: {process.communicate()[1]}")


def stop(process) -> str:
    process.terminate()
    _, stderr = process.communicate(timeout=15)
    return stderr


def test_serve_answers_health_and_the_api_with_the_configured_admin_token(tmp_path):
    process, base = serve(tmp_path, FLOWFORGE_ADMIN_TOKEN="cli-admin-token")
    try:
        assert httpx.get(f"{base}/readyz").json() == {"status": "ok"}
        headers = {"Authorization": "Bearer cli-admin-token"}
        response = httpx.post(f"{base}/api/workflows", json={"name": "cli"}, headers=headers)
        assert response.status_code == 201
        assert httpx.get(f"{base}/api/openapi.json").json()["info"]["title"] == "FlowForge"
    finally:
        stop(process)
    assert (tmp_path / "flowforge.db").exists()


def test_serve_keeps_an_idle_connection_longer_than_clients_keep_theirs(tmp_path):
    """httpx keeps an idle connection 5 s, as uvicorn's default does: a request sent in the
    instant the server closed it was 'connection reset by peer'. The server outlasts it."""
    process, base = serve(tmp_path)
    conn = http.client.HTTPConnection("127.0.0.1", int(base.rsplit(":", 1)[1]), timeout=5)
    try:
        conn.request("GET", "/healthz")
        assert conn.getresponse().read() == b'{"status":"ok"}'
        first = conn.sock
        time.sleep(6.5)  # longer than httpx's 5 s and uvicorn's default
        conn.request("GET", "/healthz")  # on a connection the server closed: RemoteDisconnected
        assert conn.getresponse().read() == b'{"status":"ok"}'
        assert conn.sock is first
        conn.close()
    finally:
        stop(process)


def test_first_start_generates_an_admin_token_printed_once(tmp_path):
    process, base = serve(tmp_path)
    stderr = stop(process)
    token = (tmp_path / "admin-token").read_text().strip()
    assert token.startswith("ff_") and token in stderr
    assert oct((tmp_path / "admin-token").stat().st_mode)[-3:] == "600"

    process, base = serve(tmp_path)
    try:
        response = httpx.get(f"{base}/api/workflows", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
    finally:
        stderr = stop(process)
    assert token not in stderr


def test_unknown_service_exits_non_zero_with_one_line(tmp_path):
    result = subprocess.run(
        [FLOWFORGE, "service", "billing"], env=env(tmp_path), capture_output=True, text=True
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: unknown service 'billing'; choose one of catalog, orchestrator, lineage"
    ]


@pytest.mark.parametrize(
    "command", [["service", "catalog"], ["serve"], ["worker", "ingest"]], ids=" ".join
)
def test_production_refuses_placeholder_settings_in_one_line(tmp_path, command):
    result = subprocess.run(
        [FLOWFORGE, *command, "--port", "1"] if command[0] != "worker" else [FLOWFORGE, *command],
        env=env(
            tmp_path,
            FLOWFORGE_ENVIRONMENT="production",
            FLOWFORGE_ADMIN_TOKEN="change-me-admin-token",
            FLOWFORGE_BROKER_URL="redis://127.0.0.1:1/0",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: refusing to start with FLOWFORGE_ENVIRONMENT=production")
    for name in ("FLOWFORGE_ADMIN_TOKEN", "FLOWFORGE_SECRET_KEY", "FLOWFORGE_DATABASE_URL"):
        assert name in lines[0]
    assert not (tmp_path / "flowforge.db").exists()


def test_an_orchestrator_alone_without_a_broker_refuses_with_one_line(tmp_path):
    """It has no workers in its process to run jobs: it says so instead of starting."""
    result = subprocess.run(
        [FLOWFORGE, "service", "orchestrator"],
        env=env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: the orchestrator has no broker (FLOWFORGE_BROKER_URL)")
    assert "flowforge serve" in line
    assert not (tmp_path / "flowforge.db").exists()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, "error: --workers needs FLOWFORGE_BROKER_URL: without a broker, jobs, the reaper"),
        (
            {"FLOWFORGE_BROKER_URL": "redis://127.0.0.1:1/0"},
            "error: --workers needs PostgreSQL: the catalog, orchestrator and lineage "
            "databases are SQLite",
        ),
        (
            {
                "FLOWFORGE_BROKER_URL": "redis://127.0.0.1:1/0",
                "FLOWFORGE_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x",
                "FLOWFORGE_LINEAGE_DATABASE_URL": "sqlite:///lineage.db",
            },
            "error: --workers needs PostgreSQL: the lineage database is SQLite",
        ),
        (
            {
                "FLOWFORGE_ENVIRONMENT": "production",
                "FLOWFORGE_BROKER_URL": "redis://127.0.0.1:1/0",
                "FLOWFORGE_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x",
            },
            "error: refusing to start with FLOWFORGE_ENVIRONMENT=production: "
            "FLOWFORGE_SECRET_KEY is not set",
        ),
    ],
    ids=["embedded", "broker on SQLite", "one database on SQLite", "unsafe settings"],
)
def test_serve_with_workers_refuses_where_processes_are_unsafe(tmp_path, extra, expected):
    """Without a broker, jobs, the reaper and the scheduler live in the server's process;
    on SQLite no row lock keeps two processes apart: `--workers 2` says so, in one line,
    before it touches anything (docs/architecture.md, "Several API processes"). Settings
    refused outside local are refused the same way before any worker process starts."""
    result = subprocess.run(
        [FLOWFORGE, "serve", "--workers", "2", "--port", "1"],
        env=env(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(expected), line
    assert list(tmp_path.iterdir()) == []  # no database, no token, no key file


def test_a_scheduler_without_a_broker_refuses_with_one_line(tmp_path):
    """It asks the catalog's worker for runs: without a broker it says to use `serve`."""
    result = subprocess.run(
        [FLOWFORGE, "scheduler"], env=env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: set FLOWFORGE_BROKER_URL") and "flowforge serve" in line
    production = subprocess.run(
        [FLOWFORGE, "scheduler"],
        env=env(
            tmp_path,
            FLOWFORGE_ENVIRONMENT="production",
            FLOWFORGE_ADMIN_TOKEN="change-me-admin-token",
            FLOWFORGE_BROKER_URL="redis://127.0.0.1:1/0",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert production.returncode == 1
    assert production.stderr.startswith("error: refusing to start with FLOWFORGE_ENVIRONMENT")


@pytest.mark.parametrize("name", ["catalog", "orchestrator", "lineage"])
def test_each_service_runs_alone(tmp_path, name):
    port = free_port()
    # A service alone reaches the workers through the broker (nothing is sent here).
    broker = {"FLOWFORGE_BROKER_URL": "redis://127.0.0.1:6379/15"} if name == "orchestrator" else {}
    process = subprocess.Popen(
        [FLOWFORGE, "service", name, "--port", str(port)],
        env=env(tmp_path, FLOWFORGE_ADMIN_TOKEN="t", **broker),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "service did not start"
                time.sleep(0.1)
        assert response.status_code == 200
        spec = httpx.get(f"http://127.0.0.1:{port}/api/openapi.json").json()
        assert spec["info"]["title"] == f"FlowForge {name}"
    finally:
        stop(process)


def test_db_upgrade_migrates_postgres_and_is_idempotent(tmp_path, postgres_url):
    for _ in range(2):
        result = subprocess.run(
            [FLOWFORGE, "db", "upgrade"],
            env=env(tmp_path, FLOWFORGE_DATABASE_URL=postgres_url),
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        assert "up to date" in result.stdout


def test_db_upgrade_on_unreachable_database_is_one_line_without_password(tmp_path):
    url = "postgresql+psycopg://user:hunter2@127.0.0.1:1/nowhere"
    result = subprocess.run(
        [FLOWFORGE, "db", "upgrade"],
        env=env(tmp_path, FLOWFORGE_DATABASE_URL=url),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: could not migrate")
    assert "hunter2" not in result.stderr


def test_demo_runs_end_to_end(tmp_path):
    result = subprocess.run(
        [FLOWFORGE, "demo"], env=env(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "template instantiated" in result.stdout
    assert (
        "run 2 read only the changes: Ingest Core Banking Customers 1, Ingest Accounts"
        in result.stdout
    )
    assert "gold_customer_360 changed for 1 customer(s)" in result.stdout
    assert "demo finished" in result.stdout


def test_run_command_follows_progress_and_exits_by_outcome(tmp_path):
    process, base = serve(tmp_path, FLOWFORGE_ADMIN_TOKEN="cli-admin-token")
    headers = {"Authorization": "Bearer cli-admin-token"}
    try:
        (tmp_path / "landing" / "good.csv").write_text("id,amount\n1,2.50\n2,3.00\n")
        (tmp_path / "landing" / "bad.csv").write_text("id,amount\n1,2.50\n2\n")
        for name, path in (("good-run", "good.csv"), ("bad-run", "bad.csv")):
            workflow = httpx.post(f"{base}/api/workflows", json={"name": name}, headers=headers)
            job = {
                "name": f"ingest {path}",
                "type": "file-based",
                "sourceConfig": {"type": "csv", "fileConfig": {"filePath": path}},
                "destinationConfig": {"bronzeConfig": {"tableName": name.replace("-", "_")}},
            }
            created = httpx.post(
                f"{base}/api/workflows/{workflow.json()['id']}/jobs", json=job, headers=headers
            )
            assert created.status_code == 201
        cli_env = env(tmp_path, FLOWFORGE_URL=base, FLOWFORGE_TOKEN="cli-admin-token")
        good = subprocess.run(
            [FLOWFORGE, "run", "good-run", "--wait"], env=cli_env, capture_output=True, text=True
        )
        assert good.returncode == 0, good.stderr
        assert "succeeded" in good.stdout and "ingest good.csv" in good.stdout
        bad = subprocess.run(
            [FLOWFORGE, "run", "bad-run", "--wait"], env=cli_env, capture_output=True, text=True
        )
        assert bad.returncode == 1
        assert "failed" in bad.stderr.splitlines()[-1]
        missing = subprocess.run(
            [FLOWFORGE, "run", "no-such-workflow"], env=cli_env, capture_output=True, text=True
        )
        assert missing.returncode == 1
        assert missing.stderr.strip() == "error: no workflow with id or name 'no-such-workflow'"
    finally:
        stop(process)


def test_secrets_rotate_reencrypts_with_the_first_key(tmp_path):
    from cryptography.fernet import Fernet
    from fastapi.testclient import TestClient
    from sqlalchemy import create_engine, text

    from flowforge.app import create_app
    from flowforge_shared.secrets import SecretBox
    from tests.conftest import ADMIN_TOKEN, make_settings

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    app = create_app(make_settings(tmp_path, secret_key=old))
    with TestClient(app) as client:
        response = client.post(
            "/api/connections",
            json={
                "name": "pg",
                "type": "postgresql",
                "host": "127.0.0.1",
                "username": "u",
                "password": "rotate-me",
            },
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert response.status_code == 201
        workflow = client.post(
            "/api/workflows",
            json={"name": "hooked"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ).json()
        hook = client.post(
            f"/api/workflows/{workflow['id']}/triggers",
            json={"kind": "webhook"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert hook.status_code == 201, hook.text
        webhook_secret = hook.json()["secret"]
    app.state.database.dispose()
    result = subprocess.run(
        [FLOWFORGE, "secrets", "rotate"],
        env=env(tmp_path, FLOWFORGE_SECRET_KEY=f"{new},{old}"),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "re-encrypted 2 secret(s)" in result.stdout  # the password, the webhook's secret
    engine = create_engine(f"sqlite:///{tmp_path / 'flowforge.db'}")
    with engine.connect() as connection:
        token = connection.execute(text("SELECT password_encrypted FROM connections")).scalar_one()
        stored = connection.execute(text("SELECT secret FROM triggers")).scalar_one()
    engine.dispose()
    assert SecretBox([new]).decrypt(token) == "rotate-me"
    assert SecretBox([new]).decrypt(stored) == webhook_secret
    bad = subprocess.run(
        [FLOWFORGE, "secrets", "rotate"],
        env=env(tmp_path, FLOWFORGE_SECRET_KEY="not-a-key"),
        capture_output=True,
        text=True,
    )
    assert (
        bad.returncode == 1
        and bad.stderr.startswith("error: ")
        and len(bad.stderr.splitlines()) == 1
    )


def test_following_a_run_waits_until_the_orchestrator_has_it():
    """Where the catalog and the orchestrator run apart, the run request's 202 comes before
    the events worker has started the run: the orchestrator answers 404 for a moment."""
    import io

    from rich.console import Console

    from flowforge.run_client import RunFailed, follow

    execution = {"id": "e1", "status": "succeeded", "jobs": []}
    asked = {"execution": 0}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/executions/e1":
            asked["execution"] += 1
            if asked["execution"] <= 2:
                return httpx.Response(404, json={"detail": "execution e1 not found"})
            return httpx.Response(200, json=execution)
        if request.url.path == "/api/executions/e1/events":
            body = f"event: execution.finished\ndata: {json.dumps(execution)}\n\n"
            return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})
        return httpx.Response(500, json={"detail": "not expected"})

    console = Console(file=io.StringIO())
    with httpx.Client(base_url="http://flowforge", transport=httpx.MockTransport(answer)) as client:
        assert follow(client, "e1", console)["status"] == "succeeded"
    assert asked["execution"] == 3

    def broken_stream(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(503, json={"detail": "cannot check the token: ..."})
        return httpx.Response(200, json=execution)

    with httpx.Client(
        base_url="http://flowforge", transport=httpx.MockTransport(broken_stream)
    ) as client:
        with pytest.raises(RunFailed, match="HTTP 503: cannot check the token"):
            follow(client, "e1", console)
