"""A retry of an incremental database job that finds its own commit must store the bound
that commit read to, not the one it computed itself: rows added to the source in between
would otherwise never be read (a silent loss)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from flowforge_ingest.runner import run_ingest_job
from flowforge_runtime.job import JobContext, LocalCancelFlags
from flowforge_shared.contracts.tasks import JobTask
from flowforge_shared.lake import Lake
from flowforge_shared.settings import Settings


class Sink:
    def emit(self, event):
        pass

    def heartbeat(self, beat):
        pass


def source(path: Path, ids: range) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, amount REAL)")
        conn.executemany("INSERT INTO orders VALUES (?, ?)", [(i, i * 1.5) for i in ids])


def attempt(tmp_path: Path, number: int, watermark: dict | None = None):
    settings = Settings(data_dir=tmp_path)
    task = JobTask(
        execution_id="7e1e7e1e-0000-4000-8000-000000000007",
        run_sequence=7,
        job_run_id="7e1e7e1e-0000-4000-8000-0000000000a1",
        job_id="job-1",
        workflow_id="w",
        workflow_name="w",
        job={
            "name": "orders",
            "type": "database",
            "sourceConfig": {
                "type": "sqlite",
                "databaseConfig": {
                    "connectionId": "c1",
                    "tableName": "orders",
                    "isIncremental": True,
                    "deltaColumn": "id",
                },
            },
            "destinationConfig": {"bronzeConfig": {"tableName": "bronze_orders"}},
        },
        connection={"id": "c1", "type": "sqlite", "database": "shop.db", "options": {}},
        watermark=watermark,
    )
    context = JobContext(
        task=task,
        attempt=number,
        settings=settings,
        lake=Lake(str(tmp_path / "lake")),
        sink=Sink(),
        cancel_flags=LocalCancelFlags(),
    )
    return run_ingest_job(context)


def test_a_retry_that_finds_its_commit_reports_the_watermark_of_that_commit(tmp_path):
    database = tmp_path / "sources" / "shop.db"
    database.parent.mkdir(parents=True)
    source(database, range(1, 11))
    first = attempt(tmp_path, 1)
    assert first.rows_written == 10 and first.watermark["value"] == "10"

    # The first attempt's COMPLETE was lost; meanwhile the source grew. The retry finds the
    # run's commit: it must hand on the bound that commit read to (10), not 15, so the next
    # run reads rows 11..15.
    source(database, range(11, 16))
    retry = attempt(tmp_path, 2)
    assert retry.already_applied is not None
    assert retry.already_applied.execution_id == "7e1e7e1e-0000-4000-8000-000000000007"
    assert retry.rows_written == 10
    assert retry.watermark == first.watermark
