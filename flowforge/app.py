"""The embedded default: every service's API in one process."""

from __future__ import annotations

from fastapi import FastAPI

from flowforge_catalog.api import ROUTERS as CATALOG
from flowforge_lineage.api import ROUTERS as LINEAGE
from flowforge_orchestrator.api import ROUTERS as ORCHESTRATOR
from flowforge_shared.settings import Settings
from flowforge_shared.web import create_service_app

SERVICES = {"catalog": CATALOG, "orchestrator": ORCHESTRATOR, "lineage": LINEAGE}


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        title="FlowForge",
        settings=settings or Settings(),
        api_routers=[router for routers in SERVICES.values() for router in routers],
    )


def create_single_service_app(name: str, settings: Settings | None = None) -> FastAPI:
    if name not in SERVICES:
        raise KeyError(name)
    return create_service_app(
        title=f"FlowForge {name}", settings=settings or Settings(), api_routers=SERVICES[name]
    )
