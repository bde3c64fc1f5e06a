"""The embedded default: every service's API in one process."""

from __future__ import annotations

from fastapi import FastAPI

from flowforge_catalog import api as catalog
from flowforge_lineage import api as lineage
from flowforge_orchestrator import api as orchestrator
from flowforge_shared.settings import Settings
from flowforge_shared.web import create_service_app

SERVICES = {"catalog": catalog, "orchestrator": orchestrator, "lineage": lineage}


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        title="FlowForge",
        settings=settings or Settings(),
        api_routers=[router for service in SERVICES.values() for router in service.ROUTERS],
        internal_routers=[
            router for service in SERVICES.values() for router in service.INTERNAL_ROUTERS
        ],
        install=[hook for service in SERVICES.values() for hook in service.INSTALL],
    )


def create_single_service_app(name: str, settings: Settings | None = None) -> FastAPI:
    service = SERVICES[name]
    return create_service_app(
        title=f"FlowForge {name}",
        settings=settings or Settings(),
        api_routers=service.ROUTERS,
        internal_routers=service.INTERNAL_ROUTERS,
        install=service.INSTALL,
    )
