"""Bearer-token authentication and role checks shared by every service."""

from flowforge_shared.auth.dependencies import (
    Principal,
    authenticate,
    require_admin,
    require_editor,
)
from flowforge_shared.auth.models import ApiToken, Role

__all__ = ["ApiToken", "Principal", "Role", "authenticate", "require_admin", "require_editor"]
