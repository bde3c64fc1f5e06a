"""The stack, run for real: every FlowForge service and worker as its own process on
loopback, exactly as docker compose runs them (the commands are read from the Dockerfile's
targets, the settings from docker-compose.yml's `x-flowforge-env`; only what names a compose
host, and the secrets compose asks the operator for, are replaced), behind nginx with the
repository's own deploy/gateway.conf, on a fresh PostgreSQL database, a Redis of the test's
own and an S3 server (moto) as the lake.

Through the gateway alone, the BFSI Customer 360 demo is set up and run (flowforge.demo),
and gold_customer_360 must equal the demo test's independent computation. Then the outages
a user would notice: the catalog API stopped while a run is in flight, and the orchestrator
API stopped while a run is requested."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography.fernet import Fernet
from rich.console import Console

from flowforge.demo import run_demo
from flowforge.demo_data import rows
from flowforge.run_client import wait_until_known
from tests.conftest import ADMIN_TOKEN, free_port
from tests.demo.test_bfsi_pipeline import assert_gold_matches, expected_gold
from tests.system.processes import FLOWFORGE, HEADERS, RedisServer, settled, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_CONF = ROOT / "deploy" / "gateway.conf"
APIS = ("catalog", "orchestrator", "lineage")
# Compose runs one container of each; the test runs the ingest and transform workers twice,
# as an operator scaling them would.
WORKERS = {
    "events-worker": 1,
    "catalog-worker": 1,
    "lineage-worker": 1,
    "ingest-worker": 2,
    "transform-worker": 2,
}
# Processes of their own kind: compose runs one of each, the test too.
OTHERS = {"scheduler": "scheduler started"}  # -> what its log says once it runs
# The settings of docker-compose.yml that name a compose host, an operator's secret or endpoint; every
# other setting there is used as it is.
REPLACED = {
    "FLOWFORGE_DATABASE_URL",
    "FLOWFORGE_BROKER_URL",
    "FLOWFORGE_STORAGE_URL",
    "FLOWFORGE_S3_ENDPOINT_URL",
    "FLOWFORGE_S3_ACCESS_KEY_ID",
    "FLOWFORGE_S3_SECRET_ACCESS_KEY",
    "FLOWFORGE_ADMIN_TOKEN",
    "FLOWFORGE_SECRET_KEY",
    "FLOWFORGE_SERVICE_SECRET",
    "FLOWFORGE_CATALOG_URL",
    "FLOWFORGE_ORCHESTRATOR_URL",
    "FLOWFORGE_OPENLINEAGE_URL",
    "FLOWFORGE_OPENLINEAGE_API_KEY",
}
# Shorter than the catalog outage below, so the outage outlives every fresh answer and run
# status is read on the orchestrator's last answers (FLOWFORGE_TOKEN_STALE_TTL, default 900 s).
TOKEN_CACHE_TTL = 1


def dockerfile_commands() -> dict[str, list[str]]:
    """Each Dockerfile target's CMD."""
    commands, target = {}, None
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        stage = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line)
        if stage:
            target = stage.group(1)
        elif line.startswith("CMD ") and target:
            commands[target] = json.loads(line[4:])
    return commands


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def compose_command(service: str) -> list[str]:
    """The command compose runs for a service: its build target's CMD."""
    target = compose()["services"][service]["build"]["target"]
    command = dockerfile_commands()[target]
    assert command[0] == "flowforge", command
    return [FLOWFORGE, *command[1:]]


def on_loopback(command: list[str], port: int) -> list[str]:
    """A service's command with the container's 0.0.0.0:8000 replaced by loopback:port."""
    text = " ".join(command)
    assert "--host 0.0.0.0" in text and "--port 8000" in text, command
    swapped = list(command)
    swapped[swapped.index("--host") + 1] = "127.0.0.1"
    swapped[swapped.index("--port") + 1] = str(port)
    return swapped


class Process:
    """One process of the stack, its output in a log file, in a process group of its own (a
    Celery worker's pool goes with it)."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], logs: Path) -> None:
        self.name, self.command, self.env, self.logs = name, command, env, logs
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.logs / f"{self.name}-{self.starts}.log"

    def start(self) -> Process:
        self.starts += 1
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            stdout=open(self.log_path, "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_http(self, url: str, timeout: float = 90) -> None:
        def answers() -> bool:
            assert self.alive(), f"{self.name} exited: {self.log()}"
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(answers, timeout, 0.2, f"{self.name} to answer {url}")

    def wait_log(self, text: str, timeout: float = 90) -> None:
        def logged() -> bool:
            assert self.alive(), f"{self.name} exited: {self.log()}"
            return text in self.log_path.read_text(errors="replace")

        wait_for(logged, timeout, 0.2, f"{self.name} to log {text!r}")

    def stop_gracefully(self) -> None:
        """SIGTERM; the API shuts down cleanly (uvicorn re-raises the signal once done, so the
        exit status is -SIGTERM)."""
        status = self.stop()
        assert status in (0, -signal.SIGTERM), f"{self.name} exited {status}: {self.log()}"
        assert "Application shutdown complete." in self.log(), self.log()

    def terminate(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, as `docker compose stop` sends; SIGKILL to the group after the timeout."""
        if self.process is None:
            return None
        self.terminate()
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(timeout=10)


def nginx_command(workdir: Path, ports: dict[str, int], listen: int) -> list[str]:
    """nginx with a copy of deploy/gateway.conf whose upstreams and listen port are the only
    changes, inside a minimal main configuration with writable paths."""
    binary = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None
    )
    if binary is None:
        message = "nginx is not installed (apt-get install nginx; .ci/run installs it)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    text = GATEWAY_CONF.read_text()
    for name, port in ports.items():
        text, count = re.subn(rf"server\s+{name}:8000;", f"server 127.0.0.1:{port};", text)
        assert count == 1, f"gateway.conf has no upstream server {name}:8000"
    text, count = re.subn(r"listen\s+8080;", f"listen 127.0.0.1:{listen};", text)
    assert count == 1, "gateway.conf does not listen on 8080"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "gateway.conf").write_text(text)
    temp = {
        kind: workdir / kind
        for kind in ("client_body_temp", "proxy_temp", "fastcgi_temp", "uwsgi_temp", "scgi_temp")
    }
    for path in temp.values():
        path.mkdir(exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers write the temp dirs here
    (workdir / "nginx.conf").write_text(
        f"{user}worker_processes 1;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        + "".join(f"    {kind}_path {path};\n" for kind, path in temp.items())
        + f"    access_log {workdir / 'access.log'};\n"
        + f"    include {workdir / 'gateway.conf'};\n"
        + "}\n"
    )
    return [
        binary,
        "-p",
        str(workdir),
        "-e",
        str(workdir / "error.log"),
        "-c",
        str(workdir / "nginx.conf"),
        "-g",
        f"daemon off; pid {workdir / 'nginx.pid'}; error_log {workdir / 'error.log'};",
    ]


def execution_status_in_database(postgres_url: str, execution_id: str) -> str | None:
    """What the orchestrator's table says, read while its API is down."""
    import psycopg

    url = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT status FROM executions WHERE id = %s", (execution_id,)
        ).fetchone()
    return row[0] if row else None


def test_the_stack_test_runs_what_compose_runs():
    """Every container compose builds from this repository is one the stack test starts, with
    its target's command, and the gateway container serves deploy/gateway.conf."""
    services = compose()["services"]
    built = {name for name, service in services.items() if "build" in service}
    assert built == {"migrate", *APIS, *WORKERS, *OTHERS}, built
    assert compose_command("scheduler")[1:] == ["scheduler"]
    for name in (*APIS, *WORKERS):
        command = compose_command(name)
        if name in APIS:
            assert command[1:3] == ["service", name], command
            on_loopback(command, 1)
        else:
            assert command[1:3] == ["worker", name.removesuffix("-worker")], command
    assert (
        "./deploy/gateway.conf:/etc/nginx/conf.d/default.conf:ro" in services["gateway"]["volumes"]
    )
    # The test replaces only settings compose really has.
    assert REPLACED <= set(compose()["x-flowforge-env"]), REPLACED - set(
        compose()["x-flowforge-env"]
    )


def test_the_stack_behind_the_gateway(tmp_path, fresh_postgres_url, moto_s3, monkeypatch):
    started = time.monotonic()
    data_dir = tmp_path / "data"
    logs = tmp_path / "logs"
    data_dir.mkdir()
    logs.mkdir()
    redis_server = RedisServer(tmp_path).start()
    ports = {name: free_port() for name in APIS}
    gateway_port = free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"

    compose_env = {k: str(v) for k, v in compose()["x-flowforge-env"].items()}
    # Everything compose sets that names no compose host and no operator's secret is kept.
    kept = {k: v for k, v in compose_env.items() if k not in REPLACED}
    assert kept["FLOWFORGE_ENVIRONMENT"] == "production"
    settings = {
        **kept,
        "FLOWFORGE_DATA_DIR": str(data_dir),
        "FLOWFORGE_DATABASE_URL": fresh_postgres_url,
        "FLOWFORGE_BROKER_URL": redis_server.url,
        "FLOWFORGE_STORAGE_URL": f"s3://{moto_s3['bucket']}/stack-{uuid.uuid4().hex[:8]}",
        "FLOWFORGE_S3_ENDPOINT_URL": moto_s3["endpoint"],
        "FLOWFORGE_S3_ACCESS_KEY_ID": "test",
        "FLOWFORGE_S3_SECRET_ACCESS_KEY": "test",
        "FLOWFORGE_ADMIN_TOKEN": ADMIN_TOKEN,
        "FLOWFORGE_SECRET_KEY": Fernet.generate_key().decode(),
        "FLOWFORGE_SERVICE_SECRET": secrets.token_urlsafe(32),
        "FLOWFORGE_CATALOG_URL": f"http://127.0.0.1:{ports['catalog']}",
        "FLOWFORGE_ORCHESTRATOR_URL": f"http://127.0.0.1:{ports['orchestrator']}",
        "FLOWFORGE_TOKEN_CACHE_TTL": str(TOKEN_CACHE_TTL),
    }
    assert set(compose_env) - set(kept) == REPLACED & set(compose_env)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLOWFORGE_")},
        **settings,
    }

    # compose's `migrate` runs first and every service waits for it.
    migrate_target = compose()["services"]["migrate"]["build"]["target"]
    migrate = subprocess.run(
        [FLOWFORGE, *dockerfile_commands()[migrate_target][1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr

    apis = {
        name: Process(name, on_loopback(compose_command(name), ports[name]), env, logs)
        for name in APIS
    }
    workers = [
        Process(f"{service}-{index}", compose_command(service), env, logs)
        for service, count in WORKERS.items()
        for index in range(count)
    ]
    others = [Process(name, compose_command(name), env, logs) for name in OTHERS]
    gateway = Process("gateway", nginx_command(tmp_path / "nginx", ports, gateway_port), env, logs)
    everything = [*apis.values(), *workers, *others, gateway]
    try:
        for process in everything:
            process.start()
        for name, process in apis.items():
            process.wait_http(f"http://127.0.0.1:{ports[name]}/readyz")
        for process in workers:
            process.wait_log("ready.")
        for process in others:
            process.wait_log(OTHERS[process.name])
        gateway.wait_http(f"{gateway_url}/healthz")
        boot = time.monotonic() - started

        # Lineage is a skeleton: its process answers on its own port.
        assert httpx.get(f"http://127.0.0.1:{ports['lineage']}/healthz").json() == {"status": "ok"}

        # The demo, through the gateway alone: upload, template, two runs, gold checked.
        for key, value in settings.items():
            monkeypatch.setenv(key, value)
        outcome = run_demo(
            stack=True, base_url=gateway_url, console=Console(file=open(os.devnull, "w"))
        )
        assert outcome["first"]["status"] == "succeeded", outcome["first"]
        assert outcome["second"]["status"] == "succeeded", outcome["second"]
        data = rows()
        assert_gold_matches(outcome["gold_first"], expected_gold(data))
        change = outcome["change"]
        assert_gold_matches(
            outcome["gold"],
            expected_gold(data, (change.customer_id, change.new_email), [change.transaction]),
        )
        demo_done = time.monotonic() - started
        workflow_id = outcome["first"]["workflowId"]

        with httpx.Client(base_url=gateway_url, headers=HEADERS, timeout=30) as api:
            # The gateway hides the services' internal routes.
            assert api.post("/api/internal/tokens/introspect").status_code == 404

            # (1) The catalog API stops while a run is in flight.
            viewer = api.post(
                "/api/tokens",
                json={"name": f"stack viewer {uuid.uuid4().hex[:6]}", "role": "viewer"},
            )
            assert viewer.status_code == 201, viewer.text
            viewer_headers = {"Authorization": f"Bearer {viewer.json()['token']}"}
            started_run = api.post(f"/api/workflows/{workflow_id}/run")
            assert started_run.status_code == 202, started_run.text
            execution_id = started_run.json()["executionId"]
            # The run exists once the events worker has taken the catalog's StartRun message;
            # until then its id is a 404. Reading it also has the orchestrator check (and
            # cache) the admin token with the catalog.
            in_flight = wait_until_known(api, execution_id, 30)
            assert in_flight["status"] in {"queued", "running"}, in_flight
            apis["catalog"].stop_gracefully()
            catalog_down_at = time.monotonic()
            down = api.get("/api/workflows")
            assert down.status_code == 502, down.text  # the gateway: no catalog behind it
            execution = settled(api, execution_id, timeout=90)  # status from the orchestrator
            assert execution["status"] == "succeeded", execution
            assert all(job["status"] == "succeeded" for job in execution["jobs"]), execution
            # Still readable once the outage has outlived the token's fresh answer.
            time.sleep(max(0.0, catalog_down_at + TOKEN_CACHE_TTL + 0.5 - time.monotonic()))
            later = api.get(f"/api/executions/{execution_id}")
            assert later.status_code == 200 and later.json()["status"] == "succeeded", later.text
            # A token the orchestrator has never checked cannot be checked while the catalog
            # is down: a 503 saying so, never a 401.
            uncached = api.get(f"/api/executions/{execution_id}", headers=viewer_headers)
            assert uncached.status_code == 503, uncached.text
            assert "catalog" in uncached.json()["detail"].lower(), uncached.text

            apis["catalog"].start().wait_http(f"http://127.0.0.1:{ports['catalog']}/readyz")
            assert api.get(f"/api/workflows/{workflow_id}").status_code == 200
            back = api.get(f"/api/executions/{execution_id}", headers=viewer_headers)
            assert back.status_code == 200 and back.json()["status"] == "succeeded", back.text

            # (2) The orchestrator API stops: the catalog keeps working, and a run requested
            # meanwhile is started by the events worker.
            apis["orchestrator"].stop_gracefully()
            assert api.get(f"/api/executions/{execution_id}").status_code == 502
            created = api.post("/api/workflows", json={"name": f"stack-{uuid.uuid4().hex[:8]}"})
            assert created.status_code == 201, created.text
            workflow = created.json()
            renamed = api.patch(
                f"/api/workflows/{workflow['id']}",
                json={
                    "description": "edited while the orchestrator is down",
                    "version": workflow["version"],
                },
            )
            assert renamed.status_code == 200, renamed.text
            assert renamed.json()["description"] == "edited while the orchestrator is down"
            listed = api.get("/api/workflows", params={"limit": 500}).json()["data"]
            assert workflow["id"] in {item["id"] for item in listed}
            requested = api.post(f"/api/workflows/{workflow_id}/run")
            assert requested.status_code == 202, requested.text
            second_id = requested.json()["executionId"]
            # The run happens without the orchestrator's API: its own table says so.
            wait_for(
                lambda: execution_status_in_database(fresh_postgres_url, second_id) == "succeeded",
                90,
                0.5,
                "the run requested while the orchestrator API was down to succeed",
            )
            apis["orchestrator"].start().wait_http(
                f"http://127.0.0.1:{ports['orchestrator']}/readyz"
            )
            shown = api.get(f"/api/executions/{second_id}")
            assert shown.status_code == 200, shown.text
            assert shown.json()["status"] == "succeeded", shown.json()
            assert all(job["status"] == "succeeded" for job in shown.json()["jobs"])

            # (3) A cron trigger, through the gateway (the orchestrator owns it, asking the
            # catalog what the workflow is): compose's scheduler fires it, the catalog's
            # worker takes the snapshot, and the run succeeds.
            created = api.post(
                f"/api/workflows/{workflow_id}/triggers",
                json={"kind": "cron", "settings": {"expression": "* * * * * *"}},
            )
            assert created.status_code == 201, created.text
            trigger_url = f"/api/workflows/{workflow_id}/triggers/{created.json()['id']}"

            def firings() -> list[dict]:
                answer = api.get(f"/api/workflows/{workflow_id}/firings", params={"limit": 500})
                assert answer.status_code == 200, answer.text
                return answer.json()["data"]

            wait_for(
                lambda: any(f["outcome"] == "started" for f in firings()),
                60,
                0.5,
                "a cron firing to start a run",
            )
            version = created.json()["version"]
            disabled = api.patch(trigger_url, json={"enabled": False, "version": version})
            assert disabled.status_code == 200, disabled.text
            wait_for(
                lambda: all(f["outcome"] in ("started", "skipped") for f in firings()),
                60,
                0.5,
                "every firing to be settled",
            )
            for firing in firings():
                if firing["outcome"] == "started":
                    run = settled(api, firing["executionId"], timeout=90)
                    assert run["status"] == "succeeded" and run["trigger"] == "cron", run
            assert api.get("/api/executions", params={"status": "running"}).json()["data"] == []

        print(
            f"\nstack up in {boot:.1f} s, demo done at {demo_done:.1f} s, "
            f"outages done at {time.monotonic() - started:.1f} s"
        )
    finally:
        for process in everything:  # all at once, as `docker compose down` does
            process.terminate()
        for process in everything:
            process.stop()
        redis_server.stop()
