"""Bearer-token authentication and role checks shared by every service."""

from flowforge_shared.auth.dependencies import (
    Principal,
    authenticate,
    require_admin,
    require_auditor,
    require_editor,
    require_token_reader,
)
from flowforge_shared.auth.roles import Role

__all__ = [
    "Principal",
    "Role",
    "authenticate",
    "require_admin",
    "require_auditor",
    "require_editor",
    "require_token_reader",
]
