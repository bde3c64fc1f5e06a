"""The lineage service's tables (migrations 0009, 0010, 0012); no other service reads or writes them.

Every piece of state that more than one event could set keeps a sortable key of the event
that set it (``status_key``, ``state_key``, ``seen_key``, ``count_key``, ``schema_key``,
``writer_key``: see :func:`order_key`); an event
only changes what an older event set, so applying events in any order gives the same graph.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flowforge_shared.db.base import Base, UTCDateTime, utcnow


class LineageEvent(Base):
    """A run event this service applied: its ``flowforge_run`` eventId, applied once."""

    __tablename__ = "lineage_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(20))
    event_time: Mapped[datetime] = mapped_column(UTCDateTime())
    job_run_id: Mapped[str | None] = mapped_column(String(64))
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LineageJob(Base):
    """A job that read or wrote datasets, with the status of its newest run event.

    FlowForge's jobs are known by their id; another producer's by ``<namespace>/<name>``."""

    __tablename__ = "lineage_jobs"

    job_id: Mapped[str] = mapped_column(String(500), primary_key=True)
    job_name: Mapped[str] = mapped_column(String(300))
    job_namespace: Mapped[str | None] = mapped_column(String(255))
    workflow_id: Mapped[str | None] = mapped_column(String(36))
    last_run_id: Mapped[str | None] = mapped_column(String(64))
    last_status: Mapped[str | None] = mapped_column(String(20))
    last_event_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status_key: Mapped[str] = mapped_column(String(160))


class LineageDataset(Base):
    """A source (file, database table or query) or a lake table (bronze, silver, gold)."""

    __tablename__ = "lineage_datasets"

    namespace: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(500), primary_key=True)
    layer: Mapped[str] = mapped_column(String(20))  # source, bronze, silver, gold
    version: Mapped[int | None] = mapped_column(BigInteger)
    row_count: Mapped[int | None] = mapped_column(BigInteger)
    last_updated: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A source's: how the newest job reading it went (a lake table's is its writer's).
    status: Mapped[str | None] = mapped_column(String(20))
    producer_job_id: Mapped[str | None] = mapped_column(String(500))
    workflow_id: Mapped[str | None] = mapped_column(String(36), index=True)
    state_key: Mapped[str] = mapped_column(String(160))
    # A lake table's short name ("silver.customers", its symlink), to find it by; the label
    # a graph shows; its columns as the newest write reported them (JSON).
    alias: Mapped[str | None] = mapped_column(String(500), index=True)
    label: Mapped[str | None] = mapped_column(String(500))
    schema_json: Mapped[str | None] = mapped_column(Text)
    # The order keys of the events that set row_count, schema_json and producer_job_id
    # (migration 0012): an event that does not carry a value leaves it to older ones. A
    # writer named by a COMPLETE keeps its written key; one named by another event (before
    # any COMPLETE) keeps "~" + its key, so a COMPLETE always outranks it.
    count_key: Mapped[str | None] = mapped_column(String(160))
    schema_key: Mapped[str | None] = mapped_column(String(160))
    writer_key: Mapped[str | None] = mapped_column(String(160))

    @property
    def node_id(self) -> str:
        return f"{self.namespace}:{self.name}"


class LineageEdge(Base):
    """A job read ``source`` and wrote ``target``."""

    __tablename__ = "lineage_edges"
    __table_args__ = (Index("ix_lineage_edges_target", "target_namespace", "target_name"),)

    source_namespace: Mapped[str] = mapped_column(String(255), primary_key=True)
    source_name: Mapped[str] = mapped_column(String(500), primary_key=True)
    target_namespace: Mapped[str] = mapped_column(String(255), primary_key=True)
    target_name: Mapped[str] = mapped_column(String(500), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(500), primary_key=True)
    job_name: Mapped[str] = mapped_column(String(300))
    workflow_id: Mapped[str | None] = mapped_column(String(36), index=True)
    seen_key: Mapped[str] = mapped_column(String(160))


class LineageRun(Base):
    """One run of a job: when it started and ended (its START and last event), how it went."""

    __tablename__ = "lineage_runs"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(500), index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str | None] = mapped_column(String(20))
    status_key: Mapped[str] = mapped_column(String(160))
    error_message: Mapped[str | None] = mapped_column(Text)


class LineageColumnEdge(Base):
    """Column ``target_column`` of ``target`` comes from ``source_column`` of ``source``, made
    by ``job_id``; ``how`` says in FlowForge's words (identity, rename, derived, aggregation,
    join, filter, ...), ``transformation_type`` and ``subtype`` in OpenLineage's."""

    __tablename__ = "lineage_column_edges"
    __table_args__ = (
        Index("ix_lineage_column_edges_source", "source_namespace", "source_name", "source_column"),
    )

    target_namespace: Mapped[str] = mapped_column(String(255), primary_key=True)
    target_name: Mapped[str] = mapped_column(String(500), primary_key=True)
    target_column: Mapped[str] = mapped_column(String(255), primary_key=True)
    source_namespace: Mapped[str] = mapped_column(String(255), primary_key=True)
    source_name: Mapped[str] = mapped_column(String(500), primary_key=True)
    source_column: Mapped[str] = mapped_column(String(255), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(500), primary_key=True)
    how: Mapped[str] = mapped_column(String(30), primary_key=True)
    transformation_type: Mapped[str] = mapped_column(String(20))  # DIRECT, INDIRECT
    subtype: Mapped[str | None] = mapped_column(String(30))
    description: Mapped[str | None] = mapped_column(Text)
    workflow_id: Mapped[str | None] = mapped_column(String(36), index=True)
    seen_key: Mapped[str] = mapped_column(String(160))
