"""A three-layer CSV workflow and the platforms it runs on: embedded (SQLite + local disk +
in-process), PostgreSQL + S3 (a moto S3 server), and Celery on Redis with real worker
processes. Expected results are computed here, independently of FlowForge's code."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_TOKEN

FLOWFORGE = str(Path(sys.executable).parent / "flowforge")
TERMINAL = {"succeeded", "failed", "cancelled"}


def write_transactions(path: Path, rows: int, *, start_id: int = 1, seed: int = 7) -> None:
    """id, customer_id, amount (2 decimals), updated_at; every 10th row repeats an earlier id
    with a later updated_at, so silver must dedupe."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "customer_id", "amount", "updated_at"])
        for index in range(rows):
            identifier = start_id + index
            if index % 10 == 9:
                identifier = start_id + index - 5
            cents = (index * 7919 + seed) % 100_000
            writer.writerow(
                [
                    identifier,
                    identifier % 13,
                    f"{cents // 100}.{cents % 100:02d}",
                    f"2024-01-01 00:{index % 60:02d}:{index % 59:02d}",
                ]
            )


def expected_from_csv(paths: list[Path]) -> tuple[dict[int, tuple], dict[int, tuple[Decimal, int]]]:
    """silver: id -> (customer_id, amount) keeping the last row per id in file order;
    gold: customer_id -> (sum of amount, count of ids)."""
    latest: dict[int, tuple[int, Decimal]] = {}
    for path in paths:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                latest[int(row["id"])] = (int(row["customer_id"]), Decimal(row["amount"]))
    gold: dict[int, tuple[Decimal, int]] = {}
    for customer, amount in latest.values():
        total, count = gold.get(customer, (Decimal(0), 0))
        gold[customer] = (total + amount, count + 1)
    return latest, gold


def workflow_jobs(csv_path: str = "tx.csv") -> list[dict]:
    return [
        {
            "name": "Ingest transactions",
            "type": "file-based",
            "sourceConfig": {
                "type": "csv",
                "fileConfig": {
                    "filePath": csv_path,
                    "columns": [{"name": "amount", "type": "decimal", "precision": 18, "scale": 2}],
                },
            },
            "destinationConfig": {"bronzeConfig": {"tableName": "bronze_tx"}},
        },
        {
            "name": "Silver transactions",
            "type": "gold-analytics",
            "sourceConfig": {"type": "multi-table", "tables": ["bronze_tx"]},
            "destinationConfig": {
                "silverConfig": {
                    "tableName": "silver_tx",
                    "primaryKey": "id",
                    "surrogateKey": "tx_sk",
                    "mergeStrategy": "merge",
                }
            },
            "transformationConfig": {
                "derivedColumns": [
                    {"name": "amount_cents", "expression": "CAST(amount * 100 AS BIGINT)"}
                ]
            },
        },
        {
            "name": "Gold customer totals",
            "type": "gold-analytics",
            "sourceConfig": {"type": "multi-table", "tables": ["silver_tx"]},
            "destinationConfig": {"goldConfig": {"tableName": "gold_customer_totals"}},
            "transformationConfig": {
                "groupBy": ["customer_id"],
                "aggregations": [
                    {"column": "amount", "function": "SUM", "alias": "total_amount"},
                    {"column": "id", "function": "COUNT_DISTINCT", "alias": "transactions"},
                ],
            },
        },
    ]


class Platform:
    """Drives a FlowForge API (in-process TestClient or a real server) like a user."""

    def __init__(self, client, lake_root: str, storage_options: dict | None = None) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        self.lake_root = lake_root
        self.storage_options = storage_options or None

    def create_workflow(self, jobs: list[dict]) -> dict:
        response = self.client.post(
            "/api/workflows", json={"name": f"tx-{uuid.uuid4().hex[:8]}"}, headers=self.headers
        )
        assert response.status_code == 201, response.text
        workflow = response.json()
        for job in jobs:
            created = self.client.post(
                f"/api/workflows/{workflow['id']}/jobs", json=job, headers=self.headers
            )
            assert created.status_code == 201, created.text
        return workflow

    def start(self, workflow_id: str, body: dict | None = None) -> str:
        response = self.client.post(
            f"/api/workflows/{workflow_id}/run", json=body, headers=self.headers
        )
        assert response.status_code == 202, response.text
        return response.json()["executionId"]

    def execution(self, execution_id: str) -> dict:
        response = self.client.get(f"/api/executions/{execution_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def wait(self, execution_id: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            execution = self.execution(execution_id)
            if execution["status"] in TERMINAL and all(
                job["status"] not in ("running",) for job in execution["jobs"]
            ):
                return execution
            assert time.monotonic() < deadline, f"execution did not finish: {execution}"
            time.sleep(0.2)

    def run(self, workflow_id: str, timeout: float = 120) -> dict:
        return self.wait(self.start(workflow_id), timeout)

    def read(self, layer: str, table: str):
        """The table as an independent reader (polars over delta-rs) sees it."""
        import polars as pl

        return pl.read_delta(
            f"{self.lake_root}/{layer}/{table}", storage_options=self.storage_options
        )


@pytest.fixture
def embedded(tmp_path) -> Platform:
    from flowforge.app import create_app
    from tests.conftest import make_settings

    settings = make_settings(tmp_path)
    app = create_app(settings)
    with TestClient(app) as client:
        platform = Platform(client, settings.lake_root)
        platform.landing = Path(settings.landing_root)
        platform.app = app
        yield platform
    app.state.database.dispose()


class Cluster:
    """Worker processes of `flowforge worker` on a Redis database of their own."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.processes: list[tuple[str, subprocess.Popen]] = []

    def start_worker(self, queue: str, concurrency: int = 1) -> subprocess.Popen:
        log = open(self.logs / f"worker-{queue}-{len(self.processes)}.log", "w")
        process = subprocess.Popen(
            [FLOWFORGE, "worker", queue, "--concurrency", str(concurrency), "--loglevel", "INFO"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append((queue, process))
        return process

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for queue, process in self.processes:
            log = self.logs / f"worker-{queue}-{self.processes.index((queue, process))}.log"
            while "ready." not in log.read_text():
                assert process.poll() is None, f"worker {queue} exited: {log.read_text()[-2000:]}"
                assert time.monotonic() < deadline, f"worker {queue} not ready"
                time.sleep(0.2)

    def stop(self) -> None:
        for _, process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _, process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def celery_platform(tmp_path, fresh_postgres_url):
    """PostgreSQL catalog of its own (a table has one owner job across the catalog, and each
    test's workflow writes the same tables) + a Redis server of its own + workers as separate
    processes: an events worker, an ingest worker and a transform worker; the API in this
    process (no in-process tasks)."""
    postgres_url = fresh_postgres_url
    import redis

    from flowforge.app import create_app
    from tests.conftest import make_settings
    from tests.system.processes import RedisServer

    server = RedisServer(tmp_path).start()
    broker = server.url
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLOWFORGE_")},
        "FLOWFORGE_DATA_DIR": str(tmp_path),
        "FLOWFORGE_DATABASE_URL": postgres_url,
        "FLOWFORGE_BROKER_URL": broker,
        "FLOWFORGE_ADMIN_TOKEN": ADMIN_TOKEN,
        "FLOWFORGE_TASK_RETRY_BACKOFF": "0.2",
    }
    settings = make_settings(tmp_path, postgres_url, broker_url=broker)
    app = create_app(settings)
    cluster = Cluster(env, tmp_path)
    try:
        with TestClient(app) as client:
            platform = Platform(client, settings.lake_root)
            platform.landing = Path(settings.landing_root)
            platform.cluster = cluster
            platform.redis = redis.Redis.from_url(broker)
            yield platform
    finally:
        cluster.stop()
        app.state.database.dispose()
        server.stop()


@pytest.fixture
def span_exporter():
    """The spans this process finishes from now on, in memory (the global tracer provider
    gets an in-memory exporter; set up once per process, it stays)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter
