"""The templates that ship with FlowForge (one JSON file each, beside this module).

They are seeded by migration 0005 and upgraded in place whenever the shipped
``templateVersion`` is higher than the stored one (:func:`sync`, run on every start and by
``flowforge db upgrade``); an admin's deactivation is kept across upgrades.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

HERE = Path(__file__).parent

TABLE = sa.table(
    "workflow_templates",
    sa.column("id"),
    sa.column("name"),
    sa.column("description"),
    sa.column("category"),
    sa.column("industry_vertical"),
    sa.column("use_case"),
    sa.column("template_version"),
    sa.column("config", sa.JSON),
    sa.column("thumbnail_url"),
    sa.column("demo_data_url"),
    sa.column("documentation_url"),
    sa.column("tags", sa.JSON),
    sa.column("is_active"),
    sa.column("is_builtin"),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


def builtin_templates() -> list[dict]:
    found = sorted(HERE.glob("*.json"))
    if not found:  # an install that lost its package data: say so rather than ship none
        raise RuntimeError(
            f"FlowForge's built-in templates are missing from {HERE}: this installation was "
            "built without its package data (see [tool.setuptools.package-data])"
        )
    return [json.loads(path.read_text()) for path in found]


def _row(template: dict, now: datetime) -> dict:
    return {
        "id": template["id"],
        "name": template["name"],
        "description": template["description"],
        "category": template["category"],
        "industry_vertical": template.get("industryVertical"),
        "use_case": template.get("useCase"),
        "template_version": template["templateVersion"],
        "config": template["config"],
        "thumbnail_url": template.get("thumbnailUrl"),
        "demo_data_url": template.get("demoDataUrl"),
        "documentation_url": template.get("documentationUrl"),
        "tags": template.get("tags", []),
        "updated_at": now,
    }


def sync_connection(connection) -> int:
    """Insert missing built-ins and upgrade older ones; returns how many rows changed."""
    now = datetime.now(UTC)
    stored = dict(connection.execute(sa.select(TABLE.c.id, TABLE.c.template_version)).all())
    changed = 0
    for template in builtin_templates():
        row = _row(template, now)
        if template["id"] not in stored:
            connection.execute(
                TABLE.insert().values(**row, is_active=True, is_builtin=True, created_at=now)
            )
            changed += 1
        elif stored[template["id"]] < template["templateVersion"]:
            connection.execute(TABLE.update().where(TABLE.c.id == template["id"]).values(**row))
            changed += 1
    return changed


def sync(engine) -> int:
    with engine.begin() as connection:
        return sync_connection(connection)
