"""Triggers with real processes.

- Two `flowforge serve` processes on one PostgreSQL database, each running its embedded
  scheduler: a 2-second cron trigger over ~20 s gives exactly one firing per firing time
  (none lost, none doubled) and exactly one execution per started firing (set comparison
  against the database). Each firing is claimed with ``FOR UPDATE SKIP LOCKED``; the unique
  (trigger, fire time) would refuse a second record anyway.
- The embedded default (one `flowforge serve` on SQLite) fires a 1-second (6-field) cron
  trigger and the run succeeds.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import create_engine, text

from tests.system.processes import Server, settled

CSV = "id,name\n1,a\n2,b\n3,c\n"


def make_workflow(client) -> str:
    workflow = client.post("/api/workflows", json={"name": "every-two-seconds", "status": "active"})
    assert workflow.status_code == 201, workflow.text
    workflow_id = workflow.json()["id"]
    job = client.post(
        f"/api/workflows/{workflow_id}/jobs",
        json={
            "name": "Ingest tiny",
            "type": "file-based",
            "sourceConfig": {"type": "csv", "fileConfig": {"filePath": "tiny.csv"}},
            "destinationConfig": {"bronzeConfig": {"tableName": "bronze_tiny"}},
        },
    )
    assert job.status_code == 201, job.text
    return workflow_id


def firings_and_executions(database_url: str, trigger_id: str, workflow_id: str):
    """The trigger's firings (by fire time) and the workflow's executions, read from the
    database itself."""
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            firings = connection.execute(
                text(
                    "SELECT fire_time, outcome, reason, execution_id FROM trigger_firings "
                    "WHERE trigger_id = :t ORDER BY fire_time"
                ),
                {"t": trigger_id},
            ).all()
            executions = connection.execute(
                text("SELECT id, trigger, status, error FROM executions WHERE workflow_id = :w"),
                {"w": workflow_id},
            ).all()
    finally:
        engine.dispose()
    return firings, executions


def test_two_schedulers_on_postgres_give_one_run_per_firing(tmp_path, fresh_postgres_url):
    env = {"FLOWFORGE_DATABASE_URL": fresh_postgres_url, "FLOWFORGE_AUTO_MIGRATE": "true"}
    servers = []
    for name in ("a", "b"):
        data_dir = tmp_path / name
        (data_dir / "landing").mkdir(parents=True)
        (data_dir / "landing" / "tiny.csv").write_text(CSV)
        servers.append(Server(data_dir, **env).start())  # one after the other: one migrates
    try:
        with servers[0].client() as client:
            workflow_id = make_workflow(client)
            created = client.post(
                f"/api/workflows/{workflow_id}/triggers",
                json={"kind": "cron", "settings": {"expression": "* * * * * */2"}},
            )
            assert created.status_code == 201, created.text
            trigger = created.json()
            began = datetime.fromisoformat(trigger["createdAt"].replace("Z", "+00:00"))
            time.sleep(20)
            stopped = client.patch(
                f"/api/workflows/{workflow_id}/triggers/{trigger['id']}",
                # the version read when it was created: its firings do not move it
                json={"enabled": False, "version": trigger["version"]},
            )
            assert stopped.status_code == 200, stopped.text
            ended = datetime.fromisoformat(stopped.json()["updatedAt"].replace("Z", "+00:00"))
            time.sleep(3)  # the last firings are settled by whichever scheduler claimed them
            firings = client.get(
                f"/api/workflows/{workflow_id}/firings", params={"limit": 500}
            ).json()["data"]
            for firing in firings:
                if firing["outcome"] == "started":
                    settled(client, firing["executionId"])
    finally:
        for server in servers:
            server.stop()

    rows, executions = firings_and_executions(fresh_postgres_url, trigger["id"], workflow_id)
    engine = create_engine(fresh_postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        owners = connection.execute(
            text(
                "SELECT DISTINCT jr.owner FROM job_runs jr JOIN executions e "
                "ON e.id = jr.execution_id WHERE e.workflow_id = :w"
            ),
            {"w": workflow_id},
        ).all()
    engine.dispose()

    times = [row.fire_time for row in rows]
    assert len(times) == len(set(times)), "a firing time was recorded twice"
    # no firing lost: every 2-second slot between the first and the last is there
    assert len(times) >= 8, rows
    assert all(b - a == timedelta(seconds=2) for a, b in zip(times, times[1:], strict=False)), times
    assert times[0] <= began + timedelta(seconds=2 + 2) and times[-1] >= ended - timedelta(
        seconds=4
    )
    outcomes = Counter(row.outcome for row in rows)
    assert set(outcomes) <= {"started", "skipped"}, outcomes
    for row in rows:
        if row.outcome == "skipped":
            assert "still running" in row.reason or "already running" in row.reason, row
    started = {row.execution_id for row in rows if row.outcome == "started"}
    assert started, rows
    # exactly one execution per started firing, and no run that no firing asked for
    assert {e.id for e in executions} == started
    assert len(executions) == len(started)
    assert all(e.trigger == "cron" and e.status == "succeeded" for e in executions), executions
    print(f"firings {dict(outcomes)}; runs held by {len(owners)} process(es)")


def test_the_embedded_default_fires_a_one_second_trigger_and_the_run_succeeds(tmp_path):
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "tiny.csv").write_text(CSV)
    server = Server(tmp_path).start()
    try:
        with server.client() as client:
            workflow_id = make_workflow(client)
            created = client.post(
                f"/api/workflows/{workflow_id}/triggers",
                json={"kind": "cron", "settings": {"expression": "* * * * * *"}},
            )
            assert created.status_code == 201, created.text
            deadline = time.monotonic() + 30
            while True:
                firings = client.get(f"/api/workflows/{workflow_id}/firings").json()["data"]
                started = [f for f in firings if f["outcome"] == "started"]
                if started:
                    break
                assert time.monotonic() < deadline, firings
                time.sleep(0.2)
            execution = settled(client, started[-1]["executionId"])
            assert execution["status"] == "succeeded", execution
            assert execution["trigger"] == "cron"
    finally:
        server.stop()


SECRET = "scheduler-test-service-secret-0123456789abcdef"


def test_two_scheduler_processes_with_redis_workers_one_killed_midway(tmp_path, fresh_postgres_url):
    """Services apart: `flowforge serve` with a broker (the API only dispatches), the
    events, catalog and ingest workers, and two `flowforge scheduler` processes that ask
    the catalog over the broker; one scheduler is SIGKILLed midway. Every 2-second slot is
    recorded once, and every firing that asked for a run has exactly one execution."""
    import subprocess

    from tests.system.processes import FLOWFORGE, RedisServer, Workers, base_env

    redis_server = RedisServer(tmp_path).start()
    common = {
        "FLOWFORGE_DATABASE_URL": fresh_postgres_url,
        "FLOWFORGE_BROKER_URL": redis_server.url,
        "FLOWFORGE_SERVICE_SECRET": SECRET,
    }
    api_dir = tmp_path / "api"
    (api_dir / "landing").mkdir(parents=True)
    (api_dir / "landing" / "tiny.csv").write_text(CSV)
    server = Server(api_dir, FLOWFORGE_AUTO_MIGRATE="true", **common).start()
    workers = Workers(base_env(api_dir, **common), api_dir)
    schedulers: list[subprocess.Popen] = []
    try:
        for queue in ("events", "catalog", "ingest"):
            workers.start(queue)
        for name in ("a", "b"):
            data_dir = tmp_path / f"scheduler-{name}"
            data_dir.mkdir()
            env = base_env(data_dir, FLOWFORGE_CATALOG_URL=server.url, **common)
            schedulers.append(
                subprocess.Popen(
                    [FLOWFORGE, "scheduler"],
                    env=env,
                    stdout=open(data_dir / "scheduler.log", "w"),
                    stderr=subprocess.STDOUT,
                )
            )
        with server.client() as client:
            workflow_id = make_workflow(client)
            created = client.post(
                f"/api/workflows/{workflow_id}/triggers",
                json={"kind": "cron", "settings": {"expression": "* * * * * */2"}},
            )
            assert created.status_code == 201, created.text
            trigger = created.json()
            time.sleep(9)
            schedulers[0].kill()  # SIGKILL: whatever it claimed is settled by the other
            schedulers[0].wait(timeout=10)
            time.sleep(9)
            stopped = client.patch(
                f"/api/workflows/{workflow_id}/triggers/{trigger['id']}",
                # the version read when it was created: its firings do not move it
                json={"enabled": False, "version": trigger["version"]},
            )
            assert stopped.status_code == 200, stopped.text
            deadline = time.monotonic() + 60
            while True:  # every firing settled: started (its execution exists) or skipped
                firings = client.get(
                    f"/api/workflows/{workflow_id}/firings", params={"limit": 500}
                ).json()["data"]
                if all(f["outcome"] in ("started", "skipped") for f in firings):
                    break
                assert time.monotonic() < deadline, firings
                time.sleep(0.5)
            for firing in firings:
                if firing["outcome"] == "started":
                    settled(client, firing["executionId"])
    finally:
        for process in schedulers:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=20)
        workers.stop()
        server.stop()
        redis_server.stop()

    rows, executions = firings_and_executions(fresh_postgres_url, trigger["id"], workflow_id)
    times = [row.fire_time for row in rows]
    assert len(times) == len(set(times)) and len(times) >= 7, rows
    assert all(b - a == timedelta(seconds=2) for a, b in zip(times, times[1:], strict=False)), times
    started = {row.execution_id for row in rows if row.outcome == "started"}
    assert started, rows
    succeeded = {e.id for e in executions if e.status == "succeeded"}
    assert succeeded == started, (rows, executions)
    # a request the events worker refused (the workflow was running) is a failed execution
    # "not started: ..." and its firing is skipped with that reason; nothing else ran
    for execution in executions:
        assert execution.trigger == "cron"
        if execution.id not in started:
            assert execution.error.startswith("not started:"), execution
    print(f"firings {dict(Counter(row.outcome for row in rows))}")
