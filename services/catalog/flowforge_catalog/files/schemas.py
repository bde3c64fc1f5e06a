from __future__ import annotations

from datetime import datetime

from pydantic import Field

from flowforge_shared.contracts.base import ApiOutModel


class FilePublic(ApiOutModel):
    id: str
    original_name: str
    file_path: str
    size: int
    sha256: str
    content_type: str | None
    uploaded_by: str
    created_at: datetime
    version: int = Field(
        description="1 for the first upload of originalName, then 2, 3, ...: a job with "
        "fileConfig.fileName follows the newest"
    )


class FilePreview(ApiOutModel):
    columns: list[str]
    rows: list[dict[str, str | None]]
    # Rows the load will treat as malformed (left out of ``rows``), and text that is not
    # valid in the file's encoding.
    warnings: list[str] = Field(default_factory=list)
