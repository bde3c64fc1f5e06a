from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from flowforge_shared.db.base import Base, UTCDateTime, new_id, utcnow


class Workflow(Base):
    __tablename__ = "workflows"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    team: Mapped[str | None] = mapped_column(String(200))
    environment: Mapped[str] = mapped_column(String(20))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # draft, active or paused as stored; an active workflow with an enabled time trigger is
    # shown "scheduled" (schemas.effective_status).
    status: Mapped[str] = mapped_column(String(20))
    # Whether the orchestrator says it has an enabled time (cron) trigger, and the sequence
    # of the WORKFLOW_SCHEDULE message that said so (an older message never overwrites it).
    # Written by workflows.schedule with a plain UPDATE: not a change of the workflow's own
    # fields, so its version does not move.
    scheduled: Mapped[bool] = mapped_column(Boolean, default=False)
    schedule_sequence: Mapped[int] = mapped_column(BigInteger, default=0)
    status_before_pause: Mapped[str | None] = mapped_column(String(20))
    owner: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Optimistic locking: every UPDATE checks and bumps it, so a stale write fails (409).
    version: Mapped[int] = mapped_column(Integer)

    jobs = relationship(
        "Job",
        back_populates="workflow",
        order_by="Job.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    __mapper_args__ = {"version_id_col": version}
