"""Dispatch overhead of the run engine on Redis: how long a chain of jobs waits between jobs.

The set-up is the scaled-out one: PostgreSQL catalog (a fresh database on 127.0.0.1:5432,
dropped at the end), Redis broker (db 9 on 127.0.0.1:6379, flushed first) and
``flowforge worker`` processes: one ``events``, two ``transform`` and one ``ingest`` worker
(one pool process each). The API runs in this process (``create_app`` + TestClient), as in
tests/system/conftest.py.

The workflow is a 20-job chain through table dependencies: a CSV ingest of a 10-row file
into ``bronze_t0``, then 19 gold-analytics jobs, job i reading table i-1 and rebuilding
``gold_t<i>`` (goldConfig, no transformation). It runs twice; the first run warms the
workers up (imports, connections) and the second is reported.

Figures, from the execution record (``GET /api/executions/{id}``) and the ``run_events``
table of the measured runs (two after the warm-up; 38 hops):

- per hop = next job's ``startedAt`` - previous job's ``finishedAt``: median and p90 (target:
  median <= 5 ms). Both times are stamped by the events worker as it records the COMPLETE and
  START events, so a hop holds: the rest of the COMPLETE's record and its commit, the send
  of the next task, its pick-up and set-up in a transform worker, the trip of its START event
  back to the events worker, and that event's record up to the stamp. A breakdown using the
  events' own ``eventTime`` (stamped in the job worker) and ``received_at`` (recorded)
  follows, and the hop as the job workers see it (COMPLETE sent -> next START sent).
- time from the POST .../run call to the first job's ``startedAt``.
- the raw baseline, measured in the same run, before, between and after the measured runs:
  Celery round trips of a no-op task on the same Redis (``send_task`` to a queue a separate
  prefork worker with FlowForge's Celery configuration consumes; the task RPUSHes to a Redis
  key that this process BLPOPs), and the ratio hop / raw round trip. A hop needs at least
  three broker trips (COMPLETE event, next task, START event), so ~3 is the floor of that
  ratio; the hop's ratio to that floor is printed too.
- the load average (1, 5, 15 min) before and after.

All processes started here are stopped at the end (SIGTERM, then SIGKILL), even on errors.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

from bench._common import PYTHON, REPO, check, line, median, percentile
from bench._server_cpu import process_cpu_seconds, process_tree, tree_cpu_seconds

FLOWFORGE = str(Path(PYTHON).parent / "flowforge")
PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
BROKER = f"redis://{REDIS_HOST}:{REDIS_PORT}/9"
CHAIN = 20
ROUND_TRIPS = 20
MEASURED_RUNS = 2
TARGET_MEDIAN_MS = 5.0
FLOOR_TRIPS = 3  # COMPLETE event, next task, START event
NOOP_TASK = "bench.noop"
NOOP_QUEUE = "bench"
TERMINAL = {"succeeded", "failed", "cancelled"}

# The raw baseline's worker: FlowForge's Celery app and configuration, one no-op task.
_NOOP_WORKER = f"""
import os, time
import redis
from flowforge_shared.celery_app import celery, configure
from flowforge_shared.settings import Settings

settings = Settings()
configure(settings)
_clients = {{}}

@celery.task(name={NOOP_TASK!r})
def noop(key):
    client = _clients.get(os.getpid())
    if client is None:
        client = _clients[os.getpid()] = redis.Redis.from_url(settings.broker_url)
    client.rpush(key, time.time())
    client.expire(key, 60)

celery.worker_main([
    "worker", "--queues", {NOOP_QUEUE!r}, "--concurrency", "1", "--pool", "prefork",
    "--loglevel", "INFO", "--hostname", "bench-noop-" + str(os.getpid()) + "@%h",
    "--without-gossip", "--without-mingle",
])
"""


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


class Workers:
    """The worker processes of this benchmark; stop() ends them and their pool processes."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.started: list[tuple[str, subprocess.Popen, Path]] = []

    def start(self, name: str, command: list[str]) -> None:
        log = self.logs / f"{name}-{len(self.started)}.log"
        with open(log, "w") as handle:
            process = subprocess.Popen(
                command, env=self.env, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT
            )
        self.started.append((name, process, log))

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        for name, process, log in self.started:
            while "ready." not in log.read_text():
                if process.poll() is not None:
                    raise RuntimeError(f"worker {name} exited:\n{log.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker {name} not ready after {timeout:.0f} s")
                time.sleep(0.1)

    def stop(self) -> None:
        pool = [pid for _, process, _ in self.started for pid in process_tree(process.pid)[1:]]
        for _, process, _ in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _, process, _ in self.started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for pid in pool:  # pool processes a killed parent may have left behind
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) used so far by each kind of worker: its main processes
        (``name``) and their pool processes (``name pool``), from ``/proc`` (the no-op
        worker left out)."""
        used: dict[str, float] = {}
        for name, process, _ in self.started:
            if name == "noop":
                continue
            used[name] = used.get(name, 0.0) + process_cpu_seconds(process.pid)
            pool = tree_cpu_seconds(process_tree(process.pid)[1:])
            used[f"{name} pool"] = used.get(f"{name} pool", 0.0) + pool
        return used

    def log_tails(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-1500:]}" for _, _, log in self.started)


def chain_jobs() -> list[dict]:
    jobs = [
        {
            "name": "t0 ingest",
            "type": "file-based",
            "sourceConfig": {"type": "csv", "fileConfig": {"filePath": "tiny.csv"}},
            "destinationConfig": {"bronzeConfig": {"tableName": "bronze_t0"}},
        }
    ]
    previous = "bronze_t0"
    for index in range(1, CHAIN):
        table = f"gold_t{index}"
        jobs.append(
            {
                "name": f"t{index} gold",
                "type": "gold-analytics",
                "sourceConfig": {"type": "multi-table", "tables": [previous]},
                "destinationConfig": {"goldConfig": {"tableName": table}},
            }
        )
        previous = table
    return jobs


def raw_round_trips(count: int, warm_up: int = 3) -> list[float]:
    """Seconds per Celery round trip of the no-op task (send_task -> worker -> Redis key)."""
    import redis

    from flowforge_shared.celery_app import celery

    client = redis.Redis.from_url(BROKER)
    times: list[float] = []
    for index in range(warm_up + count):
        key = f"bench:noop:{uuid.uuid4().hex}"
        start = time.perf_counter()
        celery.send_task(NOOP_TASK, args=[key], queue=NOOP_QUEUE)
        answer = client.blpop([key], timeout=30)
        elapsed = time.perf_counter() - start
        if answer is None:
            raise RuntimeError("the no-op worker did not answer within 30 s")
        if index >= warm_up:
            times.append(elapsed)
    return times


class Api:
    def __init__(self, client, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, url: str, expect: int, **kwargs) -> dict:
        response = self.client.request(method, url, headers=self.headers, **kwargs)
        if response.status_code != expect:
            raise RuntimeError(f"{method} {url} answered {response.status_code}: {response.text}")
        return response.json()

    def create_workflow(self, jobs: list[dict]) -> str:
        workflow = self.call(
            "POST", "/api/workflows", 201, json={"name": f"bench-chain-{uuid.uuid4().hex[:8]}"}
        )
        for job in jobs:
            self.call("POST", f"/api/workflows/{workflow['id']}/jobs", 201, json=job)
        return workflow["id"]

    def run(self, workflow_id: str, timeout: float = 180) -> tuple[datetime, dict]:
        """(the time just before the POST .../run call, the finished execution)."""
        posted = datetime.now(UTC)
        started = self.call("POST", f"/api/workflows/{workflow_id}/run", 202)
        execution_id = started["executionId"]
        deadline = time.monotonic() + timeout
        while True:
            execution = self.call("GET", f"/api/executions/{execution_id}", 200)
            if execution["status"] in TERMINAL and all(
                job["status"] != "running" for job in execution["jobs"]
            ):
                return posted, execution
            if time.monotonic() > deadline:
                raise RuntimeError(f"execution {execution_id} did not finish: {execution}")
            time.sleep(0.25)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def run_events(database, execution_id: str) -> dict[tuple[str, str], tuple[datetime, datetime]]:
    """(job run id, event type) -> (eventTime stamped by the sender, received_at)."""
    from sqlalchemy import select

    from flowforge_orchestrator.runs.models import RunEvent

    found: dict[tuple[str, str], tuple[datetime, datetime]] = {}
    with database.session() as session:
        rows = session.scalars(
            select(RunEvent).where(RunEvent.execution_id == execution_id).order_by(RunEvent.id)
        )
        for event in rows:
            key = (event.job_run_id, event.event_type)
            found.setdefault(key, (_time(event.payload["eventTime"]), event.received_at))
    return found


def analyse(posted: datetime, execution: dict, events: dict) -> dict[str, object]:
    if execution["status"] != "succeeded":
        raise RuntimeError(f"the chain did not succeed: {execution}")
    jobs = sorted(execution["jobs"], key=lambda job: _time(job["startedAt"]))
    gaps, complete_trip, to_start, start_trip, worker_gaps = [], [], [], [], []
    for before, after in zip(jobs, jobs[1:], strict=False):
        gaps.append((_time(after["startedAt"]) - _time(before["finishedAt"])).total_seconds())
        complete_sent, complete_recorded = events[(before["jobRunId"], "COMPLETE")]
        start_sent, start_recorded = events[(after["jobRunId"], "START")]
        complete_trip.append((complete_recorded - complete_sent).total_seconds())
        to_start.append((start_sent - complete_recorded).total_seconds())
        start_trip.append((start_recorded - start_sent).total_seconds())
        worker_gaps.append((start_sent - complete_sent).total_seconds())
    durations = [
        (_time(job["finishedAt"]) - _time(job["startedAt"])).total_seconds() for job in jobs
    ]
    first_start_sent, _ = events[(jobs[0]["jobRunId"], "START")]
    return {
        "gaps": gaps,
        "complete_trip": complete_trip,
        "to_start": to_start,
        "start_trip": start_trip,
        "worker_gaps": worker_gaps,
        "durations": durations,
        "post_to_first_start": (_time(jobs[0]["startedAt"]) - posted).total_seconds(),
        "post_to_first_start_sent": (first_start_sent - posted).total_seconds(),
        "total": (_time(jobs[-1]["finishedAt"]) - posted).total_seconds(),
    }


def _report(runs: list[dict], raw: list[float], warm_up: dict) -> None:
    figures = {key: [x for run in runs for x in run[key]] for key in runs[0] if key in _LISTS}
    gaps = figures["gaps"]
    hop = median(gaps)
    raw_median = median(raw)
    line(
        "raw baseline: Celery no-op round trip",
        f"median {_ms(raw_median)}, p90 {_ms(percentile(raw, 0.9))} (n={len(raw)})",
    )
    check(
        "per hop (next startedAt - previous finishedAt)",
        f"median {_ms(hop)}, p90 {_ms(percentile(gaps, 0.9))}, "
        f"max {_ms(max(gaps))} (n={len(gaps)})",
        ok=hop * 1000 <= TARGET_MEDIAN_MS,
        target=f"median <= {TARGET_MEDIAN_MS:.0f} ms",
    )
    line(
        "ratio hop / raw round trip (medians)",
        f"{hop / raw_median:.1f} (floor {FLOOR_TRIPS}: three broker trips = "
        f"{_ms(FLOOR_TRIPS * raw_median)}; hop / floor {hop / (FLOOR_TRIPS * raw_median):.1f})",
    )
    line(
        "  breakdown (medians, run events)",
        f"COMPLETE event to recorded {_ms(median(figures['complete_trip']))}; "
        f"recorded to next START sent {_ms(median(figures['to_start']))}; "
        f"START event to recorded {_ms(median(figures['start_trip']))}",
    )
    worker = figures["worker_gaps"]
    line(
        "  hop as the job workers see it",
        f"COMPLETE sent -> next START sent: median {_ms(median(worker))}, "
        f"p90 {_ms(percentile(worker, 0.9))}; ratio to raw {median(worker) / raw_median:.1f}",
    )
    cpu = {name: sum(run["cpu"][name] for run in runs) for name in runs[0]["cpu"]}
    events = sum(run["events"] for run in runs)
    jobs = CHAIN * len(runs)
    transform_jobs = jobs - len(runs)
    line(
        "workers' CPU (user + system; main + pool)",
        f"events worker {_ms(cpu['events'] / events)} + {_ms(cpu['events pool'] / events)} "
        f"per run event ({events} events); transform workers "
        f"{_ms(cpu['transform'] / transform_jobs)} + "
        f"{_ms(cpu['transform pool'] / transform_jobs)} per job; ingest worker "
        f"{_ms(cpu['ingest'] / len(runs))} + {_ms(cpu['ingest pool'] / len(runs))} per job",
    )
    last = runs[-1]
    line(
        "POST .../run -> first job startedAt",
        f"{_ms(last['post_to_first_start'])} "
        f"(START sent by the worker after {_ms(last['post_to_first_start_sent'])}; last run)",
    )
    line(
        "job run time (startedAt -> finishedAt)",
        f"median {_ms(median(figures['durations']))}; whole chain "
        + ", ".join(f"{run['total']:.2f} s" for run in runs),
    )
    line(
        "first (warm-up) run, for comparison",
        f"hop median {_ms(median(warm_up['gaps']))}, p90 "
        f"{_ms(percentile(warm_up['gaps'], 0.9))}; POST -> first startedAt "
        f"{_ms(warm_up['post_to_first_start'])}; whole chain {warm_up['total']:.2f} s",
    )


_LISTS = ("gaps", "complete_trip", "to_start", "start_trip", "worker_gaps", "durations")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    for name, host, port in (("PostgreSQL", PG_HOST, PG_PORT), ("Redis", REDIS_HOST, REDIS_PORT)):
        if not _answers(host, port):
            print(f"  SKIPPED: {name} is not answering at {host}:{port} (start it and re-run)")
            return
    import psycopg
    import redis

    database_name = f"flowforge_bench_{uuid.uuid4().hex[:12]}"
    admin_dsn = f"host={PG_HOST} port={PG_PORT} user=postgres dbname=postgres"
    with psycopg.connect(admin_dsn, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{database_name}"')
    database_url = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{database_name}"
    data_dir = Path(tempfile.mkdtemp(prefix="flowforge-bench-dispatch-"))
    try:
        redis.Redis.from_url(BROKER).flushdb()
        _measure(data_dir, database_url)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database_name}" WITH (FORCE)')
        redis.Redis.from_url(BROKER).flushdb()
        shutil.rmtree(data_dir, ignore_errors=True)
    from bench._common import report  # the SUMMARY's figures (bench/README.md)

    report(
        __name__,
        lines=("raw baseline: Celery no-op round trip", "ratio hop / raw round trip"),
    )


def _measure(data_dir: Path, database_url: str) -> None:
    from fastapi.testclient import TestClient

    from flowforge.app import create_app
    from flowforge_shared.celery_app import configure
    from flowforge_shared.settings import Settings

    token = "ff_bench_admin_" + uuid.uuid4().hex
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        admin_token=token,
        auto_migrate=True,
        broker_url=BROKER,
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLOWFORGE_")},
        "FLOWFORGE_DATA_DIR": str(data_dir),
        "FLOWFORGE_DATABASE_URL": database_url,
        "FLOWFORGE_BROKER_URL": BROKER,
        "FLOWFORGE_ADMIN_TOKEN": token,
    }
    landing = Path(settings.landing_root)
    landing.mkdir(parents=True, exist_ok=True)
    (landing / "tiny.csv").write_text(
        "id,name,amount\n" + "".join(f"{i},name {i},{i}.50\n" for i in range(1, 11))
    )
    logs = data_dir / "logs"
    logs.mkdir()
    workers = Workers(env, logs)
    app = create_app(settings)
    try:
        with TestClient(app) as client:  # the lifespan migrates the fresh database
            configure(settings)
            for queue in ("events", "transform", "transform", "ingest"):
                workers.start(queue, [FLOWFORGE, "worker", queue, "--concurrency", "1"])
            workers.start("noop", [PYTHON, "-c", _NOOP_WORKER])
            workers.wait_ready()
            line("workers", "events x1, transform x2, ingest x1 (1 pool process each)")
            api = Api(client, token)
            workflow_id = api.create_workflow(chain_jobs())
            database = app.state.database
            line("load average (1, 5, 15 min) before", _load())
            posted, execution = api.run(workflow_id)
            warm_up = analyse(posted, execution, run_events(database, execution["id"]))
            raw, runs = [], []
            for _ in range(MEASURED_RUNS):  # alternating: raw trips, a run, ..., raw trips
                raw += raw_round_trips(ROUND_TRIPS)
                cpu_before = workers.cpu_seconds()
                posted, execution = api.run(workflow_id)
                cpu_after = workers.cpu_seconds()
                runs.append(analyse(posted, execution, run_events(database, execution["id"])))
                runs[-1]["cpu"] = {k: cpu_after[k] - cpu_before[k] for k in cpu_after}
                runs[-1]["events"] = len(run_events(database, execution["id"]))
            raw += raw_round_trips(ROUND_TRIPS)
            _report(runs, raw, warm_up)
            line("load average (1, 5, 15 min) after", _load())
    except Exception:
        print(workers.log_tails())
        raise
    finally:
        workers.stop()
        app.state.database.dispose()
