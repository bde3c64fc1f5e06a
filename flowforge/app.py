"""The composition root: every service's API in one process (the embedded default), or one
service alone. It alone imports every service, workers included: in one process it hands
the workers' code to the services that run it when there is no broker."""

from __future__ import annotations

from fastapi import FastAPI

from flowforge_catalog import api as catalog
from flowforge_ingest import embedded as ingest_worker
from flowforge_lineage import api as lineage
from flowforge_orchestrator import api as orchestrator
from flowforge_orchestrator.dispatch import NO_RUNNERS
from flowforge_shared.db.migrate import upgrade
from flowforge_shared.errors import ConfigurationError
from flowforge_shared.settings import Settings
from flowforge_shared.telemetry import setup_tracing
from flowforge_shared.web import create_service_app
from flowforge_transform import embedded as transform_worker

SERVICES = {"catalog": catalog, "orchestrator": orchestrator, "lineage": lineage}
# Every service's migration chain, each on the service's own database.
MIGRATIONS = [service.MIGRATIONS for service in SERVICES.values()]


def upgrade_all(url: str) -> None:
    """Every service's tables in the one database at ``url``."""
    upgrade(url, MIGRATIONS)


def migrate(settings: Settings, services: list[str] | None = None) -> list[tuple[str, str]]:
    """Bring each service's database to the head of its chain; returns (service, URL) pairs."""
    done = []
    for name in services or list(SERVICES):
        url = settings.database_url_for(name)
        upgrade(url, [SERVICES[name].MIGRATIONS])
        done.append((name, url))
    return done


def install_workers(app: FastAPI) -> None:
    """The workers' code this process runs when no broker is configured: the job runner of
    each queue (the orchestrator's in-process runtime) and the database operations (the
    catalog's). Installed before the services' hooks, which read them."""
    app.state.job_runners = {**ingest_worker.JOB_RUNNERS, **transform_worker.JOB_RUNNERS}
    app.state.database_operations = ingest_worker.DATABASE_OPERATIONS


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        title="FlowForge",
        settings=settings or Settings(),
        api_routers=[router for service in SERVICES.values() for router in service.ROUTERS],
        internal_routers=[
            router for service in SERVICES.values() for router in service.INTERNAL_ROUTERS
        ],
        public_routers=[
            router
            for service in SERVICES.values()
            for router in getattr(service, "PUBLIC_ROUTERS", [])
        ],
        install=[install_workers]
        + [hook for service in SERVICES.values() for hook in service.INSTALL],
        migrations=MIGRATIONS,
    )


def create_single_service_app(name: str, settings: Settings | None = None) -> FastAPI:
    """One service alone, without the workers' code: it reaches them through the broker (an
    orchestrator without FLOWFORGE_BROKER_URL refuses to start: ConfigurationError)."""
    settings = settings or Settings()
    if name == "orchestrator" and settings.embedded_tasks:
        # install_runtime refuses too; saying it here comes before the database is touched.
        raise ConfigurationError(NO_RUNNERS)
    service = SERVICES[name]
    if settings.service_name == "flowforge":  # its spans say which service made them
        setup_tracing(settings, service_name=f"flowforge-{name}")
    return create_service_app(
        title=f"FlowForge {name}",
        settings=settings,
        api_routers=service.ROUTERS,
        internal_routers=service.INTERNAL_ROUTERS,
        public_routers=getattr(service, "PUBLIC_ROUTERS", []),
        install=service.INSTALL,
        migrations=[service.MIGRATIONS],
    )
