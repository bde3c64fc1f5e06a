"""Event triggers through the API, with the scheduler's passes driven by the test: files
dropped under a landing prefix (a local folder, or an S3 prefix on a moto server) each start
exactly one run that reads that file; a second pass, a paused workflow and files already
there start nothing; two schedulers racing on PostgreSQL over 20 files start 20 runs, each
file once; bad settings are 422 naming the field."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from flowforge.app import create_app
from flowforge_orchestrator.runs.models import Execution
from flowforge_orchestrator.triggers import scheduler as sched
from flowforge_orchestrator.triggers.models import Trigger, TriggerFiring
from flowforge_shared.contracts.triggers import WorkflowInfo
from flowforge_shared.db.engine import Database
from flowforge_shared.lake import Lake
from tests.conftest import ADMIN_TOKEN, make_settings

HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def platform_with(tmp_path, database_url=None, **extra):
    settings = make_settings(tmp_path, database_url, scheduler_embedded=False, **extra)
    app = create_app(settings)
    return app, TestClient(app)  # no lifespan: the test drives the scheduler's passes


@pytest.fixture
def platform(tmp_path):
    app, client = platform_with(tmp_path)
    yield app, client
    app.state.runtime.close()
    app.state.database.dispose()


def make_workflow(client, *, jobs: int = 1) -> tuple[str, list[dict]]:
    """An active workflow of ``jobs`` CSV jobs, each loading into a bronze table of its own
    (their own filePath is a file that does not exist: only the trigger's file is read)."""
    response = client.post(
        "/api/workflows",
        json={"name": f"wf-{uuid.uuid4().hex[:8]}", "status": "active"},
        headers=HEADERS,
    )
    assert response.status_code == 201, response.text
    workflow_id = response.json()["id"]
    created = []
    for index in range(jobs):
        job = {
            "name": f"Ingest {index}",
            "type": "file-based",
            "sourceConfig": {"type": "csv", "fileConfig": {"filePath": "nowhere/none.csv"}},
            "destinationConfig": {
                "bronzeConfig": {"tableName": f"bronze_ev_{uuid.uuid4().hex[:8]}"}
            },
        }
        answer = client.post(f"/api/workflows/{workflow_id}/jobs", json=job, headers=HEADERS)
        assert answer.status_code == 201, answer.text
        created.append(answer.json())
    return workflow_id, created


def add_event_trigger(client, workflow_id: str, **settings) -> dict:
    settings = {"prefix": "incoming/", "pattern": "*.csv", "pollSeconds": 0, **settings}
    body = {"kind": "event", "settings": settings}
    response = client.post(f"/api/workflows/{workflow_id}/triggers", json=body, headers=HEADERS)
    assert response.status_code == 201, response.text
    return response.json()


def firings(client, workflow_id: str) -> list[dict]:
    response = client.get(
        f"/api/workflows/{workflow_id}/firings", params={"limit": 500}, headers=HEADERS
    )
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["data"]))


def executions(client, workflow_id: str) -> list[dict]:
    response = client.get(
        "/api/executions", params={"workflowId": workflow_id, "limit": 100}, headers=HEADERS
    )
    assert response.status_code == 200, response.text
    return [e for e in response.json()["data"] if e["workflowId"] == workflow_id]


def wait_ended(client, execution_id: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        execution = client.get(f"/api/executions/{execution_id}", headers=HEADERS).json()
        if execution["status"] in ("succeeded", "failed", "cancelled"):
            return execution
        assert time.monotonic() < deadline, execution
        time.sleep(0.1)


def drive(app, *, until, clock=None, timeout: float = 90) -> None:
    """Scheduler passes until ``until()`` holds (queued files start as earlier runs end)."""
    scheduler = sched.Scheduler(
        app.state.database, app.state.bus, app.state.settings, clock=clock or sched.utc_now
    )
    deadline = time.monotonic() + timeout
    while True:
        scheduler.tick()
        if until():
            return
        assert time.monotonic() < deadline, "the scheduler did not get there in time"
        time.sleep(0.1)


def all_ended(client, workflow_id: str, count: int):
    def check() -> bool:
        found = executions(client, workflow_id)
        ended = [e for e in found if e["status"] in ("succeeded", "failed", "cancelled")]
        return len(found) >= count and len(ended) == len(found)

    return check


def bronze_rows(app, table: str) -> list[tuple]:
    loaded = Lake.from_settings(app.state.settings).load("bronze", table)
    if loaded is None:
        return []
    return [
        (row["id"], row["name"], row["_source"], row["_execution_id"])
        for row in loaded.to_pyarrow_table().to_pylist()
    ]


def landing(app) -> Path:
    return Path(app.state.settings.landing_root)


def drop(folder: Path, name: str, rows: list[tuple[int, str]]) -> None:
    """Write a CSV the way a careful sender does: under a hidden name, then renamed."""
    folder.mkdir(parents=True, exist_ok=True)
    hidden = folder / f".{name}.part"
    hidden.write_text("id,name\n" + "".join(f"{i},{n}\n" for i, n in rows))
    os.replace(hidden, folder / name)


def test_each_dropped_file_starts_one_run_that_reads_it(platform):
    app, client = platform
    workflow_id, [job] = make_workflow(client)
    trigger = add_event_trigger(client, workflow_id, settleSeconds=0)
    assert trigger["kind"] == "event" and trigger["nextFireTimes"] == []
    assert trigger["settings"]["jobId"] == job["id"]  # the only CSV job receives the file
    assert trigger["settings"]["includeExisting"] is False
    table = job["destinationConfig"]["bronzeConfig"]["tableName"]

    incoming = landing(app) / "incoming"
    drop(incoming, "jan.csv", [(1, "a"), (2, "b")])
    drop(incoming, "feb.csv", [(3, "c")])
    drop(incoming, "notes.txt", [(9, "not matched")])
    drive(app, until=all_ended(client, workflow_id, 2))

    ran = executions(client, workflow_id)
    assert len(ran) == 2, ran
    assert all(e["status"] == "succeeded" and e["trigger"] == "event" for e in ran), ran
    by_file = {e["cause"]["file"]["path"]: e for e in ran}
    assert set(by_file) == {"incoming/jan.csv", "incoming/feb.csv"}
    for path, execution in by_file.items():
        assert execution["cause"]["triggerId"] == trigger["id"]
        assert execution["cause"]["file"]["jobId"] == job["id"]
        assert execution["cause"]["file"]["size"] == (landing(app) / path).stat().st_size
    recorded = firings(client, workflow_id)
    assert {f["outcome"] for f in recorded} == {"started"}
    assert {f["executionId"] for f in recorded} == {e["id"] for e in ran}
    assert {f["cause"]["file"]["path"] for f in recorded} == set(by_file)

    # each job run read its own file: every row once, from that file, in that execution
    assert sorted(bronze_rows(app, table)) == sorted(
        [
            (1, "a", "incoming/jan.csv", by_file["incoming/jan.csv"]["id"]),
            (2, "b", "incoming/jan.csv", by_file["incoming/jan.csv"]["id"]),
            (3, "c", "incoming/feb.csv", by_file["incoming/feb.csv"]["id"]),
        ]
    )

    # a second pass finds the same files: nothing new
    scheduler = sched.Scheduler(app.state.database, app.state.bus, app.state.settings)
    assert scheduler.tick() == {"recorded": 0, "settled": 0}
    assert len(executions(client, workflow_id)) == 2

    # a file rewritten with other content is a new arrival: it fires again
    drop(incoming, "feb.csv", [(3, "c"), (4, "d")])
    drive(app, until=all_ended(client, workflow_id, 3))
    assert len(executions(client, workflow_id)) == 3


def test_files_already_there_do_not_fire_unless_asked(platform):
    app, client = platform
    incoming = landing(app) / "incoming"
    drop(incoming, "old.csv", [(1, "old")])
    an_hour_ago = time.time() - 3600
    os.utime(incoming / "old.csv", (an_hour_ago, an_hour_ago))
    workflow_id, _ = make_workflow(client)
    add_event_trigger(client, workflow_id, settleSeconds=0)
    scheduler = sched.Scheduler(app.state.database, app.state.bus, app.state.settings)
    assert scheduler.tick()["recorded"] == 0
    assert firings(client, workflow_id) == []

    other, _ = make_workflow(client)
    add_event_trigger(client, other, settleSeconds=0, includeExisting=True)
    drive(app, until=all_ended(client, other, 1))
    [execution] = executions(client, other)
    assert execution["cause"]["file"]["path"] == "incoming/old.csv"


def test_a_file_still_being_written_waits_for_the_settle_time(platform):
    app, client = platform
    workflow_id, _ = make_workflow(client)
    add_event_trigger(client, workflow_id, settleSeconds=30)
    incoming = landing(app) / "incoming"
    incoming.mkdir(parents=True)
    (incoming / "big.csv").write_text("id,name\n1,a\n")  # its time is now: still moving
    now = datetime.now(UTC)
    scheduler = sched.Scheduler(
        app.state.database, app.state.bus, app.state.settings, clock=lambda: now
    )
    assert scheduler.tick()["recorded"] == 0
    later = sched.Scheduler(
        app.state.database,
        app.state.bus,
        app.state.settings,
        clock=lambda: now + timedelta(seconds=31),
    )
    assert later.tick()["recorded"] == 1


def test_a_paused_workflow_starts_nothing_and_resuming_replays_nothing(platform):
    app, client = platform
    workflow_id, _ = make_workflow(client)
    add_event_trigger(client, workflow_id, settleSeconds=0)
    assert client.post(f"/api/workflows/{workflow_id}/pause", headers=HEADERS).status_code == 200
    drop(landing(app) / "incoming", "while-paused.csv", [(1, "a")])
    scheduler = sched.Scheduler(app.state.database, app.state.bus, app.state.settings)
    scheduler.tick()
    [firing] = firings(client, workflow_id)
    assert firing["outcome"] == "skipped" and "paused" in firing["reason"]
    assert firing["executionId"] is None
    assert firing["cause"]["file"]["path"] == "incoming/while-paused.csv"
    assert client.post(f"/api/workflows/{workflow_id}/resume", headers=HEADERS).status_code == 200
    scheduler.tick()
    assert len(firings(client, workflow_id)) == 1  # recorded once, as skipped: not replayed
    assert executions(client, workflow_id) == []
    drop(landing(app) / "incoming", "after.csv", [(2, "b")])
    drive(app, until=all_ended(client, workflow_id, 1))
    [execution] = executions(client, workflow_id)
    assert execution["cause"]["file"]["path"] == "incoming/after.csv"


def test_with_several_csv_jobs_the_named_job_reads_the_file(platform):
    app, client = platform
    workflow_id, jobs = make_workflow(client, jobs=2)
    refused = client.post(
        f"/api/workflows/{workflow_id}/triggers",
        json={"kind": "event", "settings": {"prefix": "incoming/"}},
        headers=HEADERS,
    )
    assert refused.status_code == 422, refused.text
    assert "settings.jobId" in refused.text and "2 CSV jobs" in refused.text
    add_event_trigger(client, workflow_id, settleSeconds=0, jobId=jobs[1]["id"])
    drop(landing(app) / "incoming", "x.csv", [(7, "x")])
    # run only until the receiving job ran: the other job reads its own (absent) file
    drive(app, until=all_ended(client, workflow_id, 1))
    [execution] = executions(client, workflow_id)
    table = jobs[1]["destinationConfig"]["bronzeConfig"]["tableName"]
    assert [row[:3] for row in bronze_rows(app, table)] == [(7, "x", "incoming/x.csv")]


@pytest.mark.parametrize(
    ("settings", "field", "words"),
    [
        ({"prefix": "../outside/"}, "settings.prefix", "'..'"),
        ({"prefix": "a/../../b"}, "settings.prefix", "'..'"),
        ({"prefix": "/etc/"}, "settings.prefix", "absolute"),
        ({"prefix": "C:\\landing"}, "settings.prefix", "backslash"),
        ({"prefix": "s3://other-bucket/x/"}, "settings.prefix", "URL"),
        ({"pattern": "sub/*.csv"}, "settings.pattern", "prefix"),
        ({"pattern": ""}, "settings.pattern", ""),
        ({"settleSeconds": -1}, "settings.settleSeconds", ""),
        ({"jobId": "not-a-job"}, "settings.jobId", "not a CSV job"),
        ({"concurrency": "sometimes"}, "settings.concurrency", ""),
        ({"surprise": 1}, "settings.surprise", ""),
    ],
)
def test_bad_settings_are_422_naming_the_field(platform, settings, field, words):
    _, client = platform
    workflow_id, _ = make_workflow(client)
    response = client.post(
        f"/api/workflows/{workflow_id}/triggers",
        json={"kind": "event", "settings": settings},
        headers=HEADERS,
    )
    assert response.status_code == 422, response.text
    assert field in response.text and words in response.text
    assert (
        client.get(f"/api/workflows/{workflow_id}/triggers", headers=HEADERS).json()["count"] == 0
    )


def test_a_workflow_without_a_csv_job_cannot_have_an_event_trigger(platform):
    _, client = platform
    response = client.post(
        "/api/workflows", json={"name": f"empty-{uuid.uuid4().hex[:6]}"}, headers=HEADERS
    )
    workflow_id = response.json()["id"]
    response = client.post(
        f"/api/workflows/{workflow_id}/triggers",
        json={"kind": "event", "settings": {"prefix": "incoming/"}},
        headers=HEADERS,
    )
    assert response.status_code == 422, response.text
    assert "settings.jobId" in response.text and "no CSV job" in response.text


def test_an_s3_prefix_fires_once_per_object(tmp_path, moto_s3, monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    root = f"s3://{moto_s3['bucket']}/ev-{uuid.uuid4().hex[:8]}"
    app, client = platform_with(
        tmp_path,
        storage_url=root,
        s3_endpoint_url=moto_s3["endpoint"],
        s3_access_key_id="test",
        s3_secret_access_key="test",
        s3_allow_http=True,
    )
    try:
        assert app.state.settings.landing_root == root + "/landing"
        workflow_id, [job] = make_workflow(client)
        trigger = add_event_trigger(client, workflow_id, settleSeconds=0)
        s3, bucket, key = moto_s3["client"], moto_s3["bucket"], root.split("/", 3)[3]
        for name, body in {
            "incoming/a.csv": "id,name\n1,a\n",
            "incoming/b.csv": "id,name\n2,b\n3,c\n",
            "incoming/skip.json": "{}",
            "elsewhere/c.csv": "id,name\n4,d\n",
        }.items():
            s3.put_object(Bucket=bucket, Key=f"{key}/landing/{name}", Body=body.encode())
        drive(app, until=all_ended(client, workflow_id, 2))
        ran = executions(client, workflow_id)
        assert len(ran) == 2 and all(e["status"] == "succeeded" for e in ran), ran
        by_file = {e["cause"]["file"]["path"]: e["id"] for e in ran}
        assert set(by_file) == {"incoming/a.csv", "incoming/b.csv"}
        assert all(e["cause"]["triggerId"] == trigger["id"] for e in ran)
        table = job["destinationConfig"]["bronzeConfig"]["tableName"]
        assert sorted(bronze_rows(app, table)) == sorted(
            [
                (1, "a", "incoming/a.csv", by_file["incoming/a.csv"]),
                (2, "b", "incoming/b.csv", by_file["incoming/b.csv"]),
                (3, "c", "incoming/b.csv", by_file["incoming/b.csv"]),
            ]
        )
        scheduler = sched.Scheduler(app.state.database, app.state.bus, app.state.settings)
        assert scheduler.tick() == {"recorded": 0, "settled": 0}
    finally:
        app.state.runtime.close()
        app.state.database.dispose()


@pytest.mark.postgres
def test_two_schedulers_racing_over_20_files_start_20_runs_each_file_once(
    tmp_path, fresh_postgres_url
):
    app, client = platform_with(tmp_path, fresh_postgres_url)
    try:
        workflow_id, [job] = make_workflow(client)
        add_event_trigger(client, workflow_id, settleSeconds=0)
        names = [f"f{index:02d}.csv" for index in range(20)]
        for index, name in enumerate(names):
            drop(landing(app) / "incoming", name, [(index, name)])
        # two schedulers, each with its own connection pool, as two processes would have
        databases = [Database(fresh_postgres_url) for _ in range(2)]
        schedulers = [
            sched.Scheduler(database, app.state.bus, app.state.settings) for database in databases
        ]
        done = threading.Event()
        errors: list[BaseException] = []

        def run(scheduler) -> None:
            try:
                while not done.is_set():
                    scheduler.tick()
                    time.sleep(0.02)
            except BaseException as error:  # noqa: BLE001 - reported by the test
                errors.append(error)

        threads = [threading.Thread(target=run, args=(s,)) for s in schedulers]
        for thread in threads:
            thread.start()
        try:
            deadline = time.monotonic() + 90
            check = all_ended(client, workflow_id, 20)
            while not check():
                assert not errors, errors
                assert time.monotonic() < deadline, (
                    Counter(f["outcome"] for f in firings(client, workflow_id)),
                    Counter(e["status"] for e in executions(client, workflow_id)),
                )
                time.sleep(0.2)
        finally:
            done.set()
            for thread in threads:
                thread.join(timeout=30)
            for database in databases:
                database.dispose()
        assert not errors, errors

        recorded = firings(client, workflow_id)
        assert len(recorded) == 20, recorded
        assert sorted(f["cause"]["file"]["path"] for f in recorded) == sorted(
            f"incoming/{name}" for name in names
        )
        assert {f["outcome"] for f in recorded} == {"started"}, recorded
        ran = executions(client, workflow_id)
        assert len(ran) == 20 and all(e["status"] == "succeeded" for e in ran), ran
        assert {e["id"] for e in ran} == {f["executionId"] for f in recorded}
        with app.state.database.session() as session:
            stored = session.scalars(
                select(Execution.id).where(Execution.workflow_id == workflow_id)
            ).all()
        assert len(stored) == 20
        table = job["destinationConfig"]["bronzeConfig"]["tableName"]
        rows = bronze_rows(app, table)
        assert len(rows) == 20
        assert {(row[0], row[1], row[2]) for row in rows} == {
            (index, name, f"incoming/{name}") for index, name in enumerate(names)
        }
    finally:
        app.state.runtime.close()
        app.state.database.dispose()


def change(client, path: str, body: dict):
    """A PATCH from the trigger's version as read now (a change must name it)."""
    version = client.get(path, headers=HEADERS).json()["version"]
    return client.patch(path, json={**body, "version": version}, headers=HEADERS)


def test_a_disabled_trigger_lists_nothing_and_enabled_again_counts_files_from_then(platform):
    app, client = platform
    workflow_id, _ = make_workflow(client)
    trigger = add_event_trigger(client, workflow_id, settleSeconds=0)
    path = f"/api/workflows/{workflow_id}/triggers/{trigger['id']}"
    assert change(client, path, {"enabled": False}).status_code == 200
    incoming = landing(app) / "incoming"
    drop(incoming, "while-off.csv", [(1, "a")])
    a_minute_ago = time.time() - 60
    os.utime(incoming / "while-off.csv", (a_minute_ago, a_minute_ago))
    scheduler = sched.Scheduler(app.state.database, app.state.bus, app.state.settings)
    assert scheduler.tick()["recorded"] == 0
    assert change(client, path, {"enabled": True}).status_code == 200
    assert scheduler.tick()["recorded"] == 0  # changed before it was enabled again
    assert firings(client, workflow_id) == []

    bad = change(client, path, {"settings": {"jobId": "nope"}})
    assert bad.status_code == 422 and "settings.jobId" in bad.text
    bad = change(client, path, {"settings": {"prefix": "../up"}})
    assert bad.status_code == 422 and "settings.prefix" in bad.text


def test_a_receiving_job_deleted_later_makes_the_firing_skipped_saying_why(platform):
    app, client = platform
    workflow_id, jobs = make_workflow(client, jobs=2)
    add_event_trigger(client, workflow_id, settleSeconds=0, jobId=jobs[0]["id"])
    deleted = client.delete(f"/api/workflows/{workflow_id}/jobs/{jobs[0]['id']}", headers=HEADERS)
    assert deleted.status_code == 204, deleted.text
    drop(landing(app) / "incoming", "late.csv", [(1, "a")])
    sched.Scheduler(app.state.database, app.state.bus, app.state.settings).tick()
    [firing] = firings(client, workflow_id)
    assert firing["outcome"] == "skipped" and firing["executionId"] is None
    assert "not started" in firing["reason"] and jobs[0]["id"] in firing["reason"]
    assert executions(client, workflow_id) == []


def test_a_prefix_is_listed_at_most_every_poll_seconds(platform):
    app, client = platform
    workflow_id, _ = make_workflow(client)
    add_event_trigger(client, workflow_id, settleSeconds=0, pollSeconds=30)
    now = datetime.now(UTC)
    clock = {"now": now}
    scheduler = sched.Scheduler(
        app.state.database, app.state.bus, app.state.settings, clock=lambda: clock["now"]
    )
    assert scheduler.tick()["recorded"] == 0  # listed: nothing yet
    drop(landing(app) / "incoming", "a.csv", [(1, "a")])
    clock["now"] = now + timedelta(seconds=29)
    assert scheduler.tick()["recorded"] == 0  # not listed again yet
    clock["now"] = now + timedelta(seconds=30)
    assert scheduler.tick()["recorded"] == 1


def test_saving_the_same_settings_again_does_not_restart_the_watch(platform):
    app, client = platform
    workflow_id, _ = make_workflow(client)
    trigger = add_event_trigger(client, workflow_id)
    path = f"/api/workflows/{workflow_id}/triggers/{trigger['id']}"

    def watch_from():
        with app.state.database.session() as session:
            return session.get(Trigger, trigger["id"]).watch_from

    before = watch_from()
    same = {k: v for k, v in trigger["settings"].items() if k != "jobId"}  # as first sent
    assert change(client, path, {"settings": same, "name": "n"}).status_code == 200
    assert watch_from() == before
    changed = {**same, "pattern": "*.txt"}
    assert change(client, path, {"settings": changed}).status_code == 200
    assert watch_from() > before


def test_a_queue_firing_the_events_worker_refused_waits_again_under_a_new_id(platform):
    """Served apart, the run engine's refusal (another scheduler had just started the
    workflow's run) comes back as a failed execution "not started: ...": a ``queue`` firing
    goes back to waiting instead of losing its file."""
    app, client = platform
    workflow_id, _ = make_workflow(client)
    trigger = add_event_trigger(client, workflow_id, settleSeconds=0)
    running, refused = str(uuid.uuid4()), str(uuid.uuid4())
    with app.state.database.session() as session:
        for execution_id, status, error in (
            (running, "running", None),
            (refused, "failed", f"not started: workflow wf is already running ({running})"),
        ):
            session.add(
                Execution(
                    id=execution_id,
                    workflow_id=workflow_id,
                    workflow_name="wf",
                    status=status,
                    trigger="event",
                    error=error,
                )
            )
        firing = TriggerFiring(
            trigger_id=trigger["id"],
            workflow_id=workflow_id,
            fire_time=datetime.now(UTC),
            outcome="requested",
            execution_id=refused,
            firing_key="file:x",
            cause={"file": {"path": "incoming/x.csv", "jobId": trigger["settings"]["jobId"]}},
        )
        session.add(firing)
        session.flush()
        firing_id = firing.id
    outcome = sched.settle(
        app.state.database,
        app.state.bus,
        app.state.settings,
        firing_id,
        info=lambda wid: WorkflowInfo(id=wid, name="wf", status="active"),
    )
    assert outcome == "queued"
    [recorded] = firings(client, workflow_id)
    assert recorded["outcome"] == "queued" and running in recorded["reason"]
    assert recorded["executionId"] not in (refused, running)


def test_files_beyond_the_waiting_room_stay_in_the_folder_until_earlier_ones_start(
    platform, monkeypatch
):
    from flowforge_orchestrator.triggers import events

    monkeypatch.setattr(events, "MAX_WAITING", 2)
    app, client = platform
    workflow_id, _ = make_workflow(client)
    add_event_trigger(client, workflow_id, settleSeconds=0)
    held = str(uuid.uuid4())  # a run going on: every file's firing must wait (queue)
    with app.state.database.session() as session:
        session.add(
            Execution(
                id=held,
                workflow_id=workflow_id,
                workflow_name="held",
                status="running",
                trigger="manual",
            )
        )
    for index in range(5):
        drop(landing(app) / "incoming", f"n{index}.csv", [(index, "x")])
    scheduler = sched.Scheduler(app.state.database, app.state.bus, app.state.settings)
    scheduler.tick()
    scheduler.tick()
    waiting = firings(client, workflow_id)
    assert [f["outcome"] for f in waiting] == ["queued", "queued"]  # none skipped "queue full"
    with app.state.database.session() as session:
        session.scalar(select(Execution).where(Execution.id == held)).status = "succeeded"
    drive(app, until=all_ended(client, workflow_id, 6))
    recorded = firings(client, workflow_id)
    assert len(recorded) == 5 and {f["outcome"] for f in recorded} == {"started"}
    assert sorted(f["cause"]["file"]["path"] for f in recorded) == [
        f"incoming/n{index}.csv" for index in range(5)
    ]
