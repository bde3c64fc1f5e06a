"""The orchestrator service on its own (``flowforge service orchestrator``)."""

from __future__ import annotations

from fastapi import FastAPI

from flowforge_orchestrator.api import (
    INSTALL,
    INTERNAL_ROUTERS,
    MIGRATIONS,
    PUBLIC_ROUTERS,
    ROUTERS,
)
from flowforge_shared.settings import Settings
from flowforge_shared.web import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        title="FlowForge orchestrator",
        settings=settings or Settings(),
        api_routers=ROUTERS,
        internal_routers=INTERNAL_ROUTERS,
        public_routers=PUBLIC_ROUTERS,
        install=INSTALL,
        migrations=[MIGRATIONS],
    )
