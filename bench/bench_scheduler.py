"""Scheduling lag: from a cron firing's time to its run accepted by the run engine, with 200
active cron triggers.

Set-up: a fresh PostgreSQL database on 127.0.0.1:5432 (dropped at the end); the embedded app
(``create_app``, catalog and orchestrator in this process, no lifespan); 200 workflows of one
CSV job each, each with a cron trigger ``* * * * * S`` (every minute at second S, S spread
over the minute: about 3.3 firings a second); two schedulers (``Scheduler`` loops, each with
its own engine, as two processes would have) at the default interval, for 62 seconds.

A firing goes the whole way a real one does — claimed, recorded, the catalog asked what the
workflow is and for the run (it takes the snapshot), the orchestrator's StartRun creates the
execution — except that the jobs are not executed (the runtime takes the tasks and drops
them): the figure is the scheduler's, not the workers' capacity.

Figures: lag = the execution's ``created_at`` - the firing's ``fire_time``, median and p99
over the started firings (targets: median < 1 s, p99 < 2 s), each also as a ratio to the
poll interval (the raw baseline: a firing waits up to one interval to be seen). Every firing
must be recorded once and started (no firing of a trigger overlaps its previous run: one a
minute, jobs not run... its execution stays queued, so a trigger's second firing, if the
window catches one, is skipped as "still running" and not counted).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench._common import check, line, median, percentile, report

PG_HOST, PG_PORT = "127.0.0.1", 5432
TRIGGERS = 200
SCHEDULERS = 2
WINDOW_SECONDS = 62


class DroppingRuntime:
    """Takes the tasks of a started run as a broker would, and runs nothing."""

    owner = None

    def send(self, tasks, queues):
        return [task.job_run_id for task in tasks], None

    def cancel(self, execution_id, job_run_ids):
        pass


def main() -> None:
    import psycopg
    from fastapi.testclient import TestClient
    from sqlalchemy import text

    from flowforge.app import create_app
    from flowforge_orchestrator.dispatch import handle_start_run
    from flowforge_orchestrator.triggers.scheduler import Scheduler
    from flowforge_shared.contracts.runs import START_RUN
    from flowforge_shared.db.engine import Database
    from flowforge_shared.settings import Settings

    admin = f"host={PG_HOST} port={PG_PORT} user=postgres dbname=postgres"
    name = f"flowforge_bench_sched_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        line("skipped", f"no PostgreSQL at {PG_HOST}:{PG_PORT} ({error})")
        return
    url = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    data_dir = Path(tempfile.mkdtemp(prefix="flowforge-bench-sched-"))
    token = "bench-admin-token-" + uuid.uuid4().hex
    settings = Settings(
        data_dir=data_dir,
        database_url=url,
        admin_token=token,
        auto_migrate=True,
        scheduler_embedded=False,
    )
    app = create_app(settings)
    runtime = DroppingRuntime()
    database = app.state.database
    app.state.bus.handle(
        START_RUN,
        lambda payload: handle_start_run(database, runtime, payload, answer_conflict=True),
    )
    schedulers = []
    try:
        client = TestClient(app)
        headers = {"Authorization": f"Bearer {token}"}
        for index in range(TRIGGERS):
            workflow = client.post(
                "/api/workflows",
                json={"name": f"bench-{index}", "status": "active"},
                headers=headers,
            ).json()
            job = {
                "name": "Ingest",
                "type": "file-based",
                "sourceConfig": {"type": "csv", "fileConfig": {"filePath": "t.csv"}},
                "destinationConfig": {"bronzeConfig": {"tableName": f"bronze_bench_{index}"}},
            }
            created = client.post(
                f"/api/workflows/{workflow['id']}/jobs", json=job, headers=headers
            )
            assert created.status_code == 201, created.text
            trigger = client.post(
                f"/api/workflows/{workflow['id']}/triggers",
                json={"kind": "cron", "settings": {"expression": f"* * * * * {index % 60}"}},
                headers=headers,
            )
            assert trigger.status_code == 201, trigger.text
        for _ in range(SCHEDULERS):
            scheduler = Scheduler(Database(url), app.state.bus, settings)
            schedulers.append(scheduler)
        started_at = time.monotonic()
        began = datetime.now(UTC)  # firings due before the schedulers ran are not lag
        for scheduler in schedulers:
            scheduler.start()
        time.sleep(WINDOW_SECONDS)
        for scheduler in schedulers:
            scheduler.stop()
        elapsed = time.monotonic() - started_at
        with database.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT f.outcome, f.fire_time, e.created_at, f.trigger_id FROM trigger_firings f "
                    "LEFT JOIN executions e ON e.id = f.execution_id"
                )
            ).all()
        started = [row for row in rows if row.outcome == "started" and row.fire_time >= began]
        lags = [(row.created_at - row.fire_time).total_seconds() for row in started]
        outcomes: dict[str, int] = {}
        for row in rows:
            outcomes[row.outcome] = outcomes.get(row.outcome, 0) + 1
        interval = settings.scheduler_interval
        line("triggers, schedulers, window", f"{TRIGGERS}, {SCHEDULERS}, {elapsed:.0f} s")
        line("firings", ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
        line("started firings due after the start", str(len(started)))
        if not lags:
            line("lag", "no firing started")
            return
        med, p99 = median(lags), percentile(lags, 0.99)
        check(
            "lag median (fire time -> run accepted)",
            f"{med * 1000:.0f} ms = {med / interval:.2f} x poll interval ({interval:g} s)",
            ok=med < 1.0,
            target="< 1 s",
        )
        check(
            "lag p99",
            f"{p99 * 1000:.0f} ms = {p99 / interval:.2f} x poll interval",
            ok=p99 < 2.0,
            target="< 2 s",
        )
        line("lag max", f"{max(lags) * 1000:.0f} ms")
    finally:
        for scheduler in schedulers:
            scheduler.stop()
            scheduler.database.dispose()
        app.state.runtime.close()
        database.dispose()
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    report(__name__)
