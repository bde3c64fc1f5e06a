"""The lineage graph: query latency on a 10,000-dataset graph, and the event ingest rate.

The graph is built by applying run events (``flowforge_shared.contracts.events.run_event``
and ``Dataset``, as the workers build them: START and COMPLETE of every job run; lake tables
named by location as ``Lake.dataset_name`` names them, with the ``flowforge_table`` facet;
the CRM file with ``flowforge_file``; each COMPLETE output with its ``columnLineage``) through
the lineage service's own consumer, as the orchestrator would pass them on. Each workflow has two sources (a core-banking table and a
CRM file), two bronze, two silver and two gold tables (8 datasets, 6 jobs); every silver
job also reads one reference table shared by all workflows (a source read by ~1,250 jobs),
and each workflow's first gold job reads the previous workflow's first gold table, so the
whole graph is one connected component. 1,250 workflows make 10,001 datasets. The built
SQLite database is kept in ``bench/.out/lineage/`` and re-used (keyed by its size).

1. Query latency: ``GET /api/lineage?dataset=<id>&direction=both&depth=5`` through the
   embedded app (``create_app`` + TestClient, token check included), median of 30 after
   3 untimed, around a gold table in the middle of the chain (a typical neighbourhood: 5
   workflows up the chain) and around the shared reference table (the widest one: every
   workflow's silver and gold tables), both as a client asks by default (at most 500
   datasets, the nearest: the reference table's answer is truncated); and, for
   information (no target), the reference table's whole neighbourhood with
   ``limit=10000`` (5,001 nodes). Raw baseline: one edge row looked up by its source with
   the bare DB-API cursor, same database, same run. Target < 100 ms.
2. Ingest: N more workflows' events (new runs of new jobs on the 10,000-dataset graph, a
   copy of it) through ``consumer.record_event``, one transaction per event as the
   embedded bus and the Celery task apply them; and through ``consumer.record_events`` in
   batches of 500 (a backlog). Raw baseline: as many plain INSERTs of one row into a
   two-column table, one transaction each (and, for the batches, 500 rows per
   transaction). Target >= 2,000 events/s.

Both on SQLite (the embedded default) and, when it answers at 127.0.0.1:5432, on PostgreSQL
(the graph copied there row by row, then the same measurements; fewer ingest events).
``FLOWFORGE_BENCH_LINEAGE=query`` (or ``ingest``) runs only that part.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._common import (
    check,
    line,
    median,
    out_dir,
    percentile,
    report,
    scale,
    scaled,
    section,
)

DATASETS = 10_000
PER_WORKFLOW = 8
TARGET_QUERY_MS = 100.0
TARGET_EVENTS_PER_S = 2_000.0
QUERY_RUNS, QUERY_WARM_UP = 30, 3
BATCH = 500
PG_HOST, PG_PORT = "127.0.0.1", 5432
T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
REFERENCE = ("sqlite://core-banking", "main.currencies")
SCHEMA = [
    {"name": "customer_id", "type": "bigint", "nullable": False},
    {"name": "name", "type": "string", "nullable": True},
    {"name": "balance", "type": "decimal(18,2)", "nullable": True},
]


LAKE_ROOT = "/data/lake"
LANDING = "/data/landing"

Node = Any  # flowforge_shared.contracts.events.Dataset (imported lazily)


def _table(layer: str, table: str) -> Node:
    """A lake table as the workers name it: by its location (``Lake.dataset_name``), with
    its layer and table (the ``flowforge_table`` facet and the ``layer.table`` symlink)."""
    from flowforge_shared.contracts.events import Dataset
    from flowforge_shared.lake import Lake

    namespace, name = Lake(root=LAKE_ROOT).dataset_name(layer, table)
    return Dataset(
        namespace, name, layer=layer, table=table, location=f"{LAKE_ROOT}/{layer}/{table}"
    )


def _job_events(
    workflow_id: str,
    workflow: str,
    job: str,
    inputs: list[Node],
    outputs: list[Node],
    when: datetime,
) -> list[dict[str, Any]]:
    from dataclasses import replace

    from flowforge_shared.contracts.events import run_event

    common = {
        "job_run_id": str(uuid.uuid4()),
        "execution_id": str(uuid.uuid4()),
        "workflow_id": workflow_id,
        "workflow_name": workflow,
        "job_id": f"{workflow_id}-{job}",
        "job_name": job,
        "attempt": 1,
        "owner": "bench",
    }
    from flowforge_shared.contracts.column_lineage import FACET_NAME, Source, facet

    # Like the workers' COMPLETE: each output's columnLineage (its columns from the first input).
    source = inputs[0]
    columns = {
        FACET_NAME: facet(
            {
                c["name"]: [Source(source.namespace, source.name, c["name"], "identity")]
                for c in SCHEMA
            }
        )
    }
    started = run_event("START", inputs=inputs, outputs=outputs, event_time=when, **common)
    completed = run_event(
        "COMPLETE",
        inputs=[replace(dataset, row_count=5_000) for dataset in inputs],
        outputs=[
            replace(dataset, row_count=4_800, version=1, schema=SCHEMA, extra=columns)
            for dataset in outputs
        ],
        facets={"flowforge_result": {"rowsRead": 5_000, "rowsWritten": 4_800}},
        event_time=when + timedelta(seconds=3),
        **common,
    )
    return [started, completed]


def workflow_events(index: int, tag: str = "") -> list[dict[str, Any]]:
    """One workflow's run: 6 jobs, START and COMPLETE each (12 events), 8 datasets."""
    from flowforge_shared.contracts.events import Dataset, file_dataset

    workflow_id = str(uuid.uuid4())
    name = f"w{tag}{index}"
    when = T0 + timedelta(minutes=index)
    sources = [
        Dataset("sqlite://core-banking", f"main.accounts_{tag}{index}"),
        file_dataset(
            "file",
            f"{LANDING}/crm_{tag}{index}.csv",
            sha256="0" * 64,
            size=52_000,
            file_path=f"crm_{tag}{index}.csv",
        ),
    ]
    reference = Dataset(*REFERENCE)
    bronze = [_table("bronze", f"{name}_accounts"), _table("bronze", f"{name}_crm")]
    silver = [_table("silver", f"{name}_customers"), _table("silver", f"{name}_accounts")]
    gold = [_table("gold", f"{name}_360"), _table("gold", f"{name}_kpis")]
    events: list[dict[str, Any]] = []
    for number, (source, table) in enumerate(zip(sources, bronze, strict=True)):
        events += _job_events(workflow_id, name, f"ingest {number}", [source], [table], when)
    events += _job_events(workflow_id, name, "customers", [*bronze, reference], [silver[0]], when)
    events += _job_events(workflow_id, name, "accounts", [bronze[0], reference], [silver[1]], when)
    previous = [_table("gold", f"w{tag}{index - 1}_360")] if index else []
    events += _job_events(workflow_id, name, "360", [*silver, *previous], [gold[0]], when)
    events += _job_events(workflow_id, name, "kpis", [gold[0]], [gold[1]], when)
    return events


def gold_node(workflows: int) -> tuple[str, str]:
    """(namespace, name) of the gold table in the middle of the chain."""
    from flowforge_shared.lake import Lake

    return Lake(root=LAKE_ROOT).dataset_name("gold", f"w{workflows // 2}_360")


def _parts() -> set[str]:
    """The parts to run: FLOWFORGE_BENCH_LINEAGE=query or ingest (or both, comma separated)."""
    raw = os.environ.get("FLOWFORGE_BENCH_LINEAGE", "query,ingest")
    parts = {part.strip() for part in raw.split(",") if part.strip()}
    unknown = parts - {"query", "ingest"}
    if unknown or not parts:
        raise SystemExit(f"FLOWFORGE_BENCH_LINEAGE: query and/or ingest, not {raw!r}")
    return parts


def _dataset_count() -> int:
    return max(PER_WORKFLOW * 5, int(DATASETS * scale()))


def build_graph(path: Path, workflows: int) -> float:
    """Apply every workflow's events to a fresh SQLite database; the seconds it took."""
    from flowforge.app import upgrade_all
    from flowforge_lineage.graph.consumer import record_events
    from flowforge_shared.db.engine import Database

    work = path.with_name(f"{path.stem}.{uuid.uuid4().hex[:8]}.building")
    work.unlink(missing_ok=True)
    url = f"sqlite:///{work}"
    upgrade_all(url)
    database = Database(url)
    start = time.perf_counter()
    try:
        pending: list[dict[str, Any]] = []
        for index in range(workflows):
            pending += workflow_events(index)
            if len(pending) >= BATCH:
                record_events(database, pending)
                pending = []
        if pending:
            record_events(database, pending)
    finally:
        database.dispose()
    seconds = time.perf_counter() - start
    work.rename(path)
    return seconds


def _postgres_answers() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=2):
            return True
    except OSError:
        return False


def copy_graph(source_url: str, target_url: str) -> None:
    """Every lineage row of one database into another (migrated) one."""
    from sqlalchemy import create_engine, insert, select

    from flowforge_lineage.graph import models

    tables = [
        model.__table__
        for model in (
            models.LineageEvent,
            models.LineageJob,
            models.LineageDataset,
            models.LineageEdge,
            models.LineageRun,
            models.LineageColumnEdge,
        )
    ]
    source, target = create_engine(source_url), create_engine(target_url)
    try:
        with source.connect() as reading, target.begin() as writing:
            for table in tables:
                rows = [dict(row._mapping) for row in reading.execute(select(table))]
                for start in range(0, len(rows), 2_000):
                    writing.execute(insert(table), rows[start : start + 2_000])
    finally:
        source.dispose()
        target.dispose()


def _times(call: Callable[[], Any], runs: int, warm_up: int) -> list[float]:
    for _ in range(warm_up):
        call()
    found = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        found.append(time.perf_counter() - start)
    return found


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.3f} ms" if seconds < 0.001 else f"{seconds * 1000:,.1f} ms"


def measure_queries(database_url: str, data_dir: Path, workflows: int) -> None:
    from fastapi.testclient import TestClient

    from flowforge.app import create_app
    from flowforge_shared.settings import Settings

    token = "ff_bench_admin_" + uuid.uuid4().hex
    settings = Settings(
        data_dir=data_dir, database_url=database_url, admin_token=token, auto_migrate=True
    )
    app = create_app(settings)
    middle = ":".join(gold_node(workflows))
    reference = f"{REFERENCE[0]}:{REFERENCE[1]}"
    try:
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
            engine = app.state.database.engine
            raw = engine.raw_connection()
            try:
                cursor = raw.cursor()
                marker = "?" if engine.dialect.paramstyle == "qmark" else "%s"
                sql = (
                    "SELECT * FROM lineage_edges WHERE source_namespace = "
                    f"{marker} AND source_name = {marker} LIMIT 1"
                )

                def lookup() -> None:
                    cursor.execute(sql, gold_node(workflows))
                    assert cursor.fetchall()

                baseline = median(_times(lookup, 200, 10))
            finally:
                raw.close()
            line("raw baseline: one edge row by its source", _ms(baseline))
            for label, dataset, limit in (
                ("typical (a gold table)", middle, None),
                ("widest (shared source)", reference, None),
                ("widest, limit=10000 (all of it)", reference, 10_000),
            ):
                answers: list[dict] = []
                params: dict[str, Any] = {"dataset": dataset, "direction": "both", "depth": 5}
                if limit is not None:
                    params["limit"] = limit

                def ask(params: dict = params, answers: list = answers) -> None:
                    response = client.get("/api/lineage", params=params)
                    if response.status_code != 200:
                        raise RuntimeError(
                            f"/api/lineage answered {response.status_code}: {response.text}"
                        )
                    answers.append(response.json())

                times = _times(ask, QUERY_RUNS, QUERY_WARM_UP)
                graph = answers[-1]
                direct = median(
                    _times(
                        lambda dataset=dataset, limit=limit: _service(app, dataset, limit),
                        QUERY_RUNS,
                        1,
                    )
                )
                value = median(times)
                shown = (
                    f"median {_ms(value)}, p90 {_ms(percentile(times, 0.9))}; "
                    f"{len(graph['nodes']):,} nodes, {len(graph['edges']):,} edges"
                    + (
                        f" (truncated: {graph['omittedNodes']:,}+ left out)"
                        if graph.get("truncated")
                        else ""
                    )
                    + f"; {value / baseline:,.0f}x the raw lookup"
                )
                if limit is None:  # what a client gets by default: the target
                    check(
                        f"depth 5 both, {label}",
                        shown,
                        ok=value * 1000 < TARGET_QUERY_MS,
                        target=f"< {TARGET_QUERY_MS:.0f} ms",
                    )
                else:  # the whole neighbourhood, asked for explicitly: for information
                    line(f"depth 5 both, {label}", shown)
                line("  of which the query functions (median)", _ms(direct))
    finally:
        app.state.database.dispose()


def _service(app, dataset: str, limit: int | None) -> dict:
    from flowforge_lineage.graph import neighbourhood, query

    with app.state.database.session() as session:
        found = query.find_dataset(session, dataset)
        return neighbourhood.neighbourhood(
            session, found, "both", 5, limit or neighbourhood.DEFAULT_LIMIT
        )


def measure_ingest(database_url: str, count: int) -> None:
    """record_event one at a time and record_events in batches, against plain INSERTs."""
    from sqlalchemy import text

    from flowforge_lineage.graph.consumer import record_event, record_events
    from flowforge_shared.db.engine import Database

    workflows = max(1, count // 12)
    single = [e for index in range(workflows) for e in workflow_events(index, tag="a")]
    batched = [e for index in range(workflows) for e in workflow_events(index, tag="b")]
    count = len(single)
    database = Database(database_url)
    try:
        with database.engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS bench_raw"))
            connection.execute(
                text("CREATE TABLE bench_raw (id VARCHAR(64) PRIMARY KEY, body TEXT)")
            )
        rows = [{"id": uuid.uuid4().hex, "body": "x" * 200} for _ in range(2 * count)]
        insert = text("INSERT INTO bench_raw (id, body) VALUES (:id, :body)")

        start = time.perf_counter()
        for row in rows[:count]:
            with database.engine.begin() as connection:
                connection.execute(insert, row)
        raw_single = count / (time.perf_counter() - start)
        start = time.perf_counter()
        for offset in range(count, 2 * count, BATCH):
            with database.engine.begin() as connection:
                connection.execute(insert, rows[offset : offset + BATCH])
        raw_batched = count / (time.perf_counter() - start)

        start = time.perf_counter()
        applied = [record_event(database, event) for event in single]
        rate_single = count / (time.perf_counter() - start)
        start = time.perf_counter()
        for offset in range(0, count, BATCH):
            applied += record_events(database, batched[offset : offset + BATCH])
        rate_batched = count / (time.perf_counter() - start)
        if not all(applied):
            raise RuntimeError("an event of the benchmark was not applied")
        with database.engine.begin() as connection:
            connection.execute(text("DROP TABLE bench_raw"))
    finally:
        database.dispose()
    line("raw baseline: INSERT of one row per transaction", f"{raw_single:,.0f} rows/s")
    check(
        f"record_event, one per transaction ({count:,} events)",
        f"{rate_single:,.0f} events/s; {rate_single / raw_single:.2f} x raw",
        ok=rate_single >= TARGET_EVENTS_PER_S,
        target=f">= {TARGET_EVENTS_PER_S:,.0f} events/s",
    )
    line(f"raw baseline: INSERT of {BATCH} rows per transaction", f"{raw_batched:,.0f} rows/s")
    check(
        f"record_events, {BATCH} per transaction ({count:,} events)",
        f"{rate_batched:,.0f} events/s; {rate_batched / raw_batched:.3f} x raw",
        ok=rate_batched >= TARGET_EVENTS_PER_S,
        target=f">= {TARGET_EVENTS_PER_S:,.0f} events/s",
    )


def main() -> None:
    datasets = _dataset_count()
    workflows = max(5, -(-(datasets - 1) // PER_WORKFLOW))  # ceil: at least `datasets`
    here = out_dir("lineage")
    graph = here / f"graph-v3-{workflows}.db"  # v3: named by location, column lineage
    if graph.exists():
        line("graph (re-used)", f"{graph.relative_to(here.parent.parent.parent)}")
    else:
        seconds = build_graph(graph, workflows)
        line(
            "graph built from run events",
            f"{workflows * 12:,} events in {seconds:,.1f} s "
            f"({workflows * 12 / seconds:,.0f} events/s, batches of {BATCH})",
        )
    from flowforge.app import upgrade_all

    upgrade_all(f"sqlite:///{graph}")  # a graph kept from an older schema
    line("graph size", f"{workflows * PER_WORKFLOW + 1:,} datasets, {workflows * 6:,} jobs")
    work = here / f"work-{uuid.uuid4().hex[:8]}"  # a run of its own: two runs never collide
    work.mkdir()
    try:
        copy = work / "graph.db"
        shutil.copyfile(graph, copy)
        parts = _parts()
        section("SQLite")
        if "query" in parts:
            measure_queries(f"sqlite:///{copy}", work / "sqlite", workflows)
        if "ingest" in parts:
            measure_ingest(f"sqlite:///{copy}", scaled(4_000, minimum=120))
        if not _postgres_answers():
            print(f"  -- PostgreSQL SKIPPED: not answering at {PG_HOST}:{PG_PORT}")
            return
        _postgres(f"sqlite:///{graph}", work / "postgres", workflows, parts)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(__name__)


def _postgres(sqlite_url: str, data_dir: Path, workflows: int, parts: set[str]) -> None:
    import psycopg

    from flowforge.app import upgrade_all

    name = f"flowforge_bench_lineage_{uuid.uuid4().hex[:12]}"
    admin = f"host={PG_HOST} port={PG_PORT} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    try:
        upgrade_all(url)
        copy_graph(sqlite_url, url)
        with psycopg.connect(
            f"host={PG_HOST} port={PG_PORT} user=postgres dbname={name}", autocommit=True
        ) as connection:
            connection.execute("ANALYZE")
        section("PostgreSQL (the same graph, copied)", "PostgreSQL")
        if "query" in parts:
            measure_queries(url, data_dir, workflows)
        if "ingest" in parts:
            measure_ingest(url, scaled(1_200, minimum=120))
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
