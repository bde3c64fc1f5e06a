from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flowforge_shared.db.base import Base, UTCDateTime


class JobWatermark(Base):
    """How far an incremental job has read: stored only after its bronze commit succeeded
    (it arrives in the job's COMPLETE event)."""

    __tablename__ = "job_watermarks"

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(36), index=True)
    column_name: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(Text)
    execution_id: Mapped[str | None] = mapped_column(String(36))
    run_sequence: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
