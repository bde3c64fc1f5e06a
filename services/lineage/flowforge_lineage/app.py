"""The lineage service on its own (``flowforge service lineage``): its API; the run events
reach it through ``flowforge worker lineage``."""

from __future__ import annotations

from fastapi import FastAPI

from flowforge_lineage.api import INSTALL, MIGRATIONS, ROUTERS
from flowforge_shared.settings import Settings
from flowforge_shared.web import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        title="FlowForge lineage",
        settings=settings or Settings(),
        api_routers=ROUTERS,
        install=INSTALL,
        migrations=[MIGRATIONS],
    )
