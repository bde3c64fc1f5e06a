from __future__ import annotations

from pydantic import Field

from flowforge_shared.contracts.base import ApiModel, ApiOutModel


class RunRequest(ApiModel):
    jobs: list[str] | None = Field(
        default=None, description="Run only these jobs (and the jobs they need)"
    )


class RunStarted(ApiOutModel):
    execution_id: str
