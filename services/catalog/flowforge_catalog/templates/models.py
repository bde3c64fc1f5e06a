from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import JSON, Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flowforge_shared.db.base import Base, UTCDateTime


class WorkflowTemplate(Base):
    __tablename__ = "workflow_templates"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(40), index=True)
    industry_vertical: Mapped[str | None] = mapped_column(String(100))
    use_case: Mapped[str | None] = mapped_column(String(200))
    template_version: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict] = mapped_column(JSON)
    thumbnail_url: Mapped[str | None] = mapped_column(String(500))
    demo_data_url: Mapped[str | None] = mapped_column(String(500))
    documentation_url: Mapped[str | None] = mapped_column(String(500))
    tags: Mapped[list[str]] = mapped_column(JSON)
    is_active: Mapped[bool] = mapped_column(Boolean)
    is_builtin: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    @property
    def version(self) -> int:
        """Changes with every change of the template (its ``updated_at`` in microseconds):
        what ``If-Match`` or a PATCH body's ``version`` names. Derived, so no column."""
        return (self.updated_at - _EPOCH) // _MICROSECOND


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
