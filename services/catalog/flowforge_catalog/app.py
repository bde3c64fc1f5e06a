"""The catalog service on its own (``flowforge service catalog``)."""

from __future__ import annotations

from fastapi import FastAPI

from flowforge_catalog.api import INSTALL, MIGRATIONS, ROUTERS
from flowforge_shared.settings import Settings
from flowforge_shared.web import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        title="FlowForge catalog",
        settings=settings or Settings(),
        api_routers=ROUTERS,
        install=INSTALL,
        migrations=[MIGRATIONS],
    )
