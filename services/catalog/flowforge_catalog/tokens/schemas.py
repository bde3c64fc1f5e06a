from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import StringConstraints

from flowforge_shared.auth.roles import Role
from flowforge_shared.contracts.base import ApiModel, ApiOutModel


class TokenCreate(ApiModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    role: Role


class TokenPublic(ApiOutModel):
    """A token as listed: never its secret, only the first characters to recognise it."""

    id: str
    name: str
    role: Role
    prefix: str
    created_by: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenPublic):
    token: str


class TokenSelf(ApiOutModel):
    """Who the calling token stands for (``GET /api/tokens/me``): what the web UI offers."""

    token_id: str
    name: str
    role: Role
