"""Fixtures of the lineage service's tests: a migrated database on SQLite (the embedded
default) and on the real PostgreSQL, and a factory that writes graph rows directly."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from flowforge.app import upgrade_all
from flowforge_lineage.graph.models import LineageDataset, LineageEdge, LineageJob, LineageRun
from flowforge_shared.db.engine import Database

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def migrated_postgres_url(request) -> str:
    url = request.getfixturevalue("postgres_url")
    upgrade_all(url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request, tmp_path):
    """A migrated database: SQLite of the test's own, or the session's PostgreSQL database
    (tests there keep apart by namespaces and workflow ids of their own)."""
    if request.param == "postgres":
        url = request.getfixturevalue("migrated_postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'lineage.db'}"
        upgrade_all(url)
    db = Database(url)
    yield db
    db.dispose()


class GraphRows:
    """Writes lineage rows as the write side leaves them; every namespace it makes is
    unique to the test (``self.ns``), so tests sharing a database never see each other."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.tag = uuid.uuid4().hex[:8]
        self.ns = f"file-{self.tag}"
        self.pg = f"postgres://db-{self.tag}.test:5432"
        self.s3 = f"s3://lake-{self.tag}"
        self.workflow_id = str(uuid.uuid4())
        self._keys = 0

    def _key(self) -> str:
        self._keys += 1
        return f"{self._keys:08d}"

    def dataset(
        self,
        name: str,
        layer: str,
        *,
        namespace: str | None = None,
        alias: str | None = None,
        label: str | None = None,
        schema: list[dict] | None = None,
        rows: int | None = None,
        version: int | None = None,
        writer: str | None = None,
        status: str | None = None,
        workflow_id: str | None = None,
    ) -> str:
        namespace = namespace or self.ns
        with self.database.session() as session:
            session.add(
                LineageDataset(
                    namespace=namespace,
                    name=name,
                    layer=layer,
                    alias=alias,
                    label=label,
                    schema_json=json.dumps(schema) if schema is not None else None,
                    row_count=rows,
                    version=version,
                    last_updated=T0 if rows is not None else None,
                    producer_job_id=writer,
                    status=status,
                    workflow_id=workflow_id or (self.workflow_id if writer else None),
                    state_key=self._key(),
                )
            )
        return f"{namespace}:{name}"

    def job(
        self,
        job_id: str,
        *,
        status: str = "succeeded",
        seconds: float | None = 2.5,
        workflow_id: str | None = None,
    ) -> str:
        """A job and its last run: ``seconds`` long, still running with None."""
        run_id = f"run-{job_id}"
        with self.database.session() as session:
            session.add(
                LineageJob(
                    job_id=job_id,
                    job_name=f"name of {job_id}",
                    workflow_id=workflow_id or self.workflow_id,
                    last_run_id=run_id,
                    last_status=status,
                    last_event_time=T0,
                    status_key=self._key(),
                )
            )
            session.add(
                LineageRun(
                    run_id=run_id,
                    job_id=job_id,
                    started_at=T0,
                    ended_at=T0 + timedelta(seconds=seconds) if seconds is not None else None,
                    status=status,
                    status_key=self._key(),
                )
            )
        return job_id

    def edge(self, source: str, target: str, job_id: str, *, workflow_id: str | None = None):
        (source_ns, source_name), (target_ns, target_name) = (
            self._split(source),
            self._split(target),
        )
        with self.database.session() as session:
            session.add(
                LineageEdge(
                    source_namespace=source_ns,
                    source_name=source_name,
                    target_namespace=target_ns,
                    target_name=target_name,
                    job_id=job_id,
                    job_name=f"name of {job_id}",
                    workflow_id=workflow_id or self.workflow_id,
                    seen_key=self._key(),
                )
            )

    def _split(self, node: str) -> tuple[str, str]:
        # Test node ids are made here: the namespace is the one given or self.ns.
        for namespace in (self.ns, self.pg, self.s3):
            if node.startswith(namespace + ":"):
                return namespace, node[len(namespace) + 1 :]
        raise ValueError(node)


@pytest.fixture
def rows(database) -> GraphRows:
    return GraphRows(database)
