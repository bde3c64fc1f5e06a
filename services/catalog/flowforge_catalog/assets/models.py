from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flowforge_shared.db.base import Base, UTCDateTime


class Asset(Base):
    """A table FlowForge wrote, as its last run event described it."""

    __tablename__ = "catalog_assets"

    table_name: Mapped[str] = mapped_column(String(128), primary_key=True)
    layer: Mapped[str] = mapped_column(String(20), index=True)
    location: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int | None] = mapped_column(BigInteger)
    row_count: Mapped[int | None] = mapped_column(BigInteger)
    columns: Mapped[list[dict]] = mapped_column(JSON)
    last_updated: Mapped[datetime] = mapped_column(UTCDateTime())
    producing_job_id: Mapped[str | None] = mapped_column(String(36))
    producing_job_name: Mapped[str | None] = mapped_column(String(200))
    producing_execution_id: Mapped[str | None] = mapped_column(String(36))
    workflow_id: Mapped[str | None] = mapped_column(String(36))
