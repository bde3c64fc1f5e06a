"""What every service's audit entries share: the before/after diff of a change, with every
secret masked before it is stored.

The audit log itself is the catalog's (``flowforge_catalog.audit``): the catalog records its
changes there in the same transaction as the change; another service keeps its entries in an
outbox of its own database, in the same transaction, and sends them to the catalog
(:mod:`flowforge_shared.contracts.audit`).
"""

from __future__ import annotations

import re
from typing import Any

from flowforge_shared.db.base import utcnow
from flowforge_shared.secrets import MASK

SECRET_KEY = re.compile(
    r"(pass(word|wd)?|pwd|secret|token|api[_-]?key|apikey|private[_-]?key|credential)",
    re.IGNORECASE,
)
# key=value secrets inside connection strings (ADO.NET / ODBC / libpq) and URL userinfo.
SECRET_IN_TEXT = re.compile(r"(?i)\b(password|pwd)\s*=\s*(\{[^}]*\}|[^;\s]*)")
SECRET_IN_URL = re.compile(r"(?i)(\w+://[^:/@\s]*:)([^@\s]*)(@)")


def mask_secrets(value: Any) -> Any:
    """A copy of ``value`` with every secret-looking field and embedded password masked."""
    if isinstance(value, dict):
        return {
            key: (MASK if _is_secret_key(key, item) else mask_secrets(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_secrets(item) for item in value]
    if isinstance(value, str):
        masked = SECRET_IN_TEXT.sub(lambda m: f"{m.group(1)}={MASK}", value)
        return SECRET_IN_URL.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", masked)
    return value


def _is_secret_key(key: Any, item: Any) -> bool:
    # A boolean like "hasPassword" or a null is no secret; masking it would hide information.
    return (
        isinstance(key, str)
        and SECRET_KEY.search(key) is not None
        and item is not None
        and not isinstance(item, bool)
    )


def diff(before: dict | None, after: dict | None) -> dict:
    """Top-level fields that changed, each side masked."""
    if before is None or after is None:
        return {"before": mask_secrets(before), "after": mask_secrets(after)}
    keys = [key for key in {**before, **after} if before.get(key) != after.get(key)]
    return {
        "before": mask_secrets({key: before.get(key) for key in keys}),
        "after": mask_secrets({key: after.get(key) for key in keys}),
    }


def entry_fields(
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    before: dict | None = None,
    after: dict | None = None,
) -> dict[str, Any]:
    """The columns of one audit entry, whichever service's table keeps it (the catalog's log,
    the orchestrator's outbox): when, who, what, and the diff with its secrets masked."""
    return {
        "at": utcnow(),
        "actor": actor,
        "action": action,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "diff": diff(before, after),
    }
