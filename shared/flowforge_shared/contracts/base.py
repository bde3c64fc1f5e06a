"""The base models every API and contract schema derives from."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case accepted on input, unknown keys refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        from_attributes=True,
    )

    def to_wire(self) -> dict:
        """The JSON-ready form: camelCase, only the fields that were given or are required."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class ApiOutModel(ApiModel):
    """Response models: camelCase, every field present."""

    model_config = ConfigDict(extra="ignore")


T = TypeVar("T")


class Page(ApiOutModel, Generic[T]):
    """The one list shape of the API."""

    data: list[T]
    count: int


MAX_OFFSET = 10_000_000
"""Largest list offset accepted (databases store 64-bit integers; pages beyond are empty)."""
