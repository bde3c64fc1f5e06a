from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from flowforge_shared.db.base import Base, UTCDateTime, new_id, utcnow


class UploadedFile(Base):
    """A file a user uploaded; stored under a generated name in the landing area."""

    __tablename__ = "uploaded_files"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    original_name: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(255))  # landing-relative, generated
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str | None] = mapped_column(String(200))
    uploaded_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    detection: Mapped[dict | None] = mapped_column(JSON)
    # 1 for the first upload of an original name, then 2, 3, ... (a re-upload).
    version: Mapped[int | None] = mapped_column(Integer)
