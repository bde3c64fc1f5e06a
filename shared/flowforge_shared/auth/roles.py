"""The roles a token carries, and what each may do (the tokens themselves are the catalog's)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a token may do. ``admin``: everything, tokens included; ``editor``: create,
    change, run, and read the audit log; ``auditor``: read everything, the audit log and the
    token list included, change nothing; ``viewer``: read everything but the audit log and
    the token list."""

    ADMIN = "admin"
    EDITOR = "editor"
    AUDITOR = "auditor"
    VIEWER = "viewer"

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what a route needing ``needed`` does."""
        return self in _GRANTED_BY[needed]


# For each role a route can need, the roles that satisfy it. Not a ladder: an auditor reads
# what only admins and editors read, yet changes nothing.
_GRANTED_BY: dict[Role, frozenset[Role]] = {
    Role.VIEWER: frozenset(Role),
    Role.AUDITOR: frozenset({Role.AUDITOR, Role.EDITOR, Role.ADMIN}),
    Role.EDITOR: frozenset({Role.EDITOR, Role.ADMIN}),
    Role.ADMIN: frozenset({Role.ADMIN}),
}
