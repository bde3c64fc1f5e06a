"""Token introspection: how a service that does not serve the catalog asks it about a token.

``POST /api/internal/tokens/introspect`` with ``Authorization: Bearer <FLOWFORGE_SERVICE_SECRET>``
and an :class:`IntrospectionRequest`; the answer is an :class:`Introspection` (``active``
false for an unknown or revoked token, as in RFC 7662), or 401 when the service secret is
wrong.
"""

from __future__ import annotations

from flowforge_shared.auth.roles import Role
from flowforge_shared.contracts.base import ApiModel, ApiOutModel

INTROSPECT_PATH = "/api/internal/tokens/introspect"


class IntrospectionRequest(ApiModel):
    token: str


class Introspection(ApiOutModel):
    active: bool
    token_id: str | None = None
    name: str | None = None
    role: Role | None = None
