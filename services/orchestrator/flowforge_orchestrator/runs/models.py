from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flowforge_shared.db.base import Base, UTCDateTime, new_id, utcnow

ACTIVE_STATUSES = ("queued", "running", "cancelling")
"""An execution in one of these still owns its workflow: no other may start."""
_ACTIVE_SQL = text("status IN ('queued', 'running', 'cancelling')")


class Execution(Base):
    """One run of a workflow. ``seq`` grows with every run: it is the Delta application
    transaction version of the run's writes, so a retried write can recognise its own commit."""

    __tablename__ = "executions"
    __table_args__ = (
        # One active execution per workflow, enforced by the database itself: two racing
        # run requests cannot both insert one (the loser gets 409).
        Index(
            "uq_executions_one_active",
            "workflow_id",
            unique=True,
            sqlite_where=_ACTIVE_SQL,
            postgresql_where=_ACTIVE_SQL,
        ),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True, default=new_id)
    workflow_id: Mapped[str] = mapped_column(String(36), index=True)
    workflow_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), index=True)
    trigger: Mapped[str] = mapped_column(String(40))
    # What made a trigger fire, e.g. {"triggerId", "fireTime"} (none for a manual run).
    cause: Mapped[dict | None] = mapped_column(JSON)
    requested_by: Mapped[str | None] = mapped_column(String(200))
    trace_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)

    jobs = relationship(
        "JobRun", back_populates="execution", order_by="JobRun.position", cascade="all"
    )


class JobRun(Base):
    """One job of an execution, with the snapshot of its configuration taken at run time.

    Liveness: ``dispatched_at`` is when the task was committed for sending, ``sent_at`` when
    the broker (or the in-process pool) took it, ``sent_epoch`` the broker's identity then (a
    Redis restarted empty has another), ``owner`` who holds it (the sender, then the worker)
    and ``heartbeat_at`` the last sign of life of the attempt that runs it. The reaper
    (:mod:`flowforge_orchestrator.runs.liveness`) reads them to find lost jobs."""

    __tablename__ = "job_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    execution_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("executions.id", ondelete="CASCADE"), index=True
    )
    job_id: Mapped[str] = mapped_column(String(36))
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict] = mapped_column(JSON)
    needs: Mapped[list[str]] = mapped_column(JSON)  # job ids of this execution it waits for
    queue: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    dispatched: Mapped[bool] = mapped_column(default=False)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_written: Mapped[int] = mapped_column(BigInteger, default=0)
    outputs: Mapped[list[dict]] = mapped_column(JSON, default=list)
    # The files the job reads, fixed when the run started (an upload: id, version, sha256).
    inputs: Mapped[list[dict] | None] = mapped_column(JSON)
    # A database job's saved connection as the run request carried it (password encrypted).
    connection: Mapped[dict | None] = mapped_column(JSON)
    quarantined_rows: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[dict | None] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text)  # what the user should know besides status
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_epoch: Mapped[str | None] = mapped_column(String(64))
    owner: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    execution = relationship("Execution", back_populates="jobs")


class RunEvent(Base):
    """Every OpenLineage run event received, in arrival order (the SSE stream reads these)."""

    __tablename__ = "run_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    execution_id: Mapped[str] = mapped_column(String(36), index=True)
    job_run_id: Mapped[str | None] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(20))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    payload: Mapped[dict] = mapped_column(JSON)
