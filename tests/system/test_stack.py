"""The stack, run for real: every FlowForge service and worker as its own process on
loopback, exactly as docker compose runs them (the commands are read from the Dockerfile's
targets, the settings from docker-compose.yml's `x-flowforge-env`; only what names a compose
host, and the secrets compose asks the operator for, are replaced), behind nginx with the
repository's own deploy/gateway.conf, each service on a fresh PostgreSQL database of its own
(FLOWFORGE_<SERVICE>_DATABASE_URL: a read of another service's table would fail), a Redis of
the test's own and an S3 server (moto) as the lake. The module starts the stack once (``running_stack``)
and each test starts again whatever it stopped.

Through the gateway alone, the BFSI Customer 360 demo is set up and run (flowforge.demo),
and gold_customer_360 must equal the demo test's independent computation. Then the outages
a user would notice: the catalog API stopped while a run is in flight, the orchestrator API
stopped while a run is requested, the lineage API and worker killed while a run goes on (the
graph catches up); and the triggers on the Redis workers: cron, and a signed webhook that
starts a dependency chain A -> B -> C."""

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
from datetime import datetime
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
import yaml
from cryptography.fernet import Fernet
from rich.console import Console

from flowforge.demo import run_demo
from flowforge.demo_data import rows
from flowforge.run_client import wait_until_known
from flowforge_orchestrator.triggers.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from flowforge_shared.contracts.tasks import LINEAGE_QUEUE
from flowforge_shared.settings import SERVICES_WITH_DATABASES
from tests.conftest import (
    ADMIN_TOKEN,
    PG_HOST,
    PG_PORT,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    require_service,
)
from tests.demo.test_bfsi_pipeline import assert_gold_matches, expected_gold
from tests.system.processes import (
    FLOWFORGE,
    HEADERS,
    TERMINAL,
    RedisServer,
    settled,
    wait_for,
)

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
# Shorter than the default (60 s), so the events a killed lineage worker held come back
# within the test's patience.
LINEAGE_VISIBILITY_TIMEOUT = 3


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

    def kill_group(self) -> None:
        """SIGKILL to the process and everything it started (kill -9 of a container's
        processes: nothing is cleaned up, nothing acknowledged)."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)

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


class Stack:
    """Every process of the stack (started by the module's fixture), the gateway's URL and
    what the tests need to look behind it: the database, the broker, the demo's outcome."""

    def __init__(self, workdir: Path, databases: dict[str, str], moto_s3: dict) -> None:
        self.workdir = workdir
        # A PostgreSQL database per service; "unused" is FLOWFORGE_DATABASE_URL, which every
        # service overrides: it stays empty, and a read of another service's table fails.
        self.databases = databases
        self.moto_s3 = moto_s3
        self.data_dir = workdir / "data"
        self.logs = workdir / "logs"
        self.data_dir.mkdir()
        self.logs.mkdir()
        self.redis = RedisServer(workdir)
        self.ports = {name: free_port() for name in APIS}
        self.gateway_port = free_port()
        self.gateway_url = f"http://127.0.0.1:{self.gateway_port}"

        compose_env = {k: str(v) for k, v in compose()["x-flowforge-env"].items()}
        # Everything compose sets that names no compose host and no operator's secret is kept.
        kept = {k: v for k, v in compose_env.items() if k not in REPLACED}
        assert kept["FLOWFORGE_ENVIRONMENT"] == "production"
        self.settings = {
            **kept,
            "FLOWFORGE_DATA_DIR": str(self.data_dir),
            "FLOWFORGE_DATABASE_URL": databases["unused"],
            **{
                f"FLOWFORGE_{service.upper()}_DATABASE_URL": databases[service]
                for service in SERVICES_WITH_DATABASES
            },
            "FLOWFORGE_BROKER_URL": self.redis.url,
            "FLOWFORGE_STORAGE_URL": f"s3://{moto_s3['bucket']}/stack-{uuid.uuid4().hex[:8]}",
            "FLOWFORGE_S3_ENDPOINT_URL": moto_s3["endpoint"],
            "FLOWFORGE_S3_ACCESS_KEY_ID": "test",
            "FLOWFORGE_S3_SECRET_ACCESS_KEY": "test",
            "FLOWFORGE_ADMIN_TOKEN": ADMIN_TOKEN,
            "FLOWFORGE_SECRET_KEY": Fernet.generate_key().decode(),
            "FLOWFORGE_SERVICE_SECRET": secrets.token_urlsafe(32),
            "FLOWFORGE_CATALOG_URL": f"http://127.0.0.1:{self.ports['catalog']}",
            "FLOWFORGE_ORCHESTRATOR_URL": f"http://127.0.0.1:{self.ports['orchestrator']}",
            "FLOWFORGE_TOKEN_CACHE_TTL": str(TOKEN_CACHE_TTL),
            "FLOWFORGE_LINEAGE_VISIBILITY_TIMEOUT": str(LINEAGE_VISIBILITY_TIMEOUT),
        }
        assert set(compose_env) - set(kept) == REPLACED & set(compose_env)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FLOWFORGE_")},
            **self.settings,
        }
        self.apis = {
            name: Process(
                name, on_loopback(compose_command(name), self.ports[name]), self.env, self.logs
            )
            for name in APIS
        }
        self.workers = [
            Process(f"{service}-{index}", compose_command(service), self.env, self.logs)
            for service, count in WORKERS.items()
            for index in range(count)
        ]
        self.others = [Process(name, compose_command(name), self.env, self.logs) for name in OTHERS]
        self.gateway = Process(
            "gateway",
            nginx_command(workdir / "nginx", self.ports, self.gateway_port),
            self.env,
            self.logs,
        )
        self.everything = [*self.apis.values(), *self.workers, *self.others, self.gateway]
        self.demo: dict = {}
        self.boot_seconds = self.demo_seconds = 0.0
        self.tiny_file_id: str | None = None

    def migrate(self) -> None:
        """compose's `migrate` runs first and every service waits for it."""
        target = compose()["services"]["migrate"]["build"]["target"]
        migrate = subprocess.run(
            [FLOWFORGE, *dockerfile_commands()[target][1:]],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr

    def worker(self, service: str) -> Process:
        """The (first) process of a compose worker service."""
        return next(p for p in self.workers if p.name.startswith(f"{service}-"))

    def wait_ready(self, process: Process) -> None:
        """Until ``process`` serves (an API: /readyz; the gateway: /healthz) or has logged
        that it runs (a worker, the scheduler)."""
        if process is self.gateway:
            process.wait_http(f"{self.gateway_url}/healthz")
        elif process.name in self.apis:
            process.wait_http(f"http://127.0.0.1:{self.ports[process.name]}/readyz")
        else:
            process.wait_log(OTHERS.get(process.name, "ready."))

    def start(self, *processes: Process) -> None:
        for process in processes:
            process.start()
        for process in processes:
            self.wait_ready(process)

    def revive(self) -> None:
        """Start again whatever a test stopped or killed (and left down when it failed)."""
        dead = [process for process in self.everything if not process.alive()]
        for process in dead:
            process.kill_group()  # what is left of it (a worker's pool)
        self.start(*dead)

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.gateway_url, headers=HEADERS, timeout=30, **kwargs)

    def tiny_workflow(self, name: str) -> str:
        """A new active workflow of one job loading a two-row CSV (uploaded once, through
        the gateway) into a bronze table of its own."""
        with self.client() as api:
            if self.tiny_file_id is None:
                upload = api.post(
                    "/api/files",
                    files={"file": ("tiny.csv", b"id,name\n1,a\n2,b\n", "text/csv")},
                )
                assert upload.status_code == 201, upload.text
                self.tiny_file_id = upload.json()["id"]
            created = api.post(
                "/api/workflows",
                json={"name": f"{name}-{uuid.uuid4().hex[:8]}", "status": "active"},
            )
            assert created.status_code == 201, created.text
            workflow_id = created.json()["id"]
            job = api.post(
                f"/api/workflows/{workflow_id}/jobs",
                json={
                    "name": f"Ingest {name}",
                    "type": "file-based",
                    "sourceConfig": {"type": "csv", "fileConfig": {"fileId": self.tiny_file_id}},
                    "destinationConfig": {
                        "bronzeConfig": {"tableName": f"bronze_{name}_{uuid.uuid4().hex[:8]}"}
                    },
                },
            )
            assert job.status_code == 201, job.text
        return workflow_id

    def stop(self) -> None:
        for process in self.everything:  # all at once, as `docker compose down` does
            process.terminate()
        for process in self.everything:
            process.stop()
        self.redis.stop()


@pytest.fixture(scope="module")
def running_stack(tmp_path_factory, moto_s3):
    """The stack, started once for the module, with the BFSI demo run through the gateway."""
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    databases = {
        name: create_postgres_database(f"flowforge_stack_{name}")
        for name in (*SERVICES_WITH_DATABASES, "unused")
    }
    try:
        stack = Stack(tmp_path_factory.mktemp("stack"), databases, moto_s3)
    except BaseException:  # nginx or redis-server missing: skipped (failed under CI)
        for url in databases.values():
            drop_postgres_database(url)
        raise
    try:
        started = time.monotonic()
        stack.redis.start()
        stack.migrate()
        stack.start(*stack.everything)
        stack.boot_seconds = time.monotonic() - started
        # The demo, through the gateway alone: upload, template, two runs.
        with pytest.MonkeyPatch.context() as patch:
            for key, value in stack.settings.items():
                patch.setenv(key, value)
            stack.demo = run_demo(
                stack=True,
                base_url=stack.gateway_url,
                console=Console(file=open(os.devnull, "w")),
            )
        stack.demo_seconds = time.monotonic() - started
        yield stack
    finally:
        stack.stop()
        for url in databases.values():
            drop_postgres_database(url)


@pytest.fixture
def stack(running_stack) -> Stack:
    """The module's stack; whatever the test stopped is started again after it."""
    yield running_stack
    running_stack.revive()


def test_bfsi_customer_360_through_the_gateway(stack):
    """Every service answers behind the gateway; the demo's two runs succeeded and
    gold_customer_360 equals the demo test's independent computation, before and after the
    change in core banking."""
    print(f"\nstack up in {stack.boot_seconds:.1f} s, demo done at {stack.demo_seconds:.1f} s")
    assert httpx.get(f"http://127.0.0.1:{stack.ports['lineage']}/healthz").json() == {
        "status": "ok"
    }
    outcome = stack.demo
    assert outcome["first"]["status"] == "succeeded", outcome["first"]
    assert outcome["second"]["status"] == "succeeded", outcome["second"]
    data = rows()
    assert_gold_matches(outcome["gold_first"], expected_gold(data))
    change = outcome["change"]
    assert_gold_matches(
        outcome["gold"],
        expected_gold(data, (change.customer_id, change.new_email), [change.transaction]),
    )
    with stack.client() as api:
        # The gateway hides the services' internal routes.
        assert api.post("/api/internal/tokens/introspect").status_code == 404


def test_the_catalog_api_stops_while_a_run_is_in_flight(stack):
    """Runs in flight finish, and the orchestrator keeps serving their status on the tokens
    it has checked (a token it has not: 503, never 401)."""
    workflow_id = stack.demo["first"]["workflowId"]
    catalog = stack.apis["catalog"]
    with stack.client() as api:
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
        catalog.stop_gracefully()
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

        stack.start(catalog)
        assert api.get(f"/api/workflows/{workflow_id}").status_code == 200
        back = api.get(f"/api/executions/{execution_id}", headers=viewer_headers)
        assert back.status_code == 200 and back.json()["status"] == "succeeded", back.text


def test_the_orchestrator_api_stops_while_a_run_is_requested(stack):
    """The catalog keeps working, and a run requested meanwhile is started by the events
    worker."""
    workflow_id = stack.demo["first"]["workflowId"]
    orchestrator = stack.apis["orchestrator"]
    with stack.client() as api:
        known = api.get("/api/executions", params={"workflowId": workflow_id, "limit": 1})
        assert known.status_code == 200, known.text
        some_execution = known.json()["data"][0]["id"]
        orchestrator.stop_gracefully()
        assert api.get(f"/api/executions/{some_execution}").status_code == 502
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
            lambda: (
                execution_status_in_database(stack.databases["orchestrator"], second_id)
                == "succeeded"
            ),
            90,
            0.5,
            "the run requested while the orchestrator API was down to succeed",
        )
        stack.start(orchestrator)
        shown = api.get(f"/api/executions/{second_id}")
        assert shown.status_code == 200, shown.text
        assert shown.json()["status"] == "succeeded", shown.json()
        assert all(job["status"] == "succeeded" for job in shown.json()["jobs"])


def test_a_cron_trigger_fires_through_the_scheduler(stack):
    """Through the gateway (the orchestrator owns the trigger, asking the catalog what the
    workflow is): compose's scheduler fires it, the catalog's worker takes the snapshot,
    and the run succeeds."""
    workflow_id = stack.demo["first"]["workflowId"]
    with stack.client() as api:
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

        try:
            wait_for(
                lambda: any(f["outcome"] == "started" for f in firings()),
                60,
                0.5,
                "a cron firing to start a run",
            )
        finally:
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


def succeeded_runs(api: httpx.Client, workflow_id: str) -> set[str]:
    """The ids of the workflow's succeeded executions and of their succeeded job runs, as
    the orchestrator lists them (through the gateway)."""
    listed = api.get("/api/executions", params={"workflowId": workflow_id, "limit": 500})
    assert listed.status_code == 200, listed.text
    runs = set()
    for execution in listed.json()["data"]:
        if execution["status"] == "succeeded":
            runs.add(execution["id"])
            runs |= {job["jobRunId"] for job in execution["jobs"] if job["status"] == "succeeded"}
    return runs


def lineage_runs(postgres_url: str, run_ids: set[str]) -> dict[str, str | None]:
    """Run id -> status, as the lineage service's own table has them (the runs of the run
    events it applied: an execution's and each of its job runs')."""
    url = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT run_id, status FROM lineage_runs WHERE run_id = ANY(%s)", (list(run_ids),)
        ).fetchall()
    return dict(rows)


def lineage_graph(api: httpx.Client, workflow_id: str) -> dict | None:
    answer = api.get(f"/api/workflows/{workflow_id}/lineage")
    if answer.status_code != 200:
        return None
    return answer.json()


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_graph_shows(api: httpx.Client, execution: dict) -> dict:
    """The workflow's lineage graph, through the gateway, shows what ``execution`` wrote:
    each table at the version its job wrote, made by that job, succeeded, updated since the
    execution started. Returns the graph."""
    graph = lineage_graph(api, execution["workflowId"])
    assert graph is not None
    nodes = {node["alias"]: node for node in graph["nodes"] if node["alias"]}
    written = [(job, output) for job in execution["jobs"] for output in job["outputs"]]
    assert written, execution
    for job, output in written:
        node = nodes.get(f"{output['layer']}.{output['table']}")
        assert node is not None, (output, sorted(nodes))
        assert node["version"] == output["version"], (node, output)
        assert node["jobId"] == job["jobId"] and node["status"] == "succeeded", node
        assert when(node["lastUpdated"]) >= when(execution["startedAt"]), (node, execution)
    return graph


def test_the_lineage_service_killed_and_restarted_catches_up(stack):
    """The lineage API and worker are killed (SIGKILL, no clean-up): a run through the
    gateway still succeeds, its run events wait in the lineage queue, and once both are back
    the graph shows that run (each table at the version its job wrote) and the lineage
    service knows every run the orchestrator lists, the new one included."""
    workflow_id = stack.demo["first"]["workflowId"]
    lineage_api, lineage_worker = stack.apis["lineage"], stack.worker("lineage-worker")
    broker = redis.Redis.from_url(stack.redis.url)
    with stack.client() as api:

        def caught_up(runs: set[str]) -> bool:
            known = lineage_runs(stack.databases["lineage"], runs)
            return known == dict.fromkeys(runs, "succeeded")

        # Everything so far is in the graph, so what lineage lacks later is the new run's.
        earlier = succeeded_runs(api, workflow_id)
        wait_for(lambda: caught_up(earlier), 60, 0.3, "lineage to know every earlier run")
        wait_for(lambda: broker.llen(LINEAGE_QUEUE) == 0, 30, 0.2, "the lineage queue to drain")
        before = lineage_graph(api, workflow_id)
        assert before is not None and before["nodes"], before

        lineage_worker.kill_group()
        lineage_api.kill_group()
        assert api.get(f"/api/workflows/{workflow_id}/lineage").status_code == 502

        started = api.post(f"/api/workflows/{workflow_id}/run")
        assert started.status_code == 202, started.text
        # Known once the events worker has taken the catalog's StartRun message.
        wait_until_known(api, started.json()["executionId"], 30)
        execution = settled(api, started.json()["executionId"], timeout=120)
        assert execution["status"] == "succeeded", execution  # lineage down fails no run
        # Its events wait in the broker for the lineage worker: an execution's START and
        # COMPLETE, and each job run's.
        waiting = broker.llen(LINEAGE_QUEUE)
        assert waiting >= 2 * (1 + len(execution["jobs"])), waiting
        everything = succeeded_runs(api, workflow_id)
        assert execution["id"] in everything and everything > earlier
        assert not caught_up(everything)

        stack.start(lineage_api, lineage_worker)
        wait_for(lambda: caught_up(everything), 60, 0.3, "lineage to know the new run")
        wait_for(lambda: broker.llen(LINEAGE_QUEUE) == 0, 30, 0.2, "the lineage queue to drain")

        graph = assert_graph_shows(api, execution)
        versions = {node["id"]: node["version"] for node in before["nodes"]}
        moved = [n["id"] for n in graph["nodes"] if n["version"] != versions.get(n["id"])]
        assert moved, "the run changed no table version: the check above proves nothing"


def signed(secret: str, body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        "Content-Type": "application/json",
    }


def test_a_signed_webhook_starts_a_dependency_chain_through_the_gateway(stack):
    """A webhook trigger on A, B depending on A and C on B, all made through the gateway; a
    badly signed or unsigned request gets 401 and starts nothing, a replay 409; the signed
    request (no API token: the gateway passes /api/hooks to the orchestrator) runs A, then
    B, then C, once each, every run naming what caused it."""
    with stack.client() as api:
        a, b, c = (stack.tiny_workflow(name) for name in ("a", "b", "c"))
        for downstream, upstream in ((b, a), (c, b)):
            created = api.post(
                f"/api/workflows/{downstream}/triggers",
                json={"kind": "dependency", "settings": {"upstream": [upstream]}},
            )
            assert created.status_code == 201, created.text
        created = api.post(f"/api/workflows/{a}/triggers", json={"kind": "webhook"})
        assert created.status_code == 201, created.text
        trigger = created.json()

        def runs(workflow_id: str) -> list[dict]:
            listed = api.get("/api/executions", params={"workflowId": workflow_id})
            assert listed.status_code == 200, listed.text
            return listed.json()["data"]

        def firings(workflow_id: str) -> list[dict]:
            listed = api.get(f"/api/workflows/{workflow_id}/firings")
            assert listed.status_code == 200, listed.text
            return listed.json()["data"]

        body = json.dumps({"event": "export-ready", "at": time.time()}).encode()
        with httpx.Client(base_url=stack.gateway_url, timeout=30) as sender:  # no API token
            url = f"/api/hooks/{trigger['id']}"
            forged = sender.post(url, content=body, headers=signed("whsec_not-the-secret", body))
            assert forged.status_code == 401, forged.text
            unsigned = sender.post(url, content=body, headers={"Content-Type": "application/json"})
            assert unsigned.status_code == 401, unsigned.text
            assert firings(a) == [] and runs(a) == []

            headers = signed(trigger["secret"], body)
            fired = sender.post(url, content=body, headers=headers)
            assert fired.status_code == 202, fired.text
            accepted = fired.json()
            assert accepted["outcome"] in ("started", "requested"), accepted
            replayed = sender.post(url, content=body, headers=headers)
            assert replayed.status_code == 409, replayed.text

        def ended(workflow_id: str) -> dict | None:
            found = [run for run in runs(workflow_id) if run["status"] in TERMINAL]
            return found[0] if found else None

        run_a, run_b, run_c = (
            wait_for(lambda w=w: ended(w), 120, 0.3, f"a run of {w} to end") for w in (a, b, c)
        )
        assert [run["status"] for run in (run_a, run_b, run_c)] == ["succeeded"] * 3
        assert run_a["id"] == accepted["executionId"] and run_a["trigger"] == "webhook"
        assert run_a["cause"]["triggerId"] == trigger["id"]
        assert run_a["cause"]["firingId"] == accepted["firingId"]
        for run, upstream, workflow_id in ((run_b, run_a, a), (run_c, run_b, b)):
            assert run["trigger"] == "dependency", run
            assert run["cause"]["upstream"] == [
                {"workflowId": workflow_id, "executionId": upstream["id"], "status": "succeeded"}
            ], run
            assert when(upstream["finishedAt"]) <= when(run["startedAt"]), (upstream, run)

        # A few scheduler passes later: one firing and one run each, nothing more.
        time.sleep(2)
        assert [len(runs(w)) for w in (a, b, c)] == [1, 1, 1]
        for workflow_id, run in ((a, run_a), (b, run_b), (c, run_c)):
            [firing] = firings(workflow_id)
            assert firing["outcome"] == "started" and firing["executionId"] == run["id"], firing


def test_a_lineage_worker_killed_while_it_applies_a_backlog_loses_nothing(stack):
    """The lineage worker takes the whole backlog of a run (its task's event and the events
    waiting behind it) into one transaction, which waits on a lock the test holds; the
    worker is killed (SIGKILL) before it commits or acknowledges anything. The events were
    taken from the queue, not acknowledged: once a worker runs again they come back and
    the graph catches up, in seconds (the lineage worker's visibility timeout), not hours
    (the job queues')."""
    workflow_id = stack.tiny_workflow("backlog")
    lineage_worker = stack.worker("lineage-worker")
    broker = redis.Redis.from_url(stack.redis.url)
    database = stack.databases["lineage"].replace("postgresql+psycopg://", "postgresql://")
    with stack.client() as api:
        lineage_worker.stop()
        started = api.post(f"/api/workflows/{workflow_id}/run")
        assert started.status_code == 202, started.text
        wait_until_known(api, started.json()["executionId"], 30)
        execution = settled(api, started.json()["executionId"], timeout=120)
        assert execution["status"] == "succeeded", execution
        backlog = broker.llen(LINEAGE_QUEUE)
        assert backlog >= 2 * (1 + len(execution["jobs"])), backlog
        everything = succeeded_runs(api, workflow_id)

        with psycopg.connect(database) as blocker:
            # Reads go on; the worker's ledger insert waits.
            blocker.execute("LOCK TABLE lineage_events IN EXCLUSIVE MODE")
            stack.start(lineage_worker)
            wait_for(lambda: broker.llen(LINEAGE_QUEUE) == 0, 30, 0.1, "the backlog to be taken")
            lineage_worker.kill_group()
            blocker.rollback()
        assert lineage_runs(stack.databases["lineage"], {execution["id"]}) == {}

        stack.start(lineage_worker)
        wait_for(
            lambda: (
                lineage_runs(stack.databases["lineage"], everything)
                == dict.fromkeys(everything, "succeeded")
            ),
            60,
            0.5,
            "the events the killed worker held to come back and be applied",
        )
        assert_graph_shows(api, execution)


def test_a_webhook_fired_while_the_catalog_is_down_runs_once_it_is_back(stack):
    """The catalog API is stopped: a signed request through the gateway is accepted (202
    pending, with the execution id the run will have), not a 5xx that has the sender send
    it again; once the catalog is back, compose's scheduler starts that one run."""
    workflow_id = stack.tiny_workflow("hook_outage")
    with stack.client() as api:
        created = api.post(f"/api/workflows/{workflow_id}/triggers", json={"kind": "webhook"})
        assert created.status_code == 201, created.text
        trigger = created.json()
        stack.apis["catalog"].stop_gracefully()
        body = b'{"event": "export-ready"}'
        with httpx.Client(base_url=stack.gateway_url, timeout=30) as sender:
            fired = sender.post(
                f"/api/hooks/{trigger['id']}", content=body, headers=signed(trigger["secret"], body)
            )
        assert fired.status_code == 202, fired.text
        accepted = fired.json()
        assert accepted["outcome"] == "pending" and accepted["executionId"], accepted
        time.sleep(1.5)  # scheduler passes while the catalog is down start nothing
        assert (
            execution_status_in_database(stack.databases["orchestrator"], accepted["executionId"])
            is None
        )

        stack.start(stack.apis["catalog"])
        wait_until_known(api, accepted["executionId"], 60)
        execution = settled(api, accepted["executionId"], timeout=90)
        assert execution["status"] == "succeeded" and execution["trigger"] == "webhook", execution
        listed = api.get("/api/executions", params={"workflowId": workflow_id}).json()["data"]
        assert [run["id"] for run in listed] == [accepted["executionId"]]


def test_each_service_keeps_its_tables_in_its_own_database(stack):
    """Each service ran on a PostgreSQL database of its own: each holds that service's
    tables alone, and the one database every service overrides was never written."""
    owned = {
        "catalog": {"workflows", "jobs", "audit_log", "api_tokens"},
        "orchestrator": {"executions", "job_runs", "triggers", "audit_outbox"},
        "lineage": {"lineage_events", "lineage_edges", "lineage_datasets"},
    }
    tables = {}
    for name, url in stack.databases.items():
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as connection:
            tables[name] = {
                row[0]
                for row in connection.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
            }
    assert tables["unused"] == set()
    for service, some in owned.items():
        assert some <= tables[service], service
        others = set().union(*(owned[other] for other in owned if other != service))
        assert not tables[service] & others, service
    # And the audit entries the orchestrator made (the demo's runs) reached the catalog's log.
    with stack.client() as api:
        started = api.get("/api/audit", params={"entityType": "execution", "limit": 100})
        assert started.status_code == 200, started.text
        assert {entry["action"] for entry in started.json()["data"]} >= {"execution.start"}


def test_files_dropped_under_a_watched_s3_prefix_start_one_run_each(stack):
    """An event trigger on the stack: compose's scheduler lists the S3 landing prefix, the
    catalog's worker takes the snapshot naming the file, an ingest worker reads it. Two CSV
    files (and one the pattern leaves out) start exactly two runs, each reading its file."""
    workflow_id = stack.tiny_workflow("event")
    prefix = f"drop-{uuid.uuid4().hex[:8]}/"
    with stack.client() as api:
        created = api.post(
            f"/api/workflows/{workflow_id}/triggers",
            json={
                "kind": "event",
                "settings": {"prefix": prefix, "pattern": "*.csv", "settleSeconds": 0},
            },
        )
        assert created.status_code == 201, created.text
        root = stack.settings["FLOWFORGE_STORAGE_URL"].split("/", 3)[3]
        dropped = {"a.csv": "id,name\n1,a\n", "b.csv": "id,name\n2,b\n3,c\n", "c.json": "{}"}
        for name, body in dropped.items():
            stack.moto_s3["client"].put_object(
                Bucket=stack.moto_s3["bucket"],
                Key=f"{root}/landing/{prefix}{name}",
                Body=body.encode(),
            )

        def runs() -> list[dict]:
            listed = api.get("/api/executions", params={"workflowId": workflow_id})
            assert listed.status_code == 200, listed.text
            return listed.json()["data"]

        wait_for(
            lambda: len(runs()) == 2 and all(r["finishedAt"] for r in runs()),
            120,
            0.5,
            "two runs, one per CSV file, to end",
        )
        by_file = {run["cause"]["file"]["path"]: run for run in runs()}
        assert set(by_file) == {f"{prefix}a.csv", f"{prefix}b.csv"}
        for name, rows in (("a.csv", 1), ("b.csv", 2)):
            run = by_file[f"{prefix}{name}"]
            assert run["status"] == "succeeded" and run["trigger"] == "event", run
            [job] = api.get(f"/api/executions/{run['id']}").json()["jobs"]
            assert job["rowsWritten"] == rows, job
        time.sleep(3)  # later scheduler passes find the same files: nothing more starts
        assert len(runs()) == 2
